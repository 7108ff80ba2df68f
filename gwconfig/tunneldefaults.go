package gwconfig

import (
	"time"

	"github.com/vpnlab/vpnlab/ike/policy"
)

// AWS tunnel-option defaults and limits (AWS Site-to-Site VPN User Guide,
// "Tunnel options for your Site-to-Site VPN connection", VPNTunnels.md).
const (
	AWSPhase1Lifetime    = 28800 * time.Second
	AWSPhase1LifetimeMin = 900 * time.Second
	AWSPhase2Lifetime    = 3600 * time.Second
	AWSPhase2LifetimeMin = 900 * time.Second
	AWSRekeyMargin       = 270 * time.Second
	AWSRekeyMarginMin    = 60 * time.Second
	AWSRekeyFuzz         = 100
	AWSReplayWindow      = 1024
	AWSReplayWindowMin   = 64
	AWSReplayWindowMax   = 2048
	AWSDPDTimeout        = 40 * time.Second
	AWSDPDTimeoutMin     = 30 * time.Second
	// AWSDPDDelay: AWS sends an R-U-THERE after 10 s without traffic from
	// the peer (AWS knowledge center, vpn-tunnel-instability-inactivity).
	AWSDPDDelay = 10 * time.Second
)

// NAT keepalive settings (policy.Tunnel.NATKeepalive).
const (
	// DefaultNATKeepalive is RFC 3948's and strongSwan's 20 s.
	DefaultNATKeepalive = policy.DefaultNATKeepalive
	// NATKeepaliveOff is the value for no NAT keepalives (nat_keepalive: 0
	// or off): the engine takes a negative interval as none.
	NATKeepaliveOff time.Duration = -1
)

// AWS tunnel-option value lists, in AWS's order. AWS offers AES-GCM in
// phase 1 with IKEv2 only (RFC 5282): a tunnel whose ike_versions has no
// ikev2 gets the AES-CBC entries of AWSPhase1Encryption only.
var (
	AWSPhase1Encryption = []string{"AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"}
	AWSPhase1Integrity  = []string{"SHA1", "SHA2-256", "SHA2-384", "SHA2-512"}
	AWSPhase1DHGroups   = []uint16{2, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}
	AWSPhase2Encryption = []string{"AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"}
	AWSPhase2Integrity  = []string{"SHA1", "SHA2-256", "SHA2-384", "SHA2-512"}
	AWSPhase2DHGroups   = []uint16{2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}
)

// Customer gateway defaults (strongSwan-like).
var (
	CGWPhase1Proposals = []string{"aes128-sha1-modp2048"}
	CGWPhase2Proposals = []string{"esp-aes128-sha1-modp2048"}
)

var (
	cgwPhase1Encryption = []string{"AES128", "AES192", "AES256", "AES128-GCM-16", "AES192-GCM-16", "AES256-GCM-16"}
	cgwPhase2Encryption = []string{"AES128", "AES192", "AES256", "AES128-GCM-16", "AES192-GCM-16", "AES256-GCM-16", "NULL"}
	allDHGroups         = func() []uint16 {
		var g []uint16
		for _, x := range dhGroups {
			g = append(g, x.num)
		}
		return g
	}()
)
