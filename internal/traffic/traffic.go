package traffic

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Spec describes a flow.
type Spec struct {
	Name         string
	Proto        string        // "icmp", "udp", "tcp"
	SrcNS, DstNS string        // network namespace names ("" = current)
	Src, Dst     netip.Addr    // Src optional (bind address)
	Port         uint16        // udp/tcp destination port (0: 5201 + a per-process counter, skipping ports in use)
	Rate         float64       // probes per second (default 20, at most 100,000); tcp: messages per second
	Size         int           // payload bytes per probe/message (default 64, at least 24 (the header), at most 65,000)
	Count        int           // stop sending after Count probes (0 = no limit)
	Duration     time.Duration // stop sending after Duration (0 = no limit; Count or Stop then)
	Bucket       time.Duration // time-series bucket width (default 100ms, at least 1ms)
}

// Result is the measurement of a flow; see the package documentation for
// the exact definitions.
type Result struct {
	Name, Proto string
	Src, Dst    netip.Addr // Src: the bind address, or the source the sender's socket got
	Port        uint16     // udp/tcp destination port
	Start, End  time.Time  // first send, last send

	Sent, Received, Lost, Reordered, Duplicates uint64
	LossPct                                     float64

	MaxGap               time.Duration // the longest outage
	MaxGapFrom, MaxGapTo time.Time     // its ends (send times)
	AvgDelay, MaxDelay   time.Duration // one-way (udp, tcp) or round trip (icmp)
	MinDelay             time.Duration // as AvgDelay: what a configured delay shows under load (scheduling only adds)

	Bytes       uint64        // payload bytes received
	Series      []Bucket      // by send time
	BucketWidth time.Duration // width of the Series buckets
	Errors      uint64        // probes whose send failed locally: counted, not fatal
	LastError   string
	Reconnects  uint64 // tcp: connections established after the first
}

// Bucket is one time-series bucket: probes sent in [Start, Start+width) and
// how many of them were received.
type Bucket struct {
	Start          time.Time
	Sent, Received uint64
}

const (
	defaultRate   = 20
	maxRate       = 100_000
	defaultSize   = 64
	maxSize       = 65_000
	defaultBucket = 100 * time.Millisecond
	basePort      = 5201
)

// transport is the protocol-specific part of a flow.
type transport interface {
	// send sends probe seq with send time ts; called by one goroutine.
	send(seq uint64, ts int64) error
	// interrupt makes a blocked send return (sending is stopping).
	interrupt()
	// close closes every socket; the flow's goroutines then end.
	close()
}

// Flow is a running flow.
type Flow struct {
	spec  Spec // with defaults
	id    uint32
	srcMu sync.Mutex
	src   netip.Addr // Spec.Src, or the source address the sender got
	tr    *tracker
	tx    transport

	sendCtx    context.Context // done when sending stops
	cancelSend context.CancelFunc
	done       chan struct{} // closed when the send loop ended
	ready      chan struct{} // closed when the first probe may go (tcp: after the first connect attempt)
	wg         sync.WaitGroup
	stopCtxFn  func() bool

	stopMu sync.Mutex
	final  atomic.Pointer[Result]
}

var (
	flowSalt uint32
	flowSeq  atomic.Uint32
	portSeq  atomic.Uint32
)

func init() {
	var b [4]byte
	_, _ = rand.Read(b[:])
	flowSalt = binary.BigEndian.Uint32(b[:])
}

func newFlowID() uint32 { return flowSalt + flowSeq.Add(1)*0x9e3779b1 }

