package ike

import (
	"crypto"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// The stateful fuzz targets (fuzz_phase1_test.go, fuzz_phase2_test.go)
// share FuzzQM1's harness (fuzz_qm1_test.go): two engines whose loops do
// not run, wired back to back by harnessWire and pump. What this file adds:
// a harness whose configuration a target chooses (aggressive mode, phase 2
// without PFS for speed), pumpHold to stop an exchange at the message a
// target replaces, fixHash to give a fuzzed chain a HASH that verifies, and
// the invariants every target checks after each input.

// harnessOpts configures newFuzzHarness.
type harnessOpts struct {
	aggressive bool // cgw initiates aggressive mode, the vgw allows it
	noPFS      bool // the cgw offers phase 2 without PFS (one DH less per quick mode)
}

// newFuzzHarness builds the two engines without starting any exchange.
func newFuzzHarness(t testing.TB, o harnessOpts) *qmHarness {
	vt := baseTunnel(harnessV, harnessC, Ports{})
	vt.Phase1.Proposals, vt.Phase1.Selection = awsVGWPhase1(), SelectLowestValue
	vt.Phase2.Proposals, vt.Phase2.Selection = awsVGWPhase2(), SelectLowestValue
	ct := baseTunnel(harnessC, harnessV, Ports{})
	ct.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 19}}
	if o.aggressive {
		ct.Phase1.Exchange, vt.Phase1.AllowAggressive = AggressiveMode, true
	}
	if o.noPFS {
		ct.Phase2.Proposals[0].PFSGroup = 0
	}
	w := &harnessWire{}
	h := &qmHarness{wire: w, mid: 0x51a7e001}
	h.cgw, h.cdp = harnessEngine(t, ct, w)
	h.vgw, h.vdp = harnessEngine(t, vt, w)
	return h
}

// start begins phase 1 on the cgw (main or aggressive mode as configured).
func (h *qmHarness) start() {
	t := h.cgw.byName["tunnel1"]
	if t.cfg.Phase1.Exchange == AggressiveMode {
		t.startAggressiveMode()
		return
	}
	t.startMainMode()
}

// established builds a harness with phase 1 up on both engines.
func establishedHarness(t testing.TB, o harnessOpts) *qmHarness {
	h := newFuzzHarness(t, o)
	h.start()
	h.pump(10)
	for _, e := range []*Engine{h.cgw, h.vgw} {
		if sa := e.byName["tunnel1"].sa; sa == nil || sa.state != stateEstablished {
			t.Fatal("harness: phase 1 did not complete")
		}
	}
	return h
}

// pumpHold delivers datagrams like pump until one matches hold: that one is
// taken off the wire and returned, undelivered, with the rest of its batch
// left on the wire. It returns nil if none matched within rounds.
func (h *qmHarness) pumpHold(rounds int, hold func(p harnessPacket, m isakmp.Header) bool) *harnessPacket {
	for i := 0; i < rounds && len(h.wire.pkts) > 0; i++ {
		batch := h.wire.pkts
		h.wire.pkts = nil
		for j, p := range batch {
			if hdr, err := isakmp.DecodeHeader(ikeBytes(p)); err == nil && hold(p, hdr) {
				h.wire.pkts = append(h.wire.pkts, batch[j+1:]...)
				return &p
			}
			h.deliver(p)
		}
	}
	return nil
}

// ikeBytes strips the non-ESP marker of a datagram to port 4500.
func ikeBytes(p harnessPacket) []byte {
	if p.dst.Port() == 4500 && len(p.b) >= 4 {
		return p.b[4:]
	}
	return p.b
}

// deliver hands one datagram to the engine it is addressed to.
func (h *qmHarness) deliver(p harnessPacket) {
	h.snapshot()
	saved := h.wire.pkts
	h.wire.pkts = []harnessPacket{p}
	h.pump(1)
	h.wire.pkts = append(saved, h.wire.pkts...)
}

// inject delivers b (an IKE message) to e as if it came from the peer.
func (h *qmHarness) inject(to *Engine, b []byte) {
	src, dst := netip.AddrPortFrom(harnessC, 500), netip.AddrPortFrom(harnessV, 500)
	if to == h.cgw {
		src, dst = dst, src
	}
	s := to.sockets[dst]
	h.snapshot()
	to.handleDatagram(s, src, b)
}

// isEncrypted tells whether a header is of an exchange's protected message.
func isEncrypted(hdr isakmp.Header) bool { return hdr.Flags&isakmp.FlagEncryption != 0 }

// fixHash overwrites the body of every HASH payload of the chain whose
// length is that of want with want, so that a fuzzed chain still carries a
// HASH the receiver verifies. The chain is walked raw: a chain that does
// not walk to its end is returned unchanged after the part that did.
func fixHash(first byte, chain []byte, want func(ps []isakmp.Payload) []byte) []byte {
	out := append([]byte(nil), chain...)
	ps, err := isakmp.DecodePayloads(isakmp.PayloadType(first), out, isakmp.HeaderLen)
	if err != nil {
		return out
	}
	h := want(ps)
	if h == nil {
		return out
	}
	next, off := first, 0
	for next != 0 && off+4 <= len(out) {
		l := int(binary.BigEndian.Uint16(out[off+2:]))
		if l < 4 || off+l > len(out) {
			break
		}
		if isakmp.PayloadType(next) == isakmp.PayloadHash && l-4 == len(h) {
			copy(out[off+4:], h)
		}
		next = out[off]
		off += l
	}
	return out
}

