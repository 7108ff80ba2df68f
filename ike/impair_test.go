package ike

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// TestImpairAPI: Impair, Impairments and none on a running engine; unknown
// tunnels are refused (also from Config), duplicates are kept once.
func TestImpairAPI(t *testing.T) {
	t.Parallel()
	c, v, ports := loopPair()
	tc := baseTunnel(c, v, ports)
	cfg := Config{Tunnels: []TunnelConfig{tc}, Ports: ports, Impairments: []Impairment{mustImpair(t, "drop:main:1")}}
	bad := cfg
	bad.Impairments = []Impairment{mustImpair(t, "tunnel9/no-delete")}
	if _, err := NewEngine(bad); !errors.Is(err, ErrUnknownTunnel) || !strings.Contains(err.Error(), "tunnel9") {
		t.Fatalf("NewEngine with an impairment of an unknown tunnel: %v", err)
	}
	g := startIGW(t, "cgw", cfg)
	e := g.e
	if got := e.Impairments(); !slices.Equal(got, []string{"drop:main:1"}) {
		t.Fatalf("Impairments() = %q after start", got)
	}
	for _, s := range []string{"tunnel1/no-delete", "send-twice", "send-twice", "tunnel1/drop:quick:2"} {
		if err := e.Impair(mustImpair(t, s)); err != nil {
			t.Fatalf("Impair(%s): %v", s, err)
		}
	}
	if err := e.Impair(mustImpair(t, "tunnel2/no-delete")); !errors.Is(err, ErrUnknownTunnel) {
		t.Fatalf("Impair(tunnel2/...) = %v, want ErrUnknownTunnel", err)
	}
	if err := e.Impair(Impairment{Verb: ImpairDrop}); err == nil {
		t.Fatal("Impair accepted an invalid Impairment")
	}
	want := []string{"drop:main:1", "tunnel1/no-delete", "send-twice", "tunnel1/drop:quick:2"}
	if got := e.Impairments(); !slices.Equal(got, want) {
		t.Fatalf("Impairments() = %q, want %q", got, want)
	}
	if err := e.Impair(mustImpair(t, "tunnel1/none")); err != nil {
		t.Fatal(err)
	}
	if got := e.Impairments(); !slices.Equal(got, []string{"drop:main:1", "send-twice"}) {
		t.Fatalf("after tunnel1/none: %q", got)
	}
	if err := e.Impair(mustImpair(t, "none")); err != nil {
		t.Fatal(err)
	}
	if got := e.Impairments(); got == nil || len(got) != 0 {
		t.Fatalf("after none: %#v, want an empty list", got)
	}
}

func mustImpair(t testing.TB, s string) Impairment {
	t.Helper()
	imp, err := ParseImpairment(s)
	if err != nil {
		t.Fatal(err)
	}
	return imp
}

func mustImpairs(t testing.TB, ss []string) []Impairment {
	var out []Impairment
	for _, s := range ss {
		out = append(out, mustImpair(t, s))
	}
	return out
}

// ---- two engines with a view of their wire and their events ----

// wirePacket is one datagram an engine sent or received.
type wirePacket struct {
	at       time.Time
	src, dst netip.AddrPort
	b        []byte
}

// wireLog records an engine's datagrams (a PacketSink): what reaches the
// wire, so a dropped message is not in it.
type wireLog struct {
	mu   sync.Mutex
	pkts []wirePacket
}

func (w *wireLog) Packet(src, dst netip.AddrPort, b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pkts = append(w.pkts, wirePacket{time.Now(), src, dst, append([]byte(nil), b...)})
}

// ikeMsgs returns the IKE messages from src's address of an exchange type.
func (w *wireLog) ikeMsgs(from netip.Addr, ex isakmp.ExchangeType) []wirePacket {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []wirePacket
	for _, p := range w.pkts {
		h, err := isakmp.DecodeHeader(p.b)
		if err == nil && p.src.Addr() == from && h.Exchange == ex {
			out = append(out, p)
		}
	}
	return out
}

// since counts the datagrams at or after t.
func (w *wireLog) since(t time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, p := range w.pkts {
		if !p.at.Before(t) {
			n++
		}
	}
	return n
}

func (w *wireLog) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pkts)
}

// hasPayload reports whether a plaintext message carries a payload type.
func hasPayload(b []byte, pt isakmp.PayloadType) bool {
	m, err := isakmp.Decode(b)
	return err == nil && m.Find(pt) != nil
}

// eventLog keeps every event of an engine.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) find(typ string, match func(Event) bool) (Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.evs {
		if ev.Type == typ && (match == nil || match(ev)) {
			return ev, true
		}
	}
	return Event{}, false
}

