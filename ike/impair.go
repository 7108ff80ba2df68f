package ike

// Impairments: deliberate protocol misbehaviour, so that a test can watch
// how the other side copes (the idea of Libreswan's --impair). An impairment
// is set from the configuration (Config.Impairments), or at run time with
// Engine.Impair (the control API's /v1/impair). It applies to every tunnel of
// the engine or to one.
//
// Spec syntax (Impairment.String gives back the canonical form):
//
//	[TUNNEL/]drop:EXCHANGE:N         drop the first transmission of our Nth message of EXCHANGE
//	[TUNNEL/]drop-all:EXCHANGE:N     drop every transmission of it (retransmissions, cached replies)
//	[TUNNEL/]duplicate:EXCHANGE:N    send it twice back to back
//	[TUNNEL/]replay:EXCHANGE:N       send a copy of it again about a second later
//	[TUNNEL/]corrupt-hash:EXCHANGE   flip bits of the HASH payloads we send in EXCHANGE
//	[TUNNEL/]omit-hash:EXCHANGE      leave the HASH payloads out
//	[TUNNEL/]omit-ke:EXCHANGE        leave the KE payloads out (main, aggressive, quick)
//	[TUNNEL/]no-retransmit           never retransmit
//	[TUNNEL/]no-delete               send no DELETE (the SAs are still removed here)
//	[TUNNEL/]send-twice              send every message twice
//	[TUNNEL/]none                    clear the impairments (of that tunnel only, with a prefix)
//
// EXCHANGE is main, aggressive, quick or informational. N is the number of
// the message in the exchange as RFC 2409 counts it: main mode 1-6,
// aggressive mode 1-3, quick mode 1-3; an initiator sends the odd ones, a
// responder the even ones (and quick mode's QM2), so an N the engine never
// sends in its role has no effect. Numbers count per exchange instance: every
// ISAKMP SA has its own main or aggressive mode, every quick mode its own
// messages (a phase 1 restart or rekey is impaired again). Informational
// messages are counted per ISAKMP SA, 1, 2, ... in the order we send them
// (notifies, DELETEs, DPD); they are never retransmitted, so drop and
// drop-all act the same on them. Messages that belong to no ISAKMP SA
// (INVALID-COOKIE, the answer to an unknown peer) are never impaired.
//
// When an impairment takes effect the engine logs a warning and emits an
// Event of type "impaired" with Detail "impairment" (the spec), "exchange",
// "message" (N, when there is one), "what" (e.g. "MM3") and "effect".

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// ImpairVerb is what an impairment does.
type ImpairVerb string

// The impairment verbs.
const (
	ImpairDrop         ImpairVerb = "drop"
	ImpairDropAll      ImpairVerb = "drop-all"
	ImpairDuplicate    ImpairVerb = "duplicate"
	ImpairReplay       ImpairVerb = "replay"
	ImpairCorruptHash  ImpairVerb = "corrupt-hash"
	ImpairOmitHash     ImpairVerb = "omit-hash"
	ImpairOmitKE       ImpairVerb = "omit-ke"
	ImpairNoRetransmit ImpairVerb = "no-retransmit"
	ImpairNoDelete     ImpairVerb = "no-delete"
	ImpairSendTwice    ImpairVerb = "send-twice"
	ImpairNone         ImpairVerb = "none"
)

// ImpairExchange names an exchange in an impairment.
type ImpairExchange string

// The exchanges an impairment can name.
const (
	ImpairMain          ImpairExchange = "main"
	ImpairAggressive    ImpairExchange = "aggressive"
	ImpairQuick         ImpairExchange = "quick"
	ImpairInformational ImpairExchange = "informational"
)

// Impairment is one parsed impairment spec. The zero Tunnel means every
// tunnel. Exchange is set for the verbs that take one, Message for drop,
// drop-all, duplicate and replay.
type Impairment struct {
	Tunnel   string
	Verb     ImpairVerb
	Exchange ImpairExchange
	Message  int
}

// replayDelay is how long after the first transmission a replay goes out.
const replayDelay = time.Second

// maxInformationalN bounds N of an informational impairment (a sanity limit,
// not a protocol one).
const maxInformationalN = 1 << 20

type verbSpec struct {
	exchange  bool             // takes :EXCHANGE
	message   bool             // takes :N after the exchange
	exchanges []ImpairExchange // allowed exchanges
}

var allExchanges = []ImpairExchange{ImpairMain, ImpairAggressive, ImpairQuick, ImpairInformational}

var verbs = map[ImpairVerb]verbSpec{
	ImpairDrop:         {exchange: true, message: true, exchanges: allExchanges},
	ImpairDropAll:      {exchange: true, message: true, exchanges: allExchanges},
	ImpairDuplicate:    {exchange: true, message: true, exchanges: allExchanges},
	ImpairReplay:       {exchange: true, message: true, exchanges: allExchanges},
	ImpairCorruptHash:  {exchange: true, exchanges: allExchanges},
	ImpairOmitHash:     {exchange: true, exchanges: allExchanges},
	ImpairOmitKE:       {exchange: true, exchanges: []ImpairExchange{ImpairMain, ImpairAggressive, ImpairQuick}},
	ImpairNoRetransmit: {},
	ImpairNoDelete:     {},
	ImpairSendTwice:    {},
	ImpairNone:         {},
}

