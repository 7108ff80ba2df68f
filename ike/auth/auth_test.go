package auth

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"strings"
	"testing"

	v2keymat "github.com/vpnlab/vpnlab/ike/ikev2/keymat"
)

// mac is HMAC written out here, independent of the keymat packages.
func mac(h crypto.Hash, key []byte, data ...[]byte) []byte {
	m := hmac.New(h.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// TestPSKV1 checks SKEYID, HASH_I and HASH_R against RFC 2409 section 5
// written out with crypto/hmac, for every IKEv1 hash: the inputs swap for
// HASH_R, the ID is the signer's.
func TestPSKV1(t *testing.T) {
	key := []byte("test.psk_for_vpnlab_1")
	p := NewPSK(key)
	ni, nr, gxi, gxr := fill(16, 1), fill(32, 2), fill(256, 3), fill(256, 4)
	ckyI, ckyR, saiB, idI, idR := fill(8, 5), fill(8, 6), fill(52, 7), fill(8, 8), fill(8, 9)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		skeyid := p.SKEYID(h, ni, nr, nil)
		if want := mac(h, key, ni, nr); !bytes.Equal(skeyid, want) {
			t.Fatalf("%v: SKEYID %x, want prf(PSK, Ni|Nr) %x", h, skeyid, want)
		}
		in := V1{Hash: h, SKEYID: skeyid, GXi: gxi, GXr: gxr, CKYi: ckyI, CKYr: ckyR, SAiB: saiB, IDBody: idI, Initiator: true}
		hashI, err := p.ProveV1(in)
		if err != nil {
			t.Fatal(err)
		}
		if want := mac(h, skeyid, gxi, gxr, ckyI, ckyR, saiB, idI); !bytes.Equal(hashI, want) {
			t.Fatalf("%v: HASH_I %x, want %x", h, hashI, want)
		}
		inR := in
		inR.Initiator, inR.IDBody = false, idR
		hashR, err := p.ProveV1(inR)
		if err != nil {
			t.Fatal(err)
		}
		if want := mac(h, skeyid, gxr, gxi, ckyR, ckyI, saiB, idR); !bytes.Equal(hashR, want) {
			t.Fatalf("%v: HASH_R %x, want %x", h, hashR, want)
		}
		if err := p.VerifyV1(in, hashI); err != nil {
			t.Fatalf("%v: own HASH_I does not verify: %v", h, err)
		}
		if err := p.VerifyV1(inR, hashI); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%v: HASH_I accepted as HASH_R: %v", h, err)
		}
		bad := append([]byte(nil), hashI...)
		bad[len(bad)-1] ^= 1
		if err := p.VerifyV1(in, bad); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%v: a flipped bit verifies: %v", h, err)
		}
		// The peer with another key derives another SKEYID: its HASH_I
		// does not verify here.
		other := NewPSK([]byte("another key"))
		inO := in
		inO.SKEYID = other.SKEYID(h, ni, nr, nil)
		theirs, _ := other.ProveV1(inO)
		if err := p.VerifyV1(in, theirs); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%v: HASH_I made with another key verifies: %v", h, err)
		}
	}
	if _, err := p.ProveV1(V1{Hash: crypto.SHA1}); err == nil {
		t.Fatal("ProveV1 without SKEYID succeeded")
	}
}

// TestPSKV2 checks IKEv2's AUTH (RFC 7296 section 2.15) written out:
// prf(prf(PSK, "Key Pad for IKEv2"), message | peer nonce | prf(SK_p, ID')).
func TestPSKV2(t *testing.T) {
	key := []byte("test.psk_for_vpnlab_1")
	p := NewPSK(key)
	for _, id := range []uint16{v2keymat.PRFHMACSHA1, v2keymat.PRFHMACSHA2256, v2keymat.PRFHMACSHA2384, v2keymat.PRFHMACSHA2512} {
		prf, err := v2keymat.PRFByID(id)
		if err != nil {
			t.Fatal(err)
		}
		in := V2{PRF: prf, Message: fill(300, 1), PeerNonce: fill(32, 2), SKp: fill(prf.Size(), 3), IDBody: fill(8, 4)}
		got, err := p.ProveV2(in)
		if err != nil {
			t.Fatal(err)
		}
		want := mac(prf.Hash, mac(prf.Hash, key, []byte("Key Pad for IKEv2")), in.Message, in.PeerNonce, mac(prf.Hash, in.SKp, in.IDBody))
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: AUTH %x, want %x", prf.Name, got, want)
		}
		if err := p.VerifyV2(in, got); err != nil {
			t.Fatalf("%s: own AUTH does not verify: %v", prf.Name, err)
		}
		if err := NewPSK([]byte("another key")).VerifyV2(in, got); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s: AUTH verifies with another key: %v", prf.Name, err)
		}
	}
}

func TestPSKNeverPrinted(t *testing.T) {
	p := NewPSK([]byte("s3cret-key"))
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s %x %q", p, p, p, p, p, p), fmt.Sprintf("%v", []Authenticator{p})} {
		if strings.Contains(s, "s3cret") || strings.Contains(s, fmt.Sprintf("%x", "s3cret")) {
			t.Fatalf("the key shows: %s", s)
		}
	}
	if p.Method() != MethodPSK {
		t.Fatalf("method %q", p.Method())
	}
}
