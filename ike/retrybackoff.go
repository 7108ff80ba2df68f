package ike

import (
	"time"

	"github.com/sirupsen/logrus"
)

// Retrying a failed phase 1 with backoff.
//
// A tunnel that should be up (startup action start, or an explicit
// initiate) starts phase 1 again after a failure: a refused key
// (AUTHENTICATION-FAILED), no proposal, a peer that does not answer. As
// strongSwan with keyingtries=0 (swanctl.conf: "a value of 0 initiates a new
// sequence until the connection establishes or fails with a permanent
// error"; ipsec.conf %forever) and Libreswan's default of an unlimited
// number of keying attempts, it never gives up, since the peer may be fixed
// at any time (a key corrected on the AWS side, an endpoint replaced: with
// IKEv1 an AWS tunnel "remains DOWN until the customer gateway device
// initiates"). But a failing peer is not hammered at a fixed rate: the
// pause doubles with every failure in a row, from restartDelay up to
// retryMaxDelay, and is back at restartDelay once phase 1 succeeds.

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
