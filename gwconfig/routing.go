package gwconfig

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// RoutingMode is how the routes through the tunnels are learnt.
type RoutingMode string

const (
	// RoutingStatic: the routes are the tunnels' static_routes (AWS "static"
	// routing). The default when no tunnel has an inside_cidr.
	RoutingStatic RoutingMode = "static"
	// RoutingBGP: the routes are exchanged by BGP over the tunnels' inside
	// addresses (AWS "dynamic" routing). The default when any tunnel has an
	// inside_cidr.
	RoutingBGP RoutingMode = "bgp"
)

// Routing is the top-level routing section.
type Routing struct {
	Mode RoutingMode
	// ECMP: spread traffic over every tunnel with a best route of equal
	// cost, instead of one tunnel per prefix. AWS offers ECMP only on a
	// Transit Gateway (a warning on the vgw).
	ECMP bool
	// RouteLimit is the most prefixes accepted from one BGP neighbor (AWS:
	// a CGW may advertise at most 100 routes to a VGW).
	RouteLimit int
}

// BGP is the top-level bgp section; Config.BGP is non-nil exactly when
// Routing.Mode is RoutingBGP. Each tunnel with an inside_cidr has one eBGP
// neighbor, its Tunnel.PeerInside address, with ASN Tunnel.PeerASN.
type BGP struct {
	ASN      uint32     // our AS number
	PeerASN  uint32     // default AS number of the neighbors (Tunnel.PeerASN overrides)
	RouterID netip.Addr // IPv4 BGP identifier
	// HoldTime is the hold time we propose (0: no keepalives, no hold
	// timer); whole seconds, 0 or 3 s to 65535 s (RFC 4271).
	HoldTime time.Duration
	// Keepalive is the keepalive interval; less than HoldTime (0 when
	// HoldTime is 0); whole seconds.
	Keepalive time.Duration
	// ConnectRetry is the ConnectRetry timer: how long to wait before
	// opening the TCP connection to a neighbor again; whole seconds.
	ConnectRetry time.Duration
	// Passive: accept the neighbors' TCP connections, never open one
	// (default on the vgw; the cgw connects). One passive side means the
	// two speakers never collide.
	Passive   bool
	Port      uint16         // TCP port of BGP, ours and the neighbors'
	Advertise []netip.Prefix // prefixes we originate (VPC CIDRs, on-premises networks)
}

// Tunnel is what a tunnel has besides its IKE settings: its VPN connection,
// inside addresses, BGP neighbor settings and static routes.
// Config.Tunnels[i] belongs to Config.IKE.Tunnels[i] (same Name).
type Tunnel struct {
	Name string // as IKE.Tunnels[i].Name
	// Connection names the VPN connection the tunnel belongs to (like an
	// AWS VpnConnectionId); "" for none.
	Connection string
	// Inside is the tunnel's inside /30 from 169.254.0.0/16; the zero
	// Prefix (IsValid false) when the tunnel has no inside_cidr.
	Inside netip.Prefix
	// LocalInside is our inside address with the /30 prefix length, to put
	// on the TUN device: the first host (.1) on the vgw, the second (.2) on
	// the cgw. Zero without Inside.
	LocalInside netip.Prefix
	// PeerInside is the peer's inside address (the other host of the /30),
	// the BGP neighbor's address. Zero without Inside.
	PeerInside netip.Addr
	// PeerASN is the BGP neighbor's AS number. Non-zero exactly when the
	// tunnel has a BGP session: routing mode bgp and an inside_cidr.
	PeerASN uint32
	// MED is the MULTI_EXIT_DISC we advertise to this neighbor; 0: none.
	MED uint32
	// Prepend is how many extra times we prepend our own ASN to the AS_PATH
	// of the routes we advertise to this neighbor (0-10).
	Prepend int
	// StaticRoutes are the prefixes reached through this tunnel (static
	// routing mode; on the cgw also kept in bgp mode, with a warning).
	StaticRoutes []netip.Prefix
	// MSSClamp is the MSS that TCP SYNs entering the tunnel are lowered to
	// (0: off; mss_clamp, aws = 1379).
	MSSClamp int
	// OutsideMTU is the largest outer packet the tunnel sends (outside_mtu,
	// 0: 1500): bigger inside packets are fragmented before
	// encryption, or answered with ICMP fragmentation-needed if DF is set.
	OutsideMTU int
}