// normalize validates s and fills in defaults.
func normalize(s Spec) (Spec, error) {
	bad := func(format string, args ...any) (Spec, error) {
		return s, fmt.Errorf("traffic: flow %q: %s", s.Name, fmt.Sprintf(format, args...))
	}
	switch s.Proto {
	case "icmp", "udp", "tcp":
	default:
		return bad("unknown protocol %q (want icmp, udp or tcp)", s.Proto)
	}
	s.Dst, s.Src = s.Dst.Unmap(), s.Src.Unmap()
	if !s.Dst.IsValid() || s.Dst.IsUnspecified() || s.Dst.IsMulticast() {
		return bad("destination address %v is not a unicast address", s.Dst)
	}
	if s.Dst.Zone() != "" || s.Src.Zone() != "" {
		return bad("addresses with a zone are not supported")
	}
	if s.Src.IsValid() && s.Src.Is4() != s.Dst.Is4() {
		return bad("source %v and destination %v are of different address families", s.Src, s.Dst)
	}
	if math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) || s.Rate < 0 || s.Rate > maxRate {
		return bad("rate %v out of range (0 = default %d, at most %d per second)", s.Rate, defaultRate, maxRate)
	}
	if s.Rate == 0 {
		s.Rate = defaultRate
	}
	if s.Size == 0 {
		s.Size = defaultSize
	}
	if s.Size < headerLen || s.Size > maxSize {
		return bad("size %d out of range (%d..%d bytes; the probe header takes %d)", s.Size, headerLen, maxSize, headerLen)
	}
	if s.Count < 0 || s.Duration < 0 {
		return bad("negative count (%d) or duration (%v)", s.Count, s.Duration)
	}
	if s.Bucket == 0 {
		s.Bucket = defaultBucket
	}
	if s.Bucket < time.Millisecond {
		return bad("bucket width %v below 1ms", s.Bucket)
	}
	if n := planned(s); n > MaxProbes {
		return bad("%d probes planned, more than the limit of %d per flow (lower Count, Rate or Duration)", n, MaxProbes)
	}
	if s.Name == "" {
		src := "*"
		if s.Src.IsValid() {
			src = s.Src.String()
		}
		s.Name = s.Proto + " " + src + "->" + s.Dst.String()
	}
	return s, nil
}

// planned is the number of probes s sends (0: unlimited). Probe k is sent
// while k/Rate < Duration.
func planned(s Spec) uint64 {
	n := uint64(math.MaxUint64)
	if s.Duration > 0 {
		n = uint64(math.Ceil(s.Duration.Seconds()*s.Rate - 1e-9))
	}
	if s.Count > 0 {
		n = min(n, uint64(s.Count))
	}
	if n == math.MaxUint64 {
		return 0
	}
	return n
}

// Start validates s, creates the flow's sockets (in their namespaces) and
// starts sending. Sending stops at Count, Duration, MaxProbes or Stop; when
// ctx is done the flow stops as by Stop(0). Stop must be called (or ctx
// canceled) to release the sockets.
func Start(ctx context.Context, s Spec) (*Flow, error) {
	return start(ctx, s, false)
}

// start is Start; with manual there is no send loop (tests and benchmarks
// call sendOne) and Done is closed at once.
func start(ctx context.Context, s Spec, manual bool) (*Flow, error) {
	s, err := normalize(s)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("traffic: flow %q: %w", s.Name, err)
	}
	limit := planned(s)
	if limit == 0 {
		limit = MaxProbes
	}
	var expect time.Duration
	if s.Duration > 0 {
		expect = s.Duration
	} else if s.Count > 0 {
		expect = time.Duration(float64(s.Count) / s.Rate * float64(time.Second))
	}
	f := &Flow{
		spec:  s,
		id:    newFlowID(),
		src:   s.Src,
		tr:    newTracker(limit, s.Bucket, expect),
		done:  make(chan struct{}),
		ready: make(chan struct{}),
	}
	f.sendCtx, f.cancelSend = context.WithCancel(context.Background())
	switch s.Proto {
	case "udp":
		err = f.startUDP()
	case "tcp":
		err = f.startTCP()
	case "icmp":
		err = f.startICMP()
	}
	if err != nil {
		f.cancelSend()
		if f.tx != nil {
			f.tx.close()
		}
		f.wg.Wait()
		return nil, fmt.Errorf("traffic: flow %q: %w", s.Name, err)
	}
	if manual {
		close(f.done)
	} else {
		go f.sendLoop()
	}
	f.stopMu.Lock() // Stop may run at once (ctx already done)
	f.stopCtxFn = context.AfterFunc(ctx, func() { f.Stop(0) })
	f.stopMu.Unlock()
	return f, nil
}

