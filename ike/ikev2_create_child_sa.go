package ike

import (
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// CREATE_CHILD_SA in the engine (RFC 7296 sections 1.3.1, 1.3.3, 2.17,
// 2.25): our requests for a new child SA or the rekey of one (queued on
// the current IKE SA, ikev2_queue.go), the reading of the response and
// the refusals we act on (TEMPORARY_FAILURE: retry later;
// CHILD_SA_NOT_FOUND: delete and create anew; INVALID_KE_PAYLOAD: retry
// with the group asked for), and the responder's side. The messages and
// keys are in ikev2_child_msgs.go, the IKE SA rekey (an IKE proposal in
// the same exchange) in ikev2_rekey.go, and what happens to the data path
// and to collisions in ikev2_collision.go.

// v2MaxRekeyRetries bounds our retries of a child SA rekey the peer
// answered TEMPORARY_FAILURE (section 2.25: retry after a wait, give up
// after several minutes).
const v2MaxRekeyRetries = 5

// v2RetryWait is the wait before such a retry: 2 to 4 s, random, so that
// two ends that refused each other do not meet again.
func v2RetryWait() time.Duration {
	return 2*time.Second + time.Duration(mrand.Int64N(int64(2*time.Second)))
}

// rekeyChildV2 rekeys the IKEv2 pair c (its lifetime, the control API).
func (t *tunnel) rekeyChildV2(c *childSA, why string) {
	sa := t.v2
	if sa == nil || sa.state != v2Established {
		if t.wantUp {
			t.initiate("IKEv2 child SA rekey needs an IKE SA")
		}
		return
	}
	x := t.x()
	if x.closing[c] || c.rekeyed || !t.hasChild(c) {
		return
	}
	if rk := x.rekeys[c]; rk != nil && rk.oursPending {
		return
	}
	t.log.WithFields(logrus.Fields{"why": why, "spi_in": fmt.Sprintf("%08x", c.pair.Inbound.SPI), "ike_version": "ikev2"}).Info("rekeying the child SA (CREATE_CHILD_SA)")
	t.setPhase2State("Rekeying")
	sa.createChild(c, wire.DHNone)
}

// createChild queues our CREATE_CHILD_SA for a new child SA (old nil) or
// the rekey of old. group forces the PFS group (after INVALID_KE_PAYLOAD).
func (sa *ikev2SA) createChild(old *childSA, group wire.DHGroup) {
	t := sa.t
	var rk *v2ChildRekey
	if old != nil {
		rk = t.x().rekey(old)
		rk.oursPending = true
	}
	var o *v2ChildOffer
	what := "CREATE_CHILD_SA request (new child SA)"
	if old != nil {
		what = "CREATE_CHILD_SA request (child SA rekey)"
	}
	sa.enqueue(&v2Request{ex: wire.ExchangeCreateChildSA, what: what, child: true,
		build: func(sa *ikev2SA) ([]wire.Payload, error) {
			var err error
			o, err = sa.childOfferV2(old, group)
			if err != nil {
				return nil, err
			}
			return o.payloads(), nil
		},
		onResp: func(sa *ikev2SA, ps []wire.Payload) { sa.childResponseV2(o, old, rk, ps) },
		onFail: func(sa *ikev2SA, why string) {
			if o != nil {
				_ = sa.e.dp.Delete(isakmp.ProtoESP, o.spiIn)
			}
			t.ourChildRekeyEnded(old, rk)
			t.onChildFailedV2(why)
			t.retryRekeyLater(old)
		}})
}

// childOfferV2 makes our request: a fresh SPI and nonce, the policy's
// proposals with their PFS groups, and a KE of the first group (or group).
func (sa *ikev2SA) childOfferV2(old *childSA, group wire.DHGroup) (*v2ChildOffer, error) {
	t := sa.t
	spi, err := sa.e.dp.AllocateSPI(isakmp.ProtoESP)
	if err != nil {
		return nil, fmt.Errorf("allocate SPI: %w", err)
	}
	o := &v2ChildOffer{spiIn: spi, nonce: randomBytes(v2NonceLen), transport: t.cfg.Phase2.Mode == childsa.ModeTransport,
		sa: childOffer(t.cfg.Phase2.Proposals, spi, true)}
	local, remote := t.cfg.Phase2.LocalTS, t.cfg.Phase2.RemoteTS
	if old != nil {
		o.rekeys, local, remote = old.pair.Inbound.SPI, old.pair.LocalTS, old.pair.RemoteTS
	}
	o.tsi = &wire.TS{Selectors: []wire.Selector{wire.SelectorFromPrefix(local)}}
	o.tsr = &wire.TS{Responder: true, Selectors: []wire.Selector{wire.SelectorFromPrefix(remote)}}
	if group == wire.DHNone && old != nil && v2Offers(o.sa, wire.DHGroup(old.proposal.PFSGroup)) {
		group = wire.DHGroup(old.proposal.PFSGroup) // the group the peer took last time
	}
	if group == wire.DHNone {
		group = v2FirstGroup(o.sa)
	}
	if group != wire.DHNone {
		g, err := dh.ByID(uint16(group))
		if err == nil {
			o.dhKey, err = sa.e.newDHKey(g, rand.Reader)
		}
		if err != nil {
			_ = sa.e.dp.Delete(isakmp.ProtoESP, spi)
			return nil, fmt.Errorf("DH key of %s: %w", group, err)
		}
		o.group = group
	}
	return o, nil
}

// v2FirstGroup is the first PFS group of an ESP offer (DHNone: none).
func v2FirstGroup(sa *wire.SA) wire.DHGroup {
	for _, p := range sa.Proposals {
		for _, tr := range p.Transforms {
			if tr.Type == wire.TransformDH && wire.DHGroup(tr.ID) != wire.DHNone {
				return wire.DHGroup(tr.ID)
			}
		}
	}
	return wire.DHNone
}

// childResponseV2 is the initiator's reading of the response.
func (sa *ikev2SA) childResponseV2(o *v2ChildOffer, old *childSA, rk *v2ChildRekey, ps []wire.Payload) {
	t := sa.t
	res, err := v2ReadChildResponse(o, ps)
	if err != nil {
		_ = sa.e.dp.Delete(isakmp.ProtoESP, o.spiIn)
		t.ourChildRekeyEnded(old, rk)
		sa.childRefused(o, old, err)
		return
	}
	pair, prop, err := sa.childPairV2(v2ChildKeys{prf: sa.prf, skd: sa.keys.D, gir: res.gir, ni: o.nonce, nr: res.nonce,
		choice: res.choice, initiator: true, spiIn: o.spiIn, spiOut: res.spiOut}, res.tsi, res.tsr, o.transport)
	if err != nil {
		_ = sa.e.dp.Delete(isakmp.ProtoESP, o.spiIn)
		t.ourChildRekeyEnded(old, rk)
		t.onChildFailedV2("the peer's child SA: " + err.Error())
		return
	}
	c := &childSA{pair: pair, proposal: prop, initiator: true, established: timeNow(), ikev2: sa}
	t.childEstablishedOurs(c, old, rk, exchange.Nonces{Ni: o.nonce, Nr: res.nonce}) // ikev2_collision.go
}

// childRefused handles an error answer or an unusable response.
func (sa *ikev2SA) childRefused(o *v2ChildOffer, old *childSA, err error) {
	t := sa.t
	ref, ok := err.(*v2Refused)
	if !ok {
		t.onChildFailedV2("the peer's CREATE_CHILD_SA response: " + err.Error())
		return
	}
	t.counters.NotifiesReceived++
	f := t.log.WithFields(logrus.Fields{"notify": ref.Notify.String(), "ike_version": "ikev2"})
	switch ref.Notify {
	case wire.NotifyTemporaryFailure:
		if !t.retryRekeyLater(old) {
			t.onChildFailedV2("the peer answered TEMPORARY_FAILURE")
			return
		}
		t.setPhase2State("Established")
		f.Info("the peer cannot rekey the child SA now (TEMPORARY_FAILURE): retrying later")
	case wire.NotifyChildSANotFound:
		// Section 2.25: delete the pair silently, create a new one.
		if old != nil {
			f.WithField("spi_in", fmt.Sprintf("%08x", old.pair.Inbound.SPI)).Warn("the peer does not know the child SA we rekeyed (CHILD_SA_NOT_FOUND): deleting it and creating a new one")
			t.deleteChild(old, "the peer does not know it (CHILD_SA_NOT_FOUND)", false)
		}
		sa.createChild(nil, wire.DHNone)
	case wire.NotifyInvalidKEPayload:
		g, gerr := (&wire.Notify{NotifyType: ref.Notify, Data: ref.Data}).Group()
		if gerr != nil || g == o.group || !v2Offers(o.sa, g) {
			t.onChildFailedV2("the peer asked for an unusable DH group (INVALID_KE_PAYLOAD)")
			return
		}
		f.WithField("group", g.String()).Info("the peer wants another PFS group (INVALID_KE_PAYLOAD): retrying")
		sa.createChild(old, g)
	default:
		t.onChildFailedV2("the peer refused the child SA with " + ref.Notify.String())
	}
}

// retryRekeyLater schedules another rekey of old after a failed one (the
// peer's TEMPORARY_FAILURE, an IKE SA that went away under the request),
// at most v2MaxRekeyRetries times; false when it will not.
func (t *tunnel) retryRekeyLater(old *childSA) bool {
	x := t.x()
	if old == nil || !t.hasChild(old) || old.rekeyed || x.closing[old] || x.retry[old] >= v2MaxRekeyRetries {
		return false
	}
	x.retry[old]++
	t.e.afterFunc(v2RetryWait(), func() { t.rekeyChildV2(old, "retry of a failed rekey") })
	return true
}

// v2Offers reports whether an SA payload offers DH group g.
func v2Offers(sa *wire.SA, g wire.DHGroup) bool {
	for _, p := range sa.Proposals {
		for _, tr := range p.Transforms {
			if tr.Type == wire.TransformDH && wire.DHGroup(tr.ID) == g {
				return true
			}
		}
	}
	return false
}

// childPairV2 derives a CREATE_CHILD_SA pair and fills in what the data
// path needs besides the keys, as the core's first child SA does.
func (sa *ikev2SA) childPairV2(k v2ChildKeys, tsi, tsr *wire.TS, transport bool) (ChildSAPair, Phase2Proposal, error) {
	t := sa.t
	ltsP, rtsP := tsi, tsr // we initiated: TSi is ours
	if !k.initiator {
		ltsP, rtsP = tsr, tsi
	}
	lts, err := v2SelectorPrefix(ltsP)
	if err != nil {
		return ChildSAPair{}, Phase2Proposal{}, err
	}
	rts, err := v2SelectorPrefix(rtsP)
	if err != nil {
		return ChildSAPair{}, Phase2Proposal{}, err
	}
	mode := childsa.ModeTunnel
	if transport {
		mode = childsa.ModeTransport
	}
	base := ChildSAPair{Tunnel: t.cfg.Name, Mode: mode, UDPEncap: sa.natDetected(), Local: sa.local, Remote: sa.remote,
		LocalTS: lts, RemoteTS: rts, Lifetime: t.cfg.Phase2.Lifetime, LifetimeKB: t.cfg.Phase2.LifetimeKB, ReplayWindow: t.cfg.Phase2.ReplayWindow}
	if !base.UDPEncap {
		base.Local = netip.AddrPortFrom(sa.local.Addr(), 0)
		base.Remote = netip.AddrPortFrom(sa.remote.Addr(), 0)
	}
	pair, err := v2DerivePair(k, base)
	if err != nil {
		return ChildSAPair{}, Phase2Proposal{}, err
	}
	prop := Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: pair.Inbound.Encryption, EncKeyBits: k.choice.Encr.KeyBits,
		Integrity: pair.Inbound.Integrity, PFSGroup: uint16(k.choice.DH)}
	return pair, prop, nil
}

