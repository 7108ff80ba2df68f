package wanem

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// Every impairment's measured effect between two namespaces through the
// forwarder. Random choices use fixed seeds (Config.Seed 42), so the counts
// are the same on every run; the bounds are statistical checks of the model.

func TestDelayAsymmetricAndSetWhileRunning(t *testing.T) {
	tl := newTestLab(t, Options{})
	tl.set(t, Impairment{Delay: 100 * time.Millisecond}, Impairment{Delay: 100 * time.Millisecond})
	rtt, got := tl.ping(t, 8, "0.1", 56)
	t.Logf("100 ms each way: rtt min/avg/max %v/%v/%v", rtt[0], rtt[1], rtt[2])
	// Bounds on the minimum RTT: the host's scheduling only adds to a
	// round trip, so the minimum is the forwarder's delay plus the least
	// of that noise.
	if got != 8 || rtt[0] < 199*time.Millisecond || rtt[0] > 215*time.Millisecond {
		t.Fatalf("100 ms each way: received %d/8, rtt %v, want ~200 ms", got, rtt)
	}
	// Asymmetric: only a->b is slow.
	tl.set(t, Impairment{Delay: 100 * time.Millisecond}, Impairment{})
	rtt, got = tl.ping(t, 8, "0.1", 56)
	t.Logf("100 ms a->b only: rtt %v", rtt[:3])
	if got != 8 || rtt[0] < 99*time.Millisecond || rtt[0] > 115*time.Millisecond {
		t.Fatalf("asymmetric: received %d/8, rtt %v, want ~100 ms", got, rtt)
	}
	tl.set(t, Impairment{}, Impairment{})
	rtt, _ = tl.ping(t, 5, "0.05", 56)
	if rtt[0] > 10*time.Millisecond {
		t.Fatalf("no impairment: rtt %v", rtt)
	}
	ab, ba := tl.counters()
	if ab.Delayed < 16 || ba.Delayed < 8 {
		t.Fatalf("delayed counters a->b %d b->a %d", ab.Delayed, ba.Delayed)
	}
}

func TestJitterDistributions(t *testing.T) {
	tl := newTestLab(t, Options{})
	for _, dist := range []string{"uniform", "normal"} {
		im := Impairment{Delay: 50 * time.Millisecond, Jitter: 20 * time.Millisecond, Distribution: dist}
		tl.set(t, im, im)
		rtt, got := tl.ping(t, 40, "0.02", 56)
		t.Logf("%s: rtt min/avg/max/mdev %v", dist, rtt)
		// The model's mean and spread are TestLatencyDistributions'
		// (exact); here: the round trips spread, and average at least the
		// two delays less a little (scheduling only adds).
		if got != 40 || rtt[1] < 85*time.Millisecond || rtt[3] < 5*time.Millisecond {
			t.Fatalf("%s jitter: received %d, rtt %v: want avg >= ~100 ms with spread", dist, got, rtt)
		}
		// The model's exact range is TestLatencyDistributions'; here the
		// round trip (two draws from [30, 70] ms) can only be longer
		// than 60 ms, by the hosts' scheduling (unbounded under load).
		if dist == "uniform" && rtt[0] < 59*time.Millisecond {
			t.Fatalf("uniform jitter: a round trip of %v below 60 ms", rtt[0])
		}
	}
	if err := tl.f.Set(Config{Paths: []Path{{A: leftIP, B: rightIP, AtoB: Impairment{Jitter: time.Millisecond, Distribution: "pareto"}}}}); err == nil ||
		!strings.Contains(err.Error(), `unknown jitter distribution "pareto" (known: uniform, normal)`) {
		t.Fatalf("unknown distribution: %v", err)
	}
}

