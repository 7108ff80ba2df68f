package ike

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/dpd"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// The DPD task (RFC 3706): both sides announce the DPD vendor ID in phase 1;
// once an ISAKMP SA is established the tunnel's dpd.Monitor decides, on one
// timer per tunnel, when to send R-U-THERE and when the peer is dead. Proof
// of life is any authenticated IKE message and any ESP/AH packet that
// verified (DataPath.LastInbound of the tunnel's pairs). On the verdict the
// tunnel applies its DPD timeout action: clear, restart or none.

// peerDeadMessage is AWS's log wording for a DPD timeout (AWSUG
// log-contents.md).
const peerDeadMessage = "Peer is not responsive - Declaring peer dead"

// defaultDPDDelay is AWS's idle time before an R-U-THERE.
const defaultDPDDelay = 10 * time.Second

// dpdDelay is the configured delay or its default.
func (t *tunnel) dpdDelay() time.Duration {
	if t.cfg.DPDDelay > 0 {
		return t.cfg.DPDDelay
	}
	return min(defaultDPDDelay, t.cfg.DPDTimeout/3)
}

// dpdEnabled reports whether this tunnel probes at all.
func (t *tunnel) dpdEnabled() bool {
	return t.cfg.DPDTimeout > 0 && t.dpdDelay() > 0 && t.dpdDelay() < t.cfg.DPDTimeout
}

// startDPD begins watching the peer once phase 1 is up. A phase 1 rekey
// keeps the running monitor (same peer, same silence).
func (t *tunnel) startDPD(sa *ikeSA) {
	if !t.dpdEnabled() {
		return
	}
	if !sa.peerDPD {
		t.log.Info("DPD: the peer did not announce DPD (RFC 3706 vendor ID): not probing")
		return
	}
	if t.dpd != nil {
		return
	}
	t.dpd = dpd.New(t.dpdDelay(), t.cfg.DPDTimeout, timeNow())
	t.log.WithFields(logrus.Fields{"delay": t.dpdDelay().String(), "timeout": t.cfg.DPDTimeout.String(), "action": t.cfg.DPDAction.String()}).
		Debug("DPD: watching the peer")
	t.dpdTimerAt(timeNow().Add(t.dpdDelay()))
}

// stopDPD ends watching (phase 1 down, tunnel terminated).
func (t *tunnel) stopDPD() {
	if t.dpdTimer != nil {
		t.dpdTimer.Stop()
		t.dpdTimer = nil
	}
	t.dpd = nil
}

func (t *tunnel) dpdTimerAt(at time.Time) {
	if t.dpdTimer != nil {
		t.dpdTimer.Stop()
	}
	// Up to 2 % jitter so that thousands of tunnels established together
	// do not all probe in the same instant.
	d := max(at.Sub(timeNow()), time.Millisecond)
	d += time.Duration(rand.Int64N(int64(d)/50 + 1))
	t.dpdTimer = t.e.afterFunc(d, t.dpdCheck)
}

// lastDataInbound is the newest proof of life from the data path.
func (t *tunnel) lastDataInbound() time.Time {
	var last time.Time
	for _, c := range t.children {
		if l := t.e.dp.LastInbound(c.pair.Inbound.Protocol, c.pair.Inbound.SPI); l.After(last) {
			last = l
		}
	}
	return last
}

// dpdCheck runs on the tunnel's DPD timer.
func (t *tunnel) dpdCheck() {
	t.dpdTimer = nil
	m := t.dpd
	if m == nil {
		return
	}
	if l := t.lastDataInbound(); !l.IsZero() {
		t.dpdSeen(l, "traffic")
	}
	now := timeNow()
	if m.State() == dpd.Dead {
		// Action none: the SAs stay; keep asking so that the peer's
		// return is noticed even without traffic.
		if sa := t.sa; sa != nil && sa.state == stateEstablished {
			sa.sendDPD(isakmp.NotifyRUThere, m.Reprobe(now))
		}
		t.dpdTimerAt(now.Add(t.dpdDelay()))
		return
	}
	action, seq, next := m.Next(now)
	switch action {
	case dpd.Probe:
		sa := t.sa
		if sa == nil || sa.state != stateEstablished {
			t.stopDPD()
			return
		}
		if m.Probes() == 1 {
			t.dpdEvent("probing", logrus.Fields{"silent_for": now.Sub(m.LastSeen()).Round(time.Millisecond).String()})
		}
		// The first R-U-THERE of a round is routine on an idle tunnel
		// (one per DPD delay: 1,000 a second for 10,000 tunnels at AWS's
		// 10 s): counted (DPDProbes), logged at debug. A second one means
		// the peer missed an answer: info.
		if m.Probes() > 1 || t.e.debugEnabled() {
			lvl := logrus.InfoLevel
			if m.Probes() == 1 {
				lvl = logrus.DebugLevel
			}
			t.log.WithFields(logrus.Fields{"seq": seq, "probe": m.Probes(), "silent_for": now.Sub(m.LastSeen()).Round(time.Millisecond).String()}).
				Log(lvl, "DPD: peer silent, sending R-U-THERE")
		}
		sa.sendDPD(isakmp.NotifyRUThere, seq)
	case dpd.DeclareDead:
		if n := len(t.e.inbox); n > 0 && !t.dpdDeferred {
			// The loop is behind: messages from the peer may be queued.
			// Decide once they are handled (once: a loop that is never
			// idle must not keep a dead peer alive), not on a starved
			// loop's idea of silence.
			t.dpdDeferred = true
			m.Revive()
			// Not e.post: the loop must never block on its own full
			// inbox (it deadlocked under 2,000 tunnels); a timer's
			// goroutine waits for room instead.
			t.e.afterFunc(0, t.dpdCheck)
			return
		}
		t.dpdDeferred = false
		t.peerDead(now.Sub(m.LastSeen()))
		return
	}
	if !next.IsZero() {
		t.dpdTimerAt(next)
	}
}