// handleCreateChildSA takes a CREATE_CHILD_SA message (dispatch).
func (sa *ikev2SA) handleCreateChildSA(h wire.Header, b []byte) {
	if h.Response() {
		sa.handleResponseV2(h, b) // ikev2_queue.go
		return
	}
	ps, raw, ok := sa.receiveRequestV2(h, b)
	if !ok {
		return
	}
	kind, err := v2ClassifyCreateChild(ps)
	var out []wire.Payload
	switch {
	case err != nil:
		out = sa.refusalV2(err, "CREATE_CHILD_SA")
	case kind == v2RekeyIKE:
		out = sa.answerIKERekey(ps) // ikev2_rekey.go
	default:
		out = sa.answerChildV2(ps, kind)
	}
	sa.answerV2(h, raw, out)
}

// refusalV2 is the response payload of a refused request, logged.
func (sa *ikev2SA) refusalV2(err error, what string) []wire.Payload {
	n := &wire.Notify{NotifyType: wire.NotifyNoProposalChosen}
	var xe *exchange.Error
	if errors.As(err, &xe) {
		n = xe.Payload()
	}
	sa.logger().WithFields(logrus.Fields{"notify": n.NotifyType.String(), "exchange": what}).Warn("refusing the peer's request: " + err.Error())
	return []wire.Payload{n}
}

