package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// The messages and keys of CREATE_CHILD_SA for child SAs (RFC 7296
// sections 1.3.1, 1.3.3, 2.17): a new child SA, or the rekey of one
// (REKEY_SA), with explicit arguments and no engine state:
//
//	request:  [N(REKEY_SA)], SA, Ni, [KEi], TSi, TSr, [N(USE_TRANSPORT_MODE)]
//	response: SA, Nr, [KEr], TSi, TSr, [N(USE_TRANSPORT_MODE)]
//
// The REKEY_SA notify names the SA being replaced by the SPI its sender
// expects in inbound packets (section 1.3.3), so the responder finds it
// among its pairs by outbound SPI. The CHILD_SA's keys are
// prf+(SK_d, [g^ir (new) |] Ni | Nr) (section 2.17), initiator-to-responder
// first. The IKE SA rekey (the same exchange with an IKE proposal) is in
// ikev2_rekey.go; what happens to the data path is in ikev2_collision.go.

// v2MaxChildTS bounds the selectors we look at in one TS payload; the
// codec bounds them already (one octet count), this keeps logs short.
const v2MaxChildTS = 16

// v2ChildOffer is the initiator's half of one CREATE_CHILD_SA for a child.
type v2ChildOffer struct {
	spiIn     uint32   // our inbound SPI of the new SA (the proposals' SPI)
	sa        *wire.SA // our proposals, each with spiIn
	nonce     []byte   // Ni
	dhKey     dh.Key   // nil without PFS
	group     wire.DHGroup
	tsi, tsr  *wire.TS
	rekeys    uint32 // our inbound SPI of the pair replaced (REKEY_SA); 0: new child
	transport bool
}

// payloads is the request's inner payload list in the order of section 1.3.
func (o *v2ChildOffer) payloads() []wire.Payload {
	var ps []wire.Payload
	if o.rekeys != 0 {
		ps = append(ps, &wire.Notify{Protocol: wire.ProtoESP, SPI: spi4(o.rekeys), NotifyType: wire.NotifyRekeySA})
	}
	ps = append(ps, o.sa, &wire.Nonce{Data: o.nonce})
	if o.dhKey != nil {
		ps = append(ps, &wire.KE{Group: o.group, Data: o.dhKey.Public()})
	}
	ps = append(ps, o.tsi, o.tsr)
	if o.transport {
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyUseTransportMode})
	}
	return ps
}

// v2ChildRequest is a received CREATE_CHILD_SA request for a child SA.
type v2ChildRequest struct {
	sa        *wire.SA
	nonce     []byte
	ke        *wire.KE
	tsi, tsr  *wire.TS
	rekey     bool
	rekeySPI  uint32 // the peer's inbound SPI = our outbound SPI of the pair replaced
	transport bool
}

// v2CreateChildKind says what a CREATE_CHILD_SA request asks for.
type v2CreateChildKind int

const (
	v2NewChild v2CreateChildKind = iota
	v2RekeyChild
	v2RekeyIKE
)

func (k v2CreateChildKind) String() string {
	return [...]string{"new CHILD_SA", "CHILD_SA rekey", "IKE SA rekey"}[k]
}

// v2ClassifyCreateChild tells an IKE SA rekey (an SA payload with IKE
// proposals and no traffic selectors, section 1.3.2) from a child SA
// request. Malformed requests are INVALID_SYNTAX.
func v2ClassifyCreateChild(ps []wire.Payload) (v2CreateChildKind, error) {
	sa, n := v2FindSA(ps)
	if sa == nil || n != 1 || len(sa.Proposals) == 0 {
		return 0, v2Refuse(wire.NotifyInvalidSyntax, "CREATE_CHILD_SA request with %d SA payloads", n)
	}
	proto := sa.Proposals[0].Protocol
	for _, p := range sa.Proposals[1:] {
		if p.Protocol != proto {
			return 0, v2Refuse(wire.NotifyInvalidSyntax, "CREATE_CHILD_SA proposals of protocols %s and %s", proto, p.Protocol)
		}
	}
	switch {
	case proto == wire.ProtoIKE:
		if v2FindTS(ps, false) != nil || v2FindTS(ps, true) != nil {
			return 0, v2Refuse(wire.NotifyInvalidSyntax, "IKE SA rekey with traffic selectors")
		}
		return v2RekeyIKE, nil
	case wire.FindNotify(ps, wire.NotifyRekeySA) != nil:
		return v2RekeyChild, nil
	}
	return v2NewChild, nil
}

