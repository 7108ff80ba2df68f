package bird

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

// TestSelfBIRDvsBIRD proves the runner: two BIRDs in two namespaces joined
// by a veth, one eBGP session, each side learns the other's prefix (and
// installs it in the kernel), Stop removes the process.
func TestSelfBIRDvsBIRD(t *testing.T) {
	if err := netlab.Usable(); err != nil {
		t.Skip(err)
	}
	if _, err := Available(); err != nil {
		t.Skip(err)
	}
	lab, err := netlab.New(t)
	if err != nil {
		t.Fatal(err)
	}
	P, A := netip.MustParsePrefix, netip.MustParseAddr
	a, err := lab.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := lab.AddNS("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Link(a, "p0", P("169.254.10.2/30"), b, "p0", P("169.254.10.1/30")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	start := func(ns *netlab.NS, id string, as, peerAS uint32, local, peer string, origin string) *BIRD {
		t.Helper()
		cfg, err := BGPConfig{RouterID: A(id), LocalAS: as, Originate: []netip.Prefix{P(origin)},
			Neighbors: []Neighbor{{Name: "tun1", Addr: A(peer), AS: peerAS, Source: A(local)}},
			HoldTime:  30 * time.Second, Keepalive: 10 * time.Second, ConnectRetry: 2 * time.Second,
			ErrorWait:    [2]time.Duration{2 * time.Second, 16 * time.Second},
			KernelExport: true, Debug: true}.Render()
		if err != nil {
			t.Fatal(err)
		}
		bd, err := Start(ctx, ns, Options{Config: cfg})
		if errors.Is(err, ErrNotInstalled) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("--- %s log:\n%s", bd.Dir(), bd.LogTail(30))
			}
			bd.Stop()
		})
		return bd
	}
	ba := start(a, "10.10.1.1", 65000, 64512, "169.254.10.2", "169.254.10.1", "10.10.0.0/16")
	bb := start(b, "172.31.1.1", 64512, 65000, "169.254.10.1", "169.254.10.2", "172.31.0.0/16")
	t0 := time.Now()
	for _, bd := range []*BIRD{ba, bb} {
		ps, err := bd.WaitEstablished(ctx, 20*time.Second, "tun1")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s:\n%s", bd.Dir(), FormatProtocols(ps))
	}
	t.Logf("established after %v", time.Since(t0).Round(time.Millisecond))
	check := func(bd *BIRD, ns *netlab.NS, prefix string, as uint32, via string) {
		t.Helper()
		var rs []Route
		deadline := time.Now().Add(10 * time.Second)
		for {
			rs, err = bd.Routes(ctx, prefix)
			if err != nil {
				t.Fatal(err)
			}
			if i := slices.IndexFunc(rs, func(r Route) bool { return r.Protocol == "tun1" }); i >= 0 {
				r := rs[i]
				if !r.Primary || r.NextHop != via || r.Iface != "p0" || !slices.Equal(r.ASPath, []uint32{as}) || r.Attrs["BGP.origin"] != "IGP" {
					t.Fatalf("%s: route %+v, want primary via %s on p0 with AS path [%d]", bd.Dir(), r, via, as)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s not learned from tun1:\n%s", bd.Dir(), prefix, FormatRoutes(rs))
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("%s: %s", bd.Dir(), strings.TrimSpace(FormatRoutes(rs)))
		deadline = time.Now().Add(5 * time.Second)
		for {
			out, err := ns.Run(ctx, "ip", "route", "show", prefix)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), "via "+via) && strings.Contains(string(out), "proto bird") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: kernel route for %s: %q", ns.Name(), prefix, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	check(ba, a, "172.31.0.0/16", 64512, "169.254.10.1")
	check(bb, b, "10.10.0.0/16", 65000, "169.254.10.2")
	if rs, err := ba.Routes(ctx, "192.0.2.0/24"); err != nil || len(rs) != 0 {
		t.Fatalf("unknown prefix: %v %v", rs, err)
	}
	if err := ba.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if ok, _ := ba.Proc().Exited(); !ok {
		t.Fatal("bird still running after Stop")
	}
}

func TestParseProtocols(t *testing.T) {
	out := []byte(`BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     12:00:00      
kernel1    Kernel     master4    up     12:00:00      
origin     Static     master4    up     12:00:00      
tun1       BGP        ---        up     12:00:03      Established   
tun2       BGP        ---        start  12:00:00      Active        Socket: Connection refused
`)
	ps, err := ParseProtocols(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 5 {
		t.Fatalf("%d protocols: %+v", len(ps), ps)
	}
	if p, _ := FindProtocol(ps, "tun1"); !p.Established() {
		t.Errorf("tun1 %+v not established", p)
	}
	if p, _ := FindProtocol(ps, "tun2"); p.Established() || p.Info != "Active Socket: Connection refused" {
		t.Errorf("tun2 %+v", p)
	}
	if _, err := ParseProtocols([]byte("Unable to connect to server control socket")); err == nil {
		t.Error("no error without a header")
	}
}

func TestParseRoutes(t *testing.T) {
	out := []byte("BIRD 2.0.12 ready.\nTable master4:\n" +
		"172.31.0.0/16        unicast [tun1 12:00:03] * (100) [AS64512i]\n" +
		"\tvia 169.254.10.1 on ipsec0\n\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.as_path: 64512\n\tBGP.next_hop: 169.254.10.1\n\tBGP.local_pref: 100\n" +
		"                     unicast [tun2 12:00:04] (100) [AS64512i]\n" +
		"\tvia 169.254.11.1 on ipsec1\n\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.as_path: 64512 64512\n" +
		"10.10.0.0/16         blackhole [origin 12:00:00] * (200)\n\tType: static univ\n")
	rs, err := ParseRoutes(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("%d routes:\n%s", len(rs), FormatRoutes(rs))
	}
	r := rs[1]
	if r.Prefix != "172.31.0.0/16" || r.Protocol != "tun2" || r.Primary || r.NextHop != "169.254.11.1" || r.Iface != "ipsec1" || !slices.Equal(r.ASPath, []uint32{64512, 64512}) {
		t.Errorf("second path %+v", r)
	}
	if r := rs[0]; !r.Primary || r.Summary != "AS64512i" || r.Pref != 100 || r.Attrs["BGP.next_hop"] != "169.254.10.1" {
		t.Errorf("first path %+v", r)
	}
	if r := rs[2]; r.Prefix != "10.10.0.0/16" || r.Type != "blackhole" || r.Protocol != "origin" || !r.Primary || r.Pref != 200 {
		t.Errorf("static %+v", r)
	}
	if rs, err := ParseRoutes([]byte("BIRD 2.0.12 ready.\nNetwork not found\n")); err != nil || rs != nil {
		t.Errorf("not found: %v %v", rs, err)
	}
}

func TestRenderRejects(t *testing.T) {
	A := netip.MustParseAddr
	ok := BGPConfig{RouterID: A("10.0.0.1"), LocalAS: 65000, Neighbors: []Neighbor{{Name: "tun1", Addr: A("169.254.10.1"), AS: 64512}}}
	if _, err := ok.Render(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]BGPConfig{
		"reserved name": {RouterID: A("10.0.0.1"), LocalAS: 1, Neighbors: []Neighbor{{Name: "origin", Addr: A("10.0.0.2"), AS: 2}}},
		"no AS":         {RouterID: A("10.0.0.1"), Neighbors: ok.Neighbors},
		"no neighbors":  {RouterID: A("10.0.0.1"), LocalAS: 1},
		"v6 router id":  {RouterID: A("::1"), LocalAS: 1, Neighbors: ok.Neighbors},
	} {
		if _, err := c.Render(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
