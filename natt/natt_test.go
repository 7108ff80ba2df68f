package natt

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestRFC1071Example: the numerical example of RFC 1071 section 3 (bytes
// 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2, so the checksum is 0x220d).
func TestRFC1071Example(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if s := Sum(b); s != 0xddf2 {
		t.Fatalf("sum %04x, want ddf2", s)
	}
	if c := ^Sum(b); c != 0x220d {
		t.Fatalf("checksum %04x, want 220d", c)
	}
	// odd length: the last byte is padded with a zero byte
	if s := Sum(b[:7]); s != 0xddf2-0xf7 {
		t.Fatalf("odd sum %04x, want %04x", s, 0xddf2-0xf7)
	}
}

// TestRFC1624Example: the example of RFC 1624 section 4. The other header
// words sum to 0xcd7a, a field changes from 0x5555 to 0x3285: HC = 0xdd2f,
// recomputing gives 0x0000, and equation 3 must give the same (RFC 1141's
// equation 2 gave 0xffff).
func TestRFC1624Example(t *testing.T) {
	hc := ^Sum([]byte{0xcd, 0x7a, 0x55, 0x55})
	if hc != 0xdd2f {
		t.Fatalf("HC %04x, want dd2f", hc)
	}
	scratch := ^Sum([]byte{0xcd, 0x7a, 0x32, 0x85})
	if scratch != 0 {
		t.Fatalf("recomputed %04x, want 0000", scratch)
	}
	if got := UpdateWord(hc, 0x5555, 0x3285); got != 0 {
		t.Fatalf("eqn 3 gave %04x, want 0000", got)
	}
}

type capturedUDP struct {
	src, dst netip.Addr
	seg      []byte // UDP header and payload
}

func loadCaptured(t *testing.T, name string) capturedUDP {
	t.Helper()
	s, err := os.ReadFile(filepath.Join("testdata", "capture", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := hex.DecodeString(strings.TrimSpace(string(s)))
	if err != nil {
		t.Fatal(err)
	}
	ihl := int(pkt[0]&0x0f) * 4
	if pkt[0]>>4 != 4 || pkt[9] != ProtoUDP || len(pkt) != int(binary.BigEndian.Uint16(pkt[2:4])) {
		t.Fatalf("%s: not a whole IPv4/UDP packet", name)
	}
	return capturedUDP{netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20])), pkt[ihl:]}
}

// TestLinuxNATCapture uses a real capture: the lab's strongSwan IKEv1 NAT-T
// session (/work/shared/lab/captures/ikev1-natt-{private,public}.pcap),
// the same datagrams seen inside (10.99.0.2) and outside (198.51.100.2) a
// Linux NAT. testdata/capture holds frames 1 and 2 (IKE, port 500) and 10
// and 11 (ESP in UDP, port 4500) of both files, Ethernet header removed.
//
// The captures were taken on veth devices, where Linux leaves UDP checksums
// offloaded (CHECKSUM_PARTIAL): the field holds the folded pseudo-header
// sum, not complemented, and the NAT (conntrack) updated that value when it
// rewrote the address. So this checks two things against the kernel:
// PseudoHeaderSum equals what Linux put into the field, and Update applied
// to the field's complement reproduces the NAT's rewrite.
func TestLinuxNATCapture(t *testing.T) {
	for _, n := range []string{"01", "02", "10", "11"} {
		priv := loadCaptured(t, "private-frame"+n)
		pub := loadCaptured(t, "public-frame"+n)
		if !bytes.Equal(priv.seg[:6], pub.seg[:6]) || !bytes.Equal(priv.seg[8:], pub.seg[8:]) {
			t.Fatalf("frame %s: the NAT changed more than the checksum", n)
		}
		for _, c := range []capturedUDP{priv, pub} {
			want := binary.BigEndian.Uint16(c.seg[6:8])
			got, ok := PseudoHeaderSum(c.src, c.dst, ProtoUDP, len(c.seg))
			if !ok || got != want {
				t.Errorf("frame %s %s->%s: pseudo-header sum %04x, Linux wrote %04x", n, c.src, c.dst, got, want)
			}
		}
		field := binary.BigEndian.Uint16(priv.seg[6:8])
		nat := ^Update(^field, priv.src, priv.dst, pub.src, pub.dst)
		if want := binary.BigEndian.Uint16(pub.seg[6:8]); nat != want {
			t.Errorf("frame %s: NAT rewrite %04x, Linux wrote %04x", n, nat, want)
		}
	}
}

