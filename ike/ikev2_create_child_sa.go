package ike

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// CREATE_CHILD_SA for child SAs (RFC 7296 sections 1.3.1, 1.3.3, 2.17):
// a new child SA, or the rekey of one (REKEY_SA). This file holds the
// messages and the keys, with explicit arguments and no engine state:
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

// --- the engine: CREATE_CHILD_SA for child SAs on an established IKE SA ---

// v2MaxRekeyRetries bounds our retries of a child SA rekey the peer
// answered TEMPORARY_FAILURE (section 2.25: retry after a wait, give up
// after several minutes).
const v2MaxRekeyRetries = 5

// v2RetryWait is the wait before such a retry: 2 to 4 s, random, so that
// two ends that refused each other do not meet again.
func v2RetryWait() time.Duration {
	return 2*time.Second + time.Duration(mrand.Int64N(int64(2*time.Second)))
}

// rekeyChildV2 rekeys the IKEv2 pair c (its lifetime, the control API).
func (t *tunnel) rekeyChildV2(c *childSA, why string) {
	sa := t.v2
	if sa == nil || sa.state != v2Established {
		if t.wantUp {
			t.initiate("IKEv2 child SA rekey needs an IKE SA")
		}
		return
	}
	x := t.x()
	if x.closing[c] || c.rekeyed || !t.hasChild(c) {
		return
	}
	if rk := x.rekeys[c]; rk != nil && rk.oursPending {
		return
	}
	t.log.WithFields(logrus.Fields{"why": why, "spi_in": fmt.Sprintf("%08x", c.pair.Inbound.SPI), "ike_version": "ikev2"}).Info("rekeying the child SA (CREATE_CHILD_SA)")
	t.setPhase2State("Rekeying")
	sa.createChild(c, wire.DHNone)
}

// createChild queues our CREATE_CHILD_SA for a new child SA (old nil) or
// the rekey of old. group forces the PFS group (after INVALID_KE_PAYLOAD).
func (sa *ikev2SA) createChild(old *childSA, group wire.DHGroup) {
	t := sa.t
	var rk *v2ChildRekey
	if old != nil {
		rk = t.x().rekey(old)
		rk.oursPending = true
	}
	var o *v2ChildOffer
	what := "CREATE_CHILD_SA request (new child SA)"
	if old != nil {
		what = "CREATE_CHILD_SA request (child SA rekey)"
	}
	sa.enqueue(&v2Request{ex: wire.ExchangeCreateChildSA, what: what, child: true,
		build: func(sa *ikev2SA) ([]wire.Payload, error) {
			var err error
			o, err = sa.childOfferV2(old, group)
			if err != nil {
				return nil, err
			}
			return o.payloads(), nil
		},
		onResp: func(sa *ikev2SA, ps []wire.Payload) { sa.childResponseV2(o, old, rk, ps) },
		onFail: func(sa *ikev2SA, why string) {
			if o != nil {
				_ = sa.e.dp.Delete(isakmp.ProtoESP, o.spiIn)
			}
			t.ourChildRekeyEnded(old, rk)
			t.onChildFailedV2(why)
		}})
}

