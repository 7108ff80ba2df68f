package ike

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/dpd"
	"github.com/vpnlab/vpnlab/ike/auth"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

var timeNow = time.Now

// tunnel owns one configured peering: its current ISAKMP SA, the IPsec SA
// pairs negotiated on it, and the AWS-style states reported for it.
type tunnel struct {
	e    *Engine
	cfg  *TunnelConfig
	log  logrus.FieldLogger
	auth auth.Authenticator // phase 1 authentication (the pre-shared key)

	sa       *ikeSA     // current ISAKMP SA (negotiating or established)
	v2       *ikev2SA   // current IKEv2 SA (negotiating or established)
	v2SAs    []*ikev2SA // all of its IKEv2 SAs, also in Engine.sas2
	ikeSAs   []*ikeSA   // all of its ISAKMP SAs, also in Engine.sas (saindex.go)
	children []*childSA // installed pairs, oldest first
	v2x      *v2TunnelX // IKEv2 requests, rekeys, collisions, liveness (ikev2_queue.go)

	phase1State string
	phase2State string
	lastChange  time.Time
	lastError   string
	counters    Counters
	wantUp      bool // startup action start or an explicit initiate: keep trying
	restart     *time.Timer
	failures    int // phase 1 failures in a row (retrybackoff.go)

	dpd      *dpd.Monitor // while phase 1 is up and both sides do DPD
	dpdTimer *time.Timer
	// dpdDeferred: a dead verdict was put off once because the loop had
	// queued input (deadpeer.go).
	dpdDeferred bool
	keepalive   *time.Timer // NAT-keepalives while behind a NAT

	upDown           string // UP or DOWN (AWS VgwTelemetry)
	lastStatusChange time.Time
	retiredIn        uint64 // bytes of deleted pairs (TunnelDataIn/Out)
	retiredOut       uint64
	retiredPktIn     uint64            // packets of deleted pairs
	retiredPktOut    uint64            //
	retiredDrops     map[string]uint64 // data-path drops of deleted pairs, by reason
}

// childSA is one installed IPsec SA pair.
type childSA struct {
	pair        ChildSAPair
	proposal    Phase2Proposal
	initiator   bool
	established time.Time
	expires     time.Time
	rekeyAt     time.Time
	rekeyed     bool     // a newer pair replaces it
	staged      bool     // installed inbound only; outbound still on the older pair (qmstaging.go)
	ikev2       *ikev2SA // the IKEv2 SA that created the pair; nil for IKEv1
	timers      struct{ rekey, expire, mbb, stage *time.Timer }
}

func newTunnel(e *Engine, cfg *TunnelConfig) *tunnel {
	now := timeNow()
	return &tunnel{e: e, cfg: cfg, log: e.log.WithField("tunnel", cfg.Name), auth: auth.NewPSK(cfg.PSK),
		phase1State: "Down", phase2State: "Down", lastChange: now, upDown: "DOWN", lastStatusChange: now}
}

func (t *tunnel) setPhase1State(s string) {
	if t.phase1State != s {
		t.phase1State, t.lastChange = s, timeNow()
		t.e.emit(Event{Tunnel: t.cfg.Name, Type: "phase1-state", Detail: map[string]string{"state": s}})
	}
}

func (t *tunnel) setPhase2State(s string) {
	if t.phase2State != s {
		t.phase2State, t.lastChange = s, timeNow()
		t.e.emit(Event{Tunnel: t.cfg.Name, Type: "phase2-state", Detail: map[string]string{"state": s}})
	}
	t.updateUpDown()
}

// updateUpDown keeps AWS's UP/DOWN status: UP while a pair is installed.
func (t *tunnel) updateUpDown() {
	up := "DOWN"
	if len(t.children) > 0 {
		up = "UP"
	}
	if up != t.upDown {
		t.upDown, t.lastStatusChange = up, timeNow()
		t.e.emit(Event{Tunnel: t.cfg.Name, Type: "tunnel-status", Detail: map[string]string{"status": up}})
	}
}

