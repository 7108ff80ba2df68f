package ike

import (
	"errors"

	"github.com/vpnlab/vpnlab/ike/auth"
)

// Phase 1 authentication as a task (package auth): main and aggressive
// mode assemble what RFC 2409 section 5 authenticates, the tunnel's
// Authenticator (a pre-shared key) makes our HASH_I/HASH_R and checks the
// peer's. IKEv2's IKE_AUTH uses the same Authenticator with auth.V2.

// authInput is what HASH_I (initiator true) or HASH_R covers, with the
// signer's ID payload body.
func (sa *ikeSA) authInput(initiator bool, idBody []byte) auth.V1 {
	return auth.V1{
		Hash: sa.hash, SKEYID: sa.skeyid,
		GXi: sa.gxi, GXr: sa.gxr, CKYi: sa.iCookie[:], CKYr: sa.rCookie[:],
		SAiB: sa.saiB, IDBody: idBody, Initiator: initiator,
	}
}

// proveAuth returns our HASH_I or HASH_R; on an internal error it fails
// the SA and reports false.
func (sa *ikeSA) proveAuth(initiator bool, idBody []byte) ([]byte, bool) {
	b, err := sa.t.auth.ProveV1(sa.authInput(initiator, idBody))
	if err != nil {
		sa.fail("phase 1 authentication: "+err.Error(), false)
		return nil, false
	}
	return b, true
}

// verifyAuth reports whether the peer's HASH_I or HASH_R verifies.
func (sa *ikeSA) verifyAuth(initiator bool, idBody, proof []byte) bool {
	err := sa.t.auth.VerifyV1(sa.authInput(initiator, idBody), proof)
	if err != nil && !errors.Is(err, auth.ErrMismatch) {
		sa.logger().WithError(err).Warn("phase 1 authentication could not be checked")
	}
	return err == nil
}
