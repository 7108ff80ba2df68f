package bird

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// BGPConfig is a BIRD 2 configuration for an eBGP speaker with one session
// per neighbor (e.g. one per VPN tunnel, over the tunnels' inside
// addresses): it announces Originate to every neighbor, accepts everything
// the neighbors send and, with KernelExport, installs the best BGP routes
// into the namespace's main routing table.
type BGPConfig struct {
	RouterID netip.Addr
	LocalAS  uint32
	// Originate lists the prefixes announced to the neighbors (blackhole
	// routes of a static protocol named "origin" inside BIRD: exported to
	// BGP only, never to the kernel).
	Originate []netip.Prefix
	Neighbors []Neighbor
	// HoldTime and Keepalive are proposed in OPEN (0: BIRD's 240 s / a
	// third of the hold time).
	HoldTime, Keepalive time.Duration
	// ConnectRetry is the pause between outgoing connection attempts; it
	// also bounds one attempt whose SYN goes unanswered (0: BIRD's 120 s,
	// far too long for a tunnel that comes up after the first SYN).
	ConnectRetry time.Duration
	// ErrorWait is the minimum and maximum pause after an error (0: BIRD's
	// 60 s / 300 s).
	ErrorWait [2]time.Duration
	// KernelExport installs BGP routes into the kernel's main table.
	KernelExport bool
	// Debug logs the protocols' state changes and events.
	Debug bool
}

// Neighbor is one eBGP session.
type Neighbor struct {
	Name   string     // protocol name, e.g. "tun1"
	Addr   netip.Addr // the neighbor's address
	AS     uint32
	Source netip.Addr // our address for the session (invalid: BIRD chooses)
}

var protoNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// reserved protocol names: BIRD keywords that look like good names.
var reserved = map[string]bool{"origin": true, "originate": true, "static": true, "kernel": true, "device": true, "bgp": true, "direct": true}

func secs(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// Render returns the configuration text.
func (c BGPConfig) Render() (string, error) {
	if !c.RouterID.Is4() {
		return "", fmt.Errorf("bird: router id %v is not an IPv4 address", c.RouterID)
	}
	if c.LocalAS == 0 {
		return "", fmt.Errorf("bird: local AS missing")
	}
	if len(c.Neighbors) == 0 {
		return "", fmt.Errorf("bird: no neighbors")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\n\n", c.RouterID)
	if c.Debug {
		b.WriteString("debug protocols { states, events };\n\n")
	}
	// The device protocol tracks interfaces and addresses; a session waits
	// until its neighbor is on a connected network (direct eBGP).
	b.WriteString("protocol device {\n  scan time 1;\n}\n\n")
	if c.KernelExport {
		b.WriteString("protocol kernel {\n  ipv4 {\n    import none;\n    export where source = RTS_BGP;\n  };\n}\n\n")
	}
	b.WriteString("protocol static origin {\n  ipv4;\n")
	for _, p := range c.Originate {
		if !p.Addr().Is4() {
			return "", fmt.Errorf("bird: originated prefix %v is not IPv4", p)
		}
		fmt.Fprintf(&b, "  route %s blackhole;\n", p.Masked())
	}
	b.WriteString("}\n\n")
	b.WriteString("template bgp tunnel {\n")
	fmt.Fprintf(&b, "  local as %d;\n", c.LocalAS)
	if c.HoldTime > 0 {
		fmt.Fprintf(&b, "  hold time %d;\n", secs(c.HoldTime))
	}
	if c.Keepalive > 0 {
		fmt.Fprintf(&b, "  keepalive time %d;\n", secs(c.Keepalive))
	}
	if c.ConnectRetry > 0 {
		fmt.Fprintf(&b, "  connect delay time 1;\n  connect retry time %d;\n", secs(c.ConnectRetry))
	}
	if c.ErrorWait[0] > 0 && c.ErrorWait[1] >= c.ErrorWait[0] {
		fmt.Fprintf(&b, "  error wait time %d, %d;\n", secs(c.ErrorWait[0]), secs(c.ErrorWait[1]))
	}
	// eBGP in BIRD 2 needs explicit filters (RFC 8212: none means reject).
	b.WriteString("  ipv4 {\n    import all;\n    export where proto = \"origin\";\n  };\n}\n")
	for _, n := range c.Neighbors {
		if !protoNameRE.MatchString(n.Name) || reserved[n.Name] {
			return "", fmt.Errorf("bird: bad protocol name %q", n.Name)
		}
		if !n.Addr.Is4() || n.AS == 0 {
			return "", fmt.Errorf("bird: neighbor %s: IPv4 address and AS required", n.Name)
		}
		fmt.Fprintf(&b, "\nprotocol bgp %s from tunnel {\n  neighbor %s as %d;\n", n.Name, n.Addr, n.AS)
		if n.Source.IsValid() {
			fmt.Fprintf(&b, "  source address %s;\n", n.Source)
		}
		b.WriteString("}\n")
	}
	return b.String(), nil
}
