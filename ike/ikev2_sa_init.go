package ike

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// IKE_SA_INIT (RFC 7296 sections 1.2, 2.6, 2.10, 2.23; RFC 7383 section
// 2.3), both roles: SA, KE, Ni/Nr, the NAT detection notifies and
// IKEV2_FRAGMENTATION_SUPPORTED. The responder keeps no state for a
// request it refuses (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD,
// INVALID_SYNTAX) or answers with a COOKIE; the initiator retries with the
// group or the cookie it is asked for (exchange.KERetry,
// exchange.CookieRetry).

// v2NonceLen is the length of our nonces: at least half the largest prf
// key (SHA-512's 64 bytes) and at least 128 bits (section 2.10).
const v2NonceLen = 32

// WithIKEv2CookieThreshold sets from how many half-open SAs on the IKEv2
// responder demands cookies (RFC 7296 section 2.6); negative: always.
// Zero (the default) is half the engine's half-open bound, so that
// cookies come in before the bound refuses first messages.
func WithIKEv2CookieThreshold(n int) Option { return func(e *Engine) { e.cookieThreshold = n } }

// v2Cookies returns the engine's cookie mechanism, made on first use.
func (e *Engine) v2Cookies() *exchange.Cookies {
	if e.cookies == nil {
		th := e.cookieThreshold
		if th == 0 {
			th = max(exchange.DefaultCookieThreshold, e.halfOpenMax/2)
		}
		c, err := exchange.NewCookies(exchange.CookieConfig{Threshold: th})
		if err != nil {
			e.log.WithError(err).Error("IKEv2 cookies unavailable")
			return nil
		}
		e.cookies = c
	}
	return e.cookies
}

// initiateV2 brings an IKEv2 tunnel up: IKE_SA_INIT, then IKE_AUTH with
// the first child SA.
func (t *tunnel) initiateV2(reason string) {
	if sa := t.v2; sa != nil && sa.state != v2Deleted {
		if sa.state == v2Established && len(t.children) == 0 && sa.child == nil {
			t.log.Info("IKEv2 SA up without a child SA: a new child needs CREATE_CHILD_SA")
		}
		return
	}
	t.log.WithFields(logrus.Fields{"reason": reason, "peer": t.cfg.RemoteAddr.String(), "ike_version": "ikev2"}).Info("initiating IKE_SA_INIT")
	e := t.e
	sa := &ikev2SA{
		e: e, t: t, initiator: true, spiI: e.newSPI(), created: timeNow(), lifetime: t.cfg.Phase1.Lifetime,
		local:  netip.AddrPortFrom(t.cfg.LocalAddr, e.cfg.Ports.IKE),
		remote: netip.AddrPortFrom(t.cfg.RemoteAddr, t.cfg.RemotePorts.IKE),
	}
	sa.offer, sa.group = ikeOffer(t.cfg.Phase1.Proposals)
	sa.keRetry.Offered = exchange.OfferedGroups(sa.offer)
	sa.ni = randomBytes(v2NonceLen)
	e.addSA2(sa)
	t.v2 = sa
	t.setPhase1State("Negotiating")
	if err := sa.sendInitRequest(); err != nil {
		sa.fail("IKEv2: IKE_SA_INIT request: " + err.Error())
	}
}

// newKE makes our key pair of the SA's group and its KE payload.
func (sa *ikev2SA) newKE() (*wire.KE, error) {
	g, err := dh.ByID(uint16(sa.group))
	if err != nil {
		return nil, err
	}
	if sa.dhKey, err = sa.e.newDHKey(g, rand.Reader); err != nil {
		return nil, err
	}
	return &wire.KE{Group: sa.group, Data: sa.dhKey.Public()}, nil
}

