package ike

import (
	"context"
	"crypto"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// testPSK satisfies AWS's PSK rules.
var testPSK = Secret("test.psk_for_vpnlab_1")

// loopPair returns two fresh loopback addresses and a port pair unique enough
// for parallel tests.
func loopPair() (a, b netip.Addr, ports Ports) {
	x, y := byte(rand.IntN(250)+1), byte(rand.IntN(250)+1)
	a = netip.AddrFrom4([4]byte{127, x, y, 1})
	b = netip.AddrFrom4([4]byte{127, x, y, 2})
	p := uint16(20000 + rand.IntN(20000))
	return a, b, Ports{IKE: p, NATT: p + 1}
}

func baseTunnel(local, remote netip.Addr, ports Ports) TunnelConfig {
	return TunnelConfig{
		Name: "tunnel1", LocalAddr: local, RemoteAddr: remote, PSK: testPSK, RemotePorts: ports,
		Phase1: Phase1Policy{
			Proposals: []Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA1, DHGroup: 14}},
			Lifetime:  28800 * time.Second,
		},
		Phase2: Phase2Policy{
			Proposals: []Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA1, PFSGroup: 14}},
			Lifetime:  3600 * time.Second,
		},
		RekeyMargin: 270 * time.Second, RekeyFuzz: 100, NATT: true,
	}
}

// awsVGWPhase1 returns the cross product of AWS's phase 1 defaults.
func awsVGWPhase1() []Phase1Proposal {
	var out []Phase1Proposal
	for _, enc := range []int{128, 256} {
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			for _, g := range []uint16{2, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24} {
				out = append(out, Phase1Proposal{EncKeyBits: enc, Hash: h, DHGroup: g})
			}
		}
	}
	return out
}

func awsVGWPhase2() []Phase2Proposal {
	var out []Phase2Proposal
	for _, g := range []uint16{0, 2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24} {
		for _, enc := range []int{128, 256} {
			for _, in := range []uint16{isakmp.AuthHMACSHA1, isakmp.AuthHMACSHA2256, isakmp.AuthHMACSHA2384, isakmp.AuthHMACSHA2512} {
				out = append(out, Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: enc, Integrity: in, PFSGroup: g})
			}
			out = append(out, Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKeyBits: enc, PFSGroup: g})
		}
	}
	return out
}

// gw is one running engine in a test.
type gw struct {
	e      *Engine
	dp     *MemoryDataPath
	events <-chan Event
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan struct{}
	// allowPanics: the test provokes handler panics on purpose.
	allowPanics bool
}

// checkNoPanics fails the test if the engine's loop recovered a panic
// (recover.go): the safety net must never hide a bug from the tests.
func checkNoPanics(t testing.TB, name string, e *Engine, allowed bool) {
	t.Helper()
	if allowed {
		return
	}
	if p := e.Status().Counters.Panics; p != 0 {
		t.Errorf("%s: the engine recovered %d panic(s); see the error lines of its log", name, p)
	}
}

type logBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.String()
}

func startGW(t testing.TB, name string, cfg Config, opts ...Option) *gw {
	t.Helper()
	lb := &logBuffer{}
	lg := logrus.New()
	lg.SetOutput(lb)
	lg.SetLevel(logrus.DebugLevel)
	if os.Getenv("VPNLAB_TEST_LOG") != "" {
		lg.SetOutput(os.Stderr)
	}
	dp := NewMemoryDataPath()
	e, err := NewEngine(cfg, append([]Option{WithLogger(lg.WithField("gw", name)), WithDataPath(dp)}, opts...)...)
	if err != nil {
		t.Fatalf("%s: NewEngine: %v", name, err)
	}
	ev, _ := e.Subscribe()
	ctx, cancel := context.WithCancel(context.Background())
	g := &gw{e: e, dp: dp, events: ev, logs: lb, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(g.done)
		if err := e.Run(ctx); err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
	}()
	t.Cleanup(func() {
		checkNoPanics(t, name, e, g.allowPanics)
		cancel()
		<-g.done
		if t.Failed() {
			t.Logf("---- %s log ----\n%s", name, lb.String())
		}
	})
	return g
}

// waitEvent waits for an event of type typ on tunnel (any tunnel if "").
func (g *gw) waitEvent(t testing.TB, typ string, d time.Duration) Event {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev := <-g.events:
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event within %v", typ, d)
		}
	}
}

