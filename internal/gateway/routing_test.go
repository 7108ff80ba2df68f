package gateway

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vpnlab/vpnlab/datapath"
	"github.com/vpnlab/vpnlab/routes"
)

func TestDataPathRoutes(t *testing.T) {
	P := netip.MustParsePrefix
	inside := []datapath.Route{
		{Prefix: P("169.254.10.0/30"), Tunnels: []string{"tunnel1"}},
		{Prefix: P("169.254.11.0/30"), Tunnels: []string{"tunnel2"}},
	}
	rs := []routes.Route{
		{Prefix: P("10.10.0.0/16"), Tunnels: []string{"tunnel2", "tunnel1"}, Active: 1},
		{Prefix: P("10.20.0.0/16"), Tunnels: []string{"tunnel1", "tunnel2", "tunnel3"}, Active: 2, ECMP: true},
		// A peer advertising tunnel1's own inside /30 over tunnel2 must not
		// move tunnel1's BGP session.
		{Prefix: P("169.254.10.0/30"), Tunnels: []string{"tunnel2"}, Active: 1},
		{Prefix: P("10.30.0.0/16")},
	}
	dr, want := dataPathRoutes(inside, rs)
	got := fmt.Sprint(dr)
	exp := fmt.Sprint([]datapath.Route{
		inside[0], inside[1],
		{Prefix: P("10.10.0.0/16"), Tunnels: []string{"tunnel2", "tunnel1"}},
		{Prefix: P("10.20.0.0/16"), Tunnels: []string{"tunnel1", "tunnel2"}, ECMP: true},
	})
	if got != exp {
		t.Fatalf("data path routes\n got %s\nwant %s", got, exp)
	}
	if len(want) != 2 || !want[P("10.10.0.0/16")] || !want[P("10.20.0.0/16")] {
		t.Fatalf("kernel routes %v, want the two decided prefixes only", want)
	}
}
