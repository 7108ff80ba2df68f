package datapath

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/vpnlab/vpnlab/childsa"
)

// nullDevice is a tun.Device that discards writes and never reads.
type nullDevice struct {
	writes int
	last   []byte
	closed chan struct{}
}

func newNullDevice() *nullDevice { return &nullDevice{closed: make(chan struct{})} }

func (n *nullDevice) File() *os.File { return nil }
func (n *nullDevice) Read([][]byte, []int, int) (int, error) {
	<-n.closed
	return 0, os.ErrClosed
}
func (n *nullDevice) Write(bufs [][]byte, offset int) (int, error) {
	n.writes += len(bufs)
	n.last = bufs[len(bufs)-1][offset:]
	return len(bufs), nil
}
func (n *nullDevice) MTU() (int, error)        { return 1400, nil }
func (n *nullDevice) Name() (string, error)    { return "null0", nil }
func (n *nullDevice) Events() <-chan tun.Event { return nil }
func (n *nullDevice) Close() error             { close(n.closed); return nil }
func (n *nullDevice) BatchSize() int           { return 1 }

// loopWire hands each sent ESP-in-UDP or IP packet straight to a receiver
// function, without copying.
type loopWire struct {
	udp func(local, remote netip.AddrPort, b []byte)
	ip  func(b []byte)
}

func (l *loopWire) Attach(Receiver)                      {}
func (l *loopWire) AddNATT(netip.AddrPort, *net.UDPConn) {}
func (l *loopWire) SendUDP(local, remote netip.AddrPort, b []byte) error {
	l.udp(local, remote, b)
	return nil
}
func (l *loopWire) SendUDPSegments(local, remote netip.AddrPort, buf []byte, seg int) error {
	for off := 0; off < len(buf); off += seg {
		l.udp(local, remote, buf[off:min(off+seg, len(buf))])
	}
	return nil
}
func (l *loopWire) SendIP(b []byte) error { l.ip(b); return nil }
func (l *loopWire) RawIP() bool           { return true }
func (l *loopWire) RawIPError() string    { return "" }

// benchPair builds sender a and receiver b over a loopWire: a's packets are
// decapsulated by b on the same goroutine.
func benchPair(tb testing.TB, s suite, encap bool) (a, b *DataPath, dev *nullDevice) {
	dev = newNullDevice()
	bdp, err := New(Config{Device: dev, Wire: &loopWire{}})
	if err != nil {
		tb.Fatal(err)
	}
	w := newWorker()
	adp, err := New(Config{Device: newNullDevice(), Wire: &loopWire{
		udp: func(local, remote netip.AddrPort, p []byte) { bdp.receiveUDP(w, remote, local, p) },
		ip:  func(p []byte) { bdp.receiveIP(w, p) },
	}})
	if err != nil {
		tb.Fatal(err)
	}
	in, out := s.child(0x1000), s.child(0x2000)
	pa := childsa.Pair{Tunnel: "t", Inbound: in, Outbound: out, Mode: childsa.ModeTunnel, UDPEncap: encap,
		Local: outsideA, Remote: outsideB, LocalTS: netA, RemoteTS: netB, Lifetime: time.Hour}
	pb := childsa.Pair{Tunnel: "t", Inbound: out, Outbound: in, Mode: childsa.ModeTunnel, UDPEncap: encap,
		Local: outsideB, Remote: outsideA, LocalTS: netB, RemoteTS: netA, Lifetime: time.Hour}
	if err := adp.Install(pa); err != nil {
		tb.Fatal(err)
	}
	if err := bdp.Install(pb); err != nil {
		tb.Fatal(err)
	}
	return adp, bdp, dev
}

// BenchmarkPipeline: one inside packet through the whole data path of two
// gateways (route lookup, selectors, encapsulation, batch, SPI lookup,
// ICV + replay, decapsulation, selectors, device write), on one core.
func BenchmarkPipeline(b *testing.B) {
	for _, s := range []suite{gcmSuite(), cbcSuite()} {
		for _, encap := range []bool{true, false} {
			for _, size := range []int{64, 512, 1400} {
				name := s.name + "/raw"
				if encap {
					name = s.name + "/udp"
				}
				b.Run(name+"/"+itoa(size), func(b *testing.B) {
					a, _, dev := benchPair(b, s, encap)
					w := newWorker()
					batch := newUDPBatch()
					pkt := udpPacket(hostA, hostB, size-28, 0)
					b.SetBytes(int64(size))
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						a.sendInside(w, batch, pkt)
						a.flushUDP(batch)
					}
					b.StopTimer()
					if dev.writes != b.N || len(dev.last) != size {
						b.Fatalf("delivered %d of %d (last %d bytes)", dev.writes, b.N, len(dev.last))
					}
				})
			}
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestPipelineAllocs: the packet path allocates nothing per packet, with
// selector routes and with explicit routes (ECMP over two tunnels, one of
// them without a pair, so the flow hash runs).
func TestPipelineAllocs(t *testing.T) {
	for _, encap := range []bool{true, false} {
		for _, explicit := range []bool{false, true} {
			a, _, dev := benchPair(t, gcmSuite(), encap)
			if explicit {
				a.SetRoutes([]Route{{Prefix: netB, Tunnels: []string{"x", "t"}, ECMP: true}})
			}
			w := newWorker()
			batch := newUDPBatch()
			pkt := udpPacket(hostA, hostB, 1000, 0)
			n := testing.AllocsPerRun(200, func() {
				a.sendInside(w, batch, pkt)
				a.flushUDP(batch)
			})
			if n != 0 {
				t.Errorf("encap=%v explicit=%v: %v allocations per packet", encap, explicit, n)
			}
			if dev.writes < 200 {
				t.Fatalf("only %d packets delivered", dev.writes)
			}
		}
	}
}

// FuzzReceive feeds arbitrary bytes to the inbound path (as raw IP and as
// ESP in UDP) of a data path with one installed SA: never a panic, every
// rejected packet counted.
func FuzzReceive(f *testing.F) {
	s := gcmSuite()
	a, b, _ := benchPair(f, s, true)
	// Seeds: real protected packets, truncated and garbage ones.
	var seeds [][]byte
	a.wire = &loopWire{udp: func(_, _ netip.AddrPort, p []byte) { seeds = append(seeds, append([]byte(nil), p...)) },
		ip: func(p []byte) { seeds = append(seeds, append([]byte(nil), p...)) }}
	w := newWorker()
	batch := newUDPBatch()
	a.sendInside(w, batch, udpPacket(hostA, hostB, 100, 0))
	a.flushUDP(batch)
	for _, sd := range seeds {
		f.Add(sd, false)
		f.Add(sd[:len(sd)/2], false)
	}
	f.Add([]byte{0x45, 0, 0, 40, 0, 0, 0, 0, 64, 50, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2, 0, 0, 0x20, 0, 0, 0, 0, 1}, true)
	f.Add([]byte{0x4f}, true)
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		w := newWorker()
		if raw {
			b.receiveIP(w, data)
		} else {
			b.receiveUDP(w, outsideB, outsideA, data)
		}
	})
}
