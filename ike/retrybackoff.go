package ike

import (
	"time"

	"github.com/sirupsen/logrus"
)

// Retrying a failed phase 1 with backoff.
//
// A tunnel that should be up (startup action start, or an explicit
// initiate) starts phase 1 again after a failure: a refused key
// (AUTHENTICATION-FAILED), no proposal, a peer that does not answer. What
// others do: strongSwan's swanctl.conf keyingtries (default 1) is the number
// of retransmission sequences of an initial connect, 0 meaning new
// sequences until the connection is established or fails with a permanent
// error (swanctl.conf(5) of Debian's strongswan-swanctl); Libreswan, with
// its default of unlimited keying attempts, schedules a retry right after a
// peer's AUTHENTICATION_FAILED ("scheduling retry attempt 1 of an unlimited
// number", https://github.com/libreswan/libreswan/issues/1794) and its
// connection revival waits longer each time (5 s, 10 s, 15 s, ... in
// https://github.com/libreswan/libreswan/issues/1602). The AWS side does
// not initiate with IKEv1: a tunnel "remains DOWN until the customer
// gateway device initiates" (AWS re:Post, vpn-tunnel-endpoint-replacement), so a
// customer gateway that gave up would leave it down after the key is
// fixed. We never give up, but do not hammer a failing peer at a fixed
// rate either: the pause doubles with every failure in a row, from
// restartDelay up to retryMaxDelay, and is back at restartDelay once
// phase 1 succeeds.

// retryMaxDelay bounds the pause between two phase 1 attempts.
const retryMaxDelay = 60 * time.Second

// retryBackoff is the pause before the next attempt after failures
// consecutive failures (1 = the first): base, 2×base, 4×base, ... at most
// max.
func retryBackoff(base, max time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// scheduleRetry plans the next phase 1 attempt after a failure (or the end
// of an established phase 1 while the tunnel should be up). wasUp: the SA
// had been established, so this is not a failure in a row.
func (t *tunnel) scheduleRetry(e *Engine, wasUp bool) {
	if wasUp {
		t.failures = 0
	}
	t.failures++
	d := retryBackoff(restartDelay, retryMaxDelay, t.failures)
	if !wasUp {
		t.log.WithFields(logrus.Fields{"retry_in": d.String(), "failures_in_a_row": t.failures}).Info("phase 1 will be retried")
	}
	t.restart = e.afterFunc(d, func() {
		t.restart = nil
		if t.wantUp && t.sa == nil {
			t.initiate("retry after failure")
		}
	})
}
