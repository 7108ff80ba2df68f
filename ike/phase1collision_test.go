package ike

import (
	"testing"
)

// TestPhase1CollisionBothKeepTheSameSA: both sides start main mode at once
// (AWS's startup action start against a customer that initiates too), the
// messages crossing in lockstep or with one side a round behind. Each side
// establishes the SA it answers before the one it initiated; with "the
// newer replaces the older" alone each deleted the other's SA and the
// crossing DELETEs left both sides without any ISAKMP SA and no quick
// mode. Now both delete the same one (lower cookies), keep the other and
// negotiate phase 2 over it. Repeated, so that either side's SA is the
// survivor in some runs.
func TestPhase1CollisionBothKeepTheSameSA(t *testing.T) {
	for _, lag := range []int{0, 1, 2} {
		survivors := map[bool]int{}
		for run := 0; run < 16; run++ {
			h := newFuzzHarness(t, harnessOpts{noPFS: true})
			h.cgw.byName["tunnel1"].initiate("test")
			for range lag { // the vgw starts lag rounds later
				h.pump(1)
			}
			h.vgw.byName["tunnel1"].initiate("test")
			h.pump(20)
			ct, vt := h.cgw.byName["tunnel1"], h.vgw.byName["tunnel1"]
			for name, tu := range map[string]*tunnel{"cgw": ct, "vgw": vt} {
				up := 0
				for _, sa := range tu.ikeSAs {
					if sa.state == stateEstablished {
						up++
					}
				}
				if tu.sa == nil || tu.sa.state != stateEstablished || up != 1 {
					h.close()
					t.Fatalf("lag %d run %d: %s has %d established ISAKMP SAs (current %v), want exactly one", lag, run, name, up, tu.sa != nil)
				}
				if n := len(tu.children); n != 1 {
					h.close()
					t.Fatalf("lag %d run %d: %s has %d IPsec SA pairs, want 1", lag, run, name, n)
				}
				if tu.counters.Phase1Rekeys != 0 {
					t.Errorf("lag %d run %d: %s counted %d phase 1 rekeys for a collision", lag, run, name, tu.counters.Phase1Rekeys)
				}
			}
			if ct.sa.iCookie != vt.sa.iCookie || ct.sa.rCookie != vt.sa.rCookie {
				h.close()
				t.Fatalf("lag %d run %d: the sides kept different ISAKMP SAs", lag, run)
			}
			if lag == 0 && (ct.counters.Phase1Collisions != 1 || vt.counters.Phase1Collisions != 1) {
				t.Errorf("lag 0 run %d: collisions counted cgw %d, vgw %d; want 1 each", run, ct.counters.Phase1Collisions, vt.counters.Phase1Collisions)
			}
			survivors[ct.sa.initiator]++
			h.close()
		}
		t.Logf("lag %d: the cgw's own SA survived %d times, the vgw's %d times", lag, survivors[true], survivors[false])
	}
}
