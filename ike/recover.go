package ike

import (
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"runtime/debug"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// The panic safety net. A panic in one handler on the loop (a message, a
// timer, a control call) must not end the gateway: the loop recovers it,
// logs it at error level with the stack (and for a message its exchange,
// cookies and message ID), counts it (EngineCounters.Panics and the drop
// reason "internal-error"), tears the ISAKMP SA the message belonged to
// down, and serves the next closure. It is a net, not a hiding place: the
// package's test helpers fail a test whose engine recovered any panic.

// dropInternalError is the drop reason of a message whose handler panicked.
const dropInternalError = "internal-error"

// countDrop counts a message the engine drops on purpose, by reason
// (EngineCounters.Drops). Loop only.
func (e *Engine) countDrop(reason string) {
	if e.counters.Drops == nil {
		e.counters.Drops = map[string]uint64{}
	}
	e.counters.Drops[reason]++
}

// countersSnapshot copies the engine counters for Status. Loop only.
func (e *Engine) countersSnapshot() EngineCounters {
	c := e.counters
	c.Drops = maps.Clone(e.counters.Drops)
	c.HalfOpen = e.halfOpen
	return c
}

// runGuarded runs one closure of the loop and recovers a panic in it.
func (e *Engine) runGuarded(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			e.counters.Panics++
			e.log.WithFields(logrus.Fields{"panic": fmt.Sprint(r), "stack": string(debug.Stack())}).
				Error("internal error in a timer or control call: recovered, the engine keeps serving")
		}
	}()
	fn()
}

// handleDatagramGuarded is handleDatagram under the safety net: a panic
// is logged with the message's header, and the ISAKMP SA it belongs to is
// torn down.
func (e *Engine) handleDatagramGuarded(s *socket, from netip.AddrPort, b []byte) {
	defer func() {
		if r := recover(); r != nil {
			e.recoveredMessage(r, from, b)
		}
	}()
	e.handleDatagram(s, from, b)
}

func (e *Engine) recoveredMessage(r any, from netip.AddrPort, b []byte) {
	e.counters.Panics++
	e.countDrop(dropInternalError)
	f := logrus.Fields{"peer": from.String(), "len": len(b), "panic": fmt.Sprint(r), "stack": string(debug.Stack())}
	if isIKEv2(b) {
		e.recoveredV2(f, b) // ikev2_dispatch.go
		return
	}
	h, err := isakmp.DecodeHeader(b)
	if err == nil {
		f["exchange"], f["msgid"] = h.Exchange.String(), fmt.Sprintf("%08x", h.MessageID)
		f["icookie"], f["rcookie"] = hex.EncodeToString(h.ICookie[:]), hex.EncodeToString(h.RCookie[:])
	}
	var sa *ikeSA
	if err == nil {
		sa = e.sas[h.ICookie]
	}
	if sa != nil && sa.t != nil {
		f["tunnel"] = sa.t.cfg.Name
	}
	e.log.WithFields(f).Error("internal error while handling an IKE message: recovered, tearing its ISAKMP SA down; the engine keeps serving")
	if sa != nil {
		e.tearDown(sa)
	}
}

// tearDown deletes an ISAKMP SA after a panic in its handler (DELETE sent
// if it was established). Should that panic too, the SA is only forgotten.
func (e *Engine) tearDown(sa *ikeSA) {
	defer func() {
		if r := recover(); r != nil {
			e.counters.Panics++
			e.log.WithField("panic", fmt.Sprint(r)).Error("tearing the ISAKMP SA down failed too: forgetting it")
			sa.state = stateDeleted
			e.removeSA(sa)
			if sa.t != nil && sa.t.sa == sa {
				sa.t.sa = nil
			}
		}
	}()
	sa.fail("internal error while handling a message of this ISAKMP SA", true)
}
