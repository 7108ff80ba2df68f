package ike

import (
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/isakmp"
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
//   - The winner's DELETE of the replaced SA can reach us before the
//     response to our own request: it shows that the peer's SA survived,
//     so we move to it, and resolve with the nonces when our response
//     comes (the IKE SA: ikev2_rekey.go, beforeIKEDeleted).
//
// Requests that find no SA to rekey get CHILD_SA_NOT_FOUND; a request to
// rekey what is being deleted, or the IKE SA while a child SA exchange of
// ours is outstanding on it, gets TEMPORARY_FAILURE; a peer that keeps
// rekeying without deleting meets the bound on child SAs per tunnel
// (v2MaxChildren) and gets TEMPORARY_FAILURE too, so the state a peer can
// create stays bounded.
//
// Zero loss (the data path, below): the responder of a rekey installs the
// new inbound SA before its response leaves and keeps sending on the old
// pair until the initiator deletes it, whose inbound SA it keeps
// v2RetireDelay more for packets still on the way; the initiator sends on
// the new pair as soon as the response arrives (the peer has the inbound
// SA) and keeps the old inbound SA until the peer answered the DELETE plus
// v2RetireDelay. A collision's redundant pair is never sent on by either
// end. strongSwan likewise keeps a replaced inbound SA installed for
// delete_rekeyed_delay (5 s by default, strongswan.conf(5)).

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

// --- the engine: child SA rekeys, their collisions and the data path ---

// v2RetireDelay is how long the initiator of a rekey keeps the replaced
// pair's inbound SA after the peer answered the DELETE: packets the peer
// sent on it before it moved may still be on the way (strongSwan keeps
// such an SA for delete_rekeyed_delay, 5 s by default).
const v2RetireDelay = 2 * time.Second

// v2ChildRekey is the rekey of one pair, by us, by the peer, or both.
type v2ChildRekey struct {
	coll        v2Collision[*childSA]
	oursPending bool // our request is queued or in flight
	// survivor: after a resolved collision that the peer's exchange won,
	// the pair to send on once the peer deletes the replaced one.
	survivor *childSA
}

// rekey returns the rekey record of old, new if none.
func (x *v2TunnelX) rekey(old *childSA) *v2ChildRekey {
	rk := x.rekeys[old]
	if rk == nil {
		rk = &v2ChildRekey{}
		x.rekeys[old] = rk
	}
	return rk
}

// ourChildRekeyEnded clears our part of a rekey that failed; a rekey of
// the peer's of the same pair stays (its staged pair waits for the
// peer's DELETE).
func (t *tunnel) ourChildRekeyEnded(old *childSA, rk *v2ChildRekey) {
	if old == nil || rk == nil {
		return
	}
	rk.oursPending = false
	if !rk.coll.haveTheirs && t.x().rekeys[old] == rk {
		delete(t.x().rekeys, old)
	}
}

// rekeyTarget describes old for v2RekeyVerdict.
func (t *tunnel) rekeyTarget(old *childSA) v2RekeyTarget {
	tg := v2RekeyTarget{found: old != nil, children: len(t.children)}
	if old != nil {
		x := t.x()
		tg.closing = x.closing[old]
		rk := x.rekeys[old]
		tg.replaced = rk != nil && rk.coll.haveTheirs
	}
	return tg
}

// installWhole installs a pair both ways (it sends from now on).
func (t *tunnel) installWhole(c *childSA) error {
	if err := t.e.dp.Install(c.pair); err != nil {
		return err
	}
	if t.e.klog != nil {
		t.e.klog.ChildKeys(c.pair)
	}
	return nil
}

// addChildV2 records a pair with the tunnel (tunnel.addChild). A staged
// pair is marked staged only after addChild, so that IKEv1's grace timer
// (qmstaging.go) never moves traffic to it: an IKEv2 responder's pair
// starts sending when the initiator deletes the pair it replaces.
func (t *tunnel) addChildV2(c *childSA, staged bool) {
	t.addChild(c, nil)
	c.staged = staged
	t.x().prune(t)
}

// prune forgets the records of pairs that are gone (expired, deleted with
// their IKE SA) unless a request of ours about them is still out.
func (x *v2TunnelX) prune(t *tunnel) {
	for c, rk := range x.rekeys {
		if !t.hasChild(c) && !rk.oursPending {
			delete(x.rekeys, c)
		}
	}
	for c := range x.closing {
		if !t.hasChild(c) {
			delete(x.closing, c)
		}
	}
	for c := range x.retry {
		if !t.hasChild(c) {
			delete(x.retry, c)
		}
	}
}

// childStagedTheirs (responder, before the response leaves) installs the
// peer's new pair: a new child whole (nothing else to send on), a rekey
// inbound only.
func (t *tunnel) childStagedTheirs(c *childSA, old *childSA, n exchange.Nonces) error {
	sd, staging := t.e.stagedDataPath()
	if old == nil || !staging {
		if err := t.installWhole(c); err != nil {
			return fmt.Errorf("data path refused the pair: %w", err)
		}
		if old != nil {
			old.rekeyed = true
		}
		t.addChildV2(c, false)
		return nil
	}
	if err := sd.InstallInbound(c.pair); err != nil {
		return fmt.Errorf("data path refused the inbound SA: %w", err)
	}
	if t.e.klog != nil {
		t.e.klog.ChildKeys(c.pair)
	}
	rk := t.x().rekey(old)
	rk.coll.addTheirs(c, n)
	old.rekeyed = true // replaced: not rekeyed again, not superseded by addChild
	t.addChildV2(c, true)
	t.log.WithFields(logrus.Fields{"spi_in": fmt.Sprintf("%08x", c.pair.Inbound.SPI), "replaces": fmt.Sprintf("%08x", old.pair.Inbound.SPI),
		"collision": rk.oursPending}).Debug("the peer rekeys the child SA: new inbound SA installed before our response; we send on the old pair until the peer deletes it")
	return nil
}

// childEstablishedOurs (initiator, response read) installs our new pair
// and resolves a collision with the peer's rekey of the same pair. old
// may be gone already: the peer deleted it while our request was out
// (section 2.25.1), having decided that its own rekey survives.
func (t *tunnel) childEstablishedOurs(c *childSA, old *childSA, rk *v2ChildRekey, n exchange.Nonces) {
	x := t.x()
	oldGone := old == nil || !t.hasChild(old)
	if rk == nil || !rk.coll.haveTheirs {
		if old != nil && x.rekeys[old] == rk {
			delete(x.rekeys, old)
		}
		if oldGone {
			if err := t.installWhole(c); err != nil {
				t.onChildFailedV2("data path refused the pair: " + err.Error())
				_ = t.e.dp.Delete(isakmp.ProtoESP, c.pair.Inbound.SPI)
				return
			}
			t.addChildV2(c, false)
			return
		}
		t.switchToOurs(c, old)
		return
	}
	rk.oursPending = false
	rk.coll.addOurs(c, n)
	out, err := rk.coll.resolve()
	if err != nil {
		// Both exchanges hold the same lowest nonce: no honest peer; keep
		// ours as if there were no collision (the peer deletes its own).
		t.log.WithError(err).Warn("rekey collision without a defined survivor: keeping our pair")
		out = v2Outcome[*childSA]{survivor: c, loser: rk.coll.theirs, oursSurvives: true}
	}
	t.log.WithFields(logrus.Fields{"survivor_spi_in": fmt.Sprintf("%08x", out.survivor.pair.Inbound.SPI),
		"redundant_spi_in": fmt.Sprintf("%08x", out.loser.pair.Inbound.SPI), "ours_survives": out.oursSurvives, "ike_version": "ikev2"}).
		Info("child SA rekey collision (both ends rekeyed): the exchange with the lowest nonce made the redundant pair (RFC 7296 2.8.1)")
	t.e.emit(Event{Tunnel: t.cfg.Name, Type: "rekey-collision", Detail: map[string]string{"sa": "child",
		"ours_survives": boolStr(out.oursSurvives), "survivor_spi_in": fmt.Sprintf("%08x", out.survivor.pair.Inbound.SPI)}})
	if out.oursSurvives {
		// The peer's pair is redundant: never sent on; the peer deletes it.
		loser := out.loser
		loser.rekeyed = true
		delete(x.rekeys, old)
		if oldGone {
			if err := t.installWhole(c); err == nil {
				t.addChildV2(c, false)
			}
		} else {
			t.switchToOurs(c, old)
		}
		t.e.afterFunc(v2LoserGrace, func() {
			if t.hasChild(loser) {
				t.deleteChild(loser, "redundant after a rekey collision, not deleted by the peer", true)
			}
		})
		return
	}
	// Ours is redundant: never installed. The peer's survives and sends
	// from the moment the peer deletes the pair both replaced (at once if
	// it did already).
	rk.survivor = out.survivor
	if oldGone {
		delete(x.rekeys, old)
	}
	t.setPhase2State("Established")
	t.tellDeletedV2(c.pair.Inbound.SPI)
	_ = t.e.dp.Delete(isakmp.ProtoESP, c.pair.Inbound.SPI)
}

// v2LoserGrace is how long a collision's redundant pair or IKE SA that
// the peer should delete may stay before we delete it ourselves.
const v2LoserGrace = 30 * time.Second

// switchToOurs makes our completed rekey's pair the sender and retires
// the pair it replaces (DELETE, then its inbound SA after v2RetireDelay).
func (t *tunnel) switchToOurs(c, old *childSA) {
	if err := t.installWhole(c); err != nil {
		t.onChildFailedV2("data path refused the pair: " + err.Error())
		_ = t.e.dp.Delete(isakmp.ProtoESP, c.pair.Inbound.SPI)
		return
	}
	old.rekeyed = true
	t.addChildV2(c, false)
	t.counters.Phase2Rekeys++
	t.retireChildV2(old, "replaced by rekey")
}

// peerDeletedChild is the peer's DELETE of pair c (ikev2_informational.go):
// a pair the peer's rekey replaced hands its traffic to the new pair
// first, and its inbound SA stays v2RetireDelay for the packets the peer
// sent on it before it moved (they are still on the way when the DELETE,
// sent right after the move, arrives).
func (t *tunnel) peerDeletedChild(c *childSA) {
	x := t.x()
	if x.closing[c] && c.rekeyed {
		return // already retiring
	}
	if rk := x.rekeys[c]; rk != nil {
		next := rk.survivor
		if next == nil && rk.coll.haveTheirs && !rk.coll.haveOurs {
			next = rk.coll.theirs
		}
		if next != nil && next.staged && t.hasChild(next) {
			t.activateStaged(next, "the peer deleted the pair it replaces")
			t.counters.Phase2Rekeys++
		}
		if !rk.oursPending {
			delete(x.rekeys, c)
		}
	}
	delete(x.retry, c)
	if !c.rekeyed || !t.hasSendingOther(c) {
		delete(x.closing, c)
		t.deleteChild(c, "deleted by the peer", false)
		return
	}
	x.closing[c] = true
	t.e.afterFunc(v2RetireDelay, func() {
		delete(x.closing, c)
		if t.hasChild(c) {
			t.deleteChild(c, "deleted by the peer", false)
		}
	})
}

// hasSendingOther reports whether a pair other than c sends.
func (t *tunnel) hasSendingOther(c *childSA) bool {
	for _, o := range t.children {
		if o != c && !o.staged {
			return true
		}
	}
	return false
}
