package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/routes"
)

var (
	vpcCIDR  = netip.MustParsePrefix("10.0.0.0/16")
	siteNet1 = netip.MustParsePrefix("192.168.1.0/24")
	siteNet2 = netip.MustParsePrefix("192.168.2.0/24")
	siteNet3 = netip.MustParsePrefix("192.168.3.0/24")
	siteNet4 = netip.MustParsePrefix("192.168.4.0/24")
)

// vgwAndCgw returns a vgw (ASN 64512) and a cgw (ASN 65000) side linked by
// the given tunnels, both listening on one port.
func vgwAndCgw(t *testing.T, tunnels ...string) (vgw, cgw *side) {
	port := freePort(t, nextAddr(t))
	vgw = newSide(t, "vgw", 64512, port)
	cgw = newSide(t, "cgw", 65000, port)
	for _, tun := range tunnels {
		link(t, vgw, cgw, tun)
	}
	vgw.cfg.Advertise = []netip.Prefix{vpcCIDR}
	cgw.cfg.Advertise = []netip.Prefix{siteNet1}
	return vgw, cgw
}

// TestExchange: one session comes up, routes flow both ways with the right
// AS_PATH, additions and withdrawals propagate, the status reports the
// session, and stopping a speaker withdraws what it taught its peer.
func TestExchange(t *testing.T) {
	needServers(t)
	t.Parallel()
	vgwSide, cgwSide := vgwAndCgw(t, "tunnel1")
	vgw, vgwRec := vgwSide.start(t)
	cgw, cgwRec := cgwSide.start(t)
	waitEstablished(t, vgw, "tunnel1")
	waitEstablished(t, cgw, "tunnel1")

	r := waitRoute(t, vgw, siteNet1, 1, "tunnel1")
	if p := r.Paths[0]; !slices.Equal(p.ASPath, []uint32{65000}) || p.Source != routes.BGP || p.Learned.IsZero() {
		t.Errorf("vgw's path: %+v", p)
	}
	wantReason(t, r, "only path")
	r = waitRoute(t, cgw, vpcCIDR, 1, "tunnel1")
	if p := r.Paths[0]; !slices.Equal(p.ASPath, []uint32{64512}) {
		t.Errorf("cgw's path: %+v", p)
	}

	if err := cgw.Advertise(siteNet2); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, vgw, siteNet2, 1, "tunnel1")
	if err := cgw.Withdraw(siteNet1); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, vgw, siteNet1, 0)
	if c := vgwRec.find(func(c routes.Change) bool {
		return c.Kind == routes.Removed && c.Prefix == siteNet1 && slices.Equal(c.From, []string{"tunnel1"})
	}); c == nil {
		t.Error("vgw reported no Removed change for the withdrawn prefix")
	}

	// Status: AWS-like telemetry per neighbor.
	eventually(t, sessionTimeout, "status", func() string {
		ns := neighborStatus(vgw, "tunnel1")
		switch {
		case ns.State != Established || ns.AdminState != "up":
			return "state " + string(ns.State) + " " + ns.AdminState
		case ns.AcceptedRouteCount != 1 || !slices.Equal(ns.Received, []netip.Prefix{siteNet2}):
			return fmt.Sprintf("accepted %d, received %v", ns.AcceptedRouteCount, ns.Received)
		case !slices.Equal(ns.Advertised, []netip.Prefix{vpcCIDR}):
			return fmt.Sprintf("advertised %v", ns.Advertised)
		case ns.UpSince.IsZero() || ns.Uptime == "" || ns.LastChange.IsZero():
			return "no uptime"
		}
		return ""
	})
	st := vgw.Status()
	if st.ASN != 64512 || !slices.Equal(st.Originated, []netip.Prefix{vpcCIDR}) || len(st.Routes) != 1 || len(st.Changes) == 0 {
		t.Errorf("vgw status: %+v", st)
	}
	// ChangeCounts is the total of every change so far, by kind.
	var removed uint64
	for _, c := range st.Changes {
		if c.Kind == routes.Removed {
			removed++
		}
	}
	if st.ChangeCounts[routes.Removed] != removed || removed == 0 || st.ChangeCounts[routes.Installed] == 0 {
		t.Errorf("change counts %v, %d removed changes in Changes", st.ChangeCounts, removed)
	}

	// Stopping the cgw closes the session cleanly: the vgw withdraws at
	// once (no hold timer), and the cgw reports its own routes gone.
	cgw.Stop()
	waitRoute(t, vgw, siteNet2, 0)
	waitState(t, vgw, "tunnel1", func(s SessionState) bool { return s != Established }, "down")
	if c := cgwRec.find(func(c routes.Change) bool { return c.Kind == routes.Removed && c.Prefix == vpcCIDR }); c == nil {
		t.Error("cgw reported no Removed change when stopping")
	}
	if e := vgwRec.findSession(func(e SessionEvent) bool { return e.From == Established && e.Tunnel == "tunnel1" }); e == nil || e.LimitExceeded {
		t.Errorf("vgw session event: %+v", e)
	}
	if err := cgw.Advertise(siteNet3); err != ErrStopped {
		t.Errorf("Advertise after Stop: %v", err)
	}
}