// buildSegment serialises a TCP or UDP packet from src to dst with
// gopacket (an independent checksum implementation) and returns its
// transport segment. The header fields (ports, sequence numbers, options)
// are drawn from hdrSeed: the same seed gives the same header.
func buildSegment(t testing.TB, hdrSeed uint64, proto uint8, src, dst netip.Addr, payload []byte) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(hdrSeed, 0))
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	var l4 gopacket.SerializableLayer
	switch proto {
	case ProtoTCP:
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: layers.TCPPort(r.IntN(65536)), DstPort: layers.TCPPort(r.IntN(65536)),
			Seq: r.Uint32(), Ack: r.Uint32(), ACK: true, PSH: r.IntN(2) == 0, Window: uint16(r.IntN(65536))}
		if r.IntN(2) == 0 {
			tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{1, 2, 3, 4, 5, 6, 7, 8}}}
		}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		l4 = tcp
	case ProtoUDP:
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: layers.UDPPort(r.IntN(65536)), DstPort: layers.UDPPort(r.IntN(65536))}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		l4 = udp
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ip, l4, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()[20:]...)
}

func randAddr(r *rand.Rand) netip.Addr {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], r.Uint32())
	return netip.AddrFrom4(a)
}

// TestAgainstGopacket: for random TCP and UDP packets serialised by
// gopacket, Checksum gives gopacket's checksum, Verify accepts them, and
// FixTransport (with NAT-OA: incremental; without: recomputed) turns the
// segment built for the sender's addresses into exactly the segment
// gopacket builds for the receiver's.
func TestAgainstGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		proto := uint8(ProtoTCP)
		if i%2 == 1 {
			proto = ProtoUDP
		}
		payload := make([]byte, r.IntN(1500))
		for j := range payload {
			payload[j] = byte(r.Uint32())
		}
		origSrc, origDst := randAddr(r), randAddr(r) // the sender's pseudo-header
		src, dst := randAddr(r), randAddr(r)         // the rebuilt header
		switch i % 5 {
		case 0:
			src = origSrc // only the destination changed (we are behind NAT)
		case 1:
			dst = origDst // only the source changed (the peer is behind NAT)
		}
		// what the sender built, and what a sender with the rebuilt
		// header's addresses would have built (both by gopacket)
		seg := buildSegment(t, uint64(i), proto, origSrc, origDst, payload)
		want := buildSegment(t, uint64(i), proto, src, dst, payload)
		if !Verify(src, dst, proto, want) {
			t.Fatalf("%d: Verify rejects %x", i, want)
		}

		off := ChecksumOffset(proto)
		if got, ok := Checksum(origSrc, origDst, proto, seg); !ok || got != binary.BigEndian.Uint16(seg[off:]) {
			t.Fatalf("%d: Checksum %04x, gopacket %04x", i, got, binary.BigEndian.Uint16(seg[off:]))
		}
		if !Verify(origSrc, origDst, proto, seg) {
			t.Fatalf("%d: Verify rejects gopacket's segment", i)
		}
		inc := append([]byte(nil), seg...)
		if f := FixTransport(inc, proto, src, dst, origSrc, origDst); f != FixIncremental {
			t.Fatalf("%d: fix %s", i, f)
		}
		if !bytes.Equal(inc, want) {
			t.Fatalf("%d: incremental fix-up %04x, want %04x", i, binary.BigEndian.Uint16(inc[off:]), binary.BigEndian.Uint16(want[off:]))
		}
		full := append([]byte(nil), seg...)
		if f := FixTransport(full, proto, src, dst, netip.Addr{}, netip.Addr{}); f != FixRecomputed {
			t.Fatalf("%d: fix %s", i, f)
		}
		if !bytes.Equal(full, want) {
			t.Fatalf("%d: recomputed %04x, want %04x", i, binary.BigEndian.Uint16(full[off:]), binary.BigEndian.Uint16(want[off:]))
		}
		// gopacket agrees that the result is right for the new addresses
		ip := &layers.IPv4{SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		var verr error
		var res gopacket.ChecksumVerificationResult
		if proto == ProtoTCP {
			var l layers.TCP
			if err := l.DecodeFromBytes(inc, gopacket.NilDecodeFeedback); err != nil {
				t.Fatal(err)
			}
			l.SetNetworkLayerForChecksum(ip)
			verr, res = l.VerifyChecksum()
		} else {
			var l layers.UDP
			if err := l.DecodeFromBytes(inc, gopacket.NilDecodeFeedback); err != nil {
				t.Fatal(err)
			}
			l.SetNetworkLayerForChecksum(ip)
			verr, res = l.VerifyChecksum()
		}
		if verr != nil || !res.Valid {
			t.Fatalf("%d: gopacket rejects the fixed segment: %v %+v", i, verr, res)
		}
	}
}

