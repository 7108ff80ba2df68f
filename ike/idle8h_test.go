package ike

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// Eight hours of idle tunnels at AWS's timers on a simulated clock
// (simrig_test.go): DPD every 10 s of silence (timeout 40 s, action
// clear), phase 2 lifetime 1 h and phase 1 lifetime 8 h with AWS's rekey
// margin (270 s, fuzz 100 %), no traffic. What must hold over the whole
// period is that nothing grows with the number of messages: the
// informational message IDs and IVs each ISAKMP SA keeps, its quick
// modes, the SAs and pairs per tunnel, the engine's timers, the live
// heap. The small version (2 tunnels) runs in every test run; the large
// one is opt-in:
//
//	VPNLAB_SCALE=1 VPNLAB_SCALE_IDLE_TUNNELS=200 go test -count=1 -run TestIdleEightHours -v ./ike/

// idleSample is what the test records every simulated hour.
type idleSample struct {
	at                    time.Duration
	heap                  uint64
	seenInfo, ivs, quick  int
	sas, pairs            int
	timers                int
	probes, p1rk, p2rk    uint64
	dpdTimeouts, infoLogs int
	unindexed             int // ISAKMP SAs missing from their tunnel's list
	goroutines            int
}

func (r *simRig) sample(at time.Duration) idleSample {
	s := idleSample{at: at, goroutines: runtime.NumGoroutine()}
	for i, side := range r.sides {
		_ = side.e.call(r.timers[i].compact)
	}
	s.heap, _ = liveHeap()
	for i, side := range r.sides {
		_ = side.e.call(func() {
			indexed := 0
			for _, t := range side.e.tunnels {
				indexed += len(t.ikeSAs)
			}
			s.unindexed += len(side.e.sas) - indexed // saindex.go: every SA has a tunnel here
			for _, sa := range side.e.sas {
				s.seenInfo, s.ivs, s.quick = max(s.seenInfo, len(sa.seenInfoOrder)), max(s.ivs, len(sa.ivs)), max(s.quick, len(sa.quick))
				s.sas++
			}
		})
		s.timers += r.timers[i].pending()
		lines, _, _, _ := side.log.snapshot()
		s.infoLogs += lines
		_ = side.e.call(func() {
			for _, t := range side.e.tunnels {
				s.pairs += len(t.children)
				s.probes += t.counters.DPDProbes
				s.p1rk += t.counters.Phase1Rekeys
				s.p2rk += t.counters.Phase2Rekeys
				s.dpdTimeouts += int(t.counters.DPDTimeouts)
			}
		})
	}
	return s
}

func idleTunnels(tb testing.TB) int {
	if os.Getenv("VPNLAB_SCALE") == "" {
		return 2
	}
	n, err := strconv.Atoi(os.Getenv("VPNLAB_SCALE_IDLE_TUNNELS"))
	if err != nil || n < 2 {
		return 200
	}
	return n &^ 1
}