// TestTunnelPreference: two tunnels between one vgw and one cgw carry the
// same prefix. The vgw picks tunnel1 by tie-break; prepending on the cgw's
// tunnel1 moves it to tunnel2; MED moves it back; a static route beats BGP;
// the vgw's own MED steers the cgw; disabling a session withdraws its paths.
func TestTunnelPreference(t *testing.T) {
	needServers(t)
	t.Parallel()
	vgwSide, cgwSide := vgwAndCgw(t, "tunnel1", "tunnel2")
	vgw, vgwRec := vgwSide.start(t)
	cgw, _ := cgwSide.start(t)
	waitEstablished(t, vgw, "tunnel1", "tunnel2")

	r := waitRoute(t, vgw, siteNet1, 1, "tunnel1", "tunnel2")
	wantReason(t, r, "tunnel order tie-break")

	// AS_PATH prepending on the cgw's tunnel1.
	if err := cgw.SetNeighborPolicy("tunnel1", 0, 2); err != nil {
		t.Fatal(err)
	}
	r = waitRoute(t, vgw, siteNet1, 1, "tunnel2", "tunnel1")
	wantReason(t, r, "shorter AS_PATH (1 < 3)")
	if p := r.Paths[1]; !slices.Equal(p.ASPath, []uint32{65000, 65000, 65000}) {
		t.Errorf("prepended path: %v", p.ASPath)
	}
	if c := vgwRec.find(func(c routes.Change) bool {
		return c.Kind == routes.BestMoved && c.Prefix == siteNet1 &&
			slices.Equal(c.From, []string{"tunnel1"}) && slices.Equal(c.To, []string{"tunnel2"})
	}); c == nil || c.Time.IsZero() {
		t.Errorf("no BestMoved tunnel1 -> tunnel2 change: %+v", c)
	}

	// MED, equal AS_PATHs: lower wins, and changing it moves the route.
	if err := cgw.SetNeighborPolicy("tunnel1", 50, 0); err != nil {
		t.Fatal(err)
	}
	if err := cgw.SetNeighborPolicy("tunnel2", 10, 0); err != nil {
		t.Fatal(err)
	}
	r = waitRoute(t, vgw, siteNet1, 1, "tunnel2", "tunnel1")
	eventually(t, sessionTimeout, "MED reason", func() string {
		r = routeOf(vgw, siteNet1)
		if !strings.Contains(r.Reason, "lower MED (10 < 50)") {
			return r.Reason
		}
		return ""
	})
	if err := cgw.SetNeighborPolicy("tunnel2", 100, 0); err != nil {
		t.Fatal(err)
	}
	r = waitRoute(t, vgw, siteNet1, 1, "tunnel1", "tunnel2")
	wantReason(t, r, "lower MED (50 < 100)")

	// The AWS side sets a higher MED on tunnel1 (as during endpoint
	// maintenance): the cgw moves to tunnel2.
	waitRoute(t, cgw, vpcCIDR, 1, "tunnel1", "tunnel2")
	if err := vgw.SetNeighborPolicy("tunnel1", 200, 0); err != nil {
		t.Fatal(err)
	}
	r = waitRoute(t, cgw, vpcCIDR, 1, "tunnel2", "tunnel1")
	wantReason(t, r, "lower MED (0 < 200)")

	// A static route beats BGP for the same prefix.
	if err := vgw.AddStatic(siteNet1, "tunnel2"); err != nil {
		t.Fatal(err)
	}
	r = waitRoute(t, vgw, siteNet1, 1, "tunnel2", "tunnel1")
	wantReason(t, r, "static route preferred over BGP")
	if err := vgw.RemoveStatic(siteNet1); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, vgw, siteNet1, 1, "tunnel1", "tunnel2")

	// The cgw closes tunnel1's session (Cease): the vgw withdraws tunnel1's
	// paths and the best moves to tunnel2, without waiting for hold timers.
	if err := cgw.DisableNeighbor("tunnel1", "test"); err != nil {
		t.Fatal(err)
	}
	r = waitRoute(t, vgw, siteNet1, 1, "tunnel2")
	waitRoute(t, cgw, vpcCIDR, 1, "tunnel2")
	if ns := neighborStatus(vgw, "tunnel1"); ns.AcceptedRouteCount != 0 || ns.Flaps != 1 {
		t.Errorf("vgw tunnel1 after shutdown: %+v", ns)
	}
	if ns := neighborStatus(cgw, "tunnel1"); ns.AdminState != "down" {
		t.Errorf("cgw tunnel1 admin state %q", ns.AdminState)
	}
}

