package ike

// Impairments: package impair has the spec syntax (imported here as
// impairspec: the battery tests have a func impair); the engine applies
// them to the messages it sends (sendOut, impairPayloads, suppressDelete).

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	impairspec "github.com/vpnlab/vpnlab/ike/impair"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// The engine's view of the impairment spec, which lives in package impair:
// aliases for the engine's code and tests. Code outside ike uses impair.
type (
	ImpairVerb     = impairspec.Verb
	ImpairExchange = impairspec.Exchange
	Impairment     = impairspec.Spec
)

// The verbs and exchanges under the engine's names.
const (
	ImpairDrop          = impairspec.Drop
	ImpairDropAll       = impairspec.DropAll
	ImpairDuplicate     = impairspec.Duplicate
	ImpairReplay        = impairspec.Replay
	ImpairCorruptHash   = impairspec.CorruptHash
	ImpairOmitHash      = impairspec.OmitHash
	ImpairOmitKE        = impairspec.OmitKE
	ImpairNoRetransmit  = impairspec.NoRetransmit
	ImpairNoDelete      = impairspec.NoDelete
	ImpairSendTwice     = impairspec.SendTwice
	ImpairNone          = impairspec.None
	ImpairMain          = impairspec.Main
	ImpairAggressive    = impairspec.Aggressive
	ImpairQuick         = impairspec.Quick
	ImpairInformational = impairspec.Informational
)

// ParseImpairment parses a spec (impair.Parse).
var ParseImpairment = impairspec.Parse

// replayDelay is how long after the first transmission a replay goes out.
const replayDelay = time.Second

// Impair adds an impairment (a "none" impairment clears: every impairment,
// or with a tunnel only those of that tunnel). Adding one that is already
// set changes nothing. A tunnel name the engine does not know is an error
// wrapping ErrUnknownTunnel. Safe from any goroutine; it waits for the
// engine loop, so call it once Run has started (startup impairments go in
// Config.Impairments).
func (e *Engine) Impair(imp Impairment) error {
	if err := e.checkImpairment(imp); err != nil {
		return err
	}
	return e.call(func() { e.addImpairment(imp, "control request") })
}

// Impairments returns the active impairments as canonical specs, in the
// order they were added (nil when the engine is not running).
func (e *Engine) Impairments() []string {
	out := []string{}
	if err := e.call(func() {
		for _, imp := range e.impairs {
			out = append(out, imp.String())
		}
	}); err != nil {
		return nil
	}
	return out
}

func (e *Engine) checkImpairment(imp Impairment) error {
	if err := imp.Validate(); err != nil {
		return fmt.Errorf("impairment %q: %w", imp.String(), err)
	}
	if imp.Tunnel != "" {
		if _, ok := e.byName[imp.Tunnel]; !ok { // byName never changes after NewEngine
			return fmt.Errorf("impairment %q: %w %q", imp.String(), ErrUnknownTunnel, imp.Tunnel)
		}
	}
	return nil
}

// addImpairment runs on the loop (or in NewEngine, before it).
func (e *Engine) addImpairment(imp Impairment, why string) {
	log := e.log.WithFields(logrus.Fields{"impairment": imp.String(), "source": why})
	if imp.Verb == ImpairNone {
		kept := e.impairs[:0]
		for _, x := range e.impairs {
			if imp.Tunnel != "" && x.Tunnel != imp.Tunnel {
				kept = append(kept, x)
			}
		}
		log.WithField("cleared", len(e.impairs)-len(kept)).Warn("impairments cleared")
		e.impairs = kept
		return
	}
	for _, x := range e.impairs {
		if x == imp {
			return
		}
	}
	e.impairs = append(e.impairs, imp)
	log.Warn("impairment set: this gateway now misbehaves on purpose")
}

// msgRef identifies one message we send, for matching impairments.
type msgRef struct {
	tunnel string
	ex     ImpairExchange // "" for messages of no impairable exchange
	n      int
	what   string // e.g. "MM3", "Informational DELETE"
}

// msgRef maps the name a phase 1 or quick mode message is sent under
// ("MM1".."MM6", "AM1".."AM3", "QM1".."QM3") to its exchange and number.
func (sa *ikeSA) msgRef(what string) msgRef {
	r := msgRef{tunnel: sa.tunnelName(), what: what}
	if len(what) == 3 && what[2] >= '1' && what[2] <= '6' {
		switch what[:2] {
		case "MM":
			r.ex = ImpairMain
		case "AM":
			r.ex = ImpairAggressive
		case "QM":
			r.ex = ImpairQuick
		}
		if r.ex != "" {
			r.n = int(what[2] - '0')
		}
	}
	return r
}

// nextInfoRef counts an informational message this SA is about to send.
func (sa *ikeSA) nextInfoRef(what string) msgRef {
	sa.infoSent++
	return msgRef{tunnel: sa.tunnelName(), ex: ImpairInformational, n: sa.infoSent, what: what}
}