// ImpairGrammar lists the allowed specs; parse errors end with it.
const ImpairGrammar = "allowed: drop:EXCHANGE:N, drop-all:EXCHANGE:N, duplicate:EXCHANGE:N, replay:EXCHANGE:N, " +
	"corrupt-hash:EXCHANGE, omit-hash:EXCHANGE, omit-ke:EXCHANGE (not informational), no-retransmit, no-delete, send-twice, none; " +
	"EXCHANGE is main (N 1-6), aggressive (N 1-3), quick (N 1-3) or informational (N >= 1); prefix TUNNEL/ to impair one tunnel only"

// messageRange returns the valid message numbers of an exchange.
func messageRange(ex ImpairExchange) (lo, hi int) {
	switch ex {
	case ImpairMain:
		return 1, 6
	case ImpairAggressive, ImpairQuick:
		return 1, 3
	}
	return 1, maxInformationalN
}

// ParseImpairment parses one impairment spec (see the grammar above and
// ImpairGrammar). Verb and exchange are case-insensitive; the tunnel name is
// taken as written. The error says what is wrong and what is allowed.
func ParseImpairment(spec string) (Impairment, error) {
	var imp Impairment
	s := strings.TrimSpace(spec)
	if s == "" {
		return imp, fmt.Errorf("empty impairment (%s)", ImpairGrammar)
	}
	rest := s
	if i := strings.LastIndex(s, "/"); i >= 0 {
		imp.Tunnel, rest = s[:i], s[i+1:]
		if imp.Tunnel == "" {
			return imp, fmt.Errorf("impairment %q: empty tunnel name before \"/\" (%s)", spec, ImpairGrammar)
		}
	}
	parts := strings.Split(rest, ":")
	imp.Verb = ImpairVerb(strings.ToLower(parts[0]))
	vs, ok := verbs[imp.Verb]
	if !ok {
		return Impairment{}, fmt.Errorf("impairment %q: unknown verb %q (%s)", spec, parts[0], ImpairGrammar)
	}
	want := 1
	if vs.exchange {
		want++
	}
	if vs.message {
		want++
	}
	if len(parts) != want {
		return Impairment{}, fmt.Errorf("impairment %q: %s takes %s (%s)", spec, imp.Verb, verbUsage(imp.Verb), ImpairGrammar)
	}
	if vs.exchange {
		imp.Exchange = ImpairExchange(strings.ToLower(parts[1]))
	}
	if vs.message {
		n, err := strconv.Atoi(parts[2])
		if err != nil || strings.ContainsAny(parts[2], "+- ") {
			return Impairment{}, fmt.Errorf("impairment %q: message number %q is not a positive integer (%s)", spec, parts[2], ImpairGrammar)
		}
		imp.Message = n
	}
	if err := imp.Validate(); err != nil {
		return Impairment{}, fmt.Errorf("impairment %q: %w", spec, err)
	}
	return imp, nil
}

func verbUsage(v ImpairVerb) string {
	vs := verbs[v]
	switch {
	case vs.message:
		return "an exchange and a message number (" + string(v) + ":EXCHANGE:N)"
	case vs.exchange:
		return "an exchange (" + string(v) + ":EXCHANGE)"
	}
	return "no arguments"
}

// Validate checks an Impairment built in code the way ParseImpairment checks
// a spec (tunnel names are checked by the engine).
func (imp Impairment) Validate() error {
	vs, ok := verbs[imp.Verb]
	if !ok {
		return fmt.Errorf("unknown verb %q (%s)", imp.Verb, ImpairGrammar)
	}
	if strings.ContainsAny(imp.Tunnel, "\n") {
		return fmt.Errorf("bad tunnel name %q", imp.Tunnel)
	}
	if !vs.exchange {
		if imp.Exchange != "" || imp.Message != 0 {
			return fmt.Errorf("%s takes no arguments (%s)", imp.Verb, ImpairGrammar)
		}
		return nil
	}
	okEx := false
	for _, e := range vs.exchanges {
		if e == imp.Exchange {
			okEx = true
		}
	}
	if !okEx {
		names := make([]string, len(vs.exchanges))
		for i, e := range vs.exchanges {
			names[i] = string(e)
		}
		return fmt.Errorf("%s: unknown or unsupported exchange %q (allowed for %s: %s; %s)", imp.Verb, imp.Exchange, imp.Verb, strings.Join(names, ", "), ImpairGrammar)
	}
	if !vs.message {
		if imp.Message != 0 {
			return fmt.Errorf("%s takes no message number (%s)", imp.Verb, ImpairGrammar)
		}
		return nil
	}
	lo, hi := messageRange(imp.Exchange)
	if imp.Message < lo || imp.Message > hi {
		if imp.Exchange == ImpairInformational {
			return fmt.Errorf("message %d is out of range for %s (allowed: %d-%d)", imp.Message, imp.Exchange, lo, hi)
		}
		return fmt.Errorf("message %d is out of range for %s mode (allowed: %d-%d; RFC 2409 numbers its messages %d to %d)", imp.Message, imp.Exchange, lo, hi, lo, hi)
	}
	return nil
}

// String returns the canonical spec.
func (imp Impairment) String() string {
	var b strings.Builder
	if imp.Tunnel != "" {
		b.WriteString(imp.Tunnel + "/")
	}
	b.WriteString(string(imp.Verb))
	if imp.Exchange != "" {
		b.WriteString(":" + string(imp.Exchange))
	}
	if imp.Message != 0 {
		b.WriteString(":" + strconv.Itoa(imp.Message))
	}
	return b.String()
}

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
