package dh

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestIDsAndNames(t *testing.T) {
	want := []uint16{2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}
	if got := IDs(); !slices.Equal(got, want) {
		t.Fatalf("IDs() = %v, want %v", got, want)
	}
	names := map[uint16]string{
		2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072", 16: "modp4096",
		17: "modp6144", 18: "modp8192", 19: "ecp256", 20: "ecp384", 21: "ecp521",
		22: "modp1024s160", 23: "modp2048s224", 24: "modp2048s256",
	}
	publen := map[uint16]int{
		2: 128, 5: 192, 14: 256, 15: 384, 16: 512, 17: 768, 18: 1024,
		19: 64, 20: 96, 21: 132, 22: 128, 23: 256, 24: 256,
	}
	for _, id := range want {
		g, err := ByID(id)
		if err != nil {
			t.Fatal(err)
		}
		if g.ID() != id || g.Name() != names[id] || Name(id) != names[id] {
			t.Errorf("group %d: ID %d Name %q Name() %q, want %q", id, g.ID(), g.Name(), Name(id), names[id])
		}
		if g.PublicLen() != publen[id] {
			t.Errorf("group %d: PublicLen %d, want %d", id, g.PublicLen(), publen[id])
		}
	}
	if Name(1) != "unknown-1" {
		t.Errorf("Name(1) = %q", Name(1))
	}
	_, err := ByID(1)
	if err == nil || !strings.Contains(err.Error(), "group 1 ") || !strings.Contains(err.Error(), "2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24") {
		t.Errorf("ByID(1) error = %v", err)
	}
}

func TestRoundTripAllGroups(t *testing.T) {
	for _, id := range IDs() {
		g, _ := ByID(id)
		t.Run(g.Name(), func(t *testing.T) {
			if testing.Short() && g.PublicLen() > 512 {
				t.Skip("large group in -short mode")
			}
			a, err := g.Generate(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			b, err := g.Generate(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Public()) != g.PublicLen() || len(b.Public()) != g.PublicLen() {
				t.Fatalf("public lengths %d/%d, want %d", len(a.Public()), len(b.Public()), g.PublicLen())
			}
			za, err := a.SharedSecret(b.Public())
			if err != nil {
				t.Fatal(err)
			}
			zb, err := b.SharedSecret(a.Public())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(za, zb) {
				t.Fatal("shared secrets differ")
			}
			wantLen := g.PublicLen()
			if _, ecp := g.(*ecpGroup); ecp {
				wantLen /= 2
			}
			if len(za) != wantLen {
				t.Fatalf("shared secret length %d, want %d", len(za), wantLen)
			}
		})
	}
}

func TestMODPExponentLength(t *testing.T) {
	for id, bits := range modpExpBits {
		g, _ := ByID(id)
		k, err := g.Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if got := k.(*modpKey).x.BitLen(); got != bits {
			t.Errorf("group %d: exponent %d bits, want %d", id, got, bits)
		}
	}
	// Subgroup groups: exponent below q.
	for _, id := range []uint16{22, 23, 24} {
		g, _ := ByID(id)
		for range 20 {
			k, _ := g.Generate(rand.Reader)
			x := k.(*modpKey).x
			if x.Sign() <= 0 || x.Cmp(g.(*modpGroup).q) >= 0 {
				t.Fatalf("group %d: exponent out of [1,q-1]", id)
			}
		}
	}
}

// RFC 5903 section 8.1 (256-bit random ECP group).
func TestRFC5903P256(t *testing.T) {
	g, _ := ByID(19)
	i, err := g.KeyFromPrivate(unhex(t, "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433"))
	if err != nil {
		t.Fatal(err)
	}
	gi := unhex(t, "dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180"+
		"5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3")
	gr := unhex(t, "d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63"+
		"56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab")
	if !bytes.Equal(i.Public(), gi) {
		t.Fatalf("g^i = %x", i.Public())
	}
	z, err := i.SharedSecret(gr)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de"); !bytes.Equal(z, want) {
		t.Fatalf("g^ir = %x, want %x", z, want)
	}
}

// RFC 5114 appendix A.1 (group 22).
func TestRFC5114Group22(t *testing.T) {
	g, _ := ByID(22)
	a, err := g.KeyFromPrivate(unhex(t, "b9a3b3ae8fefc1a2930496507086f8455d48943e"))
	if err != nil {
		t.Fatal(err)
	}
	yA := unhex(t, "2a853b3d92197501b9015b2deb3ed84f5e021dcc3e52f109d3273d2b7521281cbabe0e76ff5727fa8acce26956ba9a1fca26f20228d8693feb10841d84a7360054ece5a7f5b7a61ad3dfb3c60d2e43106d8727da37df9cce95b478755d06bcea8f9d45965f75a5f3d1df3701165fc9e50c4279ceb07f989540ae96d5d88ed776")
	yB := unhex(t, "717a6cb053371ff4a3b932941c1e5663f861a1d6ad34ae66576dfb98f6c6cbf9ddd5a56c7833f6bcfdff095582ad868e440e8d09fd769e3ceccdc3d3b1e4cfa057776caaf9739b6a9fee8e7411f8d6dac09d6a4edb46cc2b5d5203090eae6126311e53fd2c14b574e6a3109a3da1be41bdceaa186f5ce06716a2b6a07b3c33fe")
	Z := unhex(t, "5c804f454d30d9c4df85271f93528c91df6b48ab5f80b3b59caac1b28f8acba9cd3e39f3cb614525d9521d2e644c53b807b810f340062f257d7d6fbfe8d5e8f072e9b6e9afda9413eafb2e8b0699b1fb5a0caceddeaead7e9cfbb36ae2b420835bd83a19fb0b5e96bf8fa4d09e345525167ecd9155416f46f408ed31b63c6e6d")
	if !bytes.Equal(a.Public(), yA) {
		t.Fatalf("yA = %x", a.Public())
	}
	z, err := a.SharedSecret(yB)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(z, Z) {
		t.Fatalf("Z = %x", z)
	}
}

