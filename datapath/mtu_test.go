package datapath

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/esp"
	"github.com/vpnlab/vpnlab/natt"
)

// tcpSegment builds an IPv4 TCP segment with the given flags and options
// (padded to 4 bytes with end-of-options) and a valid checksum.
func tcpSegment(src, dst netip.Addr, flags byte, opts []byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	p := make([]byte, 40+len(opts))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[6] = 0x40
	p[8], p[9] = 64, natt.ProtoTCP
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], esp.Checksum(p[:20]))
	tcp := p[20:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 443)
	binary.BigEndian.PutUint32(tcp[4:], 0x01020304)
	tcp[12] = byte((20+len(opts))/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	copy(tcp[20:], opts)
	c, _ := natt.Checksum(src, dst, natt.ProtoTCP, tcp)
	binary.BigEndian.PutUint16(tcp[16:], c)
	return p
}

// mssOf returns the MSS option's value (0: none).
func mssOf(pkt []byte) int {
	tcp := pkt[20:]
	opts := tcp[20 : int(tcp[12]>>4)*4]
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0:
			return 0
		case 1:
			i++
			continue
		case 2:
			return int(binary.BigEndian.Uint16(opts[i+2:]))
		}
		i += int(opts[i+1])
	}
	return 0
}

const (
	synFlag = 0x02
	ackFlag = 0x10
)

func TestMSSClamp(t *testing.T) {
	a, b := newGWs(t)
	install(t, a, b, gcmSuite(), childsa.ModeTunnel, true, 0x1000, 0x2000)
	if err := a.dp.SetTunnelOptions("tunnel1", TunnelOptions{MSSClamp: AWSMSSClamp}); err != nil {
		t.Fatal(err)
	}
	mss := func(v uint16) []byte { return []byte{2, 4, byte(v >> 8), byte(v)} }
	cases := []struct {
		name  string
		flags byte
		opts  []byte
		want  int
	}{
		{"SYN, MSS first (even offset)", synFlag, mss(1460), AWSMSSClamp},
		{"SYN, NOP then MSS (odd offset)", synFlag, append([]byte{1}, mss(1460)...), AWSMSSClamp},
		{"SYN, window scale, NOP, MSS last (odd offset, before the end)", synFlag, append([]byte{3, 3, 7, 1}, append([]byte{1}, mss(8960)...)...), AWSMSSClamp},
		{"SYN-ACK", synFlag | ackFlag, append([]byte{1, 1}, mss(1460)...), AWSMSSClamp},
		{"SYN with a smaller MSS", synFlag, mss(1200), 1200},
		{"ACK carrying an MSS option", ackFlag, mss(1460), 1460},
	}
	clamped := 0
	for _, c := range cases {
		pkt := tcpSegment(hostA, hostB, c.flags, c.opts)
		got := through(a, b, append([]byte(nil), pkt...))
		if got == nil {
			t.Fatalf("%s: not delivered", c.name)
		}
		if m := mssOf(got); m != c.want {
			t.Errorf("%s: MSS %d, want %d", c.name, m, c.want)
		}
		if !natt.Verify(hostA, hostB, natt.ProtoTCP, got[20:]) {
			t.Errorf("%s: TCP checksum wrong after clamping", c.name)
		}
		if c.want != mssOf(pkt) {
			clamped++
		} else if !bytes.Equal(got, pkt) {
			t.Errorf("%s: changed although nothing was to clamp", c.name)
		}
	}
	ca, _ := a.dp.SACounters(protoESP, 0x1000)
	if ca.MSSClamped != uint64(clamped) {
		t.Errorf("mss_clamped %d, want %d", ca.MSSClamped, clamped)
	}
	// The other direction has no clamp configured.
	got := through(b, a, tcpSegment(hostB, hostA, synFlag, mss(1460)))
	if mssOf(got) != 1460 {
		t.Errorf("b has no clamp but the MSS became %d", mssOf(got))
	}
	if err := a.dp.SetTunnelOptions("tunnel1", TunnelOptions{MSSClamp: 20}); err == nil {
		t.Error("an MSS clamp of 20 was accepted")
	}
}

// wireSizes records the outer size of every packet a's wire sends.
type wireSizes struct {
	mu    sync.Mutex
	sizes []int
}

func recordSizes(w *MemoryWire, encap bool) *wireSizes {
	r := &wireSizes{}
	w.SetFilter(func(p []byte) [][]byte {
		n := len(p)
		if encap {
			n += 28
		}
		r.mu.Lock()
		r.sizes = append(r.sizes, n)
		r.mu.Unlock()
		return [][]byte{p}
	})
	return r
}

func (r *wireSizes) take() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sizes
	r.sizes = nil
	return s
}

