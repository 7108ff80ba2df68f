package traffic

import (
	"strings"
	"testing"
	"time"
)

// synthetic drives a tracker with probes sent every interval from t0.
type synthetic struct {
	t        *testing.T
	tr       *tracker
	t0       time.Time
	interval time.Duration
}

func newSynthetic(t *testing.T, limit uint64, interval, bucket time.Duration) *synthetic {
	return &synthetic{t: t, tr: newTracker(limit, bucket, 0), t0: time.Unix(1_700_000_000, 0), interval: interval}
}

// send sends n probes on schedule.
func (s *synthetic) send(n int) {
	s.t.Helper()
	for range n {
		seq := s.tr.sent
		if _, _, ok := s.tr.nextSend(s.at(seq)); !ok {
			s.t.Fatalf("nextSend %d refused", seq)
		}
	}
}

func (s *synthetic) at(seq uint64) time.Time { return s.t0.Add(time.Duration(seq) * s.interval) }

// recv receives the given seqs, each 10ms after it was sent.
func (s *synthetic) recv(seqs ...uint64) {
	for _, q := range seqs {
		s.tr.recv(q, int64(time.Duration(q)*s.interval), 100, s.at(q).Add(10*time.Millisecond))
	}
}

func (s *synthetic) recvRange(from, to uint64) { // [from, to)
	for q := from; q < to; q++ {
		s.recv(q)
	}
}

func (s *synthetic) result() Result {
	var r Result
	s.tr.fill(&r)
	return r
}

func checkCounts(t *testing.T, r Result, sent, received, lost, reordered, dups uint64) {
	t.Helper()
	if r.Sent != sent || r.Received != received || r.Lost != lost || r.Reordered != reordered || r.Duplicates != dups {
		t.Fatalf("sent/received/lost/reordered/dups = %d/%d/%d/%d/%d, want %d/%d/%d/%d/%d",
			r.Sent, r.Received, r.Lost, r.Reordered, r.Duplicates, sent, received, lost, reordered, dups)
	}
}

func checkGap(t *testing.T, s *synthetic, r Result, from, to uint64) {
	t.Helper()
	want := time.Duration(to-from) * s.interval
	if r.MaxGap != want || !r.MaxGapFrom.Equal(s.at(from)) || !r.MaxGapTo.Equal(s.at(to)) {
		t.Fatalf("MaxGap %v from +%v to +%v, want %v from seq %d (+%v) to seq %d (+%v)",
			r.MaxGap, r.MaxGapFrom.Sub(s.t0), r.MaxGapTo.Sub(s.t0), want, from, s.at(from).Sub(s.t0), to, s.at(to).Sub(s.t0))
	}
}

func TestAccountingNoLoss(t *testing.T) {
	s := newSynthetic(t, 100, 50*time.Millisecond, 100*time.Millisecond)
	s.send(20)
	s.recvRange(0, 20)
	r := s.result()
	checkCounts(t, r, 20, 20, 0, 0, 0)
	if r.MaxGap != s.interval {
		t.Fatalf("MaxGap without loss = %v, want one interval (%v)", r.MaxGap, s.interval)
	}
	if !r.Start.Equal(s.t0) || !r.End.Equal(s.at(19)) {
		t.Fatalf("Start/End = +%v/+%v, want +0/+%v", r.Start.Sub(s.t0), r.End.Sub(s.t0), s.at(19).Sub(s.t0))
	}
	if r.LossPct != 0 || r.Bytes != 2000 || r.AvgDelay != 10*time.Millisecond || r.MaxDelay != 10*time.Millisecond {
		t.Fatalf("LossPct %v Bytes %d delay %v/%v", r.LossPct, r.Bytes, r.AvgDelay, r.MaxDelay)
	}
	if len(r.Series) != 10 || r.BucketWidth != 100*time.Millisecond {
		t.Fatalf("%d buckets of %v, want 10 of 100ms", len(r.Series), r.BucketWidth)
	}
	for i, b := range r.Series {
		if b.Sent != 2 || b.Received != 2 || !b.Start.Equal(s.t0.Add(time.Duration(i)*100*time.Millisecond)) {
			t.Fatalf("bucket %d = %+v", i, b)
		}
	}
}

