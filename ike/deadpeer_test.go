package ike

import (
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// waitEventWith waits for an event of type typ whose detail key has value
// val, failing on any event for which fail returns true.
func (g *gw) waitEventWith(t testing.TB, typ, key, val string, d time.Duration) Event {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev := <-g.events:
			if ev.Type == typ && (key == "" || ev.Detail[key] == val) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event with %s=%q within %v", typ, key, val, d)
		}
	}
}

// noEventWith fails if an event of type typ with detail key=val arrives
// within d; it returns the events seen.
func (g *gw) noEventWith(t testing.TB, typ, key, val string, d time.Duration) []Event {
	t.Helper()
	var seen []Event
	timeout := time.After(d)
	for {
		select {
		case ev := <-g.events:
			seen = append(seen, ev)
			if ev.Type == typ && ev.Detail[key] == val {
				t.Fatalf("unexpected %q event with %s=%q: %+v", typ, key, val, ev)
			}
		case <-timeout:
			return seen
		}
	}
}

// dpdPair runs a cgw and vgw through the relaying NAT with fast DPD timers
// (probe after 200 ms of silence, dead after 1 s) and a switch that
// blackholes the path.
func dpdPair(t *testing.T, cgwAction, vgwAction DPDAction, mod func(ct, vt *TunnelConfig)) (cgw, vgw *gw, blackhole *atomic.Bool) {
	blackhole = &atomic.Bool{}
	cgw, vgw = newRelayedPairMod(t, func(string, int, []byte) bool { return blackhole.Load() }, false, func(ct, vt *TunnelConfig) {
		ct.DPDDelay, ct.DPDTimeout, ct.DPDAction = 200*time.Millisecond, time.Second, cgwAction
		vt.DPDDelay, vt.DPDTimeout, vt.DPDAction = 200*time.Millisecond, time.Second, vgwAction
		if mod != nil {
			mod(ct, vt)
		}
	})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	return cgw, vgw, blackhole
}

// TestDPDProbesAnswered: with no traffic both sides probe after the delay,
// the peer answers R-U-THERE-ACK with the same sequence number, and nobody
// is declared dead over several timeouts.
func TestDPDProbesAnswered(t *testing.T) {
	t.Parallel()
	cgw, _, _ := dpdPair(t, DPDRestart, DPDClear, nil)
	seen := cgw.noEventWith(t, "dpd-state", "state", "dead", 3*time.Second)
	probing, alive := 0, 0
	for _, ev := range seen {
		if ev.Type == "dpd-state" && ev.Detail["state"] == "probing" {
			probing++
		}
		if ev.Type == "dpd-state" && ev.Detail["state"] == "alive" && ev.Detail["proof"] == "R-U-THERE-ACK" {
			alive++
		}
	}
	if probing < 2 || alive < 2 {
		t.Fatalf("in 3 s of silence: %d probing rounds, %d answered by R-U-THERE-ACK; want at least 2 each", probing, alive)
	}
	if st := cgw.tunnel(t); st.Phase2State != "Established" || len(st.SAs) != 1 {
		t.Fatalf("tunnel changed while the peer answered: %+v", st)
	}
}

// TestDPDTimeoutActions blackholes the path and checks each action.
func TestDPDTimeoutActions(t *testing.T) {
	t.Parallel()
	t.Run("clear", func(t *testing.T) {
		t.Parallel()
		cgw, vgw, bh := dpdPair(t, DPDClear, DPDClear, nil)
		start := time.Now()
		bh.Store(true)
		ev := cgw.waitEventWith(t, "dpd-state", "state", "dead", 5*time.Second)
		if ev.Detail["message"] != peerDeadMessage || ev.Detail["action"] != "clear" {
			t.Fatalf("dead event %+v", ev)
		}
		if el := time.Since(start); el < 800*time.Millisecond {
			t.Fatalf("declared dead %v after the blackhole, before the 1 s timeout could pass", el)
		}
		vgw.waitEventWith(t, "dpd-state", "state", "dead", 5*time.Second)
		bh.Store(false)
		cgw.noEventWith(t, "phase1-state", "state", "Negotiating", time.Second)
		st := cgw.tunnel(t)
		if st.Phase1State != "Down" || st.Phase2State != "Down" || len(cgw.dp.Pairs()) != 0 || st.LastError != peerDeadMessage {
			t.Fatalf("after clear: %+v, pairs %d", st, len(cgw.dp.Pairs()))
		}
	})
	t.Run("restart", func(t *testing.T) {
		t.Parallel()
		cgw, vgw, bh := dpdPair(t, DPDRestart, DPDClear, nil)
		bh.Store(true)
		cgw.waitEventWith(t, "dpd-state", "state", "dead", 5*time.Second)
		cgw.waitEventWith(t, "phase1-state", "state", "Negotiating", time.Second)
		vgw.waitEventWith(t, "dpd-state", "state", "dead", 5*time.Second)
		bh.Store(false)
		cgw.waitEvent(t, "phase2-up", 15*time.Second)
		if n := len(cgw.dp.Pairs()); n != 1 {
			t.Fatalf("after restart: %d pairs installed, want 1", n)
		}
	})
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		cgw, _, bh := dpdPair(t, DPDNone, DPDNone, nil)
		bh.Store(true)
		ev := cgw.waitEventWith(t, "dpd-state", "state", "dead", 5*time.Second)
		if ev.Detail["action"] != "none" {
			t.Fatalf("dead event %+v", ev)
		}
		if n := len(cgw.dp.Pairs()); n != 1 {
			t.Fatalf("action none removed the SAs: %d pairs", n)
		}
		bh.Store(false)
		cgw.waitEventWith(t, "dpd-state", "state", "alive", 5*time.Second)
	})
}

