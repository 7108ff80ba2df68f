package bgp

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/vpnlab/vpnlab/routes"
)

func TestLearnedPath(t *testing.T) {
	asPath := bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{
		bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{65000, 65010}),
		bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SET, []uint32{65020, 65021, 65022}),
	})
	p, err := apiutil.NewPath(bgp.NewIPAddrPrefix(24, "192.168.1.0"), false, []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0), asPath, bgp.NewPathAttributeNextHop("169.254.10.2"), bgp.NewPathAttributeMultiExitDisc(42),
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := learnedPath(p, "tunnel1", time.Unix(1, 0))
	if err != nil || !ok {
		t.Fatalf("ok %v err %v", ok, err)
	}
	want := routes.Path{Prefix: netip.MustParsePrefix("192.168.1.0/24"), Tunnel: "tunnel1", Source: routes.BGP,
		ASPath: []uint32{65000, 65010, 65020}, MED: 42, HasMED: true, Learned: time.Unix(1, 0)}
	if got.Prefix != want.Prefix || !slices.Equal(got.ASPath, want.ASPath) || got.MED != 42 || !got.HasMED || got.Tunnel != "tunnel1" {
		t.Errorf("got %+v, want %+v (an AS_SET counts one)", got, want)
	}

	eor, _ := apiutil.NewPath(bgp.NewIPAddrPrefix(0, "0.0.0.0"), false, nil, time.Now())
	eor.Nlri = nil
	if _, ok, err := learnedPath(eor, "tunnel1", time.Now()); ok || err != nil {
		t.Errorf("End-of-RIB marker taken as a path: ok %v err %v", ok, err)
	}
	local, err := localPath(netip.MustParsePrefix("10.0.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	back, ok, err := learnedPath(local, "x", time.Now())
	if err != nil || !ok || back.Prefix.String() != "10.0.0.0/16" || back.HasMED || len(back.ASPath) != 0 {
		t.Errorf("local path round trip: %+v ok %v err %v", back, ok, err)
	}
}