func TestFixTransportCases(t *testing.T) {
	a, b := netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("203.0.113.10")
	n := netip.MustParseAddr("198.51.100.2")
	udp := buildSegment(t, 3, ProtoUDP, a, b, []byte("hello"))

	// UDP without checksum stays without, with or without NAT-OA
	z := append([]byte(nil), udp...)
	z[6], z[7] = 0, 0
	for _, oa := range []netip.Addr{a, {}} {
		y := append([]byte(nil), z...)
		if f := FixTransport(y, ProtoUDP, n, b, oa, b); f != FixZeroUDP || !bytes.Equal(y, z) {
			t.Fatalf("zero UDP: %s %x", f, y)
		}
	}
	// nothing changed: untouched (RFC 1624 erratum 4782)
	y := append([]byte(nil), udp...)
	if f := FixTransport(y, ProtoUDP, a, b, a, b); f != FixNone || !bytes.Equal(y, udp) {
		t.Fatalf("unchanged addresses: %s", f)
	}
	// not TCP/UDP, too short, IPv6: untouched
	for _, c := range []struct {
		seg   []byte
		proto uint8
		src   netip.Addr
	}{
		{append([]byte(nil), udp...), 1, n},
		{udp[:7], ProtoUDP, n},
		{make([]byte, 17), ProtoTCP, n},
		{append([]byte(nil), udp...), ProtoUDP, netip.MustParseAddr("2001:db8::1")},
	} {
		before := append([]byte(nil), c.seg...)
		if f := FixTransport(c.seg, c.proto, c.src, b, a, b); f != FixNone || !bytes.Equal(c.seg, before) {
			t.Fatalf("proto %d len %d: %s", c.proto, len(c.seg), f)
		}
	}
	// a UDP datagram whose checksum comes out as 0 is sent as 0xffff
	// (RFC 768): search the new source address that makes the sum 0xffff
	// (gopacket serialises such a datagram with 0xffff too).
	found := false
	for w := 0; w < 0x10000 && !found; w++ {
		src := netip.AddrFrom4([4]byte{10, 99, byte(w >> 8), byte(w)})
		want := buildSegment(t, 3, ProtoUDP, src, b, []byte("hello"))
		if binary.BigEndian.Uint16(want[6:]) != 0xffff {
			continue
		}
		found = true
		x := append([]byte(nil), udp...)
		if f := FixTransport(x, ProtoUDP, src, b, a, b); f != FixIncremental || !bytes.Equal(x, want) {
			t.Fatalf("checksum 0 case: %s %04x", f, binary.BigEndian.Uint16(x[6:]))
		}
		y := append([]byte(nil), udp...)
		if f := FixTransport(y, ProtoUDP, src, b, netip.Addr{}, netip.Addr{}); f != FixRecomputed || !bytes.Equal(y, want) {
			t.Fatalf("checksum 0 case, recomputed: %s %04x", f, binary.BigEndian.Uint16(y[6:]))
		}
	}
	if !found {
		t.Fatal("no address gives a zero UDP checksum")
	}
}

// TestNoAllocs: the fix-up allocates nothing.
func TestNoAllocs(t *testing.T) {
	a, b, n := netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("198.51.100.2")
	seg := buildSegment(t, 5, ProtoTCP, a, b, make([]byte, 1400))
	for _, oa := range []netip.Addr{a, {}} {
		if x := testing.AllocsPerRun(100, func() { FixTransport(seg, ProtoTCP, n, b, oa, b) }); x != 0 {
			t.Errorf("NAT-OA %v: %v allocations", oa, x)
		}
	}
}

func BenchmarkFixTransport(b *testing.B) {
	a, d, n := netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("198.51.100.2")
	seg := buildSegment(b, 7, ProtoTCP, a, d, make([]byte, 1400))
	for _, c := range []struct {
		name string
		oa   netip.Addr
	}{{"incremental", a}, {"recompute", netip.Addr{}}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(seg)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				FixTransport(seg, ProtoTCP, n, d, c.oa, d)
			}
		})
	}
}
