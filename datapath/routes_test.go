package datapath

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
)

// The two-tunnel setup of AWS: one customer gateway address, two AWS
// endpoints, both tunnels with 0.0.0.0/0 selectors on both sides.
var (
	cgwOutside = netip.MustParseAddrPort("192.0.2.1:4500")
	awsTunnel  = map[string]netip.AddrPort{
		"tunnel1": netip.MustParseAddrPort("198.51.100.1:4500"),
		"tunnel2": netip.MustParseAddrPort("198.51.100.2:4500"),
	}
	anyNet = netip.MustParsePrefix("0.0.0.0/0")
)

// Inbound SPIs of a (the cgw) per tunnel; b's are these + 0x100. On the
// wire a's packets carry b's inbound SPI.
var tunnelSPI = map[string]uint32{"tunnel1": 0x1100, "tunnel2": 0x2100}

// installTunnel installs one pair of the named tunnel on both sides (ESP in
// UDP, tunnel mode, 0.0.0.0/0 selectors) with a's inbound SPI spiA.
func installTunnel(t *testing.T, a, b *gw, name string, spiA uint32) {
	t.Helper()
	s := gcmSuite()
	inA, inB := s.child(spiA), s.child(spiA+0x100)
	pa := childsa.Pair{Tunnel: name, Inbound: inA, Outbound: inB, Mode: childsa.ModeTunnel, UDPEncap: true,
		Local: cgwOutside, Remote: awsTunnel[name], LocalTS: anyNet, RemoteTS: anyNet, Lifetime: time.Hour}
	pb := childsa.Pair{Tunnel: name, Inbound: inB, Outbound: inA, Mode: childsa.ModeTunnel, UDPEncap: true,
		Local: awsTunnel[name], Remote: cgwOutside, LocalTS: anyNet, RemoteTS: anyNet, Lifetime: time.Hour}
	if err := a.dp.Install(pa); err != nil {
		t.Fatal(err)
	}
	if err := b.dp.Install(pb); err != nil {
		t.Fatal(err)
	}
}

// spiRecorder records the SPI of every ESP-in-UDP packet a wire sends.
type spiRecorder struct {
	mu   sync.Mutex
	spis []uint32
}

func (r *spiRecorder) filter(p []byte) [][]byte {
	r.mu.Lock()
	r.spis = append(r.spis, binary.BigEndian.Uint32(p))
	r.mu.Unlock()
	return [][]byte{p}
}

func (r *spiRecorder) last() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.spis) == 0 {
		return 0
	}
	return r.spis[len(r.spis)-1]
}

// tunnelOf names the tunnel of a's outbound SPI.
func tunnelOf(spi uint32) string {
	for n, s := range tunnelSPI {
		if spi == s+0x100 {
			return n
		}
	}
	return fmt.Sprintf("spi-%x", spi)
}

// dualGWs returns a cgw (a) and an AWS side (b) with both tunnels up
// (tunnel2 installed last) and a recorder on a's wire.
func dualGWs(t *testing.T, cfgA Config) (a, b *gw, rec *spiRecorder) {
	a, b = newGWsWith(t, cfgA, Config{})
	installTunnel(t, a, b, "tunnel1", tunnelSPI["tunnel1"])
	installTunnel(t, a, b, "tunnel2", tunnelSPI["tunnel2"])
	rec = &spiRecorder{}
	a.wire.SetFilter(rec.filter)
	return a, b, rec
}

// via sends pkt from a and returns the tunnel that carried it ("" if it
// was not delivered).
func via(t *testing.T, a, b *gw, rec *spiRecorder, pkt []byte) string {
	t.Helper()
	if through(a, b, pkt) == nil {
		return ""
	}
	return tunnelOf(rec.last())
}

// expectDropped sends pkt from a and checks that nothing arrives and the
// no-route counter grows by one.
func expectNoRoute(t *testing.T, a, b *gw, pkt []byte) {
	t.Helper()
	before := a.dp.Drops()["no-route"]
	a.tun.Outbound <- pkt
	select {
	case p := <-b.tun.Inbound:
		t.Fatalf("delivered %x", p)
	case <-time.After(50 * time.Millisecond):
	}
	if got := a.dp.Drops()["no-route"]; got != before+1 {
		t.Fatalf("no-route drops %d, want %d", got, before+1)
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// tcpPacket builds an IPv4/TCP SYN-like packet (checksum not set: the data
// path does not look at it).
func tcpPacket(src, dst netip.Addr, sport, dport uint16) []byte {
	p := udpPacket(src, dst, 12, 0) // 20 + 8 + 12 = 40 bytes: 20 IP + 20 TCP
	p[9] = 6
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], ipChecksum(p[:20]))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	p[32] = 5 << 4 // data offset
	p[33] = 0x02   // SYN
	return p
}

func ipChecksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// flowPacket is a UDP packet of the flow src:sport -> dst:dport.
func flowPacket(src, dst netip.Addr, sport, dport uint16) []byte {
	p := udpPacket(src, dst, 20, 0)
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	return p
}

// TestRoutesExplicit: explicit routes and selector routes share the
// longest-prefix lookup; an explicit route wins on an identical prefix;
// the tunnel inside /30s keep the BGP sessions on their tunnels although
// both tunnels' selectors are 0.0.0.0/0.
func TestRoutesExplicit(t *testing.T) {
	a, b, rec := dualGWs(t, Config{})
	// selector routes only: both claim 0.0.0.0/0, the newest pair's tunnel wins
	if got := via(t, a, b, rec, udpPacket(hostA, addr("10.1.0.5"), 10, 0)); got != "tunnel2" {
		t.Fatalf("selector route: %q, want tunnel2", got)
	}
	a.dp.SetRoutes([]Route{
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Tunnels: []string{"tunnel1"}},
		{Prefix: netip.MustParsePrefix("169.254.10.0/30"), Tunnels: []string{"tunnel1"}},
		{Prefix: netip.MustParsePrefix("169.254.11.0/30"), Tunnels: []string{"tunnel2"}},
	})
	for _, c := range []struct {
		pkt  []byte
		want string
	}{
		{udpPacket(hostA, addr("10.1.0.5"), 10, 0), "tunnel1"},
		{udpPacket(hostA, addr("10.2.0.5"), 10, 0), "tunnel2"}, // selector 0.0.0.0/0
		// BGP (TCP 179) between the tunnel inside addresses
		{tcpPacket(addr("169.254.10.2"), addr("169.254.10.1"), 40000, 179), "tunnel1"},
		{tcpPacket(addr("169.254.11.2"), addr("169.254.11.1"), 40001, 179), "tunnel2"},
		{tcpPacket(addr("169.254.10.2"), addr("169.254.10.1"), 179, 40002), "tunnel1"},
	} {
		if got := via(t, a, b, rec, c.pkt); got != c.want {
			src, dst, _ := addrs(c.pkt)
			t.Fatalf("%s -> %s: %q, want %q", src, dst, got, c.want)
		}
	}
	want := []RouteStatus{
		{Prefix: anyNet, Tunnels: []string{"tunnel2", "tunnel1"}, Source: "selector", Active: []string{"tunnel2", "tunnel1"}},
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Tunnels: []string{"tunnel1"}, Source: "explicit", Active: []string{"tunnel1"}},
		{Prefix: netip.MustParsePrefix("169.254.10.0/30"), Tunnels: []string{"tunnel1"}, Source: "explicit", Active: []string{"tunnel1"}},
		{Prefix: netip.MustParsePrefix("169.254.11.0/30"), Tunnels: []string{"tunnel2"}, Source: "explicit", Active: []string{"tunnel2"}},
	}
	if got := a.dp.Routes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Routes:\n got %+v\nwant %+v", got, want)
	}
	// an explicit route on the selectors' own prefix wins
	a.dp.SetRoutes([]Route{{Prefix: anyNet, Tunnels: []string{"tunnel1"}}})
	if got := via(t, a, b, rec, udpPacket(hostA, addr("10.2.0.5"), 10, 0)); got != "tunnel1" {
		t.Fatalf("explicit 0.0.0.0/0: %q, want tunnel1", got)
	}
	if rs := a.dp.Routes(); len(rs) != 1 || rs[0].Source != "explicit" {
		t.Fatalf("Routes with the selector route overridden: %+v", rs)
	}
	// replacing the set removes the old routes: back to the selector route
	a.dp.SetRoutes(nil)
	if got := via(t, a, b, rec, udpPacket(hostA, addr("10.1.0.5"), 10, 0)); got != "tunnel2" {
		t.Fatalf("after SetRoutes(nil): %q, want tunnel2", got)
	}
	// a route without any valid tunnel or prefix is ignored
	a.dp.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("10.1.0.0/16")}, {Tunnels: []string{"tunnel1"}}})
	if rs := a.dp.Routes(); len(rs) != 1 {
		t.Fatalf("invalid routes kept: %+v", rs)
	}
}

