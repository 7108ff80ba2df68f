package ike

// Hostile input at dispatch and in phase 1 (docs/hostile-input.md, "Phase 1
// and dispatch"): each test sends what an attacker on the path could, and
// checks the counted, logged reaction and that the tunnel is unharmed.

import (
	crand "crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// rawPeer is a UDP socket of the test that speaks for (or spoofs) a peer.
type rawPeer struct {
	t    *testing.T
	conn *net.UDPConn
}

func newRawPeer(t *testing.T, at netip.AddrPort) *rawPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(at))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawPeer{t: t, conn: conn}
}

func (p *rawPeer) send(to netip.AddrPort, m *isakmp.Message) {
	p.t.Helper()
	b, err := m.Encode()
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.conn.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next message within d, or nil.
func (p *rawPeer) recv(d time.Duration) *isakmp.Message {
	p.conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	n, _, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil
	}
	m, err := isakmp.Decode(buf[:n])
	if err != nil {
		p.t.Fatalf("undecodable answer: %v", err)
	}
	return m
}

func mm1(tc TunnelConfig, icky [8]byte, extra ...isakmp.Payload) *isakmp.Message {
	ps := append([]isakmp.Payload{phase1SA(tc.Phase1.Proposals, time.Hour, 0)}, extra...)
	return &isakmp.Message{Header: isakmp.Header{ICookie: icky, Version: isakmp.Version, Exchange: isakmp.ExchangeIdentityProtection}, Payloads: ps}
}

func plainNotifyMsg(icky, rcky [8]byte, nt isakmp.NotifyType) *isakmp.Message {
	return &isakmp.Message{
		Header:   isakmp.Header{ICookie: icky, RCookie: rcky, Version: isakmp.Version, Exchange: isakmp.ExchangeInformational},
		Payloads: []isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoISAKMP, NotifyType: nt}},
	}
}

func cookiesOf(t *testing.T, ts TunnelStatus) (i, r [8]byte) {
	t.Helper()
	a, err1 := hex.DecodeString(ts.ICookie)
	b, err2 := hex.DecodeString(ts.RCookie)
	if err1 != nil || err2 != nil || len(a) != 8 || len(b) != 8 {
		t.Fatalf("cookies %q %q", ts.ICookie, ts.RCookie)
	}
	copy(i[:], a)
	copy(r[:], b)
	return i, r
}

// TestZeroInitiatorCookieDropped: an MM1 with a zero initiator cookie from
// the configured peer is neither answered nor kept (before, every copy got
// an MM2 and its own half-open SA).
func TestZeroInitiatorCookieDropped(t *testing.T) {
	t.Parallel()
	c, v, ports := loopPair()
	vt := baseTunnel(v, c, ports)
	vgw := startGW(t, "vgw", Config{Tunnels: []TunnelConfig{vt}, Ports: ports})
	time.Sleep(50 * time.Millisecond)
	p := newRawPeer(t, netip.AddrPortFrom(c, ports.IKE))
	for i := 0; i < 3; i++ {
		p.send(netip.AddrPortFrom(v, ports.IKE), mm1(vt, [8]byte{}))
	}
	if m := p.recv(500 * time.Millisecond); m != nil {
		t.Fatalf("answered an MM1 with a zero initiator cookie: %s", m.Header.Exchange)
	}
	st := vgw.e.Status().Counters
	if st.ZeroCookie != 3 || st.HalfOpen != 0 {
		t.Fatalf("zero_cookie %d (want 3), half_open %d (want 0)", st.ZeroCookie, st.HalfOpen)
	}
	if !strings.Contains(vgw.logs.String(), "zero initiator cookie") {
		t.Fatal("no log line for the zero cookie")
	}
}

