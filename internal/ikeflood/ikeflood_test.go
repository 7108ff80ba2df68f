package ikeflood

import (
	"context"
	"crypto"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/ike/status"
)

// TestFirstMessageDecodes: our parser reads the message back as a main
// mode first message with the one proposal it should carry.
func TestFirstMessageDecodes(t *testing.T) {
	ck := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	b, err := FirstMessage(ck)
	if err != nil {
		t.Fatal(err)
	}
	m, err := isakmp.Decode(b)
	if err != nil {
		t.Fatalf("our parser refuses the message: %v", err)
	}
	h := m.Header
	if h.ICookie != ck || h.RCookie != ([8]byte{}) || h.MessageID != 0 || h.Flags != 0 ||
		h.Exchange != isakmp.ExchangeIdentityProtection || h.Version != isakmp.Version || int(h.Length) != len(b) {
		t.Fatalf("header %+v", h)
	}
	if len(m.Payloads) != 1 {
		t.Fatalf("%d payloads, want the SA payload only", len(m.Payloads))
	}
	sa, ok := m.Payloads[0].(*isakmp.SA)
	if !ok || sa.DOI != isakmp.DOIIPsec || sa.Situation != isakmp.SituationIdentityOnly || len(sa.Proposals) != 1 {
		t.Fatalf("SA payload %+v", m.Payloads[0])
	}
	p := sa.Proposals[0]
	if p.Number != 1 || p.ProtocolID != isakmp.ProtoISAKMP || len(p.SPI) != 0 || len(p.Transforms) != 1 || p.Transforms[0].ID != isakmp.TransformKeyIKE {
		t.Fatalf("proposal %+v", p)
	}
	want := map[uint16]uint64{
		isakmp.AttrEncryptionAlgorithm:  uint64(isakmp.EncAESCBC),
		isakmp.AttrKeyLength:            256,
		isakmp.AttrHashAlgorithm:        uint64(isakmp.HashSHA2256),
		isakmp.AttrAuthenticationMethod: uint64(isakmp.AuthPSK),
		isakmp.AttrGroupDescription:     14,
		isakmp.AttrLifeType:             uint64(isakmp.LifeSeconds),
		isakmp.AttrLifeDuration:         28800,
	}
	attrs := p.Transforms[0].Attributes
	if len(attrs) != len(want) {
		t.Fatalf("%d attributes, want %d", len(attrs), len(want))
	}
	for _, a := range attrs {
		v, err := a.Uint()
		if w, ok := want[a.Type]; !ok || err != nil || v != w {
			t.Errorf("attribute %d = %d (%v), want %d", a.Type, v, err, want[a.Type])
		}
	}
	if _, err := FirstMessage([8]byte{}); err == nil {
		t.Fatal("a zero cookie was accepted")
	}
}

// listener collects what a flood sends to it.
type listener struct {
	conn    *net.UDPConn
	mu      sync.Mutex
	msgs    [][]byte
	arrival []time.Time
}

func listen(t *testing.T) *listener {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	l := &listener{conn: c}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.msgs = append(l.msgs, append([]byte(nil), buf[:n]...))
			l.arrival = append(l.arrival, time.Now())
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close() })
	return l
}