// TestRoutesFailover: a route's first tunnel with an SA pair carries its
// traffic; when that tunnel's pair is deleted the next tunnel takes over
// with the very next packet, and moves back when the tunnel returns. A
// route whose tunnels have no pair drops (no-route), without falling back
// to a shorter prefix.
func TestRoutesFailover(t *testing.T) {
	a, b, rec := dualGWs(t, Config{})
	a.dp.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Tunnels: []string{"tunnel1", "tunnel2"}}})
	pkt := func() []byte { return udpPacket(hostA, addr("10.1.2.3"), 10, 0) }
	if got := via(t, a, b, rec, pkt()); got != "tunnel1" {
		t.Fatalf("preferred: %q", got)
	}
	// DPD cleared tunnel1: the engine deletes its pair
	if err := a.dp.Delete(protoESP, tunnelSPI["tunnel1"]); err != nil {
		t.Fatal(err)
	}
	if got := via(t, a, b, rec, pkt()); got != "tunnel2" {
		t.Fatalf("after tunnel1's pair is gone: %q, want tunnel2", got)
	}
	if rs := a.dp.Routes(); !slices.Equal(rs[1].Active, []string{"tunnel2"}) {
		t.Fatalf("Routes: %+v", rs)
	}
	// tunnel1 comes back (a new pair: a's inbound SPI 0x3100, b's 0x3200)
	installTunnel(t, a, b, "tunnel1", 0x3100)
	if through(a, b, pkt()) == nil || rec.last() != 0x3200 {
		t.Fatalf("tunnel1 back: SPI %x, want 3200", rec.last())
	}
	// a route to a tunnel without a pair: no-route, even though the
	// selector route 0.0.0.0/0 would carry it
	a.dp.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Tunnels: []string{"tunnel9"}}})
	expectNoRoute(t, a, b, pkt())
	if got := via(t, a, b, rec, udpPacket(hostA, addr("11.0.0.1"), 10, 0)); got == "" {
		t.Fatal("selector route outside 10/8 lost")
	}
}

// TestRoutesECMP: an ECMP route spreads flows over the tunnels that have
// pairs and keeps every packet of a flow on one tunnel (fragments, which
// have no ports, stay together too); when one tunnel's pair is deleted all
// flows move to the other, and when it returns every flow goes back to
// the tunnel it had.
func TestRoutesECMP(t *testing.T) {
	a, b, rec := dualGWs(t, Config{})
	a.dp.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Tunnels: []string{"tunnel1", "tunnel2"}, ECMP: true}})
	type flow struct {
		src, dst     netip.Addr
		sport, dport uint16
	}
	var flows []flow
	for i := 0; i < 150; i++ {
		flows = append(flows, flow{hostA, addr("10.1.2.3"), uint16(20000 + i), 443}) // ports differ
	}
	for i := 0; i < 50; i++ {
		flows = append(flows, flow{hostA, netip.AddrFrom4([4]byte{10, 9, byte(i), 1}), 5000, 53}) // addresses differ
	}
	assign := func() map[flow]string {
		m := map[flow]string{}
		for _, f := range flows {
			for k := 0; k < 3; k++ {
				got := via(t, a, b, rec, flowPacket(f.src, f.dst, f.sport, f.dport))
				if got == "" {
					t.Fatalf("flow %+v not delivered", f)
				}
				if prev, ok := m[f]; ok && prev != got {
					t.Fatalf("flow %+v moved from %s to %s", f, prev, got)
				}
				m[f] = got
			}
		}
		return m
	}
	first := assign()
	count := map[string]int{}
	for _, tn := range first {
		count[tn]++
	}
	if count["tunnel1"] < 60 || count["tunnel2"] < 60 {
		t.Fatalf("flows per tunnel %v: not spread", count)
	}
	t.Logf("200 flows: %v", count)

	// fragments of one datagram (MF set / offset, bytes where ports would
	// be differ) stay on one tunnel
	var fragTunnel string
	for k := 0; k < 10; k++ {
		p := flowPacket(hostA, addr("10.7.7.7"), uint16(k*7919), uint16(k*104729))
		binary.BigEndian.PutUint16(p[6:], uint16(0x2000|k*100)) // MF, offset
		binary.BigEndian.PutUint16(p[10:], 0)
		binary.BigEndian.PutUint16(p[10:], ipChecksum(p[:20]))
		got := via(t, a, b, rec, p)
		if fragTunnel == "" {
			fragTunnel = got
		} else if got != fragTunnel {
			t.Fatalf("fragment %d on %s, earlier ones on %s", k, got, fragTunnel)
		}
	}

	// tunnel2's pair deleted: everything on tunnel1
	if err := a.dp.Delete(protoESP, tunnelSPI["tunnel2"]); err != nil {
		t.Fatal(err)
	}
	for f, tn := range assign() {
		if tn != "tunnel1" {
			t.Fatalf("flow %+v on %s with tunnel2 down", f, tn)
		}
	}
	// tunnel2 back with the same SPIs (as far as tunnelOf is concerned):
	// every flow returns to where it was
	b.dp.Delete(protoESP, tunnelSPI["tunnel2"]+0x100)
	installTunnel(t, a, b, "tunnel2", tunnelSPI["tunnel2"])
	again := assign()
	for f, tn := range first {
		if again[f] != tn {
			t.Fatalf("flow %+v: %s before, %s after tunnel2 returned", f, tn, again[f])
		}
	}
}

