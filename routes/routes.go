// Package routes decides which IPsec tunnel carries each destination prefix.
//
// It is the route-selection half of a gateway's routing, kept free of BGP
// machinery and I/O so that it can be tested exhaustively: the bgp package
// feeds it the paths its sessions learn (Source BGP) and the operator's static
// routes (Source Static), and hands the decided routes to the data path.
//
// # Order of preference
//
// Longest-prefix match is the data path's job (its lookup picks the most
// specific Route). For one identical prefix the Table ranks the candidate
// tunnels the way AWS documents for a virtual private gateway ("Route tables
// and VPN route priority", AWS Site-to-Site VPN User Guide, VPNRoutingTypes):
//
//  1. static routes before BGP routes;
//  2. among BGP routes, the shortest AS_PATH (every AS number counts one);
//  3. lowest MED, compared only between paths whose first AS (the neighbor
//     AS) is the same, as AWS and RFC 4271 section 9.1.2.2 (c) say. A path
//     without MED counts as MED 0 (RFC 4271: the lowest value). Paths from
//     different neighbor ASes are not compared by MED at all (no
//     always-compare-med); they fall through to step 4;
//  4. the tunnel order given to New (tunnel1 before tunnel2): a stable,
//     documented stand-in for AWS's "one of the tunnels is chosen".
//
// Because step 3 is not a total order across neighbor ASes, the ranking is
// built by repeated elimination (RFC 4271's way): of the paths not yet
// ranked, drop all but the best source, then all but the shortest AS_PATH,
// then every path beaten on MED by a path of the same neighbor AS, and take
// the first survivor in tunnel order. Every tunnel that has the prefix
// appears once in Route.Tunnels, best first, so the data path can fall back
// to the next tunnel while the best one has no SA.
//
// # ECMP (Transit Gateway model)
//
// With Config.ECMP, every BGP path that ties with the best on AS_PATH length
// is active together (Route.Active > 1, Route.ECMP). MED is deliberately not
// part of the tie: AWS describes Transit Gateway VPN ECMP in terms of the same
// prefix advertised with the same AS_PATH over several tunnels and says
// nothing about MED (knowledge-center article "vpn-configure-tunnel-preference");
// we found no AWS text saying MED splits an ECMP set, so we do not let it.
// Static routes never form ECMP sets: Transit Gateway ECMP needs dynamic
// routing.
//
// # Route limit
//
// Config.Limit bounds the number of BGP prefixes accepted per tunnel (AWS:
// 100 from a customer gateway, not adjustable). AWS does not document what
// happens beyond it; reports of Transit Gateway and virtual private gateway
// VPNs show the AWS side sending NOTIFICATION Cease / "Maximum Number of
// Prefixes Reached" and resetting the session. The Table models the outcome:
// the first prefix over the limit drops every BGP path of that tunnel, emits
// a LimitExceeded change, and refuses further BGP paths from the tunnel until
// WithdrawTunnel (the session went down and will start afresh).
//
// # Changes
//
// Mutations record Learned, Updated, Withdrawn and LimitExceeded changes;
// Decide adds Installed, Removed and BestMoved for the prefixes whose active
// tunnels changed, and returns them all, timestamped, for logs and the status
// API.
//
// A Table is safe for concurrent use (one mutex; it is not on the packet path).
package routes

import (
	"fmt"
	"net/netip"
	"time"
)

// Source says where a path comes from.
type Source int

const (
	// Static is a route configured by the operator.
	Static Source = iota + 1
	// BGP is a path learned over a tunnel's BGP session.
	BGP
)

func (s Source) String() string {
	switch s {
	case Static:
		return "static"
	case BGP:
		return "bgp"
	}
	return fmt.Sprintf("source(%d)", int(s))
}

// MarshalText makes Source readable in JSON.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// rank orders sources: lower is preferred.
func (s Source) rank() int {
	if s == Static {
		return 0
	}
	return 1
}

// Path is one candidate way to reach Prefix: through Tunnel, learned from
// Source.
type Path struct {
	Prefix netip.Prefix `json:"prefix"`
	Tunnel string       `json:"tunnel"`
	Source Source       `json:"source"`
	// ASPath is the AS_PATH as received, leftmost (neighbor) AS first. An
	// AS_SET is represented by a single member (it counts one, RFC 4271).
	ASPath []uint32 `json:"as_path,omitempty"`
	MED    uint32   `json:"med,omitempty"`
	HasMED bool     `json:"has_med,omitempty"`
	// NeighborAS is the AS the path was learned from; 0 means ASPath[0].
	NeighborAS uint32 `json:"neighbor_as,omitempty"`
	// Learned is when these attributes arrived; the Table fills it in when
	// zero.
	Learned time.Time `json:"learned"`
}

// neighborAS is the AS whose MEDs are comparable with each other.
func (p *Path) neighborAS() uint32 {
	if p.NeighborAS != 0 {
		return p.NeighborAS
	}
	if len(p.ASPath) > 0 {
		return p.ASPath[0]
	}
	return 0
}

// med is the MED used for comparison: a missing MED is the lowest value.
func (p *Path) med() uint32 {
	if p.HasMED {
		return p.MED
	}
	return 0
}

// sameAttrs reports whether two paths for the same prefix, tunnel and source
// carry the same attributes.
func (p *Path) sameAttrs(q *Path) bool {
	if p.MED != q.MED || p.HasMED != q.HasMED || p.NeighborAS != q.NeighborAS || len(p.ASPath) != len(q.ASPath) {
		return false
	}
	for i := range p.ASPath {
		if p.ASPath[i] != q.ASPath[i] {
			return false
		}
	}
	return true
}

// Route is the decision for one prefix.
type Route struct {
	Prefix netip.Prefix `json:"prefix"`
	// Tunnels lists every tunnel that has the prefix, most preferred first.
	Tunnels []string `json:"tunnels"`
	// Active is how many leading Tunnels carry traffic: 1, or more in ECMP.
	Active int  `json:"active"`
	ECMP   bool `json:"ecmp"`
	// Reason says why Tunnels[0] (or the ECMP set) won, in words.
	Reason string `json:"reason"`
	// Paths are the candidates behind Tunnels, in the same order.
	Paths []Path `json:"paths"`
	// Since is when the active tunnels last changed.
	Since time.Time `json:"since"`
}

// ActiveTunnels returns the tunnels that carry traffic for the route.
func (r *Route) ActiveTunnels() []string { return r.Tunnels[:r.Active] }
