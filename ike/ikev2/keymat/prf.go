// Package keymat implements the IKEv2 key derivations of RFC 7296: the
// negotiated prf, prf+ (section 2.13), SKEYSEED and the seven IKE SA keys
// (section 2.14), CHILD_SA keying material with and without PFS (section
// 2.17), SKEYSEED of a rekeyed IKE SA (section 2.18), the pre-shared-key
// AUTH value (section 2.15) and the NAT detection hash (section 2.23).
//
// Only HMAC prfs are supported (PRF_HMAC_SHA1 and the RFC 4868 SHA-2 ones).
// HMAC takes keys of any length, so the rule of section 2.14 for prfs with
// a fixed key size (AES-XCBC-PRF-128, AES-CMAC-PRF-128: half the key bits
// from Ni and half from Nr) never applies here: SKEYSEED is keyed with the
// whole Ni | Nr.
//
// The HMAC itself is ike/keymat's (the IKEv1 package, a leaf that both
// versions share); this package adds what is different in IKEv2.
package keymat

import (
	"crypto"
	"crypto/hmac"
	"errors"
	"fmt"
	"hash"

	v1 "github.com/vpnlab/vpnlab/ike/keymat"
)

// IKEv2 transform type 2 (PRF) IDs, RFC 7296 section 3.3.2 and RFC 4868
// section 4 (IANA "Transform Type 2 - Pseudorandom Function Transform IDs").
const (
	PRFHMACSHA1    = 2
	PRFHMACSHA2256 = 5
	PRFHMACSHA2384 = 6
	PRFHMACSHA2512 = 7
)

// PRF is a negotiated IKEv2 pseudorandom function: HMAC with Hash.
type PRF struct {
	ID   uint16
	Name string
	Hash crypto.Hash
}

var prfs = []PRF{
	{ID: PRFHMACSHA1, Name: "prf-hmac-sha1", Hash: crypto.SHA1},
	{ID: PRFHMACSHA2256, Name: "prf-hmac-sha2-256", Hash: crypto.SHA256},
	{ID: PRFHMACSHA2384, Name: "prf-hmac-sha2-384", Hash: crypto.SHA384},
	{ID: PRFHMACSHA2512, Name: "prf-hmac-sha2-512", Hash: crypto.SHA512},
}

// PRFByID returns the prf of a transform type 2 ID: 2 = HMAC-SHA1,
// 5 = HMAC-SHA2-256, 6 = HMAC-SHA2-384, 7 = HMAC-SHA2-512.
func PRFByID(id uint16) (PRF, error) {
	for _, p := range prfs {
		if p.ID == id {
			return p, nil
		}
	}
	return PRF{}, fmt.Errorf("ikev2 keymat: unsupported PRF transform %d (supported: 2=hmac-sha1, 5=hmac-sha2-256, 6=hmac-sha2-384, 7=hmac-sha2-512)", id)
}

// PRFByHash returns the HMAC prf with hash h (SHA1, SHA256, SHA384, SHA512).
func PRFByHash(h crypto.Hash) (PRF, error) {
	for _, p := range prfs {
		if p.Hash == h {
			return p, nil
		}
	}
	return PRF{}, fmt.Errorf("ikev2 keymat: no IKEv2 HMAC prf with hash %s (supported: sha1, sha256, sha384, sha512)", v1.HashName(h))
}

// Size is the prf's output length in bytes.
func (p PRF) Size() int { return p.Hash.Size() }

// KeyLen is the prf's preferred key length, the length of SK_d, SK_pi and
// SK_pr (RFC 7296 section 2.14). For the HMAC prfs it is the output length
// (RFC 2104 section 3, RFC 4868 section 2.1.2).
func (p PRF) KeyLen() int { return p.Hash.Size() }

func (p PRF) check() error {
	if p.Hash == 0 || !p.Hash.Available() {
		return errors.New("ikev2 keymat: PRF without an available hash (use PRFByID or PRFByHash)")
	}
	return nil
}

// Sum returns prf(key, data[0] | data[1] | ...).
func (p PRF) Sum(key []byte, data ...[]byte) []byte { return v1.PRF(p.Hash, key, data...) }

// maxPRFPlusBlocks is the bound of RFC 7296 section 2.13: the counter octet
// of prf+ runs from 0x01 to 0xff and may not wrap.
const maxPRFPlusBlocks = 255

// MaxPRFPlus is the most keying material prf+ with p can produce:
// 255 prf outputs.
func (p PRF) MaxPRFPlus() int { return maxPRFPlusBlocks * p.Size() }

// PRFPlus returns the first n bytes of prf+(key, S), S being the
// concatenation of seed (RFC 7296 section 2.13):
//
//	prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//	T1 = prf (K, S | 0x01)
//	T2 = prf (K, T1 | S | 0x02)
//	T3 = prf (K, T2 | S | 0x03)
//
// More than 255 prf outputs are an error, not a wrap of the counter.
func PRFPlus(p PRF, key []byte, n int, seed ...[]byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if n < 0 || n > p.MaxPRFPlus() {
		return nil, fmt.Errorf("ikev2 keymat: prf+ of %d bytes with %s: the limit is 255 x %d = %d bytes (RFC 7296 section 2.13)",
			n, p.Name, p.Size(), p.MaxPRFPlus())
	}
	m := hmac.New(p.Hash.New, key)
	out := make([]byte, 0, n+p.Size())
	prfPlusInto(m, out, n, seed)
	return out[:n], nil
}

// prfPlusInto appends prf+ blocks to out (whose capacity holds n bytes
// rounded up to whole blocks) until n bytes are there; m is the keyed HMAC.
func prfPlusInto(m hash.Hash, out []byte, n int, seed [][]byte) []byte {
	var ctr [1]byte
	var prev []byte
	for i := 1; len(out) < n; i++ {
		m.Reset()
		m.Write(prev)
		for _, s := range seed {
			m.Write(s)
		}
		ctr[0] = byte(i)
		m.Write(ctr[:])
		start := len(out)
		out = m.Sum(out)
		prev = out[start:]
	}
	return out
}