func (t *tunnel) setError(msg string) {
	t.lastError = msg
	t.log.WithField("error", msg).Warn("tunnel error")
	t.e.emit(Event{Tunnel: t.cfg.Name, Type: "error", Detail: map[string]string{"message": msg}})
}

func (t *tunnel) newInitiatorSA(ex ExchangeMode) *ikeSA {
	sa := &ikeSA{
		e: t.e, t: t, initiator: true, exchange: ex, iCookie: randomCookie(),
		local:   netip.AddrPortFrom(t.cfg.LocalAddr, t.e.cfg.Ports.IKE),
		remote:  netip.AddrPortFrom(t.cfg.RemoteAddr, t.cfg.RemotePorts.IKE),
		created: timeNow(), quick: map[uint32]*quickMode{}, ivs: map[uint32][]byte{},
	}
	t.e.addSA(sa) // saindex.go
	if t.sa == nil || t.sa.state != stateEstablished {
		t.sa = sa
		t.setPhase1State("Negotiating")
	} else {
		t.setPhase1State("Rekeying")
	}
	return sa
}

// initiate brings the tunnel up: phase 1 if needed, then phase 2.
func (t *tunnel) initiate(reason string) {
	t.wantUp = true
	if t.restart != nil {
		t.restart.Stop()
		t.restart = nil
	}
	if t.cfg.InitiatorVersion() == policy.IKEv2 {
		t.initiateV2(reason) // ikev2_sa_init.go
		return
	}
	if t.sa != nil && t.sa.state == stateEstablished {
		if len(t.children) == 0 && !t.quickPending() {
			t.startQuickMode(nil)
		}
		return
	}
	if t.sa != nil && t.sa.state != stateDeleted {
		return // phase 1 under way
	}
	t.log.WithFields(logrus.Fields{"reason": reason, "exchange": t.cfg.Phase1.Exchange.String(), "peer": t.cfg.RemoteAddr.String()}).Info("initiating phase 1")
	if t.cfg.Phase1.Exchange == AggressiveMode {
		t.startAggressiveMode()
	} else {
		t.startMainMode()
	}
}

func (t *tunnel) quickPending() bool {
	if t.sa == nil {
		return false
	}
	for _, qm := range t.sa.quick {
		if qm.state == qmQM1Sent || qm.state == qmQM2Sent {
			return true
		}
	}
	return false
}

// terminate deletes everything and tells the peer.
func (t *tunnel) terminate(reason string) {
	t.wantUp = false
	t.stopDPD()
	t.stopKeepalive()
	if t.restart != nil {
		t.restart.Stop()
		t.restart = nil
	}
	for len(t.children) > 0 {
		t.deleteChild(t.children[0], reason, true)
	}
	for _, sa := range t.ownSAs() {
		sa.delete(reason, true)
	}
	for _, sa := range append([]*ikev2SA(nil), t.v2SAs...) {
		sa.delete(reason, true)
	}
}

