package pktgen

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// Bounds of a send.
const (
	MaxCount    = 100_000_000      // packets per send, all streams together
	MaxDuration = 10 * time.Minute // per send and per receive
	MaxSize     = 65_507           // largest UDP payload over IPv4
	MaxStreams  = 64
	MaxRate     = 100_000_000 // packets/s
	maxBatch    = 1024        // UIO_MAXIOV
)

// SendConfig is what Send sends.
type SendConfig struct {
	Dst      string        // host:port
	Size     int           // UDP payload bytes, HeaderLen..MaxSize
	Count    uint64        // stop after this many packets (all streams), 1..MaxCount
	Duration time.Duration // stop after this long, > 0 and <= MaxDuration
	Rate     float64       // packets/s of all streams together; 0: as fast as possible
	Streams  int           // sockets and goroutines; 0 means 1
	Batch    int           // datagrams per sendmmsg; 0 means 64
}

// SendResult is what was sent; the sums are over all streams.
type SendResult struct {
	Packets    uint64        `json:"packets"`
	Bytes      uint64        `json:"bytes"`       // UDP payload bytes
	SendErrors uint64        `json:"send_errors"` // failed sendmmsg calls (retried)
	FirstError string        `json:"first_error,omitempty"`
	Elapsed    time.Duration `json:"-"`
	Seconds    float64       `json:"seconds"`
	PPS        float64       `json:"packets_per_s"` // Packets / Seconds
	Rate       float64       `json:"rate"`          // the configured rate, 0: unlimited
	Size       int           `json:"size"`
	Streams    int           `json:"streams"`
	Stopped    string        `json:"stopped"` // "count", "duration" or "cancelled"
}

func (c *SendConfig) normalize() error {
	if c.Streams == 0 {
		c.Streams = 1
	}
	if c.Batch == 0 {
		c.Batch = 64
	}
	switch {
	case c.Dst == "":
		return configErr("pktgen: send: no destination address")
	case c.Size < HeaderLen || c.Size > MaxSize:
		return configErr("pktgen: send: size %d out of range: a payload is %d..%d bytes (it carries a %d-byte sequence header)", c.Size, HeaderLen, MaxSize, HeaderLen)
	case c.Count == 0:
		return configErr("pktgen: send: count must be > 0 (a send is bounded by a packet count and a duration)")
	case c.Count > MaxCount:
		return configErr("pktgen: send: count %d is above the cap of %d packets", c.Count, MaxCount)
	case c.Duration <= 0:
		return configErr("pktgen: send: duration must be > 0 (a send is bounded by a packet count and a duration)")
	case c.Duration > MaxDuration:
		return configErr("pktgen: send: duration %v is above the cap of %v", c.Duration, MaxDuration)
	case c.Rate < 0 || c.Rate > MaxRate || c.Rate != c.Rate:
		return configErr("pktgen: send: rate %v packets/s out of range: 0 (as fast as possible) .. %d", c.Rate, MaxRate)
	case c.Streams < 0 || c.Streams > MaxStreams:
		return configErr("pktgen: send: streams %d out of range 1..%d", c.Streams, MaxStreams)
	case uint64(c.Streams) > c.Count:
		return configErr("pktgen: send: %d streams but only %d packets", c.Streams, c.Count)
	case c.Batch < 1 || c.Batch > maxBatch:
		return configErr("pktgen: send: batch %d out of range 1..%d", c.Batch, maxBatch)
	}
	return nil
}