func TestLossIndependent(t *testing.T) {
	tl := newTestLab(t, Options{})
	tl.set(t, Impairment{Loss: 0.10}, Impairment{})
	sink := tl.udpSink(t, 5001)
	const n = 3000
	sendNumbered(t, tl.udpSender(t, 5001), n, 200, 100, 2*time.Millisecond)
	got := len(sink.collect(300 * time.Millisecond))
	ab, _ := tl.counters()
	sd := math.Sqrt(n * 0.1 * 0.9)
	t.Logf("sent %d, received %d, dropped by loss %d (expected %d ± %.0f)", n, got, ab.DroppedLoss, n/10, 5*sd)
	if got+int(ab.DroppedLoss) != n {
		t.Fatalf("received %d + dropped %d != sent %d", got, ab.DroppedLoss, n)
	}
	if math.Abs(float64(ab.DroppedLoss)-n*0.1) > 5*sd {
		t.Fatalf("dropped %d of %d: not ~10%%", ab.DroppedLoss, n)
	}
}

func TestLossGilbertElliott(t *testing.T) {
	tl := newTestLab(t, Options{})
	tl.set(t, Impairment{Burst: &GilbertElliott{P: 0.05, R: 0.25}}, Impairment{})
	sink := tl.udpSink(t, 5002)
	const n = 4000
	sendNumbered(t, tl.udpSender(t, 5002), n, 200, 100, 2*time.Millisecond)
	seen := make([]bool, n)
	for _, b := range sink.collect(300 * time.Millisecond) {
		seen[seqOf(b)] = true
	}
	lost, bursts := 0, 0
	for i := range seen {
		if !seen[i] {
			lost++
			if i == 0 || seen[i-1] {
				bursts++
			}
		}
	}
	ab, _ := tl.counters()
	share, mean := float64(lost)/n, float64(lost)/float64(max(bursts, 1))
	t.Logf("lost %d of %d (%.3f, model p/(p+r) = 0.167) in %d bursts (mean length %.2f, model 1/r = 4)", lost, n, share, bursts, mean)
	if uint64(lost) != ab.DroppedLoss {
		t.Fatalf("receiver misses %d, counter says %d", lost, ab.DroppedLoss)
	}
	if share < 0.11 || share > 0.23 || mean < 3 || mean > 5.5 {
		t.Fatalf("burst loss share %.3f, mean burst %.2f: not the model's", share, mean)
	}
}

func TestReorder(t *testing.T) {
	tl := newTestLab(t, Options{})
	tl.set(t, Impairment{Reorder: 0.1, ReorderGap: 3}, Impairment{})
	sink := tl.udpSink(t, 5003)
	const n = 2000
	sendNumbered(t, tl.udpSender(t, 5003), n, 50, 50, time.Millisecond)
	got := sink.collect(500 * time.Millisecond)
	late, highest := 0, -1
	for _, b := range got {
		if s := seqOf(b); s < highest {
			late++
		} else {
			highest = s
		}
	}
	ab, _ := tl.counters()
	t.Logf("received %d of %d, %d arrived after a higher number; reordered counter %d", len(got), n, late, ab.Reordered)
	if len(got) != n || late == 0 || uint64(late) != ab.Reordered {
		t.Fatalf("received %d/%d, late %d, counter %d", len(got), n, late, ab.Reordered)
	}
	if math.Abs(float64(late)-n*0.1) > 5*math.Sqrt(n*0.09) {
		t.Fatalf("reordered %d of %d: not ~10%%", late, n)
	}
}

