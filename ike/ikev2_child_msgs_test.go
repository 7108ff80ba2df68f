package ike

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net/netip"
	"testing"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// The CREATE_CHILD_SA messages and keys of ikev2_create_child_sa.go,
// initiator and responder against each other through the wire codec.

func v2TestNonce(t *testing.T) []byte {
	t.Helper()
	n := make([]byte, 32)
	if _, err := rand.Read(n); err != nil {
		t.Fatal(err)
	}
	return n
}

func v2TestGen(g wire.DHGroup) (dh.Key, error) {
	grp, err := dh.ByID(uint16(g))
	if err != nil {
		return nil, err
	}
	return grp.Generate(rand.Reader)
}

func v2TestPolicy(pfs bool) *exchange.Policy {
	p := &exchange.Policy{Protocol: wire.ProtoESP, Encr: []exchange.Encr{{ID: wire.EncrAESGCM16, KeyBits: 256}, {ID: wire.EncrAESCBC, KeyBits: 128}},
		Integ: []wire.IntegID{wire.IntegHMACSHA2256128}, DH: []wire.DHGroup{wire.DHNone}, ESN: []wire.ESN{wire.ESNNo}}
	if pfs {
		p.DH = []wire.DHGroup{wire.DHECP256, wire.DHModp2048}
	}
	return p
}

// v2TestOffer is an initiator's offer with CBC/SHA-256 (and the group for PFS).
func v2TestOffer(t *testing.T, spi uint32, group wire.DHGroup, rekeys uint32) *v2ChildOffer {
	t.Helper()
	ts := []wire.Transform{wire.Encr(wire.EncrAESCBC, 128), wire.Integ(wire.IntegHMACSHA2256128)}
	o := &v2ChildOffer{spiIn: spi, nonce: v2TestNonce(t), group: group, rekeys: rekeys,
		tsi: &wire.TS{Selectors: exchange.AWSSelectors()}, tsr: &wire.TS{Responder: true, Selectors: exchange.AWSSelectors()}}
	if group != wire.DHNone {
		ts = append(ts, wire.DH(group))
		k, err := v2TestGen(group)
		if err != nil {
			t.Fatal(err)
		}
		o.dhKey = k
	}
	ts = append(ts, wire.ESNTransform(wire.ESNNo))
	o.sa = &wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtoESP, SPI: spi4(spi), Transforms: ts}}}
	return o
}