// TestECMP: in Transit Gateway mode both tunnels carry the prefix.
func TestECMP(t *testing.T) {
	needServers(t)
	t.Parallel()
	vgwSide, cgwSide := vgwAndCgw(t, "tunnel1", "tunnel2")
	vgwSide.cfg.ECMP = true
	vgw, _ := vgwSide.start(t)
	cgwSide.start(t)
	r := waitRoute(t, vgw, siteNet1, 2, "tunnel1", "tunnel2")
	if !r.ECMP {
		t.Errorf("ECMP not set: %+v", r)
	}
	wantReason(t, r, "ECMP over 2 tunnels")
	if !vgw.Status().ECMP {
		t.Error("status does not say ECMP")
	}
}

// TestRouteLimit: a cgw that sends more prefixes than the vgw's limit has
// its session reset; its routes are withdrawn and the event is reported;
// the session comes back after LimitRestart once the cgw sends fewer.
func TestRouteLimit(t *testing.T) {
	needServers(t)
	t.Parallel()
	vgwSide, cgwSide := vgwAndCgw(t, "tunnel1")
	vgwSide.cfg.RouteLimit = 3
	vgwSide.cfg.LimitRestart = time.Second
	cgwSide.cfg.Advertise = []netip.Prefix{siteNet1, siteNet2, siteNet3}
	vgw, vgwRec := vgwSide.start(t)
	cgw, _ := cgwSide.start(t)
	waitRoute(t, vgw, siteNet3, 1, "tunnel1")
	if n := neighborStatus(vgw, "tunnel1").AcceptedRouteCount; n != 3 {
		t.Fatalf("accepted %d, want 3", n)
	}

	if err := cgw.Advertise(siteNet4); err != nil {
		t.Fatal(err)
	}
	var limit *routes.Change
	eventually(t, sessionTimeout, "limit event", func() string {
		limit = vgwRec.find(func(c routes.Change) bool { return c.Kind == routes.LimitExceeded })
		if limit == nil {
			return "none"
		}
		return ""
	})
	if limit.Tunnel != "tunnel1" || !strings.Contains(limit.Reason, "Maximum Number of Prefixes Reached") {
		t.Errorf("limit change: %v", limit)
	}
	if e := vgwRec.findSession(func(e SessionEvent) bool { return e.LimitExceeded }); e == nil || e.Tunnel != "tunnel1" || e.From != Established {
		t.Errorf("session event: %+v", e)
	}
	for _, p := range []netip.Prefix{siteNet1, siteNet2, siteNet3, siteNet4} {
		if r := routeOf(vgw, p); r != nil {
			t.Errorf("%v still routed over %v after the reset", p, r.Tunnels)
		}
	}
	if ns := neighborStatus(vgw, "tunnel1"); ns.LimitExceeded != 1 || ns.State == Established {
		t.Errorf("neighbor after the limit: %+v", ns)
	}

	// Back under the limit, the session returns.
	if err := cgw.Withdraw(siteNet4); err != nil {
		t.Fatal(err)
	}
	waitEstablished(t, vgw, "tunnel1")
	waitRoute(t, vgw, siteNet3, 1, "tunnel1")
	eventually(t, sessionTimeout, "3 routes again", func() string {
		if n := neighborStatus(vgw, "tunnel1").AcceptedRouteCount; n != 3 {
			return fmt.Sprintf("accepted %d", n)
		}
		return ""
	})
}

