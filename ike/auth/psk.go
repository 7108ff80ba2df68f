package auth

import (
	"crypto"
	"crypto/hmac"
	"errors"
	"fmt"

	v2keymat "github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// PSK authenticates with a pre-shared key: in IKEv1 the key keys SKEYID and
// HASH_I/HASH_R are prfs under SKEYID; in IKEv2 AUTH is
// prf(prf(key, "Key Pad for IKEv2"), signed octets). The key never leaves
// the value and is never printed.
type PSK struct {
	key []byte
}

// NewPSK returns the method for key (copied). Whether a key is acceptable
// (not empty, AWS's rules) is the configuration's check.
func NewPSK(key []byte) *PSK {
	return &PSK{key: append([]byte(nil), key...)}
}

// Method is MethodPSK.
func (p *PSK) Method() Method { return MethodPSK }

// String never shows the key, nor does any fmt verb.
func (p *PSK) String() string { return "psk([redacted])" }

// Format prints String for every verb (%v, %+v, %#v, %s, %x...).
func (p *PSK) Format(f fmt.State, _ rune) { fmt.Fprint(f, p.String()) }

// SKEYID = prf(pre-shared-key, Ni_b | Nr_b) (RFC 2409 section 5; g^xy
// does not enter it with this method).
func (p *PSK) SKEYID(h crypto.Hash, ni, nr, _ []byte) []byte {
	return keymat.SKEYIDPreShared(h, p.key, ni, nr)
}

// ProveV1 returns HASH_I or HASH_R.
func (p *PSK) ProveV1(in V1) ([]byte, error) {
	if len(in.SKEYID) == 0 {
		return nil, errors.New("auth: SKEYID is not derived yet")
	}
	if in.Initiator {
		return keymat.HashI(in.Hash, in.SKEYID, in.GXi, in.GXr, in.CKYi, in.CKYr, in.SAiB, in.IDBody), nil
	}
	return keymat.HashR(in.Hash, in.SKEYID, in.GXr, in.GXi, in.CKYr, in.CKYi, in.SAiB, in.IDBody), nil
}

// VerifyV1 compares the peer's HASH in constant time.
func (p *PSK) VerifyV1(in V1, proof []byte) error {
	want, err := p.ProveV1(in)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, proof) {
		return ErrMismatch
	}
	return nil
}

// ProveV2 returns the AUTH data of RFC 7296 section 2.15.
func (p *PSK) ProveV2(in V2) ([]byte, error) {
	return v2keymat.PSKAuth(in.PRF, p.key, in.Message, in.PeerNonce, in.SKp, in.IDBody)
}

// VerifyV2 compares the peer's AUTH data in constant time.
func (p *PSK) VerifyV2(in V2, proof []byte) error {
	want, err := p.ProveV2(in)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, proof) {
		return ErrMismatch
	}
	return nil
}

var _ Authenticator = (*PSK)(nil)
