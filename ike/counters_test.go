package ike

import (
	"crypto"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// waitCounters polls a gateway's tunnel status until ok accepts it.
func waitCounters(t *testing.T, g *gw, what string, ok func(TunnelStatus) bool) TunnelStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := g.tunnel(t)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: counters never matched: %+v", what, st.Counters)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExchangeCounters: a clean main mode and quick mode count exactly the
// messages RFC 2409 has each side send and receive; rekeys of both phases
// are counted on both sides.
func TestExchangeCounters(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	c := waitCounters(t, cgw, "cgw", func(s TunnelStatus) bool { return s.Counters.Exchanges.Quick.Sent == 2 }).Counters.Exchanges
	v := waitCounters(t, vgw, "vgw", func(s TunnelStatus) bool { return s.Counters.Exchanges.Quick.Received == 2 }).Counters.Exchanges
	want := []struct {
		name      string
		got, want ExchangeCount
	}{
		{"cgw main", c.Main, ExchangeCount{Sent: 3, Received: 3, Completed: 1}},
		{"cgw quick", c.Quick, ExchangeCount{Sent: 2, Received: 1, Completed: 1}},
		{"vgw main", v.Main, ExchangeCount{Sent: 3, Received: 3, Completed: 1}},
		{"vgw quick", v.Quick, ExchangeCount{Sent: 1, Received: 2, Completed: 1}},
	}
	for _, w := range want {
		if w.got != w.want {
			t.Errorf("%s: %+v, want %+v", w.name, w.got, w.want)
		}
	}
	if c.Aggressive != (ExchangeCount{}) {
		t.Errorf("cgw aggressive %+v, want zero", c.Aggressive)
	}

	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	waitCounters(t, cgw, "cgw phase 2 rekey", func(s TunnelStatus) bool { return s.Counters.Phase2Rekeys == 1 })
	waitCounters(t, vgw, "vgw phase 2 rekey", func(s TunnelStatus) bool { return s.Counters.Phase2Rekeys == 1 })
	if err := cgw.e.Rekey("tunnel1", 1); err != nil {
		t.Fatal(err)
	}
	cs := waitCounters(t, cgw, "cgw phase 1 rekey", func(s TunnelStatus) bool { return s.Counters.Phase1Rekeys == 1 })
	waitCounters(t, vgw, "vgw phase 1 rekey", func(s TunnelStatus) bool { return s.Counters.Phase1Rekeys == 1 })
	if cs.Counters.Exchanges.Main.Completed != 2 || cs.Counters.Exchanges.Quick.Completed != 2 {
		t.Fatalf("after the rekeys cgw exchanges %+v", cs.Counters.Exchanges)
	}
	// The old ISAKMP SA's DELETE is an informational message.
	waitCounters(t, vgw, "vgw informational", func(s TunnelStatus) bool { return s.Counters.Exchanges.Informational.Sent >= 1 })
}

// TestFailedExchangeCounters: a phase 1 and a phase 2 proposal mismatch
// count as failed negotiations of their exchange on the side that refused.
func TestFailedExchangeCounters(t *testing.T) {
	t.Parallel()
	t.Run("phase1", func(t *testing.T) {
		t.Parallel()
		cgw, _ := newPair(t, pairOpts{cgw: func(tc *TunnelConfig) {
			tc.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 192, Hash: crypto.SHA1, DHGroup: 5}}
		}})
		expectFailure(t, cgw, "NO-PROPOSAL-CHOSEN")
		waitCounters(t, cgw, "cgw", func(s TunnelStatus) bool { return s.Counters.Exchanges.Main.Failed >= 1 })
	})
	t.Run("phase2", func(t *testing.T) {
		t.Parallel()
		cgw, vgw := newPair(t, pairOpts{cgw: func(tc *TunnelConfig) {
			tc.Phase2.Proposals = []Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 192, Integrity: isakmp.AuthHMACSHA1}}
		}})
		expectFailure(t, vgw, "no phase 2 proposal matched")
		waitCounters(t, vgw, "vgw", func(s TunnelStatus) bool { return s.Counters.Exchanges.Quick.Failed >= 1 })
		s := waitCounters(t, cgw, "cgw", func(s TunnelStatus) bool { return s.Counters.Exchanges.Quick.Failed >= 1 })
		if s.Counters.Exchanges.Main.Failed != 0 || s.Counters.Exchanges.Main.Completed != 1 {
			t.Fatalf("cgw main %+v", s.Counters.Exchanges.Main)
		}
	})
}

// TestDPDCounters: probes are counted while the peer answers; a blackholed
// path adds a timeout.
func TestDPDCounters(t *testing.T) {
	t.Parallel()
	cgw, _, bh := dpdPair(t, DPDClear, DPDClear, nil)
	waitCounters(t, cgw, "probes", func(s TunnelStatus) bool { return s.Counters.DPDProbes >= 2 })
	if n := cgw.tunnel(t).Counters.DPDTimeouts; n != 0 {
		t.Fatalf("%d DPD timeouts while the peer answers", n)
	}
	bh.Store(true)
	cgw.waitEventWith(t, "dpd-state", "state", "dead", 5*time.Second)
	waitCounters(t, cgw, "timeout", func(s TunnelStatus) bool { return s.Counters.DPDTimeouts == 1 })
}
