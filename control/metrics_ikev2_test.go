package control

import (
	"crypto"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/datapath"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// TestMetricsIKEv2Exchanges scrapes two real IKEv2 engines: once the
// tunnel is up each side shows one IKE_SA_INIT and one IKE_AUTH message
// each way and both exchanges completed, under the same metric names and
// exchange label as IKEv1's; the IKEv1 exchanges stay at zero.
func TestMetricsIKEv2Exchanges(t *testing.T) {
	x, y := byte(rand.IntN(250)+1), byte(rand.IntN(250)+1)
	a, b := netip.AddrFrom4([4]byte{127, x, y, 1}), netip.AddrFrom4([4]byte{127, x, y, 2})
	port := uint16(20000 + rand.IntN(20000))
	ports := policy.Ports{IKE: port, NATT: port + 1}
	tunnel := func(local, remote netip.Addr) policy.Tunnel {
		return policy.Tunnel{
			Name: "tunnel1", LocalAddr: local, RemoteAddr: remote, RemotePorts: ports, PSK: policy.Secret("test.psk_for_vpnlab_1"),
			IKEVersions: []policy.Version{policy.IKEv2},
			Phase1:      policy.Phase1{Proposals: []policy.Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 14}}, Lifetime: time.Hour},
			Phase2:      policy.Phase2{Proposals: []policy.Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKeyBits: 128, PFSGroup: 14}}, Lifetime: time.Hour},
		}
	}
	wa, wb := datapath.NewMemoryWires()
	vgw := startPairGW(t, wb, tunnel(b, a), ports)
	time.Sleep(20 * time.Millisecond)
	cgw := startPairGW(t, wa, tunnel(a, b), ports)
	if err := cgw.e.Initiate("tunnel1"); err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct {
		name string
		gw   *pairGW
	}{{"cgw", cgw}, {"vgw", vgw}} {
		srv := NewServer(g.gw.e, nil)
		deadline := time.Now().Add(10 * time.Second)
		for {
			fams := parseMetrics(t, scrape(t, srv))
			if v, ok := value(fams, "vpnlab_ike_exchanges_total", "exchange=ike_auth,result=completed,tunnel=tunnel1"); ok && v == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: IKE_AUTH never completed", g.name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		fams := parseMetrics(t, scrape(t, srv))
		for _, c := range []struct {
			name, labels string
			want         float64
		}{
			{"vpnlab_ike_messages_total", "direction=sent,exchange=ike_sa_init,tunnel=tunnel1", 1},
			{"vpnlab_ike_messages_total", "direction=received,exchange=ike_sa_init,tunnel=tunnel1", 1},
			{"vpnlab_ike_messages_total", "direction=sent,exchange=ike_auth,tunnel=tunnel1", 1},
			{"vpnlab_ike_messages_total", "direction=received,exchange=ike_auth,tunnel=tunnel1", 1},
			{"vpnlab_ike_exchanges_total", "exchange=ike_sa_init,result=completed,tunnel=tunnel1", 1},
			{"vpnlab_ike_exchanges_total", "exchange=ike_auth,result=failed,tunnel=tunnel1", 0},
			{"vpnlab_ike_retransmissions_total", "exchange=ike_auth,tunnel=tunnel1", 0},
			{"vpnlab_ike_messages_total", "direction=sent,exchange=create_child_sa,tunnel=tunnel1", 0},
			{"vpnlab_ike_messages_total", "direction=received,exchange=informational_v2,tunnel=tunnel1", 0},
			{"vpnlab_ike_messages_total", "direction=sent,exchange=main,tunnel=tunnel1", 0},
		} {
			if v, ok := value(fams, c.name, c.labels); !ok || v != c.want {
				t.Errorf("%s: %s{%s} = %v (present %v), want %v", g.name, c.name, c.labels, v, ok, c.want)
			}
		}
		if _, ok := value(fams, "vpnlab_ike_exchanges_total", "exchange=create_child_sa,result=completed,tunnel=tunnel1"); ok {
			t.Errorf("%s: create_child_sa has a result series; it counts messages only", g.name)
		}
	}
}
