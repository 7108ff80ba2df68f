//go:build amd64 && !purego

package esp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// TestFastCBCMatchesStdlib: the AES-NI CBC gives crypto/cipher's results for
// every key size, lengths of 1 to 70 blocks (the 4-block loop and the tail),
// in place and not, with the IV chained across calls.
func TestFastCBCMatchesStdlib(t *testing.T) {
	if !haveAESNI {
		t.Fatal("this machine has no AES-NI: the fast CBC cannot be tested (every amd64 machine of the project has it)")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, kl := range []int{16, 24, 32} {
		for iter := range 60 {
			key, iv := rnd(kl), rnd(16)
			b, err := aes.NewCipher(key)
			if err != nil {
				t.Fatal(err)
			}
			enc, dec, ok := newCBCModes(b, newCBCKeys(key))
			if !ok {
				t.Fatal("no CBC modes")
			}
			if _, fast := enc.(*fastCBC); !fast {
				t.Fatal("newCBCModes did not choose the AES-NI code")
			}
			enc.SetIV(iv)
			dec.SetIV(iv)
			wantEnc := cipher.NewCBCEncrypter(b, iv)
			wantDec := cipher.NewCBCDecrypter(b, iv)
			for call := range 3 { // the IV carries over from call to call
				pt := rnd(16 * (1 + rng.IntN(70)))
				want := make([]byte, len(pt))
				wantEnc.CryptBlocks(want, pt)
				got := make([]byte, len(pt))
				if iter%2 == 0 {
					enc.CryptBlocks(got, pt)
				} else {
					copy(got, pt)
					enc.CryptBlocks(got, got)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("key %d bytes, iteration %d, call %d: encryption differs", kl, iter, call)
				}
				back := make([]byte, len(got))
				wantDec.CryptBlocks(back, want)
				if iter%2 == 0 {
					dec.CryptBlocks(got, got)
				} else {
					g2 := make([]byte, len(got))
					dec.CryptBlocks(g2, got)
					got = g2
				}
				if !bytes.Equal(got, pt) || !bytes.Equal(back, pt) {
					t.Fatalf("key %d bytes, iteration %d, call %d: decryption differs", kl, iter, call)
				}
			}
		}
	}
}

// TestExpandKeyFIPS197: the key schedule against the expanded keys printed
// in FIPS-197 appendix A (last round key of each key size) and the S-box
// against two values of its table.
func TestExpandKeyFIPS197(t *testing.T) {
	if sbox[0x00] != 0x63 || sbox[0x53] != 0xed || sbox[0xff] != 0x16 {
		t.Fatalf("S-box wrong: %02x %02x %02x", sbox[0], sbox[0x53], sbox[0xff])
	}
	for _, c := range []struct{ key, last string }{
		{"2b7e151628aed2a6abf7158809cf4f3c", "d014f9a8c9ee2589e13f0cc8b6630ca6"},
		{"8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b", "e98ba06f448c773c8ecc720401002202"},
		{"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", "fe4890d1e6188d0b046df344706c631e"},
	} {
		key, _ := hex.DecodeString(c.key)
		var enc, dec [15 * 16]byte
		nr := expandKey(key, enc[:], dec[:])
		if got := hex.EncodeToString(enc[16*nr : 16*nr+16]); got != c.last {
			t.Errorf("key %s: last round key %s, want %s", c.key, got, c.last)
		}
	}
}

// BenchmarkCBC compares the AES-NI CBC with crypto/cipher's (AES-128, 1408
// bytes: a 1400-byte packet's padded payload).
func BenchmarkCBC(b *testing.B) {
	key := make([]byte, 16)
	blk, _ := aes.NewCipher(key)
	fe, fd, _ := newCBCModes(blk, newCBCKeys(key))
	se, sd, _ := stdCBCModes(blk)
	buf := make([]byte, 1408)
	for _, m := range []struct {
		name string
		mode cbcMode
	}{{"std/encrypt", se}, {"std/decrypt", sd}, {"aesni/encrypt", fe}, {"aesni/decrypt", fd}} {
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				m.mode.CryptBlocks(buf, buf)
			}
		})
	}
}