// v2ParseChildRequest checks a child SA request's payloads (section 1.3).
func v2ParseChildRequest(ps []wire.Payload) (*v2ChildRequest, error) {
	r := &v2ChildRequest{}
	var n int
	if r.sa, n = v2FindSA(ps); r.sa == nil || n != 1 {
		return nil, v2Refuse(wire.NotifyInvalidSyntax, "child SA request with %d SA payloads", n)
	}
	nonce, ke, nn, nk := v2NonceKE(ps)
	if nn != 1 || nk > 1 {
		return nil, v2Refuse(wire.NotifyInvalidSyntax, "child SA request with %d Nonce and %d KE payloads", nn, nk)
	}
	r.nonce, r.ke = nonce, ke
	r.tsi, r.tsr = v2FindTS(ps, false), v2FindTS(ps, true)
	if r.tsi == nil || r.tsr == nil {
		return nil, v2Refuse(wire.NotifyInvalidSyntax, "child SA request without TSi and TSr")
	}
	if rk := wire.FindNotify(ps, wire.NotifyRekeySA); rk != nil {
		if rk.Protocol != wire.ProtoESP || len(rk.SPI) != 4 {
			return nil, v2Refuse(wire.NotifyInvalidSyntax, "REKEY_SA for protocol %s with a %d-byte SPI (want ESP, 4)", rk.Protocol, len(rk.SPI))
		}
		r.rekey, r.rekeySPI = true, binary.BigEndian.Uint32(rk.SPI)
	}
	r.transport = wire.FindNotify(ps, wire.NotifyUseTransportMode) != nil
	return r, nil
}

// v2ChildAnswer is the responder's accepted child SA: what it sends back
// and what it needs for the keys.
type v2ChildAnswer struct {
	choice   *exchange.Choice
	spiIn    uint32 // our inbound SPI (in the reply's proposal)
	spiOut   uint32 // the initiator's SPI (its inbound)
	nonce    []byte // Nr
	gir      []byte // nil without PFS
	narrowed *exchange.Narrowed
	payloads []wire.Payload
}

// v2ChildLimits is the responder's policy for a child SA.
type v2ChildLimits struct {
	policy        *exchange.Policy
	rule          exchange.Rule
	remote, local []wire.Selector // our selectors for the initiator's side (TSi) and ours (TSr)
	transport     bool            // we want transport mode
}

// v2AnswerChild selects a proposal, checks KE and selectors and makes the
// response (section 1.3.1). spiIn is our new inbound SPI, nonce our Nr,
// gen makes our DH key for the chosen group. Refusals are *exchange.Error
// (the notify to answer with).
func v2AnswerChild(req *v2ChildRequest, lim v2ChildLimits, spiIn uint32, nonce []byte, gen func(wire.DHGroup) (dh.Key, error)) (*v2ChildAnswer, error) {
	g := wire.DHNone
	if req.ke != nil {
		g = req.ke.Group
	}
	choice, err := exchange.Select(req.sa, lim.policy, exchange.Options{Rule: lim.rule, KEGroup: g})
	if err != nil {
		return nil, err
	}
	if err := exchange.CheckKE(choice.DH, req.ke); err != nil {
		return nil, err
	}
	if len(choice.PeerSPI) != 4 {
		return nil, v2Refuse(wire.NotifyInvalidSyntax, "ESP proposal with a %d-byte SPI", len(choice.PeerSPI))
	}
	nar, err := exchange.Narrow(req.tsi, req.tsr, lim.remote, lim.local)
	if err != nil {
		return nil, err
	}
	if req.transport != lim.transport {
		// Section 1.3.1: without the notify the SA is tunnel mode; a
		// mode other than ours is refused rather than silently changed.
		return nil, v2Refuse(wire.NotifyNoProposalChosen, "the initiator asks for %s mode, the tunnel uses %s", v2ModeName(req.transport), v2ModeName(lim.transport))
	}
	a := &v2ChildAnswer{choice: choice, spiIn: spiIn, spiOut: binary.BigEndian.Uint32(choice.PeerSPI), nonce: nonce, narrowed: nar}
	a.payloads = []wire.Payload{choice.Reply(spi4(spiIn)), &wire.Nonce{Data: nonce}}
	if choice.DH != wire.DHNone {
		k, err := gen(choice.DH)
		if err != nil {
			return nil, fmt.Errorf("ikev2: DH key for %s: %w", choice.DH, err)
		}
		if a.gir, err = k.SharedSecret(req.ke.Data); err != nil {
			return nil, v2Refuse(wire.NotifyInvalidSyntax, "the initiator's KE value of %s is invalid", choice.DH)
		}
		a.payloads = append(a.payloads, &wire.KE{Group: choice.DH, Data: k.Public()})
	}
	a.payloads = append(a.payloads, nar.TSi, nar.TSr)
	if lim.transport {
		a.payloads = append(a.payloads, &wire.Notify{NotifyType: wire.NotifyUseTransportMode})
	}
	return a, nil
}