func (l *eventLog) all(typ string) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, ev := range l.evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// wait waits for an event of typ (and match), seen before the call or after.
func (l *eventLog) wait(t testing.TB, typ string, match func(Event) bool, d time.Duration) Event {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if ev, ok := l.find(typ, match); ok {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q event within %v", typ, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func detail(k, v string) func(Event) bool {
	return func(ev Event) bool { return strings.Contains(ev.Detail[k], v) }
}

// igw is a running engine whose wire and events a test can inspect.
type igw struct {
	e    *Engine
	dp   *MemoryDataPath
	wire *wireLog
	evs  *eventLog
	logs *logBuffer
	addr netip.Addr
	// allowPanics: the test provokes handler panics on purpose.
	allowPanics bool
}

func startIGW(t testing.TB, name string, cfg Config) *igw {
	t.Helper()
	return startIGWWith(t, name, cfg, NewMemoryDataPath(), nil)
}

// startIGWWith is startIGW with the engine's data path (dp, or m if dp is
// nil) and the MemoryDataPath the test inspects.
func startIGWWith(t testing.TB, name string, cfg Config, m *MemoryDataPath, dp DataPath) *igw {
	t.Helper()
	if dp == nil {
		dp = m
	}
	lb := &logBuffer{}
	lg := logrus.New()
	lg.SetOutput(lb)
	lg.SetLevel(logrus.DebugLevel)
	if os.Getenv("VPNLAB_TEST_LOG") != "" {
		lg.SetOutput(os.Stderr)
	}
	g := &igw{dp: m, wire: &wireLog{}, evs: &eventLog{}, logs: lb, addr: cfg.Tunnels[0].LocalAddr}
	e, err := NewEngine(cfg, WithLogger(lg.WithField("gw", name)), WithDataPath(dp), WithPacketSink(g.wire))
	if err != nil {
		t.Fatalf("%s: NewEngine: %v", name, err)
	}
	g.e = e
	ch, unsub := e.Subscribe()
	go func() {
		for ev := range ch {
			g.evs.mu.Lock()
			g.evs.evs = append(g.evs.evs, ev)
			g.evs.mu.Unlock()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.Run(ctx); err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
	}()
	t.Cleanup(func() {
		checkNoPanics(t, name, e, g.allowPanics)
		cancel()
		<-done
		unsub()
		if t.Failed() {
			t.Logf("---- %s log ----\n%s", name, lb.String())
		}
	})
	return g
}

func (g *igw) tunnel(t testing.TB, name string) TunnelStatus {
	t.Helper()
	for _, ts := range g.e.Status().Tunnels {
		if ts.Name == name {
			return ts
		}
	}
	t.Fatalf("no tunnel %q", name)
	return TunnelStatus{}
}

// newImpairedPair starts a responder (vgw, AWS proposal lists, PFS) and an
// initiator (cgw, startup action start) on a direct loopback path, each
// with its impairments from the start.
func newImpairedPair(t *testing.T, cgwImps, vgwImps []string, mod func(ct, vt *TunnelConfig)) (cgw, vgw *igw) {
	t.Helper()
	return newImpairedPairCfg(t, cgwImps, vgwImps, mod, nil)
}

// newImpairedPairCfg is newImpairedPair with a hook on both engine
// configurations.
func newImpairedPairCfg(t *testing.T, cgwImps, vgwImps []string, mod func(ct, vt *TunnelConfig), cfgMod func(*Config)) (cgw, vgw *igw) {
	t.Helper()
	c, v, ports := loopPair()
	vt := baseTunnel(v, c, ports)
	vt.Phase1.Proposals, vt.Phase1.Selection = awsVGWPhase1(), SelectLowestValue
	vt.Phase2.Proposals, vt.Phase2.Selection = awsVGWPhase2(), SelectLowestValue
	ct := baseTunnel(c, v, ports)
	ct.StartupAction = StartupStart
	if mod != nil {
		mod(&ct, &vt)
	}
	mk := func(tc TunnelConfig, imps []string) Config {
		cfg := Config{Tunnels: []TunnelConfig{tc}, Ports: ports, RetransmitTimeout: 300 * time.Millisecond,
			RetransmitBase: 1.5, RetransmitTries: 3, Impairments: mustImpairs(t, imps)}
		if cfgMod != nil {
			cfgMod(&cfg)
		}
		return cfg
	}
	vgw = startIGW(t, "vgw", mk(vt, vgwImps))
	time.Sleep(20 * time.Millisecond)
	cgw = startIGW(t, "cgw", mk(ct, cgwImps))
	return cgw, vgw
}

// up waits until both sides installed their pair.
func up(t *testing.T, cgw, vgw *igw) {
	t.Helper()
	cgw.evs.wait(t, "phase2-up", nil, 10*time.Second)
	vgw.evs.wait(t, "phase2-up", nil, 10*time.Second)
}

// exactlyOne checks that each side established one ISAKMP SA and one pair,
// with matching keys.
func exactlyOne(t *testing.T, cgw, vgw *igw) {
	t.Helper()
	for name, g := range map[string]*igw{"cgw": cgw, "vgw": vgw} {
		c := g.tunnel(t, "tunnel1").Counters
		if c.Phase1Established != 1 || c.Phase2Established != 1 {
			t.Fatalf("%s: phase1_established %d, phase2_established %d; want 1 and 1", name, c.Phase1Established, c.Phase2Established)
		}
		if n := len(g.dp.Pairs()); n != 1 {
			t.Fatalf("%s: %d pairs installed, want 1", name, n)
		}
	}
	a, b := cgw.dp.Pairs()[0], vgw.dp.Pairs()[0]
	if a.Inbound.SPI != b.Outbound.SPI || a.Outbound.SPI != b.Inbound.SPI || string(a.Inbound.EncKey) != string(b.Outbound.EncKey) {
		t.Fatal("the two sides' pairs do not match")
	}
}

// quiet checks that neither side sends anything for d (no duplicate
// ping-pong left running).
func quiet(t *testing.T, d time.Duration, gs ...*igw) {
	t.Helper()
	from := time.Now()
	time.Sleep(d)
	for _, g := range gs {
		if n := g.wire.since(from); n != 0 {
			t.Fatalf("%s: %d datagrams in %v after the exchanges should have ended", g.addr, n, d)
		}
	}
}

func impairedEvent(ex string, n int) func(Event) bool {
	return func(ev Event) bool {
		return ev.Detail["exchange"] == ex && (n == 0 || ev.Detail["message"] == fmt.Sprint(n))
	}
}

// ---- the verbs on the wire ----

// TestImpairDrop drops the first transmission of one message of each kind
// (the startup configuration's drop:main:1 included): the sender's
// retransmission, or the peer's retransmission answered from the cache,
// repairs it, and each side ends with one ISAKMP SA and one pair.
func TestImpairDrop(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		cgw, vgw []string
		ex       string
		n        int
		// how it was repaired: the initiator retransmitted, the responder
		// retransmitted, or one side answered a duplicate from its cache.
		cgwRetransmits, vgwRetransmits, vgwCache, cgwCache bool
		// vgwResent: the vgw retransmitted or answered from its cache
		// (both timers run out at once: either may win).
		vgwResent bool
	}{
		{name: "MM1_startup", cgw: []string{"drop:main:1"}, ex: "main", n: 1, cgwRetransmits: true},
		{name: "MM2", vgw: []string{"drop:main:2"}, ex: "main", n: 2, cgwRetransmits: true, vgwCache: true},
		{name: "MM3", cgw: []string{"drop:main:3"}, ex: "main", n: 3, cgwRetransmits: true},
		{name: "MM4", vgw: []string{"drop:main:4"}, ex: "main", n: 4, cgwRetransmits: true, vgwCache: true},
		{name: "MM5", cgw: []string{"drop:main:5"}, ex: "main", n: 5, cgwRetransmits: true},
		{name: "MM6", vgw: []string{"drop:main:6"}, ex: "main", n: 6, cgwRetransmits: true, vgwCache: true},
		{name: "QM1", cgw: []string{"tunnel1/drop:quick:1"}, ex: "quick", n: 1, cgwRetransmits: true},
		{name: "QM2", vgw: []string{"drop:quick:2"}, ex: "quick", n: 2, vgwResent: true},
		{name: "QM3", cgw: []string{"drop:quick:3"}, ex: "quick", n: 3, vgwRetransmits: true, cgwCache: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cgw, vgw := newImpairedPair(t, tc.cgw, tc.vgw, nil)
			up(t, cgw, vgw)
			impaired := cgw
			if tc.vgw != nil {
				impaired = vgw
			}
			ev := impaired.evs.wait(t, "impaired", impairedEvent(tc.ex, tc.n), time.Second)
			if ev.Detail["effect"] != "dropped (first transmission)" || ev.Tunnel != "tunnel1" || ev.Detail["impairment"] == "" {
				t.Fatalf("impaired event %+v", ev)
			}
			if n := len(impaired.evs.all("impaired")); n != 1 {
				t.Fatalf("%d impaired events, want 1 (only the first transmission is dropped)", n)
			}
			exactlyOne(t, cgw, vgw)
			cs, vs := cgw.tunnel(t, "tunnel1").Counters, vgw.tunnel(t, "tunnel1").Counters
			if tc.cgwRetransmits && cs.Retransmits == 0 {
				t.Fatal("the cgw did not retransmit")
			}
			if tc.vgwRetransmits && vs.Retransmits == 0 {
				t.Fatal("the vgw did not retransmit")
			}
			if tc.vgwCache && vs.DuplicatesAnswered == 0 {
				t.Fatal("the vgw answered no duplicate from its cache")
			}
			if tc.vgwResent && vs.Retransmits+vs.DuplicatesAnswered == 0 {
				t.Fatal("the vgw neither retransmitted nor answered a duplicate")
			}
			if tc.cgwCache && cs.DuplicatesAnswered == 0 {
				t.Fatal("the cgw answered no duplicate from its cache")
			}
		})
	}
}