// v2RoundTrip encodes and decodes payloads the way they cross the wire.
func v2RoundTrip(t *testing.T, ps []wire.Payload) []wire.Payload {
	t.Helper()
	first, b, err := wire.AppendPayloads(nil, ps)
	if err != nil {
		t.Fatal(err)
	}
	out, err := wire.DecodePayloads(first, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func v2Limits(pfs bool) v2ChildLimits {
	return v2ChildLimits{policy: v2TestPolicy(pfs), rule: exchange.FirstAcceptable, remote: exchange.AWSSelectors(), local: exchange.AWSSelectors()}
}

// TestV2CreateChildPairs: a child SA created and rekeyed with and without
// PFS gives both ends mirrored pairs: what one sends with, the other
// opens with (SPI, algorithms, keys); PFS changes the keys.
func TestV2CreateChildPairs(t *testing.T) {
	skd := bytes.Repeat([]byte{7}, 32)
	prf, err := keymat.PRFByID(uint16(wire.PRFHMACSHA2256))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		group  wire.DHGroup
		rekeys uint32
	}{{"new", wire.DHNone, 0}, {"rekey", wire.DHNone, 0x1234}, {"rekey-pfs-ecp256", wire.DHECP256, 0x1234}, {"new-pfs-modp2048", wire.DHModp2048, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			o := v2TestOffer(t, 0xc0000001, tc.group, tc.rekeys)
			req := v2RoundTrip(t, o.payloads())
			kind, err := v2ClassifyCreateChild(req)
			want := v2NewChild
			if tc.rekeys != 0 {
				want = v2RekeyChild
			}
			if err != nil || kind != want {
				t.Fatalf("classified as %v (%v), want %v", kind, err, want)
			}
			r, err := v2ParseChildRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			if r.rekey != (tc.rekeys != 0) || r.rekeySPI != tc.rekeys {
				t.Fatalf("REKEY_SA read as %v %08x, want %08x", r.rekey, r.rekeySPI, tc.rekeys)
			}
			a, err := v2AnswerChild(r, v2Limits(tc.group != wire.DHNone), 0xd0000002, v2TestNonce(t), v2TestGen)
			if err != nil {
				t.Fatal(err)
			}
			res, err := v2ReadChildResponse(o, v2RoundTrip(t, a.payloads))
			if err != nil {
				t.Fatal(err)
			}
			if (res.gir == nil) != (tc.group == wire.DHNone) || !bytes.Equal(res.gir, a.gir) {
				t.Fatalf("PFS secrets: initiator %d bytes, responder %d bytes, equal %v", len(res.gir), len(a.gir), bytes.Equal(res.gir, a.gir))
			}
			base := childsa.Pair{Tunnel: "t"}
			pi, err := v2DerivePair(v2ChildKeys{prf: prf, skd: skd, gir: res.gir, ni: o.nonce, nr: res.nonce, choice: res.choice, initiator: true, spiIn: o.spiIn, spiOut: res.spiOut}, base)
			if err != nil {
				t.Fatal(err)
			}
			pr, err := v2DerivePair(v2ChildKeys{prf: prf, skd: skd, gir: a.gir, ni: r.nonce, nr: a.nonce, choice: a.choice, spiIn: a.spiIn, spiOut: a.spiOut}, base)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSA(pi.Outbound, pr.Inbound) || !sameSA(pr.Outbound, pi.Inbound) {
				t.Fatalf("pairs do not mirror:\ninitiator %+v\nresponder %+v", pi, pr)
			}
			if pi.Outbound.SPI != 0xd0000002 || pi.Inbound.SPI != 0xc0000001 || bytes.Equal(pi.Outbound.EncKey, pi.Inbound.EncKey) {
				t.Fatalf("initiator pair SPIs %08x/%08x or keys not per direction", pi.Inbound.SPI, pi.Outbound.SPI)
			}
			nopfs, _ := v2DerivePair(v2ChildKeys{prf: prf, skd: skd, ni: o.nonce, nr: res.nonce, choice: res.choice, initiator: true, spiIn: 1, spiOut: 2}, base)
			if tc.group != wire.DHNone && bytes.Equal(nopfs.Outbound.EncKey, pi.Outbound.EncKey) {
				t.Fatal("the PFS secret did not change the keys")
			}
		})
	}
}