func TestInvalidPeerMODP(t *testing.T) {
	for _, id := range []uint16{2, 14, 22, 24} {
		g, _ := ByID(id)
		mg := g.(*modpGroup)
		k, _ := g.Generate(rand.Reader)
		n := g.PublicLen()
		enc := func(v *big.Int) []byte { return leftPad(v.Bytes(), n) }
		cases := map[string][]byte{
			"short":  make([]byte, n-1),
			"long":   make([]byte, n+1),
			"zero":   make([]byte, n),
			"one":    enc(big.NewInt(1)),
			"p-1":    enc(mg.pMinus1),
			"p":      enc(mg.p),
			"all-ff": bytes.Repeat([]byte{0xff}, n),
			"empty":  nil,
		}
		if mg.q != nil {
			// 2 is not in the order-q subgroup for these primes (checked below).
			two := big.NewInt(2)
			if new(big.Int).Exp(two, mg.q, mg.p).Cmp(one) == 0 {
				t.Fatalf("group %d: 2 unexpectedly in subgroup", id)
			}
			cases["not-in-subgroup"] = enc(two)
		}
		for name, peer := range cases {
			if _, err := k.SharedSecret(peer); !errors.Is(err, ErrInvalidPublic) {
				t.Errorf("group %d %s: err = %v, want ErrInvalidPublic", id, name, err)
			}
		}
	}
}

func TestInvalidPeerECP(t *testing.T) {
	for _, id := range []uint16{19, 20, 21} {
		g, _ := ByID(id)
		k, _ := g.Generate(rand.Reader)
		other, _ := g.Generate(rand.Reader)
		good := other.Public()
		offCurve := append([]byte(nil), good...)
		offCurve[len(offCurve)-1] ^= 1
		cases := map[string][]byte{
			"short":     good[:len(good)-1],
			"with-04":   append([]byte{4}, good...),
			"zero":      make([]byte, len(good)),
			"off-curve": offCurve,
			"all-ff":    bytes.Repeat([]byte{0xff}, len(good)),
			"x-only":    good[:len(good)/2],
			"empty":     nil,
		}
		for name, peer := range cases {
			if _, err := k.SharedSecret(peer); !errors.Is(err, ErrInvalidPublic) {
				t.Errorf("group %d %s: err = %v, want ErrInvalidPublic", id, name, err)
			}
		}
	}
}

func TestKeyFromPrivateRange(t *testing.T) {
	g22, _ := ByID(22)
	q := g22.(*modpGroup).q
	for name, x := range map[string][]byte{"zero": {0}, "q": q.Bytes(), "empty": nil} {
		if _, err := g22.KeyFromPrivate(x); !errors.Is(err, ErrInvalidPrivate) {
			t.Errorf("group 22 %s: err = %v", name, err)
		}
	}
	if _, err := g22.KeyFromPrivate(new(big.Int).Sub(q, one).Bytes()); err != nil {
		t.Errorf("group 22 q-1: %v", err)
	}
	g14, _ := ByID(14)
	for name, x := range map[string][]byte{"zero": {0}, "one": {1}, "p-1": g14.(*modpGroup).pMinus1.Bytes()} {
		if _, err := g14.KeyFromPrivate(x); !errors.Is(err, ErrInvalidPrivate) {
			t.Errorf("group 14 %s: err = %v", name, err)
		}
	}
	g19, _ := ByID(19)
	for name, x := range map[string][]byte{"zero": make([]byte, 32), "too-long": make([]byte, 33), "n": unhex(t, "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")} {
		if _, err := g19.KeyFromPrivate(x); !errors.Is(err, ErrInvalidPrivate) {
			t.Errorf("group 19 %s: err = %v", name, err)
		}
	}
}

func BenchmarkGenerateAndShared(b *testing.B) {
	for _, id := range IDs() {
		g, _ := ByID(id)
		peer, err := g.Generate(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		pub := peer.Public()
		b.Run(g.Name(), func(b *testing.B) {
			for b.Loop() {
				k, err := g.Generate(rand.Reader)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := k.SharedSecret(pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