func TestDuplicateAndCorrupt(t *testing.T) {
	tl := newTestLab(t, Options{})
	tl.set(t, Impairment{Duplicate: 0.05, Corrupt: 0.05}, Impairment{})
	sink := tl.udpSink(t, 5004)
	const n, size = 2000, 300
	sendNumbered(t, tl.udpSender(t, 5004), n, size, 100, 2*time.Millisecond)
	got := sink.collect(300 * time.Millisecond)
	count := map[int]int{}
	bad, dups := 0, 0
	for _, b := range got {
		s := seqOf(b)
		ok := len(b) == size
		for j := 4; ok && j < size; j++ {
			ok = b[j] == byte(s+j)
		}
		if count[s]++; count[s] == 2 {
			dups++
		}
		if !ok && count[s] == 1 {
			bad++
		}
	}
	ab, _ := tl.counters()
	t.Logf("received %d, %d distinct; %d duplicated (counter %d), %d corrupted (counter %d)", len(got), len(count), dups, ab.Duplicated, bad, ab.Corrupted)
	if len(count) != n || uint64(dups) != ab.Duplicated || uint64(bad) != ab.Corrupted || dups == 0 || bad == 0 {
		t.Fatalf("distinct %d/%d, dups %d/%d, corrupted %d/%d", len(count), n, dups, ab.Duplicated, bad, ab.Corrupted)
	}
}

func TestRateBitsAndPackets(t *testing.T) {
	tl := newTestLab(t, Options{})
	for _, tc := range []struct {
		name string
		im   Impairment
		want float64 // per second: bits or packets
		bits bool
	}{
		// A queue of 500 ms: a sender stalled by the machine's load for
		// less than that does not leave the line idle (the rate is a cap
		// on a busy line, which this measures).
		{"20 Mbit/s", Impairment{RateBits: 20_000_000, RateQueue: 500 * time.Millisecond}, 20e6, true},
		{"1000 packets/s", Impairment{RatePackets: 1000, RateQueue: 500 * time.Millisecond}, 1000, false},
	} {
		tl.set(t, tc.im, Impairment{})
		sink := tl.udpSink(t, 5005)
		c := tl.udpSender(t, 5005)
		// About three times the rate for 2 s: bursts every 5 ms.
		const size, dur = 972, 2 * time.Second // 1000-byte IP packets
		perBurst := int(tc.want * 3 * 0.005)
		if tc.bits {
			perBurst = int(tc.want * 3 * 0.005 / 8000)
		}
		start := time.Now()
		sent := 0
		for time.Since(start) < dur {
			sendNumbered(t, c, perBurst, size, 0, 0)
			sent += perBurst
			time.Sleep(5 * time.Millisecond)
		}
		got := sink.collect(300 * time.Millisecond)
		el := time.Since(start).Seconds() - 0.3 // until the last arrival (the queue drains after the sender stops)
		rate := float64(len(got)) / el
		if tc.bits {
			rate = float64(len(got)) * 1000 * 8 / el
		}
		ab, _ := tl.counters()
		t.Logf("%s: sent %d in %.2fs, received %d: %.0f/s; dropped by rate %d", tc.name, sent, el, len(got), rate, ab.DroppedRate)
		if rate < tc.want*0.85 || rate > tc.want*1.1 || ab.DroppedRate == 0 {
			t.Fatalf("%s: measured %.0f/s", tc.name, rate)
		}
		if tc.bits { // the kernel shapes it: htb class and tbf on lb
			out, err := tl.wan.Run(context.Background(), "tc", "-s", "qdisc", "show", "dev", "lb")
			if err != nil || !strings.Contains(string(out), "qdisc tbf") || !strings.Contains(string(out), "rate 20Mbit") {
				t.Fatalf("no tbf at 20Mbit on lb: %v\n%s", err, out)
			}
		}
		sink.conn.Close()
		c.Close()
	}
	// Without a bit rate the forwarder's htb is gone again.
	tl.set(t, Impairment{}, Impairment{})
	if out, _ := tl.wan.Run(context.Background(), "tc", "qdisc", "show", "dev", "lb"); strings.Contains(string(out), "htb") || strings.Contains(string(out), "tbf") {
		t.Fatalf("htb/tbf left on lb:\n%s", out)
	}
}