// idBody is the body of the first ID payload of ps, or nil.
func idBody(ps []isakmp.Payload) []byte {
	if id, ok := findPayload(ps, isakmp.PayloadID).(*isakmp.ID); ok {
		return id.Body()
	}
	return nil
}

// checkEngines checks both engines of the harness, and that no ISAKMP SA
// the harness saw registered (snapshot) was deleted with a timer running.
func (h *qmHarness) checkEngines(t testing.TB) {
	checkEngine(t, "cgw", h.cgw, h.cdp)
	checkEngine(t, "vgw", h.vgw, h.vdp)
	h.snapshot()
	if leaks := deletedSATimers(h.seen); len(leaks) > 0 {
		t.Fatalf("deleted ISAKMP SAs left timers running: %v", leaks)
	}
}

// snapshot records the SAs both engines hold now (for checkEngines).
func (h *qmHarness) snapshot() {
	if h.seen == nil {
		h.seen = map[*ikeSA]bool{}
	}
	for _, e := range []*Engine{h.cgw, h.vgw} {
		for _, sa := range e.sas {
			h.seen[sa] = true
		}
	}
}

// Bounds of one harness run: a run holds one tunnel per engine, one
// initiator SA and whatever the fuzzed message made the responder create.
const (
	fuzzMaxSAs     = 3
	fuzzMaxQuick   = 3
	fuzzMaxIVs     = 8
	fuzzMaxPairs   = 2
	fuzzMaxSPIs    = 4
	fuzzMaxHalfOpn = 2
)

// checkEngine: no panic recovered, the half-open count is the number of
// half-open SAs (no leak, no double release), every SA's state is a known
// one and its per-exchange tables are bounded, the tunnel's SA is
// registered, and the data path holds a bounded number of SPIs and pairs.
func checkEngine(t testing.TB, name string, e *Engine, dp *MemoryDataPath) {
	t.Helper()
	if e.counters.Panics != 0 {
		t.Fatalf("%s: %d panics recovered", name, e.counters.Panics)
	}
	n := 0
	for ck, sa := range e.sas {
		if sa.halfOpen {
			n++
		}
		if sa.state < stateMM1Sent || sa.state > stateEstablished {
			t.Fatalf("%s: SA %x registered in state %v", name, ck, sa.state)
		}
		if len(sa.quick) > fuzzMaxQuick || len(sa.ivs) > fuzzMaxIVs || len(sa.seenInfoOrder) > seenInfoKept {
			t.Fatalf("%s: SA %x holds %d quick modes, %d IVs, %d informational IDs", name, ck, len(sa.quick), len(sa.ivs), len(sa.seenInfoOrder))
		}
	}
	if n != e.halfOpen || e.halfOpen > fuzzMaxHalfOpn || len(e.sas) > fuzzMaxSAs {
		t.Fatalf("%s: half-open count %d, half-open SAs %d, SAs %d", name, e.halfOpen, n, len(e.sas))
	}
	sum := 0
	for _, v := range e.halfOpenBy {
		sum += v
	}
	if sum != e.halfOpen {
		t.Fatalf("%s: per-peer half-open counts sum to %d, engine count %d", name, sum, e.halfOpen)
	}
	for _, tn := range e.tunnels {
		if tn.sa != nil && tn.sa.state != stateDeleted && e.sas[tn.sa.iCookie] != tn.sa {
			t.Fatalf("%s: the tunnel's live SA (%v) is not registered", name, tn.sa.state)
		}
		if len(tn.children) > fuzzMaxPairs {
			t.Fatalf("%s: %d pairs", name, len(tn.children))
		}
	}
	dp.mu.Lock()
	spis, pairs := len(dp.allocated), len(dp.pairs)
	dp.mu.Unlock()
	if spis > fuzzMaxSPIs || pairs > fuzzMaxPairs {
		t.Fatalf("%s: data path holds %d SPIs and %d pairs", name, spis, pairs)
	}
}

// chainInput splits a fuzz input into the first payload type and the chain.
func chainInput(data []byte) (byte, []byte, bool) {
	if len(data) == 0 || len(data) > 4096 {
		return 0, nil, false
	}
	return data[0], data[1:], true
}

// seedChain encodes payloads as a fuzz input: first type, then the chain.
func seedChain(t testing.TB, ps ...isakmp.Payload) []byte {
	first, body, err := isakmp.EncodePayloads(ps)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{byte(first)}, body...)
}

// harnessDHKey gives FuzzQM1's stand-in initiator quick mode a DH key of
// the group its chain's KE belongs to (by length), as a real initiator
// that offers PFS has: without one, an initiator refuses a QM2 with KE.
// The key is not the one behind the chain's KE, so the two sides' keys
// differ with PFS (TestQM1Harness allows for that).
func harnessDHKey(ps []isakmp.Payload) dh.Key {
	ke, ok := findPayload(ps, isakmp.PayloadKE).(*isakmp.KE)
	if !ok {
		return nil
	}
	for _, id := range []uint16{2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24} {
		if g, err := dh.ByID(id); err == nil && g.PublicLen() == len(ke.Data) {
			if k, err := fixedDHKey(harnessC, g); err == nil {
				return k
			}
		}
	}
	return nil
}
