package ike

import (
	"bytes"
	"encoding/hex"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Simultaneous main modes (IKEv1 phase 1 collisions). When both sides
// initiate at once (AWS's startup action start against a customer that
// also initiates, both sides after a restart, or both rekeying phase 1
// together) two ISAKMP SAs come up within a round trip, one initiated by
// each side. IKEv1 has no rule for this (RFC 2409 leaves it open). The
// rule "a newer ISAKMP SA replaces the older one" alone makes the two
// sides delete different SAs, because each side establishes the SA it
// answers one message before the SA it initiated: each keeps its own,
// deletes the other's, and the crossing DELETEs leave neither side with an
// ISAKMP SA (no DPD, no quick mode). Both sides must pick the same
// survivor from what both know: the SA whose cookie pair (CKY-I | CKY-R,
// identical on both sides) is lower is deleted, the other kept, whatever
// the order in which the two came up here.

// collidesWith reports whether sa, just established, and old, the tunnel's
// established ISAKMP SA, were negotiated at once from opposite sides: sa's
// main mode began (we sent or received its first message) before old was
// established. An SA the peer starts after ours is up is not a collision
// but a replacement (charon re-authenticates that way after our phase 1
// rekey), and the newer one replaces the older on both sides.
func (sa *ikeSA) collidesWith(old *ikeSA) bool {
	return old.initiator != sa.initiator && sa.created.Before(old.established)
}

// settleCollision deletes the loser of the two colliding SAs (telling the
// peer, which deletes the same one) and returns the survivor, which is
// the tunnel's ISAKMP SA afterwards.
func (t *tunnel) settleCollision(sa, old *ikeSA) (survivor *ikeSA) {
	keep, drop := sa, old
	if bytes.Compare(sa.cookiesSPI(), old.cookiesSPI()) < 0 { // CKY-I | CKY-R
		keep, drop = old, sa
	}
	t.counters.Phase1Collisions++
	t.log.WithFields(logrus.Fields{
		"keep_icookie": hex.EncodeToString(keep.iCookie[:]), "keep_rcookie": hex.EncodeToString(keep.rCookie[:]), "keep_role": keep.role(),
		"drop_icookie": hex.EncodeToString(drop.iCookie[:]), "drop_rcookie": hex.EncodeToString(drop.rCookie[:]), "drop_role": drop.role(),
	}).Info("phase 1 collision: both sides initiated; deleting the ISAKMP SA with the lower cookies, as the peer does")
	t.sa = keep
	keep.collided = true
	const reason = "phase 1 collision: the peer's and our main mode came up together; the other SA is kept"
	if wait := collisionDeleteDelay - timeNow().Sub(drop.established); !drop.initiator && wait > 0 {
		// We answered drop's MM5 a moment ago: the peer may not have
		// processed our MM6 yet, and a DELETE it handles first cannot be
		// decrypted (charon handles one SA's messages on several threads:
		// it dropped the DELETE as malformed and kept the SA). Tell it a
		// moment later. The timer is not kept: it holds the deleted SA
		// for at most collisionDeleteDelay, and after the engine stopped
		// its post is a no-op.
		drop.delete(reason, false)
		t.e.afterFunc(wait, func() { drop.sendDelete(isakmp.ProtoISAKMP, drop.cookiesSPI()) })
		return keep
	}
	drop.delete(reason, true)
	return keep
}

// collisionDeleteDelay is how long after we answered a main mode the
// DELETE of that SA, the loser of a collision, waits.
const collisionDeleteDelay = time.Second
