package ike

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/sock"
)

// Liveness checks (empty INFORMATIONAL) driven by the tunnel's DPD
// settings, between two engines on one in-memory network.

// livenessPair brings up an IKEv2 pair whose cgw probes every 200 ms and
// declares the peer dead after 1 s; blackhole drops everything the vgw
// sends.
func livenessPair(t *testing.T, action DPDAction) (cgw, vgw *gw, blackhole *atomic.Bool, nw *sock.Network) {
	t.Helper()
	blackhole = &atomic.Bool{}
	cgw, vgw, nw = v2Up(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) {
		ct.DPDDelay, ct.DPDTimeout, ct.DPDAction = 200*time.Millisecond, time.Second, action
	}})
	nw.SetFilter(func(from, to netip.AddrPort, b []byte) bool { return !(blackhole.Load() && from.Addr() == v2V) })
	return cgw, vgw, blackhole, nw
}

// TestIKEv2LivenessIdlePeer: an idle but live peer answers the empty
// INFORMATIONALs: probes are counted, nothing is declared dead, and the
// first probe of a round is not logged at info.
func TestIKEv2LivenessIdlePeer(t *testing.T) {
	cgw, _, _, _ := livenessPair(t, DPDClear)
	time.Sleep(1500 * time.Millisecond)
	st := cgw.tunnel(t)
	if st.Counters.DPDProbes < 3 {
		t.Fatalf("%d liveness probes in 1.5 s at a 200 ms delay", st.Counters.DPDProbes)
	}
	if st.Counters.DPDTimeouts != 0 || st.Phase1State != "Established" || st.DPDState != "alive" {
		t.Fatalf("idle live peer: timeouts %d, phase 1 %s, DPD %s", st.Counters.DPDTimeouts, st.Phase1State, st.DPDState)
	}
	for _, l := range strings.Split(cgw.logs.String(), "\n") {
		if strings.Contains(l, "liveness: peer silent") && strings.Contains(l, "level=info") {
			t.Fatalf("a routine probe logged at info: %s", l)
		}
	}
}

// TestIKEv2LivenessActions: a peer that stops answering is declared dead
// DPD timeout after it was last heard, and the action is applied: clear
// removes everything and stays down, restart negotiates again once the
// peer is back, none keeps the SAs and notices the peer's return.
func TestIKEv2LivenessActions(t *testing.T) {
	for _, action := range []DPDAction{DPDClear, DPDRestart, DPDNone} {
		t.Run(action.String(), func(t *testing.T) {
			cgw, _, blackhole, _ := livenessPair(t, action)
			blackhole.Store(true)
			start := time.Now()
			ev := cgw.waitEventWith(t, "dpd-state", "state", "dead", 5*time.Second)
			if el := time.Since(start); el < 700*time.Millisecond || ev.Detail["action"] != action.String() {
				t.Fatalf("dead after %v with action %q", el, ev.Detail["action"])
			}
			switch action {
			case DPDClear:
				waitFor(t, "cleared", 2*time.Second, func() bool {
					st := cgw.tunnel(t)
					return st.Phase1State == "Down" && len(cgw.dp.Pairs()) == 0
				})
				blackhole.Store(false)
				time.Sleep(500 * time.Millisecond)
				if st := cgw.tunnel(t); st.Phase1State != "Down" {
					t.Fatalf("clear: phase 1 %s after the peer came back", st.Phase1State)
				}
			case DPDRestart:
				blackhole.Store(false)
				waitFor(t, "restarted", 10*time.Second, func() bool {
					st := cgw.tunnel(t)
					return st.Phase1State == "Established" && st.Phase2State == "Established" && st.Counters.Phase1Established >= 2
				})
			case DPDNone:
				if len(cgw.dp.Pairs()) != 1 || cgw.tunnel(t).Phase1State != "Established" {
					t.Fatal("none: the SAs were removed")
				}
				blackhole.Store(false)
				cgw.waitEventWith(t, "dpd-state", "state", "alive", 5*time.Second)
			}
		})
	}
}
