package ike

// Impairments: package impair has the spec syntax (imported here as
// impairspec: the battery tests have a func impair); the engine applies
// them to the messages it sends (sendOut, impairPayloads, suppressDelete).

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	impairspec "github.com/vpnlab/vpnlab/ike/impair"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
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
		t, ok := e.byName[imp.Tunnel] // byName never changes after NewEngine
		if !ok {
			return fmt.Errorf("impairment %q: %w %q", imp.String(), ErrUnknownTunnel, imp.Tunnel)
		}
		if !impairFits(imp, t.cfg) {
			return fmt.Errorf("impairment %q: tunnel %q speaks %s only, and %s (%w)", imp.String(), imp.Tunnel, versionNames(t.cfg), impairNeeds(imp), impairspec.ErrNotApplicable)
		}
		return nil
	}
	if imp.Verb == ImpairNone || len(e.tunnels) == 0 {
		return nil
	}
	for _, t := range e.tunnels {
		if impairFits(imp, t.cfg) {
			return nil
		}
	}
	return fmt.Errorf("impairment %q: no tunnel of this gateway can use it: %s (%w)", imp.String(), impairNeeds(imp), impairspec.ErrNotApplicable)
}

// impairVersions reports which IKE versions an impairment can act on:
// an exchange names its version (informational: both), the HASH verbs
// need IKEv1, the verbs without an exchange apply to both.
func impairVersions(imp Impairment) (v1, v2 bool) {
	if imp.Exchange == "" {
		return true, true
	}
	v1, v2 = imp.Exchange.IKEv1(), imp.Exchange.IKEv2()
	if imp.Verb == ImpairCorruptHash || imp.Verb == ImpairOmitHash {
		v2 = false // IKEv2 has no HASH payload
	}
	return v1, v2
}

// impairFits reports whether the impairment can act on a tunnel's messages.
func impairFits(imp Impairment, cfg *TunnelConfig) bool {
	v1, v2 := impairVersions(imp)
	return v1 && cfg.Allows(policy.IKEv1) || v2 && cfg.Allows(policy.IKEv2)
}

// impairNeeds says which version an impairment acts on, for errors.
func impairNeeds(imp Impairment) string {
	v1, _ := impairVersions(imp)
	if v1 {
		return fmt.Sprintf("%s acts on IKEv1 messages only", imp.String())
	}
	return fmt.Sprintf("%s acts on IKEv2 messages only", imp.String())
}

func versionNames(cfg *TunnelConfig) string {
	s := ""
	for i, v := range cfg.Versions() {
		if i > 0 {
			s += " and "
		}
		s += "IKEv" + strconv.Itoa(int(v))
	}
	return s
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
	copies, replay := e.impairCopies(r, kind)
	e.countSent(r, kind, copies)
	for i := 0; i < copies; i++ {
		e.sendLogged(local, remote, msg, what)
	}
	if replay != nil {
		stale := append([]byte(nil), msg...)
		e.afterFunc(replayDelay, func() {
			e.impaired(*replay, r, "replayed "+replayDelay.String()+" after its first transmission")
			e.countSent(r, sendCached, 1)
			e.sendLogged(local, remote, stale, what+" (replayed)")
		})
	}
}

