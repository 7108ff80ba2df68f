package gateway

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sirupsen/logrus"
)

// AWS's documented IKEv2 log messages (AWS Site-to-Site VPN User Guide,
// log-contents.md, "IKEv2 Error Messages"), and which IKEv2 engine records
// (field ike_version=ikev2) they stand for on the AWS side. The two
// "No Proposal Match Found" messages and the DELETE of the IKE SA are
// IKEv1's wording, which AWS lists for IKEv2 too (awsmessages.go).
// TestAWSMessagesFromEnginesIKEv2 provokes each mapped record with real
// engines; docs/metrics.md has the table.
const (
	awsV2DPDTimeout     = "AWS tunnel DPD timed out after %s retransmits"
	awsV2AuthFailed     = "AWS tunnel is sending AUTHENTICATION_FAILED as the response"
	awsV2PSKMismatch    = "AWS tunnel detected a pre-shared key mismatch with cgw: "
	awsV2HalfOpen       = "AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: "
	awsV2TSUnaccept     = "AWS: Traffic Selector: TS_UNACCEPTABLE: received from responder"
	awsV2ChildFailed    = "AWS tunnel Phase 2 was unable to establish while keeping Phase 1"
	awsV2ChildRedundant = "AWS tunnel (CHILD_SA) redundant SA is being deleted due to detected collision"
)

// The engine's IKEv2 records (ike/ikev2_*.go) that have an AWS message.
const (
	engineV2AuthRefused   = "IKE_AUTH refused: "
	engineV2InitRefused   = "IKE_SA_INIT refused"
	engineV2ChildRefused  = "child SA refused: "
	engineV2RequestRefuse = "refusing the peer's request: "
	engineV2Failed        = "IKE SA negotiation failed"
	engineV2PSKDiffer     = "pre-shared keys differ"
	engineV2GiveUp        = "no answer: giving up"
	engineV2HalfOpen      = "IKE_AUTH did not come in time: dropping the half-open IKEv2 SA"
	engineV2PeerDeleted   = "the peer deleted the IKE SA (INFORMATIONAL DELETE)"
	engineV2Collision     = "child SA rekey collision (both ends rekeyed)"
	engineTunnelError     = "tunnel error"
	engineV2ChildPeerRef  = "IKEv2 child SA: the peer refused the child SA with "
)

// awsMessageV2 returns AWS's message for an IKEv2 engine record, "" if AWS
// documents none for it. cgw is the tunnel's remote address (for the
// records that name the customer gateway but carry no peer field).
func awsMessageV2(e *logrus.Entry, cgw string) string {
	m := e.Message
	field := func(k string) string {
		if v, ok := e.Data[k]; ok {
			return fmt.Sprint(v)
		}
		return ""
	}
	switch {
	case m == awsPeerDead:
		// The liveness check's verdict (ike/ikev2_liveness.go).
		if r := field("retransmits"); r != "" {
			return fmt.Sprintf(awsV2DPDTimeout, r)
		}
	case strings.HasPrefix(m, engineV2AuthRefused) && field("notify") == "AUTHENTICATION_FAILED":
		return awsV2AuthFailed
	case m == engineV2Failed && strings.Contains(field("reason"), engineV2PSKDiffer) && cgw != "":
		// Either role: the responder's check of IDi's AUTH, or the
		// initiator's of the responder's.
		return awsV2PSKMismatch + cgw
	case m == engineV2InitRefused && field("notify") == "NO_PROPOSAL_CHOSEN",
		strings.HasPrefix(m, engineV2RequestRefuse) && field("notify") == "NO_PROPOSAL_CHOSEN" && field("exchange") == "IKE SA rekey":
		return awsNoProposalP1
	case (strings.HasPrefix(m, engineV2ChildRefused) || strings.HasPrefix(m, engineV2RequestRefuse)) && field("notify") == "NO_PROPOSAL_CHOSEN":
		return awsNoProposalP2
	case strings.HasPrefix(m, engineV2ChildRefused):
		// The IKE SA stays (RFC 7296 section 2.21.2), the child is not
		// made: TS_UNACCEPTABLE and the other refusals of ours.
		return awsV2ChildFailed
	case m == engineTunnelError && strings.HasPrefix(field("error"), engineV2ChildPeerRef):
		if strings.HasPrefix(field("error"), engineV2ChildPeerRef+"TS_UNACCEPTABLE") {
			return awsV2TSUnaccept
		}
		return awsV2ChildFailed
	case m == engineV2GiveUp && (field("message") == "IKE_SA_INIT request" || field("message") == "IKE_AUTH request"),
		m == engineV2HalfOpen:
		return awsV2HalfOpen + peerAddr(field("peer"), cgw)
	case m == engineV2PeerDeleted:
		return awsDeleteIKESA
	case strings.HasPrefix(m, engineV2Collision):
		return awsV2ChildRedundant
	}
	return ""
}

// peerAddr is the address of a peer field (address:port), else cgw.
func peerAddr(peer, cgw string) string {
	if ap, err := netip.ParseAddrPort(peer); err == nil {
		return ap.Addr().String()
	}
	return cgw
}
