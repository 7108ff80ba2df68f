package scenarios

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// lineFunc gives the line of a key path in the scenario file (the line of
// the deepest key that exists).
type lineFunc func(path ...string) int

// newLineFunc walks root for lineFunc.
func newLineFunc(root *yaml.Node) lineFunc {
	return func(path ...string) int {
		n := root
		line := root.Line
		for _, k := range path {
			kn, v := mapValue(n, k)
			if kn == nil {
				return line
			}
			line, n = kn.Line, v
		}
		return line
	}
}

// validate checks what the key check cannot: values, references and
// combinations. It fills s.plan and the steps' parsed conditions.
func validate(s *Scenario, root *yaml.Node, el *errList) {
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(s.File), filepath.Ext(s.File))
	}
	lineOf := newLineFunc(root)
	if s.Timeout == 0 {
		s.Timeout = Duration(120e9)
	}
	p := &plan{gateways: map[string]*planGateway{}, capture: true}
	s.plan = p
	validateOutside(s, p, lineOf, el)
	validateGateways(s, p, lineOf, el)
	validateConnections(s, p, lineOf, el)
	validateHosts(s, p, lineOf, el)
	validateSteps(s, p, el)
	validateForeignSteps(s, p, el)
}

// validateOutside checks the WAN's NAT and the gateways' outside
// addresses, and sets the addresses the AWS side sees.
func validateOutside(s *Scenario, p *plan, lineOf lineFunc, el *errList) {
	t := &s.Topology
	switch t.WAN.NAT {
	case "", "none":
	case "masquerade":
		p.nat = true
	default:
		el.add(lineOf("topology", "wan", "nat"), "topology.wan.nat: %q is not allowed (allowed: none, masquerade)", t.WAN.NAT)
	}
	if t.WAN.Capture != nil {
		p.capture = *t.WAN.Capture
	}
	p.cgwOutside = defaultCGWOut
	if o := t.Customer.Gateway.Outside; o != "" {
		pf, err := netip.ParsePrefix(o)
		if err != nil || !custNet.Contains(pf.Addr()) || pf.Addr() == wanCustAddr || pf.Bits() != 24 {
			el.add(lineOf("topology", "customer", "gateway", "outside"), "topology.customer.gateway.outside: %q: must be an address with /24 in %s other than %s (the WAN router)", o, custNet, wanCustAddr)
		} else {
			p.cgwOutside = pf
		}
	}
	if t.AWS.Gateway.Outside != "" {
		el.add(lineOf("topology", "aws", "gateway", "outside"), "topology.aws.gateway.outside: the AWS side's outside addresses are its tunnels' aws_outside")
	}
	p.cgwPublic = p.cgwOutside.Addr()
	if p.nat {
		p.cgwPublic = wanPublicAddr
	}
}

// validateGateways checks both gateways: kind, binary, and their
// configuration given inline or as a file.
func validateGateways(s *Scenario, p *plan, lineOf lineFunc, el *errList) {
	t := &s.Topology
	for _, side := range []struct {
		name, gw string
		g        *Gateway
	}{{"customer", "cgw", &t.Customer.Gateway}, {"aws", "vgw", &t.AWS.Gateway}} {
		p.gateways[side.gw] = validateGateway(s, p, side.g, side.name, side.gw, lineOf, el)
	}
}

// validateGateway checks one gateway (side customer or aws, process gw).
func validateGateway(s *Scenario, p *plan, g *Gateway, side, gw string, lineOf lineFunc, el *errList) *planGateway {
	at := func(k string) int { return lineOf("topology", side, "gateway", k) }
	pg := &planGateway{Name: gw, Side: side, Binary: gw, line: lineOf("topology", side, "gateway")}
	validateKind(s, g, pg, side, lineOf, el)
	if g.Binary != "" && pg.kind == "" {
		if g.Binary != "cgw" && g.Binary != "vgw" {
			el.add(at("binary"), "topology.%s.gateway.binary: %q is not allowed (allowed: cgw, vgw)", side, g.Binary)
		}
		pg.Binary = g.Binary
	}
	if g.Config.Kind != 0 && g.ConfigFile != "" {
		el.add(at("config_file"), "topology.%s.gateway: give config or config_file, not both", side)
	}
	g.Config, g.TunnelOptions = deref(g.Config), deref(g.TunnelOptions)
	if g.Config.Kind != 0 {
		if g.Config.Kind != yaml.MappingNode {
			el.add(g.Config.Line, "topology.%s.gateway.config: expected a mapping (a gateway configuration, docs/config.md)", side)
		} else {
			n := g.Config
			pg.Config = &n
		}
	}
	if g.ConfigFile != "" {
		n, err := readConfigFile(s.File, g.ConfigFile)
		if err != nil {
			el.add(at("config_file"), "topology.%s.gateway.config_file: %v", side, err)
		} else {
			pg.Config = n
		}
	}
	if g.TunnelOptions.Kind != 0 {
		if g.TunnelOptions.Kind != yaml.MappingNode {
			el.add(g.TunnelOptions.Line, "topology.%s.gateway.tunnel_options: expected a mapping of tunnel fields (docs/config.md, tunnels)", side)
		} else {
			n := g.TunnelOptions
			pg.TunnelOptions = &n
			checkIKEVersions("topology."+side+".gateway.tunnel_options", pg.TunnelOptions, el)
		}
	}
	if g.ConfigFile == "" { // a config_file's lines are its own: the gateway's parser reports them
		checkConfigIKEVersions("topology."+side+".gateway.config", pg.Config, el)
	}
	if p.nat {
		if l := findAH(pg.Config, pg.TunnelOptions); l > 0 {
			el.add(l, "AH cannot cross the WAN's NAT (masquerade): AH authenticates the outer IP addresses the NAT rewrites, and NAT-T (RFC 3948) carries only ESP; use ESP or topology.wan.nat: none")
		}
	}
	return pg
}

