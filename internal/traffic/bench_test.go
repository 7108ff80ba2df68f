package traffic

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkAccounting is the per-probe bookkeeping alone: one send and one
// receipt.
func BenchmarkAccounting(b *testing.B) {
	b.ReportAllocs()
	tr := newTracker(MaxProbes, 100*time.Millisecond, 0)
	t0 := time.Now()
	for i := 0; b.Loop(); i++ {
		if tr.sent == MaxProbes {
			tr = newTracker(MaxProbes, 100*time.Millisecond, 0)
		}
		now := t0.Add(time.Duration(i) * time.Microsecond)
		seq, ts, _ := tr.nextSend(now)
		tr.recv(seq, ts, 64, now)
	}
}

// BenchmarkFlow is the send and receive path on loopback: probes are sent
// back to back (no pacing); each op is one probe sent and, as far as the
// receiver keeps up, received. Allocations of the receiving goroutines are
// included.
func BenchmarkFlow(b *testing.B) {
	for _, proto := range []string{"udp", "tcp", "icmp"} {
		b.Run(proto, func(b *testing.B) {
			if proto == "icmp" {
				if c, err := rawICMP(netip.Addr{}, loop4); err != nil {
					b.Skipf("icmp needs a raw socket: %v", err)
				} else {
					c.Close()
				}
			}
			b.ReportAllocs()
			var sent, received uint64
			var f *Flow
			begin := func() {
				var err error
				f, err = start(context.Background(), Spec{Proto: proto, Dst: loop4}, true)
				if err != nil {
					b.Fatal(err)
				}
				<-f.ready
			}
			end := func() {
				r := f.Stop(2 * time.Second)
				sent += r.Sent
				received += r.Received
			}
			begin()
			for b.Loop() {
				if f.tr.sent == MaxProbes { // (read by this goroutine only)
					b.StopTimer()
					end()
					begin()
					b.StartTimer()
				}
				f.sendOne(time.Now())
			}
			end()
			if sent > 0 {
				b.ReportMetric(100*float64(sent-received)/float64(sent), "loss%")
			}
		})
	}
}