// childOfferV2 makes our request: a fresh SPI and nonce, the policy's
// proposals with their PFS groups, and a KE of the first group (or group).
func (sa *ikev2SA) childOfferV2(old *childSA, group wire.DHGroup) (*v2ChildOffer, error) {
	t := sa.t
	spi, err := sa.e.dp.AllocateSPI(isakmp.ProtoESP)
	if err != nil {
		return nil, fmt.Errorf("allocate SPI: %w", err)
	}
	o := &v2ChildOffer{spiIn: spi, nonce: randomBytes(v2NonceLen), transport: t.cfg.Phase2.Mode == childsa.ModeTransport,
		sa: childOffer(t.cfg.Phase2.Proposals, spi, true)}
	local, remote := t.cfg.Phase2.LocalTS, t.cfg.Phase2.RemoteTS
	if old != nil {
		o.rekeys, local, remote = old.pair.Inbound.SPI, old.pair.LocalTS, old.pair.RemoteTS
	}
	o.tsi = &wire.TS{Selectors: []wire.Selector{wire.SelectorFromPrefix(local)}}
	o.tsr = &wire.TS{Responder: true, Selectors: []wire.Selector{wire.SelectorFromPrefix(remote)}}
	if group == wire.DHNone && old != nil && v2Offers(o.sa, wire.DHGroup(old.proposal.PFSGroup)) {
		group = wire.DHGroup(old.proposal.PFSGroup) // the group the peer took last time
	}
	if group == wire.DHNone {
		group = v2FirstGroup(o.sa)
	}
	if group != wire.DHNone {
		g, err := dh.ByID(uint16(group))
		if err == nil {
			o.dhKey, err = sa.e.newDHKey(g, rand.Reader)
		}
		if err != nil {
			_ = sa.e.dp.Delete(isakmp.ProtoESP, spi)
			return nil, fmt.Errorf("DH key of %s: %w", group, err)
		}
		o.group = group
	}
	return o, nil
}

// v2FirstGroup is the first PFS group of an ESP offer (DHNone: none).
func v2FirstGroup(sa *wire.SA) wire.DHGroup {
	for _, p := range sa.Proposals {
		for _, tr := range p.Transforms {
			if tr.Type == wire.TransformDH && wire.DHGroup(tr.ID) != wire.DHNone {
				return wire.DHGroup(tr.ID)
			}
		}
	}
	return wire.DHNone
}

// childResponseV2 is the initiator's reading of the response.
func (sa *ikev2SA) childResponseV2(o *v2ChildOffer, old *childSA, rk *v2ChildRekey, ps []wire.Payload) {
	t := sa.t
	res, err := v2ReadChildResponse(o, ps)
	if err != nil {
		_ = sa.e.dp.Delete(isakmp.ProtoESP, o.spiIn)
		t.ourChildRekeyEnded(old, rk)
		sa.childRefused(o, old, err)
		return
	}
	pair, prop, err := sa.childPairV2(v2ChildKeys{prf: sa.prf, skd: sa.keys.D, gir: res.gir, ni: o.nonce, nr: res.nonce,
		choice: res.choice, initiator: true, spiIn: o.spiIn, spiOut: res.spiOut}, res.tsi, res.tsr, o.transport)
	if err != nil {
		_ = sa.e.dp.Delete(isakmp.ProtoESP, o.spiIn)
		t.ourChildRekeyEnded(old, rk)
		t.onChildFailedV2("the peer's child SA: " + err.Error())
		return
	}
	c := &childSA{pair: pair, proposal: prop, initiator: true, established: timeNow(), ikev2: sa}
	t.childEstablishedOurs(c, old, rk, exchange.Nonces{Ni: o.nonce, Nr: res.nonce}) // ikev2_collision.go
}

// childRefused handles an error answer or an unusable response.
func (sa *ikev2SA) childRefused(o *v2ChildOffer, old *childSA, err error) {
	t := sa.t
	ref, ok := err.(*v2Refused)
	if !ok {
		t.onChildFailedV2("the peer's CREATE_CHILD_SA response: " + err.Error())
		return
	}
	t.counters.NotifiesReceived++
	f := t.log.WithFields(logrus.Fields{"notify": ref.Notify.String(), "ike_version": "ikev2"})
	switch ref.Notify {
	case wire.NotifyTemporaryFailure:
		x := t.x()
		if old == nil || x.retry[old] >= v2MaxRekeyRetries {
			t.onChildFailedV2("the peer answered TEMPORARY_FAILURE")
			return
		}
		x.retry[old]++
		wait := v2RetryWait()
		f.WithField("retry_in", wait.Round(time.Millisecond).String()).Info("the peer cannot rekey the child SA now (TEMPORARY_FAILURE): retrying later")
		t.e.afterFunc(wait, func() { t.rekeyChildV2(old, "retry after TEMPORARY_FAILURE") })
	case wire.NotifyChildSANotFound:
		// Section 2.25: delete the pair silently, create a new one.
		if old != nil {
			f.WithField("spi_in", fmt.Sprintf("%08x", old.pair.Inbound.SPI)).Warn("the peer does not know the child SA we rekeyed (CHILD_SA_NOT_FOUND): deleting it and creating a new one")
			t.deleteChild(old, "the peer does not know it (CHILD_SA_NOT_FOUND)", false)
		}
		sa.createChild(nil, wire.DHNone)
	case wire.NotifyInvalidKEPayload:
		g, gerr := (&wire.Notify{NotifyType: ref.Notify, Data: ref.Data}).Group()
		if gerr != nil || g == o.group || !v2Offers(o.sa, g) {
			t.onChildFailedV2("the peer asked for an unusable DH group (INVALID_KE_PAYLOAD)")
			return
		}
		f.WithField("group", g.String()).Info("the peer wants another PFS group (INVALID_KE_PAYLOAD): retrying")
		sa.createChild(old, g)
	default:
		t.onChildFailedV2("the peer refused the child SA with " + ref.Notify.String())
	}
}

