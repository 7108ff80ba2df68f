package ike

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/auth"
	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// IKE_AUTH (RFC 7296 sections 1.2, 2.15, 2.21.2), both roles: IDi/IDr,
// AUTH with the tunnel's authenticator (a pre-shared key: auth.PSK's
// ProveV2/VerifyV2), INITIAL_CONTACT, and the first child SA
// (ikev2_child.go). An authentication failure ends the IKE SA
// (AUTHENTICATION_FAILED); a child SA that cannot be made
// (NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE) leaves the IKE SA up without it
// (section 2.21.2).

// idBody is an ID payload without its generic header (IDi'/IDr', section
// 2.15): ID Type, three reserved octets, the identification data.
func v2IDBody(id *wire.ID) []byte {
	return append([]byte{byte(id.IDType), 0, 0, 0}, id.Data...)
}

// describeID names an identity for logs and errors.
func describeID(id *wire.ID) string {
	if a, ok := id.Addr(); ok {
		return a.String()
	}
	switch id.IDType {
	case wire.IDFQDN, wire.IDRFC822Addr:
		return fmt.Sprintf("%s %q", id.IDType, string(id.Data))
	}
	return fmt.Sprintf("%s %x", id.IDType, id.Data)
}

// checkPeerID compares the peer's identity with the tunnel's RemoteID: an
// address identity equal to it, or, when RemoteID is not set ("any"),
// any address, FQDN, e-mail or KEY_ID identity. A RemoteIdentity, when
// set, takes RemoteID's place (ikev2_identity.go).
func (sa *ikev2SA) checkPeerID(id *wire.ID) error {
	if ri := sa.t.cfg.RemoteIdentity; ri.IsSet() {
		return checkPeerIdentity(id, ri)
	}
	want := sa.t.cfg.RemoteID
	if !want.IsValid() {
		switch id.IDType {
		case wire.IDIPv4Addr, wire.IDIPv6Addr, wire.IDFQDN, wire.IDRFC822Addr, wire.IDKeyID:
			if len(id.Data) > 0 {
				return nil
			}
		}
		return fmt.Errorf("peer identity of type %s is not accepted", id.IDType)
	}
	if a, ok := id.Addr(); !ok || a != want {
		return fmt.Errorf("peer identity %s is not the configured %s", describeID(id), want)
	}
	return nil
}

func findID(ps []wire.Payload, responder bool) *wire.ID {
	for _, p := range ps {
		if x, ok := p.(*wire.ID); ok && x.Responder == responder {
			return x
		}
	}
	return nil
}

func findAuth(ps []wire.Payload) *wire.Auth {
	for _, p := range ps {
		if x, ok := p.(*wire.Auth); ok {
			return x
		}
	}
	return nil
}

// sendAuthRequest is the initiator's IKE_AUTH request (after the float to
// the NAT-T port when a NAT was detected).
func (sa *ikev2SA) sendAuthRequest() {
	t := sa.t
	if sa.natDetected() {
		sa.float()
	}
	inner, err := sa.authRequestPayloads()
	if err != nil {
		sa.fail("IKEv2: IKE_AUTH request: " + err.Error())
		return
	}
	mid, err := sa.reqs.Next()
	if err != nil {
		sa.fail("IKEv2: " + err.Error())
		return
	}
	msgs, err := sa.sealRequest(wire.ExchangeIKEAuth, mid, inner)
	if err != nil {
		sa.fail("IKEv2: IKE_AUTH request: " + err.Error())
		return
	}
	sa.state = v2AuthSent
	t.log.WithFields(logrus.Fields{"floated": sa.floated, "fragments": len(msgs)}).Debug("sending IKE_AUTH request")
	sa.transmitRequest(mid, msgs, "IKE_AUTH request", func() { sa.fail(sa.giveUpReason("IKE_AUTH")) })
}

// authRequestPayloads builds IDi, AUTH, INITIAL_CONTACT and the child SA.
func (sa *ikev2SA) authRequestPayloads() ([]wire.Payload, error) {
	t := sa.t
	id, err := t.localV2ID(false) // ikev2_identity.go
	if err != nil {
		return nil, err
	}
	proof, err := t.auth.ProveV2(auth.V2{PRF: sa.prf, Message: sa.msgI, PeerNonce: sa.nr, SKp: sa.keys.Pi, IDBody: v2IDBody(id)})
	if err != nil {
		return nil, err
	}
	ps := []wire.Payload{id}
	if !t.hasOtherV2State(sa) {
		// Section 2.4: this is the only IKE SA we have with the peer.
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyInitialContact})
	}
	ps = append(ps, &wire.Auth{Method: wire.AuthPSK, Data: proof})
	child, err := sa.childRequestPayloads() // ikev2_child.go
	if err != nil {
		return nil, err
	}
	return append(ps, child...), nil
}