// TestIdleEightHours: n idle tunnels for 8 h 10 min of simulated time.
// Every tunnel stays up without a DPD timeout, rekeys phase 2 about every
// hour and phase 1 once, and the per-SA state, the SAs and pairs, and the
// armed timers stay within fixed bounds per tunnel from the first hour to
// the last (they would grow with every R-U-THERE if anything were kept
// per message).
func TestIdleEightHours(t *testing.T) {
	n := idleTunnels(t)
	wall := time.Now()
	heap0, _ := liveHeap()
	r := startSimRig(t, n, vgwStarts)
	up, err := r.bringUp(n, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	heapUp, _ := liveHeap()
	t.Logf("%d tunnels up after %v simulated (%v real); %d datagrams lost; live heap +%.2f MiB over before the engines, %.0f B per tunnel and engine",
		n, up, time.Since(wall).Round(time.Millisecond), r.lost, mib(heapUp-heap0), float64(heapUp-heap0)/float64(2*n))
	const period = 8*time.Hour + 10*time.Minute
	var samples []idleSample
	start := r.clock.now()
	for el := time.Duration(0); el < period; {
		el = min(el+time.Hour, period)
		if err := r.advanceTo(start.Add(el)); err != nil {
			t.Fatalf("before %v simulated: %v", el, err)
		}
		{
			s := r.sample(r.clock.now().Sub(start))
			samples = append(samples, s)
			t.Logf("%v: live heap +%.2f MiB (%.0f B per tunnel and engine), %d ISAKMP SAs, %d pairs, timers %d; per SA at most %d info IDs, %d IVs, %d quick modes; R-U-THERE %d, rekeys p1 %d p2 %d, DPD timeouts %d, log lines at info %d, goroutines %d",
				s.at.Round(time.Minute), mib(s.heap-heap0), (float64(s.heap)-float64(heap0))/float64(2*n), s.sas, s.pairs, s.timers, s.seenInfo, s.ivs, s.quick,
				s.probes, s.p1rk, s.p2rk, s.dpdTimeouts, s.infoLogs, s.goroutines)
		}
	}
	t.Logf("%v simulated in %v real; %d datagrams lost", period, time.Since(wall).Round(time.Millisecond), r.lost)
	checkIdleSamples(t, n, samples)
	for _, side := range r.sides {
		t.Logf("%s: lines at info over the whole run, by message: %v", side.name, side.log.byMessage())
	}
	for _, side := range r.sides {
		for _, st := range side.tunnelStates() {
			if st.phase1 != "Established" || st.phase2 != "Established" || st.dpd != "alive" {
				t.Errorf("%s %s at the end: phase 1 %s, phase 2 %s, DPD %s (%s)", side.name, st.name, st.phase1, st.phase2, st.dpd, st.lastError)
			}
		}
	}
}

// vgwStarts makes the vgw's tunnels startup action start, with AWS's
// phase 2 proposals narrowed to PFS group 19 (the tunnel option
// Phase2DHGroupNumbers: [19]): an initiator's QM1 carries one KE, of its
// first proposal's group, and the customer side accepts only ECP-256.
func vgwStarts(vc, cc *Config) {
	var p2 []Phase2Proposal
	for _, p := range awsVGWPhase2() {
		if p.PFSGroup == 19 {
			p2 = append(p2, p)
		}
	}
	for i := range vc.Tunnels {
		vc.Tunnels[i].StartupAction = StartupStart
		vc.Tunnels[i].Phase2.Proposals = p2
	}
}

// checkIdleSamples: bounds per tunnel that hold at every hour.
func checkIdleSamples(t *testing.T, n int, samples []idleSample) {
	t.Helper()
	last := samples[len(samples)-1]
	problems := []string{}
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	for _, s := range samples {
		switch {
		case s.seenInfo > seenInfoKept:
			bad("%v: an SA remembers %d informational message IDs (bound %d)", s.at, s.seenInfo, seenInfoKept)
		case s.ivs > 2 || s.quick > 2:
			bad("%v: an SA keeps %d IVs and %d quick modes", s.at, s.ivs, s.quick)
		case s.sas > 2*2*n || s.pairs > 2*2*n:
			bad("%v: %d ISAKMP SAs and %d pairs for %d tunnels on two engines", s.at, s.sas, s.pairs, n)
		case s.timers > 8*2*n:
			bad("%v: %d timers armed for %d tunnels on two engines", s.at, s.timers, n)
		case s.unindexed != 0:
			bad("%v: the engines hold %d more ISAKMP SAs than their tunnels list", s.at, s.unindexed)
		case s.dpdTimeouts > 0:
			bad("%v: %d DPD timeouts", s.at, s.dpdTimeouts)
		}
	}
	// AWS's DPD: one R-U-THERE per 10 s of silence, from at least one side
	// of each tunnel; phase 2 rekeyed about every hour (lifetime 1 h,
	// margin 270-540 s), phase 1 once (8 h).
	hours := last.at.Hours()
	if min := uint64(float64(n) * hours * 3600 / 11); last.probes < min {
		bad("%d R-U-THERE in %.1f h for %d tunnels, want at least %d (one per 10 s of silence)", last.probes, hours, n, min)
	}
	if last.p2rk < uint64(2*n*7) || last.p1rk < uint64(2*n) {
		bad("rekeys: phase 2 %d, phase 1 %d counted on both engines; want at least %d and %d", last.p2rk, last.p1rk, 2*n*7, 2*n)
	}
	for _, p := range problems {
		t.Error(p)
	}
}