// TestExplicitRoutesOnly: with Config.ExplicitRoutesOnly the selector
// routes are not used: a destination only a selector covers is dropped.
func TestExplicitRoutesOnly(t *testing.T) {
	a, b, rec := dualGWs(t, Config{ExplicitRoutesOnly: true})
	expectNoRoute(t, a, b, udpPacket(hostA, addr("10.1.0.5"), 10, 0))
	if rs := a.dp.Routes(); len(rs) != 0 {
		t.Fatalf("Routes %+v, want none", rs)
	}
	a.dp.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Tunnels: []string{"tunnel1"}},
		{Prefix: netip.MustParsePrefix("169.254.11.0/30"), Tunnels: []string{"tunnel2"}}})
	if got := via(t, a, b, rec, udpPacket(hostA, addr("10.1.0.5"), 10, 0)); got != "tunnel1" {
		t.Fatalf("explicit route: %q", got)
	}
	if got := via(t, a, b, rec, tcpPacket(addr("169.254.11.2"), addr("169.254.11.1"), 40000, 179)); got != "tunnel2" {
		t.Fatalf("inside /30: %q", got)
	}
	expectNoRoute(t, a, b, udpPacket(hostA, addr("10.9.0.5"), 10, 0))
	if rs := a.dp.Routes(); len(rs) != 2 || rs[0].Source != "explicit" || rs[1].Source != "explicit" {
		t.Fatalf("Routes %+v", rs)
	}
}

// naiveRoute is the reference lookup: longest prefix over explicit and
// selector routes, explicit first on equal length.
func naiveRoute(explicit []Route, selectors []netip.Prefix, dst netip.Addr) (netip.Prefix, bool) {
	best, found, isExplicit := netip.Prefix{}, false, false
	for _, r := range explicit {
		if r.Prefix.Contains(dst) && (!found || r.Prefix.Bits() > best.Bits() || (r.Prefix.Bits() == best.Bits() && !isExplicit)) {
			best, found, isExplicit = r.Prefix.Masked(), true, true
		}
	}
	for _, p := range selectors {
		if p.Contains(dst) && (!found || p.Bits() > best.Bits()) {
			best, found, isExplicit = p, true, false
		}
	}
	return best, found
}