// v2ChildResult is the initiator's reading of an accepted response.
type v2ChildResult struct {
	choice   *exchange.Choice
	spiOut   uint32 // the responder's inbound SPI
	nonce    []byte // Nr
	gir      []byte
	tsi, tsr *wire.TS
}

// v2ErrorNotify returns the first error notify of a response, if any.
func v2ErrorNotify(ps []wire.Payload) *wire.Notify {
	for _, p := range ps {
		if n, ok := p.(*wire.Notify); ok && n != nil && n.NotifyType.IsError() {
			return n
		}
	}
	return nil
}

// v2ReadChildResponse is the initiator's check of the response to o: an
// error notify (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, TS_UNACCEPTABLE,
// TEMPORARY_FAILURE, CHILD_SA_NOT_FOUND...) comes back as *v2Refused;
// anything else wrong is a plain error (a response is never answered).
func v2ReadChildResponse(o *v2ChildOffer, ps []wire.Payload) (*v2ChildResult, error) {
	if n := v2ErrorNotify(ps); n != nil {
		return nil, &v2Refused{Notify: n.NotifyType, Data: n.Data}
	}
	sa, nsa := v2FindSA(ps)
	nonce, ke, nn, nk := v2NonceKE(ps)
	if sa == nil || nsa != 1 || nn != 1 || nk > 1 {
		return nil, fmt.Errorf("ikev2: CREATE_CHILD_SA response with %d SA, %d Nonce, %d KE payloads", nsa, nn, nk)
	}
	choice, err := exchange.CheckReply(o.sa, sa)
	if err != nil {
		return nil, err
	}
	if len(choice.PeerSPI) != 4 {
		return nil, fmt.Errorf("ikev2: the responder's ESP SPI has %d bytes", len(choice.PeerSPI))
	}
	r := &v2ChildResult{choice: choice, spiOut: binary.BigEndian.Uint32(choice.PeerSPI), nonce: nonce,
		tsi: v2FindTS(ps, false), tsr: v2FindTS(ps, true)}
	if r.spiOut < 256 {
		return nil, fmt.Errorf("ikev2: the responder's ESP SPI %08x is reserved", r.spiOut)
	}
	switch {
	case choice.DH == wire.DHNone && ke != nil:
		return nil, errors.New("ikev2: KE payload in a response that chose no DH group")
	case choice.DH != wire.DHNone && (o.dhKey == nil || choice.DH != o.group):
		return nil, fmt.Errorf("ikev2: the responder chose DH group %s, we sent a KE of %s", choice.DH, o.group)
	case choice.DH != wire.DHNone && (ke == nil || ke.Group != choice.DH):
		return nil, fmt.Errorf("ikev2: the response lacks a KE payload of %s", choice.DH)
	case choice.DH != wire.DHNone:
		if r.gir, err = o.dhKey.SharedSecret(ke.Data); err != nil {
			return nil, fmt.Errorf("ikev2: the responder's KE value: %w", err)
		}
	}
	if err := exchange.CheckNarrowed(o.tsi, o.tsr, r.tsi, r.tsr); err != nil {
		return nil, err
	}
	if tr := wire.FindNotify(ps, wire.NotifyUseTransportMode) != nil; tr != o.transport {
		return nil, fmt.Errorf("ikev2: we asked for %s mode, the responder answered %s mode", v2ModeName(o.transport), v2ModeName(tr))
	}
	return r, nil
}

// v2Refused is a peer's error notify in answer to our request.
type v2Refused struct {
	Notify wire.NotifyType
	Data   []byte
}

func (r *v2Refused) Error() string { return "ikev2: the peer refused: " + r.Notify.String() }

// v2ChildKeys are a child SA's negotiated transforms, nonces and secret,
// from which both ends derive the same pair.
type v2ChildKeys struct {
	prf           keymat.PRF
	skd           []byte
	gir           []byte // nil without PFS
	ni, nr        []byte
	choice        *exchange.Choice
	initiator     bool // we initiated the CREATE_CHILD_SA (or IKE_AUTH)
	spiIn, spiOut uint32
}