// TestReusedInitiatorCookieDropped: a message that reuses a half-open SA's
// initiator cookie with a zero responder cookie but is not a retransmission
// of its MM1 is dropped; the negotiation survives (before, it was taken for
// MM3, refused, and the half-open SA deleted). A true retransmission still
// gets the cached MM2.
func TestReusedInitiatorCookieDropped(t *testing.T) {
	t.Parallel()
	c, v, ports := loopPair()
	vt := baseTunnel(v, c, ports)
	vgw := startGW(t, "vgw", Config{Tunnels: []TunnelConfig{vt}, Ports: ports})
	time.Sleep(50 * time.Millisecond)
	p := newRawPeer(t, netip.AddrPortFrom(c, ports.IKE))
	to := netip.AddrPortFrom(v, ports.IKE)
	icky := randomCookie()
	first := mm1(vt, icky)
	p.send(to, first)
	mm2 := p.recv(2 * time.Second)
	if mm2 == nil || mm2.Header.RCookie == ([8]byte{}) {
		t.Fatal("no MM2")
	}
	p.send(to, mm1(vt, icky, &isakmp.VendorID{Data: []byte("forged")}))
	time.Sleep(200 * time.Millisecond)
	st := vgw.e.Status()
	if st.Counters.CookieMismatch != 1 || st.Counters.HalfOpen != 1 {
		t.Fatalf("cookie_mismatch %d (want 1), half_open %d (want 1: the negotiation survives)", st.Counters.CookieMismatch, st.Counters.HalfOpen)
	}
	if m := p.recv(100 * time.Millisecond); m != nil {
		t.Fatalf("the forged message was answered: %s %v", m.Header.Exchange, m.Notifies())
	}
	p.send(to, first)
	again := p.recv(2 * time.Second)
	if again == nil || again.Header.RCookie != mm2.Header.RCookie {
		t.Fatal("a retransmitted MM1 did not get the cached MM2")
	}
}

// TestSpoofedNotifyEstablished: plaintext error notifies with an
// established SA's cookies change nothing (before, they failed pending
// quick modes and set the tunnel's error).
func TestSpoofedNotifyEstablished(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	vs := vgw.tunnel(t)
	icky, rcky := cookiesOf(t, vs)
	local, _ := netip.ParseAddr(vs.RemoteAddr)
	remote, _ := netip.ParseAddr(vs.LocalAddr)
	ports := vgw.e.cfg.Ports
	p := newRawPeer(t, netip.AddrPortFrom(local, ports.IKE+2))
	for _, nt := range []isakmp.NotifyType{isakmp.NotifyInvalidHashInformation, isakmp.NotifyNoProposalChosen, isakmp.NotifyAuthenticationFailed} {
		p.send(netip.AddrPortFrom(remote, ports.IKE), plainNotifyMsg(icky, rcky, nt))
	}
	if err := vgw.e.Rekey("tunnel1", 2); err != nil { // a quick mode under way meanwhile
		t.Fatal(err)
	}
	for _, nt := range []isakmp.NotifyType{isakmp.NotifyInvalidHashInformation, isakmp.NotifyNoProposalChosen} {
		p.send(netip.AddrPortFrom(remote, ports.IKE), plainNotifyMsg(icky, rcky, nt))
	}
	time.Sleep(500 * time.Millisecond)
	after := vgw.tunnel(t)
	if after.Phase1State != "Established" || after.LastError != "" {
		t.Fatalf("phase 1 %s, last error %q after spoofed notifies", after.Phase1State, after.LastError)
	}
	if n := vgw.e.Status().Counters.UnauthenticatedNotifies; n != 5 {
		t.Fatalf("unauthenticated_notifies %d, want 5", n)
	}
	if after.Counters.Phase2Established < 2 {
		t.Fatalf("the quick mode under way did not complete: phase2_established %d", after.Counters.Phase2Established)
	}
	if !strings.Contains(vgw.logs.String(), "ignoring an unauthenticated (plaintext) error notify") {
		t.Fatal("no log line for the ignored notify")
	}
}