func (l *listener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

func sender(t *testing.T) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFloodSendsDistinctMessages: n messages arrive, each decodes, each has
// its own cookie; rate 0 is unlimited.
func TestFloodSendsDistinctMessages(t *testing.T) {
	t.Parallel()
	l := listen(t)
	sent, err := Flood(context.Background(), sender(t), l.conn.LocalAddr(), 2000, 0)
	if err != nil || sent != 2000 {
		t.Fatalf("Flood = %d, %v", sent, err)
	}
	waitUntil(t, "2000 messages", 5*time.Second, func() bool { return l.count() == 2000 })
	seen := map[[8]byte]bool{}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.msgs {
		m, err := isakmp.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if seen[m.Header.ICookie] {
			t.Fatalf("cookie %x sent twice", m.Header.ICookie)
		}
		seen[m.Header.ICookie] = true
	}
}

// TestFloodRate: 20 messages at 100/s take about 190 ms and are spaced; a
// cancelled context stops the flood early with its error.
func TestFloodRate(t *testing.T) {
	t.Parallel()
	l := listen(t)
	start := time.Now()
	sent, err := Flood(context.Background(), sender(t), l.conn.LocalAddr(), 20, 100)
	took := time.Since(start)
	if err != nil || sent != 20 {
		t.Fatalf("Flood = %d, %v", sent, err)
	}
	if took < 180*time.Millisecond || took > 2*time.Second {
		t.Fatalf("20 messages at 100/s took %v, want about 190ms", took)
	}
	waitUntil(t, "20 messages", 2*time.Second, func() bool { return l.count() == 20 })
	l.mu.Lock()
	for i := 1; i < len(l.arrival); i++ {
		if gap := l.arrival[i].Sub(l.arrival[i-1]); gap < 5*time.Millisecond {
			t.Errorf("messages %d and %d %v apart at 100/s", i, i+1, gap)
		}
	}
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	sent, err = Flood(ctx, sender(t), l.conn.LocalAddr(), 1000, 10)
	if !errors.Is(err, context.DeadlineExceeded) || sent < 2 || sent > 4 {
		t.Fatalf("Flood with a 250ms context at 10/s = %d, %v; want about 3 and the context's error", sent, err)
	}
	for _, bad := range []struct {
		n    int
		rate float64
	}{{-1, 0}, {1, -1}} {
		if _, err := Flood(context.Background(), sender(t), l.conn.LocalAddr(), bad.n, bad.rate); err == nil {
			t.Errorf("Flood(n=%d, rate=%v) accepted", bad.n, bad.rate)
		}
	}
}

// ---- against a real responder ----

const psk = "test.psk_for_vpnlab_1"

func tunnelCfg(name string, local, remote netip.Addr, ports policy.Ports) policy.Tunnel {
	return policy.Tunnel{
		Name: name, LocalAddr: local, RemoteAddr: remote, PSK: policy.Secret(psk), RemotePorts: ports,
		Phase1: policy.Phase1{Proposals: []policy.Phase1Proposal{
			{EncKeyBits: 128, Hash: crypto.SHA1, DHGroup: 14}, {EncKeyBits: 256, Hash: crypto.SHA256, DHGroup: 14}}},
		Phase2: policy.Phase2{Proposals: []policy.Phase2Proposal{
			{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA2256, PFSGroup: 14}}},
	}
}

type engine struct {
	e      *ike.Engine
	mu     sync.Mutex
	events []status.Event
}

func (g *engine) has(tunnel, typ string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, ev := range g.events {
		if ev.Tunnel == tunnel && ev.Type == typ {
			return true
		}
	}
	return false
}

func run(t *testing.T, cfg policy.Config) *engine {
	t.Helper()
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	e, err := ike.NewEngine(cfg, ike.WithLogger(lg))
	if err != nil {
		t.Fatal(err)
	}
	g := &engine{e: e}
	ch, unsub := e.Subscribe()
	go func() {
		for ev := range ch {
			g.mu.Lock()
			g.events = append(g.events, ev)
			g.mu.Unlock()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; unsub() })
	return g
}

// lab is a responder (vgw) with two tunnels towards two initiator addresses.
type lab struct {
	ports          policy.Ports
	vgw            *engine
	v1, v2, c1, c2 netip.Addr
}

const maxHalfOpen = 50

func newLab(t *testing.T) *lab {
	x, y := byte(rand.IntN(250)+1), byte(rand.IntN(250)+1)
	a := func(z byte) netip.Addr { return netip.AddrFrom4([4]byte{127, x, y, z}) }
	p := uint16(20000 + rand.IntN(20000))
	l := &lab{ports: policy.Ports{IKE: p, NATT: p + 1}, v1: a(1), c1: a(2), v2: a(3), c2: a(4)}
	l.vgw = run(t, policy.Config{Ports: l.ports, MaxHalfOpen: maxHalfOpen, Tunnels: []policy.Tunnel{
		tunnelCfg("tunnel1", l.v1, l.c1, l.ports), tunnelCfg("tunnel2", l.v2, l.c2, l.ports)}})
	time.Sleep(20 * time.Millisecond)
	return l
}

// initiator starts the customer side of one tunnel (startup action start,
// retransmitting every second for a minute).
func (l *lab) initiator(t *testing.T, name string, local, remote netip.Addr) *engine {
	tc := tunnelCfg(name, local, remote, l.ports)
	tc.StartupAction = policy.StartupStart
	return run(t, policy.Config{Ports: l.ports, Tunnels: []policy.Tunnel{tc},
		RetransmitTimeout: time.Second, RetransmitBase: 1, RetransmitTries: 60})
}

// floodFrom floods the vgw's tunnel address v from addr (another port than
// IKE's, as a flooding tool on the peer's host would).
func (l *lab) floodFrom(t *testing.T, addr netip.Addr, to netip.Addr, n int) (net.PacketConn, int) {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, l.ports.IKE+2)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sent, err := Flood(context.Background(), conn, net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, l.ports.IKE)), n, 0)
	if err != nil || sent != n {
		t.Fatalf("Flood = %d, %v", sent, err)
	}
	return conn, sent
}

