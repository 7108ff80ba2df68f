package traffic

import (
	"errors"
	"math/bits"
	"sync"
	"time"
)

// MaxProbes is the most probes one flow sends (the bound of its per-probe
// state).
const MaxProbes = 1_000_000

const (
	chunkBits  = 12
	chunkSize  = 1 << chunkBits // probes per chunk of per-probe state
	chunkMask  = chunkSize - 1
	maxChunks  = (MaxProbes + chunkSize - 1) / chunkSize
	maxBuckets = 1 << 16 // time-series buckets before the width doubles
)

// chunk is the per-probe state of chunkSize consecutive probes.
type chunk struct {
	sent [chunkSize]int64       // send time, ns since tracker.t0
	rx   [chunkSize / 64]uint64 // received bits
}

type counts struct{ sent, received uint64 }

// errProbeLimit is LastError once a flow without Count or Duration has sent
// MaxProbes probes.
var errProbeLimit = errors.New("probe limit reached (1000000 probes per flow): sending stopped")

// tracker is the accounting of one flow: send times, received bits,
// counters and the time series. All methods are safe for concurrent use.
type tracker struct {
	mu     sync.Mutex
	t0     time.Time // first send; send times are offsets from it
	limit  uint64
	chunks []*chunk

	sent, distinct, dups, reordered, invalid, bytes, errors, reconnects uint64

	maxRx    uint64 // highest seq received (valid if anyRx)
	anyRx    bool
	lastTS   int64 // send time of the last probe sent
	lastErr  error
	delaySum int64
	delayMax int64
	delayMin int64 // -1 until the first reception

	width   int64 // bucket width, ns
	buckets []counts

	watch bool          // signal allIn when everything sent was received
	allIn chan struct{} // capacity 1
}

// newTracker accounts for at most limit (<= MaxProbes) probes; expect is
// the planned duration (0: unknown), used to size the time series.
func newTracker(limit uint64, bucket, expect time.Duration) *tracker {
	if limit > MaxProbes {
		limit = MaxProbes
	}
	t := &tracker{
		limit:    limit,
		chunks:   make([]*chunk, (limit+chunkSize-1)/chunkSize),
		width:    int64(bucket),
		allIn:    make(chan struct{}, 1),
		delayMin: -1,
	}
	n := 1024
	if expect > 0 {
		n = int(min(int64(expect)/t.width+2, maxBuckets))
	}
	t.buckets = make([]counts, 0, n)
	return t
}

// nextSend allocates the next sequence number, sent at now. ok is false once
// the limit is reached.
func (t *tracker) nextSend(now time.Time) (seq uint64, ts int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sent >= t.limit {
		return 0, 0, false
	}
	if t.sent == 0 {
		t.t0 = now
	}
	ts = max(int64(now.Sub(t.t0)), t.lastTS) // never backwards
	seq = t.sent
	c := t.chunks[seq>>chunkBits]
	if c == nil {
		c = new(chunk)
		t.chunks[seq>>chunkBits] = c
	}
	c.sent[seq&chunkMask] = ts
	t.sent++
	t.lastTS = ts
	t.bucket(ts).sent++
	return seq, ts, true
}

// bucket returns the time-series bucket of send time ts, creating it (and
// halving the resolution when there would be more than maxBuckets).
func (t *tracker) bucket(ts int64) *counts {
	i := ts / t.width
	for i >= maxBuckets {
		n := (len(t.buckets) + 1) / 2
		for j := range n {
			c := t.buckets[2*j]
			if 2*j+1 < len(t.buckets) {
				c.sent += t.buckets[2*j+1].sent
				c.received += t.buckets[2*j+1].received
			}
			t.buckets[j] = c
		}
		t.buckets = t.buckets[:n]
		t.width *= 2
		i = ts / t.width
	}
	for int64(len(t.buckets)) <= i {
		t.buckets = append(t.buckets, counts{})
	}
	return &t.buckets[i]
}

