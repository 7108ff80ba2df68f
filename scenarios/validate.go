package scenarios

import (
	"cmp"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vpnlab/vpnlab/ike/impair"
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

// validate checks what the key check cannot: values, references and
// combinations. It fills s.plan and the steps' parsed conditions.
func validate(s *Scenario, root *yaml.Node, el *errList) {
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(s.File), filepath.Ext(s.File))
	}
	lineOf := func(path ...string) int {
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
	if s.Timeout == 0 {
		s.Timeout = Duration(120e9)
	}
	p := &plan{gateways: map[string]*planGateway{}, capture: true}
	s.plan = p
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
	// gateways
	for _, side := range []struct {
		name, gw, def string
		g             *Gateway
	}{{"customer", "cgw", "cgw", &t.Customer.Gateway}, {"aws", "vgw", "vgw", &t.AWS.Gateway}} {
		g := side.g
		pg := &planGateway{Name: side.gw, Side: side.name, Binary: side.def, line: lineOf("topology", side.name, "gateway")}
		validateKind(s, g, pg, side.name, lineOf, el)
		if g.Binary != "" && pg.kind == "" {
			if g.Binary != "cgw" && g.Binary != "vgw" {
				el.add(lineOf("topology", side.name, "gateway", "binary"), "topology.%s.gateway.binary: %q is not allowed (allowed: cgw, vgw)", side.name, g.Binary)
			}
			pg.Binary = g.Binary
		}
		if g.Config.Kind != 0 && g.ConfigFile != "" {
			el.add(lineOf("topology", side.name, "gateway", "config_file"), "topology.%s.gateway: give config or config_file, not both", side.name)
		}
		g.Config, g.TunnelOptions = deref(g.Config), deref(g.TunnelOptions)
		if g.Config.Kind != 0 {
			if g.Config.Kind != yaml.MappingNode {
				el.add(g.Config.Line, "topology.%s.gateway.config: expected a mapping (a gateway configuration, docs/config.md)", side.name)
			} else {
				n := g.Config
				pg.Config = &n
			}
		}
		if g.ConfigFile != "" {
			n, err := readConfigFile(s.File, g.ConfigFile)
			if err != nil {
				el.add(lineOf("topology", side.name, "gateway", "config_file"), "topology.%s.gateway.config_file: %v", side.name, err)
			} else {
				pg.Config = n
			}
		}
		if g.TunnelOptions.Kind != 0 {
			if g.TunnelOptions.Kind != yaml.MappingNode {
				el.add(g.TunnelOptions.Line, "topology.%s.gateway.tunnel_options: expected a mapping of tunnel fields (docs/config.md, tunnels)", side.name)
			} else {
				n := g.TunnelOptions
				pg.TunnelOptions = &n
			}
		}
		if p.nat {
			if l := findAH(pg.Config, pg.TunnelOptions); l > 0 {
				el.add(l, "AH cannot cross the WAN's NAT (masquerade): AH authenticates the outer IP addresses the NAT rewrites, and NAT-T (RFC 3948) carries only ESP; use ESP or topology.wan.nat: none")
			}
		}
		p.gateways[side.gw] = pg
	}
	// connections and tunnels
	if len(t.Connections) == 0 {
		t.Connections = []Connection{{Name: "vpn-1"}}
	}
	seenT := map[string]bool{}
	seenOut := map[netip.Addr]string{}
	seenIn := map[netip.Prefix]string{}
	for ci, c := range t.Connections {
		cl := lineOf("topology", "connections")
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
			n := len(p.tunnels) + 1
			pt := &planTunnel{Name: ts.Name, Conn: pc, PSK: ts.PSK, CustomerPSK: ts.CustomerPSK, Options: map[string]*yaml.Node{}}
			if pt.Name == "" {
				pt.Name = fmt.Sprintf("tunnel%d", n)
			}
			for _, k := range []string{pt.PSK, pt.CustomerPSK} {
				if k != "" && (len(k) < 8 || len(k) > 64) {
					el.add(cl, "connection %s tunnel %s: a pre-shared key must be 8-64 characters (AWS)", c.Name, pt.Name)
					break
				}
			}
			for side, nd := range map[string]yaml.Node{"customer": ts.CustomerOptions, "aws": ts.AWSOptions} {
				if nd.Kind == 0 {
					continue
				}
				if nd.Kind != yaml.MappingNode {
					el.add(nd.Line, "connection %s tunnel %s: %s_options must be a mapping of tunnel fields (docs/config.md, Tunnels)", c.Name, pt.Name, side)
					continue
				}
				pt.Options[side] = &nd
			}
			if seenT[pt.Name] || pt.Name == "all" {
				el.add(cl, "connection %s: tunnel name %q used twice (or reserved)", c.Name, pt.Name)
			}
			seenT[pt.Name] = true
			pt.AWSOutside = netip.AddrFrom4([4]byte{203, 0, 113, byte(10 * n)}) // .10, .20, ...
			if ts.AWSOutside != "" {
				a, err := netip.ParseAddr(ts.AWSOutside)
				if err != nil || !publicNet.Contains(a) || a == wanPublicAddr || a == publicNet.Addr() || a == netip.MustParseAddr("203.0.113.255") {
					el.add(cl, "connection %s tunnel %s: aws_outside %q must be an address in %s other than %s (the WAN router)", c.Name, pt.Name, ts.AWSOutside, publicNet, wanPublicAddr)
				} else {
					pt.AWSOutside = a
				}
			}
			if other, ok := seenOut[pt.AWSOutside]; ok {
				el.add(cl, "tunnels %s and %s have the same aws_outside %s", other, pt.Name, pt.AWSOutside)
			}
			seenOut[pt.AWSOutside] = pt.Name
			pt.Inside = netip.PrefixFrom(netip.AddrFrom4([4]byte{169, 254, byte(9 + n), 0}), 30)
			if ts.InsideCIDR != "" {
				pf, err := netip.ParsePrefix(ts.InsideCIDR)
				if err != nil || pf.Bits() != 30 || pf != pf.Masked() || !linkLocal.Contains(pf.Addr()) {
					el.add(cl, "connection %s tunnel %s: inside_cidr %q must be a /30 network in 169.254.0.0/16 (AWS)", c.Name, pt.Name, ts.InsideCIDR)
				} else {
					pt.Inside = pf
				}
			}
			if other, ok := seenIn[pt.Inside]; ok {
				el.add(cl, "tunnels %s and %s have the same inside_cidr %s", other, pt.Name, pt.Inside)
			}
			seenIn[pt.Inside] = pt.Name
			p.tunnels = append(p.tunnels, pt)
		}
	}
	// hosts
	seenH := map[string]bool{"cgw": true, "vgw": true, "wan": true}
	// Namespace roles: a host whose name fits netlab's 6 characters uses
	// it; the others get h1, h2, ... not taken by any host.
	roles := map[string]bool{"cgw": true, "vgw": true, "wan": true}
	fits := func(n string) bool {
		return len(n) <= 6 && n != "" && strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
	}
	for _, hs := range [][]Host{t.Customer.Hosts, t.AWS.Hosts} {
		for _, h := range hs {
			if fits(h.Name) {
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
		for i, h := range hs {
			hl := lineOf("topology", side.name, "hosts")
			if !hostNameRE.MatchString(h.Name) || seenH[h.Name] {
				el.add(hl, "topology.%s.hosts[%d]: name %q must be unique, 1-15 of a-z 0-9 - starting with a letter, and not cgw, vgw or wan", side.name, i, h.Name)
			}
			seenH[h.Name] = true
			pf, err := netip.ParsePrefix(h.Address)
			if err != nil || !pf.Addr().Is4() || pf.Bits() > 30 || pf.Bits() < 8 || pf.Addr() == pf.Masked().Addr() {
				el.add(hl, "topology.%s.hosts[%d] (%s): address %q must be an IPv4 host address with a prefix length of 8-30, e.g. 10.10.1.10/24", side.name, i, h.Name, h.Address)
				continue
			}
			for _, reserved := range []netip.Prefix{custNet, publicNet, linkLocal} {
				if reserved.Overlaps(pf) {
					el.add(hl, "topology.%s.hosts[%d] (%s): %s overlaps %s, which the lab itself uses", side.name, i, h.Name, pf.Masked(), reserved)
				}
			}
			for _, o := range nets {
				if o.Overlaps(pf.Masked()) {
					el.add(hl, "topology.%s.hosts[%d] (%s): %s overlaps another host's network %s (every host has its own network)", side.name, i, h.Name, pf.Masked(), o)
				}
			}
			nets = append(nets, pf.Masked())
			gw := pf.Masked().Addr().Next()
			if gw == pf.Addr() {
				gw = gw.Next()
			}
			role := h.Name
			if !fits(role) {
				for n := 1; ; n++ {
					if r := fmt.Sprintf("h%d", n); !roles[r] {
						role = r
						break
					}
				}
			}
			roles[role] = true
			p.hosts = append(p.hosts, &planHost{Name: h.Name, Side: side.name, Addr: pf, GW: gw, role: role})
		}
	}
	validateSteps(s, p, el)
	validateForeignSteps(s, p, el)
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

// validateSteps checks every step: one action, existing references,
// parsable conditions.
func validateSteps(s *Scenario, p *plan, el *errList) {
	if len(s.Steps) == 0 {
		el.add(0, "steps: a scenario needs at least one step (e.g. - wait: tunnel1 phase2 up)")
	}
	flows := map[string]bool{}
	gwOK := func(line int, what, g string) {
		if g != "cgw" && g != "vgw" {
			el.add(line, "%s: gateway %q is not allowed (allowed: cgw, vgw)", what, g)
		}
	}
	tunOK := func(line int, what, t string, allowAll bool) {
		if p.tunnel(t) == nil && !(allowAll && t == "all") {
			extra := ""
			if allowAll {
				extra = ", all"
			}
			el.add(line, "%s: no tunnel %q (tunnels: %s%s)", what, t, strings.Join(p.tunnelNames(), ", "), extra)
		}
	}
	nodeOK := func(line int, what, n string) {
		if p.host(n) == nil && n != "cgw" && n != "vgw" {
			var l []string
			for _, h := range p.hosts {
				l = append(l, h.Name)
			}
			el.add(line, "%s: no host or gateway %q (hosts: %s; gateways: cgw, vgw)", what, n, strings.Join(l, ", "))
		}
	}
	named := map[string]bool{} // step names up to this step
	var names []string
	for i := range s.Steps {
		st := &s.Steps[i]
		if st.Name != "" && !named[st.Name] {
			named[st.Name] = true
			names = append(names, strconv.Quote(st.Name))
		}
		var acts []string
		add := func(name string, set bool) {
			if set {
				acts = append(acts, name)
			}
		}
		add("start", st.Start != "")
		add("stop", st.Stop != "")
		add("kill", st.Kill != "")
		add("restart", st.Restart != "")
		add("impair", st.Impair != nil)
		add("restore", st.Restore != "")
		add("wan", st.WAN != nil)
		add("flow", st.Flow != nil)
		add("stop_flow", len(st.StopFlow.Items) > 0)
		add("ike_impair", st.IKEImpair != nil)
		add("flood", st.Flood != nil)
		add("rekey", st.Rekey != nil)
		add("initiate", st.Initiate != nil)
		add("terminate", st.Terminate != nil)
		add("bgp", st.BGP != nil)
		add("wait", len(st.Wait.Items) > 0)
		add("sleep", st.Sleep > 0)
		add("assert", len(st.Assert.Items) > 0)
		what := fmt.Sprintf("steps[%d]", i)
		if len(acts) != 1 {
			el.add(st.Line, "%s: a step has exactly one action, this one has %d (%s); actions: start, stop, kill, restart, impair, restore, wan, flow, stop_flow, ike_impair, flood, rekey, initiate, terminate, bgp, wait, sleep, assert",
				what, len(acts), orNone(acts))
			continue
		}
		act := acts[0]
		what += " (" + act + ")"
		switch act {
		case "start", "stop", "kill", "restart":
			gwOK(st.Line, what, st.Start+st.Stop+st.Kill+st.Restart)
		case "impair":
			im := st.Impair
			tunOK(st.Line, what, im.Tunnel, true)
			if !contains(impairFaults, im.Fault) {
				el.add(st.Line, "%s: fault %q is not allowed (allowed: %s)", what, im.Fault, strings.Join(impairFaults, ", "))
			}
			if im.Fault == "loss" && (im.Percent <= 0 || im.Percent > 100) {
				el.add(st.Line, "%s: loss needs percent in (0, 100]", what)
			}
			if im.Fault != "loss" && im.Percent != 0 {
				el.add(st.Line, "%s: percent applies to fault loss only", what)
			}
			if im.Fault == "flush-nat" && !p.nat {
				el.add(st.Line, "%s: flush-nat needs topology.wan.nat: masquerade (there is no NAT to flush)", what)
			}
		case "restore":
			tunOK(st.Line, what, st.Restore, true)
		case "wan":
			p.validateWAN(el, what, st.WAN)
		case "flow":
			f := st.Flow
			if f.Name == "" || flows[f.Name] {
				el.add(st.Line, "%s: every flow needs a unique name (%q)", what, f.Name)
			}
			flows[f.Name] = true
			if f.Proto == "" {
				f.Proto = "icmp"
			}
			if !contains(flowProtocols, f.Proto) {
				el.add(st.Line, "%s: proto %q is not allowed (allowed: icmp, udp, tcp)", what, f.Proto)
			}
			nodeOK(st.Line, what+" from", f.From)
			nodeOK(st.Line, what+" to", f.To)
			if f.Dst != "" {
				if a, err := netip.ParseAddr(f.Dst); err != nil || !a.Is4() {
					el.add(st.Line, "%s: dst %q is not an IPv4 address", what, f.Dst)
				}
			}
			if f.Rate < 0 || f.Rate > 10000 || (f.Size != 0 && (f.Size < 24 || f.Size > 1400)) || f.Count < 0 || f.Port < 0 || f.Port > 65535 {
				el.add(st.Line, "%s: rate must be 0-10000/s, size 24-1400 bytes (a probe carries a 24-byte header), count >= 0, port 0-65535", what)
			}
		case "stop_flow":
			for j, n := range st.StopFlow.Items {
				if !flows[n] {
					el.add(st.StopFlow.Lines[j], "%s: no flow %q started before this step", what, n)
				}
			}
		case "ike_impair":
			gwOK(st.Line, what, st.IKEImpair.Gateway)
			if len(st.IKEImpair.Spec.Items) == 0 {
				el.add(st.Line, "%s: spec is required (e.g. drop:main:3; none clears)", what)
			}
			for j, sp := range st.IKEImpair.Spec.Items {
				imp, err := impair.Parse(sp)
				if err != nil {
					el.add(st.IKEImpair.Spec.Lines[j], "%s: %v", what, err)
				} else if imp.Tunnel != "" && p.tunnel(imp.Tunnel) == nil {
					el.add(st.IKEImpair.Spec.Lines[j], "%s: %q: no tunnel %q (tunnels: %s)", what, sp, imp.Tunnel, strings.Join(p.tunnelNames(), ", "))
				}
			}
		case "flood":
			tunOK(st.Line, what, st.Flood.Tunnel, false)
			if st.Flood.Count <= 0 || st.Flood.Count > 100000 || st.Flood.Rate < 0 {
				el.add(st.Line, "%s: count must be 1-100000 and rate >= 0", what)
			}
		case "rekey", "initiate", "terminate":
			ta := st.Rekey
			if act == "initiate" {
				ta = st.Initiate
			} else if act == "terminate" {
				ta = st.Terminate
			}
			gwOK(st.Line, what, ta.Gateway)
			tunOK(st.Line, what, ta.Tunnel, false)
			if act == "rekey" && ta.Phase != 1 && ta.Phase != 2 {
				el.add(st.Line, "%s: phase must be 1 or 2", what)
			}
			if act != "rekey" && ta.Phase != 0 {
				el.add(st.Line, "%s: phase applies to rekey only", what)
			}
		case "bgp":
			b := st.BGP
			gwOK(st.Line, what, b.Gateway)
			for _, l := range [][]string{b.Advertise.Items, b.Withdraw.Items} {
				for _, pf := range l {
					if x, err := netip.ParsePrefix(pf); err != nil || x != x.Masked() {
						el.add(st.Line, "%s: %q is not a network prefix like 10.20.0.0/16", what, pf)
					}
				}
			}
			policy := b.Prepend != nil || b.MED != nil
			if policy {
				tunOK(st.Line, what, b.Tunnel, false)
				if b.Prepend != nil && (*b.Prepend < 0 || *b.Prepend > 10) {
					el.add(st.Line, "%s: prepend must be 0-10", what)
				}
				if b.MED != nil && *b.MED < 0 {
					el.add(st.Line, "%s: med must be >= 0", what)
				}
			} else if b.Tunnel != "" {
				el.add(st.Line, "%s: tunnel goes with prepend or med", what)
			}
			if !policy && len(b.Advertise.Items)+len(b.Withdraw.Items) == 0 {
				el.add(st.Line, "%s: nothing to do (advertise, withdraw, or tunnel with prepend/med)", what)
			}
		case "wait", "assert":
			list := st.Wait
			if act == "assert" {
				list = st.Assert
			}
			for j, text := range list.Items {
				c, err := parseCond(text, list.Lines[j], act == "wait")
				if err != nil {
					el.add(list.Lines[j], "%s: %v", what, err)
					continue
				}
				checkCondRefs(c, p, flows, el, what)
				if c.Since != "" && !named[c.Since] {
					el.add(list.Lines[j], "%s: %q: no step named %q at or before this step (named so far: %s)", what, c.Text, c.Since, cmp.Or(strings.Join(names, ", "), "none"))
				}
				if act == "wait" {
					st.waits = append(st.waits, c)
				} else {
					st.asserts = append(st.asserts, c)
				}
			}
			if act == "wait" && st.Timeout == 0 {
				st.Timeout = Duration(30e9)
			}
		}
	}
}

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
