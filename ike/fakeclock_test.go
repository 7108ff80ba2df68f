package ike

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"
)

// A clock for simulating hours in seconds: the test sets the time that
// timeNow returns and fires the engine's timers when that time passes
// their due time (clock.go is the seam). Each engine has its own
// fakeTimers, taken off on its own loop, so that a timer is never stopped
// by the engine while the clock takes it; the time itself is shared.
//
// A timer is a runtime timer armed for a very long time, so that the
// engine's Stop works as always. When it falls due the clock stops it
// (Stop tells whether the engine stopped it first: then it is dropped)
// and hands its function (a post to the loop) to the test, which calls it
// as the timer's goroutine would.

// simTime is the simulated time, shared by every engine of a test.
type simTime struct{ ns atomic.Int64 }

func newSimTime(start time.Time) *simTime {
	s := &simTime{}
	s.ns.Store(start.UnixNano())
	return s
}

func (s *simTime) now() time.Time          { return time.Unix(0, s.ns.Load()) }
func (s *simTime) advance(d time.Duration) { s.ns.Add(int64(d)) }

// install makes the package's clock this one until the returned function
// restores the real one.
func (s *simTime) install() (restore func()) {
	timeNow = s.now
	return func() { timeNow = time.Now }
}

type fakeTimer struct {
	due time.Time
	t   *time.Timer
	fn  func()
}

type timerHeap []fakeTimer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(fakeTimer)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// fakeTimers is one engine's timer source on a simTime.
type fakeTimers struct {
	clock *simTime
	mu    sync.Mutex
	h     timerHeap
	fired atomic.Int64 // timers taken off and handed out
}

const farFuture = 100000 * time.Hour

// AfterFunc arms a timer for d of simulated time (d <= 0: due now; it
// fires at the next fireDue, like every other timer, so that the engine
// may still stop it).
func (f *fakeTimers) AfterFunc(d time.Duration, fn func()) *time.Timer {
	t := time.AfterFunc(farFuture, func() {})
	f.mu.Lock()
	heap.Push(&f.h, fakeTimer{due: f.clock.now().Add(max(d, 0)), t: t, fn: fn})
	f.mu.Unlock()
	return t
}

// fireDue takes off every timer due by now that the engine has not
// stopped and returns their functions, for the caller to run outside the
// loop. Call it on the engine's loop.
func (f *fakeTimers) fireDue() []func() {
	now := f.clock.now()
	var out []func()
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.h) > 0 && !f.h[0].due.After(now) {
		ft := heap.Pop(&f.h).(fakeTimer)
		if ft.t.Stop() { // still armed: the engine did not stop it
			out = append(out, ft.fn)
		}
	}
	f.fired.Add(int64(len(out)))
	return out
}

// compact drops the timers the engine has stopped: the runtime forgets a
// stopped timer (and what its function holds, e.g. a deleted SA) at once,
// this clock would keep it until its due time, and the heap measurements
// of a simulated day must not count that. Call it on the engine's loop.
func (f *fakeTimers) compact() {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := f.h[:0]
	for _, ft := range f.h {
		if ft.t.Stop() { // armed: re-arm it
			ft.t.Reset(farFuture)
			kept = append(kept, ft)
		}
	}
	clear(f.h[len(kept):])
	f.h = kept
	heap.Init(&f.h)
}

// nextDue is when the earliest timer falls due (ok false: none waits).
func (f *fakeTimers) nextDue() (at time.Time, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.h) == 0 {
		return time.Time{}, false
	}
	return f.h[0].due, true
}

// pending is how many timers wait (stopped ones included until due).
func (f *fakeTimers) pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.h)
}

// stopAll stops every timer (end of a test).
func (f *fakeTimers) stopAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ft := range f.h {
		ft.t.Stop()
	}
	f.h = nil
}