// Send sends as cfg says and returns what it sent. It returns an error for a
// bad configuration or when a socket cannot be opened; send errors during the
// run are counted in the result.
func Send(ctx context.Context, cfg SendConfig) (SendResult, error) {
	if err := cfg.normalize(); err != nil {
		return SendResult{}, err
	}
	dst, err := net.ResolveUDPAddr("udp", cfg.Dst)
	if err != nil {
		return SendResult{}, fmt.Errorf("pktgen: send: destination %q: %w", cfg.Dst, err)
	}
	streams := make([]*stream, cfg.Streams)
	for i := range streams {
		per := cfg.Count / uint64(cfg.Streams)
		if uint64(i) < cfg.Count%uint64(cfg.Streams) {
			per++
		}
		s, err := newStream(dst, uint32(i), cfg, per)
		if err != nil {
			for _, o := range streams[:i] {
				o.conn.Close()
			}
			return SendResult{}, err
		}
		streams[i] = s
	}
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(ctx, start, deadline) }()
	}
	wg.Wait()
	res := SendResult{Elapsed: time.Since(start), Rate: cfg.Rate, Size: cfg.Size, Streams: cfg.Streams, Stopped: "count"}
	for _, s := range streams {
		s.conn.Close()
		res.Packets += s.sent
		res.SendErrors += s.errors
		if res.FirstError == "" && s.firstErr != nil {
			res.FirstError = s.firstErr.Error()
		}
		if s.stopped != "count" && res.Stopped == "count" {
			res.Stopped = s.stopped
		}
	}
	res.Bytes = res.Packets * uint64(cfg.Size)
	res.Seconds = res.Elapsed.Seconds()
	if res.Seconds > 0 {
		res.PPS = float64(res.Packets) / res.Seconds
	}
	return res, nil
}

// stream is one socket's sender: a connected UDP socket and a ring of batch
// buffers allocated once.
type stream struct {
	conn     *net.UDPConn
	pc       *ipv4.PacketConn // WriteBatch is sendmmsg for IPv4 and IPv6 sockets alike
	id       uint32
	msgs     []ipv4.Message
	count    uint64  // packets this stream sends at most
	rate     float64 // packets/s of this stream, 0: unlimited
	sent     uint64
	errors   uint64
	firstErr error
	stopped  string
}

func newStream(dst *net.UDPAddr, id uint32, cfg SendConfig, count uint64) (*stream, error) {
	conn, err := net.DialUDP("udp", nil, dst)
	if err != nil {
		return nil, fmt.Errorf("pktgen: send: socket to %v: %w", dst, err)
	}
	_ = conn.SetWriteBuffer(4 << 20)
	s := &stream{conn: conn, pc: ipv4.NewPacketConn(conn), id: id, count: count, rate: cfg.Rate / float64(cfg.Streams)}
	buf := make([]byte, cfg.Batch*cfg.Size)
	s.msgs = make([]ipv4.Message, cfg.Batch)
	for i := range s.msgs {
		p := buf[i*cfg.Size : (i+1)*cfg.Size : (i+1)*cfg.Size]
		putHeader(p, 0, id)
		s.msgs[i].Buffers = [][]byte{p}
	}
	return s, nil
}

// run sends until the count, the deadline or ctx ends it.
func (s *stream) run(ctx context.Context, start, deadline time.Time) {
	done := ctx.Done()
	for s.sent < s.count {
		select {
		case <-done:
			s.stopped = "cancelled"
			return
		default:
		}
		now := time.Now()
		if !now.Before(deadline) {
			s.stopped = "duration"
			return
		}
		if s.rate > 0 {
			due := start.Add(time.Duration(float64(s.sent) / s.rate * float64(time.Second)))
			if wait := due.Sub(now); wait > 0 {
				time.Sleep(min(wait, deadline.Sub(now)))
				continue
			}
		}
		s.sendBatch(int(min(s.count-s.sent, uint64(len(s.msgs)), s.burst())))
	}
	s.stopped = "count"
}

// burst limits a rate-limited batch to about 1 ms of packets so that the
// offered rate stays smooth.
func (s *stream) burst() uint64 {
	if s.rate <= 0 {
		return maxBatch
	}
	return max(1, uint64(s.rate/1000))
}

// sendBatch sends the next n datagrams with one sendmmsg (repeated for a
// partial send). It allocates nothing.
func (s *stream) sendBatch(n int) {
	for i := range n {
		putHeader(s.msgs[i].Buffers[0], s.sent+uint64(i), s.id)
	}
	msgs := s.msgs[:n]
	for len(msgs) > 0 {
		k, err := s.pc.WriteBatch(msgs, 0)
		k = max(k, 0) // -1 with an error
		s.sent += uint64(k)
		msgs = msgs[k:]
		if err != nil {
			s.errors++
			if s.firstErr == nil {
				s.firstErr = err
			}
			// the kernel took the first k; the rest are renumbered and
			// offered again by the caller's next batch
			return
		}
	}
}