// TestCloudHub: a vgw with two customer gateways of different ASNs passes
// each site's prefix on to the other (plain eBGP, nothing configured).
func TestCloudHub(t *testing.T) {
	needServers(t)
	t.Parallel()
	port := freePort(t, nextAddr(t))
	hub := newSide(t, "vgw", 64512, port)
	siteA := newSide(t, "cgw-a", 65001, port)
	siteB := newSide(t, "cgw-b", 65002, port)
	link(t, hub, siteA, "vpn-a")
	link(t, hub, siteB, "vpn-b")
	netA := netip.MustParsePrefix("172.16.1.0/24")
	netB := netip.MustParsePrefix("172.16.2.0/24")
	siteA.cfg.Advertise = []netip.Prefix{netA}
	siteB.cfg.Advertise = []netip.Prefix{netB}
	vgw, _ := hub.start(t)
	a, _ := siteA.start(t)
	b, _ := siteB.start(t)

	waitRoute(t, vgw, netA, 1, "vpn-a")
	waitRoute(t, vgw, netB, 1, "vpn-b")
	r := waitRoute(t, a, netB, 1, "vpn-a")
	if got := r.Paths[0].ASPath; !slices.Equal(got, []uint32{64512, 65002}) {
		t.Errorf("cgw A's path to B: AS_PATH %v", got)
	}
	r = waitRoute(t, b, netA, 1, "vpn-b")
	if got := r.Paths[0].ASPath; !slices.Equal(got, []uint32{64512, 65001}) {
		t.Errorf("cgw B's path to A: AS_PATH %v", got)
	}
	// A site's own prefix never comes back to it (AS loop).
	if r := routeOf(a, netA); r != nil {
		t.Errorf("cgw A learned its own prefix: %+v", r)
	}
}

// TestStaticMode: no neighbors, static routes only, no sockets, and no
// ASN (a gateway in static mode has no bgp section).
func TestStaticMode(t *testing.T) {
	s, err := New(Config{ListenPort: 179}, nil, []string{"tunnel1", "tunnel2"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	var got [][]routes.Change
	s.OnChange(func(_ []routes.Route, cs []routes.Change) { got = append(got, cs) })
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.AddStatic(siteNet1, "tunnel2", "tunnel1"); err != nil {
		t.Fatal(err)
	}
	r := routeOf(s, siteNet1)
	if r == nil || !slices.Equal(r.Tunnels, []string{"tunnel1", "tunnel2"}) {
		t.Fatalf("route: %+v", r)
	}
	if err := s.AddStatic(siteNet2, "tunnel3"); err == nil {
		t.Error("static route over an unknown tunnel accepted")
	}
	if err := s.RemoveStatic(siteNet1, "tunnel1"); err != nil {
		t.Fatal(err)
	}
	if r := routeOf(s, siteNet1); r == nil || !slices.Equal(r.Tunnels, []string{"tunnel2"}) {
		t.Fatalf("after removing tunnel1: %+v", r)
	}
	if err := s.RemoveStatic(siteNet2); err == nil {
		t.Error("removing a missing static route succeeded")
	}
	if len(got) != 2 || got[0][len(got[0])-1].Kind != routes.Installed || got[1][len(got[1])-1].Kind != routes.BestMoved {
		t.Errorf("changes: %v", got)
	}
	if err := s.DisableNeighbor("tunnel1", ""); err == nil {
		t.Error("DisableNeighbor without neighbors succeeded")
	}
	s.Stop()
	if err := s.AddStatic(siteNet1, "tunnel1"); err != ErrStopped {
		t.Errorf("AddStatic after Stop: %v", err)
	}
}

// TestStartFailsCleanly: GoBGP cannot listen (the inside address is on no
// interface, as in a gateway without a data path): Start returns the error
// instead of panicking in the clean-up (Stop before the watch existed).
func TestStartFailsCleanly(t *testing.T) {
	local := netip.MustParseAddr("169.254.77.1") // assigned nowhere
	s, err := New(Config{ASN: 64512, ListenPort: freePort(t, netip.MustParseAddr("127.0.0.1"))},
		[]Neighbor{{Tunnel: "tunnel1", Local: local, Peer: netip.MustParseAddr("169.254.77.2"), PeerASN: 65000}},
		[]string{"tunnel1"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(t.Context())
	if err == nil || !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("Start: %v, want the listen error (cannot assign requested address)", err)
	}
	s.Stop() // a second Stop is harmless
}
