package ike

import (
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/sock"
)

// Rekeys of IKEv2 child SAs and IKE SAs between two engines on one
// in-memory network, with packets counted through their MemoryDataPaths.

// v2Flow sends a packet each way every interval: a packet leaves on the
// pair its sender sends on (MemoryDataPath.Sender) and arrives delay
// later; it is lost unless the receiver then holds an inbound SA with
// that SPI and the same keys. Arrival marks the SA (LastInbound), as the
// real data path does for a verified packet.
type v2Flow struct {
	sent, lost, noSender atomic.Int64
	mu                   sync.Mutex
	spis                 [2]map[uint32]bool // outbound SPIs used per direction
	stop                 chan struct{}
	wg                   sync.WaitGroup
}

func inboundOf(dp *MemoryDataPath, spi uint32) (ChildSAPair, bool) {
	for _, p := range dp.Pairs() {
		if p.Inbound.SPI == spi {
			return p, true
		}
	}
	return ChildSAPair{}, false
}

func startV2Flow(a, b *gw, interval, delay time.Duration) *v2Flow {
	f := &v2Flow{stop: make(chan struct{}), spis: [2]map[uint32]bool{{}, {}}}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-tk.C:
			}
			for dir, ends := range [2][2]*gw{{a, b}, {b, a}} {
				src, dst := ends[0], ends[1]
				f.sent.Add(1)
				p, ok := src.dp.Sender("tunnel1")
				if !ok {
					f.noSender.Add(1)
					f.lost.Add(1)
					continue
				}
				f.mu.Lock()
				f.spis[dir][p.Outbound.SPI] = true
				f.mu.Unlock()
				out := p.Outbound
				f.wg.Add(1)
				time.AfterFunc(delay, func() {
					defer f.wg.Done()
					in, ok := inboundOf(dst.dp, out.SPI)
					if !ok || !sameSA(out, in.Inbound) {
						f.lost.Add(1)
						return
					}
					dst.dp.MarkInbound(isakmp.ProtoESP, out.SPI)
				})
			}
		}
	}()
	return f
}

func (f *v2Flow) end() { close(f.stop); f.wg.Wait() }

// used returns how many outbound SPIs each direction sent on.
func (f *v2Flow) used() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.spis[0]), len(f.spis[1])
}

// waitRekeyed waits until each gateway holds exactly one pair, not one of
// the old SPIs, and sends on it.
func waitRekeyed(t *testing.T, old map[uint32]bool, d time.Duration, gs ...*gw) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		done := true
		for _, g := range gs {
			ps := g.dp.Pairs()
			s, ok := g.dp.Sender("tunnel1")
			if len(ps) != 1 || old[ps[0].Inbound.SPI] || !ok || s.Inbound.SPI != ps[0].Inbound.SPI {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			for _, g := range gs {
				t.Logf("%v", g.dp.Pairs())
			}
			t.Fatalf("the pairs were not replaced within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func v2Up(t *testing.T, o v2PairOpts) (cgw, vgw *gw, n *sock.Network) {
	t.Helper()
	c, v, nw := newV2Pair(t, o)
	c.waitEvent(t, "phase2-up", 10*time.Second)
	v.waitEvent(t, "phase2-up", 10*time.Second)
	checkPairsMatch(t, c, v)
	return c, v, nw
}

func inboundSPIs(gs ...*gw) map[uint32]bool {
	m := map[uint32]bool{}
	for _, g := range gs {
		for _, p := range g.dp.Pairs() {
			m[p.Inbound.SPI] = true
		}
	}
	return m
}

// TestIKEv2ChildRekeyZeroLoss: the cgw rekeys the child SA (with PFS and
// without) under traffic both ways with 3 ms in flight: no packet is lost,
// both ends end on the new pair, the old one is gone at both, and both
// count the rekey.
func TestIKEv2ChildRekeyZeroLoss(t *testing.T) {
	for _, pfs := range []uint16{14, 0} {
		t.Run(map[bool]string{true: "pfs", false: "no-pfs"}[pfs != 0], func(t *testing.T) {
			cgw, vgw, nw := v2Up(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) { ct.Phase2.Proposals[0].PFSGroup = pfs }})
			nw.SetFilter(withLatency(v2IKELatency, nil))
			old := inboundSPIs(cgw, vgw)
			f := startV2Flow(cgw, vgw, time.Millisecond, 3*time.Millisecond)
			time.Sleep(50 * time.Millisecond)
			if err := cgw.e.Rekey("tunnel1", 2); err != nil {
				t.Fatal(err)
			}
			waitRekeyed(t, old, 10*time.Second, cgw, vgw)
			time.Sleep(100 * time.Millisecond)
			f.end()
			checkPairsMatch(t, cgw, vgw)
			if f.lost.Load() != 0 || f.sent.Load() < 200 {
				t.Fatalf("%d of %d packets lost (%d without a sender)", f.lost.Load(), f.sent.Load(), f.noSender.Load())
			}
			if a, b := f.used(); a != 2 || b != 2 {
				t.Fatalf("outbound SPIs used: cgw %d, vgw %d; want old and new each", a, b)
			}
			for _, g := range []*gw{cgw, vgw} {
				if n := g.tunnel(t).Counters.Phase2Rekeys; n != 1 {
					t.Errorf("phase2_rekeys %d, want 1", n)
				}
			}
			t.Logf("%d packets, none lost", f.sent.Load())
		})
	}
}

