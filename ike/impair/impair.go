// Package impair is the specification of impairments: deliberate protocol
// misbehaviour, so that a test can watch how the other side copes (the idea
// of Libreswan's --impair). An impairment is set from the configuration
// (ike.Config.Impairments), or at run time with Engine.Impair (the control
// API's /v1/impair). It applies to every tunnel of the engine or to one.
// This package parses and checks specs; the engine applies them (ike/impair.go).
//
// Spec syntax (Spec.String gives back the canonical form):
//
//	[TUNNEL/]drop:EXCHANGE:N         drop the first transmission of our Nth message of EXCHANGE
//	[TUNNEL/]drop-all:EXCHANGE:N     drop every transmission of it (retransmissions, cached replies)
//	[TUNNEL/]duplicate:EXCHANGE:N    send it twice back to back
//	[TUNNEL/]replay:EXCHANGE:N       send a copy of it again about a second later
//	[TUNNEL/]corrupt-hash:EXCHANGE   flip bits of the HASH payloads we send in EXCHANGE (IKEv1)
//	[TUNNEL/]omit-hash:EXCHANGE      leave the HASH payloads out (IKEv1)
//	[TUNNEL/]omit-ke:EXCHANGE        leave the KE payloads out (main, aggressive, quick,
//	                                 ike_sa_init, create_child_sa)
//	[TUNNEL/]no-retransmit           never retransmit
//	[TUNNEL/]no-delete               send no DELETE (the SAs are still removed here)
//	[TUNNEL/]send-twice              send every message twice
//	[TUNNEL/]none                    clear the impairments (of that tunnel only, with a prefix)
//
// EXCHANGE is main, aggressive, quick or informational (IKEv1), or
// ike_sa_init, ike_auth, create_child_sa or informational (IKEv2):
// informational names the informational messages of both versions. N is the number of
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
// IKEv2 (RFC 7296): an exchange is one request and its response, so N of
// ike_sa_init, ike_auth and create_child_sa is 1 (the request, sent by the
// exchange's initiator) or 2 (the response); every exchange instance counts
// again (an IKE_SA_INIT resent after a cookie or INVALID_KE_PAYLOAD, every
// CREATE_CHILD_SA). IKEv2 informational messages, requests and responses,
// are counted per IKE SA, 1, 2, ... in the order we send them. A fragmented
// message (RFC 7383) is impaired as a whole; the stateless IKE_SA_INIT
// refusals (COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN sent before the
// responder keeps an IKE SA) never are. IKEv2 has no HASH payload (its
// messages are authenticated by AUTH and the SK checksum), so corrupt-hash
// and omit-hash refuse the IKEv2 exchanges and have nothing to act on in
// IKEv2 informational messages.
//
// When an impairment takes effect the engine logs a warning and emits an
// Event of type "impaired" with Detail "impairment" (the spec), "exchange",
// "message" (N, when there is one), "what" (e.g. "MM3") and "effect".
package impair

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotApplicable wraps the refusal of a well-formed impairment that no
// tunnel it names (or, without a tunnel, no tunnel at all) can act on, e.g.
// an IKEv2 exchange on an IKEv1-only tunnel; the control API answers it
// with 409 Conflict.
var ErrNotApplicable = errors.New("impairment does not apply to this gateway's tunnels")

// Verb is what an impairment does.
type Verb string

// The impairment verbs.
const (
	Drop         Verb = "drop"
	DropAll      Verb = "drop-all"
	Duplicate    Verb = "duplicate"
	Replay       Verb = "replay"
	CorruptHash  Verb = "corrupt-hash"
	OmitHash     Verb = "omit-hash"
	OmitKE       Verb = "omit-ke"
	NoRetransmit Verb = "no-retransmit"
	NoDelete     Verb = "no-delete"
	SendTwice    Verb = "send-twice"
	None         Verb = "none"
)

// Exchange names an exchange in an impairment.
type Exchange string

// The exchanges an impairment can name.
const (
	Main          Exchange = "main"
	Aggressive    Exchange = "aggressive"
	Quick         Exchange = "quick"
	Informational Exchange = "informational"
	IKESAInit     Exchange = "ike_sa_init"
	IKEAuth       Exchange = "ike_auth"
	CreateChildSA Exchange = "create_child_sa"
)