func TestAccountingGaps(t *testing.T) {
	const n = 20
	iv := 50 * time.Millisecond
	for _, tc := range []struct {
		name     string
		received func(s *synthetic)
		lost     uint64
		from, to uint64 // seqs bounding MaxGap
	}{
		{"middle", func(s *synthetic) { s.recvRange(0, 5); s.recvRange(10, n) }, 5, 4, 10},
		{"two outages, longer second", func(s *synthetic) { s.recvRange(0, 3); s.recvRange(5, 8); s.recvRange(12, n) }, 2 + 4, 7, 12},
		{"start", func(s *synthetic) { s.recvRange(3, n) }, 3, 0, 3},
		{"end", func(s *synthetic) { s.recvRange(0, 16) }, 4, 15, n - 1},
		{"everything", func(s *synthetic) {}, n, 0, n - 1},
		{"only the ends", func(s *synthetic) { s.recv(0, n-1) }, n - 2, 0, n - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSynthetic(t, 100, iv, 100*time.Millisecond)
			s.send(n)
			tc.received(s)
			r := s.result()
			checkCounts(t, r, n, n-tc.lost, tc.lost, 0, 0)
			checkGap(t, s, r, tc.from, tc.to)
			if want := 100 * float64(tc.lost) / n; r.LossPct != want {
				t.Fatalf("LossPct %v, want %v", r.LossPct, want)
			}
		})
	}
}

func TestAccountingEmpty(t *testing.T) {
	s := newSynthetic(t, 100, 50*time.Millisecond, 100*time.Millisecond)
	r := s.result()
	checkCounts(t, r, 0, 0, 0, 0, 0)
	if r.MaxGap != 0 || !r.Start.IsZero() || r.Series != nil || r.LossPct != 0 {
		t.Fatalf("empty flow: %+v", r)
	}
	s.send(1)
	s.recv(0)
	if r = s.result(); r.MaxGap != 0 || r.Received != 1 {
		t.Fatalf("one probe: MaxGap %v Received %d", r.MaxGap, r.Received)
	}
}

func TestAccountingReorderDuplicates(t *testing.T) {
	s := newSynthetic(t, 100, 10*time.Millisecond, 100*time.Millisecond)
	s.send(10)
	// 3 overtakes 2 (2 reordered), 6 overtakes 5 (5 reordered), then
	// copies of 5 and 2, 0 late after everything (reordered), 1 twice more.
	s.recv(1, 3, 2, 4, 6, 5, 5, 2, 7, 8, 9, 0, 1, 1)
	r := s.result()
	checkCounts(t, r, 10, 10, 0, 3, 4)
	if r.Bytes != 14*100 {
		t.Fatalf("Bytes %d, want 1400 (duplicates included)", r.Bytes)
	}
	// A late probe counts once however many overtook it.
	s = newSynthetic(t, 100, 10*time.Millisecond, 100*time.Millisecond)
	s.send(6)
	s.recv(1, 2, 3, 4, 5, 0)
	checkCounts(t, s.result(), 6, 6, 0, 1, 0)
}

func TestAccountingIgnoresBogus(t *testing.T) {
	s := newSynthetic(t, 100, 10*time.Millisecond, 100*time.Millisecond)
	s.send(5)
	s.tr.recv(5, int64(50*time.Millisecond), 100, s.at(5)) // not sent yet
	s.tr.recv(2, int64(21*time.Millisecond), 100, s.at(3)) // wrong send time
	s.tr.recv(1<<40, 0, 100, s.at(3))                      // far out
	r := s.result()
	checkCounts(t, r, 5, 0, 5, 0, 0)
	if s.tr.invalid != 3 || r.Bytes != 0 {
		t.Fatalf("invalid %d bytes %d, want 3 0", s.tr.invalid, r.Bytes)
	}
}

func TestAccountingLateProbeCountsInItsSendBucket(t *testing.T) {
	s := newSynthetic(t, 100, 50*time.Millisecond, 100*time.Millisecond)
	s.send(6) // buckets 0..2, two probes each
	s.tr.recv(0, 0, 10, s.at(5).Add(time.Second))
	s.recv(4)
	r := s.result()
	want := []uint64{1, 0, 1}
	for i, b := range r.Series {
		if b.Sent != 2 || b.Received != want[i] {
			t.Fatalf("bucket %d = sent %d received %d, want 2 %d", i, b.Sent, b.Received, want[i])
		}
	}
	if r.MaxDelay != time.Second+250*time.Millisecond {
		t.Fatalf("MaxDelay %v, want 1.25s", r.MaxDelay)
	}
}

// Spanning several chunks of per-probe state; the gap crosses a boundary.
func TestAccountingChunks(t *testing.T) {
	s := newSynthetic(t, MaxProbes, time.Millisecond, 100*time.Millisecond)
	s.send(3 * chunkSize)
	s.recvRange(0, chunkSize-3)
	s.recvRange(chunkSize+5, 3*chunkSize)
	r := s.result()
	checkCounts(t, r, 3*chunkSize, 3*chunkSize-8, 8, 0, 0)
	checkGap(t, s, r, chunkSize-4, chunkSize+5)
}

