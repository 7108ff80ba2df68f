package ike

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// outbox holds the last message of an exchange that expects an answer, and
// retransmits it with exponential backoff (timeout * base^n, strongSwan's
// scheme) until answered or the tries run out. It also keeps the last reply
// we sent so that a retransmitted request gets the cached reply.
type outbox struct {
	msg      []byte
	local    netip.AddrPort
	remote   netip.AddrPort
	what     string
	ref      msgRef // which message, for impairments
	tries    int
	counters *Counters // the owning tunnel's counters (Retransmits)
	timer    *time.Timer
	onGiveUp func()
}

// transmit sends msg now and, if expectReply, arms retransmission.
func (e *Engine) transmit(ob *outbox, counters *Counters, ref msgRef, local, remote netip.AddrPort, msg []byte, what string, expectReply bool, onGiveUp func()) {
	ob.stop()
	ob.msg, ob.local, ob.remote, ob.what, ob.tries, ob.onGiveUp = msg, local, remote, what, 0, onGiveUp
	ob.counters, ob.ref = counters, ref
	e.sendOut(ref, sendFirst, local, remote, msg, what)
	if expectReply {
		ob.arm(e)
	}
}

func (e *Engine) sendLogged(local, remote netip.AddrPort, msg []byte, what string) {
	if err := e.send(local, remote, msg); err != nil {
		e.log.WithError(err).WithField("message", what).Warn("send failed")
	}
}

// arm starts the timer of the next retransmission. A timer that fired
// posts to the loop; if the answer (answered, stop) or the next message
// (transmit) came before that post runs, the timer it belongs to is no
// longer the outbox's and the post does nothing: it must not retransmit
// an answered message, nor the next message at once, nor arm a second
// timer.
func (ob *outbox) arm(e *Engine) {
	d := time.Duration(float64(e.cfg.RetransmitTimeout) * math.Pow(e.cfg.RetransmitBase, float64(ob.tries)))
	var tm *time.Timer
	tm = e.afterFunc(d, func() {
		if ob.timer == tm {
			ob.expired(e)
		}
	})
	ob.timer = tm
}

// retransmitSpan is how long a peer with our retransmission settings goes
// on retransmitting one message before it gives up: timeout x (1 + base +
// ... + base^tries). With the defaults (strongSwan's: 4 s, 1.8, 5 tries)
// about 165 s, longer than Libreswan's 60 s retransmit-timeout. A finished
// quick mode is kept that long to answer a retransmitted QM2 with its QM3.
func (e *Engine) retransmitSpan() time.Duration {
	d, step := time.Duration(0), float64(e.cfg.RetransmitTimeout)
	for i := 0; i <= e.cfg.RetransmitTries; i++ {
		d += time.Duration(step)
		step *= e.cfg.RetransmitBase
	}
	return d
}

// expired is called when no answer came in time.
func (ob *outbox) expired(e *Engine) {
	if ob.msg == nil {
		return
	}
	if ob.tries >= e.cfg.RetransmitTries {
		giveUp := ob.onGiveUp
		ob.stop()
		if giveUp != nil {
			giveUp()
		}
		return
	}
	ob.tries++
	if imp, ok := e.findImpair(ImpairNoRetransmit, ob.ref); ok {
		// Keep the schedule, so the exchange gives up when it would have.
		e.impaired(imp, ob.ref, fmt.Sprintf("retransmission %d suppressed", ob.tries))
		ob.arm(e)
		return
	}
	// The fields (tunnel, peer, cookies, message ID) are built only here:
	// kept with every message sent, they cost ~800 bytes per tunnel.
	e.messageLogger(ob.ref, ob.remote, ob.msg).WithField("try", ob.tries).Info("no answer, retransmitting")
	if ob.counters != nil {
		ob.counters.Retransmits++
	}
	e.sendOut(ob.ref, sendRetransmit, ob.local, ob.remote, ob.msg, ob.what)
	ob.arm(e)
}

// answered stops retransmission but keeps the message for duplicates.
func (ob *outbox) answered() {
	if ob.timer != nil {
		ob.timer.Stop()
		ob.timer = nil
	}
	ob.onGiveUp = nil
}

// stop forgets the message entirely.
func (ob *outbox) stop() {
	ob.answered()
	ob.msg = nil
}

// resend answers a duplicate request with the cached message.
func (e *Engine) resend(ob *outbox) bool {
	if ob.msg == nil {
		return false
	}
	e.sendOut(ob.ref, sendCached, ob.local, ob.remote, ob.msg, ob.what+" (again, for a duplicate)")
	return true
}

// messageLogger returns a logger with the fields that identify one of our
// messages: tunnel, peer, message name, and from its ISAKMP header the
// exchange, both cookies and (phase 2, informational) the message ID.
func (e *Engine) messageLogger(ref msgRef, remote netip.AddrPort, msg []byte) logrus.FieldLogger {
	f := logrus.Fields{"peer": remote.String(), "message": ref.what}
	if ref.tunnel != "" {
		f["tunnel"] = ref.tunnel
	}
	if h, err := isakmp.DecodeHeader(msg); err == nil {
		f["icookie"], f["rcookie"] = hex.EncodeToString(h.ICookie[:]), hex.EncodeToString(h.RCookie[:])
		f["exchange"] = h.Exchange.String()
		if h.MessageID != 0 {
			f["msgid"] = fmt.Sprintf("%08x", h.MessageID)
		}
	}
	return e.log.WithFields(f)
}

func digest(b []byte) [32]byte { return sha256.Sum256(b) }