func (g *gw) tunnel(t testing.TB) TunnelStatus {
	st := g.e.Status()
	if len(st.Tunnels) == 0 {
		t.Fatal("no tunnels in status")
	}
	return st.Tunnels[0]
}

type pairOpts struct {
	cgw func(*TunnelConfig)
	vgw func(*TunnelConfig)
}

// newPair starts a vgw (responder, AWS defaults) and a cgw (initiator).
func newPair(t *testing.T, o pairOpts) (cgw, vgw *gw) {
	t.Helper()
	c, v, ports := loopPair()
	vt := baseTunnel(v, c, ports)
	vt.Phase1.Proposals, vt.Phase1.Selection = awsVGWPhase1(), SelectLowestValue
	vt.Phase2.Proposals, vt.Phase2.Selection = awsVGWPhase2(), SelectLowestValue
	ct := baseTunnel(c, v, ports)
	ct.StartupAction = StartupStart
	if o.vgw != nil {
		o.vgw(&vt)
	}
	if o.cgw != nil {
		o.cgw(&ct)
	}
	fast := func(cfg *Config) {
		cfg.RetransmitTimeout = 300 * time.Millisecond
		cfg.RetransmitBase = 1.5
		cfg.RetransmitTries = 3
	}
	vc := Config{Tunnels: []TunnelConfig{vt}, Ports: ports}
	cc := Config{Tunnels: []TunnelConfig{ct}, Ports: ports}
	fast(&vc)
	fast(&cc)
	vgw = startGW(t, "vgw", vc)
	time.Sleep(20 * time.Millisecond) // let the responder bind first
	cgw = startGW(t, "cgw", cc)
	return cgw, vgw
}

func checkPairsMatch(t *testing.T, cgw, vgw *gw) {
	t.Helper()
	cp, vp := cgw.dp.Pairs(), vgw.dp.Pairs()
	if len(cp) != 1 || len(vp) != 1 {
		t.Fatalf("installed pairs: cgw %d, vgw %d; want 1 each", len(cp), len(vp))
	}
	a, b := cp[0], vp[0]
	if a.Inbound.SPI != b.Outbound.SPI || a.Outbound.SPI != b.Inbound.SPI {
		t.Fatalf("SPIs do not cross: cgw in %08x out %08x, vgw in %08x out %08x", a.Inbound.SPI, a.Outbound.SPI, b.Inbound.SPI, b.Outbound.SPI)
	}
	if string(a.Inbound.EncKey) != string(b.Outbound.EncKey) || string(a.Inbound.IntegKey) != string(b.Outbound.IntegKey) ||
		string(a.Outbound.EncKey) != string(b.Inbound.EncKey) || string(a.Outbound.IntegKey) != string(b.Inbound.IntegKey) {
		t.Fatal("keys of matching SAs differ between the gateways")
	}
	if string(a.Inbound.EncKey) == string(a.Outbound.EncKey) && len(a.Inbound.EncKey) > 0 {
		t.Fatal("inbound and outbound keys are equal")
	}
	enc, integ := keyLengths(Phase2Proposal{Protocol: a.Inbound.Protocol, Encryption: a.Inbound.Encryption, EncKeyBits: (len(a.Inbound.EncKey) - gcmSalt(a.Inbound.Encryption)) * 8, Integrity: a.Inbound.Integrity})
	if len(a.Inbound.EncKey) != enc || len(a.Inbound.IntegKey) != integ {
		t.Fatalf("key lengths %d/%d, want %d/%d", len(a.Inbound.EncKey), len(a.Inbound.IntegKey), enc, integ)
	}
}

func gcmSalt(enc uint8) int {
	if enc == isakmp.ESPAESGCM16 {
		return 4
	}
	return 0
}

func TestMainModeAndQuickMode(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{})
	start := time.Now()
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	t.Logf("phase 1 + phase 2 took %v", time.Since(start))
	checkPairsMatch(t, cgw, vgw)
	cs, vs := cgw.tunnel(t), vgw.tunnel(t)
	if cs.Phase1State != "Established" || vs.Phase2State != "Established" {
		t.Fatalf("states: cgw %s/%s vgw %s/%s", cs.Phase1State, cs.Phase2State, vs.Phase1State, vs.Phase2State)
	}
	if cs.Proposal != "aes128-sha1-modp2048" || vs.Proposal != "aes128-sha1-modp2048" {
		t.Fatalf("proposal cgw %q vgw %q", cs.Proposal, vs.Proposal)
	}
	if cs.NATDetected || vs.NATDetected {
		t.Fatal("NAT detected on a direct loopback path")
	}
	if len(vs.SAs) != 1 || vs.SAs[0].Proposal != "esp-aes128-sha1-modp2048" {
		t.Fatalf("vgw SAs %+v", vs.SAs)
	}
}

