package scenarios

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/bird"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// TestForeignTunnelStatus: swanctl's IKE_SAs of a tunnel become the
// tunnel's status: the established IKE_SA wins over a connecting one,
// installed CHILD_SAs are its pairs (oldest first), the NAT faked by
// kernel-libipsec is not a NAT.
func TestForeignTunnelStatus(t *testing.T) {
	child := func(spi, state, age string) strongswan.ChildSA {
		return strongswan.ChildSA{Name: "tunnel1", State: state, Mode: "TUNNEL", Protocol: "ESP", Encap: true, SPIIn: spi, SPIOut: "o" + spi,
			EncrAlg: "AES_CBC", EncrKeySize: 128, IntegAlg: "HMAC_SHA1_96", BytesIn: 100, PacketsOut: 3,
			LocalTS: []string{"0.0.0.0/0"}, RemoteTS: []string{"0.0.0.0/0"}, Raw: map[string]string{"install-time": age}}
	}
	sas := []strongswan.IKESA{
		{Name: "tunnel2", State: "ESTABLISHED", UniqueID: 9},
		{Name: "tunnel1", State: "CONNECTING", UniqueID: 5, Raw: map[string]string{}},
		{Name: "tunnel1", State: "ESTABLISHED", UniqueID: 3, Initiator: true, NATRemote: true, NATFake: true, InitiatorSPI: "aa", ResponderSPI: "bb",
			EncrAlg: "AES_CBC", EncrKeySize: 256, IntegAlg: "HMAC_SHA2_256_128", PRFAlg: "PRF_HMAC_SHA2_256", DHGroup: "MODP_2048",
			Raw:      map[string]string{"nat-local": "no"},
			Children: []strongswan.ChildSA{child("c2", "INSTALLED", "5"), child("c1", "INSTALLED", "50"), child("c0", "DELETING", "90")}},
	}
	ts := foreignTunnelStatus("tunnel1", sas, nil)
	if ts.Phase1State != "Established" || ts.Phase2State != "Established" || ts.Role != "initiator" || ts.NATDetected {
		t.Fatalf("phase1 %s phase2 %s role %s nat %v", ts.Phase1State, ts.Phase2State, ts.Role, ts.NATDetected)
	}
	if ts.Proposal != "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048" || ts.ICookie != "aa" || ts.RCookie != "bb" {
		t.Fatalf("proposal %q spis %s/%s", ts.Proposal, ts.ICookie, ts.RCookie)
	}
	if len(ts.SAs) != 2 || ts.SAs[0].InboundSPI != "c1" || ts.SAs[1].InboundSPI != "c2" || ts.DataIn != 200 {
		t.Fatalf("SAs %+v data_in %d", ts.SAs, ts.DataIn)
	}
	if f := tunnelField(&ts, "ipsec_proposal"); f != "AES_CBC-128/HMAC_SHA1_96" {
		t.Fatalf("ipsec_proposal of the newest pair: %q", f)
	}
	if f := tunnelField(&ts, "packets_out"); f != "6" {
		t.Fatalf("packets_out %q", f)
	}
	sas[2].Raw["nat-local"] = "yes"
	if ts := foreignTunnelStatus("tunnel1", sas, nil); !ts.NATDetected {
		t.Fatal("a real NAT in front of strongSwan not reported")
	}
	ts = foreignTunnelStatus("tunnel3", sas, errors.New("swanctl: connection refused"))
	if ts.Phase1State != "Down" || ts.Phase2State != "Down" || !strings.Contains(ts.LastError, "refused") {
		t.Fatalf("no IKE_SA: %+v", ts)
	}
}

// TestForeignEvents: two polls compared give the events, marked foreign.
func TestForeignEvents(t *testing.T) {
	k := func(p1, bgp, st, spis string, children ...string) foreignTunnelKey {
		m := foreignTunnelKey{phase1: p1, bgp: bgp, status: st, ikeSPIs: spis, children: map[string]status.SA{}}
		for _, c := range children {
			m.children[c] = status.SA{InboundSPI: c}
		}
		return m
	}
	type ev struct{ tunnel, typ, detail string }
	got := func(prev, now map[string]foreignTunnelKey) []ev {
		var l []ev
		for _, e := range foreignEvents(prev, now, []string{"tunnel1"}, "bird") {
			var d []string
			for _, key := range []string{"foreign", "state", "spi_in", "replaces"} {
				if v := e.Detail[key]; v != "" {
					d = append(d, key+"="+v)
				}
			}
			if e.Source != "cgw" {
				t.Errorf("event source %q", e.Source)
			}
			l = append(l, ev{e.Tunnel, e.Type, strings.Join(d, " ")})
		}
		return l
	}
	up := map[string]foreignTunnelKey{"tunnel1": k("Established", "Established", "UP", "a/b", "s1")}
	want := []ev{{"tunnel1", "phase1-up", "foreign=strongswan"}, {"tunnel1", "phase2-up", "foreign=strongswan spi_in=s1"},
		{"tunnel1", "bgp-state", "foreign=bird state=Established"}, {"tunnel1", "tunnel-status", "foreign=strongswan"}}
	if g := got(nil, up); !reflect.DeepEqual(g, want) {
		t.Fatalf("first poll:\n got %v\nwant %v", g, want)
	}
	if g := got(up, up); len(g) != 0 {
		t.Fatalf("no change, events %v", g)
	}
	rekeyed := map[string]foreignTunnelKey{"tunnel1": k("Established", "Established", "UP", "c/d", "s2")}
	want = []ev{{"tunnel1", "phase1-up", "foreign=strongswan replaces=a/b"}, {"tunnel1", "phase2-up", "foreign=strongswan spi_in=s2"},
		{"tunnel1", "phase2-down", "foreign=strongswan spi_in=s1"}}
	if g := got(up, rekeyed); !reflect.DeepEqual(g, want) {
		t.Fatalf("rekey:\n got %v\nwant %v", g, want)
	}
	down := map[string]foreignTunnelKey{"tunnel1": k("Down", "Active", "DOWN", "/")}
	want = []ev{{"tunnel1", "phase1-down", "foreign=strongswan state=Down"}, {"tunnel1", "phase2-down", "foreign=strongswan spi_in=s2"},
		{"tunnel1", "bgp-state", "foreign=bird state=Active"}, {"tunnel1", "tunnel-status", "foreign=strongswan"}}
	if g := got(rekeyed, down); !reflect.DeepEqual(g, want) {
		t.Fatalf("down:\n got %v\nwant %v", g, want)
	}
}

// TestBirdRouting: BIRD's BGP paths by prefix, the best first; other
// protocols' routes are not tunnel routes.
func TestBirdRouting(t *testing.T) {
	rv := birdRouting([]bird.Route{
		{Prefix: "172.31.1.0/24", Protocol: "aws_tunnel1"},
		{Prefix: "172.31.1.0/24", Protocol: "aws_tunnel2", Primary: true},
		{Prefix: "10.10.1.0/24", Protocol: "customer_prefixes", Primary: true},
	})
	if a := rv.active("172.31.1.0/24"); !reflect.DeepEqual(a, []string{"tunnel2"}) {
		t.Fatalf("active %v", a)
	}
	if a := rv.active("10.10.1.0/24"); a != nil {
		t.Fatalf("a static route taken for a tunnel route: %v", a)
	}
	if birdProtocol("tunnel-1") != "aws_tunnel_1" {
		t.Fatal(birdProtocol("tunnel-1"))
	}
}