// sendInitRequest sends (or, after a cookie or INVALID_KE_PAYLOAD, sends
// again) the IKE_SA_INIT request.
func (sa *ikev2SA) sendInitRequest() error {
	ke, err := sa.newKE()
	if err != nil {
		return err
	}
	if sa.initReq == nil {
		ps := []wire.Payload{sa.offer, ke, &wire.Nonce{Data: sa.ni}}
		ps = append(ps, sa.natdNotifies()...)
		if !sa.e.noFragmentSupport {
			ps = append(ps, &wire.Notify{NotifyType: wire.NotifyIKEv2FragmentationSupported})
		}
		sa.initReq = ps
	} else {
		for i, p := range sa.initReq {
			if _, ok := p.(*wire.KE); ok {
				sa.initReq[i] = ke
			}
		}
	}
	mid, err := sa.reqs.Next()
	if err != nil {
		return err
	}
	msg, err := (&wire.Message{Header: sa.header(wire.ExchangeIKESAInit, mid, false),
		Payloads: sa.impairV2Payloads(wire.ExchangeIKESAInit, false, sa.initReq)}).Encode()
	if err != nil {
		return err
	}
	sa.msgI = msg
	sa.state = v2InitSent
	sa.transmitRequest(mid, [][]byte{msg}, "IKE_SA_INIT request", func() { sa.fail(sa.giveUpReason("IKE_SA_INIT")) })
	return nil
}

// natdNotifies are our NAT_DETECTION_SOURCE_IP and _DESTINATION_IP
// (section 2.23) with the SPIs as the message's header has them. With
// ForceEncap the source hash is random, so both sides see a NAT.
func (sa *ikev2SA) natdNotifies() []wire.Payload {
	if sa.t == nil || (!sa.t.cfg.NATT && !sa.t.cfg.ForceEncap) {
		return nil
	}
	src := keymat.NATDHash(sa.spiI[:], sa.spiR[:], sa.local)
	if sa.t.cfg.ForceEncap {
		src = randomBytes(len(src))
	}
	return []wire.Payload{
		&wire.Notify{NotifyType: wire.NotifyNATDetectionSourceIP, Data: src},
		&wire.Notify{NotifyType: wire.NotifyNATDetectionDestinationIP, Data: keymat.NATDHash(sa.spiI[:], sa.spiR[:], sa.remote)},
	}
}

// processNATD compares the peer's NAT detection hashes (made with the
// SPIs spiR of its message) with the addresses we see.
func (sa *ikev2SA) processNATD(ps []wire.Payload, spiR [8]byte) {
	if sa.t == nil || (!sa.t.cfg.NATT && !sa.t.cfg.ForceEncap) {
		return
	}
	var src [][]byte
	var dst []byte
	for _, p := range ps {
		if n, ok := p.(*wire.Notify); ok {
			switch n.NotifyType {
			case wire.NotifyNATDetectionSourceIP:
				src = append(src, n.Data)
			case wire.NotifyNATDetectionDestinationIP:
				dst = n.Data
			}
		}
	}
	if len(src) == 0 || dst == nil {
		sa.logger().Debug("peer sent no NAT detection notifies: NAT traversal off")
		return
	}
	sa.natd = true
	sa.localBehindNAT = !bytes.Equal(dst, keymat.NATDHash(sa.spiI[:], spiR[:], sa.local)) || sa.t.cfg.ForceEncap
	seen := keymat.NATDHash(sa.spiI[:], spiR[:], sa.remote)
	sa.remoteBehindNAT = true
	for _, h := range src {
		if bytes.Equal(h, seen) {
			sa.remoteBehindNAT = false
		}
	}
	f := sa.logger().WithFields(logrus.Fields{"local_behind_nat": sa.localBehindNAT, "remote_behind_nat": sa.remoteBehindNAT})
	if sa.natDetected() {
		f.Info("NAT detected: IKE moves to UDP 4500 and ESP is UDP-encapsulated")
		sa.e.emit(Event{Tunnel: sa.t.cfg.Name, Type: "nat-detected", Detail: map[string]string{
			"local_behind_nat": boolStr(sa.localBehindNAT), "remote_behind_nat": boolStr(sa.remoteBehindNAT)}})
	}
}

