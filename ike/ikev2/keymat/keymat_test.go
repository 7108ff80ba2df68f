package keymat_test

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/testvectors"
)

const cavpFile = "../../../testvectors/ikev2_kdf_cavp.json"

// TestCAVPVectors runs NIST's SP 800-135 IKEv2 KDF known answers (SKEYSEED,
// prf+ DKM, child KEYMAT with and without PFS, rekey SKEYSEED) through the
// testvectors runner.
func TestCAVPVectors(t *testing.T) {
	rs, err := testvectors.RunFile(cavpFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if !r.Pass {
			t.Errorf("%s: %s", r.Name, r.Detail)
		}
	}
	if len(rs) < 16 {
		t.Errorf("only %d vectors", len(rs))
	}
}

type cavp struct {
	Name, Hash                                                     string
	Ni, Nr, Gir, GirNew, SPIi, SPIr, SKEYSEED, DKM, Child, ChildDH []byte
}

// cavpVector returns the first vector of the CAVP file whose name contains s.
func cavpVector(t testing.TB, s string) cavp {
	t.Helper()
	b, err := os.ReadFile(cavpFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Vectors []map[string]string }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, v := range doc.Vectors {
		if !strings.Contains(v["name"], s) {
			continue
		}
		h := func(f string) []byte {
			x, err := hex.DecodeString(v[f])
			if err != nil {
				t.Fatal(err)
			}
			return x
		}
		return cavp{v["name"], v["hash"], h("ni"), h("nr"), h("gir"), h("gir_new"), h("spii"), h("spir"),
			h("skeyseed"), h("dkm"), h("dkm_child"), h("dkm_child_dh")}
	}
	t.Fatalf("no CAVP vector %q", s)
	return cavp{}
}