// establish marks phase 1 complete.
func (sa *ikeSA) establish(initialContact bool) {
	e, t := sa.e, sa.t
	// A peer that says INITIAL-CONTACT while we hold nothing else of it
	// (DPD or a DELETE ended the rest) restarted: its BGP session on our
	// side can only be stale. With other state still here it may be a
	// collision or a reauthentication of a live peer (strongSwan sends
	// INITIAL-CONTACT then too): no restart is reported.
	peerRestarted := initialContact && !t.hasOtherState(sa)
	sa.state = stateEstablished
	sa.established = timeNow()
	sa.expires = sa.established.Add(sa.lifetime)
	e.releaseHalfOpen(sa)
	if sa.timers.halfOpen != nil {
		sa.timers.halfOpen.Stop()
	}
	sa.forgetNegotiation() // forget.go
	t.counters.Phase1Established++
	modeCounters(&t.counters.Exchanges, sa.exchange).Completed++
	old := t.sa
	t.sa = sa
	t.lastError = ""
	t.setPhase1State("Established")
	t.log.WithFields(logrus.Fields{"role": sa.role(), "exchange": sa.exchange.String(), "proposal": sa.chosen.String(),
		"lifetime": sa.lifetime.String(), "nat_detected": sa.natDetected(), "floated": sa.floated,
		"icookie": hex.EncodeToString(sa.iCookie[:]), "rcookie": hex.EncodeToString(sa.rCookie[:])}).Info("phase 1 established (ISAKMP SA)")
	detail := map[string]string{
		"role": sa.role(), "proposal": sa.chosen.String(), "exchange": sa.exchange.String(), "nat_detected": boolStr(sa.natDetected())}
	if initialContact {
		detail["initial_contact"] = "true"
	}
	if peerRestarted {
		// The gateway starts the tunnel's BGP session over
		// (bgp.Speaker.PeerRestarted).
		detail["peer_restarted"] = "true"
	}
	e.emit(Event{Tunnel: t.cfg.Name, Type: "phase1-up", Detail: detail})
	t.failures = 0
	// Phase 1 lifetime: the initiator rekeys (a new main mode) before
	// expiry; at expiry the SA is deleted. IPsec SAs are independent of it.
	if sa.initiator {
		if at := rekeyDelay(sa.lifetime, t.cfg.RekeyMargin, t.cfg.RekeyFuzz); at > 0 {
			sa.timers.rekey = e.afterFunc(at, func() {
				if t.sa == sa && sa.state == stateEstablished {
					t.log.Info("phase 1 lifetime almost over: rekeying (new ISAKMP SA)")
					t.startPhase1Rekey()
				}
			})
		}
	}
	sa.timers.expire = e.afterFunc(sa.lifetime, func() {
		if sa.state == stateEstablished {
			sa.logger().Info("phase 1 lifetime expired")
			sa.delete("phase 1 lifetime expired", true)
		}
	})
	if old != nil && old != sa && old.state == stateEstablished {
		if sa.collidesWith(old) { // phase1collision.go
			// The peer's INITIAL-CONTACT was sent before it had the
			// other SA: the state it would wipe is from the same
			// peer, negotiated just now.
			initialContact = false
			if t.settleCollision(sa, old) == old {
				return // sa is deleted again; old carries on as it did
			}
		} else {
			// Phase 1 rekey: retire the old ISAKMP SA.
			t.counters.Phase1Rekeys++
			old.delete("replaced by a new ISAKMP SA", true)
		}
	}
	if initialContact {
		t.initialContact(sa)
	}
	t.startDPD(sa)
	t.startKeepalive(sa)
	if sa.initiator && t.wantUp && len(t.children) == 0 {
		if sa.exchange == AggressiveMode {
			sa.firstQuickModeAfterAM3() // aggressive.go
		} else {
			t.startQuickMode(nil)
		}
	}
}

func (t *tunnel) startPhase1Rekey() {
	if t.cfg.Phase1.Exchange == AggressiveMode {
		t.startAggressiveMode()
	} else {
		t.startMainMode()
	}
}

// initialContact drops state of earlier sessions with this peer (the peer
// rebooted or reconnected: RFC 2407 section 4.6.3.3).
// hasOtherState reports whether the tunnel has an established ISAKMP SA
// other than current, or any IPsec SA.
func (t *tunnel) hasOtherState(current *ikeSA) bool {
	if len(t.children) > 0 {
		return true
	}
	for _, sa := range t.ikeSAs {
		if sa != current && sa.state == stateEstablished {
			return true
		}
	}
	return false
}

func (t *tunnel) initialContact(current *ikeSA) {
	for _, sa := range t.ownSAs() {
		if sa != current && sa.state == stateEstablished {
			sa.logger().Info("INITIAL-CONTACT: deleting the older ISAKMP SA of this peer")
			sa.delete("INITIAL-CONTACT from the peer", false)
		}
	}
	for _, c := range append([]*childSA(nil), t.children...) {
		t.deleteChild(c, "INITIAL-CONTACT from the peer", false)
	}
}

// fail ends a negotiation that did not complete.
func (sa *ikeSA) fail(reason string, tellPeer bool) {
	if sa.t != nil {
		sa.t.setError(reason)
		if sa.state != stateEstablished && sa.state != stateDeleted {
			modeCounters(&sa.t.counters.Exchanges, sa.exchange).Failed++
		}
	}
	sa.delete(reason, tellPeer)
}

