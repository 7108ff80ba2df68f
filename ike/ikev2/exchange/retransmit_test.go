package exchange

import (
	"testing"
	"time"
)

// TestSchedule: strongSwan's defaults give its documented table; limit
// and jitter bound the waits.
func TestSchedule(t *testing.T) {
	s := DefaultSchedule
	want := []time.Duration{4000, 7200, 12960, 23328, 41990, 75582} // ms, 4*1.8^n
	for n, w := range want {
		if got := s.Wait(n).Milliseconds(); got < int64(w)-1 || got > int64(w)+1 {
			t.Errorf("wait %d: %d ms, want %d", n, got, w)
		}
	}
	if got := s.GiveUpAfter().Round(time.Second); got != 165*time.Second {
		t.Errorf("gives up after %v, want 165 s (docs.strongswan.org)", got)
	}
	lim := Schedule{Timeout: time.Second, Base: 2, Tries: 10, Limit: 5 * time.Second}
	if lim.Wait(9) != 5*time.Second || lim.Wait(1) != 2*time.Second {
		t.Errorf("limit: %v %v", lim.Wait(9), lim.Wait(1))
	}
	huge := Schedule{Timeout: time.Hour, Base: 1e9, Tries: 1000}
	if d := huge.Wait(999); d <= 0 {
		t.Errorf("overflowing wait %v", d)
	}
	jit := Schedule{Timeout: 10 * time.Second, Base: 1, Tries: 1, Jitter: 0.2, Rand: func() float64 { return 0.5 }}
	if jit.Wait(0) != 9*time.Second {
		t.Errorf("jitter: %v", jit.Wait(0))
	}
	if jit.GiveUpAfter() != 20*time.Second {
		t.Errorf("GiveUpAfter with jitter: %v", jit.GiveUpAfter())
	}
}

// TestRetransmission: a request sent at t0 is resent Tries times on its
// timers and then given up.
func TestRetransmission(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	r := Schedule{Timeout: time.Second, Base: 2, Tries: 3}.Start(t0)
	now := t0
	var resends []time.Duration
	for i := 0; i < 10; i++ {
		if r.Due(r.Timer().Add(-time.Nanosecond)) {
			t.Fatal("due before its timer")
		}
		now = r.Timer()
		if !r.Due(now) {
			t.Fatal("not due at its timer")
		}
		if !r.Next(now) {
			break
		}
		resends = append(resends, now.Sub(t0))
	}
	want := []time.Duration{1 * time.Second, 3 * time.Second, 7 * time.Second}
	if len(resends) != len(want) || r.Retransmits() != 3 {
		t.Fatalf("resent at %v, want %v", resends, want)
	}
	for i := range want {
		if resends[i] != want[i] {
			t.Errorf("resend %d at %v, want %v", i+1, resends[i], want[i])
		}
	}
	if now.Sub(t0) != 15*time.Second {
		t.Errorf("gave up at %v, want 15 s", now.Sub(t0))
	}
	if (Schedule{Timeout: time.Second, Tries: 0}).Start(t0).Next(t0.Add(time.Second)) {
		t.Error("Tries 0 resends")
	}
}