// Routing and BGP defaults and limits.
const (
	// AWSRouteLimit: a CGW may advertise at most 100 routes to a VGW
	// (AWSUG vpn-limits.md, not adjustable).
	AWSRouteLimit = 100
	// AWSVGWAdvertiseLimit: a VGW advertises at most 1,000 routes to a CGW
	// (AWSUG vpn-limits.md).
	AWSVGWAdvertiseLimit = 1000
	// AWSStaticRoutesLimit: static routes of one VPN connection on a VGW
	// (AWSUG vpn-limits.md).
	AWSStaticRoutesLimit = 100
	MaxRouteLimit        = 10000

	// DefaultVGWASN is the Amazon-side ASN of a VGW created without one;
	// DefaultCGWASN the default customer gateway ASN (AWSUG how_it_works.md,
	// cgw-options.md).
	DefaultVGWASN = 64512
	DefaultCGWASN = 65000

	DefaultBGPHoldTime     = 30 * time.Second // AWS configurations: hold time 30 s
	DefaultBGPKeepalive    = 10 * time.Second // keepalive 10 s
	DefaultBGPConnectRetry = 3 * time.Second  // GoBGP: 120 s
	DefaultBGPPort         = 179
	MaxPrepend             = 10
)

// insideNet is where AWS takes tunnel inside CIDRs from.
var insideNet = netip.MustParsePrefix("169.254.0.0/16")

// ReservedInsideCIDRs are the /30s AWS refuses as tunnel inside CIDRs
// (AWSUG VPNTunnels.md).
var ReservedInsideCIDRs = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/30"),
	netip.MustParsePrefix("169.254.1.0/30"),
	netip.MustParsePrefix("169.254.2.0/30"),
	netip.MustParsePrefix("169.254.3.0/30"),
	netip.MustParsePrefix("169.254.4.0/30"),
	netip.MustParsePrefix("169.254.5.0/30"),
	netip.MustParsePrefix("169.254.169.252/30"),
}

// CheckInsideCIDR checks s against AWS's rules for a tunnel inside IPv4
// CIDR: a /30 in 169.254.0.0/16, not one of ReservedInsideCIDRs.
func CheckInsideCIDR(s string) (netip.Prefix, error) {
	const want = "want a /30 from 169.254.0.0/16 such as 169.254.10.0/30"
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix (%s)", s, want)
	case !p.Addr().Is4():
		return netip.Prefix{}, fmt.Errorf("%s is not IPv4 (%s)", p, want)
	case p.Bits() != 30:
		return netip.Prefix{}, fmt.Errorf("%s is not a /30 (%s)", p, want)
	case p.Masked() != p:
		return netip.Prefix{}, fmt.Errorf("%s has host bits set (did you mean %s?)", p, p.Masked())
	case !insideNet.Contains(p.Addr()):
		return netip.Prefix{}, fmt.Errorf("%s is not in 169.254.0.0/16 (%s)", p, want)
	case slices.Contains(ReservedInsideCIDRs, p):
		return netip.Prefix{}, fmt.Errorf("%s is reserved by AWS (reserved: %s)", p, prefixList(ReservedInsideCIDRs))
	}
	return p, nil
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// insideAddrs returns the vgw's (first host) and the cgw's (second host)
// addresses of an inside /30.
func insideAddrs(p netip.Prefix) (vgw, cgw netip.Addr) {
	vgw = p.Addr().Next()
	return vgw, vgw.Next()
}

// ASN ranges.
type asnRange struct{ lo, hi uint32 }

var (
	// vgw: private 16-bit and 32-bit ASNs (AWSUG how_it_works.md).
	vgwASNs = []asnRange{{64512, 65534}, {4200000000, 4294967294}}
	// cgw: 1-2147483647 (AWSUG cgw-options.md).
	cgwASNs = []asnRange{{1, 2147483647}}
	// Any ASN but 0 and 4294967295 (RFC 7300).
	anyASNs = []asnRange{{1, 4294967294}}
)

