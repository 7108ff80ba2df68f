package datapath

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/natt"
)

// a (the cgw) sits behind a NAT: its socket is insideA, the NAT maps it to
// pub1 (later pub2, a rebinding). b is at outsideB, not behind NAT.
var (
	insideA = netip.MustParseAddrPort("10.0.0.2:4500")
	pub1    = netip.MustParseAddrPort("203.0.113.7:4500")
	pub2    = netip.MustParseAddrPort("203.0.113.7:31000")
	pub3    = netip.MustParseAddrPort("203.0.113.99:4500")
)

type move struct {
	tunnel   string
	from, to netip.AddrPort
}

// natGWs connects a behind a NAT (mapping pub1) and b with one tunnel-mode
// ESP-in-UDP pair, and records b's OnPeerMoved calls.
func natGWs(t *testing.T) (a, b *gw, moves chan move) {
	t.Helper()
	a, b = newGWs(t)
	a.wire.SetNAT(insideA, pub1)
	moves = make(chan move, 16)
	b.dp.OnPeerMoved(func(tn string, from, to netip.AddrPort) { moves <- move{tn, from, to} })
	installNAT(t, a, b, 0x1000, 0x2000)
	return a, b, moves
}

func installNAT(t *testing.T, a, b *gw, spiA, spiB uint32) {
	t.Helper()
	s := gcmSuite()
	inA, inB := s.child(spiA), s.child(spiB)
	pa := childsa.Pair{Tunnel: "tunnel1", Inbound: inA, Outbound: inB, Mode: childsa.ModeTunnel, UDPEncap: true,
		Local: insideA, Remote: outsideB, LocalTS: netA, RemoteTS: netB, Lifetime: time.Hour}
	pb := childsa.Pair{Tunnel: "tunnel1", Inbound: inB, Outbound: inA, Mode: childsa.ModeTunnel, UDPEncap: true,
		Local: outsideB, Remote: pub1, LocalTS: netB, RemoteTS: netA, Lifetime: time.Hour}
	if err := a.dp.Install(pa); err != nil {
		t.Fatal(err)
	}
	if err := b.dp.Install(pb); err != nil {
		t.Fatal(err)
	}
}