// impairCopies applies drop, drop-all, duplicate and send-twice to one
// transmission of a message (IKEv1's sendOut, IKEv2's sendV2Ref): it
// returns how many copies go out now (0: dropped) and the replay
// impairment when a copy is to be sent again replayDelay later.
func (e *Engine) impairCopies(r msgRef, kind sendKind) (copies int, replay *Impairment) {
	if imp, ok := e.findImpair(ImpairDropAll, r); ok {
		e.impaired(imp, r, "dropped ("+kindName(kind)+")")
		return 0, nil
	}
	if kind == sendFirst {
		if imp, ok := e.findImpair(ImpairDrop, r); ok {
			e.impaired(imp, r, "dropped (first transmission)")
			return 0, nil
		}
	}
	copies = 1
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
	if kind == sendFirst {
		if imp, ok := e.findImpair(ImpairReplay, r); ok {
			replay = &imp
		}
	}
	return copies, replay
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

// IKEv2 (RFC 7296). An exchange is a request (N = 1) and its response
// (N = 2); informational messages, requests and responses, are numbered per
// IKE SA in the order we send them, and a retransmission or a cached answer
// keeps the number of its message (v2InfoRecent remembers the last few).
// A fragmented message (RFC 7383) is impaired as a whole.

// v2InfoRecent is how many informational messages an IKE SA remembers the
// number of (the exchange window is 1: one request and one response suffice).
const v2InfoRecent = 4

// v2InfoNum is the number an informational message got when first sent.
type v2InfoNum struct {
	mid  uint32
	resp bool
	n    int
}

// v2Ref names an IKEv2 message we send (msg is its first datagram) for
// matching impairments.
func (sa *ikev2SA) v2Ref(msg []byte, kind sendKind, what string) msgRef {
	r := msgRef{what: what}
	if sa.t != nil {
		r.tunnel = sa.t.cfg.Name
	}
	if len(msg) < 28 {
		return r
	}
	resp := msg[19]&0x20 != 0 // the Response flag
	switch wire.ExchangeType(msg[18]) {
	case wire.ExchangeIKESAInit:
		r.ex = impairspec.IKESAInit
	case wire.ExchangeIKEAuth:
		r.ex = impairspec.IKEAuth
	case wire.ExchangeCreateChildSA:
		r.ex = impairspec.CreateChildSA
	case wire.ExchangeInformational:
		r.ex = ImpairInformational
		r.n = sa.v2InfoN(binary.BigEndian.Uint32(msg[20:24]), resp, kind)
		return r
	default:
		return r
	}
	r.n = 1
	if resp {
		r.n = 2
	}
	return r
}

// v2InfoN numbers an informational message: a first transmission gets the
// next number, a repetition the number it got (0 when forgotten).
func (sa *ikev2SA) v2InfoN(mid uint32, resp bool, kind sendKind) int {
	if kind == sendFirst {
		sa.infoSent++
		sa.infoRecent[sa.infoSent%v2InfoRecent] = v2InfoNum{mid: mid, resp: resp, n: sa.infoSent}
		return sa.infoSent
	}
	for _, x := range sa.infoRecent {
		if x.n != 0 && x.mid == mid && x.resp == resp {
			return x.n
		}
	}
	return 0
}

// sendV2Msgs sends the datagrams of one of our IKEv2 messages with the
// impairments that apply and returns the message's reference.
func (sa *ikev2SA) sendV2Msgs(kind sendKind, msgs [][]byte, what string) msgRef {
	if len(msgs) == 0 {
		return msgRef{}
	}
	r := sa.v2Ref(msgs[0], kind, what)
	sa.sendV2Ref(r, kind, msgs, what)
	return r
}

// sendV2Ref sends the datagrams of message r (drop, drop-all, duplicate,
// send-twice, replay).
func (sa *ikev2SA) sendV2Ref(r msgRef, kind sendKind, msgs [][]byte, what string) {
	e := sa.e
	copies, replay := 1, (*Impairment)(nil)
	if len(e.impairs) != 0 {
		copies, replay = e.impairCopies(r, kind)
	}
	for i := 0; i < copies; i++ {
		for _, m := range msgs {
			sa.sendV2(m, what)
		}
	}
	if replay != nil {
		stale := make([][]byte, len(msgs))
		for i, m := range msgs {
			stale[i] = append([]byte(nil), m...)
		}
		e.afterFunc(replayDelay, func() {
			e.impaired(*replay, r, "replayed "+replayDelay.String()+" after its first transmission")
			for _, m := range stale {
				sa.sendV2(m, what+" (replayed)")
			}
		})
	}
}

// v2RetransmitSuppressed applies no-retransmit to a retransmission of r
// (the schedule goes on, so the exchange gives up when it would have).
func (sa *ikev2SA) v2RetransmitSuppressed(r msgRef, try int) bool {
	if len(sa.e.impairs) == 0 {
		return false
	}
	imp, ok := sa.e.findImpair(ImpairNoRetransmit, r)
	if ok {
		sa.e.impaired(imp, r, fmt.Sprintf("retransmission %d suppressed", try))
	}
	return ok
}

// impairV2Payloads applies omit-ke (IKE_SA_INIT, CREATE_CHILD_SA) and
// no-delete (DELETE payloads are left out: an INFORMATIONAL request that
// carried only DELETEs goes out empty, a liveness check, so the exchange
// still completes) to the payloads of a message before it is encoded and
// encrypted. ps is not modified.
func (sa *ikev2SA) impairV2Payloads(ex wire.ExchangeType, response bool, ps []wire.Payload) []wire.Payload {
	e := sa.e
	if len(e.impairs) == 0 {
		return ps
	}
	r := msgRef{what: ex.String() + " request"}
	if response {
		r.what = ex.String() + " response"
	}
	if sa.t != nil {
		r.tunnel = sa.t.cfg.Name
	}
	switch ex {
	case wire.ExchangeIKESAInit:
		r.ex = impairspec.IKESAInit
	case wire.ExchangeCreateChildSA:
		r.ex = impairspec.CreateChildSA
	case wire.ExchangeInformational:
		r.ex = ImpairInformational
	}
	out := make([]wire.Payload, 0, len(ps))
	for _, p := range ps {
		switch p.(type) {
		case *wire.KE:
			if imp, ok := e.findImpair(ImpairOmitKE, r); ok {
				e.impaired(imp, r, "sent without its KE payload")
				continue
			}
		case *wire.Delete:
			if imp, ok := e.findImpair(ImpairNoDelete, r); ok {
				e.impaired(imp, r, "sent without its DELETE payload (the SAs are removed here only)")
				continue
			}
		}
		out = append(out, p)
	}
	return out
}