func asnText(rs []asnRange) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%d-%d", r.lo, r.hi)
	}
	return strings.Join(s, " or ")
}

// asn reads an AS number in one of the ranges.
func (o *object) asn(key string, def uint32, allowed []asnRange, why string) (uint32, bool) {
	n, ok := o.scalar(key)
	if !ok {
		return def, false
	}
	v, ok := parseInt(n)
	if !ok {
		o.d.errf(n, o.p(key), "expected an AS number (an integer), got %q", n.Value)
		return def, false
	}
	for _, r := range allowed {
		if v >= int64(r.lo) && v <= int64(r.hi) {
			return uint32(v), true
		}
	}
	o.d.errf(n, o.p(key), "%d is out of range (allowed: %s%s)", v, asnText(allowed), why)
	return def, false
}

// seconds reads a duration of whole seconds in [min, max], or 0 when zero
// is true.
func (o *object) seconds(key string, def, min, max time.Duration, zero bool) (time.Duration, bool) {
	v, set := o.duration(key, def)
	if !set {
		return v, false
	}
	n := o.line(key)
	allowed := secs(min) + " to " + secs(max)
	if zero {
		allowed = "0 or " + allowed
	}
	switch {
	case v%time.Second != 0:
		o.d.errf(n, o.p(key), "%s is not a whole number of seconds", v)
	case v == 0 && zero:
		return 0, true
	case v < min || v > max:
		o.d.errf(n, o.p(key), "%s is out of range (allowed: %s)", secs(v), allowed)
	default:
		return v, true
	}
	return def, false
}

// prefixes reads a list of CIDR prefixes (a bare address is a /32 or
// /128); a prefix with host bits or listed twice is an error.
func (o *object) prefixes(key string) []netip.Prefix {
	items, _ := o.list(key)
	var ps []netip.Prefix
	var seen map[netip.Prefix]bool
	for _, it := range items {
		p, err := parseCIDR(it.s)
		if err != nil {
			o.d.errf(it.n, o.p(key), "%v", err)
			continue
		}
		if seen == nil {
			seen = make(map[netip.Prefix]bool, len(items))
		}
		if seen[p] {
			o.d.errf(it.n, o.p(key), "%s is listed twice", p)
			continue
		}
		seen[p] = true
		ps = append(ps, p)
	}
	return ps
}

func parseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			a = a.Unmap()
			return netip.PrefixFrom(a, a.BitLen()), nil
		}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/16", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set (did you mean %s?)", p, p.Masked())
	}
	return p, nil
}

// tunnelRaw is what d.tunnel read for the routing checks that need every
// tunnel (and the routing mode) first.
type tunnelRaw struct {
	path   string
	node   *yaml.Node
	ok     bool // the whole tunnel decoded without error
	ext    Tunnel
	remote netip.Addr

	insideNode *yaml.Node
	connNode   *yaml.Node
	bgp        *object // per-tunnel bgp (nil when absent)
	peerASN    uint32
	peerASNSet bool
	routesNode *yaml.Node // static_routes (nil when absent)
}

// tunnelRouting reads the per-tunnel fields that do not depend on the
// routing mode: inside_cidr, connection, bgp, static_routes.
func (b *tunnelDecoder) tunnelRouting(o *object, r *tunnelRaw) {
	if n, ok := o.scalar("inside_cidr"); ok {
		r.insideNode = n
		p, err := CheckInsideCIDR(n.Value)
		if err != nil {
			b.d.errf(n, o.p("inside_cidr"), "%v", err)
		} else {
			r.ext.Inside = p
			v, c := insideAddrs(p)
			local, peer := v, c
			if !b.vgw {
				local, peer = c, v
			}
			r.ext.LocalInside = netip.PrefixFrom(local, 30)
			r.ext.PeerInside = peer
		}
	}
	if n, ok := o.scalar("connection"); ok {
		r.connNode = n
		if !tunnelNameRE.MatchString(n.Value) {
			b.d.errf(n, o.p("connection"), "%q: use 1-64 characters from A-Z a-z 0-9 _ . -", n.Value)
		} else {
			r.ext.Connection = n.Value
		}
	}
	if n := o.get("bgp"); n != nil {
		bo := b.d.object(n, o.p("bgp"), "peer_asn", "med", "as_path_prepend")
		r.bgp = bo
		allowed := anyASNs
		why := ""
		if b.vgw {
			allowed, why = cgwASNs, ": the customer gateway's ASN, AWS cgw-options"
		}
		r.peerASN, r.peerASNSet = bo.asn("peer_asn", 0, allowed, why)
		r.ext.MED = uint32(bo.integer("med", 0, 0, math.MaxUint32))
		r.ext.Prepend = int(bo.integer("as_path_prepend", 0, 0, MaxPrepend))
	}
	if n := o.vals["static_routes"]; n != nil {
		r.routesNode = n
		r.ext.StaticRoutes = o.prefixes("static_routes")
	}
}