// IKEv1 reports whether IKEv1 has the exchange (informational: both versions).
func (ex Exchange) IKEv1() bool {
	switch ex {
	case Main, Aggressive, Quick, Informational:
		return true
	}
	return false
}

// IKEv2 reports whether IKEv2 has the exchange (informational: both versions).
func (ex Exchange) IKEv2() bool {
	switch ex {
	case IKESAInit, IKEAuth, CreateChildSA, Informational:
		return true
	}
	return false
}

// Spec is one parsed impairment spec. The zero Tunnel means every
// tunnel. Exchange is set for the verbs that take one, Message for drop,
// drop-all, duplicate and replay.
type Spec struct {
	Tunnel   string
	Verb     Verb
	Exchange Exchange
	Message  int
}

// maxInformationalN bounds N of an informational impairment (a sanity limit,
// not a protocol one).
const maxInformationalN = 1 << 20

type verbSpec struct {
	exchange  bool       // takes :EXCHANGE
	message   bool       // takes :N after the exchange
	exchanges []Exchange // allowed exchanges
}

var allExchanges = []Exchange{Main, Aggressive, Quick, Informational, IKESAInit, IKEAuth, CreateChildSA}

// v1Exchanges are the exchanges with HASH payloads (IKEv1's, and
// informational, which IKEv1 protects with HASH(1)).
var v1Exchanges = []Exchange{Main, Aggressive, Quick, Informational}

var verbs = map[Verb]verbSpec{
	Drop:         {exchange: true, message: true, exchanges: allExchanges},
	DropAll:      {exchange: true, message: true, exchanges: allExchanges},
	Duplicate:    {exchange: true, message: true, exchanges: allExchanges},
	Replay:       {exchange: true, message: true, exchanges: allExchanges},
	CorruptHash:  {exchange: true, exchanges: v1Exchanges},
	OmitHash:     {exchange: true, exchanges: v1Exchanges},
	OmitKE:       {exchange: true, exchanges: []Exchange{Main, Aggressive, Quick, IKESAInit, CreateChildSA}},
	NoRetransmit: {},
	NoDelete:     {},
	SendTwice:    {},
	None:         {},
}

// Grammar lists the allowed specs; parse errors end with it.
const Grammar = "allowed: drop:EXCHANGE:N, drop-all:EXCHANGE:N, duplicate:EXCHANGE:N, replay:EXCHANGE:N, " +
	"corrupt-hash:EXCHANGE, omit-hash:EXCHANGE (IKEv1 exchanges), omit-ke:EXCHANGE (not informational, not ike_auth), " +
	"no-retransmit, no-delete, send-twice, none; " +
	"EXCHANGE is main (N 1-6), aggressive (N 1-3), quick (N 1-3), informational (N >= 1, both IKE versions), " +
	"ike_sa_init, ike_auth or create_child_sa (IKEv2, N 1 request, 2 response); prefix TUNNEL/ to impair one tunnel only"

// messageRange returns the valid message numbers of an exchange.
func messageRange(ex Exchange) (lo, hi int) {
	switch ex {
	case Main:
		return 1, 6
	case Aggressive, Quick:
		return 1, 3
	case IKESAInit, IKEAuth, CreateChildSA:
		return 1, 2
	}
	return 1, maxInformationalN
}