func expectMove(t *testing.T, moves chan move, want move) {
	t.Helper()
	select {
	case m := <-moves:
		if m != want {
			t.Fatalf("moved %+v, want %+v", m, want)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("no OnPeerMoved call, want %+v", want)
	}
}

func expectNoMove(t *testing.T, moves chan move) {
	t.Helper()
	select {
	case m := <-moves:
		t.Fatalf("unexpected OnPeerMoved %+v", m)
	case <-time.After(50 * time.Millisecond):
	}
}

func expectPeer(t *testing.T, g *gw, want netip.AddrPort) {
	t.Helper()
	if got, ok := g.dp.Peer("tunnel1"); !ok || got != want {
		t.Fatalf("peer %v, want %v", got, want)
	}
}

// TestNATRebinding: the NAT in front of a changes its mapping. b's packets
// to the old mapping are lost until an authenticated packet from the new
// one arrives; then b's outbound follows, OnPeerMoved is called once, and
// traffic flows both ways. A delayed authentic packet from the old mapping
// does not move the peer back; a packet with a bad ICV or a replay from yet
// another address moves nothing.
func TestNATRebinding(t *testing.T) {
	a, b, moves := natGWs(t)
	rec := &recorder{}
	a.wire.SetFilter(rec.filter)
	if through(a, b, udpPacket(hostA, hostB, 10, 0)) == nil || through(b, a, udpPacket(hostB, hostA, 10, 0)) == nil {
		t.Fatal("no traffic before the rebinding")
	}
	expectNoMove(t, moves)
	expectPeer(t, b, pub1)

	// a packet from a that the network delays (held here, injected later)
	var mu sync.Mutex
	var held []byte
	a.wire.SetFilter(func(p []byte) [][]byte {
		mu.Lock()
		held = append([]byte(nil), p...)
		mu.Unlock()
		return nil
	})
	if through(a, b, udpPacket(hostA, hostB, 10, 0)) != nil {
		t.Fatal("held packet delivered")
	}
	a.wire.SetFilter(rec.filter)

	// the NAT rebinds a to a new port: b's packets to the old mapping are lost
	a.wire.SetNAT(insideA, pub2)
	if through(b, a, udpPacket(hostB, hostA, 10, 0)) != nil {
		t.Fatal("delivered through a stale NAT mapping")
	}
	if a.wire.NATDropped() != 1 {
		t.Fatalf("NAT dropped %d", a.wire.NATDropped())
	}
	// a's next packet arrives from the new mapping and moves the peer
	if through(a, b, udpPacket(hostA, hostB, 10, 0)) == nil {
		t.Fatal("a -> b after the rebinding")
	}
	expectMove(t, moves, move{"tunnel1", pub1, pub2})
	expectPeer(t, b, pub2)
	if through(b, a, udpPacket(hostB, hostA, 10, 0)) == nil {
		t.Fatal("b -> a after the move")
	}
	last := rec.last()

	// the delayed packet (authentic, in the window, lower sequence number)
	// arrives from the old mapping: accepted, but the peer stays
	go b.dp.ReceiveUDP(outsideB, pub1, held) // the channel TUN blocks until read
	select {
	case <-b.tun.Inbound:
	case <-time.After(time.Second):
		t.Fatal("delayed packet not accepted")
	}
	expectPeer(t, b, pub2)

	// a forged packet (bad ICV) from a third address moves nothing
	bad := append([]byte(nil), last...)
	bad[len(bad)-1] ^= 1
	b.dp.ReceiveUDP(outsideB, pub3, bad)
	// a replay of an authentic packet from a third address moves nothing
	b.dp.ReceiveUDP(outsideB, pub3, last)
	c, _ := b.dp.SACounters(protoESP, 0x2000)
	if c.Drops["icv"] != 1 || c.Drops["replay"] != 1 {
		t.Fatalf("drops %v", c.Drops)
	}
	expectPeer(t, b, pub2)
	// more traffic from the current mapping: no more calls
	for i := 0; i < 5; i++ {
		if through(a, b, udpPacket(hostA, hostB, 10, 0)) == nil || through(b, a, udpPacket(hostB, hostA, 10, 0)) == nil {
			t.Fatal("traffic after the move")
		}
	}
	expectNoMove(t, moves)
}

// TestUpdatePeer: the engine learns the new mapping from IKE first and
// tells the data path, which sends there at once; OnPeerMoved is not
// called for it.
func TestUpdatePeer(t *testing.T) {
	a, b, moves := natGWs(t)
	if through(b, a, udpPacket(hostB, hostA, 10, 0)) == nil {
		t.Fatal("no traffic")
	}
	a.wire.SetNAT(insideA, pub2)
	b.dp.UpdatePeer("tunnel1", pub2)
	expectPeer(t, b, pub2)
	if through(b, a, udpPacket(hostB, hostA, 10, 0)) == nil {
		t.Fatal("b -> a after UpdatePeer")
	}
	if through(a, b, udpPacket(hostA, hostB, 10, 0)) == nil {
		t.Fatal("a -> b after UpdatePeer")
	}
	expectNoMove(t, moves)
	b.dp.UpdatePeer("tunnel1", netip.MustParseAddrPort("[2001:db8::1]:4500")) // ignored: IPv4 outside only
	expectPeer(t, b, pub2)
	if _, ok := b.dp.Peer("no-such-tunnel"); ok {
		t.Fatal("peer of an unknown tunnel")
	}
}

// TestPeerMoveAllPairs: the move applies to every pair of the tunnel: a
// packet verified by the old pair (make-before-break) moves the peer, and
// the new pair, which sends, follows.
func TestPeerMoveAllPairs(t *testing.T) {
	a, b, moves := natGWs(t)
	installNAT(t, a, b, 0x3000, 0x4000) // rekey: the new pair sends on both sides
	// a falls back to the old pair (its new one is deleted): b verifies
	// a's packets with the old pair (SPI 0x2000) and sends with the new
	if err := a.dp.Delete(protoESP, 0x3000); err != nil {
		t.Fatal(err)
	}
	a.wire.SetNAT(insideA, pub2)
	if through(a, b, udpPacket(hostA, hostB, 10, 0)) == nil {
		t.Fatal("a -> b via the old pair")
	}
	if c, _ := b.dp.SACounters(protoESP, 0x2000); c.PacketsIn != 1 {
		t.Fatalf("old pair counters %+v", c)
	}
	expectMove(t, moves, move{"tunnel1", pub1, pub2})
	rec := &recorder{}
	b.wire.SetFilter(rec.filter)
	// b sends with its newest pair (outbound SPI 0x3000): to pub2, which a
	// can no longer verify (its pair 0x3000 is gone): count it as no-sa at a
	before := a.dp.Drops()["no-sa"]
	b.tun.Outbound <- udpPacket(hostB, hostA, 10, 0)
	deadline := time.Now().Add(time.Second)
	for a.dp.Drops()["no-sa"] == before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if a.dp.Drops()["no-sa"] != before+1 || a.wire.NATDropped() != 0 || binary.BigEndian.Uint32(rec.last()) != 0x3000 {
		t.Fatalf("b's new pair did not reach a through the new mapping: no-sa %d, NAT drops %d", a.dp.Drops()["no-sa"], a.wire.NATDropped())
	}
}

// l4Packet serialises an IPv4 TCP or UDP packet with gopacket (checksums
// computed by gopacket for src and dst).
func l4Packet(t *testing.T, proto uint8, src, dst netip.Addr, payload []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Id: 0x4242, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	var l4 gopacket.SerializableLayer
	if proto == natt.ProtoTCP {
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: 43210, DstPort: 80, Seq: 1234567, Ack: 7654321, ACK: true, PSH: true, Window: 501}
		tcp.SetNetworkLayerForChecksum(ip)
		l4 = tcp
	} else {
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: 5353, DstPort: 53}
		udp.SetNetworkLayerForChecksum(ip)
		l4 = udp
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ip, l4, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// gopacketValid decodes pkt with gopacket and verifies its TCP or UDP
// checksum against its own IPv4 header.
func gopacketValid(t *testing.T, pkt []byte) bool {
	t.Helper()
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		t.Fatalf("not IPv4: %x", pkt)
	}
	var err error
	var res gopacket.ChecksumVerificationResult
	switch l := p.TransportLayer().(type) {
	case *layers.TCP:
		l.SetNetworkLayerForChecksum(ip)
		err, res = l.VerifyChecksum()
	case *layers.UDP:
		l.SetNetworkLayerForChecksum(ip)
		err, res = l.VerifyChecksum()
	default:
		t.Fatalf("no TCP/UDP layer in %x", pkt)
	}
	return err == nil && res.Valid
}