func TestTooBigForTheTunnel(t *testing.T) {
	const mtu = 1300
	for _, s := range []suite{gcmSuite(), cbcSuite()} {
		for _, encap := range []bool{true, false} {
			name := s.name + "/raw"
			if encap {
				name = s.name + "/udp"
			}
			t.Run(name, func(t *testing.T) {
				a, b := newGWs(t)
				install(t, a, b, s, childsa.ModeTunnel, encap, 0x1000, 0x2000)
				if err := a.dp.SetTunnelOptions("tunnel1", TunnelOptions{OutsideMTU: mtu}); err != nil {
					t.Fatal(err)
				}
				sizes := recordSizes(a.wire, encap)
				p := a.dp.table.Load().outbound["tunnel1"]
				limit := p.innerLimit(mtu)
				if p.out.ESPLen(limit)+p.outerOverhead() > mtu || p.out.ESPLen(limit+1)+p.outerOverhead() <= mtu {
					t.Fatalf("inner limit %d is not the largest that fits %d", limit, mtu)
				}
				// The largest packet that fits passes, DF or not.
				pkt := udpPacket(hostA, hostB, limit-28, 0)
				if got := through(a, b, append([]byte(nil), pkt...)); !bytes.Equal(got, pkt) {
					t.Fatalf("a %d-byte packet (the limit) did not pass unchanged", limit)
				}
				if sz := sizes.take(); len(sz) != 1 || sz[0] > mtu {
					t.Fatalf("outer sizes %v for the limit", sz)
				}

				// DF and one byte more: ICMP fragmentation-needed back, nothing sent.
				big := udpPacket(hostA, hostB, limit-28+1, 0)
				a.tun.Outbound <- append([]byte(nil), big...)
				var icmp []byte
				select {
				case icmp = <-a.tun.Inbound:
				case <-time.After(time.Second):
					t.Fatal("no ICMP back to the inside sender")
				}
				if len(icmp) != 28+28 || icmp[9] != 1 || icmp[20] != 3 || icmp[21] != 4 ||
					int(binary.BigEndian.Uint16(icmp[26:28])) != limit || natt.Sum(icmp[20:]) != 0xffff || natt.Sum(icmp[:20]) != 0xffff ||
					!bytes.Equal(icmp[28:56], big[:28]) || !bytes.Equal(icmp[16:20], big[12:16]) {
					t.Fatalf("ICMP % x", icmp)
				}
				if sz := sizes.take(); len(sz) != 0 {
					t.Fatalf("a packet with DF too big for the tunnel was sent: %v", sz)
				}

				// No DF: fragmented before encryption, reassembled at the other end.
				nodf := udpPacket(hostA, hostB, 1372, 0)
				nodf[6] = 0
				binary.BigEndian.PutUint16(nodf[10:], 0)
				binary.BigEndian.PutUint16(nodf[10:], esp.Checksum(nodf[:20]))
				a.tun.Outbound <- append([]byte(nil), nodf...)
				var frags [][]byte
				for len(frags) < 2 {
					select {
					case f := <-b.tun.Inbound:
						frags = append(frags, f)
					case <-time.After(time.Second):
						t.Fatalf("got %d fragments", len(frags))
					}
				}
				whole := make([]byte, len(nodf)-20)
				covered := 0
				for i, f := range frags {
					fo := binary.BigEndian.Uint16(f[6:8])
					off, more := int(fo&0x1fff)*8, fo&0x2000 != 0
					if more != (i == 0) || natt.Sum(f[:20]) != 0xffff || len(f) > limit {
						t.Fatalf("fragment %d: flags %04x, %d bytes (limit %d)", i, fo, len(f), limit)
					}
					covered += copy(whole[off:], f[20:])
				}
				if covered != len(whole) || !bytes.Equal(whole, nodf[20:]) {
					t.Fatal("the fragments do not reassemble to the packet")
				}
				for _, sz := range sizes.take() {
					if sz > mtu {
						t.Fatalf("outer packet of %d bytes > %d", sz, mtu)
					}
				}
				c, _ := a.dp.SACounters(protoESP, 0x1000)
				if c.ICMPFragNeededSent != 1 || c.FragBeforeEncrypt != 1 {
					t.Fatalf("icmp_frag_needed_sent %d, frag_before_encrypt %d", c.ICMPFragNeededSent, c.FragBeforeEncrypt)
				}
			})
		}
	}
}

// TestSizesAllocs: clamping and fragmenting allocate nothing per packet.
func TestSizesAllocs(t *testing.T) {
	for _, encap := range []bool{true, false} {
		a, _, dev := benchPair(t, gcmSuite(), encap)
		if err := a.SetTunnelOptions("t", TunnelOptions{MSSClamp: 1379, OutsideMTU: 1000}); err != nil {
			t.Fatal(err)
		}
		w := newWorker()
		batch := newUDPBatch()
		syn := tcpSegment(hostA, hostB, synFlag, []byte{2, 4, 0x05, 0xb4})
		big := udpPacket(hostA, hostB, 1372, 0)
		big[6] = 0
		binary.BigEndian.PutUint16(big[10:], 0)
		binary.BigEndian.PutUint16(big[10:], esp.Checksum(big[:20]))
		pktSyn := make([]byte, len(syn))
		pktBig := make([]byte, len(big))
		n := testing.AllocsPerRun(200, func() {
			copy(pktSyn, syn)
			copy(pktBig, big)
			a.sendInside(w, batch, pktSyn)
			a.sendInside(w, batch, pktBig)
			a.flushUDP(batch)
		})
		if n != 0 {
			t.Errorf("encap=%v: %v allocations per run", encap, n)
		}
		c, _ := a.SACounters(protoESP, 0x1000)
		if dev.writes == 0 || c.MSSClamped < 200 || c.FragBeforeEncrypt < 200 {
			t.Fatalf("encap=%v: writes %d, clamped %d, fragmented %d", encap, dev.writes, c.MSSClamped, c.FragBeforeEncrypt)
		}
	}
}
