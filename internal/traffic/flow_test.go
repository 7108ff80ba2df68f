package traffic

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

var loop4 = mustAddr("127.0.0.1")

func startFlow(t testing.TB, s Spec) *Flow {
	t.Helper()
	f, err := Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(0) })
	return f
}

func waitDone(t testing.TB, f *Flow, d time.Duration) {
	t.Helper()
	select {
	case <-f.Done():
	case <-time.After(d):
		t.Fatalf("flow not done after %v: %+v", d, f.Snapshot())
	}
}

// checkComplete checks a flow that lost nothing: counters, bytes, series.
func checkComplete(t *testing.T, r Result, sent uint64, size int) {
	t.Helper()
	t.Logf("%s: sent %d received %d lost %d reordered %d dups %d gap %v delay avg %v max %v errors %d %s",
		r.Name, r.Sent, r.Received, r.Lost, r.Reordered, r.Duplicates, r.MaxGap, r.AvgDelay, r.MaxDelay, r.Errors, r.LastError)
	if r.Sent != sent || r.Received != sent || r.Lost != 0 || r.Duplicates != 0 || r.Errors != 0 {
		t.Fatalf("sent %d received %d lost %d dups %d errors %d (%s), want %d sent, all received",
			r.Sent, r.Received, r.Lost, r.Duplicates, r.Errors, r.LastError, sent)
	}
	if r.Bytes != sent*uint64(size) {
		t.Fatalf("Bytes %d, want %d", r.Bytes, sent*uint64(size))
	}
	var bs, br uint64
	for _, b := range r.Series {
		bs += b.Sent
		br += b.Received
	}
	if bs != r.Sent || br != r.Received {
		t.Fatalf("series totals %d/%d, want %d/%d", bs, br, r.Sent, r.Received)
	}
	if r.Start.IsZero() || r.End.Before(r.Start) || r.MaxGap <= 0 || r.MaxDelay <= 0 || r.AvgDelay > r.MaxDelay {
		t.Fatalf("times: start %v end %v gap %v delay %v/%v", r.Start, r.End, r.MaxGap, r.AvgDelay, r.MaxDelay)
	}
}

// A loopback flow of each protocol: everything arrives, the flow ends at
// Count, Stop returns the final result, repeatedly.
func TestLoopback(t *testing.T) {
	for _, proto := range []string{"udp", "tcp", "icmp"} {
		t.Run(proto, func(t *testing.T) {
			if proto == "icmp" {
				needICMP(t)
			}
			f := startFlow(t, Spec{Proto: proto, Dst: loop4, Rate: 200, Count: 50, Size: 100})
			waitDone(t, f, 30*time.Second)
			r := f.Stop(5 * time.Second)
			checkComplete(t, r, 50, 100)
			if r.Src != loop4 || r.Dst != loop4 || (proto != "icmp") != (r.Port != 0) {
				t.Fatalf("Src %v Dst %v Port %d", r.Src, r.Dst, r.Port)
			}
			if r2 := f.Stop(0); r2.Sent != r.Sent || r2.Received != r.Received || len(r2.Series) != len(r.Series) {
				t.Fatalf("second Stop differs: %+v", r2)
			}
			if s := f.Snapshot(); s.Received != r.Received {
				t.Fatalf("Snapshot after Stop differs: %+v", s)
			}
		})
	}
}

func TestLoopbackIPv6(t *testing.T) {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	c.Close()
	for _, proto := range []string{"udp", "tcp", "icmp"} {
		t.Run(proto, func(t *testing.T) {
			if proto == "icmp" {
				needICMP(t)
			}
			f := startFlow(t, Spec{Proto: proto, Src: mustAddr("::1"), Dst: mustAddr("::1"), Rate: 200, Count: 20})
			waitDone(t, f, 30*time.Second)
			checkComplete(t, f.Stop(5*time.Second), 20, 64)
		})
	}
}

// needICMP skips unless an ICMP echo socket can be opened here.
func needICMP(t *testing.T) {
	t.Helper()
	if c, err := rawICMP(netip.Addr{}, loop4); err == nil {
		c.Close()
		return
	}
	if c, err := pingSocket(netip.Addr{}, loop4); err == nil {
		c.Close()
		return
	}
	t.Skip("icmp: neither a raw ICMP socket (needs root or CAP_NET_RAW) nor a ping socket (net.ipv4.ping_group_range) is permitted")
}

// Two icmp flows to the same destination at once: each counts only its own
// replies (raw sockets see every reply).
func TestICMPFlowsKeepApart(t *testing.T) {
	needICMP(t)
	a := startFlow(t, Spec{Name: "a", Proto: "icmp", Dst: loop4, Rate: 300, Count: 60})
	b := startFlow(t, Spec{Name: "b", Proto: "icmp", Dst: loop4, Rate: 200, Count: 40})
	waitDone(t, a, 30*time.Second)
	waitDone(t, b, 30*time.Second)
	checkComplete(t, a.Stop(5*time.Second), 60, 64)
	checkComplete(t, b.Stop(5*time.Second), 40, 64)
	if a.tr.invalid != 0 || b.tr.invalid != 0 {
		t.Fatalf("invalid probes: %d %d", a.tr.invalid, b.tr.invalid)
	}
}