// dpdSeen records proof of life.
func (t *tunnel) dpdSeen(at time.Time, what string) {
	if t.dpd == nil {
		return
	}
	probes := t.dpd.Probes()
	if from, changed := t.dpd.Seen(at); changed {
		t.dpdAlive(from, probes, what)
	}
}

// dpdAlive reports the end of a probing round or of a dead verdict. A
// peer that answered the round's first R-U-THERE is routine (debug); one
// that missed a probe, or was declared dead, is news (info).
func (t *tunnel) dpdAlive(from dpd.State, probes int, proof string) {
	f := logrus.Fields{"was": from.String(), "proof": proof, "probes": probes}
	t.emitDPDState("alive", f)
	if from == dpd.Dead || probes > 1 {
		t.log.WithFields(f).Info("DPD: peer alive again")
	} else if t.e.debugEnabled() {
		t.log.WithFields(f).Debug("DPD: peer alive again")
	}
}

func (t *tunnel) dpdEvent(state string, f logrus.Fields) { t.emitDPDState(state, f) }

func (t *tunnel) emitDPDState(state string, f logrus.Fields) {
	detail := map[string]string{"state": state}
	for k, v := range f {
		detail[k] = fmt.Sprint(v)
	}
	t.e.emit(Event{Tunnel: t.cfg.Name, Type: "dpd-state", Detail: detail})
}

// debugEnabled reports whether debug lines are written at all, so that
// the per-probe paths do not build log fields (hex cookies, maps) only for
// logrus to drop them. A logger that is not logrus's says yes.
func (e *Engine) debugEnabled() bool {
	switch l := e.log.(type) {
	case *logrus.Entry:
		return l.Logger.IsLevelEnabled(logrus.DebugLevel)
	case *logrus.Logger:
		return l.IsLevelEnabled(logrus.DebugLevel)
	}
	return true
}

// onDPDAck handles an R-U-THERE-ACK.
func (sa *ikeSA) onDPDAck(n *isakmp.Notify) {
	t := sa.t
	if t == nil || t.dpd == nil {
		return
	}
	if len(n.Data) != 4 {
		sa.logger().WithField("len", len(n.Data)).Warn("DPD: R-U-THERE-ACK without a 4-byte sequence number: ignored")
		return
	}
	seq := binary.BigEndian.Uint32(n.Data)
	probes := t.dpd.Probes()
	ok, from, changed := t.dpd.Ack(seq, timeNow())
	if !ok {
		if t.dpd.Late(seq) {
			sa.logger().WithField("seq", seq).Debug("DPD: late R-U-THERE-ACK (the round had already ended)")
		} else {
			sa.logger().WithField("seq", seq).Warn("DPD: R-U-THERE-ACK with a sequence number we did not send: ignored")
		}
		return
	}
	if t.e.debugEnabled() {
		sa.logger().WithField("seq", seq).Debug("DPD: R-U-THERE-ACK received")
	}
	if changed {
		t.dpdAlive(from, probes, "R-U-THERE-ACK")
	}
	t.dpdTimerAt(timeNow().Add(t.dpdDelay()))
}

// sendDPD sends R-U-THERE or R-U-THERE-ACK (RFC 3706 section 5.3: protocol
// ISAKMP, SPI = the cookie pair, data = the 32-bit sequence number).
func (sa *ikeSA) sendDPD(nt isakmp.NotifyType, seq uint32) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], seq)
	n := &isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoISAKMP, SPI: sa.cookiesSPI(), NotifyType: nt, Data: b[:]}
	if nt == isakmp.NotifyRUThere && sa.t != nil {
		sa.t.counters.DPDProbes++
	}
	sa.sendInformational(n, "Informational "+nt.String())
}

// peerDead applies the DPD timeout action.
func (t *tunnel) peerDead(silent time.Duration) {
	action := t.cfg.DPDAction
	t.log.WithFields(logrus.Fields{"silent_for": silent.Round(time.Millisecond).String(), "action": action.String()}).Warn(peerDeadMessage)
	t.lastError = peerDeadMessage
	t.counters.DPDTimeouts++
	t.e.emit(Event{Tunnel: t.cfg.Name, Type: "dpd-state", Detail: map[string]string{
		"state": "dead", "message": peerDeadMessage, "action": action.String(), "silent_for": silent.Round(time.Millisecond).String()}})
	switch action {
	case DPDNone:
		// Keep everything; the monitor stays dead (reported as such) and
		// keeps probing until the peer answers or sends traffic.
		t.dpdTimerAt(timeNow().Add(t.dpdDelay()))
	case DPDClear:
		t.stopDPD()
		t.clearAll(peerDeadMessage)
		t.wantUp = false
	case DPDRestart:
		t.stopDPD()
		t.clearAll(peerDeadMessage)
		t.initiate("DPD restart")
	}
}

// clearAll removes every SA of the tunnel without telling the peer (it is
// not listening) and without changing wantUp.
func (t *tunnel) clearAll(reason string) {
	for len(t.children) > 0 {
		t.deleteChild(t.children[0], reason, false)
	}
	for _, sa := range t.ownSAs() {
		sa.delete(reason, false)
	}
	if t.restart != nil {
		t.restart.Stop()
		t.restart = nil
	}
}