// TestImpairDropMM3Wire looks at the responder's wire for drop:main:3: it
// receives MM3 once, and only a retransmission timeout after its MM2.
func TestImpairDropMM3Wire(t *testing.T) {
	t.Parallel()
	cgw, vgw := newImpairedPair(t, []string{"drop:main:3"}, nil, nil)
	up(t, cgw, vgw)
	var mm2, mm3 []wirePacket
	for _, p := range vgw.wire.ikeMsgs(vgw.addr, isakmp.ExchangeIdentityProtection) {
		if hasPayload(p.b, isakmp.PayloadSA) {
			mm2 = append(mm2, p)
		}
	}
	for _, p := range vgw.wire.ikeMsgs(cgw.addr, isakmp.ExchangeIdentityProtection) {
		if hasPayload(p.b, isakmp.PayloadKE) {
			mm3 = append(mm3, p)
		}
	}
	if len(mm2) != 1 || len(mm3) != 1 {
		t.Fatalf("vgw sent %d MM2 and received %d MM3, want 1 and 1", len(mm2), len(mm3))
	}
	if gap := mm3[0].at.Sub(mm2[0].at); gap < 250*time.Millisecond {
		t.Fatalf("MM3 arrived %v after MM2: not the retransmission (timeout 300ms)", gap)
	}
	// The cgw's own wire has exactly that one MM3 too: the first never left.
	if n := len(filterPayload(cgw.wire.ikeMsgs(cgw.addr, isakmp.ExchangeIdentityProtection), isakmp.PayloadKE)); n != 1 {
		t.Fatalf("cgw put %d MM3 on the wire, want 1", n)
	}
	if c := cgw.tunnel(t, "tunnel1").Counters; c.Retransmits != 1 {
		t.Fatalf("cgw retransmits %d, want 1", c.Retransmits)
	}
}