// v2Pair derives the keys and makes the data path's pair. The exchange's
// initiator sends on the I keys, its responder on the R keys (section 2.17).
func v2DerivePair(k v2ChildKeys, base childsa.Pair) (childsa.Pair, error) {
	if k.choice == nil {
		return childsa.Pair{}, errors.New("ikev2: no chosen proposal")
	}
	ck, err := keymat.DeriveChild(k.prf, k.skd, k.gir, k.ni, k.nr, k.choice.Encr, k.choice.Integ)
	if err != nil {
		return childsa.Pair{}, err
	}
	enc, integ, err := v2ESPTransforms(k.choice)
	if err != nil {
		return childsa.Pair{}, err
	}
	out, in := childsa.SA{SPI: k.spiOut, EncKey: ck.EncrI, IntegKey: ck.IntegI}, childsa.SA{SPI: k.spiIn, EncKey: ck.EncrR, IntegKey: ck.IntegR}
	if !k.initiator {
		out.EncKey, out.IntegKey, in.EncKey, in.IntegKey = ck.EncrR, ck.IntegR, ck.EncrI, ck.IntegI
	}
	for _, s := range []*childsa.SA{&out, &in} {
		s.Protocol, s.Encryption, s.Integrity = isakmp.ProtoESP, enc, integ
	}
	p := base
	p.Inbound, p.Outbound = in, out
	return p, nil
}

// v2ESPTransforms maps IKEv2 transform IDs onto the data path's (IKEv1
// ESP transform IDs and authentication algorithm numbers, childsa.SA).
func v2ESPTransforms(c *exchange.Choice) (uint8, uint16, error) {
	var enc uint8
	switch c.Encr.ID {
	case keymat.EncrAESCBC:
		enc = isakmp.ESPAESCBC
	case keymat.EncrAESGCM16:
		enc = isakmp.ESPAESGCM16
	default:
		return 0, 0, fmt.Errorf("ikev2: ESP encryption %d has no data path transform", c.Encr.ID)
	}
	switch c.Integ.ID {
	case keymat.AuthNone:
		return enc, 0, nil
	case keymat.AuthHMACSHA196:
		return enc, isakmp.AuthHMACSHA1, nil
	case keymat.AuthHMACSHA2256128:
		return enc, isakmp.AuthHMACSHA2256, nil
	case keymat.AuthHMACSHA2384192:
		return enc, isakmp.AuthHMACSHA2384, nil
	case keymat.AuthHMACSHA2512256:
		return enc, isakmp.AuthHMACSHA2512, nil
	}
	return 0, 0, fmt.Errorf("ikev2: ESP integrity %d has no data path transform", c.Integ.ID)
}

// v2SelectorPrefix is the prefix of a pair's selector list: the data path
// takes one prefix per side, so only a list that is exactly one prefix
// (any protocol, any port) is accepted (AWS: 0.0.0.0/0 or the configured
// CIDRs, one each).
func v2SelectorPrefix(ts *wire.TS) (netip.Prefix, error) {
	if ts == nil || len(ts.Selectors) != 1 {
		n := 0
		if ts != nil {
			n = len(ts.Selectors)
		}
		return netip.Prefix{}, fmt.Errorf("ikev2: %d traffic selectors, the data path takes one prefix", min(n, v2MaxChildTS))
	}
	s := ts.Selectors[0]
	ps := s.Prefixes()
	if len(ps) != 1 || s.Protocol != 0 || s.StartPort != 0 || s.EndPort != 0xffff {
		return netip.Prefix{}, fmt.Errorf("ikev2: traffic selector %s is not one prefix of any protocol and port", s)
	}
	return ps[0], nil
}

// v2FindSA returns the first SA payload and how many there are.
func v2FindSA(ps []wire.Payload) (*wire.SA, int) {
	var first *wire.SA
	n := 0
	for _, p := range ps {
		if s, ok := p.(*wire.SA); ok && s != nil {
			if first == nil {
				first = s
			}
			n++
		}
	}
	return first, n
}

// v2NonceKE returns the Nonce and KE payloads and their counts.
func v2NonceKE(ps []wire.Payload) (nonce []byte, ke *wire.KE, nn, nk int) {
	for _, p := range ps {
		switch x := p.(type) {
		case *wire.Nonce:
			if x != nil {
				nonce, nn = x.Data, nn+1
			}
		case *wire.KE:
			if x != nil {
				ke, nk = x, nk+1
			}
		}
	}
	return nonce, ke, nn, nk
}

// v2FindTS returns the first TSi (responder false) or TSr payload.
func v2FindTS(ps []wire.Payload, responder bool) *wire.TS {
	for _, p := range ps {
		if ts, ok := p.(*wire.TS); ok && ts != nil && ts.Responder == responder {
			return ts
		}
	}
	return nil
}

func spi4(spi uint32) []byte { return binary.BigEndian.AppendUint32(nil, spi) }

func v2ModeName(transport bool) string {
	if transport {
		return "transport"
	}
	return "tunnel"
}

// v2Refuse makes a refusal answered with a notify.
func v2Refuse(n wire.NotifyType, format string, args ...any) *exchange.Error {
	return &exchange.Error{Notify: n, Reason: fmt.Sprintf(format, args...)}
}