func (sa *ikev2SA) natDetected() bool { return sa.natd && (sa.localBehindNAT || sa.remoteBehindNAT) }

// float moves the initiator to the NAT-T port for IKE_AUTH (section 2.23).
func (sa *ikev2SA) float() {
	if sa.floated {
		return
	}
	sa.floated = true
	sa.local = netip.AddrPortFrom(sa.local.Addr(), sa.e.cfg.Ports.NATT)
	sa.remote = netip.AddrPortFrom(sa.remote.Addr(), sa.t.cfg.RemotePorts.NATT)
}

// handleInitResponse is the initiator's reading of the IKE_SA_INIT
// response: a cookie or INVALID_KE_PAYLOAD makes it send the request
// again, an error notify ends the negotiation, else the keys are derived
// and IKE_AUTH follows.
func (sa *ikev2SA) handleInitResponse(h wire.Header, b []byte) {
	mid, outstanding := sa.reqs.Outstanding()
	if !sa.initiator || sa.state != v2InitSent || !h.Response() || !outstanding || h.MessageID != mid {
		sa.e.countDrop(dropV2WrongDirection)
		sa.logger().WithField("state", sa.state.String()).Debug("unexpected IKE_SA_INIT message: dropped")
		return
	}
	m, err := wire.Decode(b)
	if err != nil {
		sa.e.counters.Malformed++
		sa.e.countDrop(dropV2Malformed)
		sa.logger().WithError(err).Warn("malformed IKE_SA_INIT response: dropped (waiting for a retransmission)")
		return
	}
	ps := m.Payloads
	if n := wire.FindNotify(ps, wire.NotifyCookie); n != nil {
		sa.retryInit("COOKIE", func() error {
			req, err := sa.cookie.Resend(sa.initReq, ps)
			sa.initReq = req
			return err
		})
		return
	}
	if n := wire.FindNotify(ps, wire.NotifyInvalidKEPayload); n != nil {
		sa.retryInit("INVALID_KE_PAYLOAD", func() error {
			g, err := sa.keRetry.Retry(sa.group, n)
			if err == nil {
				sa.logger().WithFields(logrus.Fields{"sent": sa.group.String(), "asked": g.String()}).Info("peer asked for another DH group: retrying IKE_SA_INIT")
				sa.group = g
			}
			return err
		})
		return
	}
	if err := sa.acceptInitResponse(h, b[:h.Length], ps); err != nil {
		sa.fail("IKEv2: " + err.Error())
		return
	}
	if sa.t != nil {
		sa.t.counters.Exchanges.IKESAInit.Completed++
	}
	sa.sendAuthRequest() // ikev2_auth.go
}

// retryInit sends IKE_SA_INIT again after change (a cookie, a group).
func (sa *ikev2SA) retryInit(why string, change func() error) {
	mid, _ := sa.reqs.Outstanding()
	sa.reqs.Response(mid)
	sa.out.stop()
	if err := change(); err != nil {
		sa.fail(fmt.Sprintf("IKEv2: IKE_SA_INIT answered with %s: %v", why, err))
		return
	}
	if err := sa.reqs.RestartInit(); err != nil {
		sa.fail("IKEv2: " + err.Error())
		return
	}
	if err := sa.sendInitRequest(); err != nil {
		sa.fail("IKEv2: IKE_SA_INIT request: " + err.Error())
	}
}