func filterPayload(ps []wirePacket, pt isakmp.PayloadType) []wirePacket {
	var out []wirePacket
	for _, p := range ps {
		if hasPayload(p.b, pt) {
			out = append(out, p)
		}
	}
	return out
}

// TestImpairDropAll: drop-all:main:1 eats every transmission of MM1 (the
// retransmissions too); with no-retransmit nothing is retransmitted at all.
// Either way the responder never hears of us and phase 1 times out.
func TestImpairDropAll(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		imps        []string
		retransmits bool
	}{
		{"drop-all", []string{"drop-all:main:1"}, true},
		{"drop-all+no-retransmit", []string{"drop-all:main:1", "no-retransmit"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cgw, vgw := newImpairedPair(t, tc.imps, nil, nil)
			cgw.evs.wait(t, "error", detail("message", "phase 1 timed out waiting for the answer to MM1"), 10*time.Second)
			if n := vgw.wire.count(); n != 0 {
				t.Fatalf("the vgw saw %d datagrams", n)
			}
			if n := cgw.wire.count(); n != 0 {
				t.Fatalf("the cgw put %d datagrams on the wire", n)
			}
			if st := vgw.e.Status(); st.Counters.Received != 0 || st.Tunnels[0].Counters.Phase1Established != 0 {
				t.Fatalf("vgw counters %+v", st.Counters)
			}
			cs := cgw.tunnel(t, "tunnel1").Counters
			drops := cgw.evs.all("impaired")
			if tc.retransmits {
				// 3 tries: the first transmission and 3 retransmissions, all eaten.
				if cs.Retransmits != 3 || len(drops) != 4 {
					t.Fatalf("retransmits %d, impaired events %d; want 3 and 4", cs.Retransmits, len(drops))
				}
				if drops[1].Detail["effect"] != "dropped (retransmission)" {
					t.Fatalf("second event %+v", drops[1])
				}
			} else {
				suppressed := 0
				for _, ev := range drops {
					if strings.Contains(ev.Detail["effect"], "suppressed") && ev.Detail["impairment"] == "no-retransmit" {
						suppressed++
					}
				}
				if cs.Retransmits != 0 || suppressed != 3 {
					t.Fatalf("retransmits %d, suppressed %d; want 0 and 3", cs.Retransmits, suppressed)
				}
			}
		})
	}
}