// answerChildV2 is the responder's new or rekeyed child SA. The pair's
// inbound SA is installed before the response leaves (ikev2_collision.go).
func (sa *ikev2SA) answerChildV2(ps []wire.Payload, kind v2CreateChildKind) []wire.Payload {
	t := sa.t
	req, err := v2ParseChildRequest(ps)
	if err != nil {
		return sa.refusalV2(err, kind.String())
	}
	var old *childSA
	if sa.x().closing {
		return sa.refusalV2(v2Refuse(wire.NotifyTemporaryFailure, "the IKE SA is being deleted"), kind.String())
	}
	if kind == v2RekeyChild {
		old = t.childByOutboundV2(req.rekeySPI)
		if e := v2RekeyVerdict(req.rekeySPI, t.rekeyTarget(old)); e != nil {
			return sa.refusalV2(e, kind.String())
		}
	} else if e := v2NewChildVerdict(len(t.children)); e != nil {
		return sa.refusalV2(e, kind.String())
	}
	pol, err := childPolicy(t.cfg.Phase2.Proposals)
	if err != nil {
		return sa.refusalV2(err, kind.String())
	}
	lim := v2ChildLimits{policy: pol, rule: v2Rule(t.cfg.Phase2.Selection), transport: t.cfg.Phase2.Mode == childsa.ModeTransport,
		remote: []wire.Selector{wire.SelectorFromPrefix(t.cfg.Phase2.RemoteTS)}, local: []wire.Selector{wire.SelectorFromPrefix(t.cfg.Phase2.LocalTS)}}
	spi, err := sa.e.dp.AllocateSPI(isakmp.ProtoESP)
	if err != nil {
		return sa.refusalV2(v2Refuse(wire.NotifyNoAdditionalSAs, "allocate SPI: %v", err), kind.String())
	}
	nonce := randomBytes(v2NonceLen)
	a, err := v2AnswerChild(req, lim, spi, nonce, func(g wire.DHGroup) (dh.Key, error) {
		grp, err := dh.ByID(uint16(g))
		if err != nil {
			return nil, err
		}
		return sa.e.newDHKey(grp, rand.Reader)
	})
	var pair ChildSAPair
	var prop Phase2Proposal
	if err == nil {
		pair, prop, err = sa.childPairV2(v2ChildKeys{prf: sa.prf, skd: sa.keys.D, gir: a.gir, ni: req.nonce, nr: nonce,
			choice: a.choice, spiIn: spi, spiOut: a.spiOut}, a.narrowed.TSi, a.narrowed.TSr, req.transport)
		if err != nil {
			err = v2Refuse(wire.NotifyTSUnacceptable, "%v", err)
		}
	}
	if err == nil {
		c := &childSA{pair: pair, proposal: prop, established: timeNow(), ikev2: sa}
		err = t.childStagedTheirs(c, old, exchange.Nonces{Ni: req.nonce, Nr: nonce}) // ikev2_collision.go
	}
	if err != nil {
		_ = sa.e.dp.Delete(isakmp.ProtoESP, spi)
		return sa.refusalV2(err, kind.String())
	}
	return a.payloads
}

// childByOutboundV2 finds the IKEv2 pair that sends to spi.
func (t *tunnel) childByOutboundV2(spi uint32) *childSA {
	for _, c := range t.children {
		if c.ikev2 != nil && c.pair.Outbound.SPI == spi {
			return c
		}
	}
	return nil
}
