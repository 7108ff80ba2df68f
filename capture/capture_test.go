package capture

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

type sent struct {
	src, dst netip.AddrPort
	payload  []byte
}

func readBack(t *testing.T, path string) ([]gopacket.Packet, []gopacket.CaptureInfo) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeRaw {
		t.Fatalf("link type %v, want %v", r.LinkType(), layers.LinkTypeRaw)
	}
	if r.Snaplen() != Snaplen {
		t.Fatalf("snaplen %d", r.Snaplen())
	}
	var pkts []gopacket.Packet
	var cis []gopacket.CaptureInfo
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkts = append(pkts, gopacket.NewPacket(data, r.LinkType(), gopacket.Default))
		cis = append(cis, ci)
	}
	return pkts, cis
}

// checkUDP decodes p as IP+UDP and compares it with s, verifying lengths and
// checksums by re-serializing with computed checksums.
func checkUDP(t *testing.T, i int, p gopacket.Packet, s sent) {
	t.Helper()
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("packet %d: decode error %v", i, el.Error())
	}
	var src, dst netip.Addr
	var ipLayer gopacket.SerializableLayer
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
		if int(ip.Length) != 20+8+len(s.payload) || ip.IHL != 5 || ip.TTL != 64 || ip.Protocol != layers.IPProtocolUDP {
			t.Fatalf("packet %d: IPv4 header %+v", i, ip)
		}
		// A correct header checksum makes the one's complement sum 0xffff.
		if sum := onesSum(ip.Contents); sum != 0xffff {
			t.Fatalf("packet %d: IPv4 header checksum wrong (sum %#x)", i, sum)
		}
		ipLayer = ip
	case *layers.IPv6:
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
		if int(ip.Length) != 8+len(s.payload) || ip.NextHeader != layers.IPProtocolUDP {
			t.Fatalf("packet %d: IPv6 header %+v", i, ip)
		}
		ipLayer = ip
	default:
		t.Fatalf("packet %d: network layer %T", i, p.NetworkLayer())
	}
	udp, ok := p.TransportLayer().(*layers.UDP)
	if !ok {
		t.Fatalf("packet %d: transport layer %T", i, p.TransportLayer())
	}
	if src != s.src.Addr().Unmap() || dst != s.dst.Addr().Unmap() ||
		uint16(udp.SrcPort) != s.src.Port() || uint16(udp.DstPort) != s.dst.Port() {
		t.Fatalf("packet %d: %s:%d -> %s:%d, want %s -> %s", i, src, udp.SrcPort, dst, udp.DstPort, s.src, s.dst)
	}
	if int(udp.Length) != 8+len(s.payload) {
		t.Fatalf("packet %d: UDP length %d, want %d", i, udp.Length, 8+len(s.payload))
	}
	if !bytes.Equal(udp.Payload, s.payload) {
		t.Fatalf("packet %d: payload %x, want %x", i, udp.Payload, s.payload)
	}
	// Recompute the UDP checksum and compare.
	got := udp.Checksum
	again := *udp
	if err := again.SetNetworkLayerForChecksum(ipLayer.(gopacket.NetworkLayer)); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, &again, gopacket.Payload(s.payload)); err != nil {
		t.Fatal(err)
	}
	if got == 0 || got != again.Checksum {
		t.Fatalf("packet %d: UDP checksum %#04x, want %#04x", i, got, again.Checksum)
	}
}

func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func TestWriteAndReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.pcap")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort("198.51.100.2:500")
	b := netip.MustParseAddrPort("203.0.113.10:500")
	an := netip.MustParseAddrPort("198.51.100.2:4500")
	bn := netip.MustParseAddrPort("203.0.113.10:4500")
	ike := bytes.Repeat([]byte{0xab}, 28)
	want := []sent{
		{a, b, ike},
		{b, a, []byte{1, 2, 3}},
		{an, bn, append([]byte{0, 0, 0, 0}, ike...)}, // non-ESP marker
		{bn, an, []byte{0xff}},                       // NAT keepalive
		{a, b, nil},                                  // empty datagram
		{netip.MustParseAddrPort("[::ffff:198.51.100.2]:500"), b, []byte("mapped")},
		{netip.MustParseAddrPort("[2001:db8::1]:500"), netip.MustParseAddrPort("[2001:db8::2]:500"), []byte("six")},
		{a, b, bytes.Repeat([]byte{7}, 1500)},
	}
	before := time.Now()
	for _, s := range want {
		w.Packet(s.src, s.dst, s.payload)
	}
	if w.Count() != len(want) {
		t.Fatalf("Count %d, want %d", w.Count(), len(want))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Packet(a, b, []byte("after close")) // ignored
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	pkts, cis := readBack(t, path)
	if len(pkts) != len(want) {
		t.Fatalf("read %d packets, want %d", len(pkts), len(want))
	}
	var ids []uint16
	for i, p := range pkts {
		checkUDP(t, i, p, want[i])
		if cis[i].Timestamp.Before(before.Truncate(time.Microsecond)) || cis[i].Timestamp.After(time.Now()) {
			t.Fatalf("packet %d: timestamp %v not now", i, cis[i].Timestamp)
		}
		if ip, ok := p.NetworkLayer().(*layers.IPv4); ok {
			ids = append(ids, ip.Id)
		}
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			t.Fatalf("IPv4 identification repeats: %v", ids)
		}
	}
}

