package bgp

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/vpnlab/vpnlab/routes"
)

// TestWire drives one Speaker (a vgw) with two scripted peers and checks
// both what it decides and what it puts on the wire: its AS_PATH and MED per
// neighbor, the NOTIFICATION it sends over the route limit, and the
// withdrawal when a connection just dies. It needs one GoBGP server only, so
// it also runs under the race detector, with Status and Routes read
// concurrently all along.
func TestWire(t *testing.T) {
	t.Parallel()
	a1, a2, f1a, f2a := nextAddr(t), nextAddr(t), nextAddr(t), nextAddr(t)
	port := freePort(t, a1)
	deadPort := freePort(t, f1a) // the Speaker's own dials to the fakes fail
	cfg := Config{
		ASN: 64512, ListenPort: port,
		HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Second,
		RouteLimit: 3, LimitRestart: -1,
		Advertise: []netip.Prefix{vpcCIDR},
		Log:       testLogger(t, "vgw"),
	}
	s, err := New(cfg, []Neighbor{
		{Tunnel: "tunnel1", Local: a1, Peer: f1a, PeerASN: 65000, PeerPort: deadPort},
		{Tunnel: "tunnel2", Local: a2, Peer: f2a, PeerASN: 65000, PeerPort: deadPort},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	rec := &recorder{}
	s.OnChange(func(_ []routes.Route, cs []routes.Change) {
		rec.mu.Lock()
		rec.changes = append(rec.changes, cs...)
		rec.mu.Unlock()
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				_ = s.Status()
				_ = s.Routes()
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })

	f1 := dialFake(t, f1a, a1, port, 65000)
	f2 := dialFake(t, f2a, a2, port, 65000)
	waitEstablished(t, s, "tunnel1", "tunnel2")
	f1.waitUpdate(vpcCIDR, func(a advertised) bool { return slices.Equal(a.asPath, []uint32{64512}) && !a.hasMED })

	f1.announce([]uint32{65000}, -1, siteNet1)
	f2.announce([]uint32{65000}, -1, siteNet1)
	wantReason(t, waitRoute(t, s, siteNet1, 1, "tunnel1", "tunnel2"), "tunnel order tie-break")

	f1.announce([]uint32{65000, 65000, 65000}, -1, siteNet1)
	wantReason(t, waitRoute(t, s, siteNet1, 1, "tunnel2", "tunnel1"), "shorter AS_PATH (1 < 3)")

	f1.announce([]uint32{65000}, 50, siteNet1)
	f2.announce([]uint32{65000}, 100, siteNet1)
	wantReason(t, waitRoute(t, s, siteNet1, 1, "tunnel1", "tunnel2"), "lower MED (50 < 100)")

	// Our MED and prepending towards tunnel2's neighbor, as sent.
	if err := s.SetNeighborPolicy("tunnel2", 77, 2); err != nil {
		t.Fatal(err)
	}
	f2.waitUpdate(vpcCIDR, func(a advertised) bool {
		return slices.Equal(a.asPath, []uint32{64512, 64512, 64512}) && a.hasMED && a.med == 77
	})
	if ns := neighborStatus(s, "tunnel2"); ns.MED != 77 || ns.Prepend != 2 {
		t.Errorf("status after SetNeighborPolicy: med %d prepend %d", ns.MED, ns.Prepend)
	}

	// The status API's JSON.
	b, err := json.Marshal(s.Status())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"state":"Established"`, `"accepted_route_count":1`, `"kind":"best-moved"`, `"source":"bgp"`, `"advertised":["10.0.0.0/16"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("status JSON lacks %s: %s", want, b)
		}
	}

	f1.withdraw(siteNet1)
	waitRoute(t, s, siteNet1, 1, "tunnel2")

	// Route limit 3: the fourth prefix resets the session with Cease /
	// Maximum Number of Prefixes Reached.
	extra := netip.MustParsePrefix("172.16.0.0/24")
	for _, p := range []netip.Prefix{siteNet2, siteNet3, siteNet4} {
		f1.announce([]uint32{65000}, -1, p)
	}
	waitRoute(t, s, siteNet4, 1, "tunnel1")
	if n := neighborStatus(s, "tunnel1").AcceptedRouteCount; n != 3 {
		t.Errorf("accepted %d, want 3", n)
	}
	f1.announce([]uint32{65000}, -1, extra)
	n := f1.waitNotification()
	if n.ErrorCode != bgp.BGP_ERROR_CEASE || n.ErrorSubcode != bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED {
		t.Errorf("NOTIFICATION %d/%d, want 6/1", n.ErrorCode, n.ErrorSubcode)
	}
	for _, p := range []netip.Prefix{siteNet2, siteNet3, siteNet4, extra} {
		waitRoute(t, s, p, 0)
	}
	if c := rec.find(func(c routes.Change) bool { return c.Kind == routes.LimitExceeded && c.Tunnel == "tunnel1" }); c == nil {
		t.Error("no LimitExceeded change")
	}
	eventually(t, sessionTimeout, "limit status", func() string {
		ns := neighborStatus(s, "tunnel1")
		if ns.AdminState != "limit" || ns.LimitExceeded != 1 || ns.State == Established || ns.AcceptedRouteCount != 0 {
			return string(ns.State) + " " + ns.AdminState
		}
		return ""
	})
	// With LimitRestart < 0 it stays down until told.
	if err := s.EnableNeighbor("tunnel1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, sessionTimeout, "admin up", func() string {
		if st := neighborStatus(s, "tunnel1").AdminState; st != "up" {
			return st
		}
		return ""
	})

	// tunnel2's connection dies without a NOTIFICATION: GoBGP sees the
	// close, and the paths go at once.
	f2.conn.Close()
	waitRoute(t, s, siteNet1, 0)
	waitState(t, s, "tunnel2", func(st SessionState) bool { return st != Established }, "down")
}
