package exchange

import (
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// TestSelectIKE: the responder's choice for the IKE SA under AWS's policy,
// with both rules, and the refusals of malformed or unacceptable offers.
func TestSelectIKE(t *testing.T) {
	unknownType := wire.Transform{Type: 6, ID: 1}
	badAttr := wire.Transform{Type: wire.TransformENCR, ID: uint16(wire.EncrAESCBC),
		Attributes: []wire.Attribute{wire.KeyLength(128), {Type: 99, TV: true, Value: 1}}}
	tlvKeyLen := wire.Transform{Type: wire.TransformENCR, ID: uint16(wire.EncrAESCBC),
		Attributes: []wire.Attribute{{Type: wire.AttrKeyLength, Data: []byte{0, 128}}}}
	noKeyLen := wire.Encr(wire.EncrAESCBC, 0)
	cases := []struct {
		name   string
		sa     *wire.SA
		opt    Options
		want   string // Choice.String(), or "" when refused
		notify wire.NotifyType
		reason string // in the error text
	}{
		{"one proposal", sa(ike(cbc256, sha2i, prf256, dh14)), Options{},
			"ENCR_AES_CBC-256/AUTH_HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", 0, ""},
		{"first acceptable takes the initiator's first",
			sa(ike(gcm256, prf384, dh20), ike(cbc128, sha1, prf1, dh2)), Options{Rule: FirstAcceptable},
			"ENCR_AES_GCM_16-256/PRF_HMAC_SHA2_384/ECP_384", 0, ""},
		{"lowest value takes AWS's lowest whatever the order",
			sa(ike(gcm256, prf384, dh20), ike(cbc128, sha1, prf1, dh2)), Options{Rule: LowestValue},
			"ENCR_AES_CBC-128/AUTH_HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", 0, ""},
		{"first acceptable inside a proposal", sa(ike(cbc256, cbc128, sha512, sha1, prf384, prf1, dh19, dh14)),
			Options{}, "ENCR_AES_CBC-256/AUTH_HMAC_SHA2_512_256/PRF_HMAC_SHA2_384/ECP_256", 0, ""},
		{"lowest value inside a proposal", sa(ike(cbc256, cbc128, sha512, sha1, prf384, prf1, dh19, dh14)),
			Options{Rule: LowestValue}, "ENCR_AES_CBC-128/AUTH_HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048", 0, ""},
		{"the KE group wins over the rule", sa(ike(cbc128, sha1, prf1, dh14, dh19, dh2)),
			Options{Rule: LowestValue, KEGroup: wire.DHECP256}, "ENCR_AES_CBC-128/AUTH_HMAC_SHA1_96/PRF_HMAC_SHA1/ECP_256", 0, ""},
		{"an unacceptable KE group leaves the rule", sa(ike(cbc128, sha1, prf1, dh5, dh19, dh14)),
			Options{Rule: LowestValue, KEGroup: wire.DHModp1536}, "ENCR_AES_CBC-128/AUTH_HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048", 0, ""},
		{"AEAD without integrity", sa(ike(gcm128, prf256, dh19)), Options{},
			"ENCR_AES_GCM_16-128/PRF_HMAC_SHA2_256/ECP_256", 0, ""},
		{"AEAD with INTEG NONE echoes NONE", sa(ike(gcm128, inone, prf256, dh19)), Options{},
			"ENCR_AES_GCM_16-128/NONE/PRF_HMAC_SHA2_256/ECP_256", 0, ""},
		{"AEAD and CBC with integrity: CBC", sa(ike(gcm128, cbc256, sha2i, prf256, dh19)), Options{},
			"ENCR_AES_CBC-256/AUTH_HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", 0, ""},
		{"unknown type refuses only its proposal (3.3.6)", sa(ike(cbc128, sha1, prf1, dh2, unknownType), ike(cbc256, sha2i, prf256, dh14)),
			Options{}, "ENCR_AES_CBC-256/AUTH_HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", 0, ""},
		{"unknown attribute refuses only its transform", sa(ike(badAttr, cbc256, sha2i, prf256, dh14)), Options{},
			"ENCR_AES_CBC-256/AUTH_HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", 0, ""},
		{"IKE rekey with an 8-byte SPI", &wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtoIKE, SPI: ikeSPI8,
			Transforms: []wire.Transform{cbc128, sha1, prf1, dh14}}}}, Options{IKERekey: true},
			"ENCR_AES_CBC-128/AUTH_HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048", 0, ""},

		{"nil SA", nil, Options{}, "", wire.NotifyInvalidSyntax, "without proposals"},
		{"no proposals", &wire.SA{}, Options{}, "", wire.NotifyInvalidSyntax, "without proposals"},
		{"duplicate proposal numbers", &wire.SA{Proposals: []wire.Proposal{
			{Number: 1, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{cbc128, sha1, prf1, dh2}},
			{Number: 1, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{cbc128, sha1, prf1, dh2}}}},
			Options{}, "", wire.NotifyInvalidSyntax, "proposal 2 has number 1"},
		{"numbering starts at 2", &wire.SA{Proposals: []wire.Proposal{{Number: 2, Protocol: wire.ProtoIKE,
			Transforms: []wire.Transform{cbc128, sha1, prf1, dh2}}}}, Options{}, "", wire.NotifyInvalidSyntax, "has number 2"},
		{"3DES", sa(ike(des3, sha1, prf1, dh2)), Options{}, "", wire.NotifyNoProposalChosen, "encryption (3 not accepted)"},
		{"AES-192", sa(ike(cbc192, sha1, prf1, dh2)), Options{}, "", wire.NotifyNoProposalChosen, "ENCR_AES_CBC-192 not accepted"},
		{"AES without key length", sa(ike(noKeyLen, sha1, prf1, dh2)), Options{}, "", wire.NotifyNoProposalChosen, "without a key length"},
		{"key length as TLV", sa(ike(tlvKeyLen, sha1, prf1, dh2)), Options{}, "", wire.NotifyNoProposalChosen, "do not understand"},
		{"no PRF", sa(ike(cbc128, sha1, dh2)), Options{}, "", wire.NotifyNoProposalChosen, "no PRF transform"},
		{"no DH", sa(ike(cbc128, sha1, prf1)), Options{}, "", wire.NotifyNoProposalChosen, "no DH transform"},
		{"no ENCR", sa(ike(sha1, prf1, dh2)), Options{}, "", wire.NotifyNoProposalChosen, "no ENCR transform"},
		{"CBC without integrity", sa(ike(cbc128, prf1, dh2)), Options{}, "", wire.NotifyNoProposalChosen, "no acceptable integrity"},
		{"AEAD with integrity only", sa(ike(gcm128, sha2i, prf256, dh19)), Options{}, "", wire.NotifyNoProposalChosen, "AEAD cipher offered with integrity"},
		{"ESN in an IKE proposal", sa(ike(cbc128, sha1, prf1, dh2, esnNo)), Options{}, "", wire.NotifyNoProposalChosen, "ESN is not used with IKE"},
		{"DH NONE for IKE", sa(ike(cbc128, sha1, prf1, dhnone)), Options{}, "", wire.NotifyNoProposalChosen, "no acceptable DH group"},
		{"group 5 for the IKE SA", sa(ike(cbc128, sha1, prf1, dh5)), Options{}, "", wire.NotifyNoProposalChosen, "MODP_1536 not accepted"},
		{"ESP proposal in the IKE SA", sa(esp(cbc128, sha1, esnNo)), Options{}, "", wire.NotifyNoProposalChosen, "protocol ESP, want IKE"},
		{"SPI in IKE_SA_INIT", &wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtoIKE, SPI: ikeSPI8,
			Transforms: []wire.Transform{cbc128, sha1, prf1, dh14}}}}, Options{}, "", wire.NotifyNoProposalChosen, "SPI of 8 bytes, want 0"},
		{"IKE rekey with a zero SPI", &wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtoIKE, SPI: make([]byte, 8),
			Transforms: []wire.Transform{cbc128, sha1, prf1, dh14}}}}, Options{IKERekey: true}, "", wire.NotifyNoProposalChosen, "IKE SPI of zeros"},
		{"no transforms", sa(ike()), Options{}, "", wire.NotifyNoProposalChosen, "no transforms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch, err := Select(c.sa, AWSIKE(), c.opt)
			if got := notifyOf(t, err); got != c.notify {
				t.Fatalf("notify %v (%v), want %v", got, err, c.notify)
			}
			if err != nil {
				if !strings.Contains(err.Error(), c.reason) {
					t.Errorf("error %q does not say %q", err, c.reason)
				}
				return
			}
			if ch.String() != c.want {
				t.Errorf("chose %s, want %s", ch, c.want)
			}
			checkReply(t, c.sa, ch)
		})
	}
}