// acceptInitResponse checks the response and derives the IKE SA's keys.
func (sa *ikev2SA) acceptInitResponse(h wire.Header, raw []byte, ps []wire.Payload) error {
	for _, p := range ps {
		if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() {
			return fmt.Errorf("peer answered IKE_SA_INIT with %s", n.NotifyType)
		}
	}
	saP, ke, nonce := findSA(ps), findKE(ps), findNonce(ps)
	if saP == nil || ke == nil || nonce == nil {
		return errors.New("IKE_SA_INIT response lacks its SA, KE or Nonce payload")
	}
	choice, err := exchange.CheckReply(sa.offer, saP)
	if err != nil {
		return fmt.Errorf("IKE_SA_INIT response: %w", err)
	}
	if ke.Group != choice.DH || ke.Group != sa.group {
		return fmt.Errorf("IKE_SA_INIT response: KE of group %s, we sent %s", ke.Group, sa.group)
	}
	if n := len(nonce.Data); n < 16 || n > 256 {
		return fmt.Errorf("IKE_SA_INIT response: nonce of %d bytes (16 to 256)", n)
	}
	if h.SPIr == ([8]byte{}) {
		return errors.New("IKE_SA_INIT response with a zero responder SPI")
	}
	gir, err := sa.dhKey.SharedSecret(ke.Data)
	if err != nil {
		return fmt.Errorf("IKE_SA_INIT response: peer's KE: %w", err)
	}
	sa.reqs.Response(h.MessageID)
	sa.out.stop()
	sa.spiR, sa.chosen, sa.proposal, sa.nr = h.SPIr, choice, v2Proposal(choice), nonce.Data
	sa.msgR = append([]byte(nil), raw...)
	if err := sa.deriveKeys(gir); err != nil {
		return err
	}
	sa.processNATD(ps, sa.spiR)
	sa.peerFragments = wire.FindNotify(ps, wire.NotifyIKEv2FragmentationSupported) != nil && !sa.e.noFragmentSupport
	sa.logger().WithFields(logrus.Fields{"proposal": sa.proposal.String(), "nat_detected": sa.natDetected()}).Info("IKE_SA_INIT done (initiator)")
	return nil
}

func findSA(ps []wire.Payload) *wire.SA {
	for _, p := range ps {
		if x, ok := p.(*wire.SA); ok {
			return x
		}
	}
	return nil
}

func findKE(ps []wire.Payload) *wire.KE {
	for _, p := range ps {
		if x, ok := p.(*wire.KE); ok {
			return x
		}
	}
	return nil
}

func findNonce(ps []wire.Payload) *wire.Nonce {
	for _, p := range ps {
		if x, ok := p.(*wire.Nonce); ok {
			return x
		}
	}
	return nil
}

// initRetransmitted answers a retransmitted IKE_SA_INIT request with the
// cached response; another request with the same SPIi is dropped.
func (sa *ikev2SA) initRetransmitted(b []byte) {
	if sa.t != nil {
		countV2Received(&sa.t.counters, wire.ExchangeIKESAInit)
	}
	if sa.initResp == nil || digest(b) != sa.initInHash {
		sa.e.countDrop(dropV2WrongDirection)
		sa.logger().Debug("an IKE_SA_INIT request with the SPIi of an SA in progress that is not its retransmission: dropped")
		return
	}
	sa.answerCached([][]byte{sa.initResp}, "IKE_SA_INIT response")
}

// sendInitRefusal answers an IKE_SA_INIT request with one notify and no
// state: SPIr zero (sections 1.2, 2.6, 2.21.1).
func (e *Engine) sendInitRefusal(local, remote netip.AddrPort, spiI [8]byte, n *wire.Notify) {
	m := &wire.Message{
		Header:   wire.Header{SPIi: spiI, Version: wire.Version, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagResponse},
		Payloads: []wire.Payload{n},
	}
	b, err := m.Encode()
	if err != nil {
		return
	}
	e.sendLogged(local, remote, b, "IKE_SA_INIT "+n.NotifyType.String())
}