// v2IKELatency is the one-way delay of IKE messages in the zero-loss
// tests, a little above the data packets' 3 ms: a rekey must not rely on
// its messages arriving before the data sent right after them.
const v2IKELatency = 5 * time.Millisecond

// withLatency delays every IKE datagram by d (the in-memory network
// delivers on the sender's goroutine, so this holds the sending engine's
// loop, as a slow path would hold the message), then applies next.
func withLatency(d time.Duration, next func(from, to netip.AddrPort, b []byte) bool) func(from, to netip.AddrPort, b []byte) bool {
	return func(from, to netip.AddrPort, b []byte) bool {
		time.Sleep(d)
		return next == nil || next(from, to, b)
	}
}

// crossingFilter drops the first transmission of every CREATE_CHILD_SA
// request and response, so that two requests sent at about the same time
// by both ends are both answered before either answer arrives: the
// simultaneous rekey of RFC 7296 2.8.1/2.8.2, made certain.
func crossingFilter() (func(from, to netip.AddrPort, b []byte) bool, *atomic.Int64) {
	var mu sync.Mutex
	seen := map[string]bool{}
	var dropped atomic.Int64
	return func(from, to netip.AddrPort, b []byte) bool {
		if len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0 {
			b = b[4:]
		}
		h, err := wire.DecodeHeader(b)
		if err != nil || h.Exchange != wire.ExchangeCreateChildSA {
			return true
		}
		k := from.String() + string(h.SPIi[:]) + string(h.SPIr[:]) + string(rune(h.MessageID)) + string(rune(h.Flags))
		mu.Lock()
		defer mu.Unlock()
		if seen[k] {
			return true
		}
		seen[k] = true
		dropped.Add(1)
		return false
	}, &dropped
}