// checkReply: the reply is one proposal with the chosen number and, per
// type the offered proposal had, exactly one transform that it offered
// (section 2.7); it survives the codec.
func checkReply(t *testing.T, offer *wire.SA, ch *Choice) {
	t.Helper()
	reply := ch.Reply(nil)
	if len(reply.Proposals) != 1 || reply.Proposals[0].Number != ch.Number {
		t.Fatalf("reply %+v", reply)
	}
	offered := offer.Proposals[ch.Number-1]
	seen := map[wire.TransformType]int{}
	for _, rt := range reply.Proposals[0].Transforms {
		seen[rt.Type]++
		found := false
		for _, ot := range offered.Transforms {
			found = found || ot.Name() == rt.Name() && ot.Type == rt.Type
		}
		if !found {
			t.Errorf("reply transform %s was not offered in proposal %d", rt.Name(), ch.Number)
		}
	}
	for ty, n := range seen {
		if n != 1 {
			t.Errorf("%d transforms of type %s in the reply", n, ty)
		}
	}
	b, err := (&wire.Message{Header: wire.Header{Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagResponse},
		Payloads: []wire.Payload{reply}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wire.Decode(b); err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
}

// TestSelectChild: ESP proposals under AWS's child policy.
func TestSelectChild(t *testing.T) {
	noPFS := AWSChild()
	noPFS.DH = append(noPFS.DH, wire.DHNone)
	reserved := esp(cbc128, sha1, esnNo, dh14)
	reserved.SPI = []byte{0, 0, 0, 0xff}
	cases := []struct {
		name   string
		pol    *Policy
		sa     *wire.SA
		opt    Options
		want   string
		dh     wire.DHGroup
		notify wire.NotifyType
		reason string
	}{
		{"PFS with the KE group", AWSChild(), sa(esp(cbc128, sha2i, dh2, dh14, esnNo)), Options{KEGroup: wire.DHModp2048},
			"ENCR_AES_CBC-128/AUTH_HMAC_SHA2_256_128/MODP_2048/NO_ESN", wire.DHModp2048, 0, ""},
		{"group 5 for a child", AWSChild(), sa(esp(gcm256, dh5, esnNo)), Options{KEGroup: wire.DHModp1536},
			"ENCR_AES_GCM_16-256/MODP_1536/NO_ESN", wire.DHModp1536, 0, ""},
		{"IKE_AUTH ignores DH", AWSChild(), sa(esp(gcm128, dh14, esnNo)), Options{IgnoreDH: true},
			"ENCR_AES_GCM_16-128/NO_ESN", wire.DHNone, 0, ""},
		{"IKE_AUTH without DH", AWSChild(), sa(esp(cbc256, sha512, esnNo)), Options{IgnoreDH: true},
			"ENCR_AES_CBC-256/AUTH_HMAC_SHA2_512_256/NO_ESN", wire.DHNone, 0, ""},
		{"no KE: NONE offered and accepted", noPFS, sa(esp(cbc128, sha1, dh14, dhnone, esnNo)), Options{},
			"ENCR_AES_CBC-128/AUTH_HMAC_SHA1_96/NONE/NO_ESN", wire.DHNone, 0, ""},
		{"ESN yes or no: no", AWSChild(), sa(esp(cbc128, sha1, esnYes, esnNo, dh14)), Options{KEGroup: wire.DHModp2048},
			"ENCR_AES_CBC-128/AUTH_HMAC_SHA1_96/NO_ESN/MODP_2048", wire.DHModp2048, 0, ""},

		{"AWS requires PFS", AWSChild(), sa(esp(cbc128, sha1, esnNo)), Options{}, "", 0, wire.NotifyNoProposalChosen, "requires PFS"},
		{"no ESN", AWSChild(), sa(esp(cbc128, sha1, dh14)), Options{}, "", 0, wire.NotifyNoProposalChosen, "no ESN transform"},
		{"ESN yes only", AWSChild(), sa(esp(cbc128, sha1, dh14, esnYes)), Options{}, "", 0, wire.NotifyNoProposalChosen, "no acceptable ESN"},
		{"PRF in ESP", AWSChild(), sa(esp(cbc128, sha1, prf1, dh14, esnNo)), Options{}, "", 0, wire.NotifyNoProposalChosen, "PRF is not used with ESP"},
		{"reserved SPI", AWSChild(), sa(reserved), Options{}, "", 0, wire.NotifyNoProposalChosen, "reserved ESP SPI"},
		{"AH", AWSChild(), sa(wire.Proposal{Protocol: wire.ProtoAH, SPI: espSPI, Transforms: []wire.Transform{sha1, esnNo}}),
			Options{}, "", 0, wire.NotifyNoProposalChosen, "protocol AH, want ESP"},
		{"IKE SPI size for ESP", AWSChild(), sa(wire.Proposal{Protocol: wire.ProtoESP, SPI: ikeSPI8, Transforms: []wire.Transform{cbc128, sha1, esnNo}}),
			Options{}, "", 0, wire.NotifyNoProposalChosen, "SPI of 8 bytes, want 4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch, err := Select(c.sa, c.pol, c.opt)
			if got := notifyOf(t, err); got != c.notify {
				t.Fatalf("notify %v (%v), want %v", got, err, c.notify)
			}
			if err != nil {
				if !strings.Contains(err.Error(), c.reason) {
					t.Errorf("error %q does not say %q", err, c.reason)
				}
				return
			}
			if ch.String() != c.want || ch.DH != c.dh {
				t.Errorf("chose %s with DH %s, want %s with %s", ch, ch.DH, c.want, c.dh)
			}
			if string(ch.PeerSPI) != string(c.sa.Proposals[ch.Number-1].SPI) {
				t.Errorf("peer SPI %x", ch.PeerSPI)
			}
			checkReply(t, c.sa, ch)
		})
	}
}