func TestIPPacketAsIs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "esp.pcap")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// An ESP packet built with gopacket: IPv4 + ESP header + opaque data.
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolESP,
		SrcIP: []byte{198, 51, 100, 2}, DstIP: []byte{203, 0, 113, 10}}
	esp := append([]byte{0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 1}, bytes.Repeat([]byte{0x5a}, 48)...)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, gopacket.Payload(esp)); err != nil {
		t.Fatal(err)
	}
	raw := append([]byte(nil), buf.Bytes()...)
	w.IP(raw)
	w.Packet(netip.MustParseAddrPort("198.51.100.2:4500"), netip.MustParseAddrPort("203.0.113.10:4500"), []byte{0, 0, 0, 0, 1})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pkts, _ := readBack(t, path)
	if len(pkts) != 2 {
		t.Fatalf("read %d packets, want 2", len(pkts))
	}
	if !bytes.Equal(pkts[0].Data(), raw) {
		t.Fatal("IP packet not written as is")
	}
	l, ok := pkts[0].Layer(layers.LayerTypeIPSecESP).(*layers.IPSecESP)
	if !ok || l.SPI != 0xc0ffee01 || l.Seq != 1 {
		t.Fatalf("ESP layer not decoded: %v", pkts[0])
	}
}

func TestErrorsAreKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.pcap")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	good := []sent{{netip.MustParseAddrPort("192.0.2.1:500"), netip.MustParseAddrPort("192.0.2.2:500"), []byte("ok")}}
	w.Packet(netip.MustParseAddrPort("192.0.2.1:500"), netip.MustParseAddrPort("[2001:db8::2]:500"), []byte("secret-payload"))
	w.IP([]byte{0x12, 0x34})
	w.Packet(good[0].src, good[0].dst, good[0].payload) // still written
	if w.Err() == nil {
		t.Fatal("no error kept")
	}
	err = w.Close()
	if err == nil || !strings.Contains(err.Error(), "not both IPv4 or both IPv6") {
		t.Fatalf("Close = %v, want the first error", err)
	}
	if strings.Contains(err.Error(), "secret-payload") {
		t.Fatal("error shows the payload")
	}
	pkts, _ := readBack(t, path)
	if len(pkts) != 1 {
		t.Fatalf("read %d packets, want 1", len(pkts))
	}
	checkUDP(t, 0, pkts[0], good[0])

	if _, err := Create(filepath.Join(t.TempDir(), "no", "such", "dir.pcap")); err == nil {
		t.Fatal("Create in a missing directory succeeded")
	}
}

func TestCreateTightensExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.pcap")
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 || fi.Size() != 24 {
		t.Fatalf("mode %v size %d, want 0600 and a bare 24-byte header", fi.Mode().Perm(), fi.Size())
	}
}

func TestConcurrentPackets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conc.pcap")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(g + 1)}), 500)
			dst := netip.MustParseAddrPort("10.0.1.1:500")
			for i := 0; i < each; i++ {
				w.Packet(src, dst, []byte{byte(g), byte(i)})
			}
		}(g)
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pkts, _ := readBack(t, path)
	if len(pkts) != goroutines*each {
		t.Fatalf("read %d packets, want %d", len(pkts), goroutines*each)
	}
	next := map[byte]byte{}
	for i, p := range pkts {
		if p.ErrorLayer() != nil {
			t.Fatalf("packet %d: %v", i, p.ErrorLayer().Error())
		}
		pl := p.ApplicationLayer().Payload()
		if len(pl) != 2 || pl[1] != next[pl[0]] {
			t.Fatalf("packet %d: payload %x out of order", i, pl)
		}
		next[pl[0]]++
	}
}
