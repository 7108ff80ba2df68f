package gwconfig

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/policy"
)

// two returns a two-tunnel config: tunnel1 and tunnel2 (other local
// address), with extra1/extra2 appended to each (4-space indent) and top
// before the tunnels.
func two(top, extra1, extra2 string) string {
	return top + `tunnels:
  - name: tunnel1
    local_address: 203.0.113.10
    remote_address: 198.51.100.2
    psk_env: VPNLAB_TEST_PSK
` + extra1 + `  - name: tunnel2
    local_address: 203.0.113.20
    remote_address: 198.51.100.2
    psk_env: VPNLAB_TEST_PSK
` + extra2
}

func wantWarn(t *testing.T, c *Config, frags ...string) {
	t.Helper()
	w := fmt.Sprint(c.Warnings)
	for _, f := range frags {
		if !strings.Contains(w, f) {
			t.Errorf("warnings %s lack %q", w, f)
		}
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func TestStaticDefaults(t *testing.T) {
	for _, p := range []Profile{VGW, CGW} {
		c := mustParse(t, p, minimal(""))
		if c.Routing != (Routing{Mode: RoutingStatic, RouteLimit: 100}) || c.BGP != nil {
			t.Errorf("%s: routing %+v bgp %+v", p, c.Routing, c.BGP)
		}
		if len(c.Tunnels) != 1 || !reflect.DeepEqual(c.Tunnels[0], Tunnel{Name: "tunnel1"}) {
			t.Errorf("%s: tunnels %+v", p, c.Tunnels)
		}
		tc := c.IKE.Tunnels[0]
		if tc.DPDDelay != 10*time.Second || tc.DPDTimeout != 40*time.Second || tc.NATKeepalive != 20*time.Second {
			t.Errorf("%s: dpd delay %v timeout %v nat keepalive %v", p, tc.DPDDelay, tc.DPDTimeout, tc.NATKeepalive)
		}
	}
}

func TestInsideCIDRAndBGPDefaults(t *testing.T) {
	yml := two("", "    inside_cidr: 169.254.10.0/30\n", "    inside_cidr: 169.254.11.0/30\n")
	v := mustParse(t, VGW, yml)
	if len(v.Warnings) != 0 {
		t.Errorf("vgw warnings: %v", v.Warnings)
	}
	if v.Routing.Mode != RoutingBGP || v.BGP == nil {
		t.Fatalf("vgw: inside_cidr does not default to bgp: %+v", v.Routing)
	}
	wantBGP := BGP{ASN: 64512, PeerASN: 65000, RouterID: addr("169.254.10.1"), HoldTime: 30 * time.Second,
		Keepalive: 10 * time.Second, ConnectRetry: 3 * time.Second, Passive: true, Port: 179}
	if !reflect.DeepEqual(*v.BGP, wantBGP) {
		t.Errorf("vgw bgp:\n got %+v\nwant %+v", *v.BGP, wantBGP)
	}
	want := []Tunnel{
		{Name: "tunnel1", Inside: pfx("169.254.10.0/30"), LocalInside: pfx("169.254.10.1/30"), PeerInside: addr("169.254.10.2"), PeerASN: 65000},
		{Name: "tunnel2", Inside: pfx("169.254.11.0/30"), LocalInside: pfx("169.254.11.1/30"), PeerInside: addr("169.254.11.2"), PeerASN: 65000},
	}
	if !reflect.DeepEqual(v.Tunnels, want) {
		t.Errorf("vgw tunnels:\n got %+v\nwant %+v", v.Tunnels, want)
	}

	c := mustParse(t, CGW, yml)
	wantBGP.ASN, wantBGP.PeerASN, wantBGP.RouterID, wantBGP.Passive = 65000, 64512, addr("169.254.10.2"), false
	if c.Routing.Mode != RoutingBGP || c.BGP == nil || !reflect.DeepEqual(*c.BGP, wantBGP) {
		t.Errorf("cgw bgp: %+v %+v", c.Routing, c.BGP)
	}
	want[0].LocalInside, want[0].PeerInside, want[0].PeerASN = pfx("169.254.10.2/30"), addr("169.254.10.1"), 64512
	want[1].LocalInside, want[1].PeerInside, want[1].PeerASN = pfx("169.254.11.2/30"), addr("169.254.11.1"), 64512
	if !reflect.DeepEqual(c.Tunnels, want) {
		t.Errorf("cgw tunnels:\n got %+v\nwant %+v", c.Tunnels, want)
	}

	// Static mode with inside CIDRs: addresses, no BGP.
	s := mustParse(t, VGW, "routing: {mode: static}\n"+minimal("    inside_cidr: 169.254.10.0/30\n"))
	if s.BGP != nil || s.Tunnels[0].PeerASN != 0 || s.Tunnels[0].LocalInside != pfx("169.254.10.1/30") {
		t.Errorf("static with inside: %+v %+v", s.BGP, s.Tunnels[0])
	}
}

func TestInsideCIDRRules(t *testing.T) {
	for _, r := range ReservedInsideCIDRs {
		for _, p := range []Profile{VGW, CGW} {
			wantErr(t, p, minimal("    inside_cidr: "+r.String()+"\n"),
				"test.yaml:6: tunnels[0].inside_cidr: "+r.String()+" is reserved by AWS (reserved: 169.254.0.0/30, 169.254.1.0/30, 169.254.2.0/30, 169.254.3.0/30, 169.254.4.0/30, 169.254.5.0/30, 169.254.169.252/30)")
		}
	}
	bad := map[string]string{
		"169.254.10.0/29":  "169.254.10.0/29 is not a /30",
		"169.254.10.0/31":  "169.254.10.0/31 is not a /30",
		"169.254.10.1/30":  "169.254.10.1/30 has host bits set (did you mean 169.254.10.0/30?)",
		"10.0.0.0/30":      "10.0.0.0/30 is not in 169.254.0.0/16",
		"169.255.0.0/30":   "169.255.0.0/30 is not in 169.254.0.0/16",
		"fd00::/126":       "fd00::/126 is not IPv4 (want a /30 from 169.254.0.0/16 such as 169.254.10.0/30)",
		"169.254.10.1":     `"169.254.10.1" is not a CIDR prefix`,
		"169.254.6.0/30x":  `"169.254.6.0/30x" is not a CIDR prefix`,
		"169.254.255.0/30": "",
		"169.254.6.0/30":   "",
	}
	for s, frag := range bad {
		if frag == "" {
			if _, err := CheckInsideCIDR(s); err != nil {
				t.Errorf("CheckInsideCIDR(%q) = %v", s, err)
			}
			mustParse(t, VGW, minimal("    inside_cidr: "+s+"\n"))
			continue
		}
		wantErr(t, VGW, minimal("    inside_cidr: "+s+"\n"), "tunnels[0].inside_cidr: "+frag)
	}
	// Unique per gateway, on both profiles.
	dup := two("", "    inside_cidr: 169.254.10.0/30\n", "    inside_cidr: 169.254.10.0/30\n")
	wantErr(t, VGW, dup, "test.yaml:11: tunnels[1].inside_cidr: 169.254.10.0/30 is already used by tunnels[0] (AWS requires a unique inside CIDR per virtual private gateway)")
	wantErr(t, CGW, dup, "tunnels[1].inside_cidr: 169.254.10.0/30 is already used by tunnels[0] (two tunnels cannot share one inside /30 on one TUN device)")
}

func TestBGPSettings(t *testing.T) {
	top := `routing:
  mode: bgp
  ecmp: true
  route_limit: 50
bgp:
  asn: 4200000000
  peer_asn: 65010
  router_id: 192.0.2.1
  hold_time: 90
  keepalive: 30s
  connect_retry: 5s
  passive: false
  port: 1179
  advertise: [172.31.0.0/16, 10.20.0.0/16, 192.0.2.7]
`
	c := mustParse(t, VGW, two(top,
		"    connection: vpn-1\n    inside_cidr: 169.254.100.0/30\n    bgp: {peer_asn: 65020, med: 100, as_path_prepend: 3}\n",
		"    connection: vpn-1\n    inside_cidr: 169.254.100.4/30\n    bgp: {med: 4294967295}\n"))
	want := BGP{ASN: 4200000000, PeerASN: 65010, RouterID: addr("192.0.2.1"), HoldTime: 90 * time.Second, Keepalive: 30 * time.Second,
		ConnectRetry: 5 * time.Second, Port: 1179, Advertise: []netip.Prefix{pfx("172.31.0.0/16"), pfx("10.20.0.0/16"), pfx("192.0.2.7/32")}}
	if !reflect.DeepEqual(*c.BGP, want) {
		t.Errorf("bgp:\n got %+v\nwant %+v", *c.BGP, want)
	}
	if c.Routing != (Routing{Mode: RoutingBGP, ECMP: true, RouteLimit: 50}) {
		t.Errorf("routing: %+v", c.Routing)
	}
	t0, t1 := c.Tunnels[0], c.Tunnels[1]
	if t0.Connection != "vpn-1" || t0.PeerASN != 65020 || t0.MED != 100 || t0.Prepend != 3 {
		t.Errorf("tunnel1: %+v", t0)
	}
	if t1.PeerASN != 65010 || t1.MED != 4294967295 || t1.Prepend != 0 {
		t.Errorf("tunnel2: %+v", t1)
	}
	// ECMP is not a VGW feature; two peer ASNs on one connection.
	wantWarn(t, c, "routing.ecmp: a virtual private gateway does not support ECMP", "peer ASN 65010 differs from 65020")
	if c := mustParse(t, CGW, two("routing: {ecmp: true}\n", "    inside_cidr: 169.254.100.0/30\n", "")); len(c.Warnings) != 0 {
		t.Errorf("cgw warnings: %v", c.Warnings)
	}

	// Keepalive: hold_time / 3 when only hold_time is given; 0 with hold 0.
	for hold, ka := range map[string]time.Duration{"90s": 30 * time.Second, "4": time.Second, "3": time.Second, "0": 0, "65535": 21845 * time.Second} {
		c := mustParse(t, CGW, "bgp: {hold_time: "+hold+"}\n"+minimal("    inside_cidr: 169.254.100.0/30\n"))
		if c.BGP.Keepalive != ka {
			t.Errorf("hold_time %s: keepalive %v, want %v", hold, c.BGP.Keepalive, ka)
		}
	}
	// A 32-bit ASN on the cgw side up to 2147483647; the cgw may peer with any ASN.
	c = mustParse(t, CGW, "bgp: {asn: 2147483647, peer_asn: 4294967294}\n"+minimal("    inside_cidr: 169.254.100.0/30\n"))
	if c.BGP.ASN != 2147483647 || c.BGP.PeerASN != 4294967294 {
		t.Errorf("cgw asns: %+v", c.BGP)
	}
}

func TestBGPErrors(t *testing.T) {
	in := "    inside_cidr: 169.254.100.0/30\n"
	cases := []struct {
		name    string
		profile Profile
		yml     string
		frags   []string
	}{
		{"vgw asn private only", VGW, "bgp: {asn: 64511}\n" + minimal(in), []string{"test.yaml:1: bgp.asn: 64511 is out of range (allowed: 64512-65534 or 4200000000-4294967294: a private ASN"}},
		{"vgw asn = default peer", VGW, "bgp: {asn: 65000}\n" + minimal(in), []string{"test.yaml:1: bgp.asn: the default peer_asn 65000 equals asn"}},
		{"vgw asn 65535", VGW, "bgp: {asn: 65535}\n" + minimal(in), []string{"bgp.asn: 65535 is out of range"}},
		{"vgw asn 4294967295", VGW, "bgp: {asn: 4294967295}\n" + minimal(in), []string{"bgp.asn: 4294967295 is out of range"}},
		{"vgw peer 32-bit private", VGW, "bgp: {peer_asn: 4200000000}\n" + minimal(in), []string{"bgp.peer_asn: 4200000000 is out of range (allowed: 1-2147483647: the customer gateway's ASN"}},
		{"cgw asn 32-bit private", CGW, "bgp: {asn: 4200000000}\n" + minimal(in), []string{"bgp.asn: 4200000000 is out of range (allowed: 1-2147483647"}},
		{"cgw asn 0", CGW, "bgp: {asn: 0}\n" + minimal(in), []string{"bgp.asn: 0 is out of range"}},
		{"asn not int", CGW, "bgp: {asn: AS65000}\n" + minimal(in), []string{`bgp.asn: expected an AS number (an integer), got "AS65000"`}},
		{"same asn", VGW, "bgp: {asn: 65000, peer_asn: 65000}\n" + minimal(in), []string{"test.yaml:1: bgp.peer_asn: peer_asn 65000 equals asn"}},
		{"same asn cgw", CGW, "bgp: {asn: 64512}\n" + minimal(in), []string{"test.yaml:1: bgp.asn: the default peer_asn 64512 equals asn"}},
		{"same asn explicit", CGW, "bgp: {asn: 65001, peer_asn: 65001}\n" + minimal(in), []string{"bgp.peer_asn: peer_asn 65001 equals asn"}},
		{"tunnel peer = asn", VGW, minimal(in + "    bgp: {peer_asn: 64512}\n"), []string{"test.yaml:7: tunnels[0].bgp.peer_asn: 64512 is our own bgp.asn"}},
		{"tunnel peer = asn cgw", CGW, minimal(in + "    bgp: {peer_asn: 65000}\n"), []string{"tunnels[0].bgp.peer_asn: 65000 is our own bgp.asn"}},
		{"router id v6", VGW, "bgp: {router_id: '2001:db8::1'}\n" + minimal(in), []string{`bgp.router_id: "2001:db8::1" is not an IPv4 address`}},
		{"router id bad", VGW, "bgp: {router_id: 1.2.3}\n" + minimal(in), []string{"bgp.router_id"}},
		{"hold 2", VGW, "bgp: {hold_time: 2}\n" + minimal(in), []string{"bgp.hold_time: 2 s is out of range (allowed: 0 or 3 s to 65535 s)"}},
		{"hold high", VGW, "bgp: {hold_time: 65536}\n" + minimal(in), []string{"bgp.hold_time: 65536 s is out of range"}},
		{"hold fraction", VGW, "bgp: {hold_time: 3.5s}\n" + minimal(in), []string{"bgp.hold_time: 3.5s is not a whole number of seconds"}},
		{"keepalive >= hold", VGW, "bgp: {hold_time: 30, keepalive: 30}\n" + minimal(in), []string{"bgp.keepalive: 30 s must be positive and less than hold_time (30 s)"}},
		{"keepalive vs default hold", VGW, "bgp: {keepalive: 40s}\n" + minimal(in), []string{"less than hold_time (30 s)"}},
		{"keepalive 0", VGW, "bgp: {keepalive: 0}\n" + minimal(in), []string{"bgp.keepalive: 0 s must be positive"}},
		{"keepalive without hold", VGW, "bgp: {hold_time: 0, keepalive: 10}\n" + minimal(in), []string{"bgp.keepalive: must be 0 with hold_time 0"}},
		{"connect retry 0", VGW, "bgp: {connect_retry: 0}\n" + minimal(in), []string{"bgp.connect_retry: 0 s is out of range (allowed: 1 s to 65535 s)"}},
		{"port", VGW, "bgp: {port: 0}\n" + minimal(in), []string{"bgp.port: 0 is out of range (allowed: 1-65535)"}},
		{"advertise host bits", VGW, "bgp: {advertise: [172.31.0.1/16]}\n" + minimal(in), []string{"bgp.advertise: 172.31.0.1/16 has host bits set (did you mean 172.31.0.0/16?)"}},
		{"advertise twice", VGW, "bgp: {advertise: [172.31.0.0/16, 172.31.0.0/16]}\n" + minimal(in), []string{"bgp.advertise: 172.31.0.0/16 is listed twice"}},
		{"advertise junk", VGW, "bgp: {advertise: [vpc]}\n" + minimal(in), []string{`bgp.advertise: "vpc" is not a CIDR prefix`}},
		{"unknown bgp key", VGW, "bgp: {holdtime: 30}\n" + minimal(in), []string{"bgp.holdtime: unknown field"}},
		{"bgp mode without inside", VGW, "routing: {mode: bgp}\n" + minimal(""), []string{"test.yaml:1: routing.mode: bgp needs at least one tunnel with an inside_cidr"}},
		{"mode", VGW, "routing: {mode: dynamic}\n" + minimal(""), []string{`routing.mode: "dynamic" is not allowed (allowed: bgp, static)`}},
		{"route limit 0", VGW, "routing: {route_limit: 0}\n" + minimal(""), []string{"routing.route_limit: 0 is out of range (allowed: 1-10000)"}},
		{"route limit high", CGW, "routing: {route_limit: 10001}\n" + minimal(""), []string{"routing.route_limit: 10001 is out of range"}},
		{"ecmp bool", CGW, "routing: {ecmp: yes please}\n" + minimal(""), []string{"routing.ecmp: expected true or false"}},
		{"tunnel bgp without inside", VGW, two("", in, "    bgp: {med: 10}\n"), []string{"test.yaml:11: tunnels[1].bgp: needs inside_cidr"}},
		{"tunnel bgp without inside cgw", CGW, two("", in, "    bgp: {med: 10}\n"), []string{"tunnels[1].bgp: needs inside_cidr"}},
		{"med range", VGW, minimal(in + "    bgp: {med: 4294967296}\n"), []string{"tunnels[0].bgp.med: 4294967296 is out of range (allowed: 0-4294967295)"}},
		{"med negative", VGW, minimal(in + "    bgp: {med: -1}\n"), []string{"tunnels[0].bgp.med: -1 is out of range"}},
		{"prepend range", VGW, minimal(in + "    bgp: {as_path_prepend: 11}\n"), []string{"tunnels[0].bgp.as_path_prepend: 11 is out of range (allowed: 0-10)"}},
		{"tunnel bgp unknown", VGW, minimal(in + "    bgp: {asn: 1}\n"), []string{"tunnels[0].bgp.asn: unknown field (known: peer_asn, med, as_path_prepend)"}},
		{"connection chars", VGW, minimal("    connection: vpn 1\n"), []string{`test.yaml:6: tunnels[0].connection: "vpn 1": use 1-64 characters`}},
		{"connection long", VGW, minimal("    connection: " + strings.Repeat("v", 65) + "\n"), []string{"tunnels[0].connection:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.profile, tc.yml, tc.frags...) })
	}
}

func TestRoutingWarnings(t *testing.T) {
	// bgp in static mode: ignored, with a warning (both levels).
	c := mustParse(t, VGW, "routing: {mode: static}\nbgp: {asn: 64513}\n"+minimal("    inside_cidr: 169.254.100.0/30\n    bgp: {med: 5}\n"))
	wantWarn(t, c, "test.yaml:2: bgp: ignored: routing.mode is static", "tunnels[0].bgp: ignored: routing.mode is static")
	if c.BGP != nil || c.Tunnels[0].MED != 0 || c.Tunnels[0].PeerASN != 0 {
		t.Errorf("static mode kept BGP settings: %+v %+v", c.BGP, c.Tunnels[0])
	}
	// A VGW tunnel without inside CIDR in bgp mode has no BGP session.
	c = mustParse(t, VGW, two("", "    inside_cidr: 169.254.100.0/30\n", ""))
	wantWarn(t, c, "tunnels[1]: no inside_cidr in bgp mode")
	if c.Tunnels[1].PeerASN != 0 || c.Tunnels[0].PeerASN != 65000 {
		t.Errorf("peer ASNs: %+v", c.Tunnels)
	}
	// route_limit above AWS's on the vgw.
	c = mustParse(t, VGW, "routing: {route_limit: 500}\n"+minimal(""))
	wantWarn(t, c, "routing.route_limit: AWS accepts at most 100 routes from a customer gateway")
	if c := mustParse(t, CGW, "routing: {route_limit: 500}\n"+minimal("")); len(c.Warnings) != 0 || c.Routing.RouteLimit != 500 {
		t.Errorf("cgw route_limit: %v %d", c.Warnings, c.Routing.RouteLimit)
	}
	// A cgw advertising more than a VGW accepts.
	var adv []string
	for i := 0; i < 101; i++ {
		adv = append(adv, fmt.Sprintf("10.%d.0.0/16", i))
	}
	c = mustParse(t, CGW, "bgp: {advertise: ["+strings.Join(adv, ", ")+"]}\n"+minimal("    inside_cidr: 169.254.100.0/30\n"))
	wantWarn(t, c, "bgp.advertise: 101 prefixes: an AWS virtual private gateway accepts at most 100 routes")
}

func TestStaticRoutes(t *testing.T) {
	routes := "    static_routes: [10.10.0.0/16, 192.168.1.0/24, 192.168.7.7]\n"
	c := mustParse(t, VGW, two("", "    connection: vpn-1\n"+routes, "    connection: vpn-1\n"+routes))
	want := []netip.Prefix{pfx("10.10.0.0/16"), pfx("192.168.1.0/24"), pfx("192.168.7.7/32")}
	if c.Routing.Mode != RoutingStatic || !reflect.DeepEqual(c.Tunnels[0].StaticRoutes, want) || !reflect.DeepEqual(c.Tunnels[1].StaticRoutes, want) {
		t.Errorf("static routes: %+v %+v", c.Routing, c.Tunnels)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	// A prefix on one tunnel of a connection only.
	c = mustParse(t, VGW, two("", "    connection: vpn-1\n"+routes, "    connection: vpn-1\n    static_routes: [10.10.0.0/16]\n"))
	wantWarn(t, c, "tunnels[1].static_routes: differs from tunnels[0].static_routes: AWS applies a connection's static routes to both of its tunnels")

	// BGP mode: error on the vgw (AWS), warning on the cgw (kept).
	bgpRoutes := two("", "    inside_cidr: 169.254.100.0/30\n"+routes, "")
	wantErr(t, VGW, bgpRoutes, "test.yaml:7: tunnels[0].static_routes: not allowed with routing.mode bgp (AWS:")
	c = mustParse(t, CGW, bgpRoutes)
	wantWarn(t, c, "tunnels[0].static_routes: with routing.mode bgp an AWS virtual private gateway takes no static routes")
	if !reflect.DeepEqual(c.Tunnels[0].StaticRoutes, want) {
		t.Errorf("cgw bgp-mode static routes: %v", c.Tunnels[0].StaticRoutes)
	}

	wantErr(t, VGW, minimal("    static_routes: [10.0.0.0/8, 10.0.0.0/8]\n"), "tunnels[0].static_routes: 10.0.0.0/8 is listed twice")
	wantErr(t, CGW, minimal("    static_routes: [10.0.0.1/8]\n"), "tunnels[0].static_routes: 10.0.0.1/8 has host bits set")
	wantErr(t, CGW, minimal("    static_routes: [{a: b}]\n"), "tunnels[0].static_routes: expected a list of values")

	// At most 100 per connection on the vgw: 60 + 60 distinct over two
	// tunnels is 120; the same 100 on both is fine.
	list := func(from, n int) string {
		var s []string
		for i := from; i < from+n; i++ {
			s = append(s, fmt.Sprintf("10.%d.%d.0/24", i/256, i%256))
		}
		return "    static_routes: [" + strings.Join(s, ", ") + "]\n"
	}
	wantErr(t, VGW, two("", "    connection: c\n"+list(0, 60), "    connection: c\n"+list(60, 60)),
		`tunnels[1].static_routes: connection "c" has 120 static routes (AWS: at most 100 static routes per VPN connection)`)
	wantErr(t, VGW, minimal(list(0, 101)), "tunnels[0].static_routes: this tunnel has 101 static routes")
	mustParse(t, VGW, two("", "    connection: c\n"+list(0, 100), "    connection: c\n"+list(0, 100)))
	// Two connections of 100 each are fine; the cgw has no limit.
	mustParse(t, VGW, two("", "    connection: c1\n"+list(0, 100), "    connection: c2\n"+list(100, 100)))
	mustParse(t, CGW, minimal(list(0, 300)))
}

func TestConnections(t *testing.T) {
	c := mustParse(t, VGW, two("", "    connection: vpn-a\n", "    connection: vpn-a\n"))
	if len(c.Warnings) != 0 || c.Tunnels[0].Connection != "vpn-a" || c.Tunnels[1].Connection != "vpn-a" {
		t.Errorf("two tunnels: %v %+v", c.Warnings, c.Tunnels)
	}
	c = mustParse(t, VGW, two("", "    connection: vpn-a\n", "    connection: vpn-b\n"))
	wantWarn(t, c, `test.yaml:6: tunnels[0].connection: connection "vpn-a" has 1 tunnel(s): an AWS VPN connection has exactly two`,
		`tunnels[1].connection: connection "vpn-b" has 1 tunnel(s)`)
	three := two("", "    connection: x\n", "    connection: x\n") +
		"  - name: tunnel3\n    local_address: 203.0.113.30\n    remote_address: 198.51.100.3\n    psk_env: VPNLAB_TEST_PSK\n    connection: x\n"
	c = mustParse(t, VGW, three)
	wantWarn(t, c, `connection "x" has 3 tunnel(s)`, "tunnels[2].connection: remote_address 198.51.100.3 differs from 198.51.100.2 of tunnels[0]")
	// No connection: no warning; the cgw never warns.
	if c := mustParse(t, VGW, two("", "", "")); len(c.Warnings) != 0 {
		t.Errorf("no connection: %v", c.Warnings)
	}
	if c := mustParse(t, CGW, three); len(c.Warnings) != 0 {
		t.Errorf("cgw: %v", c.Warnings)
	}
}

func TestDPDDelayAndNATKeepalive(t *testing.T) {
	c := mustParse(t, CGW, minimal("    dpd: {delay: 2s, timeout: 15s}\n    nat_keepalive: 5s\n"))
	if tc := c.IKE.Tunnels[0]; tc.DPDDelay != 2*time.Second || tc.DPDTimeout != 15*time.Second || tc.NATKeepalive != 5*time.Second {
		t.Errorf("cgw: %v %v %v", tc.DPDDelay, tc.DPDTimeout, tc.NATKeepalive)
	}
	for _, v := range []string{"off", "OFF", "0", "0s"} {
		c := mustParse(t, VGW, minimal("    nat_keepalive: "+v+"\n"))
		if c.IKE.Tunnels[0].NATKeepalive >= 0 {
			t.Errorf("nat_keepalive %s: %v, want negative (off)", v, c.IKE.Tunnels[0].NATKeepalive)
		}
		if !strings.Contains(c.Describe(), "nat_keepalive=off") {
			t.Errorf("Describe: %s", c.Describe())
		}
	}
	// Lab timers: a timeout under 30 s takes a third of it as delay.
	for timeout, delay := range map[string]time.Duration{"3s": time.Second, "15s": 5 * time.Second, "30s": 10 * time.Second, "1h": 10 * time.Second} {
		c = mustParse(t, VGW, "lab_timers: true\n"+minimal("    dpd: {timeout: "+timeout+"}\n"))
		if d := c.IKE.Tunnels[0].DPDDelay; d != delay {
			t.Errorf("lab timeout %s: delay %v, want %v", timeout, d, delay)
		}
	}
	c = mustParse(t, CGW, minimal("    dpd: {timeout: 12s}\n"))
	if d := c.IKE.Tunnels[0].DPDDelay; d != 4*time.Second {
		t.Errorf("cgw timeout 12s: delay %v", d)
	}
	c = mustParse(t, VGW, "lab_timers: true\n"+minimal("    dpd: {delay: 1s, timeout: 3s}\n"))
	if d := c.IKE.Tunnels[0].DPDDelay; d != time.Second || len(c.Warnings) != 0 {
		t.Errorf("lab explicit delay: %v %v", d, c.Warnings)
	}
	// AWS's delay is 10 s: another value is a warning on the vgw.
	c = mustParse(t, VGW, minimal("    dpd: {delay: 5s}\n"))
	wantWarn(t, c, "tunnels[0].dpd.delay: AWS sends R-U-THERE after 10 s without traffic")
	// Action none with timeout 0: the delay is not checked against it.
	c = mustParse(t, CGW, minimal("    dpd: {timeout: 0, action: none}\n"))
	if tc := c.IKE.Tunnels[0]; tc.DPDDelay != 10*time.Second || tc.DPDAction != policy.DPDNone {
		t.Errorf("dpd none: %+v", tc)
	}

	wantErr(t, VGW, minimal("    dpd: {delay: 40s}\n"), "test.yaml:6: tunnels[0].dpd.delay: 40s must be less than dpd.timeout (40s)")
	wantErr(t, CGW, minimal("    dpd: {delay: 20s, timeout: 15s}\n"), "dpd.delay: 20s must be less than dpd.timeout (15s)")
	wantErr(t, CGW, minimal("    dpd: {delay: 0}\n"), "dpd.delay: must be positive")
	wantErr(t, CGW, minimal("    dpd: {delay: soon}\n"), "dpd.delay: expected a duration")
	wantErr(t, CGW, minimal("    nat_keepalive: sometimes\n"), "test.yaml:6: tunnels[0].nat_keepalive: expected a duration")
	wantErr(t, CGW, minimal("    nat_keepalive: -5s\n"), "nat_keepalive: -5s is negative")
}

func TestDescribeRouting(t *testing.T) {
	c := mustParse(t, VGW, two("bgp: {advertise: [172.31.0.0/16]}\n",
		"    connection: vpn-1\n    inside_cidr: 169.254.10.0/30\n    bgp: {med: 100}\n",
		"    connection: vpn-1\n    inside_cidr: 169.254.11.0/30\n    bgp: {as_path_prepend: 2}\n"))
	d := c.Describe()
	for _, f := range []string{
		"routing=bgp ecmp=false route_limit=100 bgp_asn=64512 bgp_peer_asn=65000 router_id=169.254.10.1 hold_time=30s keepalive=10s connect_retry=3s passive=true bgp_port=179 advertise=[172.31.0.0/16]",
		"dpd_delay=10s dpd_timeout=40s", "nat_keepalive=20s",
		"connection=vpn-1 inside=169.254.10.0/30 local_inside=169.254.10.1/30 peer_inside=169.254.10.2 bgp_peer_asn=65000 med=100 as_path_prepend=0",
		"inside=169.254.11.0/30 local_inside=169.254.11.1/30 peer_inside=169.254.11.2 bgp_peer_asn=65000 med=0 as_path_prepend=2",
	} {
		if !strings.Contains(d, f) {
			t.Errorf("Describe lacks %q:\n%s", f, d)
		}
	}
	if strings.Contains(d, "\n") {
		t.Error("Describe is not one line")
	}
	s := c.Summary()
	for _, f := range []string{
		"routing:            mode bgp, ecmp false, route_limit 100",
		"bgp:                asn 64512, peer_asn 65000, router_id 169.254.10.1, port 179",
		"  timers:           hold_time 30s, keepalive 10s, connect_retry 3s, passive true",
		"  advertise:        172.31.0.0/16",
		"  connection:       vpn-1",
		"  inside:           169.254.10.0/30 (local 169.254.10.1/30, peer 169.254.10.2)",
		"  bgp neighbor:     169.254.11.2 asn 65000, med 0, as_path_prepend 2",
		"  dpd:              delay 10s, timeout 40s, action clear",
		"  nat_traversal:    true (force_encap false, nat_keepalive 20s)",
	} {
		if !strings.Contains(s, f) {
			t.Errorf("Summary lacks %q:\n%s", f, s)
		}
	}
	c = mustParse(t, CGW, minimal("    static_routes: [10.0.0.0/8]\n"))
	if d := c.Describe(); !strings.Contains(d, "routing=static ecmp=false route_limit=100 tunnels") && !strings.Contains(d, "static_routes=[10.0.0.0/8]") {
		t.Errorf("static Describe: %s", d)
	}
	if s := c.Summary(); !strings.Contains(s, "  static_routes:    10.0.0.0/8") || strings.Contains(s, "bgp:") {
		t.Errorf("static Summary: %s", s)
	}
}

// manyTunnels returns a vgw configuration of n connections (2n tunnels):
// each connection has its own customer gateway address, each tunnel its own
// AWS outside address and inside /30, keys from psk_env.
func manyTunnels(n int) string {
	var b strings.Builder
	b.WriteString("bgp:\n  advertise: [172.31.0.0/16]\ntunnels:\n")
	for i := 0; i < n; i++ {
		cgw := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		for j := 0; j < 2; j++ {
			k := 2*i + j
			local := netip.AddrFrom4([4]byte{100, 64, byte(k >> 8), byte(k)})
			inside := netip.AddrFrom4([4]byte{169, 254, byte(8 + k/64), byte(k % 64 * 4)})
			fmt.Fprintf(&b, "  - name: vpn%d-t%d\n    connection: vpn-%d\n    local_address: %s\n    remote_address: %s\n    psk_env: VPNLAB_TEST_PSK\n    inside_cidr: %s/30\n",
				i, j+1, i, local, cgw, inside)
		}
	}
	return b.String()
}

func TestManyConnections(t *testing.T) {
	yml := manyTunnels(1000)
	start := time.Now()
	c := mustParse(t, VGW, yml)
	took := time.Since(start)
	t.Logf("2000 tunnels loaded in %v", took)
	if len(c.IKE.Tunnels) != 2000 || len(c.Tunnels) != 2000 || len(c.Warnings) != 0 {
		t.Fatalf("%d tunnels, %d extras, warnings %v", len(c.IKE.Tunnels), len(c.Tunnels), c.Warnings)
	}
	for i := range c.Tunnels {
		if c.Tunnels[i].Name != c.IKE.Tunnels[i].Name || c.Tunnels[i].PeerASN != 65000 || !c.Tunnels[i].Inside.IsValid() {
			t.Fatalf("tunnel %d: %+v", i, c.Tunnels[i])
		}
	}
	if last := c.Tunnels[1999]; last.Connection != "vpn-999" || last.Inside != pfx("169.254.39.60/30") {
		t.Errorf("last: %+v", last)
	}
	if took > 10*time.Second {
		t.Errorf("loading 2000 tunnels took %v", took)
	}
	// A duplicate inside CIDR and a duplicate peer at the end are found.
	dup := yml + "  - name: extra\n    connection: vpn-0\n    local_address: 100.64.0.0\n    remote_address: 198.18.0.0\n    psk_env: VPNLAB_TEST_PSK\n    inside_cidr: 169.254.8.0/30\n"
	wantErr(t, VGW, dup, "tunnels[2000].inside_cidr: 169.254.8.0/30 is already used by tunnels[0]", "tunnels[2000]: local_address 100.64.0.0 and remote_address 198.18.0.0 are already used")
}

func BenchmarkParse2000Tunnels(b *testing.B) {
	yml := []byte(manyTunnels(1000))
	b.Setenv("VPNLAB_TEST_PSK", testPSK)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(yml, VGW, "bench.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}