// TestDPDDataTrafficIsProofOfLife: verified inbound ESP (LastInbound) keeps
// the peer alive although every IKE message is lost.
func TestDPDDataTrafficIsProofOfLife(t *testing.T) {
	t.Parallel()
	// The cgw's delay is 600 ms against marks every 20 ms: a marking
	// goroutine starved for 200 ms on a loaded machine made the cgw probe
	// with the default 200 ms delay of dpdPair (a false failure).
	cgw, _, bh := dpdPair(t, DPDClear, DPDClear, func(ct, _ *TunnelConfig) {
		ct.DPDDelay, ct.DPDTimeout = 600*time.Millisecond, 2*time.Second
	})
	var p ChildSAPair
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ps := cgw.dp.Pairs(); len(ps) > 0 {
			p = ps[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cgw's data path holds no pair 5 s after phase2-up")
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				cgw.dp.MarkInbound(p.Inbound.Protocol, p.Inbound.SPI)
			}
		}
	}()
	bh.Store(true)
	seen := cgw.noEventWith(t, "dpd-state", "state", "dead", 2500*time.Millisecond)
	for _, ev := range seen {
		if ev.Type == "dpd-state" && ev.Detail["state"] == "probing" {
			t.Fatalf("probed although traffic arrived: %+v", ev)
		}
	}
}

// TestNATKeepalives: the side behind the NAT sends one-byte 0xFF datagrams
// from its NAT-T port at the configured interval.
func TestNATKeepalives(t *testing.T) {
	t.Parallel()
	var keepalives atomic.Int64
	cgw, _ := newRelayedPairMod(t, func(dir string, n int, b []byte) bool {
		if dir == "c2v" && len(b) == 1 && b[0] == 0xff {
			keepalives.Add(1)
		}
		return false
	}, false, func(ct, vt *TunnelConfig) {
		ct.NATKeepalive = 100 * time.Millisecond
		vt.NATKeepalive = -1
	})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for keepalives.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := keepalives.Load(); n < 3 {
		t.Fatalf("%d NAT-keepalives seen from the cgw, want >= 3", n)
	}
}

// TestNATRebindingIKE: the NAT in front of the cgw changes the cgw's public
// port mid-session; the vgw follows on the first authenticated message from
// the new mapping (here a DPD R-U-THERE) and the ISAKMP SA and the IPsec SA
// pair point at the new port.
func TestNATRebindingIKE(t *testing.T) {
	t.Parallel()
	c, v, ports := loopPair()
	rc := netip.AddrFrom4([4]byte{127, c.As4()[1], c.As4()[2], 3})
	rv := netip.AddrFrom4([4]byte{127, c.As4()[1], c.As4()[2], 4})
	nat := newRebindingNAT(t, rc, rv, c, v, ports)
	vt := baseTunnel(v, rv, ports)
	vt.RemoteID = c
	vt.DPDDelay, vt.DPDTimeout = time.Hour, 2*time.Hour
	ct := baseTunnel(c, rc, ports)
	ct.RemoteID, ct.StartupAction = v, StartupStart
	ct.DPDDelay, ct.DPDTimeout = 200*time.Millisecond, 10*time.Second
	vgw := startGW(t, "vgw", Config{Tunnels: []TunnelConfig{vt}, Ports: ports, RetransmitTimeout: 300 * time.Millisecond, RetransmitBase: 1.5, RetransmitTries: 4})
	time.Sleep(20 * time.Millisecond)
	cgw := startGW(t, "cgw", Config{Tunnels: []TunnelConfig{ct}, Ports: ports, RetransmitTimeout: 300 * time.Millisecond, RetransmitBase: 1.5, RetransmitTries: 4})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	before := vgw.dp.Pairs()[0].Remote
	newPort := nat.rebind(t)
	ev := vgw.waitEvent(t, "peer-moved", 5*time.Second)
	want := netip.AddrPortFrom(rv, newPort)
	if ev.Detail["to"] != want.String() || ev.Detail["via"] != "IKE" {
		t.Fatalf("peer-moved %+v, want to %v via IKE (was %v)", ev, want, before)
	}
	// The vgw now answers the cgw's probes at the new mapping: the cgw
	// stays alive and sees ACKs through the new NAT port.
	cgw.noEventWith(t, "dpd-state", "state", "dead", 1500*time.Millisecond)
	if got := nat.v2cNew.Load(); got == 0 {
		t.Fatal("the vgw sent nothing to the new mapping")
	}
}