// TestAllDefaultAlgorithms negotiates every encryption, integrity and DH
// value the vgw defaults accept, each at least once (VPNLAB_LONG=1: the full
// product).
func TestAllDefaultAlgorithms(t *testing.T) {
	t.Parallel()
	encs := []int{128, 256}
	hashes := []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}
	groups := []uint16{2, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}
	pfs := []uint16{0, 2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}
	p2enc := []struct {
		enc   uint8
		bits  int
		integ bool
	}{{isakmp.ESPAESCBC, 128, true}, {isakmp.ESPAESCBC, 256, true}, {isakmp.ESPAESGCM16, 128, false}, {isakmp.ESPAESGCM16, 256, false}}
	type combo struct {
		p1 Phase1Proposal
		p2 Phase2Proposal
	}
	var combos []combo
	if os.Getenv("VPNLAB_LONG") != "" {
		for _, e := range encs {
			for _, h := range hashes {
				for _, g := range groups {
					combos = append(combos, combo{Phase1Proposal{EncKeyBits: e, Hash: h, DHGroup: g}, Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA1}})
				}
			}
		}
	}
	for i := 0; i < len(pfs); i++ {
		pe := p2enc[i%len(p2enc)]
		p2 := Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: pe.enc, EncKeyBits: pe.bits, PFSGroup: pfs[i]}
		if pe.integ {
			p2.Integrity = []uint16{isakmp.AuthHMACSHA1, isakmp.AuthHMACSHA2256, isakmp.AuthHMACSHA2384, isakmp.AuthHMACSHA2512}[i%4]
		}
		combos = append(combos, combo{Phase1Proposal{EncKeyBits: encs[i%2], Hash: hashes[i%4], DHGroup: groups[i%len(groups)]}, p2})
	}
	for i, c := range combos {
		c := c
		mode := MainMode
		if i%5 == 4 {
			mode = AggressiveMode
		}
		t.Run(fmt.Sprintf("%s_%s_%s", mode, c.p1, c.p2), func(t *testing.T) {
			cgw, vgw := newPair(t, pairOpts{
				cgw: func(tc *TunnelConfig) {
					tc.Phase1.Proposals = []Phase1Proposal{c.p1}
					tc.Phase2.Proposals = []Phase2Proposal{c.p2}
					tc.Phase1.Exchange = mode
				},
				vgw: func(tc *TunnelConfig) { tc.Phase1.AllowAggressive = true },
			})
			cgw.waitEvent(t, "phase2-up", 20*time.Second)
			vgw.waitEvent(t, "phase2-up", 20*time.Second)
			checkPairsMatch(t, cgw, vgw)
			vs := vgw.tunnel(t)
			if vs.Proposal != c.p1.String() || vs.SAs[0].Proposal != c.p2.String() || vs.Exchange != mode.String() {
				t.Fatalf("vgw chose %s / %s (%s), want %s / %s (%s)", vs.Proposal, vs.SAs[0].Proposal, vs.Exchange, c.p1, c.p2, mode)
			}
		})
	}
}

// TestAWSLowestValueSelection: the vgw picks the lowest value whatever the
// initiator's order.
func TestAWSLowestValueSelection(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{cgw: func(tc *TunnelConfig) {
		tc.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 256, Hash: crypto.SHA256, DHGroup: 14}, {EncKeyBits: 128, Hash: crypto.SHA512, DHGroup: 19}, {EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 14}}
		tc.Phase2.Proposals = []Phase2Proposal{
			{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 256, Integrity: isakmp.AuthHMACSHA2256},
			{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA2512},
			{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA2256},
		}
	}})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	vs := vgw.tunnel(t)
	if vs.Proposal != "aes128-sha256-modp2048" || vs.SAs[0].Proposal != "esp-aes128-sha256" {
		t.Fatalf("vgw chose %s / %s", vs.Proposal, vs.SAs[0].Proposal)
	}
}

func expectFailure(t *testing.T, g *gw, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-g.events:
			if ev.Type == "phase2-up" {
				t.Fatalf("tunnel came up; expected failure %q", want)
			}
			if ev.Type == "error" && strings.Contains(ev.Detail["message"], want) {
				return
			}
		case <-deadline:
			t.Fatalf("no error event containing %q", want)
		}
	}
}

