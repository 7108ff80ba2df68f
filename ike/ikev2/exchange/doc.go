// Package exchange holds the rules of IKEv2 exchanges (RFC 7296) that an
// engine applies while it builds and reads messages, each as a small pure
// mechanism with no sockets, no goroutines and no engine state:
//
//   - proposal.go, evaluate.go, transforms.go, policy.go: a responder's choice of one
//     proposal of an SA payload for the IKE SA or a child SA (section 3.3,
//     2.7), with exactly one transform per type in the reply; malformed
//     offers give INVALID_SYNTAX, unacceptable ones NO_PROPOSAL_CHOSEN;
//     aws.go: AWS's transform sets and its "lowest configured value" rule;
//     reply.go the initiator's check of the responder's SA payload.
//   - ke.go: the responder's INVALID_KE_PAYLOAD decision and the
//     initiator's bounded retry with the requested group (sections 1.2,
//     1.3, 3.4).
//   - cookie.go: stateless cookies (section 2.6): a rotating secret, the
//     half-open threshold and the verifier for the responder;
//     cookie_retry.go the initiator's bounded resend with COOKIE first.
//   - narrow.go: traffic selector narrowing by the responder (section 2.9),
//     TS_UNACCEPTABLE when nothing is left; narrow_reply.go the initiator's
//     check that the responder only narrowed.
//   - msgid.go: message IDs with window size 1 for requests we send and
//     requests we answer, with the cached response for a retransmitted
//     request (sections 2.1-2.3); retransmit.go the initiator's
//     retransmission schedule.
//   - rekey.go: simultaneous rekeying (sections 2.8.1, 2.8.2): which of two
//     SAs survives by the lowest-nonce rule, and who deletes the other.
//
// Every function takes decoded wire types (ike/ikev2/wire). A refusal the
// responder answers is an *Error that names the notify to send and why;
// the initiator's checks return plain errors (a response is never
// answered). No input, however hostile, makes one panic. The package depends only on
// ike/ikev2/wire, ike/ikev2/keymat and ike/dh, so the IKEv2 engine (one
// exchange per file in ike/ikev2) calls it without a cycle.
package exchange