// delete removes the ISAKMP SA.
func (sa *ikeSA) delete(reason string, tellPeer bool) {
	if sa.state == stateDeleted {
		return
	}
	if tellPeer && sa.state == stateEstablished {
		sa.sendDelete(isakmp.ProtoISAKMP, sa.cookiesSPI())
	}
	wasUp := sa.state == stateEstablished
	sa.state = stateDeleted
	sa.out.stop()
	for _, qm := range sa.quick {
		qm.out.stop()
		if qm.forget != nil {
			qm.forget.Stop()
		}
	}
	// A quick mode still negotiating cannot finish without its ISAKMP SA.
	for _, qm := range sa.quick {
		qm.abandon("phase 1 down: " + reason)
	}
	for _, tm := range []*time.Timer{sa.timers.halfOpen, sa.timers.rekey, sa.timers.expire} {
		if tm != nil {
			tm.Stop()
		}
	}
	sa.e.releaseHalfOpen(sa)
	sa.e.removeSA(sa)
	t := sa.t
	if t == nil || t.sa != sa {
		return
	}
	t.sa = nil
	// Another ISAKMP SA of this tunnel may still be usable (rekey overlap).
	for _, other := range t.ikeSAs {
		if other.state == stateEstablished {
			t.sa = other
			return
		}
	}
	t.setPhase1State("Down")
	t.stopDPD()
	t.stopKeepalive()
	f := t.log.WithField("reason", reason)
	if wasUp {
		f.Info("phase 1 down")
	} else {
		f.Warn("phase 1 failed")
	}
	sa.e.emit(Event{Tunnel: t.cfg.Name, Type: "phase1-down", Detail: map[string]string{"reason": reason}})
	if t.wantUp {
		t.scheduleRetry(sa.e, wasUp) // retrybackoff.go
	}
}

// rekeyDelay returns when to rekey an SA of the given lifetime: margin plus a
// random share (fuzz percent) of the margin before expiry (AWS: rekey margin
// time and rekey fuzz; strongSwan's margintime/rekeyfuzz).
func rekeyDelay(life, margin time.Duration, fuzz int) time.Duration {
	extra := time.Duration(0)
	if fuzz > 0 && margin > 0 {
		extra = time.Duration(rand.Int64N(int64(margin)*int64(fuzz)/100 + 1))
	}
	d := life - margin - extra
	if d <= 0 {
		d = life / 2
	}
	return d
}

// onChildUp records a new installed pair and schedules its rekey and expiry.
func (t *tunnel) onChildUp(qm *quickMode, pair ChildSAPair) {
	c := &childSA{pair: pair, proposal: qm.chosen, initiator: qm.initiator, established: timeNow(), staged: qm.outboundStaged}
	t.counters.Exchanges.Quick.Completed++
	t.addChild(c, qm.replaces)
}