// rebindingNAT relays cgw <-> vgw on the IKE and NAT-T ports; rebind gives
// the cgw's NAT-T flow a new public port, as a NAT does after its mapping
// expired.
type rebindingNAT struct {
	cgwSide *net.UDPConn                // NAT-T: where the cgw sends to
	vgwSide atomic.Pointer[net.UDPConn] // NAT-T: where the vgw sees the cgw
	cgw     netip.AddrPort
	vgw     netip.AddrPort
	rv      netip.Addr
	v2cNew  atomic.Int64
}

func newRebindingNAT(t *testing.T, rc, rv, c, v netip.Addr, ports Ports) *rebindingNAT {
	newRelay(t, rc, rv, c, v, Ports{IKE: ports.IKE, NATT: 0}, nil, false)
	n := &rebindingNAT{cgw: netip.AddrPortFrom(c, ports.NATT), vgw: netip.AddrPortFrom(v, ports.NATT), rv: rv}
	var err error
	if n.cgwSide, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(rc, ports.NATT))); err != nil {
		t.Fatal(err)
	}
	vs, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(rv, ports.NATT)))
	if err != nil {
		t.Fatal(err)
	}
	n.vgwSide.Store(vs)
	go n.pumpOut()
	go n.pumpBack(vs, false)
	t.Cleanup(func() { n.cgwSide.Close(); n.vgwSide.Load().Close() })
	return n
}

func (n *rebindingNAT) pumpOut() {
	buf := make([]byte, 65536)
	for {
		k, _, err := n.cgwSide.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		n.vgwSide.Load().WriteToUDPAddrPort(buf[:k], n.vgw)
	}
}

func (n *rebindingNAT) pumpBack(c *net.UDPConn, isNew bool) {
	buf := make([]byte, 65536)
	for {
		k, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if isNew {
			n.v2cNew.Add(1)
		}
		n.cgwSide.WriteToUDPAddrPort(buf[:k], n.cgw)
	}
}

func (n *rebindingNAT) rebind(t *testing.T) uint16 {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(n.rv, 0)))
	if err != nil {
		t.Fatal(err)
	}
	old := n.vgwSide.Swap(c)
	old.Close()
	go n.pumpBack(c, true)
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// TestSeenInformationalsBounded: an SA that answers a DPD probe every few
// seconds for hours must not remember every message ID (nor keep an IV per
// informational).
func TestSeenInformationalsBounded(t *testing.T) {
	sa := &ikeSA{ivs: map[uint32][]byte{}}
	for mid := uint32(1); mid <= 10000; mid++ {
		sa.rememberInfo(mid)
	}
	if len(sa.seenInfoOrder) != seenInfoKept || cap(sa.seenInfoOrder) > seenInfoKept {
		t.Fatalf("remembered %d message IDs in room for %d, want %d", len(sa.seenInfoOrder), cap(sa.seenInfoOrder), seenInfoKept)
	}
	if !slices.Contains(sa.seenInfoOrder, 10000) || slices.Contains(sa.seenInfoOrder, 10000-seenInfoKept) || sa.seenInfoOrder[0] != 10001-seenInfoKept {
		t.Fatal("the window must hold the newest IDs, oldest first")
	}
}

// TestDPDKeepsSAsSmall: after many DPD rounds the ISAKMP SAs hold no IV
// per informational exchange.
func TestDPDKeepsSAsSmall(t *testing.T) {
	t.Parallel()
	cgw, _, _ := dpdPair(t, DPDRestart, DPDClear, nil)
	cgw.noEventWith(t, "dpd-state", "state", "dead", 2*time.Second)
	var ivs, seen int
	if err := cgw.e.call(func() {
		for _, sa := range cgw.e.sas {
			ivs += len(sa.ivs)
			seen += len(sa.seenInfoOrder)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if ivs > 4 || seen > seenInfoKept {
		t.Fatalf("after 2 s of DPD every 200 ms: %d IVs and %d remembered informationals kept", ivs, seen)
	}
}