// v2Offers reports whether an SA payload offers DH group g.
func v2Offers(sa *wire.SA, g wire.DHGroup) bool {
	for _, p := range sa.Proposals {
		for _, tr := range p.Transforms {
			if tr.Type == wire.TransformDH && wire.DHGroup(tr.ID) == g {
				return true
			}
		}
	}
	return false
}

// childPairV2 derives a CREATE_CHILD_SA pair and fills in what the data
// path needs besides the keys, as the core's first child SA does.
func (sa *ikev2SA) childPairV2(k v2ChildKeys, tsi, tsr *wire.TS, transport bool) (ChildSAPair, Phase2Proposal, error) {
	t := sa.t
	ltsP, rtsP := tsi, tsr // we initiated: TSi is ours
	if !k.initiator {
		ltsP, rtsP = tsr, tsi
	}
	lts, err := v2SelectorPrefix(ltsP)
	if err != nil {
		return ChildSAPair{}, Phase2Proposal{}, err
	}
	rts, err := v2SelectorPrefix(rtsP)
	if err != nil {
		return ChildSAPair{}, Phase2Proposal{}, err
	}
	mode := childsa.ModeTunnel
	if transport {
		mode = childsa.ModeTransport
	}
	base := ChildSAPair{Tunnel: t.cfg.Name, Mode: mode, UDPEncap: sa.natDetected(), Local: sa.local, Remote: sa.remote,
		LocalTS: lts, RemoteTS: rts, Lifetime: t.cfg.Phase2.Lifetime, LifetimeKB: t.cfg.Phase2.LifetimeKB, ReplayWindow: t.cfg.Phase2.ReplayWindow}
	if !base.UDPEncap {
		base.Local = netip.AddrPortFrom(sa.local.Addr(), 0)
		base.Remote = netip.AddrPortFrom(sa.remote.Addr(), 0)
	}
	pair, err := v2DerivePair(k, base)
	if err != nil {
		return ChildSAPair{}, Phase2Proposal{}, err
	}
	prop := Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: pair.Inbound.Encryption, EncKeyBits: k.choice.Encr.KeyBits,
		Integrity: pair.Inbound.Integrity, PFSGroup: uint16(k.choice.DH)}
	return pair, prop, nil
}

// handleCreateChildSA takes a CREATE_CHILD_SA message (dispatch).
func (sa *ikev2SA) handleCreateChildSA(h wire.Header, b []byte) {
	if h.Response() {
		sa.handleResponseV2(h, b) // ikev2_queue.go
		return
	}
	ps, ok := sa.receiveRequestV2(h, b)
	if !ok {
		return
	}
	kind, err := v2ClassifyCreateChild(ps)
	var out []wire.Payload
	switch {
	case err != nil:
		out = sa.refusalV2(err, "CREATE_CHILD_SA")
	case kind == v2RekeyIKE:
		out = sa.answerIKERekey(ps) // ikev2_rekey.go
	default:
		out = sa.answerChildV2(ps, kind)
	}
	sa.answerV2(h, b, out)
}