// hasOtherV2State reports whether the tunnel has an established IKEv2 SA
// other than current, or any child SA.
func (t *tunnel) hasOtherV2State(current *ikev2SA) bool {
	if len(t.children) > 0 {
		return true
	}
	for _, sa := range t.v2SAs {
		if sa != current && sa.state == v2Established {
			return true
		}
	}
	return false
}

// handleAuth takes an IKE_AUTH message: the responder's request or the
// initiator's response.
func (sa *ikev2SA) handleAuth(s *socket, from netip.AddrPort, h wire.Header, b []byte) {
	if h.Response() {
		sa.handleAuthResponse(h, b)
		return
	}
	if sa.initiator {
		sa.e.countDrop(dropV2WrongDirection)
		return
	}
	var ps []wire.Payload
	raw := b
	if h.NextPayload == wire.PayloadSKF && h.MessageID == sa.resps.Expected() && sa.state == v2InitReplied {
		var done bool
		var err error
		if ps, raw, done, err = sa.openFragment(h, b); err != nil || !done {
			if err != nil {
				sa.authUnreadable(h, b, err)
			}
			return
		}
	}
	verdict, cached, why := sa.resps.Receive(h.MessageID, raw)
	switch verdict {
	case exchange.Retransmit:
		sa.answerCached(cached, "IKE_AUTH response")
		return
	case exchange.Drop:
		sa.e.countDrop(dropV2MessageID)
		sa.logger().WithField("why", why).Debug("IKE_AUTH request outside the window: dropped")
		return
	}
	if sa.state != v2InitReplied {
		sa.resps.Abandon()
		sa.e.countDrop(dropV2UnexpectedState)
		return
	}
	if ps == nil {
		var err error
		if ps, err = sa.open(b); err != nil {
			sa.authUnreadable(h, b, err)
			return
		}
	}
	// The initiator may have floated to the NAT-T port (section 2.23).
	sa.local, sa.remote = s.local, from
	sa.floated = sa.floated || s.natt
	sa.answerAuthRequest(h, raw, ps)
}

// answerAuthRequest answers an IKE_AUTH request and, if it authenticated,
// establishes the IKE SA and installs the child SA.
func (sa *ikev2SA) answerAuthRequest(h wire.Header, raw []byte, ps []wire.Payload) {
	out, child, failure, childFailure := sa.answerAuth(ps)
	resp, err := sa.sealMessage(wire.ExchangeIKEAuth, h.MessageID, true, out)
	if err != nil {
		sa.resps.Abandon()
		sa.fail("IKEv2: IKE_AUTH response: " + err.Error())
		return
	}
	_ = sa.resps.Answered(h.MessageID, raw, resp)
	sa.sendV2Msgs(sendFirst, resp, "IKE_AUTH response")
	if failure != "" {
		sa.t.counters.NotifiesSent++
		sa.fail("IKEv2: " + failure)
		return
	}
	sa.establishV2(wire.FindNotify(ps, wire.NotifyInitialContact) != nil)
	switch {
	case child != nil:
		sa.installChild(child) // ikev2_child.go
	case childFailure != "":
		sa.t.onChildFailedV2(childFailure)
	}
}

// authUnreadable handles an IKE_AUTH request that does not open: an ICV
// that does not verify is dropped (section 2.21: it may be forged); a
// request that verifies but does not parse is INVALID_SYNTAX and ends the
// negotiation.
func (sa *ikev2SA) authUnreadable(h wire.Header, b []byte, err error) {
	if errors.Is(err, wire.ErrAuthentication) || errors.Is(err, errFragmentIgnored) {
		sa.resps.Abandon()
		sa.e.countDrop(dropV2Integrity)
		sa.logger().WithError(err).Warn("IKE_AUTH request fails its integrity check or is a stray fragment: dropped")
		return
	}
	n := &wire.Notify{NotifyType: wire.NotifyInvalidSyntax}
	var uc *wire.UnsupportedCriticalError
	if errors.As(err, &uc) {
		n = wire.UnsupportedCritical(uc.Type)
	}
	sa.logger().WithError(err).Warn("IKE_AUTH request is malformed: answering " + n.NotifyType.String())
	if resp, serr := sa.seal(wire.ExchangeIKEAuth, h.MessageID, true, []wire.Payload{n}); serr == nil {
		_ = sa.resps.Answered(h.MessageID, b, [][]byte{resp})
		sa.sendV2Msgs(sendFirst, [][]byte{resp}, "IKE_AUTH "+n.NotifyType.String())
	}
	sa.fail("IKEv2: malformed IKE_AUTH request (" + n.NotifyType.String() + "): " + err.Error())
}