// routing reads the routing and bgp sections and checks what needs every
// tunnel. It fills c.Routing, c.BGP and c.Tunnels (parallel to
// c.IKE.Tunnels).
func (d *decoder) routing(c *Config, top *object, raws []*tunnelRaw) {
	vgw := c.Profile == VGW

	// Inside CIDRs: unique per gateway. Router ID default: the first one.
	insides := make(map[netip.Prefix]*tunnelRaw, len(raws))
	var first *tunnelRaw
	for _, r := range raws {
		if !r.ext.Inside.IsValid() {
			continue
		}
		if first == nil {
			first = r
		}
		if o := insides[r.ext.Inside]; o != nil {
			why := "AWS requires a unique inside CIDR per virtual private gateway"
			if !vgw {
				why = "two tunnels cannot share one inside /30 on one TUN device"
			}
			d.errf(r.insideNode, r.path+".inside_cidr", "%s is already used by %s (%s)", r.ext.Inside, o.path, why)
			continue
		}
		insides[r.ext.Inside] = r
	}

	ro := d.object(top.get("routing"), "routing", "mode", "ecmp", "route_limit")
	def := RoutingStatic
	if first != nil {
		def = RoutingBGP
	}
	c.Routing.Mode = RoutingMode(ro.enum("mode", string(def), string(RoutingBGP), string(RoutingStatic)))
	if c.Routing.Mode == RoutingBGP && first == nil && len(raws) > 0 {
		d.errf(ro.line("mode"), ro.p("mode"), "bgp needs at least one tunnel with an inside_cidr (the BGP sessions run between the tunnels' inside addresses)")
	}
	c.Routing.ECMP = ro.boolean("ecmp", false)
	if c.Routing.ECMP && vgw {
		d.warnf(ro.line("ecmp"), ro.p("ecmp"), "a virtual private gateway does not support ECMP (AWS offers it only on a Transit Gateway); accepted for the lab")
	}
	c.Routing.RouteLimit = int(ro.integer("route_limit", AWSRouteLimit, 1, MaxRouteLimit))
	if vgw && c.Routing.RouteLimit > AWSRouteLimit {
		d.warnf(ro.line("route_limit"), ro.p("route_limit"), "AWS accepts at most %d routes from a customer gateway (not adjustable)", AWSRouteLimit)
	}

	bgp := d.bgp(c, top.get("bgp"), first)
	bgpMode := c.Routing.Mode == RoutingBGP
	if bgpMode {
		c.BGP = bgp
	} else if top.has("bgp") {
		d.warnf(top.line("bgp"), "bgp", "ignored: routing.mode is static")
	}

	// Per tunnel.
	for _, r := range raws {
		e := &r.ext
		switch {
		case r.bgp != nil && !bgpMode:
			d.warnf(r.bgp.node, r.path+".bgp", "ignored: routing.mode is static")
		case r.bgp != nil && r.insideNode == nil:
			d.errf(r.bgp.node, r.path+".bgp", "needs inside_cidr: the BGP session runs between the tunnel's inside addresses")
		}
		if bgpMode && e.Inside.IsValid() {
			e.PeerASN = bgp.PeerASN
			if r.peerASNSet {
				e.PeerASN = r.peerASN
				if e.PeerASN == bgp.ASN {
					d.errf(r.bgp.line("peer_asn"), r.bgp.p("peer_asn"), "%d is our own bgp.asn: the tunnels carry eBGP, the peer needs another ASN", e.PeerASN)
				}
			}
		} else {
			e.MED, e.Prepend = 0, 0
		}
		if bgpMode && vgw && r.insideNode == nil && r.node != nil {
			d.warnf(r.node, r.path, "no inside_cidr in bgp mode: no BGP session on this tunnel (AWS gives every tunnel an inside CIDR)")
		}
		if r.routesNode != nil && bgpMode {
			if vgw {
				d.errf(r.routesNode, r.path+".static_routes", "not allowed with routing.mode bgp (AWS: with dynamic routing the customer gateway advertises its routes by BGP; static routes cannot be added)")
			} else {
				d.warnf(r.routesNode, r.path+".static_routes", "with routing.mode bgp an AWS virtual private gateway takes no static routes; kept on this cgw")
			}
		}
	}

	if vgw {
		d.connections(raws, bgpMode)
	}

	for _, r := range raws {
		if r.ok {
			c.Tunnels = append(c.Tunnels, r.ext)
		}
	}
}