// TestImpairCorruptHashMain: a corrupted HASH_I makes the responder refuse
// with AUTHENTICATION-FAILED (in the clear: the initiator is not yet
// authenticated), and the initiator gives up on that notify. A corrupted
// HASH_R: the responder has already established (it did so on sending MM6);
// the initiator refuses it and says AUTHENTICATION-FAILED, protected.
func TestImpairCorruptHashMain(t *testing.T) {
	t.Parallel()
	t.Run("initiator", func(t *testing.T) {
		t.Parallel()
		cgw, vgw := newImpairedPair(t, []string{"corrupt-hash:main"}, nil, nil)
		vgw.evs.wait(t, "error", detail("message", "HASH_I mismatch"), 5*time.Second)
		cgw.evs.wait(t, "notify-received", detail("notify", "AUTHENTICATION-FAILED"), 5*time.Second)
		cgw.evs.wait(t, "phase1-down", nil, time.Second)
		cgw.evs.wait(t, "impaired", impairedEvent("main", 5), time.Second)
		for name, g := range map[string]*igw{"cgw": cgw, "vgw": vgw} {
			if c := g.tunnel(t, "tunnel1").Counters; c.Phase1Established != 0 {
				t.Fatalf("%s established phase 1", name)
			}
		}
	})
	t.Run("responder", func(t *testing.T) {
		t.Parallel()
		cgw, vgw := newImpairedPair(t, nil, []string{"corrupt-hash:main"}, nil)
		cgw.evs.wait(t, "error", detail("message", "HASH_R mismatch"), 5*time.Second)
		vgw.evs.wait(t, "impaired", impairedEvent("main", 6), time.Second)
		vgw.evs.wait(t, "notify-received", detail("notify", "AUTHENTICATION-FAILED"), 5*time.Second)
		if c := cgw.tunnel(t, "tunnel1").Counters; c.Phase1Established != 0 {
			t.Fatal("cgw established phase 1 on a bad HASH_R")
		}
		if _, ok := cgw.evs.find("phase2-up", nil); ok {
			t.Fatal("phase 2 came up")
		}
	})
}

// TestImpairOmitPayloads: a missing KE or HASH is refused with a notify that
// says so, on either side, and nothing panics or establishes.
func TestImpairOmitPayloads(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		cgw, vgw      []string
		refuser       string // who refuses
		err, notify   string
		phase1Expires bool
	}{
		{name: "omit-ke MM3", cgw: []string{"omit-ke:main"}, refuser: "vgw", err: "MM3 lacks KE or nonce", notify: "PAYLOAD-MALFORMED"},
		{name: "omit-ke MM4", vgw: []string{"omit-ke:main"}, refuser: "cgw", err: "MM4 lacks KE or nonce", notify: "PAYLOAD-MALFORMED"},
		{name: "omit-hash MM5", cgw: []string{"omit-hash:main"}, refuser: "vgw", err: "MM5 lacks ID or HASH", notify: "PAYLOAD-MALFORMED"},
		{name: "omit-ke aggressive AM1", cgw: []string{"omit-ke:aggressive"}, refuser: "vgw", err: "AM1 lacks KE or nonce", notify: "PAYLOAD-MALFORMED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cgw, vgw := newImpairedPair(t, tc.cgw, tc.vgw, func(ct, vt *TunnelConfig) {
				if strings.Contains(tc.name, "aggressive") {
					ct.Phase1.Exchange, vt.Phase1.AllowAggressive = AggressiveMode, true
				}
			})
			refuser, other := vgw, cgw
			if tc.refuser == "cgw" {
				refuser, other = cgw, vgw
			}
			refuser.evs.wait(t, "error", detail("message", tc.err), 5*time.Second)
			other.evs.wait(t, "notify-received", detail("notify", tc.notify), 5*time.Second)
			other.evs.wait(t, "impaired", nil, time.Second)
			for name, g := range map[string]*igw{"cgw": cgw, "vgw": vgw} {
				if c := g.tunnel(t, "tunnel1").Counters; c.Phase1Established != 0 {
					t.Fatalf("%s established phase 1", name)
				}
			}
		})
	}
}