// answerAuth is the responder's processing: the peer's identity and AUTH,
// then ours and the child SA. failure, when set, is why the IKE SA is not
// made; out then carries only the error notify.
func (sa *ikev2SA) answerAuth(ps []wire.Payload) (out []wire.Payload, child *v2Child, failure, childFailure string) {
	t := sa.t
	refuse := func(nt wire.NotifyType, why string) ([]wire.Payload, *v2Child, string, string) {
		sa.logger().WithField("notify", nt.String()).Warn("IKE_AUTH refused: " + why)
		return []wire.Payload{&wire.Notify{NotifyType: nt}}, nil, why, ""
	}
	idi, ap := findID(ps, false), findAuth(ps)
	if idi == nil || ap == nil {
		return refuse(wire.NotifyInvalidSyntax, "IKE_AUTH request without IDi or AUTH")
	}
	if err := sa.checkPeerID(idi); err != nil {
		return refuse(wire.NotifyAuthenticationFailed, "authentication failed: "+err.Error())
	}
	if ap.Method != wire.AuthPSK {
		return refuse(wire.NotifyAuthenticationFailed, fmt.Sprintf("authentication failed: peer uses %s, the tunnel a pre-shared key", ap.Method))
	}
	in := auth.V2{PRF: sa.prf, Message: sa.msgI, PeerNonce: sa.nr, SKp: sa.keys.Pi, IDBody: v2IDBody(idi)}
	if err := t.auth.VerifyV2(in, ap.Data); err != nil {
		return refuse(wire.NotifyAuthenticationFailed, "authentication failed: the peer's AUTH does not verify (pre-shared keys differ)")
	}
	id, err := t.localV2ID(true)
	if err != nil {
		return refuse(wire.NotifyAuthenticationFailed, "our identity: "+err.Error())
	}
	proof, err := t.auth.ProveV2(auth.V2{PRF: sa.prf, Message: sa.msgR, PeerNonce: sa.ni, SKp: sa.keys.Pr, IDBody: v2IDBody(id)})
	if err != nil {
		return refuse(wire.NotifyAuthenticationFailed, "our AUTH: "+err.Error())
	}
	sa.logger().WithField("peer_id", describeID(idi)).Info("IKE_AUTH: peer authenticated")
	out = []wire.Payload{id, &wire.Auth{Method: wire.AuthPSK, Data: proof}}
	cps, child, childFailure := sa.answerChild(ps) // ikev2_child.go
	return append(out, cps...), child, "", childFailure
}

// handleAuthResponse is the initiator's reading of the IKE_AUTH response.
func (sa *ikev2SA) handleAuthResponse(h wire.Header, b []byte) {
	mid, outstanding := sa.reqs.Outstanding()
	if !sa.initiator || sa.state != v2AuthSent || !outstanding || h.MessageID != mid {
		sa.e.countDrop(dropV2WrongDirection)
		return
	}
	var ps []wire.Payload
	var err error
	if h.NextPayload == wire.PayloadSKF {
		var done bool
		if ps, _, done, err = sa.openFragment(h, b); err == nil && !done {
			return
		}
	} else {
		ps, err = sa.open(b)
	}
	if errors.Is(err, wire.ErrAuthentication) || errors.Is(err, errFragmentIgnored) {
		sa.e.countDrop(dropV2Integrity)
		sa.logger().WithError(err).Warn("IKE_AUTH response fails its integrity check or is a stray fragment: dropped")
		return
	}
	sa.reqs.Response(mid)
	sa.out.stop()
	if err != nil {
		sa.fail("IKEv2: malformed IKE_AUTH response: " + err.Error())
		return
	}
	idr, ap := findID(ps, true), findAuth(ps)
	if idr == nil || ap == nil {
		for _, p := range ps {
			if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() {
				sa.failAuthNotify(n.NotifyType)
				return
			}
		}
		sa.fail("IKEv2: IKE_AUTH response without IDr or AUTH")
		return
	}
	if err := sa.checkPeerID(idr); err != nil {
		sa.refuseResponder("IKEv2: authentication failed: " + err.Error())
		return
	}
	in := auth.V2{PRF: sa.prf, Message: sa.msgR, PeerNonce: sa.ni, SKp: sa.keys.Pr, IDBody: v2IDBody(idr)}
	if ap.Method != wire.AuthPSK || sa.t.auth.VerifyV2(in, ap.Data) != nil {
		sa.refuseResponder("IKEv2: authentication failed: the peer's AUTH does not verify (pre-shared keys differ)")
		return
	}
	sa.establishV2(wire.FindNotify(ps, wire.NotifyInitialContact) != nil)
	sa.acceptChild(ps) // ikev2_child.go
}