// TestIKEv2SimultaneousRekeyZeroLoss: both ends rekey the child SA and the
// IKE SA at once, under traffic. Both collisions are resolved the same way
// on both ends (one rekey-collision event each per SA, the same survivor),
// no packet is lost, each end is left with one pair (the same on both) and
// one IKE SA (the same SPIs), and traffic still flows on the result.
func TestIKEv2SimultaneousRekeyZeroLoss(t *testing.T) {
	filter, dropped := crossingFilter()
	// Both ends offer PFS with MODP_2048 first, so that neither rekey is
	// refused with INVALID_KE_PAYLOAD and both really cross.
	cgw, vgw, nw := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) { vt.Phase2.Proposals = ct.Phase2.Proposals }})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	old := inboundSPIs(cgw, vgw)
	oldIKE := cgw.tunnel(t).ICookie + cgw.tunnel(t).RCookie
	f := startV2Flow(cgw, vgw, time.Millisecond, 3*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	nw.SetFilter(withLatency(v2IKELatency, filter))
	var wg sync.WaitGroup
	for _, g := range []*gw{cgw, vgw} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.e.Rekey("tunnel1", 1); err != nil {
				t.Error(err)
			}
			if err := g.e.Rekey("tunnel1", 2); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	waitRekeyed(t, old, 15*time.Second, cgw, vgw)
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs, vs := cgw.tunnel(t), vgw.tunnel(t)
		if cs.ICookie+cs.RCookie != oldIKE && cs.ICookie == vs.ICookie && cs.RCookie == vs.RCookie && v2SACount(cgw) == 1 && v2SACount(vgw) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("IKE SAs not settled: cgw %s/%s (%d SAs), vgw %s/%s (%d SAs)", cs.ICookie, cs.RCookie, v2SACount(cgw), vs.ICookie, vs.RCookie, v2SACount(vgw))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	f.end()
	checkPairsMatch(t, cgw, vgw)
	if f.lost.Load() != 0 || f.sent.Load() < 200 {
		t.Fatalf("%d of %d packets lost (%d without a sender)", f.lost.Load(), f.sent.Load(), f.noSender.Load())
	}
	if dropped.Load() < 8 {
		t.Fatalf("the filter dropped %d CREATE_CHILD_SA messages: the rekeys did not cross", dropped.Load())
	}
	// Each collision is resolved by at least one end from the nonces (the
	// other may learn the outcome from the winner's DELETE first); ends
	// that both resolve it agree (complementary ours_survives).
	evs := [2]map[string]string{collisions(cgw), collisions(vgw)}
	for _, sa := range []string{"ike", "child"} {
		c, cok := evs[0][sa]
		v, vok := evs[1][sa]
		switch {
		case !cok && !vok:
			t.Errorf("no end reports the %s SA rekey collision", sa)
		case cok && vok && c == v:
			t.Errorf("%s SA collision: cgw ours_survives=%s, vgw ours_survives=%s: the ends disagree", sa, c, v)
		}
		t.Logf("%s SA collision: cgw ours_survives=%q, vgw ours_survives=%q", sa, c, v)
	}
	t.Logf("%d packets, none lost; %d CREATE_CHILD_SA messages dropped to make the rekeys cross", f.sent.Load(), dropped.Load())
}

// collisions drains the gateway's events: ours_survives of each
// rekey-collision by SA kind.
func collisions(g *gw) map[string]string {
	out := map[string]string{}
	for {
		select {
		case ev := <-g.events:
			if ev.Type == "rekey-collision" {
				out[ev.Detail["sa"]] = ev.Detail["ours_survives"]
			}
		case <-time.After(100 * time.Millisecond):
			return out
		}
	}
}

// v2SACount is the number of established IKEv2 SAs of the gateway's tunnel.
func v2SACount(g *gw) int {
	n := make(chan int, 1)
	g.e.post(func() {
		c := 0
		for _, t := range g.e.tunnels {
			for _, sa := range t.v2SAs {
				if sa.state == v2Established {
					c++
				}
			}
		}
		n <- c
	})
	return <-n
}

// TestIKEv2UnansweredRekeyEndsIKESA: a child SA rekey the peer never
// answers ends the IKE SA with its child SAs after the retransmissions
// (RFC 7296 2.4), with the reason in the tunnel's error; a tunnel that
// should be up negotiates again once the peer answers.
func TestIKEv2UnansweredRekeyEndsIKESA(t *testing.T) {
	cgw, _, nw := v2Up(t, v2PairOpts{})
	var blackhole atomic.Bool
	nw.SetFilter(func(from, to netip.AddrPort, b []byte) bool { return !(blackhole.Load() && from.Addr() == v2V) })
	blackhole.Store(true)
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	ev := cgw.waitEvent(t, "phase1-down", 10*time.Second)
	if !strings.Contains(ev.Detail["reason"], "no answer to CREATE_CHILD_SA request") {
		t.Fatalf("phase1-down reason %q", ev.Detail["reason"])
	}
	if len(cgw.dp.Pairs()) != 0 {
		t.Fatal("the child SA outlived its IKE SA")
	}
	blackhole.Store(false)
	cgw.waitEvent(t, "phase2-up", 20*time.Second)
}