func TestWrongPSK(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{cgw: func(tc *TunnelConfig) { tc.PSK = Secret("another.psk_entirely") }})
	expectFailure(t, vgw, "pre-shared key mismatch")
	expectFailure(t, cgw, "pre-shared key mismatch")
	for _, g := range []*gw{cgw, vgw} {
		if strings.Contains(g.logs.String(), string(testPSK)) || strings.Contains(g.logs.String(), "another.psk_entirely") {
			t.Fatal("a pre-shared key appears in the log")
		}
	}
	if !strings.Contains(vgw.logs.String(), "invalid pre-shared key") {
		t.Fatal("vgw log does not explain the PSK mismatch")
	}
}

func TestNoProposalChosen(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{cgw: func(tc *TunnelConfig) {
		tc.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 192, Hash: crypto.SHA1, DHGroup: 5}}
	}})
	expectFailure(t, vgw, "no phase 1 proposal matched")
	expectFailure(t, cgw, "NO-PROPOSAL-CHOSEN")
	if !strings.Contains(vgw.logs.String(), "No Proposal Match Found") {
		t.Fatal("vgw log lacks the AWS wording")
	}
}

func TestPhase2NoProposalChosen(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{cgw: func(tc *TunnelConfig) {
		tc.Phase2.Proposals = []Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 192, Integrity: isakmp.AuthHMACSHA1}}
	}})
	expectFailure(t, vgw, "no phase 2 proposal matched")
	expectFailure(t, cgw, "NO-PROPOSAL-CHOSEN")
}

func TestTrafficSelectorMismatch(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{
		vgw: func(tc *TunnelConfig) {
			tc.Phase2.LocalTS = netip.MustParsePrefix("172.31.0.0/16")
			tc.Phase2.RemoteTS = netip.MustParsePrefix("10.10.0.0/16")
		},
		cgw: func(tc *TunnelConfig) {
			tc.Phase2.LocalTS = netip.MustParsePrefix("10.20.0.0/16")
			tc.Phase2.RemoteTS = netip.MustParsePrefix("172.31.0.0/16")
		},
	})
	expectFailure(t, vgw, "traffic selectors do not match")
	expectFailure(t, cgw, "INVALID-ID-INFORMATION")
}

func TestAggressiveModeRefusedByDefault(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{cgw: func(tc *TunnelConfig) { tc.Phase1.Exchange = AggressiveMode }})
	expectFailure(t, vgw, "aggressive mode refused")
	expectFailure(t, cgw, "NO-PROPOSAL-CHOSEN")
}

func TestTerminateSendsDelete(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	if err := cgw.e.Terminate("tunnel1"); err != nil {
		t.Fatal(err)
	}
	vgw.waitEvent(t, "phase2-down", 5*time.Second)
	vgw.waitEvent(t, "phase1-down", 5*time.Second)
	if n := len(vgw.dp.Pairs()); n != 0 {
		t.Fatalf("vgw still has %d pairs", n)
	}
	if err := cgw.e.Terminate("nope"); err == nil || !strings.Contains(err.Error(), "unknown tunnel") {
		t.Fatalf("Terminate(unknown) = %v", err)
	}
}

func TestPhase2RekeyMakeBeforeBreak(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	old := cgw.dp.Pairs()[0]
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	if n := len(cgw.dp.Pairs()); n != 2 {
		t.Fatalf("during make-before-break cgw has %d pairs, want 2", n)
	}
	// Traffic on the new inbound SA: now the old pair goes, on both sides.
	for _, p := range cgw.dp.Pairs() {
		if p.Inbound.SPI != old.Inbound.SPI {
			cgw.dp.MarkInbound(p.Inbound.Protocol, p.Inbound.SPI)
		}
	}
	cgw.waitEvent(t, "phase2-down", 5*time.Second)
	vgw.waitEvent(t, "phase2-down", 5*time.Second)
	if len(cgw.dp.Pairs()) != 1 || len(vgw.dp.Pairs()) != 1 {
		t.Fatalf("after switchover: cgw %d vgw %d pairs", len(cgw.dp.Pairs()), len(vgw.dp.Pairs()))
	}
	checkPairsMatch(t, cgw, vgw)
}

