package datapath

import (
	"net/netip"
	"sync/atomic"
)

// Control traffic: packets between two link-local IPv4 addresses
// (169.254.0.0/16). On an AWS-style tunnel these are the tunnel's own
// inside /30 addresses: the BGP session and whatever else runs between the
// two gateways (pings of the inside addresses), never the networks behind
// them (link-local addresses are not routed, RFC 3927). Counting them apart
// lets a test prove "no user traffic on tunnel2" although BGP keepalives
// cross it. The count costs two comparisons and, for control packets, two
// atomic adds; it allocates nothing.

// controlCounters count one pair's control packets and bytes (inner
// packet lengths, as esp.Stats counts them).
type controlCounters struct {
	pktIn, bytesIn, pktOut, bytesOut atomic.Uint64
}

// isControl reports whether a packet from src to dst is control traffic.
func isControl(src, dst netip.Addr) bool {
	return src.Is4() && dst.Is4() && src.IsLinkLocalUnicast() && dst.IsLinkLocalUnicast()
}

func (c *controlCounters) inbound(src, dst netip.Addr, n int) {
	if isControl(src, dst) {
		c.pktIn.Add(1)
		c.bytesIn.Add(uint64(n))
	}
}

func (c *controlCounters) outbound(src, dst netip.Addr, n int) {
	if isControl(src, dst) {
		c.pktOut.Add(1)
		c.bytesOut.Add(uint64(n))
	}
}
