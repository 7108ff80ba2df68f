package ike

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// IKE SA rekey (RFC 7296 sections 1.3.2, 2.8, 2.18): CREATE_CHILD_SA with
// an IKE proposal that carries the initiator's new SPI, Ni and KEi; the
// response carries the responder's new SPI, Nr and KEr. The new SA's keys:
// SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) with the old SA's prf,
// then the seven keys from the new transforms with the new SPIs, the
// rekey's initiator being the new SA's original initiator. Its message IDs
// start at 0. The child SAs move to it (their SPIs and keys do not
// change, so the data path does not notice), and the old SA is deleted by
// the rekey's initiator with an INFORMATIONAL DELETE.
//
// Timers as IKEv1's tunnel.go: the original initiator rekeys at
// lifetime - margin - a random share (fuzz) of the margin, the responder
// only at lifetime - margin/2 as a safety net, so that both ends rarely
// rekey at once; when they do, ikev2_collision.go picks the survivor.

// v2MaxIKESAs bounds the IKEv2 SAs of one tunnel: the current one, a
// rekeyed one and a collision's redundant one, plus one being deleted.
const v2MaxIKESAs = 4

// v2IKERekey is the rekey of one IKE SA, by us, by the peer, or both.
type v2IKERekey struct {
	coll        v2Collision[*ikev2SA]
	oursPending bool
	retries     int
}

// v2IKEOffer is our IKE SA rekey request's state.
type v2IKEOffer struct {
	spi   [8]byte
	nonce []byte
	group wire.DHGroup
	key   dh.Key
	offer *wire.SA
}

// startV2Timers runs when an IKEv2 SA is established (the core's
// IKE_AUTH, or a rekey): the IKE SA rekey timer and the liveness checks.
func (sa *ikev2SA) startV2Timers() {
	t := sa.t
	if t == nil {
		return
	}
	at := rekeyDelay(sa.lifetime, t.cfg.RekeyMargin, t.cfg.RekeyFuzz)
	if !sa.initiator {
		at = sa.lifetime - t.cfg.RekeyMargin/2
	}
	if t.cfg.RekeyMargin > 0 && at > 0 {
		sa.timers.rekey = sa.e.afterFunc(at, func() {
			if sa.state == v2Established && t.v2 == sa {
				sa.rekeyIKE("lifetime")
			}
		})
	}
	t.startLivenessV2() // ikev2_liveness.go
}

// rekeyIKE starts our rekey of the IKE SA.
func (sa *ikev2SA) rekeyIKE(why string) {
	t := sa.t
	x := t.x()
	if sa.state != v2Established || sa.x().closing || x.ikeRekey[sa] != nil && x.ikeRekey[sa].oursPending {
		return
	}
	rk := x.ikeRekey[sa]
	if rk == nil {
		rk = &v2IKERekey{}
		x.ikeRekey[sa] = rk
	}
	rk.oursPending = true
	sa.logger().WithField("why", why).Info("rekeying the IKE SA (CREATE_CHILD_SA)")
	var o *v2IKEOffer
	sa.enqueue(&v2Request{ex: wire.ExchangeCreateChildSA, what: "CREATE_CHILD_SA request (IKE SA rekey)",
		build: func(sa *ikev2SA) ([]wire.Payload, error) {
			var err error
			o, err = sa.ikeRekeyOffer()
			if err != nil {
				return nil, err
			}
			return []wire.Payload{o.offer, &wire.Nonce{Data: o.nonce}, &wire.KE{Group: o.group, Data: o.key.Public()}}, nil
		},
		onResp: func(sa *ikev2SA, ps []wire.Payload) { sa.ikeRekeyResponse(o, rk, ps) },
		onFail: func(sa *ikev2SA, why string) {
			sa.logger().WithField("why", why).Warn("IKE SA rekey failed")
			sa.ourIKERekeyEnded(rk)
		}})
}

