package ike

import (
	"net/netip"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// IKEv2 responder details checked on the fuzz harness (engines without
// loops or sockets, ikev2_fuzz_test.go's v2AuthHarness): an unreadable
// IKE_AUTH, peer identities, the liveness answer, NAT rebinding.

// TestIKEv2AuthInvalidSyntax: an authenticated IKE_AUTH request without
// AUTH is answered INVALID_SYNTAX (encrypted, RFC 7296 section 2.21.2) and
// the responder's IKE SA is gone with the reason in the tunnel's error.
func TestIKEv2AuthInvalidSyntax(t *testing.T) {
	timers := &recordedTimers{}
	defer timers.stopAll()
	h, sa := v2AuthHarness(t, timers)
	inner := []wire.Payload{wire.IDFromAddr(harnessC, false)}
	msg, err := sa.sealer.Seal(sa.header(wire.ExchangeIKEAuth, 1, false), inner, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.vgw.handleDatagram(h.vgw.sockets[netip.AddrPortFrom(harnessV, DefaultPorts.IKE)], netip.AddrPortFrom(harnessC, DefaultPorts.IKE), msg)
	if len(h.wire.pkts) != 1 {
		t.Fatalf("%d answers", len(h.wire.pkts))
	}
	ps, err := sa.open(h.wire.pkts[0].b)
	if err != nil || len(ps) != 1 || wire.FindNotify(ps, wire.NotifyInvalidSyntax) == nil {
		t.Fatalf("answer %v (%v), want one INVALID_SYNTAX notify", ps, err)
	}
	tun := h.vgw.byName["tunnel1"]
	if len(h.vgw.sas2) != 0 || h.vgw.halfOpen != 0 || tun.lastError != "IKEv2: IKE_AUTH request without IDi or AUTH" {
		t.Fatalf("IKEv2 SAs %d, half-open %d, error %q", len(h.vgw.sas2), h.vgw.halfOpen, tun.lastError)
	}
}

// TestIKEv2PeerIdentity: with RemoteID set only that address identity is
// accepted; with RemoteID "any" (not set) address, FQDN, e-mail and
// KEY_ID identities are, empty or other types are not.
func TestIKEv2PeerIdentity(t *testing.T) {
	_, vt := v2FuzzTunnels()
	tun := &tunnel{cfg: &vt}
	sa := &ikev2SA{t: tun}
	want := netip.MustParseAddr("192.0.2.1")
	vt.RemoteID = want
	if sa.checkPeerID(wire.IDFromAddr(want, false)) != nil {
		t.Fatal("the configured identity was refused")
	}
	for _, id := range []*wire.ID{wire.IDFromAddr(netip.MustParseAddr("192.0.2.9"), false), {IDType: wire.IDFQDN, Data: []byte("cgw.example")}} {
		if sa.checkPeerID(id) == nil {
			t.Fatalf("%s accepted with RemoteID %s", describeID(id), want)
		}
	}
	vt.RemoteID = netip.Addr{}
	for _, id := range []*wire.ID{wire.IDFromAddr(netip.MustParseAddr("198.51.100.4"), false), {IDType: wire.IDFQDN, Data: []byte("cgw.example")},
		{IDType: wire.IDRFC822Addr, Data: []byte("vpn@example.com")}, {IDType: wire.IDKeyID, Data: []byte{1, 2, 3}}} {
		if err := sa.checkPeerID(id); err != nil {
			t.Fatalf("%s refused with RemoteID any: %v", describeID(id), err)
		}
	}
	for _, id := range []*wire.ID{{IDType: wire.IDFQDN}, {IDType: wire.IDDERASN1DN, Data: []byte{0x30, 0}}} {
		if sa.checkPeerID(id) == nil {
			t.Fatalf("%s accepted", describeID(id))
		}
	}
}

// TestIKEv2EmptyInformationalAnswered: once the IKE SA is up, an empty
// INFORMATIONAL request (a liveness check) gets an empty response, a
// retransmission of it the cached one; a DELETE of the IKE SA is answered and applied.
func TestIKEv2EmptyInformationalAnswered(t *testing.T) {
	timers := &recordedTimers{}
	defer timers.stopAll()
	h, sa := v2AuthHarness(t, timers)
	inner, err := sa.authRequestPayloads()
	if err != nil {
		t.Fatal(err)
	}
	s := h.vgw.sockets[netip.AddrPortFrom(harnessV, DefaultPorts.IKE)]
	from := netip.AddrPortFrom(harnessC, DefaultPorts.IKE)
	auth, _ := sa.sealer.Seal(sa.header(wire.ExchangeIKEAuth, 1, false), inner, nil)
	h.vgw.handleDatagram(s, from, auth)
	h.wire.pkts = nil
	req, _ := sa.sealer.Seal(sa.header(wire.ExchangeInformational, 2, false), nil, nil)
	for i := 0; i < 2; i++ {
		h.vgw.handleDatagram(s, from, req)
		if len(h.wire.pkts) != 1 {
			t.Fatalf("try %d: %d answers", i, len(h.wire.pkts))
		}
		hdr, _ := wire.DecodeHeader(h.wire.pkts[0].b)
		ps, err := sa.open(h.wire.pkts[0].b)
		if err != nil || len(ps) != 0 || !hdr.Response() || hdr.MessageID != 2 || hdr.Exchange != wire.ExchangeInformational {
			t.Fatalf("try %d: answer %+v %v (%v)", i, hdr, ps, err)
		}
		h.wire.pkts = nil
	}
	// A DELETE of the IKE SA (ikev2_informational.go): an empty response,
	// then the IKE SA is gone.
	del, _ := sa.sealer.Seal(sa.header(wire.ExchangeInformational, 3, false), []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}}, nil)
	h.vgw.handleDatagram(s, from, del)
	if len(h.wire.pkts) != 1 {
		t.Fatalf("a DELETE got %d answers", len(h.wire.pkts))
	}
	if ps, err := sa.open(h.wire.pkts[0].b); err != nil || len(ps) != 0 {
		t.Fatalf("the DELETE's answer: %v (%v), want empty", ps, err)
	}
	if len(h.vgw.sas2) != 0 {
		t.Fatalf("%d IKEv2 SAs left after the peer's DELETE", len(h.vgw.sas2))
	}
}

// TestIKEv2PeerMoved: NAT rebinding reported by the data path (ESP from a
// new address and port) moves a floated IKEv2 SA with the pairs.
func TestIKEv2PeerMoved(t *testing.T) {
	timers := &recordedTimers{}
	defer timers.stopAll()
	ct, vt := v2FuzzTunnels()
	ct.ForceEncap, vt.ForceEncap = true, true
	w := &harnessWire{}
	h := &qmHarness{wire: w}
	h.cgw, h.cdp = harnessEngine(t, ct, w)
	h.vgw, h.vdp = harnessEngine(t, vt, w)
	h.cgw.clock, h.vgw.clock = timers, timers
	if !v2HandshakeOnce(h) {
		t.Fatal("no IKEv2 tunnel with UDP encapsulation")
	}
	tun := h.vgw.byName["tunnel1"]
	sa := tun.v2
	if !sa.floated || !tun.children[0].pair.UDPEncap {
		t.Fatal("not floated")
	}
	to := netip.AddrPortFrom(netip.MustParseAddr("203.0.113.9"), 40000)
	tun.peerMoved(sa.remote, to, "ESP")
	if sa.remote != to || tun.children[0].pair.Remote != to {
		t.Fatalf("IKE SA at %v, pair at %v; want %v", sa.remote, tun.children[0].pair.Remote, to)
	}
}