// TestSpoofedNotifyDuringPhase1: a forged NO-PROPOSAL-CHOSEN answers our
// MM1 before the real responder does; the negotiation goes on and comes up
// at the first retransmission (before, phase 1 failed at once and was
// retried only after the 5 s restart delay).
func TestSpoofedNotifyDuringPhase1(t *testing.T) {
	t.Parallel()
	c, v, ports := loopPair()
	vt := baseTunnel(v, c, ports)
	ct := baseTunnel(c, v, ports)
	ct.StartupAction = StartupStart
	fast := Config{RetransmitTimeout: 300 * time.Millisecond, RetransmitBase: 1.5, RetransmitTries: 4}
	spoofer := newRawPeer(t, netip.AddrPortFrom(v, ports.IKE))
	cc := fast
	cc.Tunnels, cc.Ports = []TunnelConfig{ct}, ports
	start := time.Now()
	cgw := startGW(t, "cgw", cc)
	first := spoofer.recv(3 * time.Second)
	if first == nil {
		t.Fatal("no MM1")
	}
	spoofer.send(netip.AddrPortFrom(c, ports.IKE), plainNotifyMsg(first.Header.ICookie, randomCookie(), isakmp.NotifyNoProposalChosen))
	time.Sleep(50 * time.Millisecond)
	spoofer.conn.Close()
	vc := fast
	vc.Tunnels, vc.Ports = []TunnelConfig{vt}, ports
	vgw := startGW(t, "vgw", vc)
	deadline := time.After(4 * time.Second)
	for up := false; !up; {
		select {
		case ev := <-cgw.events:
			if ev.Type == "error" || ev.Type == "phase1-down" {
				t.Fatalf("a forged notify ended phase 1: %s %v", ev.Type, ev.Detail)
			}
			up = ev.Type == "phase2-up"
		case <-deadline:
			t.Fatal("not up within 4 s")
		}
	}
	t.Logf("up after %v", time.Since(start).Round(time.Millisecond))
	if n := cgw.e.Status().Counters.UnauthenticatedNotifies; n != 1 {
		t.Fatalf("unauthenticated_notifies %d, want 1", n)
	}
	_ = vgw
}

// TestResponderTearsDownAfterRejectedHashR: the vgw's HASH_R is corrupted,
// the cgw refuses MM6 with an encrypted AUTHENTICATION-FAILED: the vgw,
// which established on sending MM6, must not stay Established.
func TestResponderTearsDownAfterRejectedHashR(t *testing.T) {
	t.Parallel()
	cgw, vgw := newImpairedPair(t, nil, []string{"corrupt-hash:main"}, func(ct, vt *TunnelConfig) { ct.StartupAction = StartupAdd })
	if err := cgw.e.Initiate("tunnel1"); err != nil {
		t.Fatal(err)
	}
	cgw.evs.wait(t, "error", detail("message", "HASH_R mismatch"), 5*time.Second)
	vgw.evs.wait(t, "notify-received", detail("notify", "AUTHENTICATION-FAILED"), 5*time.Second)
	vgw.evs.wait(t, "phase1-down", nil, 2*time.Second)
	ts := vgw.tunnel(t, "tunnel1")
	if ts.Phase1State == "Established" || !strings.Contains(ts.LastError, "refused phase 1") {
		t.Fatalf("vgw phase 1 %s, last error %q", ts.Phase1State, ts.LastError)
	}
}

