package exchange

import (
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// TestSelectHostile: large and degenerate offers are refused or chosen
// from without trouble, with bounded reasons.
func TestSelectHostile(t *testing.T) {
	bad := ike(des3, sha1, prf1, dh2)
	var many []wire.Proposal
	for i := 0; i < wire.MaxProposals-1; i++ {
		many = append(many, bad)
	}
	ch, err := Select(sa(append(many, ike(cbc128, sha1, prf1, dh14))...), AWSIKE(), Options{Rule: LowestValue})
	if err != nil || ch.Number != wire.MaxProposals {
		t.Errorf("64th proposal: %v %v", ch, err)
	}
	_, err = Select(sa(append(many, bad, bad)...), AWSIKE(), Options{})
	if notifyOf(t, err) != wire.NotifyInvalidSyntax {
		t.Errorf("65 proposals: %v", err)
	}
	// 255 transforms, all unacceptable but the last four.
	var ts []wire.Transform
	for i := 0; i < 251; i++ {
		ts = append(ts, wire.Transform{Type: wire.TransformENCR, ID: uint16(1000 + i)})
	}
	ts = append(ts, gcm256, prf384, dh20, inone)
	ch, err = Select(sa(ike(ts...)), AWSIKE(), Options{})
	if err != nil || ch.String() != "ENCR_AES_GCM_16-256/PRF_HMAC_SHA2_384/ECP_384/NONE" {
		t.Errorf("255 transforms: %v %v", ch, err)
	}
	_, err = Select(sa(ike(append(ts[:251:251], prf1, dh14)...)), AWSIKE(), Options{})
	if notifyOf(t, err) != wire.NotifyNoProposalChosen || !strings.Contains(err.Error(), "and 243 more") || len(err.Error()) > 2000 {
		t.Errorf("refusal of 251 ciphers is not bounded: %d bytes: %.300s", len(err.Error()), err)
	}
	// duplicated transforms: still one per type in the reply
	ch, err = Select(sa(ike(cbc128, cbc128, sha1, sha1, prf1, prf1, dh14, dh14)), AWSIKE(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkReply(t, sa(ike(cbc128, cbc128, sha1, sha1, prf1, prf1, dh14, dh14)), ch)
	// an attribute-laden PRF
	withAttr := prf1
	withAttr.Attributes = []wire.Attribute{wire.KeyLength(128)}
	if _, err := Select(sa(ike(cbc128, sha1, withAttr, dh14)), AWSIKE(), Options{}); notifyOf(t, err) != wire.NotifyNoProposalChosen {
		t.Errorf("PRF with a key length: %v", err)
	}
}

// TestPolicyCheck: policies that could never be negotiated are refused
// before any peer input is read; AWS's pass.
func TestPolicyCheck(t *testing.T) {
	for _, p := range []*Policy{AWSIKE(), AWSChild()} {
		if err := p.Check(); err != nil {
			t.Errorf("AWS policy: %v", err)
		}
	}
	mod := func(base *Policy, f func(*Policy)) *Policy { f(base); return base }
	for name, p := range map[string]*Policy{
		"AH":              {Protocol: wire.ProtoAH},
		"IKE without PRF": mod(AWSIKE(), func(p *Policy) { p.PRF = nil }),
		"IKE with ESN":    mod(AWSIKE(), func(p *Policy) { p.ESN = []wire.ESN{wire.ESNNo} }),
		"ESP with PRF":    mod(AWSChild(), func(p *Policy) { p.PRF = []wire.PRFID{wire.PRFHMACSHA1} }),
		"ESP without ESN": mod(AWSChild(), func(p *Policy) { p.ESN = nil }),
		"no encryption":   mod(AWSIKE(), func(p *Policy) { p.Encr = nil }),
		"AES-192":         mod(AWSIKE(), func(p *Policy) { p.Encr = []Encr{{wire.EncrAESCBC, 192}} }),
		"CBC without integrity": mod(AWSIKE(), func(p *Policy) {
			p.Integ = nil
		}),
		"integrity NONE":  mod(AWSIKE(), func(p *Policy) { p.Integ = []wire.IntegID{wire.IntegNone} }),
		"group 1":         mod(AWSIKE(), func(p *Policy) { p.DH = []wire.DHGroup{1} }),
		"DH NONE for IKE": mod(AWSIKE(), func(p *Policy) { p.DH = []wire.DHGroup{wire.DHNone} }),
		"ESN 7":           mod(AWSChild(), func(p *Policy) { p.ESN = []wire.ESN{7} }),
	} {
		if err := p.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := Select(sa(ike(cbc128, sha1, prf1, dh14)), p, Options{}); err == nil {
			t.Errorf("%s: Select ran with it", name)
		}
	}
}