// refusalV2 is the response payload of a refused request, logged.
func (sa *ikev2SA) refusalV2(err error, what string) []wire.Payload {
	n := &wire.Notify{NotifyType: wire.NotifyNoProposalChosen}
	var xe *exchange.Error
	if errors.As(err, &xe) {
		n = xe.Payload()
	}
	sa.logger().WithFields(logrus.Fields{"notify": n.NotifyType.String(), "exchange": what}).Warn("refusing the peer's request: " + err.Error())
	return []wire.Payload{n}
}

// answerChildV2 is the responder's new or rekeyed child SA. The pair's
// inbound SA is installed before the response leaves (ikev2_collision.go).
func (sa *ikev2SA) answerChildV2(ps []wire.Payload, kind v2CreateChildKind) []wire.Payload {
	t := sa.t
	req, err := v2ParseChildRequest(ps)
	if err != nil {
		return sa.refusalV2(err, kind.String())
	}
	var old *childSA
	if sa.x().closing {
		return sa.refusalV2(v2Refuse(wire.NotifyTemporaryFailure, "the IKE SA is being deleted"), kind.String())
	}
	if kind == v2RekeyChild {
		old = t.childByOutboundV2(req.rekeySPI)
		if e := v2RekeyVerdict(req.rekeySPI, t.rekeyTarget(old)); e != nil {
			return sa.refusalV2(e, kind.String())
		}
	} else if e := v2NewChildVerdict(len(t.children)); e != nil {
		return sa.refusalV2(e, kind.String())
	}
	pol, err := childPolicy(t.cfg.Phase2.Proposals)
	if err != nil {
		return sa.refusalV2(err, kind.String())
	}
	lim := v2ChildLimits{policy: pol, rule: v2Rule(t.cfg.Phase2.Selection), transport: t.cfg.Phase2.Mode == childsa.ModeTransport,
		remote: []wire.Selector{wire.SelectorFromPrefix(t.cfg.Phase2.RemoteTS)}, local: []wire.Selector{wire.SelectorFromPrefix(t.cfg.Phase2.LocalTS)}}
	spi, err := sa.e.dp.AllocateSPI(isakmp.ProtoESP)
	if err != nil {
		return sa.refusalV2(v2Refuse(wire.NotifyNoAdditionalSAs, "allocate SPI: %v", err), kind.String())
	}
	nonce := randomBytes(v2NonceLen)
	a, err := v2AnswerChild(req, lim, spi, nonce, func(g wire.DHGroup) (dh.Key, error) {
		grp, err := dh.ByID(uint16(g))
		if err != nil {
			return nil, err
		}
		return sa.e.newDHKey(grp, rand.Reader)
	})
	var pair ChildSAPair
	var prop Phase2Proposal
	if err == nil {
		pair, prop, err = sa.childPairV2(v2ChildKeys{prf: sa.prf, skd: sa.keys.D, gir: a.gir, ni: req.nonce, nr: nonce,
			choice: a.choice, spiIn: spi, spiOut: a.spiOut}, a.narrowed.TSi, a.narrowed.TSr, req.transport)
		if err != nil {
			err = v2Refuse(wire.NotifyTSUnacceptable, "%v", err)
		}
	}
	if err == nil {
		c := &childSA{pair: pair, proposal: prop, established: timeNow(), ikev2: sa}
		err = t.childStagedTheirs(c, old, exchange.Nonces{Ni: req.nonce, Nr: nonce}) // ikev2_collision.go
	}
	if err != nil {
		_ = sa.e.dp.Delete(isakmp.ProtoESP, spi)
		return sa.refusalV2(err, kind.String())
	}
	return a.payloads
}

// childByOutboundV2 finds the IKEv2 pair that sends to spi.
func (t *tunnel) childByOutboundV2(spi uint32) *childSA {
	for _, c := range t.children {
		if c.ikev2 != nil && c.pair.Outbound.SPI == spi {
			return c
		}
	}
	return nil
}