// TestIKEv2RekeyTimers: lifetimes drive the rekeys as in IKEv1 (margin,
// fuzz): with a 3 s child SA lifetime, a 5 s IKE SA lifetime and a 1 s
// margin, 6 s of traffic see at least two child SA rekeys and one IKE SA
// rekey, by the original initiator, without loss.
func TestIKEv2RekeyTimers(t *testing.T) {
	cgw, vgw, _ := v2Up(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) {
		for _, tc := range []*TunnelConfig{ct, vt} {
			tc.Phase1.Lifetime, tc.Phase2.Lifetime, tc.RekeyMargin, tc.RekeyFuzz = 5*time.Second, 3*time.Second, time.Second, 0
		}
	}})
	f := startV2Flow(cgw, vgw, time.Millisecond, 3*time.Millisecond)
	time.Sleep(6 * time.Second)
	f.end()
	cs, vs := cgw.tunnel(t), vgw.tunnel(t)
	if cs.Counters.Phase2Rekeys < 2 || cs.Counters.Phase1Rekeys < 1 || vs.Counters.Phase1Rekeys != cs.Counters.Phase1Rekeys {
		t.Fatalf("rekeys in 6 s: cgw child %d, IKE %d; vgw child %d, IKE %d", cs.Counters.Phase2Rekeys, cs.Counters.Phase1Rekeys,
			vs.Counters.Phase2Rekeys, vs.Counters.Phase1Rekeys)
	}
	if f.lost.Load() != 0 {
		t.Fatalf("%d of %d packets lost", f.lost.Load(), f.sent.Load())
	}
	if cs.Phase1State != "Established" || vs.Phase2State != "Established" {
		t.Fatalf("states after the rekeys: cgw %s, vgw %s", cs.Phase1State, vs.Phase2State)
	}
	t.Logf("cgw: %d child SA rekeys, %d IKE SA rekeys, %d packets, none lost", cs.Counters.Phase2Rekeys, cs.Counters.Phase1Rekeys, f.sent.Load())
}

// TestIKEv2RekeyFragmented: with a 576-byte fragment size, the vgw's
// CREATE_CHILD_SA request (AWS's long proposal list and a KE payload) goes
// in IKE fragments (RFC 7383); the cgw reassembles it, answers, and the
// child SA is rekeyed without loss.
func TestIKEv2RekeyFragmented(t *testing.T) {
	frag := WithIKEv2FragmentSize(576)
	cgw, vgw, nw := v2Up(t, v2PairOpts{cgwOpts: []Option{frag}, vgwOpts: []Option{frag}})
	var skf atomic.Int64
	nw.SetFilter(withLatency(v2IKELatency, func(from, to netip.AddrPort, b []byte) bool {
		if h, err := wire.DecodeHeader(b); err == nil && h.Exchange == wire.ExchangeCreateChildSA && h.NextPayload == wire.PayloadSKF {
			skf.Add(1)
		}
		return true
	}))
	old := inboundSPIs(cgw, vgw)
	f := startV2Flow(cgw, vgw, time.Millisecond, 3*time.Millisecond)
	if err := vgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	waitRekeyed(t, old, 10*time.Second, cgw, vgw)
	f.end()
	checkPairsMatch(t, cgw, vgw)
	if skf.Load() < 2 {
		t.Fatalf("%d CREATE_CHILD_SA fragments seen: the request was not fragmented", skf.Load())
	}
	if f.lost.Load() != 0 {
		t.Fatalf("%d of %d packets lost", f.lost.Load(), f.sent.Load())
	}
	t.Logf("%d CREATE_CHILD_SA fragments", skf.Load())
}