// addChild records a new installed pair of either IKE version, schedules
// its rekey and expiry, and retires the pairs it replaces.
func (t *tunnel) addChild(c *childSA, replaces *childSA) {
	e := t.e
	pair := c.pair
	c.expires = c.established.Add(pair.Lifetime)
	t.children = append(t.children, c)
	if c.staged {
		t.watchStaged(c) // qmstaging.go
	}
	t.counters.Phase2Established++
	t.lastError = ""
	t.setPhase2State("Established")
	t.log.WithFields(logrus.Fields{"proposal": c.proposal.String(), "mode": pair.Mode.String(), "udp_encap": pair.UDPEncap,
		"spi_in": fmt.Sprintf("%08x", pair.Inbound.SPI), "spi_out": fmt.Sprintf("%08x", pair.Outbound.SPI),
		"local_ts": pair.LocalTS.String(), "remote_ts": pair.RemoteTS.String(), "lifetime": pair.Lifetime.String()}).Info("phase 2 established (IPsec SA pair installed)")
	e.emit(Event{Tunnel: t.cfg.Name, Type: "phase2-up", Detail: map[string]string{
		"proposal": c.proposal.String(), "spi_in": fmt.Sprintf("%08x", pair.Inbound.SPI), "spi_out": fmt.Sprintf("%08x", pair.Outbound.SPI)}})
	// The initiator of a pair rekeys it at margin+fuzz before expiry; the
	// responder only as a late safety net (half the margin), so that the two
	// sides do not usually rekey at once.
	at := rekeyDelay(pair.Lifetime, t.cfg.RekeyMargin, t.cfg.RekeyFuzz)
	if !c.initiator {
		at = pair.Lifetime - t.cfg.RekeyMargin/2
	}
	if t.cfg.RekeyMargin > 0 && at > 0 {
		c.rekeyAt = c.established.Add(at)
		c.timers.rekey = e.afterFunc(at, func() { t.rekeyChild(c, "lifetime") })
	}
	c.timers.expire = e.afterFunc(pair.Lifetime, func() {
		t.log.WithField("spi_in", fmt.Sprintf("%08x", pair.Inbound.SPI)).Info("IPsec SA lifetime expired")
		t.deleteChild(c, "lifetime expired", true)
	})
	rekey := false
	if replaces != nil {
		replaces.rekeyed = true
		t.makeBeforeBreak(replaces, c)
		rekey = true
	}
	// A new pair of the same negotiation direction also supersedes older
	// pairs the peer rekeyed (responder side of a rekey).
	for _, old := range t.children {
		if old != c && !old.rekeyed && old.pair.LocalTS == c.pair.LocalTS && old.pair.RemoteTS == c.pair.RemoteTS {
			old.rekeyed = true
			t.makeBeforeBreak(old, c)
			rekey = true
		}
	}
	if rekey {
		t.counters.Phase2Rekeys++
	}
	t.keepOnePair(c)
}

// rekeyChild negotiates a replacement for c.
func (t *tunnel) rekeyChild(c *childSA, why string) {
	if c.rekeyed || !t.hasChild(c) {
		return
	}
	if c.ikev2 != nil {
		t.rekeyChildV2(c, why) // ikev2_child.go
		return
	}
	if t.sa == nil || t.sa.state != stateEstablished {
		if t.wantUp {
			t.initiate("phase 2 rekey needs phase 1")
		}
		return
	}
	t.log.WithField("why", why).WithField("spi_in", fmt.Sprintf("%08x", c.pair.Inbound.SPI)).Info("rekeying phase 2")
	t.setPhase2State("Rekeying")
	t.startQuickMode(c)
}

// makeBeforeBreak keeps old until the new pair has carried inbound traffic
// (or old expires), then deletes it and tells the peer.
func (t *tunnel) makeBeforeBreak(old, nw *childSA) {
	var check func()
	check = func() {
		if !t.hasChild(old) {
			return
		}
		if !t.hasChild(nw) || !t.e.dp.LastInbound(nw.pair.Inbound.Protocol, nw.pair.Inbound.SPI).IsZero() {
			t.log.WithField("spi_in", fmt.Sprintf("%08x", old.pair.Inbound.SPI)).Info("new IPsec SA carries traffic: deleting the old one")
			t.deleteChild(old, "replaced by rekey", true)
			return
		}
		old.timers.mbb = t.e.afterFunc(time.Second, check)
	}
	old.timers.mbb = t.e.afterFunc(100*time.Millisecond, check)
}

func (t *tunnel) hasChild(c *childSA) bool {
	for _, x := range t.children {
		if x == c {
			return true
		}
	}
	return false
}

