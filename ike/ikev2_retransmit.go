package ike

import (
	"fmt"
	"time"

	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
)

// IKEv2 reliability (RFC 7296 section 2.1): only the initiator of an
// exchange retransmits, on the engine's schedule (RetransmitTimeout,
// RetransmitBase, RetransmitTries through exchange.Schedule); the
// responder answers a retransmitted request with its cached response
// (exchange.Responses) and never resends on its own. When the tries are
// used up the exchange has failed and onGiveUp runs.

// v2Outbox is an IKEv2 SA's outstanding request.
type v2Outbox struct {
	msgs     [][]byte // the datagrams of the request (one, or its fragments)
	what     string
	mid      uint32
	ref      msgRef // the request for the impairments (impair.go)
	rt       *exchange.Retransmission
	timer    *time.Timer
	onGiveUp func()
}

// schedule is the engine's retransmission schedule.
func (e *Engine) schedule() exchange.Schedule {
	return exchange.Schedule{Timeout: e.cfg.RetransmitTimeout, Base: e.cfg.RetransmitBase, Tries: e.cfg.RetransmitTries}
}

// transmitRequest sends a request now and retransmits it until answered
// (out.stop) or the schedule gives up.
func (sa *ikev2SA) transmitRequest(mid uint32, msgs [][]byte, what string, onGiveUp func()) {
	sa.out.stop()
	sa.out = v2Outbox{msgs: msgs, what: what, mid: mid, onGiveUp: onGiveUp, rt: sa.e.schedule().Start(timeNow())}
	sa.out.ref = sa.sendV2Msgs(sendFirst, msgs, what) // impair.go
	sa.armRetransmit()
}

// armRetransmit starts the timer of the current wait. A timer that fired
// after the answer came (or after the next request replaced it) finds
// another timer in the outbox and does nothing.
func (sa *ikev2SA) armRetransmit() {
	d := max(sa.out.rt.Timer().Sub(timeNow()), 0)
	var tm *time.Timer
	tm = sa.e.afterFunc(d, func() {
		if sa.out.timer == tm {
			sa.retransmitDue()
		}
	})
	sa.out.timer = tm
}

// retransmitDue resends the request or gives up.
func (sa *ikev2SA) retransmitDue() {
	ob := &sa.out
	if ob.msgs == nil || sa.state == v2Deleted {
		return
	}
	if !ob.rt.Next(timeNow()) {
		giveUp := ob.onGiveUp
		tries := ob.rt.Retransmits()
		what := ob.what
		ob.stop()
		if giveUp != nil {
			sa.logger().WithFields(map[string]any{"message": what, "retransmits": tries}).Warn("no answer: giving up")
			giveUp()
		}
		return
	}
	if sa.v2RetransmitSuppressed(ob.ref, ob.rt.Retransmits()) { // impair.go: no-retransmit
		sa.armRetransmit()
		return
	}
	if sa.t != nil && len(ob.msgs) > 0 {
		countV2Retransmit(&sa.t.counters, v2MessageExchange(ob.msgs[0])) // counters.go
	}
	sa.logger().WithFields(map[string]any{"message": ob.what, "msgid": ob.mid, "try": ob.rt.Retransmits()}).Info("no answer, retransmitting")
	sa.sendV2Ref(ob.ref, sendRetransmit, ob.msgs, ob.what+" (retransmission)")
	sa.armRetransmit()
}

// giveUpReason is the tunnel's last error after an unanswered request.
func (sa *ikev2SA) giveUpReason(what string) string {
	return fmt.Sprintf("IKEv2: no answer to %s after %d retransmissions", what, sa.e.cfg.RetransmitTries)
}

// stop forgets the request.
func (ob *v2Outbox) stop() {
	if ob.timer != nil {
		ob.timer.Stop()
	}
	*ob = v2Outbox{}
}

// answerCached answers a retransmitted request with our cached response;
// drop is the reason of a request outside the window (counted).
func (sa *ikev2SA) answerCached(resp [][]byte, what string) {
	if sa.t != nil {
		sa.t.counters.DuplicatesAnswered++
	}
	sa.logger().WithField("message", what).Debug("retransmitted request: sending the cached response")
	sa.sendV2Msgs(sendCached, resp, what+" (again, for a retransmitted request)")
}
