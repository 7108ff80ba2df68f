package ike

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/sock"
)

// TestTwoEnginesInMemory runs two real engines (their Run loops) bound to
// one in-memory network, on documentation addresses that no interface
// has (a kernel socket there fails with "cannot assign requested
// address"): phase 1 and phase 2 complete without a single port, in main
// mode, aggressive mode and with UDP encapsulation forced (the float to
// the NAT-T sockets, the non-ESP marker).
func TestTwoEnginesInMemory(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(ct, vt *TunnelConfig)
	}{
		{"main", nil},
		{"aggressive", func(ct, vt *TunnelConfig) {
			ct.Phase1.Exchange, vt.Phase1.AllowAggressive = AggressiveMode, true
		}},
		{"force-encap", func(ct, vt *TunnelConfig) { ct.ForceEncap, vt.ForceEncap = true, true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, v := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
			vt, ct := baseTunnel(v, c, DefaultPorts), baseTunnel(c, v, DefaultPorts)
			vt.Phase1.Proposals, vt.Phase1.Selection = awsVGWPhase1(), SelectLowestValue
			vt.Phase2.Proposals, vt.Phase2.Selection = awsVGWPhase2(), SelectLowestValue
			ct.StartupAction = StartupStart
			if tc.mod != nil {
				tc.mod(&ct, &vt)
			}
			network := sock.NewNetwork()
			vgw := startGW(t, "vgw", Config{Tunnels: []TunnelConfig{vt}}, WithBinder(network))
			// The initiator's first message is lost if the responder has
			// not bound yet (as on a real network): bind it first.
			waitBound(t, network, netip.AddrPortFrom(v, DefaultPorts.NATT))
			cgw := startGW(t, "cgw", Config{Tunnels: []TunnelConfig{ct}}, WithBinder(network))
			cgw.waitEvent(t, "phase2-up", 10*time.Second)
			vgw.waitEvent(t, "phase2-up", 10*time.Second)
			checkPairsMatch(t, cgw, vgw)
			cs, vs := cgw.tunnel(t), vgw.tunnel(t)
			if cs.Phase2State != "Established" || vs.Phase2State != "Established" {
				t.Fatalf("phase 2 states: cgw %s, vgw %s", cs.Phase2State, vs.Phase2State)
			}
			wantEncap := ct.ForceEncap
			if cs.Floated != wantEncap || vs.Floated != wantEncap || cgw.dp.Pairs()[0].UDPEncap != wantEncap {
				t.Fatalf("floated cgw %v vgw %v, UDP encapsulation %v; want %v", cs.Floated, vs.Floated, cgw.dp.Pairs()[0].UDPEncap, wantEncap)
			}
			if wantEncap && cgw.dp.Pairs()[0].Remote != netip.AddrPortFrom(v, DefaultPorts.NATT) {
				t.Fatalf("cgw's pair goes to %v, want the vgw's NAT-T port", cgw.dp.Pairs()[0].Remote)
			}
			if d := network.Dropped(); d != 0 {
				t.Fatalf("the network dropped %d datagrams", d)
			}
		})
	}
}

// waitBound waits until ap is bound on the network (a probe Open fails).
func waitBound(t *testing.T, n *sock.Network, ap netip.AddrPort) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		c, err := n.Open(ap)
		if err != nil {
			return
		}
		c.Close()
	}
	t.Fatalf("%v was never bound", ap)
}