// deleteChild removes a pair from the data path and optionally tells the peer.
func (t *tunnel) deleteChild(c *childSA, reason string, tellPeer bool) {
	t.activateBeforeDelete(c) // qmstaging.go
	for i, x := range t.children {
		if x == c {
			t.children = append(t.children[:i], t.children[i+1:]...)
			break
		}
	}
	for _, tm := range []*time.Timer{c.timers.rekey, c.timers.expire, c.timers.mbb, c.timers.stage} {
		if tm != nil {
			tm.Stop()
		}
	}
	if dc, ok := t.e.dp.(DataPathCounters); ok {
		if n, ok := dc.SACounters(c.pair.Inbound.Protocol, c.pair.Inbound.SPI); ok {
			t.retireCounters(n)
		}
	}
	_ = t.e.dp.Delete(c.pair.Inbound.Protocol, c.pair.Inbound.SPI)
	if tellPeer && c.ikev2 != nil {
		t.deleteChildTellV2(c) // ikev2_informational.go
	} else if tellPeer && t.sa != nil && t.sa.state == stateEstablished {
		t.sa.sendDelete(c.pair.Inbound.Protocol, spiBytes(c.pair.Inbound.SPI))
	}
	t.log.WithFields(logrus.Fields{"reason": reason, "spi_in": fmt.Sprintf("%08x", c.pair.Inbound.SPI)}).Info("IPsec SA pair deleted")
	t.e.emit(Event{Tunnel: t.cfg.Name, Type: "phase2-down", Detail: map[string]string{"reason": reason, "spi_in": fmt.Sprintf("%08x", c.pair.Inbound.SPI)}})
	if len(t.children) == 0 && !t.quickPending() {
		t.setPhase2State("Down")
	}
	t.updateUpDown()
}

func (t *tunnel) deleteChildByOutbound(proto uint8, spi uint32, reason string) bool {
	for _, c := range t.children {
		if c.pair.Outbound.Protocol == proto && c.pair.Outbound.SPI == spi {
			t.deleteChild(c, reason, false)
			return true
		}
	}
	return false
}

// abandon ends a quick mode that is still negotiating when its ISAKMP SA
// goes away (DELETE, DPD, expiry, replacement): without it the tunnel
// stayed "Negotiating" and no phase 2 event said otherwise. It emits
// phase2-failed and sets the phase 2 state (Down, or Established while
// pairs stay installed; IKEv1 pairs outlive their ISAKMP SA), but leaves
// the tunnel's last error to the phase 1 reason.
func (qm *quickMode) abandon(reason string) {
	if qm.state != qmQM1Sent && qm.state != qmQM2Sent {
		return
	}
	qm.state = qmFailed
	qm.out.stop()
	qm.logger().WithField("reason", reason).Info("phase 2 negotiation abandoned")
	proto := qm.chosen.Protocol
	if proto == 0 && len(qm.offered) > 0 {
		proto = qm.offered[0].Protocol
	}
	if qm.spiIn != 0 {
		_ = qm.sa.e.dp.Delete(proto, qm.spiIn)
	}
	delete(qm.sa.quick, qm.mid)
	t := qm.sa.t
	if t == nil {
		return
	}
	t.e.emit(Event{Tunnel: t.cfg.Name, Type: "phase2-failed", Detail: map[string]string{"reason": reason}})
	if t.quickPending() {
		return
	}
	if len(t.children) == 0 {
		t.setPhase2State("Down")
	} else {
		t.setPhase2State("Established")
	}
}

func (t *tunnel) onChildFailed(qm *quickMode, reason string) {
	t.counters.Exchanges.Quick.Failed++
	t.setError("phase 2: " + reason)
	t.e.emit(Event{Tunnel: t.cfg.Name, Type: "phase2-failed", Detail: map[string]string{"reason": reason}})
	if len(t.children) == 0 {
		t.setPhase2State("Down")
	} else {
		t.setPhase2State("Established")
	}
}

// rekey forces a rekey of phase 1 or 2.
func (t *tunnel) rekey(phase int, reason string) error {
	if v2 := t.v2; v2 != nil && v2.state == v2Established && (t.sa == nil || t.sa.state != stateEstablished) {
		return t.rekeyV2(phase, reason) // ikev2_child.go
	}
	if t.sa == nil || t.sa.state != stateEstablished {
		return fmt.Errorf("tunnel %s: phase 1 is not established", t.cfg.Name)
	}
	if phase == 1 {
		t.log.WithField("reason", reason).Info("rekeying phase 1")
		t.startPhase1Rekey()
		return nil
	}
	if len(t.children) == 0 {
		t.startQuickMode(nil)
		return nil
	}
	t.rekeyChild(t.children[len(t.children)-1], reason)
	return nil
}
