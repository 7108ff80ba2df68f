package gateway

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/datapath"
	"github.com/vpnlab/vpnlab/routes"
)

// The decided route says tunnel1; once tunnel1 has no SA pair the data path
// sends over tunnel2, and the carrying tunnels (status, events) must say so.
func TestCarryingFollowsTheDataPath(t *testing.T) {
	P := netip.MustParsePrefix
	vpc := P("172.31.1.0/24")
	decided := []routes.Route{{Prefix: vpc, Tunnels: []string{"tunnel1", "tunnel2"}, Active: 1}}
	dpRoute := func(active ...string) []datapath.RouteStatus {
		return []datapath.RouteStatus{
			{Prefix: P("169.254.10.0/30"), Tunnels: []string{"tunnel1"}, Source: "explicit", Active: []string{"tunnel1"}},
			{Prefix: vpc, Tunnels: []string{"tunnel1", "tunnel2"}, Source: "explicit", Active: active},
			{Prefix: P("10.10.1.0/24"), Tunnels: []string{"tunnel1"}, Source: "selector", Active: []string{"tunnel1"}},
		}
	}
	var c carrying
	now := time.Unix(100, 0)
	evs := c.update(now, dpRoute("tunnel1", "tunnel2"), decided)
	if len(evs) != 1 || evs[0].Detail["kind"] != CarryingMoved || evs[0].Detail["to"] != "tunnel1" || evs[0].Detail["from"] != "" {
		t.Fatalf("first carrying: %v", evs)
	}
	if evs := c.update(now, dpRoute("tunnel1", "tunnel2"), decided); len(evs) != 0 {
		t.Fatalf("no change must give no event: %v", evs)
	}
	// DPD cleared tunnel1: the decision stays, the packets move.
	evs = c.update(now, dpRoute("tunnel2"), decided)
	if len(evs) != 1 || evs[0].Detail["from"] != "tunnel1" || evs[0].Detail["to"] != "tunnel2" ||
		evs[0].Detail["reason"] != "tunnel1 has no SA pair; the data path uses the next tunnel of the route" {
		t.Fatalf("move to tunnel2: %v", evs)
	}
	evs = c.update(now, dpRoute(), decided)
	if len(evs) != 1 || evs[0].Detail["to"] != "" || evs[0].Detail["reason"] != "no tunnel of the route has an SA pair (tunnel1,tunnel2)" {
		t.Fatalf("no tunnel: %v", evs)
	}
	if evs := c.update(now, dpRoute(), nil); len(evs) != 0 {
		t.Fatalf("a route carried by none that is removed: %v", evs)
	}
	c.update(now, dpRoute("tunnel2"), decided)
	if evs := c.update(now, dpRoute("tunnel2"), nil); len(evs) != 1 || evs[0].Detail["from"] != "tunnel2" || evs[0].Detail["to"] != "" {
		t.Fatalf("removed route: %v", evs)
	}
	// The status shows both: decided tunnel1, carried by none.
	v := routeViews(decided, carryingOf(dpRoute(), decided))
	if got := fmt.Sprint(v[0].ActiveTunnels(), *v[0].Carrying); got != "[tunnel1] []" {
		t.Fatalf("view %s", got)
	}
	// ECMP: every active tunnel carries.
	ecmp := []routes.Route{{Prefix: vpc, Tunnels: []string{"tunnel1", "tunnel2"}, Active: 2, ECMP: true}}
	dr := dpRoute("tunnel1", "tunnel2")
	dr[1].ECMP = true
	if got := fmt.Sprint(carryingOf(dr, ecmp)[vpc]); got != "[tunnel1 tunnel2]" {
		t.Fatalf("ecmp carrying %s", got)
	}
	// Only decided prefixes: the selector route is not reported.
	if m := carryingOf(dr, ecmp); len(m) != 1 {
		t.Fatalf("carrying of undecided prefixes: %v", m)
	}
}
