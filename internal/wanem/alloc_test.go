package wanem

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/natt"
)

// testFrame is a virtio header + Ethernet + IPv4/UDP frame src -> dst.
func testFrame(src, dst netip.Addr, payload int) []byte {
	f := make([]byte, hdrRoom+28+payload)
	eth := f[vnetLen:]
	binary.BigEndian.PutUint16(eth[12:14], 0x0800)
	ip := eth[ethLen:]
	ip[0], ip[8], ip[9] = 0x45, 64, natt.ProtoUDP
	binary.BigEndian.PutUint16(ip[2:4], uint16(28+payload))
	binary.BigEndian.PutUint16(ip[6:8], 0x4000)
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:12], ^natt.Sum(ip[:20]))
	u := ip[20:]
	binary.BigEndian.PutUint16(u[0:2], 4500)
	binary.BigEndian.PutUint16(u[2:4], 4500)
	binary.BigEndian.PutUint16(u[4:6], uint16(8+payload))
	for i := 8; i < len(u); i++ {
		u[i] = byte(i)
	}
	c, _ := natt.Checksum(src, dst, natt.ProtoUDP, u)
	binary.BigEndian.PutUint16(u[6:8], c)
	return f
}

// pipelineRig drives reader A's pipeline directly with batches of frames
// (the frames really leave on link B).
type pipelineRig struct {
	tl    *testLab
	w     *worker
	dirs  map[[2]netip.Addr]*direction
	orig  []byte
	bufs  [batchMax][]byte
	total uint64
}

func newPipelineRig(t testing.TB, im Impairment) *pipelineRig {
	tl := newTestLab(t, Options{})
	tl.set(t, im, Impairment{})
	r := &pipelineRig{tl: tl, w: newWorker(tl.f, tl.f.a, tl.f.b), dirs: tl.f.cfg.Load().onA, orig: testFrame(leftIP, rightIP, 1200)}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, len(r.orig))
	}
	// Learn the next hop before measuring.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := tl.f.b.neighbour(rightIP); ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

func (r *pipelineRig) batch() {
	now := r.tl.f.now()
	for i := range r.bufs {
		copy(r.bufs[i], r.orig)
		r.w.handle(r.dirs, r.bufs[i], now)
	}
	r.w.flush()
	r.total += batchMax
}

// settle waits until every packet handed in is accounted for. It reads the
// direction's counters directly: Forwarder.Counters allocates, and this
// runs inside the allocation count.
func (r *pipelineRig) settle(t testing.TB) CounterValues {
	c := r.dirs[[2]netip.Addr{leftIP, rightIP}].c
	deadline := time.Now().Add(5 * time.Second)
	for {
		ab := c.Snapshot()
		done := ab.Forwarded - ab.Duplicated + ab.DroppedLoss + ab.DroppedQueue + ab.DroppedRate + ab.DroppedNoNeigh + ab.DroppedMTU
		if done >= r.total || time.Now().After(deadline) {
			return ab
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var allocImpairments = []struct {
	name string
	im   Impairment
}{
	{"passthrough", Impairment{Loss: 0.01, Duplicate: 0.01, Corrupt: 0.01}},
	{"queued", Impairment{Delay: 200 * time.Microsecond, Jitter: 100 * time.Microsecond, Distribution: "normal",
		Loss: 0.01, Duplicate: 0.01, Corrupt: 0.01, Reorder: 0.01, RateBits: 10_000_000_000}},
}

// TestPipelineAllocs: the per-packet path (reader pipeline, queue,
// scheduler, sendmmsg) allocates nothing, whole process counted.
func TestPipelineAllocs(t *testing.T) {
	for _, c := range allocImpairments {
		t.Run(c.name, func(t *testing.T) {
			r := newPipelineRig(t, c.im)
			for i := 0; i < 10; i++ { // warm up
				r.batch()
			}
			r.settle(t)
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			const batches = 200
			for i := 0; i < batches; i++ {
				r.batch()
				if i%8 == 7 {
					time.Sleep(time.Millisecond) // let the scheduler drain
				}
			}
			ab := r.settle(t)
			runtime.ReadMemStats(&m1)
			allocs := m1.Mallocs - m0.Mallocs
			t.Logf("%d packets: %d allocations in the whole process; counters %+v", batches*batchMax, allocs, ab)
			if ab.Forwarded == 0 {
				t.Fatal("nothing forwarded")
			}
			// The runtime allocates a little on its own while the reader
			// and the scheduler contend for the queue's mutex (semaphore
			// waiters): 2-7 in practice, whatever the packet count
			// (profiled). One allocation per packet would be 12,800.
			if allocs > 16 {
				t.Fatalf("%d allocations for %d packets", allocs, batches*batchMax)
			}
		})
	}
}

func BenchmarkPipeline(b *testing.B) {
	for _, c := range allocImpairments {
		b.Run(c.name, func(b *testing.B) {
			r := newPipelineRig(b, c.im)
			r.batch()
			r.settle(b)
			b.ReportAllocs()
			b.SetBytes(int64(len(r.orig) - hdrRoom))
			b.ResetTimer()
			for i := 0; i < b.N; i += batchMax {
				r.batch()
			}
			r.settle(b)
		})
	}
}

// TestSendErrorCounted: a frame the kernel refuses (longer than the link's
// MTU) is counted as a send error, not as forwarded, and the frames after
// it in the batch still go.
func TestSendErrorCounted(t *testing.T) {
	r := newPipelineRig(t, Impairment{})
	big := testFrame(leftIP, rightIP, 3000)
	small := testFrame(leftIP, rightIP, 100)
	now := r.tl.f.now()
	r.w.handle(r.dirs, big, now)
	r.w.handle(r.dirs, small, now)
	r.w.flush()
	ab, _ := r.tl.counters()
	if ab.SendErrors != 1 || ab.Forwarded != 1 {
		t.Fatalf("send errors %d, forwarded %d; want 1, 1", ab.SendErrors, ab.Forwarded)
	}
}