// A udp receiver ignores datagrams that are not this flow's probes.
func TestUDPIgnoresForeignDatagrams(t *testing.T) {
	f := startFlow(t, Spec{Proto: "udp", Dst: loop4, Rate: 100, Count: 10})
	waitDone(t, f, 30*time.Second)
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(loop4, f.spec.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := make([]byte, 64)
	c.Write([]byte("not a probe"))
	putHeader(b, f.id+1, 3, f.tr.sendTime(3)) // another flow
	c.Write(b)
	putHeader(b, f.id, 3, f.tr.sendTime(3)+1) // wrong send time
	c.Write(b)
	putHeader(b, f.id, 10, 0) // never sent
	c.Write(b)
	putHeader(b, f.id, 3, f.tr.sendTime(3)) // a true duplicate
	c.Write(b)
	deadline := time.Now().Add(10 * time.Second)
	for f.Snapshot().Duplicates == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	r := f.Stop(time.Second)
	if r.Received != 10 || r.Lost != 0 || r.Duplicates != 1 || f.tr.invalid != 2 {
		t.Fatalf("received %d lost %d dups %d invalid %d, want 10 0 1 2", r.Received, r.Lost, r.Duplicates, f.tr.invalid)
	}
}

// Duration ends the flow; the schedule sends Rate × Duration probes (fewer
// only if the machine stalled the sender).
func TestDuration(t *testing.T) {
	f := startFlow(t, Spec{Proto: "udp", Dst: loop4, Rate: 40, Duration: 500 * time.Millisecond})
	waitDone(t, f, 30*time.Second)
	r := f.Stop(2 * time.Second)
	if r.Sent > 20 || r.Sent < 10 || r.Lost != 0 {
		t.Fatalf("sent %d lost %d, want 20 (at least 10) sent, none lost", r.Sent, r.Lost)
	}
	if got := r.End.Sub(r.Start); got >= 500*time.Millisecond {
		t.Fatalf("last send %v after the first, Duration is 500ms", got)
	}
	// 1s/3 is not a whole number of nanoseconds: still 3 probes, no error.
	f = startFlow(t, Spec{Proto: "udp", Dst: loop4, Rate: 3, Duration: time.Second})
	waitDone(t, f, 30*time.Second)
	if r = f.Stop(2 * time.Second); r.Sent != 3 || r.LastError != "" {
		t.Fatalf("3/s for 1s: sent %d, last error %q", r.Sent, r.LastError)
	}
}

// Probes that never arrive: Stop waits out the grace period (and no
// longer), reports them lost and returns although nothing was received.
func TestStopWithoutReplies(t *testing.T) {
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			f, err := start(context.Background(), Spec{Proto: proto, Dst: loop4}, true)
			if err != nil {
				t.Fatal(err)
			}
			for range 5 { // sent as far as the accounting goes, never on the wire
				f.tr.nextSend(time.Now())
			}
			t0 := time.Now()
			r := f.Stop(300 * time.Millisecond)
			if d := time.Since(t0); d < 300*time.Millisecond || d > 20*time.Second {
				t.Fatalf("Stop took %v with grace 300ms", d)
			}
			if r.Sent != 5 || r.Lost != 5 || r.LossPct != 100 || r.MaxGap != r.End.Sub(r.Start) {
				t.Fatalf("%+v", r)
			}
		})
	}
}

// Canceling the context stops the flow (as Stop(0)); Stop may be called
// concurrently and afterwards.
func TestContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f, err := Start(ctx, Spec{Proto: "udp", Dst: loop4, Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	waitDone(t, f, 10*time.Second)
	var wg sync.WaitGroup
	res := make([]Result, 4)
	for i := range res {
		wg.Add(1)
		go func() { defer wg.Done(); res[i] = f.Stop(time.Second) }()
	}
	wg.Wait()
	for _, r := range res[1:] {
		if r.Sent != res[0].Sent || r.Received != res[0].Received || r.Sent == 0 {
			t.Fatalf("Stop results differ or empty: %+v vs %+v", r, res[0])
		}
	}
	if _, err := Start(ctx, Spec{Proto: "udp", Dst: loop4}); err == nil {
		t.Fatal("Start with a canceled context succeeded")
	}
}

// Default ports differ between flows; a port in use is an error.
func TestPorts(t *testing.T) {
	a := startFlow(t, Spec{Proto: "udp", Dst: loop4, Count: 1})
	b := startFlow(t, Spec{Proto: "udp", Dst: loop4, Count: 1})
	if a.spec.Port == b.spec.Port || a.spec.Port < basePort {
		t.Fatalf("ports %d and %d", a.spec.Port, b.spec.Port)
	}
	_, err := Start(context.Background(), Spec{Proto: "udp", Dst: loop4, Port: a.spec.Port})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second receiver on port %d: %v", a.spec.Port, err)
	}
	if _, err := Start(context.Background(), Spec{Proto: "udp", Dst: mustAddr("192.0.2.1")}); err == nil {
		t.Fatal("receiver bound to an address that is not local")
	}
}

// A tcp connection that breaks is replaced; the stream continues with the
// next sequence number and what was lost with the old connection is
// counted.
func TestTCPReconnect(t *testing.T) {
	f := startFlow(t, Spec{Proto: "tcp", Dst: loop4, Rate: 200})
	waitFor(t, "20 messages", func() bool { return f.Snapshot().Received >= 20 })
	f.tx.(*tcpTransport).resetServerConns()
	before := f.Snapshot()
	waitFor(t, "a reconnect and 20 more messages", func() bool {
		s := f.Snapshot()
		return s.Reconnects >= 1 && s.Received >= before.Received+20
	})
	r := f.Stop(2 * time.Second)
	t.Logf("sent %d received %d lost %d errors %d (%s) reconnects %d gap %v", r.Sent, r.Received, r.Lost, r.Errors, r.LastError, r.Reconnects, r.MaxGap)
	if r.Reconnects != 1 || r.Errors == 0 || r.Received+r.Lost != r.Sent {
		t.Fatalf("reconnects %d errors %d, sent %d = received %d + lost %d?", r.Reconnects, r.Errors, r.Sent, r.Received, r.Lost)
	}
	if r.Lost > r.Sent/2 {
		t.Fatalf("lost %d of %d", r.Lost, r.Sent)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
