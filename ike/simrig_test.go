package ike

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// simRig is a vgw and a customer engine over loopback (the scale test's
// addresses and configurations) whose timers and clock are simulated
// (fakeclock_test.go): the test advances the time in steps, and after each
// step waits until the engines are quiet (every due timer's work done,
// every datagram sent has been handled), so that hours of idle tunnels
// take seconds and the outcome does not depend on the machine's speed.
type simRig struct {
	clock  *simTime
	sides  [2]*scaleSide // vgw, cgw
	timers [2]*fakeTimers
	sinks  [2]*countSink
	lost   int64 // datagrams sent but never handled (a full socket buffer)
}

// countSink counts the datagrams one engine sends.
type countSink struct {
	local func(netip.Addr) bool
	sent  atomic.Int64
}

func (c *countSink) Packet(src, dst netip.AddrPort, b []byte) {
	if c.local(src.Addr()) {
		c.sent.Add(1)
	}
}

// startSimRig starts both engines of n tunnels on a simulated clock; the
// clock is the package's until the test ends. mod changes the
// configurations before the engines are made.
func startSimRig(tb testing.TB, n int, mod func(vc, cc *Config)) *simRig {
	tb.Helper()
	raiseFileLimit(tb, uint64(2*n+2*len(scaleVGWAddrs)+256))
	r := &simRig{clock: newSimTime(time.Now())}
	tb.Cleanup(r.clock.install())
	isVGW := func(a netip.Addr) bool { return a == scaleVGWAddrs[0] || a == scaleVGWAddrs[1] }
	r.sinks = [2]*countSink{{local: isVGW}, {local: func(a netip.Addr) bool { return !isVGW(a) }}}
	var lastErr error
	for try := 0; try < 5; try++ {
		p := uint16(10000 + 2*rand.IntN(5000))
		vc, cc := scaleConfigs(n, Ports{IKE: p, NATT: p + 1}, 10*time.Second, 40*time.Second)
		if mod != nil {
			mod(&vc, &cc)
		}
		r.timers = [2]*fakeTimers{{clock: r.clock}, {clock: r.clock}}
		c, err := startScaleEngine("cgw", cc, withClock(r.timers[1]), WithPacketSink(r.sinks[1]))
		if err != nil {
			lastErr = err
			continue
		}
		v, err := startScaleEngine("vgw", vc, withClock(r.timers[0]), WithPacketSink(r.sinks[0]))
		if err != nil {
			c.stop()
			lastErr = err
			continue
		}
		r.sides = [2]*scaleSide{v, c}
		tb.Cleanup(func() {
			v.stop()
			c.stop()
			r.timers[0].stopAll()
			r.timers[1].stopAll()
			checkScalePanics(tb, v)
			checkScalePanics(tb, c)
		})
		return r
	}
	tb.Fatalf("could not start the engines: %v", lastErr)
	return nil
}

func (r *simRig) vgw() *scaleSide { return r.sides[0] }
func (r *simRig) cgw() *scaleSide { return r.sides[1] }

// handled is how many datagrams the loops of both engines have handled.
func (r *simRig) handled() (n int64) {
	for _, s := range r.sides {
		_ = s.e.call(func() { n += int64(s.e.counters.Received) })
	}
	return n
}

// fireDue takes the due timers off on each engine's loop and runs their
// functions (posts to the loop) as their goroutines would.
func (r *simRig) fireDue() error {
	for i, s := range r.sides {
		ft := r.timers[i]
		var fns []func()
		if err := s.e.call(func() { fns = ft.fireDue() }); err != nil {
			return err
		}
		for _, fn := range fns {
			fn()
		}
	}
	return nil
}

// quiet waits until no timer is due and every datagram sent has been
// handled (timers' posts come before the loop's counter is read, so they
// ran). Datagrams that no loop handles for 500 ms of real time are counted
// lost (a socket buffer overflowed in a burst), which the caller reports.
func (r *simRig) quiet(limit time.Duration) error {
	start := time.Now()
	lastH, lastMove := int64(-1), start
	for spin := 0; ; spin++ {
		if err := r.fireDue(); err != nil {
			return err
		}
		h := r.handled()
		s := r.sinks[0].sent.Load() + r.sinks[1].sent.Load()
		if s-r.lost == h && !r.due() {
			return nil
		}
		if h != lastH {
			lastH, lastMove = h, time.Now()
		} else if time.Since(lastMove) > 500*time.Millisecond && !r.due() {
			r.lost = s - h
			return nil
		}
		if time.Since(start) > limit {
			return fmt.Errorf("engines not quiet after %v: %d datagrams sent, %d handled, %d lost before", limit, s, h, r.lost)
		}
		if spin < 200 {
			runtime.Gosched()
		} else {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// due reports whether a timer of either engine is due now.
func (r *simRig) due() bool {
	now := r.clock.now()
	for _, ft := range r.timers {
		if at, ok := ft.nextDue(); ok && !at.After(now) {
			return true
		}
	}
	return false
}

// step advances the simulated time by d and waits until the engines are
// quiet.
func (r *simRig) step(d time.Duration) error {
	r.clock.advance(d)
	return r.quiet(2 * time.Minute)
}

// advanceTo steps from timer to timer (each one's due time in turn) up to
// the simulated time end, so that idle stretches cost nothing.
func (r *simRig) advanceTo(end time.Time) error {
	for {
		next := end
		for _, ft := range r.timers {
			if at, ok := ft.nextDue(); ok && at.Before(next) {
				next = at
			}
		}
		if d := next.Sub(r.clock.now()); d > 0 {
			r.clock.advance(d)
		}
		if err := r.quiet(2 * time.Minute); err != nil {
			return err
		}
		if !r.clock.now().Before(end) {
			return nil
		}
	}
}

// bringUp steps the clock a second at a time until every tunnel of both
// engines has phase 1 and phase 2 Established, and returns the simulated
// time it took.
func (r *simRig) bringUp(n int, limit time.Duration) (time.Duration, error) {
	start := r.clock.now()
	for {
		if err := r.quiet(2 * time.Minute); err != nil {
			return 0, err
		}
		v1, v2 := r.vgw().upCount()
		c1, c2 := r.cgw().upCount()
		if v1 == n && v2 == n && c1 == n && c2 == n {
			return r.clock.now().Sub(start), nil
		}
		if r.clock.now().Sub(start) > limit {
			return 0, fmt.Errorf("after %v simulated: vgw %d/%d, cgw %d/%d of %d tunnels up", limit, v1, v2, c1, c2, n)
		}
		if err := r.step(time.Second); err != nil {
			return 0, err
		}
	}
}
