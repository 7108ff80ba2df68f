package ike

import (
	"errors"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// Exchanges on an established IKEv2 SA (CREATE_CHILD_SA, INFORMATIONAL),
// both directions, with window size 1 (RFC 7296 sections 2.1-2.3):
//
//   - requests of ours wait in a bounded queue per IKE SA and leave one at
//     a time: the next is built (SPIs, nonces, KE) only when the previous
//     one was answered, so a rekey request never carries stale state;
//     retransmission is the core's (ikev2_retransmit.go);
//   - requests of the peer pass the message ID window and the response
//     cache (exchange.Responses) and the SK integrity check before
//     anything else; a retransmitted request gets the cached response;
//   - every authenticated message from the peer is proof of life for the
//     liveness checks (ikev2_liveness.go).

// v2MaxQueue bounds the requests waiting on one IKE SA.
const v2MaxQueue = 16

// v2Request is one request of ours on an established IKE SA.
type v2Request struct {
	ex   wire.ExchangeType
	what string
	// build makes the inner payloads when the request is sent.
	build func(sa *ikev2SA) ([]wire.Payload, error)
	// onResp takes the authenticated response's payloads.
	onResp func(sa *ikev2SA, ps []wire.Payload)
	// onFail runs when the request is never answered (retransmissions
	// used up), cannot be built, or its IKE SA goes away first.
	onFail func(sa *ikev2SA, why string)
	// liveness: an empty INFORMATIONAL of the liveness checks; child: a
	// CREATE_CHILD_SA for a child SA.
	liveness, child bool
}

// v2SAX is our bookkeeping of one IKE SA beyond the core's.
type v2SAX struct {
	queue   []*v2Request
	cur     *v2Request
	closing bool // our DELETE of this IKE SA is queued or sent
}

// v2TunnelX is the tunnel's IKEv2 bookkeeping beyond the core's: the
// per-SA queues, child SA rekeys (ikev2_collision.go) and IKE SA rekeys
// (ikev2_rekey.go).
type v2TunnelX struct {
	sas      map[*ikev2SA]*v2SAX
	rekeys   map[*childSA]*v2ChildRekey // by the pair being replaced
	ikeRekey map[*ikev2SA]*v2IKERekey   // by the IKE SA being replaced
	closing  map[*childSA]bool          // pairs we delete (DELETE queued or sent)
	retry    map[*childSA]int           // TEMPORARY_FAILURE answers to our rekeys of a pair
	liveness *v2Liveness
}

func (t *tunnel) x() *v2TunnelX {
	if t.v2x == nil {
		t.v2x = &v2TunnelX{sas: map[*ikev2SA]*v2SAX{}, rekeys: map[*childSA]*v2ChildRekey{},
			ikeRekey: map[*ikev2SA]*v2IKERekey{}, closing: map[*childSA]bool{}, retry: map[*childSA]int{}}
	}
	return t.v2x
}

// x returns the SA's bookkeeping, forgetting that of deleted SAs.
func (sa *ikev2SA) x() *v2SAX {
	if sa.t == nil {
		return &v2SAX{}
	}
	tx := sa.t.x()
	for s := range tx.sas {
		if s.state == v2Deleted && s != sa {
			delete(tx.sas, s)
		}
	}
	x := tx.sas[sa]
	if x == nil {
		x = &v2SAX{}
		tx.sas[sa] = x
	}
	return x
}

// enqueue sends r now or after the requests before it.
func (sa *ikev2SA) enqueue(r *v2Request) {
	x := sa.x()
	if sa.state != v2Established {
		r.onFail(sa, "the IKE SA is not established")
		return
	}
	if len(x.queue) >= v2MaxQueue {
		r.onFail(sa, "too many requests waiting on the IKE SA")
		return
	}
	x.queue = append(x.queue, r)
	if x.cur == nil {
		sa.sendNext()
	}
}

// sendNext sends the first waiting request.
func (sa *ikev2SA) sendNext() {
	x := sa.x()
	for x.cur == nil && len(x.queue) > 0 && sa.state == v2Established {
		r := x.queue[0]
		x.queue = x.queue[1:]
		inner, err := r.build(sa)
		if err != nil {
			r.onFail(sa, err.Error())
			continue
		}
		mid, err := sa.reqs.Next()
		var msgs [][]byte
		if err == nil {
			msgs, err = sa.sealRequest(r.ex, mid, inner)
		}
		if err != nil {
			r.onFail(sa, err.Error())
			continue
		}
		x.cur = r
		sa.transmitRequest(mid, msgs, r.what, func() { sa.gaveUp(r) })
	}
}

// gaveUp ends a request the peer never answered. Section 2.4: an IKE SA
// whose requests go unanswered is dead, and it goes with its child SAs
// (the tunnel's retry or DPD restart brings it back); only the liveness
// checks leave the verdict to the monitor and the tunnel's DPD action.
func (sa *ikev2SA) gaveUp(r *v2Request) {
	x := sa.x()
	if x.cur == r {
		x.cur = nil
	}
	why := sa.giveUpReason(r.what)
	r.onFail(sa, why)
	if r.liveness || sa.state != v2Established {
		sa.sendNext()
		return
	}
	if sa.t != nil {
		sa.t.setError(why)
	}
	sa.delete(why, false)
}

// failQueued fails every request of a deleted IKE SA.
func (sa *ikev2SA) failQueued(why string) {
	x := sa.x()
	rs := x.queue
	if x.cur != nil {
		rs = append([]*v2Request{x.cur}, rs...)
	}
	x.cur, x.queue = nil, nil
	for _, r := range rs {
		r.onFail(sa, why)
	}
}

// handleResponseV2 takes the response to our outstanding request.
func (sa *ikev2SA) handleResponseV2(h wire.Header, b []byte) {
	x := sa.x()
	mid, outstanding := sa.reqs.Outstanding()
	if !outstanding || h.MessageID != mid || x.cur == nil || x.cur.ex != h.Exchange {
		sa.e.countDrop(dropV2WrongDirection)
		return
	}
	var ps []wire.Payload
	var err error
	if h.NextPayload == wire.PayloadSKF {
		var done bool
		if ps, _, done, err = sa.openFragment(h, b); err == nil && !done {
			return // more fragments to come (RFC 7383)
		}
	} else {
		ps, err = sa.open(b)
	}
	if errors.Is(err, wire.ErrAuthentication) || errors.Is(err, errFragmentIgnored) {
		sa.e.countDrop(dropV2Integrity)
		return
	}
	sa.reqs.Response(mid)
	sa.out.stop()
	r := x.cur
	x.cur = nil
	sa.t.v2Seen("IKE response")
	if err != nil {
		sa.logger().WithError(err).WithField("message", r.what).Warn("malformed response: the request failed")
		r.onFail(sa, "malformed response: "+err.Error())
	} else {
		r.onResp(sa, ps)
	}
	sa.sendNext()
}

// receiveRequestV2 passes a request of the peer through the window, the
// cache and the integrity check; ok false means it was handled (cached
// answer, drop). A fragmented request (RFC 7383) is reassembled first;
// raw is what names the request in the response cache (fragment 1).
func (sa *ikev2SA) receiveRequestV2(h wire.Header, b []byte) (ps []wire.Payload, raw []byte, ok bool) {
	raw = b
	if h.NextPayload == wire.PayloadSKF && h.MessageID == sa.resps.Expected() && sa.state == v2Established {
		var done bool
		var err error
		if ps, raw, done, err = sa.openFragment(h, b); err != nil || !done {
			if err != nil {
				sa.e.countDrop(dropV2Integrity)
				sa.logger().WithError(err).Debug("IKE fragment unusable: dropped")
			}
			return nil, nil, false
		}
	}
	verdict, cached, why := sa.resps.Receive(h.MessageID, raw)
	switch verdict {
	case exchange.Retransmit:
		sa.answerCached(cached, h.Exchange.String()+" response")
		return nil, nil, false
	case exchange.Drop:
		sa.e.countDrop(dropV2MessageID)
		sa.logger().WithFields(logrus.Fields{"why": why, "exchange": h.Exchange.String()}).Debug("request outside the window: dropped")
		return nil, nil, false
	}
	if sa.state != v2Established {
		// Section 2.21: nothing but IKE_AUTH before the IKE SA is up.
		sa.resps.Abandon()
		sa.e.countDrop(dropV2UnexpectedState)
		sa.logger().WithField("exchange", h.Exchange.String()).Info("request before the IKE SA is established: dropped")
		return nil, nil, false
	}
	var err error
	if ps == nil {
		ps, err = sa.open(b)
	}
	switch {
	case errors.Is(err, wire.ErrAuthentication):
		sa.resps.Abandon()
		sa.e.countDrop(dropV2Integrity)
		return nil, nil, false
	case err != nil:
		// Authentic but malformed: INVALID_SYNTAX (section 2.21.3), or
		// UNSUPPORTED_CRITICAL_PAYLOAD naming the type (section 2.5).
		sa.t.v2Seen("IKE request")
		n := &wire.Notify{NotifyType: wire.NotifyInvalidSyntax}
		var uc *wire.UnsupportedCriticalError
		if errors.As(err, &uc) {
			n = wire.UnsupportedCritical(uc.Type)
		}
		sa.logger().WithError(err).WithFields(logrus.Fields{"exchange": h.Exchange.String(), "notify": n.NotifyType.String()}).Warn("malformed request: refused")
		sa.answerV2(h, raw, []wire.Payload{n})
		return nil, nil, false
	}
	sa.t.v2Seen("IKE request")
	return ps, raw, true
}

// answerV2 sends (and caches) our response to the request being
// processed; raw names the request as receiveRequestV2 returned it. A
// response too large for the path goes in fragments when the peer takes
// them.
func (sa *ikev2SA) answerV2(h wire.Header, raw []byte, out []wire.Payload) {
	for _, p := range out {
		if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() {
			sa.t.counters.NotifiesSent++
		}
	}
	msgs, err := sa.sealMessage(h.Exchange, h.MessageID, true, out)
	if err != nil {
		sa.resps.Abandon()
		sa.logger().WithError(err).Warn("cannot seal the response")
		return
	}
	_ = sa.resps.Answered(h.MessageID, raw, msgs)
	sa.sendV2Msgs(sendFirst, msgs, h.Exchange.String()+" response")
}