// connections checks the tunnels of each VPN connection on the vgw: two
// tunnels, one customer gateway, at most 100 static routes.
func (d *decoder) connections(raws []*tunnelRaw, bgpMode bool) {
	type conn struct {
		tunnels []*tunnelRaw
		routes  map[netip.Prefix]bool
	}
	conns := map[string]*conn{}
	var order []string
	for _, r := range raws {
		key := r.ext.Connection
		if key == "" {
			key = "\x00" + r.path // a tunnel without a connection is its own
		}
		cn := conns[key]
		if cn == nil {
			cn = &conn{}
			conns[key] = cn
			order = append(order, key)
		}
		cn.tunnels = append(cn.tunnels, r)
		if len(r.ext.StaticRoutes) > 0 && !bgpMode {
			if cn.routes == nil {
				cn.routes = map[netip.Prefix]bool{}
			}
			before := len(cn.routes)
			for _, p := range r.ext.StaticRoutes {
				cn.routes[p] = true
			}
			if before <= AWSStaticRoutesLimit && len(cn.routes) > AWSStaticRoutesLimit {
				what := "this tunnel"
				if r.ext.Connection != "" {
					what = fmt.Sprintf("connection %q", r.ext.Connection)
				}
				d.errf(r.routesNode, r.path+".static_routes", "%s has %d static routes (AWS: at most %d static routes per VPN connection)", what, len(cn.routes), AWSStaticRoutesLimit)
			}
		}
	}
	for _, key := range order {
		cn := conns[key]
		if strings.HasPrefix(key, "\x00") {
			continue
		}
		t0 := cn.tunnels[0]
		if len(cn.tunnels) != 2 {
			d.warnf(t0.connNode, t0.path+".connection", "connection %q has %d tunnel(s): an AWS VPN connection has exactly two", key, len(cn.tunnels))
		}
		for _, r := range cn.tunnels[1:] {
			if r.remote.IsValid() && t0.remote.IsValid() && r.remote != t0.remote {
				d.warnf(r.connNode, r.path+".connection", "remote_address %s differs from %s of %s: an AWS VPN connection has one customer gateway", r.remote, t0.remote, t0.path)
			}
			if r.ext.PeerASN != 0 && t0.ext.PeerASN != 0 && r.ext.PeerASN != t0.ext.PeerASN {
				d.warnf(r.connNode, r.path+".connection", "peer ASN %d differs from %d of %s: an AWS customer gateway has one ASN", r.ext.PeerASN, t0.ext.PeerASN, t0.path)
			}
			if !bgpMode && (len(r.ext.StaticRoutes) > 0 || len(t0.ext.StaticRoutes) > 0) && !samePrefixSet(r.ext.StaticRoutes, t0.ext.StaticRoutes) {
				node := r.routesNode
				if node == nil {
					node = r.connNode
				}
				d.warnf(node, r.path+".static_routes", "differs from %s.static_routes: AWS applies a connection's static routes to both of its tunnels", t0.path)
			}
		}
	}
}