// TestImpairQuickMode: phase 2 fails, phase 1 stays. A corrupted HASH(1) is
// answered with INVALID-HASH-INFORMATION; a QM1 without the KE that PFS
// needs (under a valid HASH) with NO-PROPOSAL-CHOSEN.
func TestImpairQuickMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec, vgwErr, notify string
	}{
		{"corrupt-hash:quick", "", "INVALID-HASH-INFORMATION"},
		{"omit-ke:quick", "no phase 2 proposal matched", "NO-PROPOSAL-CHOSEN"},
		{"omit-hash:quick", "", "PAYLOAD-MALFORMED"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			t.Parallel()
			cgw, vgw := newImpairedPair(t, []string{tc.spec}, nil, nil)
			cgw.evs.wait(t, "phase1-up", nil, 5*time.Second)
			vgw.evs.wait(t, "notify-sent", detail("notify", tc.notify), 5*time.Second)
			if tc.vgwErr != "" {
				vgw.evs.wait(t, "error", detail("message", tc.vgwErr), time.Second)
			}
			cgw.evs.wait(t, "notify-received", detail("notify", tc.notify), 5*time.Second)
			failed := cgw.evs.wait(t, "phase2-failed", nil, 5*time.Second)
			if tc.notify == "INVALID-HASH-INFORMATION" && strings.Contains(failed.Detail["reason"], "pre-shared key") {
				t.Errorf("phase 2 failure blamed on the key (phase 1 proved it): %q", failed.Detail["reason"])
			}
			cgw.evs.wait(t, "impaired", impairedEvent("quick", 1), time.Second)
			for name, g := range map[string]*igw{"cgw": cgw, "vgw": vgw} {
				ts := g.tunnel(t, "tunnel1")
				if ts.Phase1State != "Established" || ts.Counters.Phase1Established != 1 {
					t.Fatalf("%s: phase 1 %s (%d established), want it kept", name, ts.Phase1State, ts.Counters.Phase1Established)
				}
				if ts.Counters.Phase2Established != 0 || len(g.dp.Pairs()) != 0 {
					t.Fatalf("%s: phase 2 established", name)
				}
			}
		})
	}
}

// TestImpairRepeats: duplicated, replayed and twice-sent messages are
// answered from the peer's cache or ignored, never acted on twice: one
// ISAKMP SA and one pair per side, and the exchanges end (no endless
// duplicate ping-pong).
func TestImpairRepeats(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		cgw, vgw []string
		wait     time.Duration // for the replays
		cache    string        // which side must have answered a duplicate from its cache
	}{
		{name: "duplicate MM1", cgw: []string{"duplicate:main:1"}, cache: "vgw"},
		{name: "duplicate MM3", cgw: []string{"duplicate:main:3"}, cache: "vgw"},
		{name: "duplicate MM5", cgw: []string{"duplicate:main:5"}, cache: "vgw"},
		{name: "duplicate MM4", vgw: []string{"duplicate:main:4"}},
		{name: "duplicate QM1", cgw: []string{"duplicate:quick:1"}, cache: "vgw"},
		{name: "duplicate QM2", vgw: []string{"duplicate:quick:2"}, cache: "cgw"},
		{name: "replay MM1", cgw: []string{"replay:main:1"}, wait: 1500 * time.Millisecond},
		{name: "replay MM5", cgw: []string{"replay:main:5"}, wait: 1500 * time.Millisecond, cache: "vgw"},
		{name: "replay MM6", vgw: []string{"replay:main:6"}, wait: 1500 * time.Millisecond},
		{name: "replay QM3", cgw: []string{"replay:quick:3"}, wait: 1500 * time.Millisecond},
		{name: "replay QM2", vgw: []string{"replay:quick:2"}, wait: 1500 * time.Millisecond},
		{name: "send-twice initiator", cgw: []string{"send-twice"}, cache: "vgw"},
		{name: "send-twice responder", vgw: []string{"send-twice"}},
		{name: "send-twice both", cgw: []string{"send-twice"}, vgw: []string{"send-twice"}, cache: "vgw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cgw, vgw := newImpairedPair(t, tc.cgw, tc.vgw, nil)
			up(t, cgw, vgw)
			impaired := cgw
			if tc.cgw == nil {
				impaired = vgw
			}
			// A replay's first "impaired" event is the replay itself, 1 s
			// after the first transmission: wait as long as for it.
			first := time.Second
			if tc.wait > 0 {
				first = tc.wait
			}
			impaired.evs.wait(t, "impaired", nil, first)
			if tc.wait > 0 {
				impaired.evs.wait(t, "impaired", detail("effect", "replayed"), tc.wait)
			}
			time.Sleep(100 * time.Millisecond)
			quiet(t, 700*time.Millisecond, cgw, vgw)
			exactlyOne(t, cgw, vgw)
			switch tc.cache {
			case "vgw":
				if vgw.tunnel(t, "tunnel1").Counters.DuplicatesAnswered == 0 {
					t.Fatal("the vgw answered no duplicate from its cache")
				}
			case "cgw":
				if cgw.tunnel(t, "tunnel1").Counters.DuplicatesAnswered == 0 {
					t.Fatal("the cgw answered no duplicate from its cache")
				}
			}
		})
	}
}

