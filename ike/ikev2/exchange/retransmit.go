package exchange

import (
	"math"
	"time"
)

// Schedule is the initiator's retransmission schedule (section 2.1: only
// the initiator of an exchange retransmits, with growing intervals): the
// n-th wait (n = 0 after the first transmission) is Timeout * Base^n,
// capped at Limit if set, shortened by up to Jitter (a fraction, 0 to 1)
// when Rand is set; after Tries retransmissions and one more wait the
// exchange has failed.
type Schedule struct {
	Timeout time.Duration
	Base    float64
	Tries   int
	Limit   time.Duration
	Jitter  float64
	Rand    func() float64 // in [0, 1), e.g. math/rand/v2.Float64
}

// DefaultSchedule is strongSwan's default (retransmit_timeout 4 s,
// retransmit_base 1.8, retransmit_tries 5: sends at 0, 4, 11.2, 24.2, 47.5
// and 89.5 s, failure at 165.5 s; docs.strongswan.org
// config/retransmission.html).
var DefaultSchedule = Schedule{Timeout: 4 * time.Second, Base: 1.8, Tries: 5}

// Wait returns the n-th wait.
func (s Schedule) Wait(n int) time.Duration {
	base := s.Base
	if base < 1 {
		base = 1
	}
	d := float64(s.Timeout) * math.Pow(base, float64(n))
	d = min(d, float64(math.MaxInt64/2))
	if s.Limit > 0 {
		d = min(d, float64(s.Limit))
	}
	if s.Jitter > 0 && s.Rand != nil {
		d -= d * min(s.Jitter, 1) * s.Rand()
	}
	return time.Duration(d)
}

// GiveUpAfter is the time from the first transmission to failure, without
// jitter.
func (s Schedule) GiveUpAfter() time.Duration {
	s.Jitter = 0
	var t time.Duration
	for n := 0; n <= s.Tries; n++ {
		t += s.Wait(n)
	}
	return t
}

// Retransmission tracks one request: Start at the first transmission, then
// on each timer Due, and Next says whether to resend or give up.
type Retransmission struct {
	s     Schedule
	sent  int // retransmissions so far
	timer time.Time
}

// Start begins tracking a request sent at now.
func (s Schedule) Start(now time.Time) *Retransmission {
	return &Retransmission{s: s, timer: now.Add(s.Wait(0))}
}

// Timer is when the current wait ends.
func (r *Retransmission) Timer() time.Time { return r.timer }

// Due reports whether the current wait has ended at now.
func (r *Retransmission) Due(now time.Time) bool { return !now.Before(r.timer) }

// Next is called when the wait has ended: it returns true to resend now
// (the timer moves to the next wait) or false when the tries are used up
// and the exchange has failed.
func (r *Retransmission) Next(now time.Time) bool {
	if r.sent >= r.s.Tries {
		return false
	}
	r.sent++
	r.timer = now.Add(r.s.Wait(r.sent))
	return true
}

// Retransmits is the number of retransmissions so far.
func (r *Retransmission) Retransmits() int { return r.sent }