func TestAccountingLimit(t *testing.T) {
	s := newSynthetic(t, 5, time.Millisecond, time.Millisecond)
	s.send(5)
	if _, _, ok := s.tr.nextSend(s.at(5)); ok {
		t.Fatal("sent a probe beyond the limit")
	}
	if tr := newTracker(MaxProbes+1000, time.Second, 0); tr.limit != MaxProbes || len(tr.chunks) != maxChunks {
		t.Fatalf("limit %d, %d chunk slots", tr.limit, len(tr.chunks))
	}
}

// More than maxBuckets buckets: the width doubles, totals are kept.
func TestAccountingSeriesCoarsens(t *testing.T) {
	s := newSynthetic(t, MaxProbes, 10*time.Millisecond, time.Millisecond)
	const n = 10_000 // 100 s = 100,000 buckets of 1ms
	s.send(n)
	for q := uint64(0); q < n; q += 2 {
		s.recv(q)
	}
	r := s.result()
	if r.BucketWidth != 2*time.Millisecond || len(r.Series) > maxBuckets {
		t.Fatalf("%d buckets of %v, want <= %d of 2ms", len(r.Series), r.BucketWidth, maxBuckets)
	}
	var sent, received uint64
	for i, b := range r.Series {
		sent += b.Sent
		received += b.Received
		if !b.Start.Equal(s.t0.Add(time.Duration(i) * r.BucketWidth)) {
			t.Fatalf("bucket %d starts at +%v", i, b.Start.Sub(s.t0))
		}
	}
	if sent != n || received != n/2 {
		t.Fatalf("series totals %d/%d, want %d/%d", sent, received, n, n/2)
	}
	// The probe at 50 s is in bucket 25,000 (2ms buckets).
	if b := r.Series[25_000]; b.Sent != 1 || b.Received != 1 {
		t.Fatalf("bucket at 50s: %+v", b)
	}
}

func TestWaitAll(t *testing.T) {
	s := newSynthetic(t, 100, time.Millisecond, time.Millisecond)
	s.send(3)
	s.recv(0, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		s.recv(2)
	}()
	t0 := time.Now()
	s.tr.waitAll(30 * time.Second)
	if d := time.Since(t0); d > 20*time.Second {
		t.Fatalf("waitAll did not return when the last probe arrived (%v)", d)
	}
	s.send(1) // never received
	t0 = time.Now()
	s.tr.waitAll(100 * time.Millisecond)
	if d := time.Since(t0); d < 100*time.Millisecond {
		t.Fatalf("waitAll returned after %v with a probe missing", d)
	}
}

func TestSpecValidation(t *testing.T) {
	dst := mustAddr("127.0.0.1")
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Proto: "sctp", Dst: dst}, "unknown protocol"},
		{Spec{Proto: "udp"}, "not a unicast address"},
		{Spec{Proto: "udp", Dst: mustAddr("0.0.0.0")}, "not a unicast address"},
		{Spec{Proto: "udp", Dst: dst, Src: mustAddr("::1")}, "different address families"},
		{Spec{Proto: "udp", Dst: dst, Rate: -1}, "rate"},
		{Spec{Proto: "udp", Dst: dst, Rate: 1e9}, "rate"},
		{Spec{Proto: "udp", Dst: dst, Size: 10}, "size 10"},
		{Spec{Proto: "udp", Dst: dst, Size: 100_000}, "size 100000"},
		{Spec{Proto: "udp", Dst: dst, Count: -1}, "negative"},
		{Spec{Proto: "udp", Dst: dst, Bucket: time.Microsecond}, "bucket"},
		{Spec{Proto: "udp", Dst: dst, Count: MaxProbes + 1}, "limit of 1000000"},
		{Spec{Proto: "udp", Dst: dst, Rate: 1000, Duration: 1001 * time.Second}, "limit of 1000000"},
	} {
		if _, err := normalize(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.spec, err, tc.want)
		}
	}
	// At the bound is fine, and so is a Count limiting a long Duration.
	for _, sp := range []Spec{
		{Proto: "udp", Dst: dst, Rate: 1000, Duration: 1000 * time.Second},
		{Proto: "udp", Dst: dst, Rate: 1000, Duration: time.Hour, Count: 10},
	} {
		if _, err := normalize(sp); err != nil {
			t.Errorf("%+v: %v", sp, err)
		}
	}
	s, err := normalize(Spec{Proto: "icmp", Dst: mustAddr("::ffff:10.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if s.Rate != 20 || s.Size != 64 || s.Bucket != 100*time.Millisecond || s.Dst != mustAddr("10.0.0.1") || s.Name != "icmp *->10.0.0.1" {
		t.Fatalf("defaults: %+v", s)
	}
	if n := planned(Spec{Rate: 20, Duration: time.Second}); n != 20 {
		t.Fatalf("planned(20/s for 1s) = %d, want 20", n)
	}
}