func TestMTUWithICMPTeachesPMTU(t *testing.T) {
	tl := newTestLab(t, Options{})
	tl.set(t, Impairment{MTU: 1200}, Impairment{})
	sink := tl.udpSink(t, 5006)
	c := tl.udpSender(t, 5006)
	sendNumbered(t, c, 1, 1400, 0, 0) // 1428 bytes with DF: dropped, ICMP back
	time.Sleep(200 * time.Millisecond)
	out, err := tl.left.Run(context.Background(), "ip", "route", "get", rightIP.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sender's route after the ICMP: %s", strings.TrimSpace(string(out)))
	if !strings.Contains(string(out), "mtu 1200") {
		t.Fatalf("the sender did not learn the path MTU: %s", out)
	}
	// The connected socket is told once (EMSGSIZE, the queued ICMP error);
	// then the sender fragments to 1200 and the datagram gets through.
	if _, err := c.Write(make([]byte, 1400)); err == nil || !strings.Contains(err.Error(), "message too long") {
		t.Logf("first write after the ICMP: %v (expected the reported EMSGSIZE)", err)
	}
	sendNumbered(t, c, 1, 1400, 0, 0)
	got := sink.collect(300 * time.Millisecond)
	ab, _ := tl.counters()
	if len(got) != 1 || len(got[0]) != 1400 || ab.ICMPSent != 1 || ab.DroppedMTU != 1 {
		t.Fatalf("received %d datagrams; icmp sent %d, dropped by mtu %d", len(got), ab.ICMPSent, ab.DroppedMTU)
	}
}

func TestMTUSilentDrop(t *testing.T) {
	tl := newTestLab(t, Options{})
	tl.set(t, Impairment{MTU: 1200, MTUMode: "drop"}, Impairment{})
	sink := tl.udpSink(t, 5007)
	c := tl.udpSender(t, 5007)
	for i := 0; i < 5; i++ {
		sendNumbered(t, c, 1, 1400, 0, 0)
		sendNumbered(t, c, 1, 500, 0, 0)
	}
	got := sink.collect(300 * time.Millisecond)
	for _, b := range got {
		if len(b) != 500 {
			t.Fatalf("a %d-byte datagram passed an MTU of 1200", len(b))
		}
	}
	out, _ := tl.left.Run(context.Background(), "ip", "route", "get", rightIP.String())
	ab, _ := tl.counters()
	if len(got) != 5 || ab.DroppedMTU != 5 || ab.ICMPSent != 0 || strings.Contains(string(out), "mtu") {
		t.Fatalf("received %d small ones; dropped %d, icmp %d; route %s", len(got), ab.DroppedMTU, ab.ICMPSent, out)
	}
}

func TestQueueBoundAndStop(t *testing.T) {
	tl := newTestLab(t, Options{QueueLimit: 16})
	tl.set(t, Impairment{Delay: 300 * time.Millisecond}, Impairment{})
	sink := tl.udpSink(t, 5008)
	sendNumbered(t, tl.udpSender(t, 5008), 100, 100, 0, 0)
	got := sink.collect(600 * time.Millisecond)
	ab, _ := tl.counters()
	t.Logf("queue of 16: received %d of 100, dropped by the queue bound %d", len(got), ab.DroppedQueue)
	if len(got) > 16 || len(got)+int(ab.DroppedQueue) != 100 {
		t.Fatalf("received %d, queue drops %d", len(got), ab.DroppedQueue)
	}
	// Stop gives the path back to the kernel.
	if err := tl.f.Stop(); err != nil {
		t.Fatal(err)
	}
	rtt, n := tl.ping(t, 3, "0.05", 56)
	if n != 3 || rtt[1] > 20*time.Millisecond {
		t.Fatalf("after Stop: received %d, rtt %v", n, rtt)
	}
	if out, _ := tl.wan.Run(context.Background(), "nft", "list", "tables"); strings.Contains(string(out), "wanem") {
		t.Fatalf("table inet wanem left behind: %s", out)
	}
}