// tunnelSeen is what validateTunnel checks uniqueness against: tunnel
// names, outside addresses and inside CIDRs of the tunnels before.
type tunnelSeen struct {
	names map[string]bool
	out   map[netip.Addr]string
	in    map[netip.Prefix]string
}

// validateConnections checks the VPN connections, their keys and tunnels.
func validateConnections(s *Scenario, p *plan, lineOf lineFunc, el *errList) {
	t := &s.Topology
	if len(t.Connections) == 0 {
		t.Connections = []Connection{{Name: "vpn-1"}}
	}
	seen := tunnelSeen{names: map[string]bool{}, out: map[netip.Addr]string{}, in: map[netip.Prefix]string{}}
	cl := lineOf("topology", "connections")
	for ci, c := range t.Connections {
		if c.Name == "" {
			c.Name = fmt.Sprintf("vpn-%d", ci+1)
		}
		pc := &planConn{Name: c.Name, PSK: c.PSK, CustomerPSK: c.CustomerPSK}
		for _, o := range p.conns {
			if pskEnv("x", o) == pskEnv("x", pc) {
				el.add(cl, "connections %q and %q: names must differ (also in case and - vs _)", o.Name, c.Name)
			}
		}
		if pc.PSK == "" {
			pc.PSK = randomPSK()
		}
		if pc.CustomerPSK == "" {
			pc.CustomerPSK = pc.PSK
		}
		for _, k := range []string{pc.PSK, pc.CustomerPSK} {
			if len(k) < 8 || len(k) > 64 {
				el.add(cl, "connection %s: a pre-shared key must be 8-64 characters (AWS)", c.Name)
				break
			}
		}
		p.conns = append(p.conns, pc)
		tl := c.Tunnels
		if len(tl) == 0 {
			tl = []TunnelSpec{{}, {}}
		}
		if len(tl) > 2 {
			el.add(cl, "connection %s: %d tunnels; a VPN connection has two (one is allowed for transport-mode labs)", c.Name, len(tl))
		}
		for _, ts := range tl {
			p.tunnels = append(p.tunnels, validateTunnel(p, pc, ts, cl, &seen, el))
		}
	}
}

// validateTunnel checks one tunnel of connection pc (cl: the connections'
// line) and gives it its default names and addresses.
func validateTunnel(p *plan, pc *planConn, ts TunnelSpec, cl int, seen *tunnelSeen, el *errList) *planTunnel {
	n := len(p.tunnels) + 1
	pt := &planTunnel{Name: ts.Name, Conn: pc, PSK: ts.PSK, CustomerPSK: ts.CustomerPSK, Options: map[string]*yaml.Node{}}
	if pt.Name == "" {
		pt.Name = fmt.Sprintf("tunnel%d", n)
	}
	for _, k := range []string{pt.PSK, pt.CustomerPSK} {
		if k != "" && (len(k) < 8 || len(k) > 64) {
			el.add(cl, "connection %s tunnel %s: a pre-shared key must be 8-64 characters (AWS)", pc.Name, pt.Name)
			break
		}
	}
	for side, nd := range map[string]yaml.Node{"customer": ts.CustomerOptions, "aws": ts.AWSOptions} {
		if nd.Kind == 0 {
			continue
		}
		if nd.Kind != yaml.MappingNode {
			el.add(nd.Line, "connection %s tunnel %s: %s_options must be a mapping of tunnel fields (docs/config.md, Tunnels)", pc.Name, pt.Name, side)
			continue
		}
		pt.Options[side] = &nd
		checkIKEVersions("connection "+pc.Name+" tunnel "+pt.Name+": "+side+"_options", &nd, el)
	}
	if seen.names[pt.Name] || pt.Name == "all" {
		el.add(cl, "connection %s: tunnel name %q used twice (or reserved)", pc.Name, pt.Name)
	}
	seen.names[pt.Name] = true
	pt.AWSOutside = netip.AddrFrom4([4]byte{203, 0, 113, byte(10 * n)}) // .10, .20, ...
	if ts.AWSOutside != "" {
		a, err := netip.ParseAddr(ts.AWSOutside)
		if err != nil || !publicNet.Contains(a) || a == wanPublicAddr || a == publicNet.Addr() || a == netip.MustParseAddr("203.0.113.255") {
			el.add(cl, "connection %s tunnel %s: aws_outside %q must be an address in %s other than %s (the WAN router)", pc.Name, pt.Name, ts.AWSOutside, publicNet, wanPublicAddr)
		} else {
			pt.AWSOutside = a
		}
	}
	if other, ok := seen.out[pt.AWSOutside]; ok {
		el.add(cl, "tunnels %s and %s have the same aws_outside %s", other, pt.Name, pt.AWSOutside)
	}
	seen.out[pt.AWSOutside] = pt.Name
	pt.Inside = netip.PrefixFrom(netip.AddrFrom4([4]byte{169, 254, byte(9 + n), 0}), 30)
	if ts.InsideCIDR != "" {
		pf, err := netip.ParsePrefix(ts.InsideCIDR)
		if err != nil || pf.Bits() != 30 || pf != pf.Masked() || !linkLocal.Contains(pf.Addr()) {
			el.add(cl, "connection %s tunnel %s: inside_cidr %q must be a /30 network in 169.254.0.0/16 (AWS)", pc.Name, pt.Name, ts.InsideCIDR)
		} else {
			pt.Inside = pf
		}
	}
	if other, ok := seen.in[pt.Inside]; ok {
		el.add(cl, "tunnels %s and %s have the same inside_cidr %s", other, pt.Name, pt.Inside)
	}
	seen.in[pt.Inside] = pt.Name
	return pt
}

