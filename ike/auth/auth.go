// Package auth is peer authentication as its own task, the same for every
// IKE version: an Authenticator proves our identity over the octets an
// exchange authenticates and verifies the peer's proof. IKEv1 phase 1
// (main and aggressive mode, RFC 2409 section 5) and IKEv2 IKE_AUTH (RFC
// 7296 section 2.15) assemble what is authenticated (V1, V2); the method
// (a pre-shared key today: PSK; certificates later) turns it into the
// payload data and checks the peer's. The engines know no method's
// arithmetic.
package auth

import (
	"crypto"
	"errors"

	v2keymat "github.com/vpnlab/vpnlab/ike/ikev2/keymat"
)

// Method names an authentication method, as logs and status show it.
type Method string

// The methods.
const (
	MethodPSK Method = "psk" // IKEv1 method 1 (RFC 2409), IKEv2 method 2 (RFC 7296 section 3.8)
)

// ErrMismatch is returned by Verify when the peer's proof is not the one
// expected: with a pre-shared key, the keys differ (or the message was
// tampered with).
var ErrMismatch = errors.New("authentication data does not verify")

// V1 is what an IKEv1 phase 1 authenticates (RFC 2409 section 5), seen
// from the proof's signer: HASH_I when Initiator, else HASH_R.
//
//	HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)
//	HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
//
// GXi, GXr, CKYi and CKYr are the initiator's and the responder's values
// whoever signs; SAiB is the body of the initiator's SA payload; IDBody the
// signer's ID payload body (from the ID type on).
type V1 struct {
	Hash       crypto.Hash // the negotiated hash, as HMAC the prf
	SKEYID     []byte      // from the Authenticator's SKEYID
	GXi, GXr   []byte
	CKYi, CKYr []byte
	SAiB       []byte
	IDBody     []byte
	Initiator  bool
}

// V2 is what IKEv2's IKE_AUTH authenticates (RFC 7296 section 2.15), seen
// from the signer: its whole first message (IKE_SA_INIT request for the
// initiator, response for the responder), the peer's nonce data, its SK_pi
// or SK_pr and its ID payload body (IDi' or IDr').
type V2 struct {
	PRF       v2keymat.PRF
	Message   []byte
	PeerNonce []byte
	SKp       []byte
	IDBody    []byte
}

// Authenticator is one authentication method with its credentials.
type Authenticator interface {
	Method() Method
	// SKEYID is IKEv1's SKEYID (RFC 2409 section 5), which depends on the
	// method: prf(pre-shared-key, Ni_b | Nr_b) for a pre-shared key.
	SKEYID(h crypto.Hash, ni, nr, gxy []byte) []byte
	// ProveV1 returns our HASH_I or HASH_R (the payload data we send).
	ProveV1(in V1) ([]byte, error)
	// VerifyV1 checks the peer's; ErrMismatch if it does not verify.
	VerifyV1(in V1, proof []byte) error
	// ProveV2 returns our AUTH payload data (without the method octet).
	ProveV2(in V2) ([]byte, error)
	// VerifyV2 checks the peer's; ErrMismatch if it does not verify.
	VerifyV2(in V2, proof []byte) error
}