// TestRoutesScale: 10,000 routes are set quickly, every lookup agrees with
// a brute-force longest-prefix match, and lookups allocate nothing.
func TestRoutesScale(t *testing.T) {
	a, _, _ := dualGWs(t, Config{})
	r := rand.New(rand.NewPCG(1, 1))
	var routes []Route
	for i := 0; i < 10000; i++ {
		bits := 8 + r.IntN(25)
		var b4 [4]byte
		binary.BigEndian.PutUint32(b4[:], r.Uint32()&0x0fffffff|0x0a000000) // mostly inside 10/8..
		p := netip.PrefixFrom(netip.AddrFrom4(b4), bits).Masked()
		routes = append(routes, Route{Prefix: p, Tunnels: []string{[]string{"tunnel1", "tunnel2"}[r.IntN(2)]}, ECMP: r.IntN(4) == 0})
	}
	// later duplicates replace earlier ones: keep the reference list the same
	seen := map[netip.Prefix]int{}
	for i, rt := range routes {
		seen[rt.Prefix] = i
	}
	var ref []Route
	for i, rt := range routes {
		if seen[rt.Prefix] == i {
			ref = append(ref, rt)
		}
	}
	start := time.Now()
	a.dp.SetRoutes(routes)
	took := time.Since(start)
	t.Logf("SetRoutes(%d routes): %v", len(routes), took)
	if took > 2*time.Second {
		t.Fatalf("SetRoutes took %v", took)
	}
	tb := a.dp.table.Load()
	for i := 0; i < 3000; i++ {
		var b4 [4]byte
		binary.BigEndian.PutUint32(b4[:], r.Uint32()&0x0fffffff|0x0a000000)
		dst := netip.AddrFrom4(b4)
		if i%3 == 0 { // an address of a route, to hit long prefixes
			dst = ref[r.IntN(len(ref))].Prefix.Addr()
		}
		want, ok := naiveRoute(ref, []netip.Prefix{anyNet}, dst)
		e := tb.route(dst)
		if !ok || e == nil || e.prefix != want {
			t.Fatalf("%s: route %v, want %v", dst, e, want)
		}
	}
	pkt := udpPacket(hostA, addr("10.1.2.3"), 10, 0)
	if n := testing.AllocsPerRun(1000, func() { tb.sender(pkt, addr("10.1.2.3"), 7) }); n != 0 {
		t.Fatalf("lookup allocates %v", n)
	}
}

// BenchmarkRouteLookup: longest-prefix match over 10,000 explicit routes
// (plus the selector routes) and the choice of the sending pair.
func BenchmarkRouteLookup(b *testing.B) {
	for _, ecmp := range []bool{false, true} {
		b.Run(fmt.Sprintf("ecmp=%v", ecmp), func(b *testing.B) {
			dp, _, _ := benchPair(b, gcmSuite(), true)
			r := rand.New(rand.NewPCG(2, 2))
			var routes []Route
			for i := 0; i < 10000; i++ {
				var b4 [4]byte
				binary.BigEndian.PutUint32(b4[:], r.Uint32())
				routes = append(routes, Route{Prefix: netip.PrefixFrom(netip.AddrFrom4(b4), 8+r.IntN(25)).Masked(), Tunnels: []string{"x", "t"}, ECMP: ecmp})
			}
			routes = append(routes, Route{Prefix: netB, Tunnels: []string{"x", "t"}, ECMP: ecmp})
			dp.SetRoutes(routes)
			tb := dp.table.Load()
			pkt := udpPacket(hostA, hostB, 10, 0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if tb.sender(pkt, hostB, 1) == nil {
					b.Fatal("no route")
				}
			}
		})
	}
}

// TestSetRoutesWhileSending: SetRoutes from another goroutine while
// packets flow (run with -race: the packet path reads the snapshot
// without locks); every packet goes through one of the two tunnels.
func TestSetRoutesWhileSending(t *testing.T) {
	a, b, rec := dualGWs(t, Config{ExplicitRoutesOnly: true})
	sets := [][]Route{
		{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Tunnels: []string{"tunnel1"}}},
		{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Tunnels: []string{"tunnel2", "tunnel1"}, ECMP: true}},
		{{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Tunnels: []string{"tunnel2"}}, {Prefix: netip.MustParsePrefix("10.0.0.0/8"), Tunnels: []string{"tunnel1"}}},
	}
	a.dp.SetRoutes(sets[0])
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			a.dp.SetRoutes(sets[i%len(sets)])
			a.dp.Routes()
		}
	}()
	for i := 0; i < 300; i++ {
		if got := via(t, a, b, rec, flowPacket(hostA, addr("10.1.2.3"), uint16(i), 80)); got != "tunnel1" && got != "tunnel2" {
			t.Fatalf("packet %d: %q", i, got)
		}
	}
	close(stop)
	<-done
}