// TestHalfOpenFloodFromOnePeer: 1,500 first messages from one configured
// peer address (more than the old engine-wide bound of 1,024) fill only
// that address's share; another configured peer's phase 1 comes up at once,
// without a retransmission.
func TestHalfOpenFloodFromOnePeer(t *testing.T) {
	t.Parallel()
	c1, v, ports := loopPair()
	c2 := netip.AddrFrom4([4]byte{c1.As4()[0], c1.As4()[1], c1.As4()[2], 3})
	vt1 := baseTunnel(v, c1, ports)
	vt2 := baseTunnel(v, c2, ports)
	vt2.Name = "tunnel2"
	vgw := startGW(t, "vgw", Config{Tunnels: []TunnelConfig{vt1, vt2}, Ports: ports})
	time.Sleep(50 * time.Millisecond)
	flood := newRawPeer(t, netip.AddrPortFrom(c1, ports.IKE+2))
	for i := 0; i < 1500; i++ {
		flood.send(netip.AddrPortFrom(v, ports.IKE), mm1(vt1, randomCookie()))
		if i%100 == 99 {
			time.Sleep(5 * time.Millisecond) // let the loop keep up: no socket-buffer loss
		}
	}
	var st Status
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st = vgw.e.Status(); st.Counters.Received >= 1400 {
			break
		}
	}
	t.Logf("flood: received %d, half-open %d, refused %d (per peer %d), limit %d", st.Counters.Received,
		st.Counters.HalfOpen, st.Counters.HalfOpenRefused, st.Counters.HalfOpenPeerRefused, st.Counters.HalfOpenLimit)
	ct := baseTunnel(c2, v, ports)
	ct.Name = "tunnel2"
	ct.StartupAction = StartupStart
	cgw := startGW(t, "cgw2", Config{Tunnels: []TunnelConfig{ct}, Ports: ports})
	cgw.waitEvent(t, "phase2-up", 3*time.Second) // the first retransmission would come after 4 s
	if r := cgw.tunnel(t).Counters.Retransmits; r != 0 {
		t.Fatalf("the other peer needed %d retransmissions", r)
	}
	if st.Counters.HalfOpen > halfOpenPerTunnel || st.Counters.HalfOpenPeerRefused == 0 {
		t.Fatalf("one peer address holds %d half-open SAs (want at most %d), %d refused by the per-peer bound",
			st.Counters.HalfOpen, halfOpenPerTunnel, st.Counters.HalfOpenPeerRefused)
	}
	if !strings.Contains(vgw.logs.String(), "too many half-open ISAKMP SAs from this peer address") {
		t.Fatal("no log line for the per-peer bound")
	}
}

// TestLateFirstMessageIgnored: a copy of MM1 that arrives after MM3 (late
// or duplicated on the way) is dropped; before, it was taken for MM5,
// refused as unencrypted, and the half-open negotiation ended.
func TestLateFirstMessageIgnored(t *testing.T) {
	t.Parallel()
	c, v, ports := loopPair()
	vt := baseTunnel(v, c, ports)
	vgw := startGW(t, "vgw", Config{Tunnels: []TunnelConfig{vt}, Ports: ports})
	time.Sleep(50 * time.Millisecond)
	p := newRawPeer(t, netip.AddrPortFrom(c, ports.IKE))
	to := netip.AddrPortFrom(v, ports.IKE)
	first := mm1(vt, randomCookie())
	p.send(to, first)
	mm2 := p.recv(2 * time.Second)
	if mm2 == nil {
		t.Fatal("no MM2")
	}
	g, err := dh.ByID(vt.Phase1.Proposals[0].DHGroup)
	if err != nil {
		t.Fatal(err)
	}
	k, err := g.Generate(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mm3 := &isakmp.Message{Header: isakmp.Header{ICookie: first.Header.ICookie, RCookie: mm2.Header.RCookie, Version: isakmp.Version,
		Exchange: isakmp.ExchangeIdentityProtection}, Payloads: []isakmp.Payload{&isakmp.KE{Data: k.Public()}, &isakmp.Nonce{Data: randomBytes(32)}}}
	p.send(to, mm3)
	if mm4 := p.recv(2 * time.Second); mm4 == nil || mm4.Find(isakmp.PayloadKE) == nil {
		t.Fatal("no MM4")
	}
	p.send(to, first) // the late copy
	if m := p.recv(300 * time.Millisecond); m != nil {
		t.Fatalf("the late MM1 was answered: %v", m.Notifies())
	}
	if st := vgw.e.Status(); st.Counters.HalfOpen != 1 || st.Tunnels[0].LastError != "" {
		t.Fatalf("half_open %d (want 1), last error %q", st.Counters.HalfOpen, st.Tunnels[0].LastError)
	}
}
