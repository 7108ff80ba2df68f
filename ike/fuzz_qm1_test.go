package ike

import (
	"crypto"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// FuzzQM1 drives a responder engine (AWS-like vgw policy: every phase 2
// proposal, with and without PFS) through a real main mode with an
// initiator engine, both in process with their MemoryDataPaths, and then
// feeds it one QM1 whose decrypted payload chain after HASH(1) is the fuzz
// input: data[0] is the type of the first payload after HASH, data[1:] the
// chain. HASH(1) is computed over what the responder will hash, so the
// input reaches the QM1 checks, not only the HASH check. The initiator
// keeps a quick mode for the message ID so that an accepted QM1 runs on
// through QM2, QM3 and installation on both sides.
//
// The test goroutine is both engines' loop (their loops do not run); their
// sockets are placeholders whose writes fail after the PacketSink copied the
// datagram, and pump delivers the copies. A panic anywhere fails the fuzz
// run (the safety net of the loop is not in this path).
func FuzzQM1(f *testing.F) {
	for _, seed := range qm1Seeds(f) {
		f.Add(seed.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzQM1Body(t, data) })
}

// fuzzQM1Body runs one FuzzQM1 input.
func fuzzQM1Body(t testing.TB, data []byte) {
	if len(data) == 0 || len(data) > 4096 {
		return
	}
	h := newQMHarness(t)
	defer h.close()
	h.sendQM1(data[0], data[1:])
	h.pump(8)
	h.checkInvariants(t)
}

// qmHarness is two engines wired back to back in process.
type qmHarness struct {
	cgw, vgw *Engine
	cdp, vdp *MemoryDataPath
	wire     *harnessWire
	mid      uint32
	seen     map[*ikeSA]bool // SAs registered at some point (fuzz_harness_test.go)
}

// harnessWire collects the datagrams the engines send.
type harnessWire struct{ pkts []harnessPacket }

type harnessPacket struct {
	src, dst netip.AddrPort
	b        []byte
}

func (w *harnessWire) Packet(src, dst netip.AddrPort, b []byte) {
	w.pkts = append(w.pkts, harnessPacket{src, dst, append([]byte(nil), b...)})
}

var (
	harnessC = netip.MustParseAddr("192.0.2.1")
	harnessV = netip.MustParseAddr("192.0.2.2")
)

func harnessEngine(t testing.TB, tc TunnelConfig, w *harnessWire) (*Engine, *MemoryDataPath) {
	var lg logrus.FieldLogger = newDiscardLogger()
	if os.Getenv("VPNLAB_TEST_LOG") != "" {
		l := logrus.New()
		l.SetOutput(os.Stderr)
		l.SetLevel(logrus.DebugLevel)
		lg = l
	}
	dp := NewMemoryDataPath()
	e, err := NewEngine(Config{Tunnels: []TunnelConfig{tc}}, WithLogger(lg), WithDataPath(dp), WithPacketSink(w))
	if err != nil {
		t.Fatal(err)
	}
	e.dhKeys = fixedDHKeys(tc.LocalAddr)
	bindNowhere(t, e, tc.LocalAddr) // the sink captures what the engine sends
	return e, dp
}

// newQMHarness establishes phase 1 between a cgw (initiator) and a vgw.
func newQMHarness(t testing.TB) *qmHarness {
	vt := baseTunnel(harnessV, harnessC, Ports{})
	vt.Phase1.Proposals, vt.Phase1.Selection = awsVGWPhase1(), SelectLowestValue
	vt.Phase2.Proposals, vt.Phase2.Selection = awsVGWPhase2(), SelectLowestValue
	ct := baseTunnel(harnessC, harnessV, Ports{})
	ct.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 19}} // ECP: fast
	w := &harnessWire{}
	h := &qmHarness{wire: w, mid: 0x51a7e001}
	h.cgw, h.cdp = harnessEngine(t, ct, w)
	h.vgw, h.vdp = harnessEngine(t, vt, w)
	h.cgw.byName["tunnel1"].startMainMode()
	h.pump(10)
	for _, e := range []*Engine{h.cgw, h.vgw} {
		if sa := e.byName["tunnel1"].sa; sa == nil || sa.state != stateEstablished {
			t.Fatal("harness: phase 1 did not complete")
		}
	}
	return h
}

// pump delivers captured datagrams to the engine they are addressed to,
// for at most rounds batches.
func (h *qmHarness) pump(rounds int) {
	for i := 0; i < rounds && len(h.wire.pkts) > 0; i++ {
		batch := h.wire.pkts
		h.wire.pkts = nil
		for _, p := range batch {
			e := h.vgw
			if p.dst.Addr() == harnessC {
				e = h.cgw
			}
			s := e.sockets[p.dst]
			if s == nil {
				continue
			}
			b := p.b
			if s.natt {
				if len(b) < 4 || binary.BigEndian.Uint32(b) != 0 {
					continue
				}
				b = b[4:]
			}
			e.handleDatagram(s, p.src, b)
		}
	}
}

