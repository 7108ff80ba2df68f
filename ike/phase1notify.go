package ike

import (
	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Error notifies and the ISAKMP SA (docs/hostile-input.md, "Phase 1 and
// dispatch").
//
// A plaintext notify is unauthenticated: anyone who saw our first message
// knows the cookies and can forge one. So:
//
//   - On an established ISAKMP SA every notify of the peer is protected
//     (RFC 2409 section 5.7): a plaintext one is counted, logged and
//     otherwise ignored; it ends nothing, neither the SA nor a pending
//     quick mode.
//   - During phase 1 a plaintext error notify is the only way a peer can
//     refuse (before keys exist, RFC 2408 section 5), so it is recorded but
//     does not end the negotiation at once: the negotiation fails when the
//     peer repeats an error notify in answer to one of our retransmissions
//     (a real refusal: the peer answers every copy), or when our
//     retransmissions or the responder's half-open time run out (the
//     reason then names the recorded notify). A single forged notify
//     therefore costs nothing if the real peer answers.
//   - An authenticated AUTHENTICATION-FAILED, INVALID-HASH-INFORMATION or
//     INVALID-ID-INFORMATION on an SA that is established here but that the
//     peer has not yet used (main mode responder after MM6, aggressive mode
//     initiator after AM3) means the peer refused our last phase 1 message:
//     the SA is torn down.

// unauthenticatedNotify handles a plaintext error notify for this SA.
func (sa *ikeSA) unauthenticatedNotify(nt isakmp.NotifyType) {
	sa.e.counters.UnauthenticatedNotifies++
	log := sa.logger().WithFields(logrus.Fields{"notify": nt.String(), "state": sa.state.String(), "authenticated": false})
	if sa.state == stateEstablished {
		log.Warn("ignoring an unauthenticated (plaintext) error notify for an established ISAKMP SA: the peer protects its notifies with the SA")
		return
	}
	sa.e.emit(Event{Tunnel: sa.tunnelName(), Type: "notify-received", Detail: map[string]string{"notify": nt.String(), "authenticated": "false"}})
	tries := sa.out.tries
	if sa.unauthNotify != 0 && tries > sa.unauthTries {
		log.WithField("first", sa.unauthNotify.String()).Warn("the peer repeats an error notify in answer to our retransmission: phase 1 failed")
		sa.fail(phase1NotifyReason(sa.unauthNotify), false)
		return
	}
	if sa.unauthNotify == 0 {
		sa.unauthNotify, sa.unauthTries = nt, tries
	}
	log.Warn("unauthenticated (plaintext) error notify during phase 1: recorded; the negotiation goes on until the peer repeats it after a retransmission or stops answering")
}

// failPhase1 ends an unfinished phase 1 that timed out: with the reason of
// an unauthenticated error notify received meanwhile, if any.
func (sa *ikeSA) failPhase1(reason string) {
	if sa.unauthNotify != 0 && sa.state != stateEstablished {
		sa.logger().WithField("notify", sa.unauthNotify.String()).Warn(reason + "; the peer had sent an unauthenticated error notify")
		sa.fail(phase1NotifyReason(sa.unauthNotify)+" ("+reason+")", false)
		return
	}
	sa.fail(reason, false)
}

// peerRejectedPhase1 tears the SA down when an authenticated error notify
// shows that the peer refused our last phase 1 message (it could not verify
// HASH_R or HASH_I, or our identity) although phase 1 completed here.
func (sa *ikeSA) peerRejectedPhase1(nt isakmp.NotifyType) bool {
	if sa.state != stateEstablished || sa.peerConfirmed {
		return false
	}
	switch nt {
	case isakmp.NotifyAuthenticationFailed, isakmp.NotifyInvalidHashInformation, isakmp.NotifyInvalidIDInformation:
	default:
		return false
	}
	reason := "the peer refused phase 1 after it completed here: it reports " + nt.String()
	if nt != isakmp.NotifyInvalidIDInformation {
		reason += " (it could not verify our phase 1 hash)"
	}
	sa.logger().WithField("notify", nt.String()).Warn("the peer rejected our last phase 1 message: deleting the ISAKMP SA")
	sa.fail(reason, false)
	return true
}

// phase1NotifyReason explains a peer's error notify that ended phase 1.
func phase1NotifyReason(nt isakmp.NotifyType) string {
	switch nt {
	case isakmp.NotifyNoProposalChosen:
		return "No Proposal Match Found: the peer answered NO-PROPOSAL-CHOSEN"
	case isakmp.NotifyAuthenticationFailed, isakmp.NotifyInvalidHashInformation:
		return "the peer reports " + nt.String() + ": pre-shared key mismatch"
	case isakmp.NotifyInvalidIDInformation:
		return "the peer reports INVALID-ID-INFORMATION: identities or traffic selectors do not match"
	}
	return "peer sent " + nt.String()
}
