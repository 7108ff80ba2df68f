package keymat

import (
	"crypto/hmac"
	"errors"
	"fmt"
)

// SKEYSEED is prf(Ni | Nr, g^ir) (RFC 7296 section 2.14): ni and nr are the
// Nonce payloads' data, gir the Diffie-Hellman shared secret as the KE
// payloads' encoding gives it (MODP left-padded to the prime length, ECP
// the x coordinate).
func SKEYSEED(p PRF, ni, nr, gir []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	m := hmac.New(p.Hash.New, concat(ni, nr))
	m.Write(gir)
	return m.Sum(nil), nil
}

// RekeySKEYSEED is SKEYSEED of an IKE SA rekeyed with CREATE_CHILD_SA,
// prf(SK_d (old), g^ir (new) | Ni | Nr) (RFC 7296 section 2.18), with the
// nonces of the CREATE_CHILD_SA exchange. The new SA's keys then come from
// DeriveIKE with the new SPIs.
func RekeySKEYSEED(p PRF, skdOld, girNew, ni, nr []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if len(girNew) == 0 {
		return nil, errors.New("ikev2 keymat: IKE SA rekey without a new Diffie-Hellman secret")
	}
	return p.Sum(skdOld, girNew, ni, nr), nil
}

// Suite is the negotiated IKE SA transform set.
type Suite struct {
	PRF   PRF
	Encr  Encryption
	Integ Integrity
}

// IKELen is the length of {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi |
// SK_pr} for the suite.
func (s Suite) IKELen() int {
	return 3*s.PRF.KeyLen() + 2*s.Integ.KeyLen + 2*s.Encr.KeyLen
}

// IKEKeys are the seven keys of an IKE SA. Ai and Ar are empty with an
// AEAD cipher; Ei and Er include the salt of GCM.
type IKEKeys struct {
	D, Ai, Ar, Ei, Er, Pi, Pr []byte
}

// DeriveIKE splits prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) into the IKE SA's
// keys in the order and lengths of RFC 7296 section 2.14: SK_d, SK_ai,
// SK_ar, SK_ei, SK_er, SK_pi, SK_pr. spii and spir are the 8-byte IKE SPIs
// of the initiator and responder of the exchange that created the SA (for
// a rekeyed SA, the new SPIs, initiator = who started the rekey).
func DeriveIKE(s Suite, skeyseed, ni, nr, spii, spir []byte) (IKEKeys, error) {
	if err := s.PRF.check(); err != nil {
		return IKEKeys{}, err
	}
	if err := checkPair(s.Encr, s.Integ); err != nil {
		return IKEKeys{}, err
	}
	if len(spii) != 8 || len(spir) != 8 {
		return IKEKeys{}, fmt.Errorf("ikev2 keymat: IKE SPIs must be 8 bytes, got %d and %d", len(spii), len(spir))
	}
	km, err := PRFPlus(s.PRF, skeyseed, s.IKELen(), ni, nr, spii, spir)
	if err != nil {
		return IKEKeys{}, err
	}
	var k IKEKeys
	take := splitter(km)
	k.D = take(s.PRF.KeyLen())
	k.Ai = take(s.Integ.KeyLen)
	k.Ar = take(s.Integ.KeyLen)
	k.Ei = take(s.Encr.KeyLen)
	k.Er = take(s.Encr.KeyLen)
	k.Pi = take(s.PRF.KeyLen())
	k.Pr = take(s.PRF.KeyLen())
	return k, nil
}

// ChildKeys are the ESP keys of a CHILD_SA pair. I (initiator to
// responder) is the SA the initiator sends on, R the other direction.
type ChildKeys struct {
	EncrI, IntegI, EncrR, IntegR []byte
}

// ChildLen is the length of a CHILD_SA pair's KEYMAT with encr and integ.
func ChildLen(encr Encryption, integ Integrity) int { return 2 * (encr.KeyLen + integ.KeyLen) }

// ChildKeymat is KEYMAT = prf+(SK_d, Ni | Nr), or with PFS
// prf+(SK_d, g^ir (new) | Ni | Nr) (RFC 7296 section 2.17), n bytes. ni and
// nr are the nonces of the exchange that creates the CHILD_SA (IKE_SA_INIT
// for the first one, CREATE_CHILD_SA otherwise); girNew is nil without PFS.
func ChildKeymat(p PRF, skd, girNew, ni, nr []byte, n int) ([]byte, error) {
	if girNew != nil && len(girNew) == 0 {
		return nil, errors.New("ikev2 keymat: empty PFS Diffie-Hellman secret (nil means no PFS)")
	}
	return PRFPlus(p, skd, n, girNew, ni, nr)
}

// DeriveChild takes a CHILD_SA pair's keys from ChildKeymat in the order of
// RFC 7296 section 2.17: first the initiator-to-responder SA, then the
// other one; within each the encryption key (with GCM's salt) before the
// integrity key.
func DeriveChild(p PRF, skd, girNew, ni, nr []byte, encr Encryption, integ Integrity) (ChildKeys, error) {
	if err := checkPair(encr, integ); err != nil {
		return ChildKeys{}, err
	}
	km, err := ChildKeymat(p, skd, girNew, ni, nr, ChildLen(encr, integ))
	if err != nil {
		return ChildKeys{}, err
	}
	take := splitter(km)
	var k ChildKeys
	k.EncrI = take(encr.KeyLen)
	k.IntegI = take(integ.KeyLen)
	k.EncrR = take(encr.KeyLen)
	k.IntegR = take(integ.KeyLen)
	return k, nil
}

// splitter returns a function that takes the next n bytes of b (full slice
// expressions, so that appending to one key never overwrites the next).
func splitter(b []byte) func(n int) []byte {
	off := 0
	return func(n int) []byte {
		k := b[off : off+n : off+n]
		off += n
		return k
	}
}

func concat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