// bindPort calls bind with s.Port, or with successive default ports until
// one is not in use.
func (f *Flow) bindPort(bind func(port uint16) error) error {
	if f.spec.Port != 0 {
		return bind(f.spec.Port)
	}
	var err error
	for range 64 {
		p := uint16(basePort + portSeq.Add(1)%2000)
		if err = bind(p); err == nil {
			f.spec.Port = p
			return nil
		}
		if !isAddrInUse(err) {
			return err
		}
	}
	return err
}

// sendLoop sends the probes on schedule.
func (f *Flow) sendLoop() {
	defer close(f.done)
	defer f.cancelSend()
	stop := f.sendCtx.Done()
	select {
	case <-f.ready:
	case <-stop:
		return
	}
	interval := time.Duration(float64(time.Second) / f.spec.Rate)
	maxLag := max(interval, 50*time.Millisecond)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	next := start
	for n := 0; ; n++ {
		if f.spec.Count > 0 && n >= f.spec.Count || f.spec.Duration > 0 && next.Sub(start) >= f.spec.Duration {
			return
		}
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-stop:
				return
			}
		} else {
			select {
			case <-stop:
				return
			default:
			}
		}
		now := time.Now()
		if f.spec.Duration > 0 && now.Sub(start) >= f.spec.Duration {
			return // woken late (a stalled machine): Duration is when sending stops
		}
		if !f.sendOne(now) {
			if f.spec.Count == 0 && f.spec.Duration == 0 {
				f.tr.note(errProbeLimit)
			} // else: the planned number of probes (rounding of Rate × Duration)
			return
		}
		next = next.Add(interval)
		if now := time.Now(); now.Sub(next) > maxLag {
			next = now // behind schedule: restart it rather than burst
		}
	}
}

// sendOne sends the next probe; false when the probe limit is reached.
func (f *Flow) sendOne(now time.Time) bool {
	seq, ts, ok := f.tr.nextSend(now)
	if !ok {
		return false
	}
	if err := f.tx.send(seq, ts); err != nil {
		f.tr.sendError(err)
	}
	return true
}

// Snapshot returns the flow's counters so far (the final Result once Stop
// has returned). Safe for concurrent use.
func (f *Flow) Snapshot() Result {
	if r := f.final.Load(); r != nil {
		return r.clone()
	}
	return f.result()
}

// setSrc records the sender's source address unless Spec.Src gave one.
func (f *Flow) setSrc(a netip.Addr) {
	if f.spec.Src.IsValid() {
		return
	}
	f.srcMu.Lock()
	f.src = a.Unmap()
	f.srcMu.Unlock()
}

func (f *Flow) result() Result {
	f.srcMu.Lock()
	src := f.src
	f.srcMu.Unlock()
	r := Result{Name: f.spec.Name, Proto: f.spec.Proto, Src: src, Dst: f.spec.Dst, Port: f.spec.Port}
	if f.spec.Proto == "icmp" {
		r.Port = 0
	}
	f.tr.fill(&r)
	return r
}

func (r *Result) clone() Result {
	c := *r
	c.Series = append([]Bucket(nil), r.Series...)
	return c
}

// Done is closed when the flow stopped sending: Count, Duration or the
// probe limit reached, Stop called or the context done.
func (f *Flow) Done() <-chan struct{} { return f.done }

// Stop stops sending, waits up to grace for probes still in flight (less if
// everything sent has arrived), closes the sockets and returns the final
// Result. It is idempotent; later calls return the same Result.
func (f *Flow) Stop(grace time.Duration) Result {
	f.stopMu.Lock()
	defer f.stopMu.Unlock()
	if r := f.final.Load(); r != nil {
		return r.clone()
	}
	if f.stopCtxFn != nil {
		f.stopCtxFn()
	}
	f.cancelSend()
	select {
	case <-f.done:
	case <-time.After(200 * time.Millisecond): // a send is blocked
		f.tx.interrupt()
		<-f.done
	}
	f.tr.waitAll(grace)
	f.tx.close()
	f.wg.Wait()
	r := f.result()
	f.final.Store(&r)
	return r.clone()
}

var errNotConnected = errors.New("tcp: not connected")
