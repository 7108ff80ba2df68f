package gwconfig

import (
	"strings"

	"github.com/vpnlab/vpnlab/datapath"
)

// Packet sizes on the way into a tunnel (datapath.TunnelOptions).
const (
	// AWSMSSClamp is the MSS AWS's generic customer gateway configuration
	// sets (tcp_mss_adjustment 1379); mss_clamp: aws.
	AWSMSSClamp = datapath.AWSMSSClamp
	// DefaultOutsideMTU is the largest outer packet a tunnel sends.
	DefaultOutsideMTU = datapath.DefaultOutsideMTU
)

// tunnelSizes reads mss_clamp (a number, aws = 1379, or off / 0) and
// outside_mtu (576-9000; absent: 0, which the data path takes as 1500).
func (b *tunnelDecoder) tunnelSizes(o *object, r *tunnelRaw) {
	if n, ok := o.scalar("mss_clamp"); ok {
		switch v := strings.ToLower(strings.TrimSpace(n.Value)); v {
		case "aws":
			r.ext.MSSClamp = AWSMSSClamp
		case "off":
			r.ext.MSSClamp = 0
		default:
			if x, ok := parseInt(n); ok && x == 0 {
				r.ext.MSSClamp = 0
			} else {
				r.ext.MSSClamp = int(o.integer("mss_clamp", 0, datapath.MinMSSClamp, datapath.MaxMSSClamp))
			}
		}
	}
	r.ext.OutsideMTU = int(o.integer("outside_mtu", 0, datapath.MinOutsideMTU, datapath.MaxOutsideMTU))
}