// ikeRekeyOffer makes our request: the policy's IKE proposals with a new
// SPI, a nonce, and a KE of the group this IKE SA uses (the peer took it
// once; section 1.3.2 requires a KE).
func (sa *ikev2SA) ikeRekeyOffer() (*v2IKEOffer, error) {
	offer, first := ikeOffer(sa.t.cfg.Phase1.Proposals)
	o := &v2IKEOffer{spi: sa.e.newSPI(), nonce: randomBytes(v2NonceLen), offer: offer, group: sa.group}
	if o.group == wire.DHNone || !v2Offers(offer, o.group) {
		o.group = first
	}
	for i := range offer.Proposals {
		offer.Proposals[i].SPI = append([]byte(nil), o.spi[:]...)
	}
	g, err := dh.ByID(uint16(o.group))
	if err == nil {
		o.key, err = sa.e.newDHKey(g, rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("DH key of %s: %w", o.group, err)
	}
	return o, nil
}

// ourIKERekeyEnded clears our failed rekey; a rekey of the peer's that we
// answered meanwhile then stands alone.
func (sa *ikev2SA) ourIKERekeyEnded(rk *v2IKERekey) {
	rk.oursPending = false
	t := sa.t
	if rk.coll.haveTheirs && !rk.coll.haveOurs {
		t.ikeRekeyed(sa, rk.coll.theirs, false)
	}
}

// ikeRekeyResponse is the initiator's reading of the response.
func (sa *ikev2SA) ikeRekeyResponse(o *v2IKEOffer, rk *v2IKERekey, ps []wire.Payload) {
	t := sa.t
	if n := v2ErrorNotify(ps); n != nil {
		t.counters.NotifiesReceived++
		sa.ourIKERekeyEnded(rk)
		if n.NotifyType == wire.NotifyTemporaryFailure && rk.retries < v2MaxRekeyRetries && sa.state == v2Established {
			rk.retries++
			wait := v2RetryWait()
			sa.logger().WithField("retry_in", wait.Round(time.Millisecond).String()).Info("the peer cannot rekey the IKE SA now (TEMPORARY_FAILURE): retrying later")
			sa.timers.rekey = sa.e.afterFunc(wait, func() {
				if t.v2 == sa {
					sa.rekeyIKE("retry after TEMPORARY_FAILURE")
				}
			})
			return
		}
		sa.logger().WithField("notify", n.NotifyType.String()).Warn("the peer refused the IKE SA rekey")
		return
	}
	nsa, err := sa.readIKERekeyResponse(o, ps)
	if err != nil {
		sa.ourIKERekeyEnded(rk)
		sa.logger().WithError(err).Warn("IKE SA rekey response unusable")
		return
	}
	rk.oursPending = false
	rk.coll.addOurs(nsa, exchange.Nonces{Ni: o.nonce, Nr: nsa.nr})
	sa.resolveIKERekey(rk, nsa)
}

// readIKERekeyResponse checks the response and makes the new SA.
func (sa *ikev2SA) readIKERekeyResponse(o *v2IKEOffer, ps []wire.Payload) (*ikev2SA, error) {
	saP, n := v2FindSA(ps)
	nonce, ke, nn, nk := v2NonceKE(ps)
	if saP == nil || n != 1 || nn != 1 || nk != 1 {
		return nil, fmt.Errorf("response with %d SA, %d Nonce, %d KE payloads", n, nn, nk)
	}
	choice, err := exchange.CheckReply(o.offer, saP)
	if err != nil {
		return nil, err
	}
	if len(choice.PeerSPI) != 8 || choice.DH != o.group || ke.Group != o.group {
		return nil, fmt.Errorf("responder's SPI of %d bytes, group %s, KE of %s (we sent %s)", len(choice.PeerSPI), choice.DH, ke.Group, o.group)
	}
	gir, err := o.key.SharedSecret(ke.Data)
	if err != nil {
		return nil, err
	}
	var spiR [8]byte
	copy(spiR[:], choice.PeerSPI)
	return sa.rekeyedSA(true, o.spi, spiR, choice, gir, o.nonce, nonce)
}

// answerIKERekey is the responder's side (section 1.3.2).
func (sa *ikev2SA) answerIKERekey(ps []wire.Payload) []wire.Payload {
	t := sa.t
	x := t.x()
	rk := x.ikeRekey[sa]
	switch {
	case rk != nil && rk.coll.haveTheirs:
		return sa.refusalV2(v2Refuse(wire.NotifyTemporaryFailure, "the peer rekeyed this IKE SA already"), "IKE SA rekey")
	case len(t.v2SAs) >= v2MaxIKESAs:
		return sa.refusalV2(v2Refuse(wire.NotifyTemporaryFailure, "%d IKE SAs on the tunnel", len(t.v2SAs)), "IKE SA rekey")
	}
	cur := sa.x().cur
	if e := v2IKERekeyVerdict(sa.state == v2Established, sa.x().closing, cur != nil && cur.child); e != nil {
		return sa.refusalV2(e, "IKE SA rekey")
	}
	nsa, out, err := sa.acceptIKERekey(ps)
	if err != nil {
		return sa.refusalV2(err, "IKE SA rekey")
	}
	if rk == nil {
		rk = &v2IKERekey{}
		x.ikeRekey[sa] = rk
	}
	rk.coll.addTheirs(nsa, exchange.Nonces{Ni: nsa.ni, Nr: nsa.nr})
	if !rk.oursPending {
		t.ikeRekeyed(sa, nsa, false) // the peer deletes the old SA
	}
	return out
}

// acceptIKERekey selects, checks KE and makes the new SA and the reply.
func (sa *ikev2SA) acceptIKERekey(ps []wire.Payload) (*ikev2SA, []wire.Payload, error) {
	t := sa.t
	saP, _ := v2FindSA(ps)
	nonce, ke, nn, nk := v2NonceKE(ps)
	if nn != 1 || nk != 1 {
		return nil, nil, v2Refuse(wire.NotifyInvalidSyntax, "IKE SA rekey with %d Nonce and %d KE payloads", nn, nk)
	}
	pol, err := ikePolicy(t.cfg.Phase1.Proposals)
	if err != nil {
		return nil, nil, err
	}
	choice, err := exchange.Select(saP, pol, exchange.Options{Rule: v2Rule(t.cfg.Phase1.Selection), KEGroup: ke.Group, IKERekey: true})
	if err != nil {
		return nil, nil, err
	}
	if err := exchange.CheckKE(choice.DH, ke); err != nil {
		return nil, nil, err
	}
	g, err := dh.ByID(uint16(choice.DH))
	var key dh.Key
	if err == nil {
		key, err = sa.e.newDHKey(g, rand.Reader)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("DH key of %s: %w", choice.DH, err)
	}
	gir, err := key.SharedSecret(ke.Data)
	if err != nil {
		return nil, nil, v2Refuse(wire.NotifyInvalidSyntax, "the peer's KE value of %s is invalid", choice.DH)
	}
	var spiI [8]byte
	copy(spiI[:], choice.PeerSPI)
	nr := randomBytes(v2NonceLen)
	nsa, err := sa.rekeyedSA(false, spiI, sa.e.newSPI(), choice, gir, nonce, nr)
	if err != nil {
		return nil, nil, err
	}
	out := []wire.Payload{choice.Reply(nsa.spiR[:]), &wire.Nonce{Data: nr}, &wire.KE{Group: choice.DH, Data: key.Public()}}
	return nsa, out, nil
}

// rekeyedSA makes and registers the new IKE SA of a rekey of sa.
func (sa *ikev2SA) rekeyedSA(initiator bool, spiI, spiR [8]byte, choice *exchange.Choice, gir, ni, nr []byte) (*ikev2SA, error) {
	skeyseed, err := keymat.RekeySKEYSEED(sa.prf, sa.keys.D, gir, ni, nr)
	if err != nil {
		return nil, err
	}
	n := &ikev2SA{e: sa.e, t: sa.t, initiator: initiator, state: v2Established, spiI: spiI, spiR: spiR,
		local: sa.local, remote: sa.remote, created: timeNow(), chosen: choice, proposal: v2Proposal(choice), group: choice.DH,
		ni: ni, nr: nr, localBehindNAT: sa.localBehindNAT, remoteBehindNAT: sa.remoteBehindNAT, floated: sa.floated,
		natd: sa.natd, peerFragments: sa.peerFragments, lifetime: sa.t.cfg.Phase1.Lifetime}
	suite := choice.Suite()
	n.prf = suite.PRF
	if n.keys, err = keymat.DeriveIKE(suite, skeyseed, ni, nr, spiI[:], spiR[:]); err != nil {
		return nil, err
	}
	encr, integ := wire.EncrID(suite.Encr.ID), wire.IntegID(suite.Integ.ID)
	ki := wire.Keys{Encr: encr, Integ: integ, EncrKey: n.keys.Ei, IntegKey: n.keys.Ai}
	kr := wire.Keys{Encr: encr, Integ: integ, EncrKey: n.keys.Er, IntegKey: n.keys.Ar}
	if !initiator {
		ki, kr = kr, ki
	}
	if n.sealer, err = wire.NewSuite(ki); err == nil {
		n.opener, err = wire.NewSuite(kr)
	}
	if err != nil {
		return nil, err
	}
	if _, used := sa.e.sas2[n.ourSPI()]; used {
		return nil, errors.New("IKE SPI in use")
	}
	n.established = timeNow()
	n.expires = n.established.Add(n.lifetime)
	sa.e.addSA2(n)
	n.timers.expire = sa.e.afterFunc(n.lifetime, func() {
		if n.state == v2Established {
			n.logger().Info("IKE SA lifetime expired")
			n.delete("IKE SA lifetime expired", true)
		}
	})
	n.keyLog()
	return n, nil
}

// resolveIKERekey decides after our rekey completed.
func (sa *ikev2SA) resolveIKERekey(rk *v2IKERekey, ours *ikev2SA) {
	t := sa.t
	if !rk.coll.haveTheirs {
		t.ikeRekeyed(sa, ours, true)
		return
	}
	out, err := rk.coll.resolve()
	if err != nil {
		sa.logger().WithError(err).Warn("IKE SA rekey collision without a defined survivor: keeping ours")
		out = v2Outcome[*ikev2SA]{survivor: ours, loser: rk.coll.theirs, oursSurvives: true}
	}
	sa.logger().WithFields(logrus.Fields{"ours_survives": out.oursSurvives, "survivor": out.survivor.String(), "redundant": out.loser.String()}).
		Info("IKE SA rekey collision (both ends rekeyed): the exchange with the lowest nonce made the redundant SA (RFC 7296 2.8.2)")
	t.e.emit(Event{Tunnel: t.cfg.Name, Type: "rekey-collision", Detail: map[string]string{"sa": "ike", "ours_survives": boolStr(out.oursSurvives)}})
	t.ikeRekeyed(sa, out.survivor, out.oursSurvives)
	loser := out.loser
	if !out.oursSurvives {
		loser.retireIKE("redundant after a rekey collision") // ours: we delete it
		return
	}
	// The peer deletes the redundant SA once its own exchange completes;
	// if our DELETE of the old SA came first, the peer's exchange never
	// completes there and the SA is ours to remove.
	sa.e.afterFunc(v2RetireDelay, func() {
		if loser.state == v2Established && t.v2 != loser {
			loser.retireIKE("redundant after a rekey collision, not deleted by the peer")
		}
	})
}

// ikeRekeyed moves the tunnel to the new IKE SA: children, the queue of
// requests not yet sent, status; the old SA is deleted by us if we
// initiated the surviving rekey, else by the peer.
func (t *tunnel) ikeRekeyed(old, nsa *ikev2SA, weDeleteOld bool) {
	if t.v2 == nsa || nsa.state != v2Established {
		return
	}
	for _, c := range t.children {
		if c.ikev2 == old {
			c.ikev2 = nsa
		}
	}
	ox := old.x()
	waiting := ox.queue
	ox.queue = nil
	t.v2 = nsa
	t.counters.Phase1Established++
	t.counters.Phase1Rekeys++
	t.lastError = ""
	t.setPhase1State("Established")
	t.log.WithFields(logrus.Fields{"role": nsa.role(), "ike_version": "ikev2", "proposal": nsa.proposal.String(), "old": old.String(),
		"new": nsa.String(), "we_delete_old": weDeleteOld}).Info("IKE SA rekeyed (IKEv2): child SAs moved to the new IKE SA")
	t.e.emit(Event{Tunnel: t.cfg.Name, Type: "phase1-up", Detail: map[string]string{"role": nsa.role(), "proposal": nsa.proposal.String(),
		"exchange": "CREATE_CHILD_SA", "ike_version": "ikev2", "rekey": "true"}})
	nsa.startV2Timers()
	for _, r := range waiting {
		nsa.enqueue(r)
	}
	delete(t.x().ikeRekey, old)
	if weDeleteOld {
		old.retireIKE("replaced by a rekeyed IKE SA")
	}
}

// beforeIKEDeleted runs when the peer deletes an IKE SA that a rekey
// replaced: the child SAs move to the new IKE SA first (the peer's rekey,
// which the peer's DELETE shows survived), so that they do not go down
// with the old one.
func (t *tunnel) beforeIKEDeleted(old *ikev2SA) {
	rk := t.x().ikeRekey[old]
	if rk == nil || !rk.coll.haveTheirs {
		return
	}
	t.ikeRekeyed(old, rk.coll.theirs, false)
}

// rekeyV2 is the control API's rekey of an IKEv2 tunnel: phase 1 rekeys
// the IKE SA, phase 2 the newest child SA (or makes one).
func (t *tunnel) rekeyV2(phase int, reason string) error {
	sa := t.v2
	if sa == nil || sa.state != v2Established {
		return fmt.Errorf("tunnel %s: the IKE SA is not established", t.cfg.Name)
	}
	if phase == 1 {
		sa.rekeyIKE(reason)
		return nil
	}
	for i := len(t.children) - 1; i >= 0; i-- {
		if c := t.children[i]; c.ikev2 != nil && !c.rekeyed && !t.x().closing[c] {
			t.rekeyChildV2(c, reason)
			return nil
		}
	}
	sa.createChild(nil, wire.DHNone)
	return nil
}