// recv accounts for a probe (seq, send time ts) received at now carrying n
// payload bytes. Probes that were not sent (or not with that send time) are
// ignored.
func (t *tracker) recv(seq uint64, ts int64, n int, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq >= t.sent {
		t.invalid++
		return
	}
	c := t.chunks[seq>>chunkBits]
	i := seq & chunkMask
	if c.sent[i] != ts {
		t.invalid++
		return
	}
	t.bytes += uint64(n)
	w, bit := i/64, uint64(1)<<(i%64)
	if c.rx[w]&bit != 0 {
		t.dups++
		return
	}
	c.rx[w] |= bit
	t.distinct++
	if t.anyRx && seq < t.maxRx {
		t.reordered++
	} else {
		t.maxRx, t.anyRx = seq, true
	}
	t.buckets[ts/t.width].received++
	d := max(int64(now.Sub(t.t0))-ts, 0)
	t.delaySum += d
	t.delayMax = max(t.delayMax, d)
	if t.delayMin < 0 || d < t.delayMin {
		t.delayMin = d
	}
	if t.watch && t.distinct == t.sent {
		select {
		case t.allIn <- struct{}{}:
		default:
		}
	}
}

// sendError counts a failed send.
func (t *tracker) sendError(err error) {
	t.mu.Lock()
	t.errors++
	t.lastErr = err
	t.mu.Unlock()
}

// note records err as LastError without counting it.
func (t *tracker) note(err error) {
	t.mu.Lock()
	t.lastErr = err
	t.mu.Unlock()
}

func (t *tracker) reconnected() {
	t.mu.Lock()
	t.reconnects++
	t.mu.Unlock()
}

// waitAll waits up to d until every probe sent has been received.
func (t *tracker) waitAll(d time.Duration) {
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		t.mu.Lock()
		t.watch = true
		all := t.distinct == t.sent
		t.mu.Unlock()
		if all {
			return
		}
		select {
		case <-t.allIn:
		case <-timer.C:
			return
		}
	}
}

func (t *tracker) sendTime(seq uint64) int64 {
	return t.chunks[seq>>chunkBits].sent[seq&chunkMask]
}

// fill sets the counters, gap, delays and series of r.
func (t *tracker) fill(r *Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.Sent, r.Received, r.Lost = t.sent, t.distinct, t.sent-t.distinct
	r.Reordered, r.Duplicates, r.Bytes = t.reordered, t.dups, t.bytes
	r.Errors, r.Reconnects = t.errors, t.reconnects
	if t.lastErr != nil {
		r.LastError = t.lastErr.Error()
	}
	r.BucketWidth = time.Duration(t.width)
	if t.sent == 0 {
		return
	}
	r.LossPct = 100 * float64(r.Lost) / float64(r.Sent)
	first, last := t.sendTime(0), t.sendTime(t.sent-1)
	r.Start, r.End = t.t0.Add(time.Duration(first)), t.t0.Add(time.Duration(last))
	if t.distinct > 0 {
		r.AvgDelay = time.Duration(t.delaySum / int64(t.distinct))
		r.MaxDelay = time.Duration(t.delayMax)
		r.MinDelay = time.Duration(t.delayMin)
	}

	// MaxGap: neighbours among {first, send times of received probes, last}.
	gap, from, to := int64(-1), first, first
	prev := first
	step := func(ts int64) {
		if ts-prev > gap {
			gap, from, to = ts-prev, prev, ts
		}
		prev = ts
	}
	nChunks := (t.sent + chunkSize - 1) / chunkSize
	for ci := range nChunks {
		c := t.chunks[ci]
		for w, word := range c.rx {
			for word != 0 {
				b := bits.TrailingZeros64(word)
				word &= word - 1
				step(c.sent[w*64+b])
			}
		}
	}
	step(last)
	r.MaxGap = time.Duration(gap)
	r.MaxGapFrom, r.MaxGapTo = t.t0.Add(time.Duration(from)), t.t0.Add(time.Duration(to))

	r.Series = make([]Bucket, len(t.buckets))
	for i, b := range t.buckets {
		r.Series[i] = Bucket{Start: t.t0.Add(time.Duration(int64(i) * t.width)), Sent: b.sent, Received: b.received}
	}
}
