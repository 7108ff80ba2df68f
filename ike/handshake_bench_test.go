package ike

import (
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// One whole IKEv1 tunnel setup in process: main mode (MM1-MM6) and quick
// mode with PFS (QM1-QM3) between a customer engine and a vgw engine with
// AWS's proposals and lowest-value selection, wired back to back without
// sockets or loops (the fuzz harness: fuzz_qm1_test.go). Each iteration
// builds both engines afresh (not timed) and runs the nine messages to two
// installed SA pairs. docs/PERFORMANCE.md ("Handshakes and scale") has the
// numbers:
//
//	go test -run '^$' -bench BenchmarkHandshake -benchmem ./ike/

// handshakeTunnels returns the customer's and the vgw's tunnel for one
// DH group in phase 1 and as PFS group in phase 2.
func handshakeTunnels(group uint16) (ct, vt TunnelConfig) {
	vt = baseTunnel(harnessV, harnessC, Ports{})
	vt.Phase1.Proposals, vt.Phase1.Selection = awsVGWPhase1(), SelectLowestValue
	vt.Phase2.Proposals, vt.Phase2.Selection = awsVGWPhase2(), SelectLowestValue
	ct = baseTunnel(harnessC, harnessV, Ports{})
	ct.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: group}}
	ct.Phase2.Proposals = []Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKeyBits: 128, PFSGroup: group}}
	return ct, vt
}

// handshakeOnce runs main mode and quick mode to the end and reports
// whether both sides installed the pair.
func handshakeOnce(h *qmHarness) bool {
	h.cgw.byName["tunnel1"].initiate("benchmark")
	h.pump(20)
	for _, e := range []*Engine{h.cgw, h.vgw} {
		t := e.byName["tunnel1"]
		if t.phase1State != "Established" || t.phase2State != "Established" || len(t.children) != 1 {
			return false
		}
	}
	return true
}

// recordedTimers is a timer source that remembers its timers, so that a
// benchmark can stop the rekey and expiry timers of the engines it is done
// with (their loops never run).
type recordedTimers struct{ timers []*time.Timer }

func (r *recordedTimers) AfterFunc(d time.Duration, f func()) *time.Timer {
	t := time.AfterFunc(d, f)
	r.timers = append(r.timers, t)
	return t
}

func (r *recordedTimers) stopAll() {
	for _, t := range r.timers {
		t.Stop()
	}
	r.timers = r.timers[:0]
}

func newHandshakeHarness(tb testing.TB, group uint16, timers *recordedTimers) *qmHarness {
	ct, vt := handshakeTunnels(group)
	w := &harnessWire{}
	h := &qmHarness{wire: w}
	h.cgw, h.cdp = harnessEngine(tb, ct, w)
	h.vgw, h.vdp = harnessEngine(tb, vt, w)
	h.cgw.clock, h.vgw.clock = timers, timers
	// Real Diffie-Hellman: the fuzz harness's fixed, memoised keys
	// (fuzz_dhkeys_test.go) would leave the DH work, most of a
	// handshake's cost, out of the number.
	h.cgw.dhKeys, h.vgw.dhKeys = nil, nil
	return h
}

func benchmarkHandshake(b *testing.B, group uint16) {
	benchmarkSetup(b, "main mode + quick mode", func(timers *recordedTimers) *qmHarness {
		return newHandshakeHarness(b, group, timers)
	}, handshakeOnce)
}

// benchmarkSetup times once on fresh engines from newH, which are built
// outside the timed part; their timers are stopped between rounds.
func benchmarkSetup(b *testing.B, what string, newH func(*recordedTimers) *qmHarness, once func(*qmHarness) bool) {
	timers := &recordedTimers{}
	defer timers.stopAll()
	if !once(newH(timers)) {
		b.Fatal(what + " did not complete")
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		timers.stopAll()
		h := newH(timers)
		b.StartTimer()
		if !once(h) {
			b.Fatal(what + " did not complete")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tunnels/s")
}

// BenchmarkHandshakeMODP2048: DH group 14 in phase 1 and as PFS group.
func BenchmarkHandshakeMODP2048(b *testing.B) { benchmarkHandshake(b, 14) }

// BenchmarkHandshakeECP256: DH group 19 in phase 1 and as PFS group.
func BenchmarkHandshakeECP256(b *testing.B) { benchmarkHandshake(b, 19) }

// TestHandshakeHarness: the benchmark's harness really brings the tunnel
// up with each group, and the negotiated groups are the ones asked for.
func TestHandshakeHarness(t *testing.T) {
	timers := &recordedTimers{}
	defer timers.stopAll()
	for _, g := range []uint16{14, 19} {
		h := newHandshakeHarness(t, g, timers)
		if !handshakeOnce(h) {
			t.Fatalf("group %d: main mode + quick mode did not complete", g)
		}
		wantGroup := map[uint16]string{14: "modp2048", 19: "ecp256"}[g]
		for _, e := range []*Engine{h.cgw, h.vgw} {
			st := e.byName["tunnel1"].status()
			t.Logf("group %d: phase 1 %s, phase 2 %s", g, st.Proposal, st.SAs[0].Proposal)
			if !strings.HasSuffix(st.Proposal, wantGroup) || len(st.SAs) != 1 || !strings.HasSuffix(st.SAs[0].Proposal, wantGroup) {
				t.Errorf("group %d: phase 1 %q, phase 2 %+v: want %s in both (PFS)", g, st.Proposal, st.SAs, wantGroup)
			}
		}
	}
}