// Parse parses one impairment spec (see the grammar above and
// Grammar). Verb and exchange are case-insensitive; the tunnel name is
// taken as written. The error says what is wrong and what is allowed.
func Parse(spec string) (Spec, error) {
	var imp Spec
	s := strings.TrimSpace(spec)
	if s == "" {
		return imp, fmt.Errorf("empty impairment (%s)", Grammar)
	}
	rest := s
	if i := strings.LastIndex(s, "/"); i >= 0 {
		imp.Tunnel, rest = s[:i], s[i+1:]
		if imp.Tunnel == "" {
			return imp, fmt.Errorf("impairment %q: empty tunnel name before \"/\" (%s)", spec, Grammar)
		}
	}
	parts := strings.Split(rest, ":")
	imp.Verb = Verb(strings.ToLower(parts[0]))
	vs, ok := verbs[imp.Verb]
	if !ok {
		return Spec{}, fmt.Errorf("impairment %q: unknown verb %q (%s)", spec, parts[0], Grammar)
	}
	want := 1
	if vs.exchange {
		want++
	}
	if vs.message {
		want++
	}
	if len(parts) != want {
		return Spec{}, fmt.Errorf("impairment %q: %s takes %s (%s)", spec, imp.Verb, verbUsage(imp.Verb), Grammar)
	}
	if vs.exchange {
		imp.Exchange = Exchange(strings.ToLower(parts[1]))
	}
	if vs.message {
		n, err := strconv.Atoi(parts[2])
		if err != nil || strings.ContainsAny(parts[2], "+- ") {
			return Spec{}, fmt.Errorf("impairment %q: message number %q is not a positive integer (%s)", spec, parts[2], Grammar)
		}
		imp.Message = n
	}
	if err := imp.Validate(); err != nil {
		return Spec{}, fmt.Errorf("impairment %q: %w", spec, err)
	}
	return imp, nil
}

func verbUsage(v Verb) string {
	vs := verbs[v]
	switch {
	case vs.message:
		return "an exchange and a message number (" + string(v) + ":EXCHANGE:N)"
	case vs.exchange:
		return "an exchange (" + string(v) + ":EXCHANGE)"
	}
	return "no arguments"
}

// Validate checks an Spec built in code the way Parse checks
// a spec (tunnel names are checked by the engine).
func (imp Spec) Validate() error {
	vs, ok := verbs[imp.Verb]
	if !ok {
		return fmt.Errorf("unknown verb %q (%s)", imp.Verb, Grammar)
	}
	if strings.ContainsAny(imp.Tunnel, "\n") {
		return fmt.Errorf("bad tunnel name %q", imp.Tunnel)
	}
	if !vs.exchange {
		if imp.Exchange != "" || imp.Message != 0 {
			return fmt.Errorf("%s takes no arguments (%s)", imp.Verb, Grammar)
		}
		return nil
	}
	okEx := false
	for _, e := range vs.exchanges {
		if e == imp.Exchange {
			okEx = true
		}
	}
	if !okEx && (imp.Verb == CorruptHash || imp.Verb == OmitHash) && imp.Exchange.IKEv2() {
		return fmt.Errorf("%s: IKEv2 exchange %s has no HASH payload (RFC 7296 authenticates with AUTH and the SK payload's checksum); "+
			"allowed for %s: main, aggressive, quick, informational (IKEv1); %s", imp.Verb, imp.Exchange, imp.Verb, Grammar)
	}
	if !okEx && imp.Verb == OmitKE && imp.Exchange == IKEAuth {
		return fmt.Errorf("%s: IKE_AUTH carries no KE payload (allowed for %s: main, aggressive, quick, ike_sa_init, create_child_sa; %s)", imp.Verb, imp.Verb, Grammar)
	}
	if !okEx {
		names := make([]string, len(vs.exchanges))
		for i, e := range vs.exchanges {
			names[i] = string(e)
		}
		return fmt.Errorf("%s: unknown or unsupported exchange %q (allowed for %s: %s; %s)", imp.Verb, imp.Exchange, imp.Verb, strings.Join(names, ", "), Grammar)
	}
	if !vs.message {
		if imp.Message != 0 {
			return fmt.Errorf("%s takes no message number (%s)", imp.Verb, Grammar)
		}
		return nil
	}
	lo, hi := messageRange(imp.Exchange)
	if imp.Message < lo || imp.Message > hi {
		switch imp.Exchange {
		case Informational:
			return fmt.Errorf("message %d is out of range for %s (allowed: %d-%d)", imp.Message, imp.Exchange, lo, hi)
		case IKESAInit, IKEAuth, CreateChildSA:
			return fmt.Errorf("message %d is out of range for %s (allowed: 1-2; an IKEv2 exchange is a request, 1, and its response, 2)", imp.Message, imp.Exchange)
		}
		return fmt.Errorf("message %d is out of range for %s mode (allowed: %d-%d; RFC 2409 numbers its messages %d to %d)", imp.Message, imp.Exchange, lo, hi, lo, hi)
	}
	return nil
}

// String returns the canonical spec.
func (imp Spec) String() string {
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
