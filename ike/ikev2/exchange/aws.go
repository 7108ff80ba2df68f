package exchange

import (
	"net/netip"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// AWS's IKEv2 transform sets (shared/anchors.md 1.1, AWSUG VPNTunnels.md):
// phase 1 and phase 2 encryption AES128, AES256, AES128-GCM-16,
// AES256-GCM-16; integrity SHA1, SHA2-256, SHA2-384, SHA2-512 (for the IKE
// SA also its PRF); phase 1 DH groups 2 and 14-24, phase 2 also 5. Each
// list is in AWS's own order, the order of its "lowest configured value"
// rule (Rule LowestValue). ESP without PFS is not in AWSChild: AWS requires
// PFS (AWSUG your-cgw.md); the first child SA, keyed in IKE_AUTH, is
// selected with Options.IgnoreDH. ESN is "no" only: the ESP data path has
// 32-bit sequence numbers (esp/replay.go).

var awsEncr = []Encr{
	{wire.EncrAESCBC, 128}, {wire.EncrAESCBC, 256}, {wire.EncrAESGCM16, 128}, {wire.EncrAESGCM16, 256},
}

var awsInteg = []wire.IntegID{
	wire.IntegHMACSHA196, wire.IntegHMACSHA2256128, wire.IntegHMACSHA2384192, wire.IntegHMACSHA2512256,
}

// AWSIKE returns AWS's policy for the IKE SA.
func AWSIKE() *Policy {
	return &Policy{
		Protocol: wire.ProtoIKE,
		Encr:     append([]Encr(nil), awsEncr...),
		Integ:    append([]wire.IntegID(nil), awsInteg...),
		PRF:      []wire.PRFID{wire.PRFHMACSHA1, wire.PRFHMACSHA2256, wire.PRFHMACSHA2384, wire.PRFHMACSHA2512},
		DH:       append([]wire.DHGroup{wire.DHModp1024}, groups14to24()...),
	}
}

// AWSChild returns AWS's policy for ESP child SAs.
func AWSChild() *Policy {
	return &Policy{
		Protocol: wire.ProtoESP,
		Encr:     append([]Encr(nil), awsEncr...),
		Integ:    append([]wire.IntegID(nil), awsInteg...),
		DH:       append([]wire.DHGroup{wire.DHModp1024, wire.DHModp1536}, groups14to24()...),
		ESN:      []wire.ESN{wire.ESNNo},
	}
}

func groups14to24() []wire.DHGroup {
	var gs []wire.DHGroup
	for g := wire.DHModp2048; g <= wire.DHModp2048S256; g++ {
		gs = append(gs, g)
	}
	return gs
}

// AWSSelectors is AWS's default traffic selector on both sides ("Local/
// Remote IPv4 network CIDR" 0.0.0.0/0, shared/anchors.md 1.1): all IPv4,
// any protocol and port.
func AWSSelectors() []wire.Selector {
	return []wire.Selector{wire.SelectorFromPrefix(netip.MustParsePrefix("0.0.0.0/0"))}
}
