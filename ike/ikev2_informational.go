package ike

import (
	"encoding/binary"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// INFORMATIONAL (RFC 7296 sections 1.4, 1.5, 2.4, 3.11): the peer's
// requests carry DELETE payloads, notifies, or nothing (a liveness check);
// every one is answered, in the same message ID window as CREATE_CHILD_SA.
//
//   - DELETE of child SAs names the SPIs the peer receives on, i.e. our
//     outbound SPIs (section 1.4.1). We delete those pairs (a pair a rekey
//     replaced first hands its traffic to the new pair, ikev2_collision.go)
//     and answer with a DELETE of our inbound SPIs of the same pairs. SPIs
//     we do not know are skipped (counted), at most v2MaxDeleteSPIs are
//     looked at per request, so a hostile list costs nothing.
//   - DELETE of the IKE SA: answered with an empty response, then the IKE
//     SA and the child SAs it carries are gone (section 1.4.1); its
//     requests of ours still waiting fail (section 2.25.2: a rekey of ours
//     is forgotten).
//   - Error notifies are logged and counted; status notifies are ignored.
//   - Our own DELETEs go through the request queue (ikev2_queue.go): the
//     replaced pair of a rekey is deleted when the peer answered, plus
//     v2RetireDelay for its packets still in flight.

// v2MaxDeleteSPIs bounds the SPIs of one INFORMATIONAL request we look at.
const v2MaxDeleteSPIs = 64

// dropV2DeleteUnknown counts SPIs of a DELETE that name no pair of ours.
const dropV2DeleteUnknown = "ikev2-delete-unknown-spi"

// handleInformational takes an INFORMATIONAL message (dispatch).
func (sa *ikev2SA) handleInformational(h wire.Header, b []byte) {
	if h.Response() {
		sa.handleResponseV2(h, b) // ikev2_queue.go
		return
	}
	ps, raw, ok := sa.receiveRequestV2(h, b)
	if !ok {
		return
	}
	out, deleteIKE := sa.answerInformational(ps)
	sa.answerV2(h, raw, out)
	if deleteIKE {
		sa.logger().Info("the peer deleted the IKE SA (INFORMATIONAL DELETE)")
		sa.t.beforeIKEDeleted(sa) // ikev2_rekey.go
		sa.delete("deleted by the peer", false)
	}
}

// answerInformational applies the peer's request and returns our response.
func (sa *ikev2SA) answerInformational(ps []wire.Payload) (out []wire.Payload, deleteIKE bool) {
	t := sa.t
	var ours [][]byte
	looked, unknown := 0, 0
	for _, p := range ps {
		switch x := p.(type) {
		case *wire.Delete:
			if x == nil {
				continue
			}
			if x.Protocol == wire.ProtoIKE {
				deleteIKE = true
				continue
			}
			for _, s := range x.SPIs {
				if looked >= v2MaxDeleteSPIs {
					break
				}
				looked++
				c := (*childSA)(nil)
				if x.Protocol == wire.ProtoESP && len(s) == 4 {
					c = t.childByOutboundV2(binary.BigEndian.Uint32(s))
				}
				if c == nil {
					unknown++
					continue
				}
				ours = append(ours, spi4(c.pair.Inbound.SPI))
				t.peerDeletedChild(c) // ikev2_collision.go
			}
		case *wire.Notify:
			if x != nil && x.NotifyType.IsError() {
				t.counters.NotifiesReceived++
				sa.logger().WithField("notify", x.NotifyType.String()).Warn("the peer reports an error (INFORMATIONAL)")
			}
			if x != nil && x.NotifyType == wire.NotifyAuthenticationFailed {
				// The initiator did not accept our IKE_AUTH response
				// (ikev2_auth.go refuseResponder): the IKE SA and its
				// children end as with a DELETE, the reason kept.
				t.setError("IKEv2: the peer refused our authentication (AUTHENTICATION_FAILED after IKE_AUTH): pre-shared key or identity mismatch")
				deleteIKE = true
			}
		}
	}
	if unknown > 0 {
		sa.e.countDrop(dropV2DeleteUnknown)
		sa.logger().WithField("spis", unknown).Info("DELETE names child SAs we do not have: ignored")
	}
	if deleteIKE {
		return nil, true // section 1.4.1: the response is empty
	}
	if len(ours) > 0 {
		out = append(out, &wire.Delete{Protocol: wire.ProtoESP, SPISize: 4, SPIs: ours})
	}
	return out, false
}

// deleteRequest is an INFORMATIONAL request with one DELETE payload.
func deleteRequest(d *wire.Delete, what string, done func(sa *ikev2SA)) *v2Request {
	return &v2Request{ex: wire.ExchangeInformational, what: what,
		build:  func(*ikev2SA) ([]wire.Payload, error) { return []wire.Payload{d}, nil },
		onResp: func(sa *ikev2SA, _ []wire.Payload) { done(sa) },
		onFail: func(sa *ikev2SA, _ string) { done(sa) }}
}

// retireChildV2 deletes a pair we replaced: DELETE to the peer, and the
// pair itself once answered plus v2RetireDelay (packets in flight).
func (t *tunnel) retireChildV2(old *childSA, reason string) {
	x := t.x()
	x.closing[old] = true
	drop := func() {
		if t.hasChild(old) {
			t.deleteChild(old, reason, false)
		}
		delete(x.closing, old)
		delete(x.retry, old)
	}
	sa := t.v2
	if sa == nil || sa.state != v2Established {
		drop()
		return
	}
	d := &wire.Delete{Protocol: wire.ProtoESP, SPISize: 4, SPIs: [][]byte{spi4(old.pair.Inbound.SPI)}}
	sa.enqueue(deleteRequest(d, "INFORMATIONAL request (DELETE child SA)", func(*ikev2SA) {
		t.e.afterFunc(v2RetireDelay, func() { drop() })
	}))
}

// tellDeletedV2 tells the peer that we deleted the pair whose inbound SPI
// is spi (lifetime, superseded, a redundant pair of a collision).
func (t *tunnel) tellDeletedV2(spi uint32) {
	sa := t.v2
	if sa == nil || sa.state != v2Established {
		return
	}
	d := &wire.Delete{Protocol: wire.ProtoESP, SPISize: 4, SPIs: [][]byte{spi4(spi)}}
	sa.enqueue(deleteRequest(d, "INFORMATIONAL request (DELETE child SA)", func(*ikev2SA) {}))
}

// deleteChildTellV2 is tunnel.deleteChild's "tell the peer" for an IKEv2
// pair.
func (t *tunnel) deleteChildTellV2(c *childSA) {
	delete(t.x().closing, c)
	t.tellDeletedV2(c.pair.Inbound.SPI)
}

// retireIKE deletes an IKE SA we replaced or terminate: DELETE, then the
// SA once answered (or unanswered).
func (sa *ikev2SA) retireIKE(reason string) {
	x := sa.x()
	if x.closing || sa.state != v2Established {
		return
	}
	x.closing = true
	sa.enqueue(deleteRequest(&wire.Delete{Protocol: wire.ProtoIKE}, "INFORMATIONAL request (DELETE IKE SA)", func(sa *ikev2SA) {
		sa.delete(reason, false)
	}))
}

// sendDeleteIKENow is the DELETE of an IKE SA that is being removed at
// once (terminate, lifetime): sent once, no answer awaited. A request of
// ours still outstanding (typically the DELETE of a child SA that
// terminate sent just before) is given up: the DELETE of the IKE SA takes
// its children along (section 1.4.1) and takes the next message ID, which
// the peer accepts once it has answered that request.
func (sa *ikev2SA) sendDeleteIKENow(reason string) {
	if sa.state != v2Established {
		return
	}
	if mid, outstanding := sa.reqs.Outstanding(); outstanding {
		sa.reqs.Response(mid)
	}
	mid, err := sa.reqs.Next()
	var msgs [][]byte
	if err == nil {
		msgs, err = sa.sealRequest(wire.ExchangeInformational, mid, []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}})
	}
	if err != nil {
		sa.logger().WithError(err).Warn("cannot send the DELETE of the IKE SA")
		return
	}
	sa.sendV2Msgs(sendFirst, msgs, "INFORMATIONAL request (DELETE IKE SA)")
	sa.logger().WithFields(logrus.Fields{"reason": reason, "msgid": mid}).Info("IKE SA deleted, peer told (INFORMATIONAL DELETE)")
}