// sendQM1 seals HASH(1) | chain on the cgw's ISAKMP SA and delivers it.
func (h *qmHarness) sendQM1(first byte, chain []byte) {
	sa := h.cgw.byName["tunnel1"].sa
	hlen := sa.hash.Size()
	body := make([]byte, 4+hlen, 4+hlen+len(chain))
	body[0] = first
	binary.BigEndian.PutUint16(body[2:], uint16(4+hlen))
	body = append(body, chain...)
	rest, err := chainAfterFirst(body)
	if err != nil {
		rest = chain
	}
	copy(body[4:], keymat.QMHash1(sa.hash, sa.skeyidA, h.mid, rest))
	h.registerInitiatorQM(sa, first, chain)
	b, err := sa.sealExchange(sa.header(isakmp.ExchangeQuickMode, h.mid), body, isakmp.PayloadHash)
	if err != nil {
		return
	}
	h.wire.Packet(sa.local, sa.remote, b)
}

// registerInitiatorQM gives the cgw a quick mode for the message ID, with
// the nonce and selectors of the chain where it decodes, so that a QM2 is
// processed (and answered with QM3) like the answer to our own QM1.
func (h *qmHarness) registerInitiatorQM(sa *ikeSA, first byte, chain []byte) {
	pol := &h.vgw.byName["tunnel1"].cfg.Phase2
	qm := &quickMode{sa: sa, mid: h.mid, initiator: true, offered: pol.Proposals, spiIn: 0x0c0ffee0,
		life: time.Hour, mode: ModeTunnel, encap: isakmp.EncapTunnel, state: qmQM1Sent, started: timeNow(),
		localTS: netip.PrefixFrom(harnessC, 32), remoteTS: netip.PrefixFrom(harnessV, 32)}
	if len(chain) > 0 {
		if ps, err := isakmp.DecodePayloads(isakmp.PayloadType(first), chain, isakmp.HeaderLen); err == nil {
			if n, ok := findPayload(ps, isakmp.PayloadNonce).(*isakmp.Nonce); ok {
				qm.ni = n.Data
			}
			qm.dhKey = harnessDHKey(ps) // an initiator that sends KE holds a DH key
			if ci, cr, n := idPair(ps); n == 2 {
				if p, err := ci.Prefix(); err == nil {
					qm.localTS = p
				}
				if p, err := cr.Prefix(); err == nil {
					qm.remoteTS = p
				}
			}
		}
	}
	sa.quick[h.mid] = qm
}

// checkInvariants: whatever the input, the responder installed at most one
// pair, with a lifetime in (0, ours] and selectors inside its policy, and
// its ISAKMP SA is still established (a bad QM1 costs only that
// negotiation).
func (h *qmHarness) checkInvariants(t testing.TB) {
	vt := h.vgw.byName["tunnel1"]
	if vt.sa == nil || vt.sa.state != stateEstablished {
		t.Fatal("the vgw lost its ISAKMP SA over one QM1")
	}
	pairs := h.vdp.Pairs()
	if len(pairs) > 1 {
		t.Fatalf("the vgw installed %d pairs from one QM1", len(pairs))
	}
	for _, p := range pairs {
		if p.Lifetime <= 0 || p.Lifetime > vt.cfg.Phase2.Lifetime {
			t.Fatalf("installed lifetime %v outside (0, %v]", p.Lifetime, vt.cfg.Phase2.Lifetime)
		}
		if !prefixWithin(p.LocalTS, vt.cfg.Phase2.LocalTS) || !prefixWithin(p.RemoteTS, vt.cfg.Phase2.RemoteTS) {
			t.Fatalf("installed selectors %s === %s outside the policy", p.LocalTS, p.RemoteTS)
		}
		enc, integ := keyLengths(Phase2Proposal{Protocol: p.Inbound.Protocol, Encryption: p.Inbound.Encryption,
			EncKeyBits: (len(p.Inbound.EncKey) - gcmSalt(p.Inbound.Encryption)) * 8, Integrity: p.Inbound.Integrity})
		if len(p.Inbound.EncKey) != enc || len(p.Inbound.IntegKey) != integ {
			t.Fatalf("installed key lengths %d/%d, want %d/%d", len(p.Inbound.EncKey), len(p.Inbound.IntegKey), enc, integ)
		}
	}
}

// close stops every timer of both engines and releases their posts.
func (h *qmHarness) close() {
	for _, e := range []*Engine{h.cgw, h.vgw} {
		e.shutdown()
		close(e.done)
	}
}