// failAuthNotify ends the negotiation after the responder refused IKE_AUTH.
func (sa *ikev2SA) failAuthNotify(nt wire.NotifyType) {
	sa.t.counters.NotifiesReceived++
	switch nt {
	case wire.NotifyAuthenticationFailed:
		sa.fail("IKEv2: the peer refused our authentication (AUTHENTICATION_FAILED): pre-shared key or identity mismatch")
	default:
		sa.fail("IKEv2: the peer refused IKE_AUTH with " + nt.String())
	}
}

// establishV2 marks the IKE SA established.
func (sa *ikev2SA) establishV2(initialContact bool) {
	e, t := sa.e, sa.t
	peerRestarted := initialContact && !t.hasOtherV2State(sa)
	sa.state = v2Established
	sa.established = timeNow()
	sa.expires = sa.established.Add(sa.lifetime)
	e.releaseHalfOpenV2(sa)
	if sa.timers.halfOpen != nil {
		sa.timers.halfOpen.Stop()
	}
	sa.dhKey, sa.initReq = nil, nil
	t.counters.Phase1Established++
	t.counters.Exchanges.IKEAuth.Completed++
	t.v2 = sa
	t.lastError = ""
	t.failures = 0
	t.setPhase1State("Established")
	t.log.WithFields(logrus.Fields{"role": sa.role(), "ike_version": "ikev2", "proposal": sa.proposal.String(),
		"lifetime": sa.lifetime.String(), "nat_detected": sa.natDetected(), "floated": sa.floated,
		"spi_i": fmt.Sprintf("%x", sa.spiI), "spi_r": fmt.Sprintf("%x", sa.spiR)}).Info("IKE SA established (IKEv2)")
	detail := map[string]string{"role": sa.role(), "proposal": sa.proposal.String(), "exchange": "IKE_AUTH",
		"ike_version": "ikev2", "nat_detected": boolStr(sa.natDetected())}
	if initialContact {
		detail["initial_contact"] = "true"
	}
	if peerRestarted {
		detail["peer_restarted"] = "true"
	}
	e.emit(Event{Tunnel: t.cfg.Name, Type: "phase1-up", Detail: detail})
	sa.keyLog()
	sa.startV2Timers() // ikev2_rekey.go: IKE SA rekey, liveness checks
	sa.timers.expire = e.afterFunc(sa.lifetime, func() {
		if sa.state == v2Established {
			sa.logger().Info("IKE SA lifetime expired")
			sa.delete("IKE SA lifetime expired", true)
		}
	})
	if initialContact {
		t.initialContactV2(sa)
	}
	// An older IKE SA that is still up (a simultaneous initiation) is
	// left alone: replacing an IKE SA is a rekey (CREATE_CHILD_SA).
	sa.msgI, sa.msgR = nil, nil
	t.startKeepaliveV2(sa) // ikev2_natt.go
}

// initialContactV2 drops the tunnel's older state with the peer (section
// 2.4: the peer has no other IKE SA with us, so ours are stale).
func (t *tunnel) initialContactV2(current *ikev2SA) {
	for _, sa := range append([]*ikev2SA(nil), t.v2SAs...) {
		if sa != current && sa.state == v2Established {
			sa.logger().Info("INITIAL_CONTACT: deleting the older IKE SA of this peer")
			sa.delete("INITIAL_CONTACT from the peer", false)
		}
	}
	for _, c := range append([]*childSA(nil), t.children...) {
		t.deleteChild(c, "INITIAL_CONTACT from the peer", false)
	}
}

// refuseResponder ends an IKE SA whose responder did not authenticate.
// The responder has accepted us and holds an established IKE SA and child
// by now, so it is told in an INFORMATIONAL request of its own with
// AUTHENTICATION_FAILED (RFC 7296 section 2.21.2: an error found on the
// initiator may be sent in a separate INFORMATIONAL exchange), sent once,
// protected with the keys both sides have; then the SA goes.
func (sa *ikev2SA) refuseResponder(reason string) {
	mid, err := sa.reqs.Next()
	var msgs [][]byte
	if err == nil {
		msgs, err = sa.sealRequest(wire.ExchangeInformational, mid, []wire.Payload{&wire.Notify{NotifyType: wire.NotifyAuthenticationFailed}})
	}
	if err != nil {
		sa.logger().WithError(err).Warn("cannot tell the responder AUTHENTICATION_FAILED")
	} else {
		sa.sendV2Msgs(sendFirst, msgs, "INFORMATIONAL request (AUTHENTICATION_FAILED)")
		if sa.t != nil {
			sa.t.counters.NotifiesSent++
		}
	}
	sa.fail(reason)
}
