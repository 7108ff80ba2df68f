package ike

import (
	"strings"
	"testing"
	"time"
)

func TestRetryBackoff(t *testing.T) {
	var got []time.Duration
	for f := 1; f <= 6; f++ {
		got = append(got, retryBackoff(5*time.Second, 60*time.Second, f))
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 60 * time.Second, 60 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff %v, want %v", got, want)
		}
	}
}

// After AUTHENTICATION-FAILED the customer gateway tries again (strongSwan
// keyingtries=0), and the second pause is longer than the first.
func TestWrongPSKIsRetriedWithBackoff(t *testing.T) {
	t.Parallel()
	cgw, _ := newPair(t, pairOpts{cgw: func(tc *TunnelConfig) { tc.PSK = Secret("another.psk_entirely") }})
	deadline := time.Now().Add(25 * time.Second)
	downs := 0
	for downs < 2 && time.Now().Before(deadline) {
		select {
		case ev := <-cgw.events:
			if ev.Type == "phase1-down" {
				downs++
			}
		case <-time.After(time.Until(deadline)):
		}
	}
	if downs < 2 {
		t.Fatalf("%d failed phase 1 attempts within 25 s: no retry after the authentication failure", downs)
	}
	// The retry's log line follows the phase1-down event: wait for it.
	wants := []string{"retry_in=5s", "failures_in_a_row=1", "retry_in=10s", "failures_in_a_row=2", `reason="retry after failure"`}
	missing := func() (m []string) {
		logs := cgw.logs.String()
		for _, want := range wants {
			if !strings.Contains(logs, want) {
				m = append(m, want)
			}
		}
		return m
	}
	for end := time.Now().Add(2 * time.Second); len(missing()) > 0 && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range missing() {
		t.Errorf("cgw log lacks %q", want)
	}
}
