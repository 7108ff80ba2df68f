package pktgen

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"
)

// listen starts a receiver on loopback and returns its address and a channel
// with its result.
func listen(t *testing.T, idle, dur time.Duration) (string, <-chan RecvResult) {
	t.Helper()
	r, err := Listen(RecvConfig{Addr: "127.0.0.1:0", Idle: idle, Duration: dur})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan RecvResult, 1)
	go func() {
		res, err := r.Run(context.Background())
		if err != nil {
			t.Error(err)
		}
		ch <- res
	}()
	return r.Addr().String(), ch
}

// 200,000 packets at 100,000/s over loopback arrive complete, in order.
func TestLoopbackExact(t *testing.T) {
	addr, ch := listen(t, time.Second, 20*time.Second)
	const n, size = 200_000, 64
	sres, err := Send(context.Background(), SendConfig{Dst: addr, Size: size, Count: n, Duration: 15 * time.Second, Rate: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	if sres.Packets != n || sres.Bytes != n*size || sres.Stopped != "count" {
		t.Fatalf("sent %+v, want %d packets, %d bytes, stopped by count", sres, n, n*size)
	}
	if sres.Seconds < 1.9 {
		t.Errorf("sent %d packets at 100,000/s in %.2f s: the rate limit did not hold", n, sres.Seconds)
	}
	rres := <-ch
	if rres.Packets != n || rres.Bytes != n*size || rres.Lost != 0 || rres.Reordered != 0 || rres.Duplicates != 0 || rres.Foreign != 0 || rres.Streams != 1 {
		t.Fatalf("received %+v, want exactly %d packets, %d bytes, 1 stream, nothing lost/reordered/duplicated", rres, n, n*size)
	}
	if rres.Stopped != "idle" || rres.KernelDropsSource != "/proc/net/udp drops of the socket" || rres.KernelDrops != 0 {
		t.Errorf("receiver stopped %q, kernel drops %d from %q; want idle, 0 from /proc/net/udp", rres.Stopped, rres.KernelDrops, rres.KernelDropsSource)
	}
	t.Logf("sent %.0f packets/s, received %.0f packets/s over %.2f s, rcvbuf %d (forced %v)", sres.PPS, rres.PPS, rres.Seconds, rres.RcvBuf, rres.RcvBufForced)
}

// Several streams use distinct source ports and are counted apart.
func TestStreams(t *testing.T) {
	addr, ch := listen(t, time.Second, 20*time.Second)
	sres, err := Send(context.Background(), SendConfig{Dst: addr, Size: 512, Count: 30_001, Duration: 10 * time.Second, Rate: 60_000, Streams: 3})
	if err != nil {
		t.Fatal(err)
	}
	rres := <-ch
	if sres.Packets != 30_001 || rres.Packets != 30_001 || rres.Streams != 3 || rres.Lost != 0 || rres.Bytes != 30_001*512 {
		t.Fatalf("sent %+v\nreceived %+v\nwant 30001 packets of 512 bytes in 3 streams, none lost", sres, rres)
	}
}

// The duration stops a send whose count it would never reach.
func TestDurationBoundsSend(t *testing.T) {
	addr, ch := listen(t, 500*time.Millisecond, 10*time.Second)
	start := time.Now()
	sres, err := Send(context.Background(), SendConfig{Dst: addr, Size: 64, Count: MaxCount, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if sres.Stopped != "duration" || sres.Packets == 0 || sres.Packets >= MaxCount || took > 2*time.Second {
		t.Fatalf("send of %d packets bounded by 300ms: stopped %q after %v with %d packets", uint64(MaxCount), sres.Stopped, took, sres.Packets)
	}
	rres := <-ch
	if rres.Packets == 0 || rres.Packets > sres.Packets {
		t.Fatalf("received %d of %d packets sent", rres.Packets, sres.Packets)
	}
}

// A cancelled context stops the sender too.
func TestCancelStopsSend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	sres, err := Send(ctx, SendConfig{Dst: "127.0.0.1:9", Size: 64, Count: MaxCount, Duration: time.Minute, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if sres.Stopped != "cancelled" || sres.Seconds > 2 {
		t.Fatalf("stopped %q after %.2f s, want cancelled within 2 s", sres.Stopped, sres.Seconds)
	}
}

// The receiver's hard duration ends a wait for packets that never come.
func TestRecvDurationWithoutPackets(t *testing.T) {
	_, ch := listen(t, time.Second, 200*time.Millisecond)
	select {
	case res := <-ch:
		if res.Stopped != "nothing received" || res.Packets != 0 {
			t.Fatalf("result %+v, want stopped \"nothing received\", 0 packets", res)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("receiver did not stop after its 200ms duration")
	}
}

func TestBadArguments(t *testing.T) {
	ok := SendConfig{Dst: "127.0.0.1:9", Size: 64, Count: 10, Duration: time.Second}
	for _, tc := range []struct {
		mod  func(*SendConfig)
		want string
	}{
		{func(c *SendConfig) { c.Dst = "" }, "no destination address"},
		{func(c *SendConfig) { c.Size = 15 }, "size 15 out of range"},
		{func(c *SendConfig) { c.Size = 70000 }, "size 70000 out of range"},
		{func(c *SendConfig) { c.Count = 0 }, "count must be > 0"},
		{func(c *SendConfig) { c.Count = MaxCount + 1 }, "above the cap of 100000000 packets"},
		{func(c *SendConfig) { c.Duration = 0 }, "duration must be > 0"},
		{func(c *SendConfig) { c.Duration = 11 * time.Minute }, "above the cap of 10m0s"},
		{func(c *SendConfig) { c.Rate = -1 }, "rate -1 packets/s out of range"},
		{func(c *SendConfig) { c.Streams = 65 }, "streams 65 out of range"},
		{func(c *SendConfig) { c.Streams = 11 }, "11 streams but only 10 packets"},
		{func(c *SendConfig) { c.Batch = 2000 }, "batch 2000 out of range"},
		{func(c *SendConfig) { c.Dst = "nonsense" }, `destination "nonsense"`},
	} {
		c := ok
		tc.mod(&c)
		_, err := Send(context.Background(), c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Send(%+v) = %v, want an error with %q", c, err, tc.want)
		}
	}
	rok := RecvConfig{Addr: "127.0.0.1:0", Idle: time.Second, Duration: time.Second}
	for _, tc := range []struct {
		mod  func(*RecvConfig)
		want string
	}{
		{func(c *RecvConfig) { c.Idle = 0 }, "idle timeout must be > 0"},
		{func(c *RecvConfig) { c.Duration = 0 }, "duration must be > 0"},
		{func(c *RecvConfig) { c.Duration = time.Hour }, "above the cap of 10m0s"},
		{func(c *RecvConfig) { c.RcvBuf = -1 }, "receive buffer -1 out of range"},
		{func(c *RecvConfig) { c.Addr = "127.0.0.1:99999" }, `address "127.0.0.1:99999"`},
	} {
		c := rok
		tc.mod(&c)
		r, err := Listen(c)
		if err == nil {
			r.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Listen(%+v) = %v, want an error with %q", c, err, tc.want)
		}
	}
}

// The send loop allocates nothing per batch (and so nothing per packet).
func TestSendLoopAllocs(t *testing.T) {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	dst := sink.LocalAddr().(*net.UDPAddr)
	cfg := SendConfig{Size: 64, Streams: 1, Batch: 64}
	s, err := newStream(dst, 0, cfg, MaxCount)
	if err != nil {
		t.Fatal(err)
	}
	defer s.conn.Close()
	allocs := testing.AllocsPerRun(200, func() { s.sendBatch(64) })
	if allocs != 0 {
		t.Fatalf("sendBatch(64) allocates %.1f times per call, want 0", allocs)
	}
	if s.sent == 0 {
		t.Fatalf("sendBatch sent nothing (errors %d, first %v)", s.errors, s.firstErr)
	}
}

func TestSeqAccounting(t *testing.T) {
	var tr seqTracker
	for _, s := range []uint64{0, 1, 2, 5, 4, 4, 7, 3, 1} {
		tr.add(s)
	}
	// received 0..5 and 7 once each (6 lost); 4 and 3 came after 5 (reordered); 4 and 1 again (duplicates)
	if tr.highest != 7 || tr.unique != 7 || tr.lost() != 1 || tr.reordered != 2 || tr.duplicates != 2 || tr.late != 0 {
		t.Fatalf("tracker %+v lost %d, want highest 7, unique 7, lost 1, reordered 2, duplicates 2", tr, tr.lost())
	}
	tr.add(7 + seqWindow + 10) // a jump past the window
	tr.add(6)                  // far too old to tell: late
	tr.add(7 + seqWindow + 9)  // the window was cleared: reordered, not duplicate
	if tr.late != 1 || tr.reordered != 3 || tr.duplicates != 2 {
		t.Fatalf("after a jump: late %d reordered %d duplicates %d, want 1, 3, 2", tr.late, tr.reordered, tr.duplicates)
	}
	if want := tr.highest + 1 - tr.unique; tr.lost() != want || want != seqWindow+8 {
		t.Fatalf("lost %d, want %d", tr.lost(), seqWindow+8)
	}
}

// The receiver counts gaps, reorders, duplicates and foreign datagrams it reads
// from the socket.
func TestRecvSequenceFromWire(t *testing.T) {
	addr, ch := listen(t, 300*time.Millisecond, 10*time.Second)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := make([]byte, 100)
	for _, s := range []struct {
		seq    uint64
		stream uint32
	}{{0, 0}, {1, 0}, {3, 0}, {2, 0}, {2, 0}, {6, 0}, {0, 9}, {1, 9}} {
		putHeader(b, s.seq, s.stream)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write([]byte("not ours, no header")); err != nil {
		t.Fatal(err)
	}
	res := <-ch
	if res.Packets != 8 || res.Bytes != 800 || res.Streams != 2 || res.Lost != 2 || res.Reordered != 1 || res.Duplicates != 1 || res.Foreign != 1 {
		t.Fatalf("received %+v, want 8 packets, 800 bytes, 2 streams, lost 2 (4, 5), reordered 1, duplicate 1, foreign 1", res)
	}
	if want := 2.0 / 9 * 100; res.LossPct < want-0.01 || res.LossPct > want+0.01 {
		t.Errorf("loss %.3f %%, want %.3f %%", res.LossPct, want)
	}
}

func BenchmarkSendBatch64(b *testing.B) {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	s, err := newStream(sink.LocalAddr().(*net.UDPAddr), 0, SendConfig{Size: 64, Streams: 1, Batch: 64}, MaxCount)
	if err != nil {
		b.Fatal(err)
	}
	defer s.conn.Close()
	b.ReportAllocs()
	for b.Loop() {
		s.sendBatch(64)
	}
	b.ReportMetric(float64(s.sent)/b.Elapsed().Seconds(), "packets/s")
}

// A full receive buffer drops datagrams; the kernel's count accounts for
// exactly the ones not received (drops after the last datagram queued, which
// SO_RXQ_OVFL cannot tell, so the /proc/net/udp column is needed).
func TestKernelDrops(t *testing.T) {
	r, err := Listen(RecvConfig{Addr: "127.0.0.1:0", Idle: 300 * time.Millisecond, Duration: 10 * time.Second, RcvBuf: 4096})
	if err != nil {
		t.Fatal(err)
	}
	// nobody reads yet: most of these overflow the small buffer
	sres, err := Send(context.Background(), SendConfig{Dst: r.Addr().String(), Size: 64, Count: 2000, Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rres, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sres.Packets != 2000 || rres.KernelDrops == 0 || rres.Packets+rres.KernelDrops != 2000 {
		t.Fatalf("sent %d, received %d, kernel drops %d (%s, rcvbuf %d): want received + drops = 2000 with drops > 0",
			sres.Packets, rres.Packets, rres.KernelDrops, rres.KernelDropsSource, rres.RcvBuf)
	}
}

func TestRxqOvflParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		oob  []byte
		want uint32
		ok   bool
	}{
		{"empty", nil, 0, false},
		{"short", make([]byte, 8), 0, false},
		{"length beyond buffer", cmsg(200, 1, 40, 7), 0, false},
		{"other type first", append(cmsg(20, 1, 29, 0), cmsg(20, 1, 40, 1234)...), 1234, true},
		{"rxq_ovfl", cmsg(20, 1, 40, 99), 99, true},
	} {
		got, ok := rxqOvfl(tc.oob)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: rxqOvfl = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// cmsg builds one 64-bit Linux control message (length, level, type, a uint32),
// padded to 8 bytes.
func cmsg(length uint64, level, typ int32, v uint32) []byte {
	b := make([]byte, 24)
	binary.NativeEndian.PutUint64(b[0:], length)
	binary.NativeEndian.PutUint32(b[8:], uint32(level))
	binary.NativeEndian.PutUint32(b[12:], uint32(typ))
	binary.NativeEndian.PutUint32(b[16:], v)
	return b
}
