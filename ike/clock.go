package ike

import "time"

// The engine's clock seam. Every engine timer goes through Engine.afterFunc
// and every engine reading of the time through timeNow (tunnel.go); a test
// that simulates hours (scale10k_test.go: eight hours of idle tunnels with
// DPD at AWS's timers) replaces both, so that the engine's own code runs
// unchanged on a clock the test advances. Production engines have no
// timerSource and use the runtime's timers.

// timerSource creates the engine's timers. f runs in a goroutine of its
// own when the timer fires, as with time.AfterFunc; the returned timer is
// only ever stopped, from the loop.
type timerSource interface {
	AfterFunc(d time.Duration, f func()) *time.Timer
}

// withClock makes the engine's timers with c (tests only).
func withClock(c timerSource) Option { return func(e *Engine) { e.clock = c } }