func samePrefixSet(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[netip.Prefix]bool, len(a))
	for _, p := range a {
		m[p] = true
	}
	for _, p := range b {
		if !m[p] {
			return false
		}
	}
	return true
}

// bgp reads the top-level bgp section (always, so that its errors are
// reported even in static mode).
func (d *decoder) bgp(c *Config, n *yaml.Node, first *tunnelRaw) *BGP {
	vgw := c.Profile == VGW
	o := d.object(n, "bgp", "asn", "peer_asn", "router_id", "hold_time", "keepalive", "connect_retry", "passive", "port", "advertise")
	g := &BGP{}
	var asnSet bool
	if vgw {
		g.ASN, asnSet = o.asn("asn", DefaultVGWASN, vgwASNs, ": a private ASN, AWS how_it_works")
		g.PeerASN, _ = o.asn("peer_asn", DefaultCGWASN, cgwASNs, ": the customer gateway's ASN, AWS cgw-options")
	} else {
		g.ASN, asnSet = o.asn("asn", DefaultCGWASN, cgwASNs, ": AWS cgw-options")
		g.PeerASN, _ = o.asn("peer_asn", DefaultVGWASN, anyASNs, "")
	}
	if g.ASN == g.PeerASN {
		what := "peer_asn"
		if !o.has("peer_asn") {
			what = "the default peer_asn"
		}
		node, key := o.line("peer_asn"), "peer_asn"
		if !o.has("peer_asn") && asnSet {
			node, key = o.line("asn"), "asn"
		}
		d.errf(node, o.p(key), "%s %d equals asn: the tunnels carry eBGP, set a different peer_asn", what, g.PeerASN)
	}

	if rn, ok := o.scalar("router_id"); ok {
		a, err := netip.ParseAddr(strings.TrimSpace(rn.Value))
		if err != nil || !a.Unmap().Is4() || a.Unmap().IsUnspecified() {
			d.errf(rn, o.p("router_id"), "%q is not an IPv4 address (the BGP identifier is 4 bytes)", rn.Value)
		} else {
			g.RouterID = a.Unmap()
		}
	} else if first != nil {
		g.RouterID = first.ext.LocalInside.Addr()
	}

	g.HoldTime, _ = o.seconds("hold_time", DefaultBGPHoldTime, 3*time.Second, 65535*time.Second, true)
	if ka, set := o.seconds("keepalive", 0, time.Second, 65535*time.Second, true); set {
		g.Keepalive = ka
		switch {
		case g.HoldTime == 0 && ka != 0:
			d.errf(o.line("keepalive"), o.p("keepalive"), "must be 0 with hold_time 0 (no keepalives without a hold timer)")
		case g.HoldTime != 0 && (ka == 0 || ka >= g.HoldTime):
			d.errf(o.line("keepalive"), o.p("keepalive"), "%s must be positive and less than hold_time (%s)", secs(ka), secs(g.HoldTime))
		}
	} else if o.has("hold_time") {
		// RFC 4271 section 10: keepalive one third of the hold time.
		g.Keepalive = (g.HoldTime / 3).Truncate(time.Second)
	} else {
		g.Keepalive = DefaultBGPKeepalive
	}
	g.ConnectRetry, _ = o.seconds("connect_retry", DefaultBGPConnectRetry, time.Second, 65535*time.Second, false)
	g.Passive = o.boolean("passive", vgw)
	g.Port = uint16(o.integer("port", DefaultBGPPort, 1, 65535))
	g.Advertise = o.prefixes("advertise")
	if vgw && len(g.Advertise) > AWSVGWAdvertiseLimit {
		d.warnf(o.line("advertise"), o.p("advertise"), "%d prefixes: AWS advertises at most %d routes from a virtual private gateway to a customer gateway", len(g.Advertise), AWSVGWAdvertiseLimit)
	}
	if !vgw && len(g.Advertise) > AWSRouteLimit {
		d.warnf(o.line("advertise"), o.p("advertise"), "%d prefixes: an AWS virtual private gateway accepts at most %d routes from a customer gateway", len(g.Advertise), AWSRouteLimit)
	}
	return g
}