func mustPRF(t testing.TB, id uint16) keymat.PRF {
	p, err := keymat.PRFByID(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustEncr(t testing.TB, id uint16, bits int) keymat.Encryption {
	e, err := keymat.EncryptionByID(id, bits)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustInteg(t testing.TB, id uint16) keymat.Integrity {
	i, err := keymat.IntegrityByID(id)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// TestDeriveIKESplitCAVP: with AES-CBC-128, HMAC-SHA1-96 and PRF-HMAC-SHA1
// the seven keys are exactly CAVP's 1056-bit DKM (3 x 20 + 2 x 20 + 2 x 16
// bytes), so the split order and lengths are checked against NIST's bytes.
func TestDeriveIKESplitCAVP(t *testing.T) {
	v := cavpVector(t, "SHA-1 g^ir 256 bits, Ni/Nr 64 bits, DKM 1056 bits, COUNT = 1")
	s := keymat.Suite{PRF: mustPRF(t, keymat.PRFHMACSHA1), Encr: mustEncr(t, keymat.EncrAESCBC, 128), Integ: mustInteg(t, keymat.AuthHMACSHA196)}
	if s.IKELen() != len(v.DKM) {
		t.Fatalf("IKELen %d, CAVP DKM %d", s.IKELen(), len(v.DKM))
	}
	seed, err := keymat.SKEYSEED(s.PRF, v.Ni, v.Nr, v.Gir)
	if err != nil || !bytes.Equal(seed, v.SKEYSEED) {
		t.Fatalf("SKEYSEED %x %v, want %x", seed, err, v.SKEYSEED)
	}
	k, err := keymat.DeriveIKE(s, seed, v.Ni, v.Nr, v.SPIi, v.SPIr)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for _, c := range []struct {
		name string
		key  []byte
		n    int
	}{{"SK_d", k.D, 20}, {"SK_ai", k.Ai, 20}, {"SK_ar", k.Ar, 20}, {"SK_ei", k.Ei, 16}, {"SK_er", k.Er, 16}, {"SK_pi", k.Pi, 20}, {"SK_pr", k.Pr, 20}} {
		if want := v.DKM[off : off+c.n]; !bytes.Equal(c.key, want) {
			t.Errorf("%s = %x, want DKM[%d:%d] = %x", c.name, c.key, off, off+c.n, want)
		}
		off += c.n
	}
	// Appending to one key must not overwrite the next.
	_ = append(k.D, 0xff)
	if k.Ai[0] != v.DKM[20] {
		t.Error("append to SK_d overwrote SK_ai")
	}
}

// TestDeriveChildCAVP: the ESP keys are taken from CAVP's DKM(Child SA)
// (no PFS) and DKM(Child SA D-H) in RFC 7296 section 2.17's order.
func TestDeriveChildCAVP(t *testing.T) {
	v := cavpVector(t, "SHA-256 g^ir 256 bits, Ni/Nr 2048 bits, DKM 3072 bits, COUNT = 0")
	p := mustPRF(t, keymat.PRFHMACSHA2256)
	skd := v.DKM[:32]
	for _, tc := range []struct {
		name   string
		gir    []byte
		want   []byte
		encr   keymat.Encryption
		integ  keymat.Integrity
		eL, iL int
	}{
		{"aes-cbc-128/sha1 no PFS", nil, v.Child, mustEncr(t, keymat.EncrAESCBC, 128), mustInteg(t, keymat.AuthHMACSHA196), 16, 20},
		{"aes-cbc-256/sha2-512 PFS", v.GirNew, v.ChildDH, mustEncr(t, keymat.EncrAESCBC, 256), mustInteg(t, keymat.AuthHMACSHA2512256), 32, 64},
		{"aes-gcm-16-256 PFS", v.GirNew, v.ChildDH, mustEncr(t, keymat.EncrAESGCM16, 256), mustInteg(t, keymat.AuthNone), 36, 0},
		{"aes-gcm-16-128 no PFS", nil, v.Child, mustEncr(t, keymat.EncrAESGCM16, 128), mustInteg(t, keymat.AuthNone), 20, 0},
	} {
		k, err := keymat.DeriveChild(p, skd, tc.gir, v.Ni, v.Nr, tc.encr, tc.integ)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		w := tc.want
		e, i := tc.eL, tc.iL
		for _, c := range []struct {
			n   string
			got []byte
			lo  int
			hi  int
		}{{"encr i->r", k.EncrI, 0, e}, {"integ i->r", k.IntegI, e, e + i}, {"encr r->i", k.EncrR, e + i, 2*e + i}, {"integ r->i", k.IntegR, 2*e + i, 2 * (e + i)}} {
			if !bytes.Equal(c.got, w[c.lo:c.hi]) {
				t.Errorf("%s: %s = %x, want KEYMAT[%d:%d] = %x", tc.name, c.n, c.got, c.lo, c.hi, w[c.lo:c.hi])
			}
		}
	}
}

// TestRekeySKEYSEEDCAVP checks section 2.18 against CAVP's SKEYSEED(Rekey).
func TestRekeySKEYSEEDCAVP(t *testing.T) {
	for _, name := range []string{"SHA-384 g^ir 256 bits, Ni/Nr 64 bits, DKM 1056 bits, COUNT = 3", "SHA-512 g^ir 256 bits, Ni/Nr 2048 bits, DKM 3072 bits, COUNT = 1"} {
		v := cavpVector(t, name)
		b, _ := os.ReadFile(cavpFile)
		var doc struct{ Vectors []map[string]string }
		_ = json.Unmarshal(b, &doc)
		var want string
		for _, x := range doc.Vectors {
			if x["name"] == v.Name {
				want = x["skeyseed_rekey"]
			}
		}
		id := map[string]uint16{"sha384": keymat.PRFHMACSHA2384, "sha512": keymat.PRFHMACSHA2512}[v.Hash]
		p := mustPRF(t, id)
		got, err := keymat.RekeySKEYSEED(p, v.DKM[:p.KeyLen()], v.GirNew, v.Ni, v.Nr)
		if err != nil || hex.EncodeToString(got) != want {
			t.Errorf("%s: %x %v, want %s", name, got, err, want)
		}
	}
}

func TestPRFPlusBound(t *testing.T) {
	for _, id := range []uint16{keymat.PRFHMACSHA1, keymat.PRFHMACSHA2256, keymat.PRFHMACSHA2384, keymat.PRFHMACSHA2512} {
		p := mustPRF(t, id)
		if p.MaxPRFPlus() != 255*p.Size() {
			t.Errorf("%s: MaxPRFPlus %d", p.Name, p.MaxPRFPlus())
		}
		full, err := keymat.PRFPlus(p, []byte("k"), 255*p.Size(), []byte("seed"))
		if err != nil || len(full) != 255*p.Size() {
			t.Fatalf("%s: 255 blocks: %d bytes, %v", p.Name, len(full), err)
		}
		// The last block is T255 = prf(K, T254 | S | 0xff).
		t254 := full[253*p.Size() : 254*p.Size()]
		if want := p.Sum([]byte("k"), t254, []byte("seed"), []byte{0xff}); !bytes.Equal(full[254*p.Size():], want) {
			t.Errorf("%s: T255 wrong", p.Name)
		}
		if _, err := keymat.PRFPlus(p, []byte("k"), 255*p.Size()+1, []byte("seed")); err == nil || !strings.Contains(err.Error(), "limit is 255") {
			t.Errorf("%s: 255 x size + 1 bytes: %v", p.Name, err)
		}
		if _, err := keymat.PRFPlus(p, []byte("k"), -1); err == nil {
			t.Errorf("%s: negative length accepted", p.Name)
		}
		short, _ := keymat.PRFPlus(p, []byte("k"), 7, []byte("seed"))
		if !bytes.Equal(short, full[:7]) {
			t.Errorf("%s: prf+ of 7 bytes is not a prefix", p.Name)
		}
	}
	if _, err := keymat.PRFPlus(keymat.PRF{}, nil, 10); err == nil {
		t.Error("zero PRF accepted")
	}
}

func TestTransforms(t *testing.T) {
	for _, tc := range []struct {
		prf          uint16
		encr         uint16
		bits         int
		integ        uint16
		ikeLen       int
		childLen     int
		wantPairFail bool
	}{
		{keymat.PRFHMACSHA2256, keymat.EncrAESCBC, 256, keymat.AuthHMACSHA2256128, 3*32 + 2*32 + 2*32, 2 * (32 + 32), false},
		{keymat.PRFHMACSHA2384, keymat.EncrAESGCM16, 128, keymat.AuthNone, 3*48 + 0 + 2*20, 2 * 20, false},
		{keymat.PRFHMACSHA2512, keymat.EncrAESGCM16, 256, keymat.AuthNone, 3*64 + 2*36, 2 * 36, false},
		{keymat.PRFHMACSHA1, keymat.EncrAESCBC, 128, keymat.AuthHMACSHA2384192, 3*20 + 2*48 + 2*16, 2 * (16 + 48), false},
		{keymat.PRFHMACSHA1, keymat.EncrAESGCM16, 128, keymat.AuthHMACSHA196, 0, 0, true},
		{keymat.PRFHMACSHA1, keymat.EncrAESCBC, 128, keymat.AuthNone, 0, 0, true},
	} {
		s := keymat.Suite{PRF: mustPRF(t, tc.prf), Encr: mustEncr(t, tc.encr, tc.bits), Integ: mustInteg(t, tc.integ)}
		name := fmt.Sprintf("%s/%s/%s", s.PRF.Name, s.Encr.Name, s.Integ.Name)
		spi := make([]byte, 8)
		k, err := keymat.DeriveIKE(s, []byte("seed"), []byte("ni"), []byte("nr"), spi, spi)
		_, cerr := keymat.DeriveChild(s.PRF, []byte("skd"), nil, []byte("ni"), []byte("nr"), s.Encr, s.Integ)
		if tc.wantPairFail {
			if err == nil || cerr == nil {
				t.Errorf("%s: accepted (%v, %v)", name, err, cerr)
			}
			continue
		}
		if err != nil || cerr != nil {
			t.Fatalf("%s: %v %v", name, err, cerr)
		}
		if s.IKELen() != tc.ikeLen || keymat.ChildLen(s.Encr, s.Integ) != tc.childLen {
			t.Errorf("%s: IKELen %d ChildLen %d, want %d %d", name, s.IKELen(), keymat.ChildLen(s.Encr, s.Integ), tc.ikeLen, tc.childLen)
		}
		all, _ := keymat.PRFPlus(s.PRF, []byte("seed"), s.IKELen(), []byte("ni"), []byte("nr"), spi, spi)
		cat := bytes.Join([][]byte{k.D, k.Ai, k.Ar, k.Ei, k.Er, k.Pi, k.Pr}, nil)
		if !bytes.Equal(cat, all) {
			t.Errorf("%s: keys are not prf+ in order", name)
		}
	}
	for _, bad := range []func() error{
		func() error { _, err := keymat.PRFByID(4); return err },
		func() error { _, err := keymat.EncryptionByID(keymat.EncrAESCBC, 192); return err },
		func() error { _, err := keymat.EncryptionByID(3, 128); return err },
		func() error { _, err := keymat.IntegrityByID(1); return err },
		func() error { _, err := keymat.PRFByHash(crypto.MD5); return err },
	} {
		if bad() == nil {
			t.Error("unsupported transform accepted")
		}
	}
}

func TestInputErrors(t *testing.T) {
	p := mustPRF(t, keymat.PRFHMACSHA2256)
	s := keymat.Suite{PRF: p, Encr: mustEncr(t, keymat.EncrAESCBC, 128), Integ: mustInteg(t, keymat.AuthHMACSHA2256128)}
	if _, err := keymat.DeriveIKE(s, []byte("x"), nil, nil, make([]byte, 4), make([]byte, 8)); err == nil {
		t.Error("4-byte SPI accepted")
	}
	if _, err := keymat.ChildKeymat(p, []byte("d"), []byte{}, nil, nil, 10); err == nil {
		t.Error("empty PFS secret accepted")
	}
	if _, err := keymat.RekeySKEYSEED(p, []byte("d"), nil, nil, nil); err == nil {
		t.Error("rekey without DH accepted")
	}
	if _, err := keymat.SKEYSEED(keymat.PRF{}, nil, nil, nil); err == nil {
		t.Error("zero PRF accepted")
	}
	if _, err := keymat.DeriveIKE(keymat.Suite{PRF: p}, []byte("x"), nil, nil, make([]byte, 8), make([]byte, 8)); err == nil {
		t.Error("suite without encryption accepted")
	}
}

// TestPSKAuth checks the construction of section 2.15 piece by piece; the
// known answer is charon's (TestCharonKeys).
func TestPSKAuth(t *testing.T) {
	p := mustPRF(t, keymat.PRFHMACSHA2256)
	psk, msg, nonce, skp, id := []byte("secret"), []byte("IKE_SA_INIT message"), []byte("peer nonce"), []byte("SK_pi"), []byte{1, 0, 0, 0, 10, 99, 0, 2}
	octets, err := keymat.SignedOctets(p, msg, nonce, skp, id)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, msg...), nonce...), p.Sum(skp, id)...)
	if !bytes.Equal(octets, want) {
		t.Fatalf("signed octets %x, want %x", octets, want)
	}
	auth, err := keymat.PSKAuth(p, psk, msg, nonce, skp, id)
	if err != nil {
		t.Fatal(err)
	}
	if w := p.Sum(p.Sum(psk, []byte("Key Pad for IKEv2")), octets); !bytes.Equal(auth, w) {
		t.Errorf("AUTH %x, want %x", auth, w)
	}
	if !keymat.VerifyPSKAuth(p, auth, psk, msg, nonce, skp, id) {
		t.Error("own AUTH not verified")
	}
	for i, bad := range [][]byte{auth[:len(auth)-1], append([]byte{auth[0] ^ 1}, auth[1:]...)} {
		if keymat.VerifyPSKAuth(p, bad, psk, msg, nonce, skp, id) {
			t.Errorf("bad AUTH %d verified", i)
		}
	}
	if keymat.VerifyPSKAuth(p, auth, []byte("secreT"), msg, nonce, skp, id) {
		t.Error("AUTH verified with another PSK")
	}
}

func TestNATDHash(t *testing.T) {
	spii, spir := []byte{1, 2, 3, 4, 5, 6, 7, 8}, make([]byte, 8)
	got := keymat.NATDHash(spii, spir, netip.MustParseAddrPort("10.99.0.2:500"))
	want := sha1.Sum(append(append(append([]byte{}, spii...), spir...), 10, 99, 0, 2, 0x01, 0xf4))
	if !bytes.Equal(got, want[:]) {
		t.Errorf("NAT-D %x, want %x", got, want)
	}
	mapped := keymat.NATDHash(spii, spir, netip.MustParseAddrPort("[::ffff:10.99.0.2]:500"))
	if !bytes.Equal(mapped, got) {
		t.Error("IPv4-mapped address hashed as IPv6")
	}
	v6 := keymat.NATDHash(spii, spir, netip.MustParseAddrPort("[2001:db8::1]:4500"))
	ip := netip.MustParseAddr("2001:db8::1").As16()
	w6 := sha1.Sum(append(append(append(append([]byte{}, spii...), spir...), ip[:]...), 0x11, 0x94))
	if !bytes.Equal(v6, w6[:]) {
		t.Errorf("IPv6 NAT-D %x, want %x", v6, w6)
	}
}