// TestNATOAChecksum: transport mode in UDP with a behind a NAT. The
// receiver rebuilds the IP header from the datagram (the NATed source on
// b, a's inside address as destination on a), so the TCP/UDP checksum the
// sender computed does not fit; it is fixed with the NAT-OA addresses
// (incremental) or recomputed without them, and a UDP checksum of 0 stays
// 0 (RFC 3948 section 3.1.2).
func TestNATOAChecksum(t *testing.T) {
	bAddr := outsideB.Addr()
	for _, withOA := range []bool{true, false} {
		t.Run(map[bool]string{true: "nat-oa", false: "no-nat-oa"}[withOA], func(t *testing.T) {
			a, b := newGWs(t)
			a.wire.SetNAT(insideA, pub1)
			s := gcmSuite()
			inA, inB := s.child(0x1000), s.child(0x2000)
			pa := childsa.Pair{Tunnel: "tunnel1", Inbound: inA, Outbound: inB, Mode: childsa.ModeTransport, UDPEncap: true,
				Local: insideA, Remote: outsideB, LocalTS: netip.PrefixFrom(insideA.Addr(), 32), RemoteTS: netip.PrefixFrom(bAddr, 32)}
			pb := childsa.Pair{Tunnel: "tunnel1", Inbound: inB, Outbound: inA, Mode: childsa.ModeTransport, UDPEncap: true,
				Local: outsideB, Remote: pub1, LocalTS: netip.PrefixFrom(bAddr, 32), RemoteTS: netip.PrefixFrom(pub1.Addr(), 32)}
			if withOA {
				// each side: the peer's own address, and ours as the peer sees it
				pa.OriginalRemote, pa.OriginalLocal = bAddr, pub1.Addr()
				pb.OriginalRemote, pb.OriginalLocal = insideA.Addr(), bAddr
			}
			if err := a.dp.Install(pa); err != nil {
				t.Fatal(err)
			}
			if err := b.dp.Install(pb); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name      string
				from, to  *gw
				src, dst  netip.Addr // as the sender writes them
				rsrc, rdt netip.Addr // as the receiver rebuilds them
			}{
				{"a->b", a, b, insideA.Addr(), bAddr, pub1.Addr(), bAddr},
				{"b->a", b, a, bAddr, pub1.Addr(), bAddr, insideA.Addr()},
			} {
				for _, proto := range []uint8{natt.ProtoTCP, natt.ProtoUDP} {
					for _, n := range []int{0, 1, 333, 1200} {
						payload := make([]byte, n)
						for i := range payload {
							payload[i] = byte(i*31 + n)
						}
						pkt := l4Packet(t, proto, c.src, c.dst, payload)
						if natt.Verify(c.rsrc, c.rdt, proto, pkt[20:]) {
							t.Fatalf("%s: the sender's checksum fits the rebuilt header: the test proves nothing", c.name)
						}
						got := through(c.from, c.to, append([]byte(nil), pkt...))
						if got == nil {
							t.Fatalf("%s proto %d len %d: not delivered", c.name, proto, n)
						}
						if !gopacketValid(t, got) || !natt.Verify(c.rsrc, c.rdt, proto, got[20:]) {
							t.Fatalf("%s proto %d len %d: bad checksum after decapsulation: %x", c.name, proto, n, got)
						}
						if string(got[20+natt.ChecksumOffset(proto)+2:]) != string(pkt[20+natt.ChecksumOffset(proto)+2:]) {
							t.Fatalf("%s: segment changed beyond the checksum", c.name)
						}
					}
					// a UDP datagram without checksum stays without
					if proto == natt.ProtoUDP {
						pkt := l4Packet(t, proto, c.src, c.dst, []byte("no checksum"))
						pkt[26], pkt[27] = 0, 0
						got := through(c.from, c.to, append([]byte(nil), pkt...))
						if got == nil || got[26] != 0 || got[27] != 0 {
							t.Fatalf("%s: zero UDP checksum: %x", c.name, got)
						}
					}
				}
			}
		})
	}
}

