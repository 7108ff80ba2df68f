package decode

import (
	"fmt"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// verdict says in words how the IKE SA ended: status established, failed,
// incomplete or unknown (encrypted answers without keys), and why.
func (sa *v2SA) verdict(pol *Policy) (string, string) {
	if n := sa.failNotify; n != nil {
		return "failed", sa.failReason(n, pol)
	}
	if sa.up {
		if sa.rekeyedFrom != "" && sa.rekeyedTo == "" {
			return "established", "IKE SA made by rekeying IKE SA " + sa.rekeyedFrom + " (CREATE_CHILD_SA)"
		}
		if sa.rekeyedTo != "" {
			return "established", "IKE SA established, later rekeyed to SPIs " + sa.rekeyedTo
		}
		return "established", ""
	}
	init, initResp, auth, authResp, retrans := 0, 0, 0, 0, 0
	for _, m := range sa.msgs {
		switch {
		case m.dup:
			retrans++
		case m.h.Exchange == wire.ExchangeIKESAInit && m.h.Response():
			initResp++
		case m.h.Exchange == wire.ExchangeIKESAInit:
			init++
		case m.h.Exchange == wire.ExchangeIKEAuth && m.h.Response():
			authResp++
		case m.h.Exchange == wire.ExchangeIKEAuth:
			auth++
		}
	}
	switch {
	case authResp > 0 && sa.undecrypted > 0 && sa.badKey > 0:
		return "unknown", "IKE_AUTH was answered, but the logged keys do not decrypt it (integrity check fails): the key log is not for this SA, or wrong"
	case authResp > 0 && sa.undecrypted > 0:
		return "unknown", "IKE_AUTH was answered, but it is encrypted and no key was given for these SPIs: give the ikev2_decryption_table (--keys) to see whether authentication succeeded"
	case auth > 0 && retrans > 0:
		return "failed", fmt.Sprintf("IKE_AUTH was never answered (%d retransmission(s)): the responder dropped it (e.g. it could not decrypt or reassemble it: lost fragments, MTU) or its answers were lost", retrans)
	case auth > 0:
		return "incomplete", fmt.Sprintf("IKE_AUTH request without an answer in the capture (%d retransmission(s)): the responder dropped it (e.g. it could not decrypt it: fragments lost, MTU) or the capture ended", retrans)
	case initResp > 0 && sa.chosen != nil:
		return "incomplete", "IKE_SA_INIT done, the capture shows no IKE_AUTH"
	case initResp > 0:
		return "incomplete", "IKE_SA_INIT answered without an SA payload (INVALID_KE_PAYLOAD or COOKIE): the retry is a new IKE SA in the capture with another initiator SPI"
	case init > 0:
		return "failed", fmt.Sprintf("no answer to IKE_SA_INIT (%d retransmission(s)): the responder is unreachable, not listening, or silently refuses the initiator", retrans)
	}
	return "incomplete", "the capture starts in the middle of this IKE SA"
}

func (sa *v2SA) failReason(n *wire.Notify, pol *Policy) string {
	switch n.NotifyType {
	case wire.NotifyNoProposalChosen:
		accepts := "compare its configured IKE proposals: encryption, integrity/PRF and DH group must all match in one proposal; --config with its configuration shows them"
		if t := pol.forLocal(sa.failMsg.p.src.Addr()); t != nil {
			accepts = "the responder accepts (" + t.Source + "): " + t.Phase1
		}
		return "no proposal chosen: offered " + orDash(sa.offeredText()) + "; the responder accepts none of them (" + accepts + ")"
	case wire.NotifyAuthenticationFailed:
		if sa.failMsg != nil && sa.failMsg.fromI {
			return "pre-shared key mismatch (seen by the initiator): the initiator could not verify the responder's AUTH and sent AUTHENTICATION_FAILED"
		}
		if sa.auth != 0 && sa.auth != wire.AuthPSK {
			return fmt.Sprintf("authentication failed: the responder answered IKE_AUTH with AUTHENTICATION_FAILED (method %s)", sa.auth)
		}
		return "pre-shared key mismatch: the responder answered IKE_AUTH with AUTHENTICATION_FAILED (it could not verify the initiator's PSK AUTH: the PSKs differ, or the responder picked the key of another ID " + orDash(describeIDp(sa.idi)) + ")"
	}
	return fmt.Sprintf("%s from the %s", n.NotifyType, map[bool]string{true: "initiator", false: "responder"}[sa.failMsg != nil && sa.failMsg.fromI])
}

func (sa *v2SA) offeredText() string {
	if sa.offered == nil {
		return ""
	}
	return describeV2SA(sa.offered)
}

func describeIDp(id *wire.ID) string {
	if id == nil {
		return ""
	}
	return describeV2ID(id)
}
