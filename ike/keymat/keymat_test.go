package keymat

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// pat returns n bytes start, start+1, ... (mod 256). The expected values in
// this file for inputs built with pat were computed independently with
// python3's hmac/hashlib modules (a few lines mirroring RFC 2409's formulas),
// not with this package.
func pat(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func eq(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if hex.EncodeToString(got) != want {
		t.Errorf("%s:\n got %x\nwant %s", what, got, want)
	}
}

func TestPRFRFC2202(t *testing.T) {
	// RFC 2202 section 3, test case 2 (HMAC-SHA-1), with the data split in
	// two to exercise the variadic concatenation.
	got := PRF(crypto.SHA1, []byte("Jefe"), []byte("what do ya want "), []byte("for nothing?"))
	eq(t, "HMAC-SHA1 case 2", got, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
	// RFC 4868 section 2.7.1 PRF-2, SHA-256.
	got = PRF(crypto.SHA256, []byte("Jefe"), []byte("what do ya want for nothing?"))
	eq(t, "PRF-2 sha256", got, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
}

// NIST CAVP SP 800-135 IKEv1 (digital signature) SHA-1 test case, as
// transcribed in a public KDF crate's tests: SKEYID = prf(Ni|Nr, g^xy) for
// signature authentication, then SKEYID_d/a/e exactly as for PSK.
func TestDerivePhase1CAVP(t *testing.T) {
	ckyI := unhex(t, "382e5c8b0a3fa307")
	ckyR := unhex(t, "ba4b7616700a2413")
	ni := unhex(t, "ced5635da6796075")
	nr := unhex(t, "6244b427712fb776")
	gxy := unhex(t, "2a2e0bbe8da3657a83f3d35826e49e2d38e557e912a1b9e6c30c63577b3eab715466202862027f2c26f3090743555579611771db0b92bef93834432a3a7762fc8a0f4889fd281d6082770d10a40d7bad61e832f041e620d6787e7f62ab2861ddfbe272e0d9d3cdec5f1bbf750e24b8b32d6d714968ad69ce5086c32ad2742ebc")
	skeyid := PRF(crypto.SHA1, append(append([]byte(nil), ni...), nr...), gxy)
	eq(t, "SKEYID (signature)", skeyid, "dc37ac99de6dcfbd1ee74af7fb36f9b4b0a7829d")
	k := DerivePhase1(crypto.SHA1, skeyid, gxy, ckyI, ckyR)
	eq(t, "SKEYID_d", k.D, "486293ed547adb562cefdaf43d3d8457b196f2b6")
	eq(t, "SKEYID_a", k.A, "f4053b5ca07e59bb41b8f401037ca90b72b3917e")
	eq(t, "SKEYID_e", k.E, "49a1d53a80fb77e663552964fbbcb45092021473")
	if !bytes.Equal(k.SKEYID, skeyid) {
		t.Error("Phase1Keys.SKEYID not carried over")
	}
}

func TestSKEYIDPreShared(t *testing.T) {
	got := SKEYIDPreShared(crypto.SHA384, []byte("secret"), pat(16, 0xa0), pat(24, 0xb0))
	eq(t, "SKEYID sha384", got, "464909b8dba3e8e1d092860338e64527d803cb3caeeb5da51a03a5300ae8f803920e0da2533e3f28c249de283d5d781c")
}

func TestEncryptionKey(t *testing.T) {
	skeyidE := pat(20, 0x40) // SHA-1 SKEYID_e is 20 bytes; AES-256 needs 32
	got := EncryptionKey(crypto.SHA1, skeyidE, 32)
	if len(got) != 32 {
		t.Fatalf("len = %d", len(got))
	}
	eq(t, "Ka (appendix B expansion)", got, "8176e980b3169013db41186e0f704e028b284a049960246998fb8cc894ac255e")
	// K1 = prf(SKEYID_e, 0): the first 20 bytes must be exactly that.
	if !bytes.Equal(got[:20], PRF(crypto.SHA1, skeyidE, []byte{0})) {
		t.Error("K1 != prf(SKEYID_e, 0)")
	}
	// Long enough: plain truncation (AES-128 from SHA-1).
	if got := EncryptionKey(crypto.SHA1, skeyidE, 16); !bytes.Equal(got, skeyidE[:16]) {
		t.Errorf("16-byte key = %x, want prefix of SKEYID_e", got)
	}
	// Exactly equal length: no expansion.
	if got := EncryptionKey(crypto.SHA1, skeyidE, 20); !bytes.Equal(got, skeyidE) {
		t.Error("20-byte key should equal SKEYID_e")
	}
	// 3DES (24 bytes) from SHA-1: expansion, prefix of the 32-byte result.
	if got := EncryptionKey(crypto.SHA1, skeyidE, 24); hex.EncodeToString(got) != "8176e980b3169013db41186e0f704e028b284a049960246998fb8cc894ac255e"[:48] {
		t.Errorf("24-byte key = %x", got)
	}
	// The result must not alias the input.
	k := EncryptionKey(crypto.SHA1, skeyidE, 16)
	k[0] ^= 0xff
	if skeyidE[0] != 0x40 {
		t.Error("EncryptionKey aliases SKEYID_e")
	}
}

func TestKeymat(t *testing.T) {
	skeyidD := pat(20, 0x10)
	gqm := pat(128, 0x80)
	spi := unhex(t, "c0ffee01")
	ni, nr := pat(16, 0xa0), pat(24, 0xb0)
	// ESP, AES-256 (32) + HMAC-SHA1 (20) = 52 bytes: needs 3 prf blocks.
	noPFS := Keymat(crypto.SHA1, skeyidD, nil, 3, spi, ni, nr, 52)
	pfs := Keymat(crypto.SHA1, skeyidD, gqm, 3, spi, ni, nr, 52)
	if len(noPFS) != 52 || len(pfs) != 52 {
		t.Fatalf("lengths %d %d, want 52", len(noPFS), len(pfs))
	}
	if bytes.Equal(noPFS, pfs) {
		t.Fatal("KEYMAT with and without PFS are equal")
	}
	eq(t, "KEYMAT no PFS", noPFS, "64080bde66fa3ba26df06f10f3d83586d44c32c0e761562c3a00e08fbc4369c09298ed840479fd0c3603653fee68d03e1cae328d")
	eq(t, "KEYMAT PFS", pfs, "288e3eb1c6a2b08596117ccabdb5baf775d0b6e3ed9ee5040676ce4aaaf71065d46e11eb8bd5e9672315df6f3159f9411d76a666")
	// An empty (non-nil) gqm is the same as no PFS.
	if !bytes.Equal(Keymat(crypto.SHA1, skeyidD, []byte{}, 3, spi, ni, nr, 52), noPFS) {
		t.Error("empty gqm differs from nil gqm")
	}
	// Shorter request is a prefix.
	if !bytes.Equal(Keymat(crypto.SHA1, skeyidD, nil, 3, spi, ni, nr, 7), noPFS[:7]) {
		t.Error("7-byte KEYMAT is not a prefix")
	}
	// Protocol and SPI matter.
	if bytes.Equal(Keymat(crypto.SHA1, skeyidD, nil, 2, spi, ni, nr, 52), noPFS) {
		t.Error("protocol not mixed in")
	}
	eq(t, "KEYMAT sha256 AH", Keymat(crypto.SHA256, pat(32, 1), nil, 2, spi, ni, nr, 32),
		"4e1de9843203c3a72a5b72806125be5b5ca9bb621122897fa868cd41513dd1b7")
	if got := Keymat(crypto.SHA1, skeyidD, nil, 3, spi, ni, nr, 0); len(got) != 0 {
		t.Errorf("n=0 gave %d bytes", len(got))
	}
}

func TestIVs(t *testing.T) {
	gxi, gxr := pat(128, 0x11), pat(128, 0x22)
	eq(t, "phase 1 IV", Phase1IV(crypto.SHA1, gxi, gxr, 16), "20f335029c5da900b3f8fdb7b7eabe13")
	if got := Phase1IV(crypto.SHA1, gxi, gxr, 8); len(got) != 8 {
		t.Errorf("3DES IV length %d", len(got))
	}
	eq(t, "QM IV", MessageIV(crypto.SHA256, pat(16, 0x33), 0x01020304, 16), "b3bb4d2bcf060c51632e8a279d07c165")
}

func TestPhase1Hashes(t *testing.T) {
	skeyid := pat(32, 0x44)
	gxi, gxr := pat(128, 0x11), pat(128, 0x22)
	ckyI, ckyR := pat(8, 0x55), pat(8, 0x66)
	sai := pat(40, 0x77)
	eq(t, "HASH_I", HashI(crypto.SHA256, skeyid, gxi, gxr, ckyI, ckyR, sai, unhex(t, "01000000c0a80001")),
		"e460cb0d7a4eccea80158db87f6ee6d0b59dd4308622a24d6ff851d952fe1921")
	eq(t, "HASH_R", HashR(crypto.SHA256, skeyid, gxr, gxi, ckyR, ckyI, sai, unhex(t, "01000000c0a80002")),
		"058b470723bc6dd94b1c5160938bf04e614050a7f99bf7dfd2225c7d66ced811")
}

func TestQMHashes(t *testing.T) {
	sa := pat(32, 0x88)
	ni, nr := pat(16, 0xa0), pat(24, 0xb0)
	rest := pat(50, 0x99)
	eq(t, "HASH(1)", QMHash1(crypto.SHA256, sa, 0xdeadbeef, rest), "0538c82ff7e2a5f598d4a6d9f7c26d713372aee5de482e61597977929f9eb7ec")
	eq(t, "HASH(2)", QMHash2(crypto.SHA256, sa, 0xdeadbeef, ni, rest), "b376a66541dc855a1e73104359300f01b60f2218a42dd2a275f01f5172c98377")
	eq(t, "HASH(3)", QMHash3(crypto.SHA256, sa, 0xdeadbeef, ni, nr), "483030fbb56b8683c0060478d032ee048334da4c65bb53aeeafc737f9f364305")
}

// Worked examples from /work/shared/vectors/ikev1_natt_dpd_vendor_ids.json
// ("nat_d_worked_examples"), computed from tcpdump's test captures
// ISAKMP_sa_setup.pcap (SHA-1) and isakmp4500.pcap (MD5) and matching the
// NAT-D payloads on the wire.
func TestNATDHash(t *testing.T) {
	cases := []struct {
		name       string
		h          crypto.Hash
		ckyI, ckyR string
		addr       string
		want       string
	}{
		{"ISAKMP_sa_setup frame 3 remote", crypto.SHA1, "cf02326f14a95b93", "18a109f89219e8df", "10.0.0.2:500", "d5664a6fcbc7d769f693d4d83ce125b1415827ae"},
		{"ISAKMP_sa_setup frame 3 local", crypto.SHA1, "cf02326f14a95b93", "18a109f89219e8df", "10.0.0.1:500", "6db4442c1af0b63d93334e3a0cb5ac19f804eca4"},
		{"isakmp4500 frame 5 remote", crypto.MD5, "9e89f2388f90bc1e", "0a74357ce3d1a4bf", "192.1.2.23:500", "6efe12f04af90dfbcfb15d71b841bb9e"},
		{"isakmp4500 frame 6 remote", crypto.MD5, "9e89f2388f90bc1e", "0a74357ce3d1a4bf", "192.1.2.254:500", "399304d50fbd4ca3db1e197af7c11e6f"},
	}
	for _, c := range cases {
		ap := netip.MustParseAddrPort(c.addr)
		eq(t, c.name, NATDHash(c.h, unhex(t, c.ckyI), unhex(t, c.ckyR), ap), c.want)
	}
	// IPv4-mapped IPv6 hashes as IPv4.
	v4 := NATDHash(crypto.SHA1, pat(8, 1), pat(8, 9), netip.MustParseAddrPort("10.0.0.2:4500"))
	mapped := NATDHash(crypto.SHA1, pat(8, 1), pat(8, 9), netip.MustParseAddrPort("[::ffff:10.0.0.2]:4500"))
	if !bytes.Equal(v4, mapped) {
		t.Error("IPv4-mapped address not hashed as 4 bytes")
	}
	// IPv6: 16-byte address.
	ck := pat(16, 1)
	ip6 := netip.MustParseAddrPort("[2001:db8::1]:500")
	a := ip6.Addr().As16()
	want := crypto.SHA256.New()
	want.Write(ck)
	want.Write(a[:])
	want.Write([]byte{0x01, 0xf4})
	if got := NATDHash(crypto.SHA256, ck[:8], ck[8:], ip6); !bytes.Equal(got, want.Sum(nil)) {
		t.Error("IPv6 NAT-D hash mismatch")
	}
}

func TestHashMapping(t *testing.T) {
	for v, h := range map[uint16]crypto.Hash{2: crypto.SHA1, 4: crypto.SHA256, 5: crypto.SHA384, 6: crypto.SHA512} {
		got, err := HashFromIKE(v)
		if err != nil || got != h {
			t.Errorf("HashFromIKE(%d) = %v, %v", v, got, err)
		}
		if IKEHashValue(h) != v {
			t.Errorf("IKEHashValue(%v) = %d", h, IKEHashValue(h))
		}
		back, err := HashByName(HashName(h))
		if err != nil || back != h {
			t.Errorf("HashByName(HashName(%v)) = %v, %v", h, back, err)
		}
	}
	for _, v := range []uint16{0, 1, 3, 7} {
		if _, err := HashFromIKE(v); err == nil {
			t.Errorf("HashFromIKE(%d) succeeded", v)
		}
	}
	if IKEHashValue(crypto.MD5) != 0 {
		t.Error("MD5 should have no supported IKE value")
	}
	names := map[crypto.Hash]string{crypto.SHA1: "sha1", crypto.SHA256: "sha256", crypto.SHA384: "sha384", crypto.SHA512: "sha512"}
	for h, n := range names {
		if HashName(h) != n {
			t.Errorf("HashName(%v) = %q", h, HashName(h))
		}
	}
	for in, want := range map[string]crypto.Hash{"SHA-1": crypto.SHA1, "sha2-256": crypto.SHA256, "SHA2_384": crypto.SHA384, "sha-512": crypto.SHA512} {
		if got, err := HashByName(in); err != nil || got != want {
			t.Errorf("HashByName(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := HashByName("sha3-256"); err == nil {
		t.Error("HashByName(sha3-256) succeeded")
	}
}

func TestIntegrity(t *testing.T) {
	want := map[uint16]Integrity{
		2: {"hmac-sha1-96", crypto.SHA1, 20, 12},
		5: {"hmac-sha2-256-128", crypto.SHA256, 32, 16},
		6: {"hmac-sha2-384-192", crypto.SHA384, 48, 24},
		7: {"hmac-sha2-512-256", crypto.SHA512, 64, 32},
	}
	for id, w := range want {
		got, err := IntegrityByIKE(id)
		if err != nil || got != w {
			t.Errorf("IntegrityByIKE(%d) = %+v, %v", id, got, err)
		}
	}
	for _, id := range []uint16{0, 1, 3, 4, 8} {
		if _, err := IntegrityByIKE(id); err == nil {
			t.Errorf("IntegrityByIKE(%d) succeeded", id)
		}
	}
	// RFC 2202 section 3 test case 5 digest-96 (RFC 2404 HMAC-SHA-1-96).
	i, _ := IntegrityByIKE(2)
	icv := i.ICV(bytes.Repeat([]byte{0x0c}, 20), []byte("Test With Truncation"))
	eq(t, "HMAC-SHA1-96", icv, "4c1a03424b55e07fe7f27be1")
	if !i.Verify(bytes.Repeat([]byte{0x0c}, 20), []byte("Test With Truncation"), icv) {
		t.Error("Verify failed")
	}
	// RFC 4868 section 2.7.2 AUTH256-1.
	i, _ = IntegrityByIKE(5)
	eq(t, "AUTH256-1", i.ICV(bytes.Repeat([]byte{0x0b}, 32), []byte("Hi There")), "198a607eb44bfbc69903a0f1cf2bbdc5")
	// AUTH512-1.
	i, _ = IntegrityByIKE(7)
	eq(t, "AUTH512-1", i.ICV(bytes.Repeat([]byte{0x0b}, 64), []byte("Hi There")), "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8")
}