// TestV2CreateChildRefusals: what a responder answers with a notify and
// what an initiator refuses in a response.
func TestV2CreateChildRefusals(t *testing.T) {
	o := v2TestOffer(t, 0xc0000001, wire.DHNone, 0)
	var xe *exchange.Error
	r, err := v2ParseChildRequest(v2RoundTrip(t, v2TestOffer(t, 0xc0000001, wire.DHNone, 0).payloads()))
	if err != nil {
		t.Fatal(err)
	}
	// PFS required, no group offered: NO_PROPOSAL_CHOSEN; a group offered
	// without its KE payload: INVALID_KE_PAYLOAD naming the group.
	if _, err = v2AnswerChild(r, v2Limits(true), 0x1000, v2TestNonce(t), v2TestGen); !errors.As(err, &xe) || xe.Notify != wire.NotifyNoProposalChosen {
		t.Fatalf("PFS required, no group offered: %v", err)
	}
	pfsO := v2TestOffer(t, 0xc0000001, wire.DHECP256, 0)
	pfsO.dhKey = nil
	rk, err := v2ParseChildRequest(v2RoundTrip(t, pfsO.payloads()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = v2AnswerChild(rk, v2Limits(true), 0x1000, v2TestNonce(t), v2TestGen); !errors.As(err, &xe) || xe.Notify != wire.NotifyInvalidKEPayload || !bytes.Equal(xe.Data, []byte{0, 19}) {
		t.Fatalf("group offered without KE: %v", err)
	}
	_, err = v2AnswerChild(r, v2Limits(false), 0x1000, v2TestNonce(t), v2TestGen)
	if err != nil {
		t.Fatalf("no PFS offered and accepted: %v", err)
	}
	// Transport asked, tunnel policy: NO_PROPOSAL_CHOSEN.
	r.transport = true
	if _, err = v2AnswerChild(r, v2Limits(false), 0x1000, v2TestNonce(t), v2TestGen); !errors.As(err, &xe) || xe.Notify != wire.NotifyNoProposalChosen {
		t.Fatalf("transport mode against a tunnel-mode policy: %v", err)
	}
	r.transport = false
	// Selectors outside ours: TS_UNACCEPTABLE.
	lim := v2Limits(false)
	lim.local = []wire.Selector{wire.SelectorFromPrefix(netip.MustParsePrefix("10.9.0.0/16"))}
	r.tsr = &wire.TS{Responder: true, Selectors: []wire.Selector{wire.SelectorFromPrefix(netip.MustParsePrefix("192.168.0.0/16"))}}
	if _, err = v2AnswerChild(r, lim, 0x1000, v2TestNonce(t), v2TestGen); !errors.As(err, &xe) || xe.Notify != wire.NotifyTSUnacceptable {
		t.Fatalf("disjoint selectors: %v", err)
	}
	// Malformed requests: INVALID_SYNTAX.
	for name, ps := range map[string][]wire.Payload{
		"no SA":        {&wire.Nonce{Data: o.nonce}, o.tsi, o.tsr},
		"two nonces":   {o.sa, &wire.Nonce{Data: o.nonce}, &wire.Nonce{Data: o.nonce}, o.tsi, o.tsr},
		"no TS":        {o.sa, &wire.Nonce{Data: o.nonce}},
		"REKEY_SA IKE": {&wire.Notify{Protocol: wire.ProtoIKE, NotifyType: wire.NotifyRekeySA}, o.sa, &wire.Nonce{Data: o.nonce}, o.tsi, o.tsr},
	} {
		_, err := v2ParseChildRequest(ps)
		if !errors.As(err, &xe) || xe.Notify != wire.NotifyInvalidSyntax {
			t.Errorf("%s: %v, want INVALID_SYNTAX", name, err)
		}
	}
	if _, err := v2ClassifyCreateChild([]wire.Payload{&wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtoIKE, SPI: make([]byte, 8)}}}, o.tsi}); err == nil {
		t.Error("an IKE SA rekey with traffic selectors was accepted")
	}
	// The responder's error notify reaches the initiator as v2Refused.
	var ref *v2Refused
	if _, err := v2ReadChildResponse(o, []wire.Payload{&wire.Notify{NotifyType: wire.NotifyTemporaryFailure}}); !errors.As(err, &ref) || ref.Notify != wire.NotifyTemporaryFailure {
		t.Fatalf("TEMPORARY_FAILURE response read as %v", err)
	}
	// A response that widens the selectors or adds a KE is refused.
	r.tsr = o.tsr
	a, err := v2AnswerChild(r, v2Limits(false), 0x1000, v2TestNonce(t), v2TestGen)
	if err != nil {
		t.Fatal(err)
	}
	if a, err = v2AnswerChild(r, v2Limits(false), 0x1000, v2TestNonce(t), v2TestGen); err != nil {
		t.Fatal(err)
	}
	k, _ := v2TestGen(wire.DHECP256)
	if _, err := v2ReadChildResponse(o, append(a.payloads, &wire.KE{Group: wire.DHECP256, Data: k.Public()})); err == nil {
		t.Error("a KE payload in a response without PFS was accepted")
	}
	narrowO := v2TestOffer(t, 0xc0000001, wire.DHNone, 0)
	narrowO.tsr = &wire.TS{Responder: true, Selectors: []wire.Selector{wire.SelectorFromPrefix(netip.MustParsePrefix("10.0.0.0/8"))}}
	if _, err := v2ReadChildResponse(narrowO, a.payloads); err == nil {
		t.Error("a response wider than the offered TSr was accepted")
	}
}

// TestV2SelectorPrefix: the data path takes exactly one prefix per side.
func TestV2SelectorPrefix(t *testing.T) {
	p, err := v2SelectorPrefix(&wire.TS{Selectors: exchange.AWSSelectors()})
	if err != nil || p != netip.MustParsePrefix("0.0.0.0/0") {
		t.Fatalf("0.0.0.0/0 read as %v, %v", p, err)
	}
	s := wire.SelectorFromPrefix(netip.MustParsePrefix("10.0.0.0/8"))
	s.Protocol = 6
	for _, ts := range []*wire.TS{nil, {}, {Selectors: []wire.Selector{s}}, {Selectors: append(exchange.AWSSelectors(), exchange.AWSSelectors()...)}} {
		if _, err := v2SelectorPrefix(ts); err == nil {
			t.Errorf("%+v accepted as one prefix", ts)
		}
	}
}