// findImpair returns the first active impairment with verb v that applies to
// the message.
func (e *Engine) findImpair(v ImpairVerb, r msgRef) (Impairment, bool) {
	for _, imp := range e.impairs {
		if imp.Verb != v || (imp.Tunnel != "" && imp.Tunnel != r.tunnel) {
			continue
		}
		if imp.Exchange != "" && imp.Exchange != r.ex {
			continue
		}
		if imp.Message != 0 && imp.Message != r.n {
			continue
		}
		return imp, true
	}
	return Impairment{}, false
}

// impaired reports that an impairment took effect.
func (e *Engine) impaired(imp Impairment, r msgRef, effect string) {
	f := logrus.Fields{"impairment": imp.String(), "what": r.what, "effect": effect}
	d := map[string]string{"impairment": imp.String(), "what": r.what, "effect": effect}
	if r.tunnel != "" {
		f["tunnel"] = r.tunnel
	}
	if r.ex != "" {
		f["exchange"], d["exchange"] = string(r.ex), string(r.ex)
	}
	if r.n != 0 {
		f["message"], d["message"] = r.n, strconv.Itoa(r.n)
	}
	e.log.WithFields(f).Warn("impairment: " + r.what + " " + effect)
	e.emit(Event{Tunnel: r.tunnel, Type: "impaired", Detail: d})
}

// sendKind tells a message's first transmission from its repetitions.
type sendKind int

const (
	sendFirst      sendKind = iota // built and sent for the first time
	sendRetransmit                 // retransmitted after a timeout
	sendCached                     // the cached copy, answering a duplicate of the peer's message
)

// sendOut sends one of our messages with the impairments that apply.
func (e *Engine) sendOut(r msgRef, kind sendKind, local, remote netip.AddrPort, msg []byte, what string) {
	if len(e.impairs) == 0 {
		e.countSent(r, kind, 1)
		e.sendLogged(local, remote, msg, what)
		return
	}
	if imp, ok := e.findImpair(ImpairDropAll, r); ok {
		e.impaired(imp, r, "dropped ("+kindName(kind)+")")
		return
	}
	if kind == sendFirst {
		if imp, ok := e.findImpair(ImpairDrop, r); ok {
			e.impaired(imp, r, "dropped (first transmission)")
			return
		}
	}
	copies := 1
	if kind == sendFirst {
		if imp, ok := e.findImpair(ImpairDuplicate, r); ok {
			e.impaired(imp, r, "sent twice back to back")
			copies++
		}
	}
	if imp, ok := e.findImpair(ImpairSendTwice, r); ok {
		e.impaired(imp, r, "sent twice ("+kindName(kind)+")")
		copies++
	}
	e.countSent(r, kind, copies)
	for i := 0; i < copies; i++ {
		e.sendLogged(local, remote, msg, what)
	}
	if kind == sendFirst {
		if imp, ok := e.findImpair(ImpairReplay, r); ok {
			stale := append([]byte(nil), msg...)
			e.afterFunc(replayDelay, func() {
				e.impaired(imp, r, "replayed "+replayDelay.String()+" after its first transmission")
				e.countSent(r, sendCached, 1)
				e.sendLogged(local, remote, stale, what+" (replayed)")
			})
		}
	}
}

func kindName(k sendKind) string {
	switch k {
	case sendRetransmit:
		return "retransmission"
	case sendCached:
		return "cached reply to a duplicate"
	}
	return "first transmission"
}

// impairPayloads applies omit-ke, omit-hash and corrupt-hash to the payloads
// of a message before it is encoded (and encrypted). ps is not modified.
// Quick mode and informational messages call it twice: once on the payloads
// the HASH covers (before the HASH is computed, so a left-out KE goes out
// under a valid HASH), and once with the HASH in front.
func (sa *ikeSA) impairPayloads(r msgRef, ps []isakmp.Payload) []isakmp.Payload {
	e := sa.e
	if len(e.impairs) == 0 {
		return ps
	}
	out := make([]isakmp.Payload, 0, len(ps))
	for _, p := range ps {
		switch v := p.(type) {
		case *isakmp.KE:
			if imp, ok := e.findImpair(ImpairOmitKE, r); ok {
				e.impaired(imp, r, "sent without its KE payload")
				continue
			}
		case *isakmp.Hash:
			if imp, ok := e.findImpair(ImpairOmitHash, r); ok {
				e.impaired(imp, r, "sent without its HASH payload")
				continue
			}
			if imp, ok := e.findImpair(ImpairCorruptHash, r); ok {
				bad := append([]byte(nil), v.Data...)
				for i := range bad {
					bad[i] ^= 0x5a
				}
				if len(bad) == 0 {
					bad = []byte{0x5a}
				}
				e.impaired(imp, r, "sent with a corrupted HASH payload")
				p = &isakmp.Hash{Data: bad}
			}
		}
		out = append(out, p)
	}
	return out
}

// suppressDelete reports whether no-delete keeps a DELETE from being sent.
func (sa *ikeSA) suppressDelete(d *isakmp.Delete) bool {
	if len(sa.e.impairs) == 0 {
		return false
	}
	r := msgRef{tunnel: sa.tunnelName(), ex: ImpairInformational, what: "Informational DELETE " + isakmp.Describe(d)}
	if imp, ok := sa.e.findImpair(ImpairNoDelete, r); ok {
		sa.e.impaired(imp, r, "not sent (the SAs are removed here only)")
		return true
	}
	return false
}
