package pktgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/net/ipv4"
)

// RecvConfig is how a Receiver listens and when it stops.
type RecvConfig struct {
	Addr     string        // host:port to bind (port 0: any)
	Idle     time.Duration // stop this long after the last packet (counted from the first); > 0
	Duration time.Duration // stop after this long in any case; > 0 and <= MaxDuration
	RcvBuf   int           // receive buffer bytes; 0 means 64 MiB
	Batch    int           // datagrams per recvmmsg; 0 means 256
}

// RecvResult is what a Receiver counted.
type RecvResult struct {
	Packets    uint64  `json:"packets"` // our datagrams, duplicates included
	Bytes      uint64  `json:"bytes"`   // their UDP payload bytes
	Foreign    uint64  `json:"foreign"` // datagrams without our header
	Streams    int     `json:"streams"`
	Lost       uint64  `json:"lost"` // sequence numbers below each stream's highest never received
	Reordered  uint64  `json:"reordered"`
	Duplicates uint64  `json:"duplicates"`
	Late       uint64  `json:"late"`    // arrived more than 4096 behind the highest
	Seconds    float64 `json:"seconds"` // first to last packet
	PPS        float64 `json:"packets_per_s"`
	// Loss is Lost / (highest sequence numbers + 1) of all streams, in %.
	LossPct float64 `json:"loss_pct"`
	// KernelDrops: datagrams the kernel dropped on this socket (receive
	// buffer full), from KernelDropsSource: the socket's line in
	// /proc/net/udp(6) at the end of the run, else the SO_RXQ_OVFL count
	// of the last datagram read.
	KernelDrops       uint64 `json:"kernel_drops"`
	KernelDropsSource string `json:"kernel_drops_source"`
	RcvBuf            int    `json:"rcvbuf"`        // the socket's receive buffer as the kernel reports it
	RcvBufForced      bool   `json:"rcvbuf_forced"` // SO_RCVBUFFORCE was allowed
	Stopped           string `json:"stopped"`       // "idle", "duration", "cancelled", "nothing received"
	ReadErrors        uint64 `json:"read_errors"`
}

// Receiver is a bound UDP socket that counts datagrams.
type Receiver struct {
	cfg    RecvConfig
	conn   *net.UDPConn
	pc     *ipv4.PacketConn
	msgs   []ipv4.Message
	res    RecvResult
	seqs   map[uint32]*seqTracker
	ovfl   bool
	first  time.Time
	last   time.Time
	closed bool
}

// Listen checks cfg and binds the socket; Run then counts.
func Listen(cfg RecvConfig) (*Receiver, error) {
	if cfg.RcvBuf == 0 {
		cfg.RcvBuf = 64 << 20
	}
	if cfg.Batch == 0 {
		cfg.Batch = 256
	}
	switch {
	case cfg.Idle <= 0:
		return nil, configErr("pktgen: recv: idle timeout must be > 0")
	case cfg.Duration <= 0:
		return nil, configErr("pktgen: recv: duration must be > 0 (a receive is bounded)")
	case cfg.Duration > MaxDuration:
		return nil, configErr("pktgen: recv: duration %v is above the cap of %v", cfg.Duration, MaxDuration)
	case cfg.RcvBuf < 0 || cfg.RcvBuf > 1<<30:
		return nil, configErr("pktgen: recv: receive buffer %d out of range 0..%d", cfg.RcvBuf, 1<<30)
	case cfg.Batch < 1 || cfg.Batch > maxBatch:
		return nil, configErr("pktgen: recv: batch %d out of range 1..%d", cfg.Batch, maxBatch)
	}
	la, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("pktgen: recv: address %q: %w", cfg.Addr, err)
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("pktgen: recv: %w", err)
	}
	r := &Receiver{cfg: cfg, conn: conn, pc: ipv4.NewPacketConn(conn), seqs: map[uint32]*seqTracker{}}
	r.res.RcvBuf, r.res.RcvBufForced = setRcvBuf(conn, cfg.RcvBuf)
	r.ovfl = enableRxqOvfl(conn) == nil
	r.res.KernelDropsSource = "none (SO_RXQ_OVFL not available)"
	if r.ovfl {
		r.res.KernelDropsSource = "SO_RXQ_OVFL"
	}
	buf := make([]byte, cfg.Batch*MaxSize)
	oob := make([]byte, cfg.Batch*oobLen)
	r.msgs = make([]ipv4.Message, cfg.Batch)
	for i := range r.msgs {
		r.msgs[i].Buffers = [][]byte{buf[i*MaxSize : (i+1)*MaxSize]}
		r.msgs[i].OOB = oob[i*oobLen : (i+1)*oobLen]
	}
	return r, nil
}