func TestPhase1Rekey(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	first := cgw.tunnel(t).ICookie
	if err := cgw.e.Rekey("tunnel1", 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		cs, vs := cgw.tunnel(t), vgw.tunnel(t)
		if cs.ICookie != first && cs.Phase1State == "Established" && vs.ICookie == cs.ICookie {
			if len(cgw.dp.Pairs()) != 1 {
				t.Fatalf("phase 1 rekey changed the IPsec SAs: %d pairs", len(cgw.dp.Pairs()))
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("phase 1 rekey did not complete: cgw %+v", cgw.tunnel(t))
}

func TestAutomaticRekeyFromLifetime(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{cgw: func(tc *TunnelConfig) {
		tc.Phase2.Lifetime = 3 * time.Second
		tc.RekeyMargin = 1500 * time.Millisecond
		tc.RekeyFuzz = 0
	}})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	ev := cgw.waitEvent(t, "phase2-up", 10*time.Second) // the rekeyed pair
	if ev.Detail["spi_in"] == "" {
		t.Fatal("rekey event without SPI")
	}
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
}

// relay forwards UDP between cgw and vgw through its own addresses (like a
// NAT), and can drop packets.
type relay struct {
	dup   bool // send every cgw->vgw datagram twice
	drop  func(dir string, n int, b []byte) bool
	count map[string]*atomic.Int64
	conns []*net.UDPConn
}

// newRelay: cgw talks to cgwSide; vgw sees packets from vgwSide.
func newRelay(t *testing.T, cgwSide, vgwSide, cgwAddr, vgwAddr netip.Addr, ports Ports, drop func(dir string, n int, b []byte) bool, dup bool) {
	r := &relay{drop: drop, dup: dup, count: map[string]*atomic.Int64{"c2v": {}, "v2c": {}}}
	for _, p := range []uint16{ports.IKE, ports.NATT} {
		if p == 0 {
			continue // the caller relays this port itself
		}
		a, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(cgwSide, p)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(vgwSide, p)))
		if err != nil {
			t.Fatal(err)
		}
		r.conns = append(r.conns, a, b)
		go r.pump(a, b, netip.AddrPortFrom(vgwAddr, p), "c2v")
		go r.pump(b, a, netip.AddrPortFrom(cgwAddr, p), "v2c")
	}
	t.Cleanup(func() {
		for _, c := range r.conns {
			c.Close()
		}
	})
}

func (r *relay) pump(in, out *net.UDPConn, to netip.AddrPort, dir string) {
	buf := make([]byte, 65536)
	for {
		n, _, err := in.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		k := int(r.count[dir].Add(1))
		if r.drop != nil && r.drop(dir, k, buf[:n]) {
			continue
		}
		out.WriteToUDPAddrPort(buf[:n], to)
		if r.dup && dir == "c2v" {
			out.WriteToUDPAddrPort(buf[:n], to)
		}
	}
}

// newRelayedPair runs cgw -> relay -> vgw; the relay changes addresses, so
// NAT-D detects a NAT and IKE floats to the NAT-T port.
func newRelayedPair(t *testing.T, drop func(dir string, n int, b []byte) bool) (cgw, vgw *gw) {
	return newRelayedPairOpts(t, drop, false)
}

func newRelayedPairOpts(t *testing.T, drop func(dir string, n int, b []byte) bool, dup bool) (cgw, vgw *gw) {
	return newRelayedPairMod(t, drop, dup, nil)
}

// newRelayedPairMod is newRelayedPairOpts with a hook that changes both
// tunnel configurations before the gateways start.
func newRelayedPairMod(t *testing.T, drop func(dir string, n int, b []byte) bool, dup bool, mod func(ct, vt *TunnelConfig)) (cgw, vgw *gw) {
	c, v, ports := loopPair()
	rc := netip.AddrFrom4([4]byte{127, c.As4()[1], c.As4()[2], 3})
	rv := netip.AddrFrom4([4]byte{127, c.As4()[1], c.As4()[2], 4})
	newRelay(t, rc, rv, c, v, ports, drop, dup)
	vt := baseTunnel(v, rv, ports)
	vt.RemoteID = c
	vt.Phase1.Proposals, vt.Phase1.Selection = awsVGWPhase1(), SelectLowestValue
	vt.Phase2.Proposals, vt.Phase2.Selection = awsVGWPhase2(), SelectLowestValue
	ct := baseTunnel(c, rc, ports)
	ct.RemoteID = v
	ct.StartupAction = StartupStart
	if mod != nil {
		mod(&ct, &vt)
	}
	fast := func(cfg *Config) {
		cfg.RetransmitTimeout = 300 * time.Millisecond
		cfg.RetransmitBase = 1.5
		cfg.RetransmitTries = 4
	}
	vc := Config{Tunnels: []TunnelConfig{vt}, Ports: ports}
	cc := Config{Tunnels: []TunnelConfig{ct}, Ports: ports}
	fast(&vc)
	fast(&cc)
	vgw = startGW(t, "vgw", vc)
	time.Sleep(20 * time.Millisecond)
	cgw = startGW(t, "cgw", cc)
	return cgw, vgw
}

