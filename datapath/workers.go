package datapath

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// Parallel crypto (fork-join per batch).
//
// The goroutines that move packets (RunInside for the inside device, one
// reader per NAT-T socket, one per raw socket) work in batches: a TUN read of
// a GSO super-packet split into segments, a UDP GRO read, a drained raw
// socket. Each batch goes through three phases:
//
//  1. serial, in packet order: routing, selectors, SA lookup and, outbound,
//     esp.SA.PrepareESP, which takes the sequence number and lays the packet
//     out in the send buffer;
//  2. parallel: the crypto of the batch (esp.PendingESP.Seal,
//     esp.SA.DecryptESP: encryption and ICV) on the batch's goroutine and
//     up to Workers-1 helper goroutines, each on its own lane of the SA's
//     crypto state;
//  3. serial, in packet order: outbound the send (UDP GSO or raw, in the
//     order of phase 1, so that each SA's packets leave in sequence number
//     order), inbound esp.SA.AcceptESP (anti-replay window, padding), the
//     selector check and the batch write to the device.
//
// Phase 2 hands out packets one at a time from an atomic counter: a helper
// that is not scheduled in time (both cores are busy with iperf3, the
// kernel's TUN and veth work and the other gateway) takes nothing, and the
// batch's own goroutine does the rest; it only waits for packets a helper
// has already started. Small batches (under minBytes of packet data) stay on
// the batch's goroutine: waking a helper costs more than it saves. So do
// AES-GCM batches (their bytes are not counted, see esp.SA.AEAD): measured
// end to end with 4 TCP streams, helpers made AES-GCM slower (docs/
// PERFORMANCE.md); VPNLAB_CRYPTO_MIN_BYTES=0 still forces them.
//
// The helpers are off unless VPNLAB_CRYPTO_WORKERS=N (N > 1: the batch's
// goroutine and N-1 helpers) asks for them: on the 2-core machine the project
// is measured on, shared with the benchmark's own iperf3 and kernel work
// (and other users), there was never an idle core for a helper, and they
// cost more than they gave: BenchmarkPipelineBatch with AES-CBC+HMAC 40 %
// slower, end to end 0-7 % slower in three of four runs (docs/
// PERFORMANCE.md). minBytes is VPNLAB_CRYPTO_MIN_BYTES if set, else 16 KiB.

const defaultParallelMinBytes = 16 << 10

// cryptoJob is a batch's phase 2: do(i, lane) runs the crypto of packet i on
// the SA lane lane.
type cryptoJob interface {
	do(i, lane int)
}

// cryptoPool is the helper goroutines of a DataPath (started on first use).
type cryptoPool struct {
	workers  int
	minBytes int
	once     sync.Once
	tasks    chan cryptoTask
	quit     chan struct{}
	stopped  atomic.Bool
}

// cryptoTask asks a helper to join batch b (of generation gen) on lane.
type cryptoTask struct {
	b    *cryptoBatch
	gen  uint32
	lane int
}

// cryptoBatch is the shared state of one phase 2. A batch goroutine owns
// one and reuses it for each of its batches; gen tells a late helper that
// the batch it was asked to join is over.
type cryptoBatch struct {
	job   cryptoJob
	claim atomic.Uint64 // gen<<40 | packets<<20 | next packet index
	done  atomic.Int64  // packets finished in this generation
	gen   uint32        // 24 bits used
}

const claimBits = 20 // packets per batch < 2^20

func newCryptoPool() *cryptoPool {
	c := &cryptoPool{workers: 1, minBytes: defaultParallelMinBytes}
	if v, err := strconv.Atoi(os.Getenv("VPNLAB_CRYPTO_WORKERS")); err == nil && v >= 1 {
		c.workers = v
	}
	if v, err := strconv.Atoi(os.Getenv("VPNLAB_CRYPTO_MIN_BYTES")); err == nil && v >= 0 {
		c.minBytes = v
	}
	c.workers = min(c.workers, 16)
	return c
}

func (c *cryptoPool) start() {
	c.tasks = make(chan cryptoTask, 64)
	c.quit = make(chan struct{})
	for i := 1; i < c.workers; i++ {
		go c.helper()
	}
}

func (c *cryptoPool) helper() {
	for {
		select {
		case t := <-c.tasks:
			t.b.work(t.gen, t.lane)
		case <-c.quit:
			return
		}
	}
}

// stop ends the helpers (DataPath.Close).
func (c *cryptoPool) stop() {
	if c.stopped.Swap(true) {
		return
	}
	c.once.Do(func() {}) // no start after stop
	if c.quit != nil {
		close(c.quit)
	}
}

// run runs job for packets 0..n-1 (bytes of packet data in all) and returns
// when all are done.
func (c *cryptoPool) run(b *cryptoBatch, job cryptoJob, n, bytes int) {
	if n == 0 {
		return
	}
	if c == nil || c.workers <= 1 || n < 2 || bytes < c.minBytes || c.stopped.Load() {
		for i := 0; i < n; i++ {
			job.do(i, 0)
		}
		return
	}
	c.once.Do(c.start)
	if c.tasks == nil {
		for i := 0; i < n; i++ {
			job.do(i, 0)
		}
		return
	}
	if n >= 1<<claimBits {
		for i := 0; i < n; i++ {
			job.do(i, 0)
		}
		return
	}
	b.job = job
	b.done.Store(0)
	b.gen = (b.gen + 1) & (1<<24 - 1)
	b.claim.Store(uint64(b.gen)<<(2*claimBits) | uint64(n)<<claimBits) // publishes job to the helpers
	for lane := 1; lane < min(c.workers, n); lane++ {
		select {
		case c.tasks <- cryptoTask{b: b, gen: b.gen, lane: lane}:
		default: // helpers busy with other batches: fewer hands
		}
	}
	b.work(b.gen, 0)
	for spins := 0; b.done.Load() < int64(n); spins++ {
		if spins < 64 {
			continue
		}
		runtime.Gosched()
	}
	b.job = nil
}

// work takes packets of generation gen until none is left.
func (b *cryptoBatch) work(gen uint32, lane int) {
	for {
		v := b.claim.Load()
		if uint32(v>>(2*claimBits)) != gen {
			return // that batch is over; b now belongs to a later one
		}
		i, n := int(v&(1<<claimBits-1)), int(v>>claimBits&(1<<claimBits-1))
		if i >= n {
			return
		}
		if !b.claim.CompareAndSwap(v, v+1) {
			continue
		}
		b.job.do(i, lane)
		b.done.Add(1)
	}
}