// TestECNOverNATT: ESP in UDP through a real NAT-T socket (loopback): the
// outer TOS arrives with IP_RECVTOS, and RFC 6040 decapsulation applies it
// as for raw ESP: CE on the outer header marks an ECN-capable inner packet
// CE, and drops a Not-ECT one.
func TestECNOverNATT(t *testing.T) {
	a, b := newGWs(t)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skip("no loopback UDP:", err)
	}
	sender, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	from := sender.LocalAddr().(*net.UDPAddr).AddrPort()
	s := gcmSuite()
	inA, inB := s.child(0x1000), s.child(0x2000)
	if err := a.dp.Install(childsa.Pair{Tunnel: "tunnel1", Inbound: inA, Outbound: inB, Mode: childsa.ModeTunnel, UDPEncap: true,
		Local: from, Remote: local, LocalTS: netA, RemoteTS: netB}); err != nil {
		t.Fatal(err)
	}
	if err := b.dp.Install(childsa.Pair{Tunnel: "tunnel1", Inbound: inB, Outbound: inA, Mode: childsa.ModeTunnel, UDPEncap: true,
		Local: local, Remote: from, LocalTS: netB, RemoteTS: netA}); err != nil {
		t.Fatal(err)
	}
	esps := make(chan []byte, 1)
	a.wire.SetFilter(func(p []byte) [][]byte { esps <- append([]byte(nil), p...); return nil })
	done := make(chan struct{})
	go func() {
		b.dp.ServeNATT(conn, local, func(netip.AddrPort, []byte) {})
		close(done)
	}()
	defer func() { conn.Close(); <-done }()
	rc, err := sender.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name             string
		inner, outer     byte // TOS bytes (DSCP 0x28 = AF11 in the inner one)
		delivered        bool
		wantInnerECNBits byte
	}{
		{"ect0 under ce", 0x28 | 2, 3, true, 3},
		{"ect1 under ce", 0x28 | 1, 3, true, 3},
		{"ect0 under ect0", 0x28 | 2, 2, true, 2},
		{"ect0 under not-ect", 0x28 | 2, 0, true, 2},
		{"not-ect under not-ect", 0x28, 0, true, 0},
		{"not-ect under ce", 0x28, 3, false, 0},
	} {
		a.tun.Outbound <- udpPacket(hostA, hostB, 100, c.inner)
		var e []byte
		select {
		case e = <-esps:
		case <-time.After(time.Second):
			t.Fatalf("%s: nothing sent", c.name)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS, int(c.outer)) }); err != nil || serr != nil {
			t.Fatalf("IP_TOS: %v %v", err, serr)
		}
		if _, err := sender.WriteToUDPAddrPort(e, local); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-b.tun.Inbound:
			if !c.delivered {
				t.Fatalf("%s: delivered %x", c.name, got)
			}
			if got[1] != c.inner&^3|c.wantInnerECNBits {
				t.Fatalf("%s: inner TOS %02x, want %02x", c.name, got[1], c.inner&^3|c.wantInnerECNBits)
			}
			if ipChecksum(got[:20]) != 0 {
				t.Fatalf("%s: inner header checksum wrong", c.name)
			}
		case <-time.After(300 * time.Millisecond):
			if c.delivered {
				t.Fatalf("%s: not delivered", c.name)
			}
		}
	}
	if c, _ := b.dp.SACounters(protoESP, 0x2000); c.Drops["malformed"] != 1 || c.PacketsIn != 6 {
		t.Fatalf("counters %+v", c)
	}
}