func TestNATTraversalFloat(t *testing.T) {
	t.Parallel()
	cgw, vgw := newRelayedPair(t, nil)
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	cs, vs := cgw.tunnel(t), vgw.tunnel(t)
	if !cs.NATDetected || !vs.NATDetected || !cs.Floated || !vs.Floated {
		t.Fatalf("NAT-T not in use: cgw %+v vgw %+v", cs, vs)
	}
	p := vgw.dp.Pairs()[0]
	if !p.UDPEncap || p.Remote.Port() == 0 {
		t.Fatalf("SA not UDP-encapsulated: %+v", p)
	}
	checkPairsMatch(t, cgw, vgw)
}

// TestNATOATransportMode: transport mode through the relaying NAT carries
// NAT-OA both ways (RFC 3947 section 5.2) and each side hands the peer's
// original address and its own address as the peer knows it to the data
// path, for the checksum fix-up of RFC 3948 section 3.1.2.
func TestNATOATransportMode(t *testing.T) {
	t.Parallel()
	var c, v, rc, rv netip.Addr
	cgw, vgw := newRelayedPairMod(t, nil, false, func(ct, vt *TunnelConfig) {
		ct.Phase2.Mode, vt.Phase2.Mode = ModeTransport, ModeTransport
		c, rc, v, rv = ct.LocalAddr, ct.RemoteAddr, vt.LocalAddr, vt.RemoteAddr
		// Transport mode protects the gateways' own traffic: each side's
		// selectors are the addresses it knows.
		ct.Phase2.LocalTS, ct.Phase2.RemoteTS = netip.PrefixFrom(c, 32), netip.PrefixFrom(rc, 32)
		vt.Phase2.LocalTS, vt.Phase2.RemoteTS = netip.PrefixFrom(rc, 32), netip.PrefixFrom(c, 32)
	})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	cp, vp := cgw.dp.Pairs()[0], vgw.dp.Pairs()[0]
	if cp.Mode != ModeTransport || !cp.UDPEncap {
		t.Fatalf("cgw pair: mode %v udp %v, want transport in UDP", cp.Mode, cp.UDPEncap)
	}
	// The vgw's peer (cgw) originally is c and believes the vgw is rc.
	if vp.OriginalRemote != c || vp.OriginalLocal != rc {
		t.Fatalf("vgw NAT-OA: original remote %v local %v, want %v %v", vp.OriginalRemote, vp.OriginalLocal, c, rc)
	}
	// The cgw's peer (vgw) originally is v and sees the cgw as rv.
	if cp.OriginalRemote != v || cp.OriginalLocal != rv {
		t.Fatalf("cgw NAT-OA: original remote %v local %v, want %v %v", cp.OriginalRemote, cp.OriginalLocal, v, rv)
	}
}

// TestLostPackets drops the first MM3, the first MM4, the first QM1 and the
// first QM2: retransmission must still bring the tunnel up.
func TestLostPackets(t *testing.T) {
	t.Parallel()
	cgw, vgw := newRelayedPair(t, func(dir string, n int, b []byte) bool {
		return (dir == "c2v" && (n == 2 || n == 5)) || (dir == "v2c" && (n == 2 || n == 4))
	})
	cgw.waitEvent(t, "phase2-up", 20*time.Second)
	vgw.waitEvent(t, "phase2-up", 20*time.Second)
	checkPairsMatch(t, cgw, vgw)
	if cgw.tunnel(t).Counters.Retransmits == 0 {
		t.Fatal("no retransmission counted")
	}
}

// TestDuplicateRequestAnswered duplicates every cgw->vgw packet: the vgw must
// answer duplicates with the cached reply and still end with one SA pair.
func TestDuplicateRequestAnswered(t *testing.T) {
	t.Parallel()
	cgw, vgw := newRelayedPairOpts(t, nil, true)
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	checkPairsMatch(t, cgw, vgw)
	if vgw.tunnel(t).Counters.DuplicatesAnswered == 0 {
		t.Fatal("no duplicate answered")
	}
}

