package datapath

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/esp"
)

// recordDevice is a tun.Device that keeps a copy of every packet written.
type recordDevice struct {
	nullDevice
	got [][]byte
}

func (r *recordDevice) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		r.got = append(r.got, bytes.Clone(b[offset:]))
	}
	return len(bufs), nil
}

// parallelPair builds sender a and receiver b whose crypto always runs on
// 4 goroutines (no size threshold), with one tunnel-mode pair of suite s;
// the packets a sends are recorded (copies) in *sent.
func parallelPair(t *testing.T, s suite, encap bool, sent *[][]byte) (a, b *DataPath, dev *recordDevice) {
	t.Helper()
	dev = &recordDevice{nullDevice: *newNullDevice()}
	bdp, err := New(Config{Device: dev, Wire: &loopWire{}})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(p []byte) { *sent = append(*sent, bytes.Clone(p)) }
	adp, err := New(Config{Device: newNullDevice(), Wire: &loopWire{
		udp: func(_, _ netip.AddrPort, p []byte) { rec(p) },
		ip:  rec,
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*DataPath{adp, bdp} {
		d.crypto = &cryptoPool{workers: 4, minBytes: 0}
		t.Cleanup(func() { d.crypto.stop() })
	}
	in, out := s.child(0x1000), s.child(0x2000)
	pa := childsa.Pair{Tunnel: "t", Inbound: in, Outbound: out, Mode: childsa.ModeTunnel, UDPEncap: encap,
		Local: outsideA, Remote: outsideB, LocalTS: netA, RemoteTS: netB, Lifetime: time.Hour}
	pb := childsa.Pair{Tunnel: "t", Inbound: out, Outbound: in, Mode: childsa.ModeTunnel, UDPEncap: encap,
		Local: outsideB, Remote: outsideA, LocalTS: netB, RemoteTS: netA, Lifetime: time.Hour}
	if err := adp.Install(pa); err != nil {
		t.Fatal(err)
	}
	if err := bdp.Install(pb); err != nil {
		t.Fatal(err)
	}
	return adp, bdp, dev
}

// espSeq returns the sequence number of a sent packet (raw: after the
// outer IPv4 header).
func espSeq(p []byte, encap bool) uint32 {
	if !encap {
		p = p[esp.IPv4HeaderLen:]
	}
	return binary.BigEndian.Uint32(p[4:8])
}

// receiveBatch hands pkts to b as one read: a raw socket batch, or one
// UDP GRO read of a NAT-T socket.
func receiveBatch(b *DataPath, r *nattReader, pkts [][]byte, encap bool) {
	if !encap {
		b.ReceiveIPs(pkts)
		return
	}
	for _, p := range pkts {
		b.nattDatagram(r, outsideB, outsideA, p, 0, func(netip.AddrPort, []byte) {})
	}
	b.writeNATT(r)
}

// numbered returns inside packet i (its number in the first payload bytes).
func numbered(i int) []byte {
	p := udpPacket(hostA, hostB, 200+i%1000, 0)
	binary.BigEndian.PutUint32(p[28:], uint32(i))
	return p
}

// TestParallelOutboundOrder: with the crypto of each batch on 4 goroutines,
// the packets of an SA leave in sequence number order (1, 2, 3, ... in the
// order they were sent), and the receiver, also decrypting on 4 goroutines,
// delivers every packet once and in order. CBC+HMAC and GCM, ESP in UDP and
// raw ESP.
func TestParallelOutboundOrder(t *testing.T) {
	for _, s := range []suite{cbcSuite(), gcmSuite()} {
		for _, encap := range []bool{true, false} {
			var sent [][]byte
			a, b, dev := parallelPair(t, s, encap, &sent)
			w, batch := newWorker(), newUDPBatch()
			const batches, per = 40, 50
			for k := range batches {
				for i := range per {
					a.sendInside(w, batch, numbered(k*per+i))
				}
				a.flushUDP(batch)
			}
			if len(sent) != batches*per {
				t.Fatalf("%s encap=%v: sent %d packets, want %d", s.name, encap, len(sent), batches*per)
			}
			for i, p := range sent {
				if seq := espSeq(p, encap); seq != uint32(i+1) {
					t.Fatalf("%s encap=%v: packet %d left with sequence number %d", s.name, encap, i, seq)
				}
			}
			r := newNATTReader()
			for lo := 0; lo < len(sent); lo += 64 {
				receiveBatch(b, r, sent[lo:min(lo+64, len(sent))], encap)
			}
			if len(dev.got) != len(sent) {
				t.Fatalf("%s encap=%v: delivered %d of %d", s.name, encap, len(dev.got), len(sent))
			}
			for i, p := range dev.got {
				if n := binary.BigEndian.Uint32(p[28:]); n != uint32(i) || !bytes.Equal(p, numbered(i)) {
					t.Fatalf("%s encap=%v: delivery %d is packet %d", s.name, encap, i, n)
				}
			}
		}
	}
}

// TestParallelInboundReplayWindow: in one batch decrypted on 4 goroutines,
// packets out of order (within the window) are each delivered once, a
// duplicate of a packet in the same batch (whose decryption may finish
// first) is dropped as a replay, a forged packet is an ICV drop that does
// not move the window, and a later batch repeating old packets is all
// replays.
func TestParallelInboundReplayWindow(t *testing.T) {
	for _, s := range []suite{cbcSuite(), gcmSuite()} {
		for _, encap := range []bool{true, false} {
			var sent [][]byte
			a, b, dev := parallelPair(t, s, encap, &sent)
			w, batch := newWorker(), newUDPBatch()
			for i := range 48 {
				a.sendInside(w, batch, numbered(i))
			}
			a.flushUDP(batch)
			rng := rand.New(rand.NewPCG(5, 6))
			mixed := append([][]byte(nil), sent[:40]...)
			rng.Shuffle(len(mixed), func(x, y int) { mixed[x], mixed[y] = mixed[y], mixed[x] })
			// duplicates of packets 3 and 7 right after their originals'
			// positions, and a forged packet with a sequence number far right
			dups := 0
			for i := 0; i < len(mixed) && dups < 2; i++ {
				if n := espSeq(mixed[i], encap); n == 4 || n == 8 {
					mixed = append(mixed[:i+1], append([][]byte{mixed[i]}, mixed[i+1:]...)...)
					dups++
					i++
				}
			}
			forged := bytes.Clone(sent[40])
			forged[len(forged)-1] ^= 1
			mixed = append(mixed, forged)
			r := newNATTReader()
			receiveBatch(b, r, mixed, encap)
			if len(dev.got) != 40 {
				t.Fatalf("%s encap=%v: delivered %d, want 40", s.name, encap, len(dev.got))
			}
			seen := map[uint32]bool{}
			for _, p := range dev.got {
				n := binary.BigEndian.Uint32(p[28:])
				if seen[n] || n >= 40 {
					t.Fatalf("%s encap=%v: packet %d delivered twice or unexpected", s.name, encap, n)
				}
				seen[n] = true
			}
			// the forged packet did not move the window: packet 41 (seq 41) still passes
			receiveBatch(b, r, sent[40:41], encap)
			// old packets again: all replays
			receiveBatch(b, r, sent[:20], encap)
			if len(dev.got) != 41 {
				t.Fatalf("%s encap=%v: delivered %d after the replays, want 41", s.name, encap, len(dev.got))
			}
			c, _ := b.SACounters(protoESP, 0x2000)
			if c.Drops["replay"] != 22 || c.Drops["icv"] != 1 || c.PacketsIn != 41 {
				t.Errorf("%s encap=%v: counters %+v, want 22 replay, 1 icv drops, 41 packets", s.name, encap, c)
			}
		}
	}
}

// TestParallelPipelineAllocs: a batch through both parallel paths (prepare,
// parallel seal, send; parallel decrypt, accept, device write) allocates
// nothing once the buffers exist.
func TestParallelPipelineAllocs(t *testing.T) {
	for _, encap := range []bool{true, false} {
		var sent [][]byte
		a, b, _ := parallelPair(t, cbcSuite(), encap, &sent)
		b.dev = newNullDevice()
		w, batch := newWorker(), newUDPBatch()
		pkt := udpPacket(hostA, hostB, 1000, 0)
		// the receiver is fed from a's wire directly (no copies)
		r := newNATTReader()
		var pkts [][]byte
		a.wire = &loopWire{
			udp: func(_, _ netip.AddrPort, p []byte) { pkts = append(pkts, p) },
			ip:  func(p []byte) { pkts = append(pkts, p) },
		}
		step := func() {
			pkts = pkts[:0]
			for range 32 {
				a.sendInside(w, batch, pkt)
			}
			a.flushUDP(batch)
			receiveBatch(b, r, pkts, encap)
		}
		step()
		step()
		if n := testing.AllocsPerRun(50, step); n != 0 && !raceEnabled {
			t.Errorf("encap=%v: %v allocations per batch of 32", encap, n)
		}
		if c, _ := b.SACounters(protoESP, 0x2000); c.PacketsIn < 50*32 {
			t.Fatalf("encap=%v: only %d packets delivered", encap, c.PacketsIn)
		}
	}
}

// BenchmarkPipelineBatch: batches of 32 inside packets of 64 or 1400 bytes through
// both data paths' batch code (prepare, seal, UDP GSO or raw send; parallel
// decrypt, window, device write), with the crypto on 1 goroutine or on
// GOMAXPROCS (the pool's size limit does not apply here: helpers work even
// for small batches and AES-GCM). ns/op is per packet, without the system
// calls of the real wire and device.
func BenchmarkPipelineBatch(b *testing.B) {
	for _, s := range []suite{gcmSuite(), cbcSuite()} {
		for _, encap := range []bool{true, false} {
			for _, size := range []int{64, 1400} {
				for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
					name := fmt.Sprintf("%s/raw/%d/workers=%d", s.name, size, workers)
					if encap {
						name = fmt.Sprintf("%s/udp/%d/workers=%d", s.name, size, workers)
					}
					b.Run(name, func(b *testing.B) {
						t := &testing.T{}
						var sent [][]byte
						a, r, _ := parallelPair(t, s, encap, &sent)
						defer a.crypto.stop()
						defer r.crypto.stop()
						a.crypto, r.crypto = &cryptoPool{workers: workers}, &cryptoPool{workers: workers}
						r.dev = newNullDevice()
						w, batch, nr := newWorker(), newUDPBatch(), newNATTReader()
						pkt := udpPacket(hostA, hostB, size-28, 0)
						var pkts [][]byte
						a.wire = &loopWire{
							udp: func(_, _ netip.AddrPort, p []byte) { pkts = append(pkts, p) },
							ip:  func(p []byte) { pkts = append(pkts, p) },
						}
						b.SetBytes(int64(size))
						b.ReportAllocs()
						for i := 0; i < b.N; i += 32 {
							pkts = pkts[:0]
							for range 32 {
								a.sendInside(w, batch, pkt)
							}
							a.flushUDP(batch)
							receiveBatch(r, nr, pkts, encap)
						}
					})
				}
			}
		}
	}
}