// Addr is the bound address.
func (r *Receiver) Addr() *net.UDPAddr { return r.conn.LocalAddr().(*net.UDPAddr) }

// Close releases the socket (Run closes it too).
func (r *Receiver) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return r.conn.Close()
}

// Run counts until the idle timeout after the first packet, the duration or
// ctx ends it, closes the socket and returns the counts.
func (r *Receiver) Run(ctx context.Context) (RecvResult, error) {
	defer r.Close()
	end := time.Now().Add(r.cfg.Duration)
	stop := context.AfterFunc(ctx, func() { _ = r.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		dl := end
		if !r.first.IsZero() && r.last.Add(r.cfg.Idle).Before(dl) {
			dl = r.last.Add(r.cfg.Idle)
		}
		if ctx.Err() != nil {
			return r.finish("cancelled"), nil
		}
		if err := r.conn.SetReadDeadline(dl); err != nil {
			return r.finish("error"), fmt.Errorf("pktgen: recv: %w", err)
		}
		if ctx.Err() != nil { // cancelled before the deadline above replaced the cancelling one
			return r.finish("cancelled"), nil
		}
		n, err := r.pc.ReadBatch(r.msgs, 0)
		if n > 0 {
			r.count(r.msgs[:n])
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				switch {
				case ctx.Err() != nil:
					return r.finish("cancelled"), nil
				case r.first.IsZero() || !time.Now().Before(end):
					return r.finish("duration"), nil
				case time.Since(r.last) >= r.cfg.Idle:
					return r.finish("idle"), nil
				}
				continue
			}
			r.res.ReadErrors++ // e.g. ECONNREFUSED queued by an ICMP error
			if r.res.ReadErrors > 1000 {
				return r.finish("error"), fmt.Errorf("pktgen: recv: %w", err)
			}
		}
	}
}

func (r *Receiver) count(ms []ipv4.Message) {
	now := time.Now()
	if r.first.IsZero() {
		r.first = now
	}
	r.last = now
	for i := range ms {
		b := ms[i].Buffers[0][:ms[i].N]
		seq, id, ok := parseHeader(b)
		if !ok {
			r.res.Foreign++
			continue
		}
		t := r.seqs[id]
		if t == nil {
			if len(r.seqs) >= 1024 { // not a stream of ours; do not grow without bound
				r.res.Foreign++
				continue
			}
			t = &seqTracker{}
			r.seqs[id] = t
		}
		t.add(seq)
		r.res.Packets++
		r.res.Bytes += uint64(len(b))
	}
	if r.ovfl {
		if d, ok := rxqOvfl(ms[len(ms)-1].OOB[:ms[len(ms)-1].NN]); ok {
			r.res.KernelDrops = uint64(d)
		}
	}
}

func (r *Receiver) finish(why string) RecvResult {
	res := r.res
	res.Stopped = why
	if r.first.IsZero() {
		res.Stopped = "nothing received"
	}
	res.Streams = len(r.seqs)
	var expected uint64
	for _, t := range r.seqs {
		res.Lost += t.lost()
		res.Reordered += t.reordered
		res.Duplicates += t.duplicates
		res.Late += t.late
		expected += t.highest + 1
	}
	if expected > 0 {
		res.LossPct = float64(res.Lost) / float64(expected) * 100
	}
	if d, ok := socketDrops(r.conn); ok {
		res.KernelDropsSource = "/proc/net/udp drops of the socket"
		res.KernelDrops = max(res.KernelDrops, d)
	}
	res.Seconds = r.last.Sub(r.first).Seconds()
	if res.Seconds > 0 {
		res.PPS = float64(res.Packets) / res.Seconds
	}
	return res
}