// qm1Seed is one fuzz seed: a QM1 chain (first payload type, then the
// payloads) and whether the vgw accepts it.
type qm1Seed struct {
	name    string
	data    []byte
	accepts bool
}

// qm1Seeds builds QM1 chains the way an initiator does, and the defects of
// docs/hostile-input.md.
func qm1Seeds(t testing.TB) []qm1Seed {
	esp := func(pfs uint16) []Phase2Proposal {
		return []Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA2256, PFSGroup: pfs}}
	}
	ke := func(group uint16) *isakmp.KE {
		g, _ := dh.ByID(group)
		k, err := g.Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return &isakmp.KE{Data: k.Public()}
	}
	all := netip.MustParsePrefix("0.0.0.0/0")
	ids := func() []isakmp.Payload { return []isakmp.Payload{isakmp.IDFromPrefix(all), isakmp.IDFromPrefix(all)} }
	chain := func(pfs uint16, life time.Duration, nonce int, extra ...isakmp.Payload) []isakmp.Payload {
		ps := []isakmp.Payload{phase2SA(esp(pfs), 0x5eed0001, life, 0, isakmp.EncapTunnel, pfs), &isakmp.Nonce{Data: randomBytes(nonce)}}
		return append(ps, extra...)
	}
	portID := isakmp.IDFromPrefix(all)
	portID.ProtocolID, portID.Port = 6, 179
	seeds := []struct {
		name    string
		ps      []isakmp.Payload
		accepts bool
	}{
		{"no-pfs", chain(0, time.Hour, 32, ids()...), true},
		{"no-ids", chain(0, time.Hour, 32), true},
		{"pfs-modp2048", chain(14, time.Hour, 32, append([]isakmp.Payload{ke(14)}, ids()...)...), true},
		{"pfs-ecp256", chain(19, time.Hour, 16, append([]isakmp.Payload{ke(19)}, ids()...)...), true},
		{"lifetime-overflow", setSALife(overflowSeconds)(chain(0, time.Hour, 32, ids()...)), true},
		{"empty-ke-no-pfs", chain(0, time.Hour, 32, append([]isakmp.Payload{&isakmp.KE{}}, ids()...)...), false},
		{"empty-ke-pfs", chain(14, time.Hour, 32, append([]isakmp.Payload{&isakmp.KE{}}, ids()...)...), false},
		{"nonce-7", chain(0, time.Hour, 7, ids()...), false},
		{"id-port", chain(0, time.Hour, 32, portID, isakmp.IDFromPrefix(all)), false},
		{"one-id", chain(0, time.Hour, 32, isakmp.IDFromPrefix(all)), false},
	}
	var out []qm1Seed
	for _, sd := range seeds {
		first, body, err := isakmp.EncodePayloads(sd.ps)
		if err != nil {
			t.Fatalf("%s: %v", sd.name, err)
		}
		out = append(out, qm1Seed{sd.name, append([]byte{byte(first)}, body...), sd.accepts})
	}
	return out
}

// TestQM1Harness checks the fuzz harness itself: phase 1 completes, the
// seeds that are valid QM1s are installed on both engines with matching
// keys, and the others are refused without a pair. A harness that never got
// a QM1 through would make FuzzQM1 a toy.
func TestQM1Harness(t *testing.T) {
	for _, seed := range qm1Seeds(t) {
		h := newQMHarness(t)
		h.sendQM1(seed.data[0], seed.data[1:])
		h.pump(8)
		h.checkInvariants(t)
		vp, cp := h.vdp.Pairs(), h.cdp.Pairs()
		if !seed.accepts {
			if len(vp) != 0 {
				t.Errorf("%s: the vgw installed a pair", seed.name)
			}
			h.close()
			continue
		}
		if len(vp) != 1 || len(cp) != 1 {
			t.Errorf("%s: installed pairs vgw %d, cgw %d; want 1 and 1", seed.name, len(vp), len(cp))
		} else if vp[0].Inbound.SPI != cp[0].Outbound.SPI {
			t.Errorf("%s: the two sides' SPIs do not cross", seed.name)
		} else if !strings.HasPrefix(seed.name, "pfs-") && string(vp[0].Inbound.EncKey) != string(cp[0].Outbound.EncKey) {
			// With PFS the harness cannot know the private value behind
			// the seed's KE, so only the vgw's keys are right.
			t.Errorf("%s: the two sides' pairs do not match", seed.name)
		} else if vp[0].Lifetime != time.Hour {
			t.Errorf("%s: lifetime %v, want 1h0m0s", seed.name, vp[0].Lifetime)
		}
		h.close()
	}
}