// respondV2First handles a first IKE_SA_INIT request: the tunnel by
// address pair, its versions, the cookie check, the half-open bounds, then
// the exchange itself.
func (e *Engine) respondV2First(s *socket, from netip.AddrPort, h wire.Header, b []byte) {
	log := e.log.WithFields(logrus.Fields{"peer": from.String(), "spi_i": fmt.Sprintf("%x", h.SPIi), "ike_version": "ikev2"})
	t := e.findTunnelFor(s.local, from)
	if t == nil {
		e.counters.UnknownPeer++
		e.countDrop(dropV2NoTunnel)
		log.WithField("local", s.local.String()).Warn("no tunnel is configured for this peer address: answering NO_PROPOSAL_CHOSEN")
		e.sendInitRefusal(s.local, from, h.SPIi, &wire.Notify{NotifyType: wire.NotifyNoProposalChosen})
		return
	}
	countV2Received(&t.counters, wire.ExchangeIKESAInit)
	if !t.cfg.Allows(policy.IKEv2) {
		t.versionRefused(policy.IKEv2, from)
		t.counters.MessagesOut++
		t.counters.Exchanges.IKESAInit.Sent++
		e.sendInitRefusal(s.local, from, h.SPIi, &wire.Notify{NotifyType: wire.NotifyNoProposalChosen})
		return
	}
	m, err := wire.Decode(b)
	if err != nil {
		e.counters.Malformed++
		e.countDrop(dropV2Malformed)
		log.WithError(err).Warn("malformed IKE_SA_INIT request: answering INVALID_SYNTAX")
		n := &wire.Notify{NotifyType: wire.NotifyInvalidSyntax}
		var uc *wire.UnsupportedCriticalError
		if errors.As(err, &uc) {
			n = wire.UnsupportedCritical(uc.Type)
		}
		e.sendInitRefusal(s.local, from, h.SPIi, n)
		return
	}
	if c := e.v2Cookies(); c != nil {
		if n, err := c.Check(h.SPIi, from.Addr(), m.Payloads, e.halfOpen); err != nil || n != nil {
			e.countDrop(dropV2CookieDemanded)
			if n != nil {
				log.WithField("half_open", e.halfOpen).Debug("IKEv2 responder under load: answering with a COOKIE")
				e.sendInitRefusal(s.local, from, h.SPIi, n)
			}
			return
		}
	}
	if !e.admitHalfOpen(from.Addr(), log) {
		return
	}
	sa := &ikev2SA{e: e, t: t, spiI: h.SPIi, spiR: e.newSPI(), local: s.local, remote: from,
		created: timeNow(), lifetime: t.cfg.Phase1.Lifetime, floated: s.natt}
	resp, err := sa.answerInit(m, b[:h.Length])
	if err != nil {
		sa.refuseInit(s, from, h, err)
		return
	}
	e.addSA2(sa)
	e.holdHalfOpenV2(sa, from.Addr())
	sa.timers.halfOpen = e.afterFunc(halfOpenTimeout, func() {
		if sa.state != v2Established && sa.state != v2Deleted {
			sa.logger().Warn("IKE_AUTH did not come in time: dropping the half-open IKEv2 SA")
			sa.fail("IKEv2: IKE_AUTH did not come in time (responder)")
		}
	})
	sa.initInHash, sa.initResp, sa.msgR = digest(b), resp, resp
	sa.resps.Receive(0, b)
	_ = sa.resps.Answered(0, b, [][]byte{resp})
	sa.state = v2InitReplied
	if t.v2 == nil || t.v2.state == v2Deleted {
		t.v2 = sa
	}
	t.setPhase1State("Negotiating")
	t.counters.Exchanges.IKESAInit.Completed++
	sa.sendV2Msgs(sendFirst, [][]byte{resp}, "IKE_SA_INIT response")
}

