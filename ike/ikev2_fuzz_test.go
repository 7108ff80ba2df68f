package ike

import (
	"net/netip"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// Fuzz targets of the IKEv2 responder, on the fuzz harness of the IKEv1
// ones (fuzz_harness_test.go: engines without loops or sockets, fixed DH
// keys): FuzzIKEv2FirstMessage feeds any datagram to a vgw as the first
// message of a peer; FuzzIKEv2AuthPayloads runs a real IKE_SA_INIT and
// then gives the vgw an IKE_AUTH request whose encrypted payload chain is
// the input (sealed with the initiator's real keys, so the input reaches
// the payload decoder and IKE_AUTH's checks, once as SK and once as a
// one-fragment SKF). Neither may panic, and the responder's state stays
// bounded:
//
//	go test -run '^$' -fuzz FuzzIKEv2FirstMessage -fuzztime 30s ./ike/

// v2FuzzTunnels are the harness tunnels speaking IKEv2.
func v2FuzzTunnels() (ct, vt TunnelConfig) {
	ct, vt = handshakeTunnels(14)
	ct.IKEVersions = []policy.Version{policy.IKEv2}
	vt.IKEVersions = []policy.Version{policy.IKEv2, policy.IKEv1}
	vt.Phase1.Proposals = awsVGWPhase1V2()
	return ct, vt
}

// v2SeedInit is a valid IKE_SA_INIT request of the harness customer.
func v2SeedInit(tb testing.TB) []byte {
	ct, _ := v2FuzzTunnels()
	w := &harnessWire{}
	e, _ := harnessEngine(tb, ct, w)
	timers := &recordedTimers{}
	defer timers.stopAll()
	e.clock = timers
	e.byName["tunnel1"].initiate("seed")
	if len(w.pkts) != 1 {
		tb.Fatalf("%d packets from the initiator", len(w.pkts))
	}
	return w.pkts[0].b
}

func FuzzIKEv2FirstMessage(f *testing.F) {
	seed := v2SeedInit(f)
	f.Add(seed)
	f.Add(seed[:wire.HeaderLen])
	trunc := append([]byte(nil), seed[:len(seed)-10]...)
	f.Add(trunc)
	f.Add([]byte{})
	_, vt := v2FuzzTunnels()
	f.Fuzz(func(t *testing.T, data []byte) {
		timers := &recordedTimers{}
		defer timers.stopAll()
		e, _ := harnessEngine(t, vt, &harnessWire{})
		e.clock = timers
		s := e.sockets[netip.AddrPortFrom(harnessV, DefaultPorts.IKE)]
		from := netip.AddrPortFrom(harnessC, DefaultPorts.IKE)
		e.handleDatagram(s, from, data)
		e.handleDatagram(s, from, data) // a retransmission of it
		if e.halfOpen > 1 || len(e.sas2) > 1 {
			t.Fatalf("one datagram made %d half-open SAs (%d IKEv2 SAs)", e.halfOpen, len(e.sas2))
		}
	})
}

// v2AuthHarness runs IKE_SA_INIT between the harness engines and returns
// them with the customer's SA, whose IKE_AUTH request is not delivered.
func v2AuthHarness(tb testing.TB, timers *recordedTimers) (*qmHarness, *ikev2SA) {
	ct, vt := v2FuzzTunnels()
	w := &harnessWire{}
	h := &qmHarness{wire: w}
	h.cgw, h.cdp = harnessEngine(tb, ct, w)
	h.vgw, h.vdp = harnessEngine(tb, vt, w)
	h.cgw.clock, h.vgw.clock = timers, timers
	h.cgw.byName["tunnel1"].initiate("fuzz")
	h.pump(2) // IKE_SA_INIT request and response; the IKE_AUTH request waits
	sa := h.cgw.byName["tunnel1"].v2
	if sa == nil || sa.state != v2AuthSent || len(w.pkts) != 1 {
		tb.Fatal("IKE_SA_INIT did not complete in the harness")
	}
	w.pkts = nil
	return h, sa
}

func FuzzIKEv2AuthPayloads(f *testing.F) {
	timers := &recordedTimers{}
	_, sa := v2AuthHarness(f, timers)
	inner, err := sa.authRequestPayloads()
	if err != nil {
		f.Fatal(err)
	}
	first, chain, err := wire.AppendPayloads(nil, inner)
	if err != nil {
		f.Fatal(err)
	}
	timers.stopAll()
	f.Add(uint8(first), chain)
	f.Add(uint8(first), chain[:len(chain)/2])
	f.Add(uint8(wire.PayloadIDi), []byte{0, 0, 0, 8, 1, 0, 0, 0})
	f.Add(uint8(wire.PayloadSA), []byte{})
	f.Fuzz(func(t *testing.T, firstType uint8, chain []byte) {
		timers := &recordedTimers{}
		defer timers.stopAll()
		h, sa := v2AuthHarness(t, timers)
		s := h.vgw.sockets[netip.AddrPortFrom(harnessV, DefaultPorts.IKE)]
		from := netip.AddrPortFrom(harnessC, DefaultPorts.IKE)
		hdr := sa.header(wire.ExchangeIKEAuth, 1, false)
		if ps, err := wire.DecodePayloads(wire.PayloadType(firstType), chain, 0); err == nil {
			if msg, err := sa.sealer.Seal(hdr, ps, nil); err == nil {
				h.vgw.handleDatagram(s, from, msg)
			}
		}
		if len(chain) > 0 && wire.PayloadType(firstType) != wire.PayloadSK && wire.PayloadType(firstType) != wire.PayloadSKF {
			if frag, err := sa.sealer.SealFragment(hdr, wire.PayloadType(firstType), chain, 1, 1, nil); err == nil {
				h.vgw.handleDatagram(s, from, frag)
			}
		}
		if h.vgw.halfOpen > 1 || len(h.vgw.sas2) > 1 {
			t.Fatalf("half-open %d, IKEv2 SAs %d", h.vgw.halfOpen, len(h.vgw.sas2))
		}
	})
}

// TestIKEv2FuzzSeedsWork: the valid seed of FuzzIKEv2AuthPayloads really
// authenticates (so the fuzzer starts from a message that reaches the
// end of IKE_AUTH), and the one of FuzzIKEv2FirstMessage is answered.
func TestIKEv2FuzzSeedsWork(t *testing.T) {
	timers := &recordedTimers{}
	defer timers.stopAll()
	h, sa := v2AuthHarness(t, timers)
	inner, err := sa.authRequestPayloads()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sa.sealer.Seal(sa.header(wire.ExchangeIKEAuth, 1, false), inner, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.vgw.handleDatagram(h.vgw.sockets[netip.AddrPortFrom(harnessV, DefaultPorts.IKE)], netip.AddrPortFrom(harnessC, DefaultPorts.IKE), msg)
	if v := h.vgw.byName["tunnel1"].v2; v == nil || v.state != v2Established || len(h.vdp.Pairs()) != 1 {
		t.Fatal("the IKE_AUTH seed did not establish the vgw's IKE SA and child SA")
	}
	_, vt := v2FuzzTunnels()
	e, _ := harnessEngine(t, vt, &harnessWire{})
	e.clock = timers
	e.handleDatagram(e.sockets[netip.AddrPortFrom(harnessV, DefaultPorts.IKE)], netip.AddrPortFrom(harnessC, DefaultPorts.IKE), v2SeedInit(t))
	if len(e.sas2) != 1 || e.halfOpen != 1 {
		t.Fatal("the IKE_SA_INIT seed was not answered")
	}
}
