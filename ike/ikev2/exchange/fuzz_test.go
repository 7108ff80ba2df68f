package exchange

import (
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// fuzzSeeds are encoded messages: the SA payloads of the table tests and
// strongSwan's captured IKE_SA_INIT requests.
func fuzzSeeds(f *testing.F, ps ...[]wire.Payload) {
	for _, p := range ps {
		b, err := (&wire.Message{Header: wire.Header{Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagInitiator}, Payloads: p}).Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzSelect decodes a message and runs the selection on its SA payload
// with AWS's IKE and ESP policies and both rules; whatever is chosen must
// be a reply of one offered transform per type, acceptable to the policy,
// and the lowest-value choice is never above the first-acceptable one.
func FuzzSelect(f *testing.F) {
	fuzzSeeds(f,
		[]wire.Payload{sa(ike(cbc256, sha2i, prf256, dh14), ike(gcm128, prf384, dh19)), &wire.KE{Group: 19, Data: make([]byte, 64)}},
		[]wire.Payload{sa(ike(des3, gcm256, inone, sha1, prf1, dh5, dh2))},
		[]wire.Payload{sa(esp(cbc128, sha1, dh14, dhnone, esnNo, esnYes), esp(gcm256, esnNo))},
		[]wire.Payload{sa(ike(cbc128, sha1, prf1, dh2, wire.Transform{Type: 6, ID: 1}), ike(cbc192, sha512, prf384, dh20))},
	)
	for _, x := range loadInits(f) {
		f.Add(x.reqBytes)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wire.Decode(b)
		if err != nil {
			return
		}
		offer := findSA(m.Payloads)
		ke := wire.DHNone
		if k := findKE(m.Payloads); k != nil {
			ke = k.Group
		}
		for _, pol := range []*Policy{AWSIKE(), AWSChild()} {
			for _, ignore := range []bool{false, true} {
				opt := Options{KEGroup: ke, IgnoreDH: ignore}
				first, err1 := Select(offer, pol, opt)
				opt.Rule = LowestValue
				low, err2 := Select(offer, pol, opt)
				if (err1 == nil) != (err2 == nil) {
					t.Fatalf("rules disagree on acceptability: %v / %v", err1, err2)
				}
				if err1 != nil {
					notifyOf(t, err1)
					continue
				}
				checkReply(t, offer, first)
				checkReply(t, offer, low)
				checkAccepted(t, pol, first)
				// (IKE_AUTH's reply leaves out the DH transforms it ignored;
				// an initiator sends none there, section 1.2.)
				if _, err := CheckReply(offer, low.Reply(low.PeerSPI)); err != nil && !ignore {
					t.Fatalf("our reply %s fails the initiator's check: %v", low, err)
				}
				if ke == wire.DHNone && less(first.key, low.key) {
					t.Fatalf("lowest value %s is above first acceptable %s", low, first)
				}
			}
		}
	})
}

// checkAccepted: the choice is in the policy.
func checkAccepted(t *testing.T, pol *Policy, c *Choice) {
	t.Helper()
	if c.Protocol != pol.Protocol || rank(pol.Encr, Encr{wire.EncrID(c.Encr.ID), uint16(c.Encr.KeyBits)}) < 0 {
		t.Fatalf("chose %s outside the policy", c)
	}
	if !c.Encr.AEAD && rank(pol.Integ, wire.IntegID(c.Integ.ID)) < 0 || c.Encr.AEAD && c.Integ.ID != 0 {
		t.Fatalf("integrity %s with %s", c.Integ.Name, c.Encr.Name)
	}
	if c.DH != wire.DHNone && rank(pol.DH, c.DH) < 0 {
		t.Fatalf("group %s outside the policy", c.DH)
	}
}

// FuzzNarrow decodes a message and narrows its TSi/TSr against AWS's
// 0.0.0.0/0 and against a policy of subnets, ports and a protocol; every
// answered selector lies inside what was offered and what the policy
// allows.
func FuzzNarrow(f *testing.F) {
	fuzzSeeds(f,
		[]wire.Payload{tsOf(false, pfx("10.1.0.0/16")), tsOf(true, pfx("0.0.0.0/0"))},
		[]wire.Payload{tsOf(false, rng("10.1.2.3", "10.1.2.3", 17, 500, 500), pfx("10.1.0.0/16")), tsOf(true, rng("10.2.0.1", "10.2.0.1", 17, 53, 53), pfx("0.0.0.0/0"), pfx("::/0"))},
		[]wire.Payload{tsOf(false, pfx("2001:db8::/32"), rng("10.0.0.9", "10.0.0.1", 6, 90, 80)), tsOf(true, pfx("fd00::/8"))},
	)
	policies := [][]wire.Selector{AWSSelectors(), {pfx("10.0.0.0/8"), rng("192.168.0.0", "192.168.255.255", 6, 1024, 65535), pfx("fd00::/8")}}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wire.Decode(b)
		if err != nil {
			return
		}
		var tsi, tsr *wire.TS
		for _, p := range m.Payloads {
			if ts, ok := p.(*wire.TS); ok && ts.Responder && tsr == nil {
				tsr = ts
			} else if ok && !ts.Responder && tsi == nil {
				tsi = ts
			}
		}
		for _, remote := range policies {
			for _, local := range policies {
				n, err := Narrow(tsi, tsr, remote, local)
				if err != nil {
					notifyOf(t, err)
					continue
				}
				checkNarrowed(t, tsi, tsr, remote, local, n)
			}
		}
	})
}
