package ike

import (
	"testing"

	"github.com/vpnlab/vpnlab/ike/policy"
)

// One whole IKEv2 tunnel setup in process, beside the IKEv1 benchmark
// (handshake_bench_test.go) and on its harness: IKE_SA_INIT and IKE_AUTH
// with the first child SA between a customer engine and a vgw engine
// with AWS's proposals and lowest-value selection, back to back without
// sockets or loops, with real Diffie-Hellman as the IKEv1 one. Four
// messages to two installed SA pairs:
//
//	go test -run '^$' -bench 'Handshake' -benchmem ./ike/

func newV2HandshakeHarness(tb testing.TB, group uint16, timers *recordedTimers) *qmHarness {
	ct, vt := handshakeTunnels(group)
	ct.IKEVersions = []policy.Version{policy.IKEv2}
	vt.IKEVersions = []policy.Version{policy.IKEv2, policy.IKEv1}
	vt.Phase1.Proposals = awsVGWPhase1V2()
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

// v2HandshakeOnce runs IKE_SA_INIT and IKE_AUTH and reports whether both
// sides installed the pair over an IKEv2 SA.
func v2HandshakeOnce(h *qmHarness) bool {
	h.cgw.byName["tunnel1"].initiate("benchmark")
	h.pump(10)
	for _, e := range []*Engine{h.cgw, h.vgw} {
		t := e.byName["tunnel1"]
		if t.v2 == nil || t.v2.state != v2Established || len(t.children) != 1 || t.children[0].ikev2 != t.v2 {
			return false
		}
	}
	return true
}

func benchmarkV2Handshake(b *testing.B, group uint16) {
	benchmarkSetup(b, "IKE_SA_INIT + IKE_AUTH", func(timers *recordedTimers) *qmHarness {
		return newV2HandshakeHarness(b, group, timers)
	}, v2HandshakeOnce)
}

// BenchmarkIKEv2Handshake: DH group 14 (MODP-2048), the IKEv1 benchmark's
// BenchmarkHandshakeMODP2048 counterpart.
func BenchmarkIKEv2Handshake(b *testing.B) { benchmarkV2Handshake(b, 14) }

// BenchmarkIKEv2HandshakeECP256: DH group 19.
func BenchmarkIKEv2HandshakeECP256(b *testing.B) { benchmarkV2Handshake(b, 19) }

// TestIKEv2HandshakeHarness: the benchmark's harness really brings the
// IKEv2 tunnel up with each group, over the group asked for.
func TestIKEv2HandshakeHarness(t *testing.T) {
	timers := &recordedTimers{}
	defer timers.stopAll()
	for _, g := range []uint16{14, 19} {
		h := newV2HandshakeHarness(t, g, timers)
		if !v2HandshakeOnce(h) {
			t.Fatalf("group %d: IKE_SA_INIT + IKE_AUTH did not complete", g)
		}
		if got := h.cgw.byName["tunnel1"].v2.proposal.DHGroup; got != g {
			t.Fatalf("negotiated group %d, want %d", got, g)
		}
	}
}
