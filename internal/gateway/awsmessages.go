package gateway

import (
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"
)

// AWS's documented IKEv1 log messages (AWSUG log-contents.md, "IKEv1 Error
// Messages"), and which engine log records they stand for. The engine
// words its records for both sides (it also runs the customer gateway);
// the aws log format on the AWS side (vgw) shows AWS's wording for them.
// TestAWSMessagesFromEngines provokes each with real engines, so a change
// of the engine's wording fails there.
const (
	awsPeerDead       = "Peer is not responsive - Declaring peer dead"
	awsInvalidPSK     = "AWS tunnel payload decryption was unsuccessful due to invalid Pre-shared Key"
	awsNoProposalP1   = "No Proposal Match Found by AWS"
	awsNoProposalP2   = `No Proposal Match Found. Notifying with "No proposal chosen"`
	awsDeletePhase2   = "AWS tunnel received DELETE for Phase 2 SA with SPI: "
	awsDeleteIKESA    = "AWS tunnel received DELETE for IKE_SA from CGW"
	engineDeleteIKESA = "peer deleted the ISAKMP SA (received DELETE for IKE_SA)"
	engineDeleteP2    = "received DELETE for phase 2 SA"
)

// awsMessage returns AWS's message for an engine record, "" if AWS
// documents none for it.
// cgw is the tunnel's remote address ("" for a record of no tunnel); an
// IKEv2 record (field ike_version=ikev2) has its own table
// (awsmessages_v2.go).
func awsMessage(e *logrus.Entry, cgw string) string {
	if v, _ := e.Data["ike_version"].(string); v == "ikev2" {
		return awsMessageV2(e, cgw)
	}
	if v, _ := e.Data["error"].(string); e.Message == engineTunnelError && strings.HasPrefix(v, "IKEv2 ") {
		return awsMessageV2(e, cgw) // the tunnel's last error has no version field
	}
	m := e.Message
	switch {
	case m == awsPeerDead:
		return awsPeerDead
	case strings.HasPrefix(m, "payload decryption was unsuccessful due to invalid pre-shared key"),
		strings.HasPrefix(m, "HASH_I does not verify: the pre-shared keys differ"):
		// The responder finds a wrong key either way: MM5 (or AM3) does
		// not decrypt, or decrypts by chance but HASH_I fails.
		return awsInvalidPSK
	case strings.HasPrefix(m, "No Proposal Match Found: nothing the peer offered"):
		return awsNoProposalP1
	case m == awsNoProposalP2:
		return awsNoProposalP2
	case m == engineDeleteP2:
		return awsDeletePhase2 + fmt.Sprint(e.Data["spi"])
	case m == engineDeleteIKESA:
		return awsDeleteIKESA
	}
	return ""
}