// TestGarbageAndUnknownCookies sends truncated, garbled and unknown-cookie
// packets to a running responder: they are counted and logged, never crash,
// and an unknown cookie gets INVALID-COOKIE.
func TestGarbageAndUnknownCookies(t *testing.T) {
	t.Parallel()
	c, v, ports := loopPair()
	vt := baseTunnel(v, c, ports)
	vgw := startGW(t, "vgw", Config{Tunnels: []TunnelConfig{vt}, Ports: ports})
	time.Sleep(50 * time.Millisecond)
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(c, ports.IKE)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := netip.AddrPortFrom(v, ports.IKE)
	// A valid header for an unknown SA (non-zero responder cookie).
	h := isakmp.Message{Header: isakmp.Header{ICookie: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, RCookie: [8]byte{9, 9, 9, 9, 9, 9, 9, 9},
		Exchange: isakmp.ExchangeIdentityProtection}, Payloads: []isakmp.Payload{&isakmp.VendorID{Data: []byte("x")}}}
	unknown, _ := h.Encode()
	for _, b := range [][]byte{{1, 2, 3}, make([]byte, 27), append(append([]byte(nil), unknown[:28]...), 0xff, 0xff), unknown} {
		conn.WriteToUDPAddrPort(b, to)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 2048)
	n, _, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no INVALID-COOKIE answer: %v", err)
	}
	m, err := isakmp.Decode(buf[:n])
	if err != nil || len(m.Notifies()) != 1 || m.Notifies()[0].NotifyType != isakmp.NotifyInvalidCookie {
		t.Fatalf("answer is not INVALID-COOKIE: %v %+v", err, m)
	}
	st := vgw.e.Status()
	if st.Counters.Malformed < 3 || st.Counters.UnknownCookie < 1 {
		t.Fatalf("counters %+v", st.Counters)
	}
	if !strings.Contains(vgw.logs.String(), "dropping malformed IKE message") {
		t.Fatal("no log line for malformed input")
	}
}

// TestHalfOpenBound floods the responder with first messages from the
// configured peer: state stays bounded and a real initiator still gets through.
func TestHalfOpenBound(t *testing.T) {
	t.Parallel()
	c, v, ports := loopPair()
	vt := baseTunnel(v, c, ports)
	vgw := startGW(t, "vgw", Config{Tunnels: []TunnelConfig{vt}, Ports: ports, MaxHalfOpen: 50})
	time.Sleep(50 * time.Millisecond)
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(c, ports.IKE+2)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	saP := phase1SA(vt.Phase1.Proposals, time.Hour, 0)
	for i := 0; i < 500; i++ {
		m := isakmp.Message{Header: isakmp.Header{ICookie: randomCookie(), Exchange: isakmp.ExchangeIdentityProtection}, Payloads: []isakmp.Payload{saP}}
		b, _ := m.Encode()
		conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(v, ports.IKE))
	}
	time.Sleep(300 * time.Millisecond)
	st := vgw.e.Status()
	if st.Counters.HalfOpen > 50 || st.Counters.HalfOpenRefused == 0 {
		t.Fatalf("half-open not bounded: %+v", st.Counters)
	}
}

// TestResponderLifetime: the cgw proposes 7200 s and 10 MB, the vgw allows
// 3600 s and 5 MB: the vgw answers RESPONDER-LIFETIME and both install the
// shorter values.
func TestResponderLifetime(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{
		cgw: func(tc *TunnelConfig) { tc.Phase2.Lifetime = 7200 * time.Second; tc.Phase2.LifetimeKB = 10000 },
		vgw: func(tc *TunnelConfig) { tc.Phase2.LifetimeKB = 5000 },
	})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	for name, g := range map[string]*gw{"cgw": cgw, "vgw": vgw} {
		p := g.dp.Pairs()[0]
		if p.Lifetime != 3600*time.Second || p.LifetimeKB != 5000 {
			t.Fatalf("%s installed lifetime %v / %d KB, want 1h0m0s / 5000 KB", name, p.Lifetime, p.LifetimeKB)
		}
	}
	if !strings.Contains(cgw.logs.String(), "responder lifetime adopted") {
		t.Fatal("cgw did not log the RESPONDER-LIFETIME notify")
	}
}

