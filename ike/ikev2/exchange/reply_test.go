package exchange

import (
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// TestCheckReply: the initiator accepts only a reply made of what it
// offered, one transform per type.
func TestCheckReply(t *testing.T) {
	offer := sa(ike(cbc128, cbc256, sha1, sha2i, prf1, prf256, dh14, dh19), ike(gcm128, inone, prf384, dh20), esp(cbc128, sha1, esnNo))
	one := func(n uint8, proto wire.ProtocolID, spi []byte, ts ...wire.Transform) *wire.SA {
		return &wire.SA{Proposals: []wire.Proposal{{Number: n, Protocol: proto, SPI: spi, Transforms: ts}}}
	}
	cbc256attr := cbc256
	cbc256attr.Attributes = []wire.Attribute{wire.KeyLength(192)}
	cases := []struct {
		name  string
		reply *wire.SA
		want  string // error text, "" for success
	}{
		{"first proposal", one(1, wire.ProtoIKE, nil, cbc256, sha2i, prf256, dh19), ""},
		{"reordered types", one(1, wire.ProtoIKE, nil, dh14, prf1, sha1, cbc128), ""},
		{"AEAD with NONE", one(2, wire.ProtoIKE, nil, gcm128, inone, prf384, dh20), ""},
		{"AEAD, NONE left out", one(2, wire.ProtoIKE, nil, gcm128, prf384, dh20), ""},
		{"ESP", one(3, wire.ProtoESP, espSPI, cbc128, sha1, esnNo), ""},

		{"nil", nil, "exactly one proposal"},
		{"two proposals", &wire.SA{Proposals: []wire.Proposal{offer.Proposals[0], offer.Proposals[1]}}, "exactly one proposal"},
		{"unknown number", one(4, wire.ProtoIKE, nil, cbc128, sha1, prf1, dh14), "which we did not send"},
		{"other protocol", one(1, wire.ProtoESP, nil, cbc128, sha1, prf1, dh14), "we offered IKE"},
		{"SPI size", one(1, wire.ProtoIKE, ikeSPI8, cbc128, sha1, prf1, dh14), "8-byte SPI"},
		{"two of a type", one(1, wire.ProtoIKE, nil, cbc128, cbc256, sha1, prf1, dh14), "two ENCR"},
		{"not offered", one(1, wire.ProtoIKE, nil, gcm128, prf1, dh14), "did not offer"},
		{"other key length", one(1, wire.ProtoIKE, nil, cbc256attr, sha1, prf1, dh14), "did not offer"},
		{"from another proposal", one(1, wire.ProtoIKE, nil, cbc128, sha1, prf384, dh14), "did not offer"},
		{"type left out", one(1, wire.ProtoIKE, nil, cbc128, sha1, dh14), "no PRF"},
		{"empty", one(1, wire.ProtoIKE, nil), "no ENCR"},
	}
	for _, c := range cases {
		ch, err := CheckReply(offer, c.reply)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		case c.want == "" && ch.Encr.Name == "":
			t.Errorf("%s: no encryption in %+v", c.name, ch)
		}
	}
	// Every reply our responder makes passes the initiator's check.
	for _, rule := range []Rule{FirstAcceptable, LowestValue} {
		ch, err := Select(offer, AWSIKE(), Options{Rule: rule})
		if err != nil {
			t.Fatal(err)
		}
		back, err := CheckReply(offer, ch.Reply(nil))
		if err != nil || back.String() != ch.String() || back.DH != ch.DH || back.PRF != ch.PRF {
			t.Errorf("%s: our own reply %s comes back as %v (%v)", rule, ch, back, err)
		}
	}
}