// TestParseCmsgs: the UDP_GRO segment size and the IP_TOS byte are found
// in a control message buffer holding both (in either order).
func TestParseCmsgs(t *testing.T) {
	put := func(b []byte, level, typ int32, data []byte) []byte {
		h := make([]byte, unix.CmsgSpace(len(data)))
		binary.NativeEndian.PutUint64(h[0:8], uint64(unix.CmsgLen(len(data))))
		binary.NativeEndian.PutUint32(h[8:12], uint32(level))
		binary.NativeEndian.PutUint32(h[12:16], uint32(typ))
		copy(h[unix.SizeofCmsghdr:], data)
		return append(b, h...)
	}
	seg := make([]byte, 4)
	binary.NativeEndian.PutUint32(seg, 1372)
	gro := func(b []byte) []byte { return put(b, unix.IPPROTO_UDP, unix.UDP_GRO, seg) }
	tos := func(b []byte) []byte { return put(b, unix.IPPROTO_IP, unix.IP_TOS, []byte{0xb9}) }
	for _, oob := range [][]byte{tos(gro(nil)), gro(tos(nil))} {
		if s, x := parseCmsgs(oob); s != 1372 || x != 0xb9 {
			t.Fatalf("parsed seg %d tos %02x", s, x)
		}
	}
	if s, x := parseCmsgs(nil); s != 0 || x != 0 {
		t.Fatal("empty")
	}
	if s, x := parseCmsgs(tos(nil)[:10]); s != 0 || x != 0 {
		t.Fatal("truncated")
	}
}

// TestPeerMoveOnce: many authentic packets from the new mapping, verified
// concurrently (two NAT-T sockets, several readers), move the peer once
// and call OnPeerMoved once.
func TestPeerMoveOnce(t *testing.T) {
	a, b, moves := natGWs(t)
	var mu sync.Mutex
	var pkts [][]byte
	a.wire.SetFilter(func(p []byte) [][]byte {
		mu.Lock()
		pkts = append(pkts, append([]byte(nil), p...))
		mu.Unlock()
		return nil
	})
	for i := 0; i < 64; i++ {
		a.tun.Outbound <- udpPacket(hostA, hostB, 10, 0)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		n := len(pkts)
		mu.Unlock()
		if n == 64 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d packets sent", n)
		}
		time.Sleep(time.Millisecond)
	}
	go func() { // drain b's device
		for range 64 {
			<-b.tun.Inbound
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < 64; i += 8 {
				b.dp.ReceiveUDP(outsideB, pub2, pkts[i])
			}
		}(g)
	}
	wg.Wait()
	expectMove(t, moves, move{"tunnel1", pub1, pub2})
	expectNoMove(t, moves)
	expectPeer(t, b, pub2)
}