// TestSimultaneousInitiation: both sides start (AWS startup action start
// against a cgw that also initiates). Two ISAKMP SAs are negotiated at
// once; the later one must not carry INITIAL-CONTACT and wipe the IPsec SAs
// the earlier one made, so traffic keeps its SAs afterwards.
func TestSimultaneousInitiation(t *testing.T) {
	cgw, vgw := newPair(t, pairOpts{vgw: func(tc *TunnelConfig) { tc.StartupAction = StartupStart }})
	cgw.waitEvent(t, "phase2-up", 5*time.Second)
	vgw.waitEvent(t, "phase2-up", 5*time.Second)
	time.Sleep(1500 * time.Millisecond) // several retransmission timeouts of the fast test config
	for name, g := range map[string]*gw{"cgw": cgw, "vgw": vgw} {
		st := g.e.Status()
		if len(st.Tunnels) != 1 || st.Tunnels[0].Phase2State != "Established" || len(st.Tunnels[0].SAs) == 0 {
			t.Fatalf("%s after simultaneous initiation: %+v", name, st.Tunnels)
		}
		if n := len(g.dp.Pairs()); n == 0 {
			t.Fatalf("%s: no IPsec SA left in the data path\n%s", name, g.logs)
		}
	}
}

// TestDataPathLimits: the data path's hard limit (bytes or sequence
// numbers) deletes the pair and, the tunnel being wanted up, negotiates a
// new one; the soft limit rekeys the pair.
func TestDataPathLimits(t *testing.T) {
	cgw, vgw := newPair(t, pairOpts{})
	cgw.waitEvent(t, "phase2-up", 5*time.Second)
	vgw.waitEvent(t, "phase2-up", 5*time.Second)
	first := cgw.dp.Pairs()[0]
	cgw.dp.Limit(SALimit{Protocol: first.Inbound.Protocol, InboundSPI: first.Inbound.SPI, Hard: true, Reason: "byte lifetime used up (test)"})
	ev := cgw.waitEvent(t, "phase2-down", 5*time.Second)
	if ev.Detail["spi_in"] != fmt.Sprintf("%08x", first.Inbound.SPI) {
		t.Fatalf("phase2-down for %v, want spi_in %08x", ev.Detail, first.Inbound.SPI)
	}
	cgw.waitEvent(t, "phase2-up", 5*time.Second)
	ps := cgw.dp.Pairs()
	if len(ps) != 1 || ps[0].Inbound.SPI == first.Inbound.SPI {
		t.Fatalf("after the hard limit: pairs %+v, want one new pair", ps)
	}
	second := ps[0]
	cgw.dp.Limit(SALimit{Protocol: second.Inbound.Protocol, InboundSPI: second.Inbound.SPI, Reason: "byte lifetime 90% used (test)"})
	cgw.waitEvent(t, "phase2-up", 5*time.Second)
	if n := len(cgw.dp.Pairs()); n != 2 {
		t.Fatalf("after the soft limit: %d pairs, want the old and its replacement (make-before-break)", n)
	}
	// A second soft signal for the same pair starts no second rekey.
	cgw.dp.Limit(SALimit{Protocol: second.Inbound.Protocol, InboundSPI: second.Inbound.SPI, Reason: "again"})
	time.Sleep(200 * time.Millisecond)
	if n := len(cgw.dp.Pairs()); n != 2 {
		t.Fatalf("a repeated soft signal changed the pairs: %d", n)
	}
}

// TestRekeyByResponderOffersTheNegotiatedProposal: the vgw (AWS's list,
// DH group 2 first) rekeys phase 2 of an SA the cgw negotiated with group
// 14 only; the rekey must offer group 14, or the cgw refuses it
// (NO-PROPOSAL-CHOSEN; found by the rekey scenario).
func TestRekeyByResponderOffersTheNegotiatedProposal(t *testing.T) {
	t.Parallel()
	only14 := Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA1, PFSGroup: 14}
	cgw, vgw := newPair(t, pairOpts{cgw: func(c *TunnelConfig) { c.Phase2.Proposals = []Phase2Proposal{only14} }})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	if err := vgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	ev := vgw.waitEvent(t, "phase2-up", 10*time.Second)
	if got := ev.Detail["proposal"]; got != "esp-aes128-sha1-modp2048" {
		t.Fatalf("rekeyed with %q, want esp-aes128-sha1-modp2048", got)
	}
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	if n := vgw.tunnel(t).Counters.Phase2Established; n != 2 {
		t.Fatalf("vgw phase2_established %d, want 2", n)
	}
}