// fitsRole reports whether a host name can be its own namespace role
// (netlab's role names are at most 6 of a-z 0-9).
func fitsRole(n string) bool {
	return len(n) <= 6 && n != "" && strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
}

// validateHosts checks the hosts of both sides and gives each its network
// and namespace role: a host whose name fits a role uses it; the others
// get h1, h2, ... not taken by any host.
func validateHosts(s *Scenario, p *plan, lineOf lineFunc, el *errList) {
	t := &s.Topology
	seenH := map[string]bool{"cgw": true, "vgw": true, "wan": true}
	roles := map[string]bool{"cgw": true, "vgw": true, "wan": true}
	for _, hs := range [][]Host{t.Customer.Hosts, t.AWS.Hosts} {
		for _, h := range hs {
			if fitsRole(h.Name) {
				roles[h.Name] = true
			}
		}
	}
	var nets []netip.Prefix
	for _, side := range []struct {
		name  string
		hosts []Host
	}{{"customer", t.Customer.Hosts}, {"aws", t.AWS.Hosts}} {
		hs := side.hosts
		if hs == nil {
			hs = []Host{defaultHosts[side.name]}
		}
		hl := lineOf("topology", side.name, "hosts")
		for i, h := range hs {
			if !hostNameRE.MatchString(h.Name) || seenH[h.Name] {
				el.add(hl, "topology.%s.hosts[%d]: name %q must be unique, 1-15 of a-z 0-9 - starting with a letter, and not cgw, vgw or wan", side.name, i, h.Name)
			}
			seenH[h.Name] = true
			ph := validateHost(h, side.name, i, hl, nets, el)
			if ph == nil {
				continue
			}
			nets = append(nets, ph.Addr.Masked())
			ph.role = h.Name
			if !fitsRole(ph.role) {
				for n := 1; ; n++ {
					if r := fmt.Sprintf("h%d", n); !roles[r] {
						ph.role = r
						break
					}
				}
			}
			roles[ph.role] = true
			p.hosts = append(p.hosts, ph)
		}
	}
}

// validateHost checks one host's address against the lab's own networks
// and the other hosts' (nets); nil if the address is unusable.
func validateHost(h Host, side string, i, hl int, nets []netip.Prefix, el *errList) *planHost {
	pf, err := netip.ParsePrefix(h.Address)
	if err != nil || !pf.Addr().Is4() || pf.Bits() > 30 || pf.Bits() < 8 || pf.Addr() == pf.Masked().Addr() {
		el.add(hl, "topology.%s.hosts[%d] (%s): address %q must be an IPv4 host address with a prefix length of 8-30, e.g. 10.10.1.10/24", side, i, h.Name, h.Address)
		return nil
	}
	for _, reserved := range []netip.Prefix{custNet, publicNet, linkLocal} {
		if reserved.Overlaps(pf) {
			el.add(hl, "topology.%s.hosts[%d] (%s): %s overlaps %s, which the lab itself uses", side, i, h.Name, pf.Masked(), reserved)
		}
	}
	for _, o := range nets {
		if o.Overlaps(pf.Masked()) {
			el.add(hl, "topology.%s.hosts[%d] (%s): %s overlaps another host's network %s (every host has its own network)", side, i, h.Name, pf.Masked(), o)
		}
	}
	gw := pf.Masked().Addr().Next()
	if gw == pf.Addr() {
		gw = gw.Next()
	}
	return &planHost{Name: h.Name, Side: side, Addr: pf, GW: gw}
}
