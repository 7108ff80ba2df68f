package ike

import (
	"testing"
	"time"
)

// TestPhase1DownEndsPendingPhase2: when phase 1 goes down while a quick
// mode is still negotiating (its QM1 never arrives), phase 2 is reported
// Down with a phase2-state event and a phase2-failed event, for a DELETE of
// the ISAKMP SA from the peer and for a DPD clear. It used to stay
// "Negotiating" with no event.
func TestPhase1DownEndsPendingPhase2(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"peer DELETE", "DPD clear"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			slow := func(c *Config) { c.RetransmitTimeout = 3 * time.Second } // QM1 must not time out first
			cgw, vgw := newImpairedPairCfg(t, []string{"drop-all:quick:1"}, nil, func(ct, vt *TunnelConfig) { ct.DPDAction = DPDClear }, slow)
			cgw.evs.wait(t, "phase1-up", nil, 10*time.Second)
			cgw.evs.wait(t, "phase2-state", detail("state", "Negotiating"), 5*time.Second)
			switch how {
			case "peer DELETE":
				if err := vgw.e.Terminate("tunnel1"); err != nil {
					t.Fatal(err)
				}
			case "DPD clear":
				if err := cgw.e.call(func() { cgw.e.byName["tunnel1"].peerDead(time.Minute) }); err != nil {
					t.Fatal(err)
				}
			}
			cgw.evs.wait(t, "phase1-down", nil, 2*time.Second)
			cgw.evs.wait(t, "phase2-state", detail("state", "Down"), time.Second)
			cgw.evs.wait(t, "phase2-failed", detail("reason", "phase 1 down"), time.Second)
			st := cgw.tunnel(t, "tunnel1")
			if st.Phase1State != "Down" || st.Phase2State != "Down" {
				t.Fatalf("cgw after phase 1 went down: phase 1 %s, phase 2 %s; want Down and Down", st.Phase1State, st.Phase2State)
			}
			if how == "DPD clear" && st.LastError != peerDeadMessage {
				t.Fatalf("last error %q, want the DPD message", st.LastError)
			}
		})
	}
}