// refuseInit answers a refused IKE_SA_INIT request and reports why.
func (sa *ikev2SA) refuseInit(s *socket, from netip.AddrPort, h wire.Header, err error) {
	var n *wire.Notify
	var xe *exchange.Error
	if errors.As(err, &xe) {
		n = xe.Payload()
	} else {
		n = &wire.Notify{NotifyType: wire.NotifyInvalidSyntax}
	}
	f := sa.logger().WithField("notify", n.NotifyType.String())
	if xe != nil && len(xe.Details) > 0 {
		f = f.WithField("details", strings.Join(xe.Details, "; "))
	}
	if n.NotifyType == wire.NotifyInvalidKEPayload {
		f.Info("IKE_SA_INIT: KE of another group than the chosen proposal's: answering INVALID_KE_PAYLOAD")
	} else {
		f.WithError(err).Warn("IKE_SA_INIT refused")
		sa.t.setError("IKEv2: IKE_SA_INIT refused (" + n.NotifyType.String() + "): " + err.Error())
	}
	sa.t.counters.NotifiesSent++
	x := &sa.t.counters.Exchanges.IKESAInit
	if n.NotifyType != wire.NotifyInvalidKEPayload {
		x.Failed++ // INVALID_KE_PAYLOAD is a step: the initiator retries with the group
	}
	sa.t.counters.MessagesOut++
	x.Sent++
	sa.e.sendInitRefusal(s.local, from, h.SPIi, n)
}

// answerInit processes the request and returns the response.
func (sa *ikev2SA) answerInit(m *wire.Message, raw []byte) ([]byte, error) {
	ps, t := m.Payloads, sa.t
	saP, ke, nonce := findSA(ps), findKE(ps), findNonce(ps)
	if saP == nil || nonce == nil {
		return nil, &exchange.Error{Notify: wire.NotifyInvalidSyntax, Reason: "IKE_SA_INIT request without SA or Nonce payload"}
	}
	if n := len(nonce.Data); n < 16 || n > 256 {
		return nil, &exchange.Error{Notify: wire.NotifyInvalidSyntax, Reason: fmt.Sprintf("nonce of %d bytes (16 to 256)", n)}
	}
	pol, err := ikePolicy(t.cfg.Phase1.Proposals)
	if err != nil {
		return nil, err
	}
	opts := exchange.Options{Rule: v2Rule(t.cfg.Phase1.Selection)}
	if ke != nil {
		opts.KEGroup = ke.Group
	}
	choice, err := exchange.Select(saP, pol, opts)
	if err != nil {
		return nil, err
	}
	if err := exchange.CheckKE(choice.DH, ke); err != nil {
		return nil, err
	}
	if ke == nil {
		return nil, &exchange.Error{Notify: wire.NotifyInvalidSyntax, Reason: "IKE_SA_INIT request without a KE payload"}
	}
	sa.chosen, sa.proposal, sa.group = choice, v2Proposal(choice), choice.DH
	sa.ni, sa.nr = append([]byte(nil), nonce.Data...), randomBytes(v2NonceLen)
	myKE, err := sa.newKE()
	if err != nil {
		return nil, err
	}
	gir, err := sa.dhKey.SharedSecret(ke.Data)
	if err != nil {
		return nil, &exchange.Error{Notify: wire.NotifyInvalidSyntax, Reason: "peer's KE value: " + err.Error()}
	}
	sa.processNATD(ps, [8]byte{})
	sa.peerFragments = wire.FindNotify(ps, wire.NotifyIKEv2FragmentationSupported) != nil && !sa.e.noFragmentSupport
	out := []wire.Payload{choice.Reply(nil), myKE, &wire.Nonce{Data: sa.nr}}
	if sa.natd {
		out = append(out, sa.natdNotifies()...)
	}
	if sa.peerFragments {
		// RFC 7383 section 2.3: only in answer to the initiator's.
		out = append(out, &wire.Notify{NotifyType: wire.NotifyIKEv2FragmentationSupported})
	}
	resp, err := (&wire.Message{Header: sa.header(wire.ExchangeIKESAInit, 0, true),
		Payloads: sa.impairV2Payloads(wire.ExchangeIKESAInit, true, out)}).Encode()
	if err != nil {
		return nil, err
	}
	if err := sa.deriveKeys(gir); err != nil {
		return nil, err
	}
	sa.msgI = append([]byte(nil), raw...)
	sa.logger().WithFields(logrus.Fields{"proposal": sa.proposal.String(), "nat_detected": sa.natDetected()}).Info("IKE_SA_INIT answered (responder)")
	return resp, nil
}
