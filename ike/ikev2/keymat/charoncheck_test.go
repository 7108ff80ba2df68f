package keymat_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
)

// checker compares our values with the next dumps in charon's log.
type checker struct {
	t *testing.T
	v *charonValues
	n *int // values compared
}

// next returns charon's next value with label (fatal if there is none).
func (c checker) next(label string) []byte {
	c.t.Helper()
	b, err := c.v.next(label)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// eq checks ours against charon's next value with label.
func (c checker) eq(label string, ours []byte) {
	c.t.Helper()
	*c.n++
	if theirs := c.next(label); !bytes.Equal(ours, theirs) {
		c.t.Errorf("%s: ours %x, charon's %x", label, ours, theirs)
	}
}

// fatalIf ends the test on err; it returns v to allow must(f()) calls.
func fatalIf[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// checkCharonCase replays one connection of TestCharonKeys: IKE_SA_INIT
// (from the capture), SKEYSEED and SK_*, both AUTH values, the first
// CHILD_SA's keys, the PFS CHILD_SA rekey and the IKE SA rekey, in the
// order charon logged them.
func checkCharonCase(t *testing.T, cc charonCase, x *ikeSAInit, newSPIs [2][]byte, v *charonValues) {
	c := checker{t, v, new(int)}
	defer func() { t.Logf("%d values compared with charon's", *c.n) }()
	p, s := cc.suite.PRF, cc.suite
	must, mustIKE, mustChild := fatalIf[[]byte](t), fatalIf[keymat.IKEKeys](t), fatalIf[keymat.ChildKeys](t)
	// The capture and charon's own nonce dumps agree.
	c.eq("NONCE sent", x.Ni)
	c.eq("NONCE received", x.Nr)
	checkNATD(t, x)

	gir := c.next("shared Diffie Hellman secret")
	seed := must(keymat.SKEYSEED(p, x.Ni, x.Nr, gir))
	c.eq("SKEYSEED", seed)
	k := mustIKE(keymat.DeriveIKE(s, seed, x.Ni, x.Nr, x.SPIi, x.SPIr))
	checkSK(c, k, s.Encr.AEAD)

	// Our AUTH (initiator), then the responder's that charon verified.
	for _, a := range []struct {
		msg, nonce, skp []byte
	}{{x.Req, x.Nr, k.Pi}, {x.Resp, x.Ni, k.Pr}} {
		id := c.next("IDx'")
		c.eq("SK_p", a.skp)
		c.eq("octets = message + nonce + prf(Sk_px, IDx')", must(keymat.SignedOctets(p, a.msg, a.nonce, a.skp, id)))
		c.eq("secret", []byte(charonPSK))
		auth := must(keymat.PSKAuth(p, []byte(charonPSK), a.msg, a.nonce, a.skp, id))
		c.eq("AUTH = prf(prf(secret, keypad), octets)", auth)
		if !keymat.VerifyPSKAuth(p, auth, []byte(charonPSK), a.msg, a.nonce, a.skp, id) {
			t.Error("VerifyPSKAuth rejects charon's AUTH")
		}
	}

	// First CHILD_SA, keyed in IKE_AUTH without PFS.
	c.eq("seed", append(append([]byte{}, x.Ni...), x.Nr...))
	checkChild(c, mustChild(keymat.DeriveChild(p, k.D, nil, x.Ni, x.Nr, cc.child.Encr, cc.child.Integ)), cc)

	// CHILD_SA rekey with PFS (CREATE_CHILD_SA): prf+(SK_d, g^ir (new) | Ni | Nr).
	ni, nr := c.next("NONCE sent"), c.next("NONCE received")
	pfsSeed := c.next("seed")
	if len(pfsSeed) <= len(ni)+len(nr) || !bytes.Equal(pfsSeed[len(pfsSeed)-len(ni)-len(nr):], append(append([]byte{}, ni...), nr...)) {
		t.Fatalf("charon's PFS seed %x does not end with the rekey's Ni | Nr", pfsSeed)
	}
	girNew := pfsSeed[:len(pfsSeed)-len(ni)-len(nr)]
	checkChild(c, mustChild(keymat.DeriveChild(p, k.D, girNew, ni, nr, cc.child.Encr, cc.child.Integ)), cc)

	// IKE SA rekey: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr), then
	// the new SA's keys with its SPIs.
	ni, nr = c.next("NONCE sent"), c.next("NONCE received")
	girNew = c.next("shared Diffie Hellman secret")
	seed = must(keymat.RekeySKEYSEED(p, k.D, girNew, ni, nr))
	c.eq("SKEYSEED", seed)
	checkSK(c, mustIKE(keymat.DeriveIKE(s, seed, ni, nr, newSPIs[0], newSPIs[1])), s.Encr.AEAD)
}

// checkSK: charon logs no SK_ai/SK_ar with an AEAD cipher.
func checkSK(c checker, k keymat.IKEKeys, aead bool) {
	c.t.Helper()
	c.eq("Sk_d secret", k.D)
	if aead {
		if len(k.Ai)+len(k.Ar) != 0 {
			c.t.Errorf("AEAD suite with SK_ai %x SK_ar %x", k.Ai, k.Ar)
		}
	} else {
		c.eq("Sk_ai secret", k.Ai)
		c.eq("Sk_ar secret", k.Ar)
	}
	c.eq("Sk_ei secret", k.Ei)
	c.eq("Sk_er secret", k.Er)
	c.eq("Sk_pi secret", k.Pi)
	c.eq("Sk_pr secret", k.Pr)
}

func checkChild(c checker, k keymat.ChildKeys, cc charonCase) {
	c.t.Helper()
	c.eq("encryption initiator key", k.EncrI)
	c.eq("encryption responder key", k.EncrR)
	if cc.child.Integ.KeyLen > 0 {
		c.eq("integrity initiator key", k.IntegI)
		c.eq("integrity responder key", k.IntegR)
	}
}

// checkNATD: the NAT_DETECTION_DESTINATION_IP hashes of both IKE_SA_INIT
// messages are ours; the source hashes are charon's fakes (encap = yes
// makes it send a random one to force UDP encapsulation, RFC 7296 section
// 2.23 allows this), so they must differ from the real hash.
func checkNATD(t *testing.T, x *ikeSAInit) {
	t.Helper()
	zero := make([]byte, 8)
	cgwAddr, vgwAddr := netip.MustParseAddrPort("10.99.0.2:500"), netip.MustParseAddrPort("10.99.0.1:500")
	for _, n := range []struct {
		what string
		got  []byte
		want []byte
		fake bool
	}{
		{"request destination", x.ReqNATD[16389], keymat.NATDHash(x.SPIi, zero, vgwAddr), false},
		{"response destination", x.RespNATD[16389], keymat.NATDHash(x.SPIi, x.SPIr, cgwAddr), false},
		{"request source (faked)", x.ReqNATD[16388], keymat.NATDHash(x.SPIi, zero, cgwAddr), true},
	} {
		if len(n.got) != 20 {
			t.Errorf("NAT-D %s: %d bytes", n.what, len(n.got))
		} else if bytes.Equal(n.got, n.want) == n.fake {
			t.Errorf("NAT-D %s: charon's %x, ours %x (fake expected: %v)", n.what, n.got, n.want, n.fake)
		}
	}
}
