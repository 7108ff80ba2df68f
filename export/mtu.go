package export

import (
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// Tunnel MTU and TCP MSS advice. The largest inner packet that fits a
// 1500-byte outside MTU after ESP tunnel mode (RFC 4303): outer IPv4 header
// 20, UDP 8 with NAT-T (RFC 3948), ESP header 8, the IV (16 for AES-CBC, 8
// for AES-GCM), the trailer (padding to the cipher block: 16 for CBC, 4 for
// GCM, plus pad length and next header, 2) and the ICV (HMAC-SHA1-96 12,
// SHA2-256-128 16, SHA2-384-192 24, SHA2-512-256 32, GCM-16 16). This
// reproduces AWS's table (AWSUG your-cgw.md, /work/shared/anchors.md 1.1):
// AES-GCM 1446 / 1438 with NAT-T, AES-CBC + SHA1 or SHA2-256 1438 / 1422,
// AES-CBC + SHA2-512 with NAT-T 1406; the MSS is the MTU minus 40 (IPv4 and
// TCP headers).
const (
	outsideMTU = 1500
	// AWSInterfaceMTU is the tunnel interface MTU AWS asks customer
	// gateways for (AWSUG your-cgw.md, dynamic routing requirements);
	// AWSMaxMTU / AWSMaxMSS the largest AWS supports (vpn-limits.md).
	AWSInterfaceMTU = 1399
	AWSMaxMTU       = 1446
	AWSMaxMSS       = 1406
)

// innerMTU returns the largest inner packet for one phase 2 proposal;
// natt adds the UDP header of ESP in UDP.
func innerMTU(p policy.Phase2Proposal, natt bool) int {
	room := outsideMTU - 20 - 8 // outer IPv4 and ESP header
	if natt {
		room -= 8
	}
	block, iv, icv := 4, 0, 0
	switch p.Encryption {
	case isakmp.ESPAESCBC:
		block, iv = 16, 16
	case isakmp.ESPAESGCM16:
		iv, icv = 8, 16
	}
	switch p.Integrity {
	case isakmp.AuthHMACSHA1:
		icv = 12
	case isakmp.AuthHMACSHA2256:
		icv = 16
	case isakmp.AuthHMACSHA2384:
		icv = 24
	case isakmp.AuthHMACSHA2512:
		icv = 32
	}
	room -= iv + icv
	// payload + 2 (pad length, next header) padded to the block
	return (room/block)*block - 2
}

// tunnelMTU returns the largest inner packet that fits every proposal the
// tunnel may negotiate.
func tunnelMTU(ps []policy.Phase2Proposal, natt bool) int {
	mtu := outsideMTU
	for _, p := range ps {
		if p.Protocol != isakmp.ProtoESP {
			continue
		}
		mtu = min(mtu, innerMTU(p, natt))
	}
	return mtu
}
