package ike

import (
	"fmt"

	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// Rekey collisions (RFC 7296 sections 2.8.1, 2.8.2, 2.25): both ends
// rekey the same SA (a child SA, or the IKE SA) at once. Each answers the
// other's request as usual; once both exchanges have completed, the SA
// created by the exchange that holds the lowest of the four nonces is
// redundant: its initiator deletes it, and the initiator of the surviving
// exchange deletes the SA both replaced (exchange.SimultaneousRekey).
//
// What each end knows when (window size 1 on both ends):
//
//   - We answered the peer's rekey before our own response arrived: both
//     ends see both exchanges complete, and both resolve the collision
//     from the same nonces (v2Collision).
//   - Our own rekey completed before the peer's request arrived: we
//     delete the replaced SA at once, so the peer's request finds it
//     closing and is answered TEMPORARY_FAILURE (section 2.25.1, 2.25.2);
//     the peer's own rekey then ends without an SA, and no redundant SA
//     exists. The peer answers our DELETE as usual.
//
// Requests that find no SA to rekey get CHILD_SA_NOT_FOUND; a request to
// rekey what is being deleted, or the IKE SA while a child SA exchange of
// ours is outstanding on it, gets TEMPORARY_FAILURE; a peer that keeps
// rekeying without deleting meets the bound on child SAs per tunnel
// (v2MaxChildren) and gets TEMPORARY_FAILURE too, so the state a peer can
// create stays bounded.
//
// Zero loss (the data path; ikev2_child_path.go): the responder of a
// rekey installs the new inbound SA before its response leaves and keeps
// sending on the old pair until the initiator deletes it; the initiator
// sends on the new pair as soon as the response arrives (the peer has the
// inbound SA) and keeps the old inbound SA until the peer answered the
// DELETE plus v2RetireDelay. A collision's redundant pair is never
// activated by either end.

// v2Collision is one rekey of one SA from both ends: T is the new SA's
// handle (*childSA, *ikev2SA).
type v2Collision[T comparable] struct {
	ours, theirs             T
	oursNonces, theirsNonces exchange.Nonces
	haveOurs, haveTheirs     bool
}

// v2Outcome is what a resolved collision asks of us.
type v2Outcome[T comparable] struct {
	survivor, loser T
	// oursSurvives: the survivor was created by our exchange; then we
	// delete the SA both replaced, and the peer deletes the loser.
	oursSurvives bool
}

// weDeleteLoser: the loser is ours to delete (we initiated it).
func (o v2Outcome[T]) weDeleteLoser() bool { return !o.oursSurvives }

// weDeleteOld: we initiated the survivor, so we delete the replaced SA.
func (o v2Outcome[T]) weDeleteOld() bool { return o.oursSurvives }

// addOurs records our completed exchange; addTheirs the peer's we answered.
func (c *v2Collision[T]) addOurs(sa T, n exchange.Nonces) {
	c.ours, c.oursNonces, c.haveOurs = sa, n, true
}

func (c *v2Collision[T]) addTheirs(sa T, n exchange.Nonces) {
	c.theirs, c.theirsNonces, c.haveTheirs = sa, n, true
}

// complete reports whether both exchanges have completed.
func (c *v2Collision[T]) complete() bool { return c.haveOurs && c.haveTheirs }

// resolve applies the lowest-nonce rule to a complete collision.
func (c *v2Collision[T]) resolve() (v2Outcome[T], error) {
	if !c.complete() {
		return v2Outcome[T]{}, fmt.Errorf("ikev2: rekey collision resolved before both exchanges completed")
	}
	s, err := exchange.SimultaneousRekey(c.oursNonces, c.theirsNonces)
	if err != nil {
		return v2Outcome[T]{}, err
	}
	if s == exchange.OursSurvives {
		return v2Outcome[T]{survivor: c.ours, loser: c.theirs, oursSurvives: true}, nil
	}
	return v2Outcome[T]{survivor: c.theirs, loser: c.ours}, nil
}

// v2MaxChildren bounds the child SA pairs of one IKEv2 tunnel: AWS keeps
// one pair per tunnel, a rekey adds one for a moment and a collision one
// more; anything beyond is a peer that creates or rekeys without deleting.
const v2MaxChildren = 6

// v2RekeyTarget is what the responder knows about the child SA a
// REKEY_SA names.
type v2RekeyTarget struct {
	found    bool // a pair of ours has that outbound SPI
	closing  bool // we are deleting it (DELETE sent or queued)
	replaced bool // the peer already rekeyed it and it awaits the peer's DELETE
	children int  // pairs the tunnel holds now
}

// v2RekeyVerdict is the responder's answer to a child SA rekey request
// before any proposal is looked at (sections 2.25, 2.25.1), nil to go on.
func v2RekeyVerdict(spi uint32, tg v2RekeyTarget) *exchange.Error {
	switch {
	case !tg.found:
		e := v2Refuse(wire.NotifyChildSANotFound, "REKEY_SA names SPI %08x, no child SA of ours sends to it", spi)
		return e
	case tg.closing:
		return v2Refuse(wire.NotifyTemporaryFailure, "the child SA with outbound SPI %08x is being deleted", spi)
	case tg.replaced:
		return v2Refuse(wire.NotifyTemporaryFailure, "the child SA with outbound SPI %08x was rekeyed by the peer already; waiting for its DELETE", spi)
	case tg.children >= v2MaxChildren:
		return v2Refuse(wire.NotifyTemporaryFailure, "%d child SAs on the tunnel, at most %d while old ones are deleted", tg.children, v2MaxChildren)
	}
	return nil
}

// v2NewChildVerdict is the responder's answer to a request for another
// child SA (not a rekey): refused with NO_ADDITIONAL_SAS at the bound.
func v2NewChildVerdict(children int) *exchange.Error {
	if children >= v2MaxChildren {
		return v2Refuse(wire.NotifyNoAdditionalSAs, "%d child SAs on the tunnel, at most %d", children, v2MaxChildren)
	}
	return nil
}

// v2IKERekeyVerdict is the responder's answer to an IKE SA rekey request
// (section 2.25.2): the IKE SA must be established and not being deleted,
// and no CREATE_CHILD_SA of ours may be outstanding on it (its child SA
// would be left on the old IKE SA; strongSwan refuses the same way).
func v2IKERekeyVerdict(established, closing, childOutstanding bool) *exchange.Error {
	switch {
	case !established:
		return v2Refuse(wire.NotifyTemporaryFailure, "the IKE SA is not established")
	case closing:
		return v2Refuse(wire.NotifyTemporaryFailure, "the IKE SA is being deleted")
	case childOutstanding:
		return v2Refuse(wire.NotifyTemporaryFailure, "a CREATE_CHILD_SA of ours is outstanding on this IKE SA")
	}
	return nil
}
