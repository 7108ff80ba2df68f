package ike

import "errors"

// dropPhase1Undecryptable is the drop reason of an encrypted phase 1
// message (MM5, MM6, AM3) whose body is not a whole number of cipher
// blocks.
const dropPhase1Undecryptable = "phase1-undecryptable"

// dropPhase1MessageID is the drop reason of a main or aggressive mode
// message with a non-zero message ID (RFC 2408 section 3.1: phase 1 uses
// zero); it is not answered, the peer's retransmission is awaited.
const dropPhase1MessageID = "phase1-nonzero-msgid"

// undecryptablePhase1 drops (counted, rate-limited log) an encrypted phase
// 1 message whose body is not a whole number of cipher blocks. Such a
// message is damaged or forged, not the sign of a pre-shared key mismatch
// (a peer with another key still sends whole blocks): ending the
// negotiation with AUTHENTICATION-FAILED would let anyone who saw the
// cookies abort it, so the peer's retransmission is awaited instead.
func (sa *ikeSA) undecryptablePhase1(err error, what string) bool {
	if !errors.Is(err, errDecrypt) {
		return false
	}
	sa.dropQuick(dropPhase1Undecryptable, 0, what+" is not a whole number of cipher blocks: dropped, waiting for the peer's retransmission")
	return true
}