// TestImpairNoDelete: terminate with no-delete removes our SAs but sends
// nothing, so the peer keeps its SAs until its DPD declares us dead.
func TestImpairNoDelete(t *testing.T) {
	t.Parallel()
	cgw, vgw := newImpairedPair(t, []string{"no-delete"}, nil, func(ct, vt *TunnelConfig) {
		vt.DPDTimeout, vt.DPDDelay, vt.DPDAction = 1500*time.Millisecond, 300*time.Millisecond, DPDClear
	})
	up(t, cgw, vgw)
	if err := cgw.e.Terminate("tunnel1"); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if n := len(cgw.dp.Pairs()); n != 0 {
		t.Fatalf("cgw kept %d pairs after terminate", n)
	}
	if ts := cgw.tunnel(t, "tunnel1"); ts.Phase1State != "Down" {
		t.Fatalf("cgw phase 1 %s after terminate", ts.Phase1State)
	}
	cgw.evs.wait(t, "impaired", detail("what", "proto=ISAKMP"), time.Second)
	var effects []string
	for _, ev := range cgw.evs.all("impaired") {
		effects = append(effects, ev.Detail["what"])
	}
	if len(effects) != 2 || !strings.Contains(effects[0], "proto=ESP") || !strings.Contains(effects[1], "proto=ISAKMP") {
		t.Fatalf("impaired events for %q, want the ESP and the ISAKMP DELETE", effects)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(cgw.wire.ikeMsgs(cgw.addr, isakmp.ExchangeInformational)); n != 0 {
		// DPD acknowledgements before the terminate are fine; none after.
		for _, p := range cgw.wire.ikeMsgs(cgw.addr, isakmp.ExchangeInformational) {
			if !p.at.Before(stopped) {
				t.Fatal("the cgw sent an informational message after terminate")
			}
		}
	}
	vs := vgw.tunnel(t, "tunnel1")
	if vs.Phase1State != "Established" || len(vgw.dp.Pairs()) != 1 {
		t.Fatalf("vgw after the peer's silent terminate: phase 1 %s, %d pairs; want both kept", vs.Phase1State, len(vgw.dp.Pairs()))
	}
	if _, ok := vgw.evs.find("delete-received", nil); ok {
		t.Fatal("the vgw received a DELETE")
	}
	vgw.evs.wait(t, "dpd-state", detail("state", "dead"), 5*time.Second)
	vgw.evs.wait(t, "phase1-down", nil, time.Second)
	if n := len(vgw.dp.Pairs()); n != 0 {
		t.Fatalf("vgw kept %d pairs after DPD", n)
	}
}

// TestImpairTunnelScope: an impairment with a tunnel prefix touches that
// tunnel only.
func TestImpairTunnelScope(t *testing.T) {
	t.Parallel()
	c1, v1, ports := loopPair()
	c2 := netip.AddrFrom4([4]byte{127, c1.As4()[1], c1.As4()[2], 5})
	v2 := netip.AddrFrom4([4]byte{127, c1.As4()[1], c1.As4()[2], 6})
	vt1, vt2 := baseTunnel(v1, c1, ports), baseTunnel(v2, c2, ports)
	vt2.Name = "tunnel2"
	ct1, ct2 := baseTunnel(c1, v1, ports), baseTunnel(c2, v2, ports)
	ct2.Name = "tunnel2"
	ct1.StartupAction, ct2.StartupAction = StartupStart, StartupStart
	fast := func(cfg Config) Config {
		cfg.Ports, cfg.RetransmitTimeout, cfg.RetransmitBase, cfg.RetransmitTries = ports, 300*time.Millisecond, 1.5, 3
		return cfg
	}
	vgw := startIGW(t, "vgw", fast(Config{Tunnels: []TunnelConfig{vt1, vt2}}))
	time.Sleep(20 * time.Millisecond)
	cgw := startIGW(t, "cgw", fast(Config{Tunnels: []TunnelConfig{ct1, ct2}, Impairments: mustImpairs(t, []string{"tunnel2/drop-all:main:1"})}))
	cgw.evs.wait(t, "phase2-up", func(ev Event) bool { return ev.Tunnel == "tunnel1" }, 10*time.Second)
	cgw.evs.wait(t, "error", func(ev Event) bool {
		return ev.Tunnel == "tunnel2" && strings.Contains(ev.Detail["message"], "timed out")
	}, 10*time.Second)
	for _, ev := range cgw.evs.all("impaired") {
		if ev.Tunnel != "tunnel2" {
			t.Fatalf("impairment of tunnel2 took effect on %q: %+v", ev.Tunnel, ev)
		}
	}
	if n := len(vgw.wire.ikeMsgs(c2, isakmp.ExchangeIdentityProtection)); n != 0 {
		t.Fatalf("%d of tunnel2's MM1 reached the vgw", n)
	}
	if ts := vgw.tunnel(t, "tunnel1"); ts.Counters.Phase2Established != 1 {
		t.Fatalf("tunnel1 on the vgw: %+v", ts.Counters)
	}
}

// TestImpairAtRunTime: impairments set and cleared on a running engine take
// effect on the next message: a phase 2 rekey with drop-all:quick:1 fails,
// after none it succeeds; an informational impairment counts the SA's
// informational messages.
func TestImpairAtRunTime(t *testing.T) {
	t.Parallel()
	cgw, vgw := newImpairedPair(t, nil, nil, nil)
	up(t, cgw, vgw)
	if err := cgw.e.Impair(mustImpair(t, "drop-all:quick:1")); err != nil {
		t.Fatal(err)
	}
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	cgw.evs.wait(t, "phase2-failed", detail("reason", "timed out"), 10*time.Second)
	if n := len(cgw.evs.all("impaired")); n != 4 {
		t.Fatalf("%d impaired events, want 4 (QM1 and its 3 retransmissions)", n)
	}
	if err := cgw.e.Impair(mustImpair(t, "none")); err != nil {
		t.Fatal(err)
	}
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cgw.tunnel(t, "tunnel1").Counters.Phase2Established != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("rekey after none did not complete: %+v", cgw.tunnel(t, "tunnel1").Counters)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// corrupt-hash:informational: our DELETE does not verify at the peer,
	// which drops it and keeps its SAs.
	if err := cgw.e.Impair(mustImpair(t, "corrupt-hash:informational")); err != nil {
		t.Fatal(err)
	}
	if err := cgw.e.Terminate("tunnel1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, ok := vgw.evs.find("delete-received", nil); ok {
		t.Fatal("the vgw acted on a DELETE with a corrupted HASH(1)")
	}
	if !strings.Contains(vgw.logs.String(), "informational HASH(1) does not verify") {
		t.Fatal("the vgw did not log the bad informational HASH")
	}
	evs := cgw.evs.all("impaired")
	if len(evs) < 4+2 || evs[4].Detail["exchange"] != "informational" || evs[4].Detail["message"] == "" {
		t.Fatalf("impaired events %+v", evs)
	}
}

// TestImpairReplayQM1: a replayed QM1 is never negotiated again and never
// answered. While the responder still keeps that quick mode (as long as a
// peer retransmits: retransmitSpan after it completed) the replay is a
// stale message of an ended exchange; later the ISAKMP SA still remembers
// its message ID.
// Either way it is dropped unread (no PAYLOAD-MALFORMED from decrypting it
// with the exchange's advanced IV) and counted.
func TestImpairReplayQM1(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		rto   time.Duration
		tries int
		drop  string
	}{
		{"within the cache", time.Second, 0, dropQuickStale},            // kept about 41 s
		{"after the cache", 100 * time.Millisecond, 1, dropQuickReplay}, // kept 280 ms, the replay 1 s
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cgw, vgw := newImpairedPairCfg(t, []string{"replay:quick:1"}, nil, nil, func(c *Config) {
				c.RetransmitTimeout, c.RetransmitTries = tc.rto, tc.tries
			})
			up(t, cgw, vgw)
			cgw.evs.wait(t, "impaired", detail("effect", "replayed"), 2*time.Second)
			deadline := time.Now().Add(2 * time.Second)
			for vgw.e.Status().Counters.Drops[tc.drop] == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the vgw did not count the replayed QM1 as %s: drops %v", tc.drop, vgw.e.Status().Counters.Drops)
				}
				time.Sleep(20 * time.Millisecond)
			}
			quiet(t, 500*time.Millisecond, cgw, vgw)
			exactlyOne(t, cgw, vgw)
			if n := strings.Count(vgw.logs.String(), "QM1 accepted"); n != 1 {
				t.Fatalf("the vgw accepted QM1 %d times", n)
			}
			if _, ok := vgw.evs.find("notify-sent", nil); ok {
				t.Fatal("the vgw answered the replay with a notify")
			}
			if d := vgw.e.Status().Counters.Drops; d[tc.drop] != 1 {
				t.Fatalf("vgw drops %v, want exactly one %s", d, tc.drop)
			}
		})
	}
}
