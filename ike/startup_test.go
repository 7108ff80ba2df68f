package ike

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// TestStartupManyTunnels: 3,000 tunnels with startup action start (three
// times the inbox) against peers that never answer. Run used to post one
// closure per tunnel before the loop ran and blocked on the full inbox, so
// Status never returned. Now Status answers at once and every tunnel is
// initiated.
func TestStartupManyTunnels(t *testing.T) {
	t.Parallel()
	const n = 3000
	e := newStartupEngine(t, n, 250, logrus.ErrorLevel)
	runUntilTestEnds(t, e)
	statusIn := func(d time.Duration) (Status, bool) {
		ch := make(chan Status, 1)
		go func() { ch <- e.Status() }()
		select {
		case st := <-ch:
			return st, true
		case <-time.After(d):
			return Status{}, false
		}
	}
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if _, ok := statusIn(5 * time.Second); !ok {
		t.Fatal("Status blocked for 5 s while tunnels start (engine inbox deadlock)")
	}
	t.Logf("first Status answered after %v", time.Since(start).Round(time.Millisecond))
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, ok := statusIn(5 * time.Second)
		if !ok {
			t.Fatal("Status blocked for 5 s")
		}
		negotiating := 0
		for _, ts := range st.Tunnels {
			if ts.Phase1State == "Negotiating" {
				negotiating++
			}
		}
		if negotiating == n {
			t.Logf("all %d tunnels initiated after %v", n, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s only %d of %d tunnels are negotiating", negotiating, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPanicWhileTunnelsStart: a closure that panics while tunnels with
// startup action start are still queued is recovered like any other (the
// loop's startup branch ran closures without the safety net, so one panic
// there ended the gateway), and the remaining tunnels still start.
func TestPanicWhileTunnelsStart(t *testing.T) {
	t.Parallel()
	const n = 200
	e := newStartupEngine(t, n, 249, logrus.FatalLevel)
	// Queued before Run: the loop's first turn, with all 200 tunnels
	// still waiting to start, takes it from the inbox.
	e.post(func() { panic("test: panic while tunnels start") })
	runUntilTestEnds(t, e)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := e.Status()
		negotiating := 0
		for _, ts := range st.Tunnels {
			if ts.Phase1State == "Negotiating" {
				negotiating++
			}
		}
		if negotiating == n {
			if st.Counters.Panics != 1 {
				t.Fatalf("panics recovered: %d, want 1", st.Counters.Panics)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s %d of %d tunnels are negotiating (panics %d)", negotiating, n, st.Counters.Panics)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newStartupEngine builds an engine with n tunnels of startup action start
// to peers 127.b.x.y that never answer.
func newStartupEngine(t *testing.T, n int, b byte, level logrus.Level) *Engine {
	local, _, ports := loopPair()
	cfg := Config{Ports: ports, RetransmitTimeout: time.Minute}
	for i := 0; i < n; i++ {
		tc := baseTunnel(local, netip.AddrFrom4([4]byte{127, b, byte(i / 250), byte(i%250 + 1)}), ports)
		tc.Name = fmt.Sprintf("t%04d", i)
		tc.StartupAction = StartupStart
		cfg.Tunnels = append(cfg.Tunnels, tc)
	}
	lg := logrus.New()
	lg.SetLevel(level)
	e, err := NewEngine(cfg, WithLogger(lg))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// runUntilTestEnds runs e and stops it when the test ends; Run must
// return within 30 s of the cancel.
func runUntilTestEnds(t *testing.T, e *Engine) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}