// TestFloodHalfOpen floods a responder from a configured peer's address
// with 10 x its engine-wide half-open bound: the half-open ISAKMP SAs from
// that address rise to its per-peer bound (4 for its one tunnel, see
// ike/halfopen.go) and the rest is refused (half_open_refused and
// half_open_peer_refused); the engine-wide bound is not reached, so other
// peers are not held up. An established tunnel keeps
// serving during the flood (a phase 2 rekey on its ISAKMP SA completes); a
// new phase 1 is refused while the bound is reached and establishes once the
// flood's half-open SAs time out (30 s), without operator action.
func TestFloodHalfOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the responder's 30 s half-open timeout")
	}
	t.Parallel()
	l := newLab(t)
	cgw1 := l.initiator(t, "tunnel1", l.c1, l.v1)
	waitUntil(t, "tunnel1 up before the flood", 10*time.Second, func() bool { return cgw1.has("tunnel1", "phase2-up") })

	floodStart := time.Now()
	l.floodFrom(t, l.c2, l.v2, 10*maxHalfOpen)
	waitUntil(t, "the flood to be processed", 5*time.Second, func() bool {
		c := l.vgw.e.Status().Counters
		return c.HalfOpen+int(c.HalfOpenRefused) >= 10*maxHalfOpen
	})
	const perPeer = 4 // one tunnel is configured with the flooded address
	c := l.vgw.e.Status().Counters
	if c.HalfOpen != perPeer || c.HalfOpenRefused != 10*maxHalfOpen-perPeer || c.HalfOpenPeerRefused != c.HalfOpenRefused ||
		c.Received < 10*maxHalfOpen {
		t.Fatalf("after the flood: %+v; want half_open %d and half_open_refused = half_open_peer_refused = %d", c, perPeer, 10*maxHalfOpen-perPeer)
	}

	// The established tunnel keeps working: quick mode needs no new state.
	if err := cgw1.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a phase 2 rekey on tunnel1 during the flood", 5*time.Second, func() bool {
		return cgw1.e.Status().Tunnels[0].Counters.Phase2Established == 2
	})

	// A new phase 1 (tunnel2's real initiator, same address as the flood)
	// is refused while the bound is reached...
	cgw2 := l.initiator(t, "tunnel2", l.c2, l.v2)
	time.Sleep(2 * time.Second)
	if cgw2.has("tunnel2", "phase1-up") && time.Since(floodStart) < 25*time.Second {
		t.Fatal("tunnel2 established while the half-open bound was reached")
	}
	if refused := l.vgw.e.Status().Counters.HalfOpenRefused; refused <= 10*maxHalfOpen-perPeer {
		t.Fatalf("the real initiator's first messages were not refused (%d)", refused)
	}
	// ... and gets through once the flood's half-open SAs expire.
	waitUntil(t, "tunnel2 up after the flood's half-open SAs expired", 45*time.Second, func() bool { return cgw2.has("tunnel2", "phase2-up") })
	took := time.Since(floodStart)
	if took < 29*time.Second {
		t.Fatalf("tunnel2 came up %v after the flood, before the half-open timeout", took)
	}
	t.Logf("tunnel2 established %v after the flood began", took.Round(100*time.Millisecond))
	st := l.vgw.e.Status()
	if st.Counters.HalfOpen != 0 {
		t.Fatalf("half-open SAs left: %+v", st.Counters)
	}
	for _, ts := range st.Tunnels {
		if ts.Status != "UP" {
			t.Fatalf("vgw %s is %s", ts.Name, ts.Status)
		}
	}
}

// TestFloodFromUnknownSource: first messages from an address the responder
// has no tunnel for create no half-open state; each is answered with
// NO-PROPOSAL-CHOSEN and counted as unknown_peer, and a real initiator is
// not held up.
func TestFloodFromUnknownSource(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	stranger := netip.AddrFrom4([4]byte{127, l.v1.As4()[1], l.v1.As4()[2], 9})
	conn, _ := l.floodFrom(t, stranger, l.v1, 10*maxHalfOpen)
	waitUntil(t, "the flood to be processed", 5*time.Second, func() bool {
		return l.vgw.e.Status().Counters.UnknownPeer == 10*maxHalfOpen
	})
	c := l.vgw.e.Status().Counters
	if c.HalfOpen != 0 || c.HalfOpenRefused != 0 {
		t.Fatalf("counters %+v: a flood from an unknown source touched the half-open bound", c)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no answer to the flood: %v", err)
	}
	m, err := isakmp.Decode(buf[:n])
	if err != nil || len(m.Notifies()) != 1 || m.Notifies()[0].NotifyType != isakmp.NotifyNoProposalChosen {
		t.Fatalf("answer %v %+v, want NO-PROPOSAL-CHOSEN", err, m)
	}
	cgw := l.initiator(t, "tunnel1", l.c1, l.v1)
	waitUntil(t, "tunnel1 up right after the flood", 10*time.Second, func() bool { return cgw.has("tunnel1", "phase2-up") })
}
