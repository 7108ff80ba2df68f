package scenarios

import (
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// The fixed part of every lab's addressing (docs/scenarios.md, Topology).
var (
	custNet       = netip.MustParsePrefix("10.99.0.0/24")   // cgw <-> wan
	defaultCGWOut = netip.MustParsePrefix("10.99.0.2/24")   // cgw outside
	wanCustAddr   = netip.MustParseAddr("10.99.0.1")        // wan router, customer side
	publicNet     = netip.MustParsePrefix("203.0.113.0/24") // wan <-> AWS endpoints (RFC 5737)
	wanPublicAddr = netip.MustParseAddr("203.0.113.1")      // wan router, public side = NAT address
	linkLocal     = netip.MustParsePrefix("169.254.0.0/16") // inside CIDRs
	defaultHosts  = map[string]Host{"customer": {Name: "onprem", Address: "10.10.1.10/24"}, "aws": {Name: "vpc", Address: "172.31.1.10/24"}}
	hostNameRE    = regexp.MustCompile(`^[a-z][a-z0-9-]{0,14}$`)
	gatewayNames  = []string{"cgw", "vgw"}
	impairFaults  = []string{"blackhole", "loss", "drop-ike", "drop-esp", "flush-nat"}
	flowProtocols = []string{"icmp", "udp", "tcp"}
)

// plan is the resolved topology: every address and name the run uses.
type plan struct {
	nat        bool
	capture    bool
	cgwOutside netip.Prefix
	cgwPublic  netip.Addr // the address the AWS side sees
	tunnels    []*planTunnel
	conns      []*planConn
	hosts      []*planHost
	gateways   map[string]*planGateway
}

type planTunnel struct {
	Name       string
	Conn       *planConn
	AWSOutside netip.Addr
	Inside     netip.Prefix
	// PSK and CustomerPSK are the tunnel's own keys ("" = the
	// connection's); Options the per-side tunnel fields (nil = none).
	PSK, CustomerPSK string
	Options          map[string]*yaml.Node // "customer", "aws"
}

// key is the tunnel's pre-shared key on side ("customer" or "aws").
func (t *planTunnel) key(side string) string {
	switch {
	case side == "customer" && t.CustomerPSK != "":
		return t.CustomerPSK
	case t.PSK != "":
		return t.PSK
	case side == "customer":
		return t.Conn.CustomerPSK
	}
	return t.Conn.PSK
}

// ownKey reports whether the tunnel has a key of its own (then its own
// environment variable).
func (t *planTunnel) ownKey() bool { return t.PSK != "" || t.CustomerPSK != "" }

type planConn struct {
	Name             string
	PSK, CustomerPSK string
}

type planHost struct {
	Name string
	Side string // customer or aws
	Addr netip.Prefix
	GW   netip.Addr // the gateway's address on the host's link
	role string     // namespace role
}

type planGateway struct {
	Name          string // cgw or vgw
	Side          string
	Binary        string
	Config        *yaml.Node // user's inline or file config (mapping) or nil
	TunnelOptions *yaml.Node
	line          int
	// A foreign customer gateway (kind strongswan): its BGP speaker (bird
	// or none), swanctl.conf files replacing the exported ones by tunnel.
	kind     string
	kindLine int
	bgp      string
	swanctl  map[string]string
}

func (p *plan) tunnel(name string) *planTunnel {
	for _, t := range p.tunnels {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (p *plan) host(name string) *planHost {
	for _, h := range p.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

func (p *plan) tunnelNames() []string {
	var l []string
	for _, t := range p.tunnels {
		l = append(l, t.Name)
	}
	return l
}

// deref resolves a YAML alias (*name) to the node it names.
func deref(n yaml.Node) yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = *n.Alias
	}
	return n
}

// findAH returns the line of an AH proposal or "protocol: ah" in the
// gateway configuration nodes (0 if none).
func findAH(nodes ...*yaml.Node) int {
	var line int
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		if n == nil || line > 0 {
			return
		}
		switch n.Kind {
		case yaml.ScalarNode:
			v := strings.ToLower(n.Value)
			if strings.HasPrefix(v, "ah-") || (key == "protocol" && v == "ah") {
				line = n.Line
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], n.Content[i].Value)
			}
		default:
			for _, c := range n.Content {
				walk(c, key)
			}
		}
	}
	for _, n := range nodes {
		walk(n, "")
	}
	return line
}

// checkCondRefs checks what a condition refers to: tunnels, and flows
// started before this step.
func checkCondRefs(c *Cond, p *plan, flows map[string]bool, el *errList, what string) {
	switch c.Kind {
	case "tunnel":
		if p.tunnel(c.Tunnel) == nil {
			el.add(c.Line, "%s: %q: no tunnel %q (tunnels: %s)", what, c.Text, c.Tunnel, strings.Join(p.tunnelNames(), ", "))
		}
	case "event":
		if c.Tunnel != "" && p.tunnel(c.Tunnel) == nil {
			el.add(c.Line, "%s: %q: no tunnel %q (tunnels: %s)", what, c.Text, c.Tunnel, strings.Join(p.tunnelNames(), ", "))
		}
	case "route":
		for _, t := range c.Via {
			if p.tunnel(t) == nil {
				el.add(c.Line, "%s: %q: no tunnel %q (tunnels: %s)", what, c.Text, t, strings.Join(p.tunnelNames(), ", "))
			}
		}
	case "flow":
		if !flows[c.Name] {
			el.add(c.Line, "%s: %q: no flow %q started before this step", what, c.Text, c.Name)
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	var l []string
	for k := range m {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
}
