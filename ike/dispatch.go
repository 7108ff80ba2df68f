package ike

import (
	"encoding/hex"
	"net/netip"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// handleDatagram is the entry point of every IKE message on the loop.
func (e *Engine) handleDatagram(s *socket, from netip.AddrPort, b []byte) {
	e.counters.Received++
	if isIKEv2(b) {
		// The major version (RFC 7296 section 3.1, byte 17) routes the
		// message before any decoding: IKEv2 has its own header and SAs.
		e.handleV2(s, from, b) // ikev2_dispatch.go
		return
	}
	m, err := isakmp.Decode(b)
	if err != nil {
		e.counters.Malformed++
		e.log.WithFields(logrus.Fields{"peer": from.String(), "len": len(b)}).WithError(err).Warn("dropping malformed IKE message")
		if h, herr := isakmp.DecodeHeader(b); herr == nil {
			if sa := e.sas[h.ICookie]; sa != nil && sa.t != nil {
				countReceived(&sa.t.counters, h.Exchange)
				// A plaintext message of a known SA that does not parse: tell the peer.
				if h.Flags&isakmp.FlagEncryption == 0 {
					sa.sendNotify(isakmp.NotifyPayloadMalformed, isakmp.ProtoISAKMP, nil, nil)
				}
			}
		}
		return
	}
	h := m.Header
	var zero [8]byte
	if h.ICookie == zero {
		// RFC 2408 section 2.5.3: a cookie is a unique value; a zero
		// initiator cookie belongs to no negotiation and would make every
		// retransmission look like a new one.
		e.counters.ZeroCookie++
		if e.counters.ZeroCookie%100 == 1 {
			e.log.WithFields(logrus.Fields{"peer": from.String(), "exchange": h.Exchange.String(), "count": e.counters.ZeroCookie}).
				Warn("dropping IKE message with a zero initiator cookie")
		}
		return
	}
	sa, known := e.lookupSA(from, h, b)
	if known {
		return // an existing SA's cookie with the wrong responder cookie: counted, dropped
	}
	if sa == nil {
		if h.RCookie == zero && h.MessageID == 0 && (h.Exchange == isakmp.ExchangeIdentityProtection || h.Exchange == isakmp.ExchangeAggressive) {
			e.respondFirst(s, from, m, b)
			return
		}
		e.counters.UnknownCookie++
		e.log.WithFields(logrus.Fields{"peer": from.String(), "icookie": hex.EncodeToString(h.ICookie[:]),
			"rcookie": hex.EncodeToString(h.RCookie[:]), "exchange": h.Exchange.String()}).
			Warn("message for unknown ISAKMP SA (cookies), answering INVALID-COOKIE")
		if h.Exchange != isakmp.ExchangeInformational {
			e.sendPlainNotify(s.local, from, h.ICookie, h.RCookie, isakmp.NotifyInvalidCookie)
		}
		return
	}
	if sa.t != nil {
		countReceived(&sa.t.counters, h.Exchange)
	}
	if sa.initiator && sa.rCookie == zero && h.RCookie != zero {
		// The responder's cookie becomes part of the SA's identity only if
		// this message is the answer that moves the exchange on: a forged
		// message must not pin a wrong responder cookie.
		sa.rCookie = h.RCookie
		defer sa.keepRCookieIfAnswered()
	}
	switch h.Exchange {
	case isakmp.ExchangeIdentityProtection:
		sa.handleMainMode(s, from, m, b)
	case isakmp.ExchangeAggressive:
		sa.handleAggressive(s, from, m, b)
	case isakmp.ExchangeQuickMode:
		sa.handleQuickMode(s, from, m, b)
	case isakmp.ExchangeInformational:
		sa.handleInformational(s, from, m)
	default:
		sa.logger().WithField("exchange", h.Exchange.String()).Warn("unsupported exchange type")
		sa.sendNotify(isakmp.NotifyUnsupportedExchangeType, isakmp.ProtoISAKMP, nil, nil)
	}
}

// sendPlainNotify sends an unencrypted Informational with one Notify; used
// before any keys exist (NO-PROPOSAL-CHOSEN for an unknown peer, INVALID-COOKIE).
func (e *Engine) sendPlainNotify(local, remote netip.AddrPort, icky, rcky [8]byte, nt isakmp.NotifyType) {
	b, err := plainNotify(icky, rcky, nt)
	if err != nil {
		return
	}
	e.sendLogged(local, remote, b, "Informational "+nt.String())
}

// plainNotify encodes an unencrypted Informational with one Notify.
func plainNotify(icky, rcky [8]byte, nt isakmp.NotifyType) ([]byte, error) {
	m := &isakmp.Message{
		Header:   isakmp.Header{ICookie: icky, RCookie: rcky, Version: isakmp.Version, Exchange: isakmp.ExchangeInformational},
		Payloads: []isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoISAKMP, NotifyType: nt}},
	}
	return m.Encode()
}

// respondFirst handles the first message of a phase 1 exchange from a peer:
// it finds the tunnel by address pair and creates responder state, bounded
// by MaxHalfOpen.
func (e *Engine) respondFirst(s *socket, from netip.AddrPort, m *isakmp.Message, raw []byte) {
	log := e.log.WithFields(logrus.Fields{"peer": from.String(), "icookie": hex.EncodeToString(m.Header.ICookie[:])})
	var t *tunnel
	for _, c := range e.tunnels {
		if c.cfg.RemoteAddr == from.Addr() && c.cfg.LocalAddr == s.local.Addr() {
			t = c
			break
		}
	}
	if t == nil {
		e.counters.UnknownPeer++
		log.WithField("local", s.local.String()).Warn("no tunnel is configured for this peer address: answering NO-PROPOSAL-CHOSEN")
		e.sendPlainNotify(s.local, from, m.Header.ICookie, randomCookie(), isakmp.NotifyNoProposalChosen)
		return
	}
	if !t.cfg.Allows(policy.IKEv1) {
		t.versionRefused(policy.IKEv1, from) // ikev2_dispatch.go
		e.sendPlainNotify(s.local, from, m.Header.ICookie, randomCookie(), isakmp.NotifyNoProposalChosen)
		return
	}
	if !e.admitHalfOpen(from.Addr(), log) {
		return
	}
	sa := &ikeSA{
		e: e, t: t, initiator: false, iCookie: m.Header.ICookie, rCookie: randomCookie(),
		local: s.local, remote: from, created: timeNow(),
		quick: map[uint32]*quickMode{}, ivs: map[uint32][]byte{},
	}
	if s.natt {
		sa.floated = true
	}
	countReceived(&t.counters, m.Header.Exchange) // the first message, counted here: it has no SA yet in handleDatagram
	e.addSA(sa)                                   // saindex.go
	e.holdHalfOpen(sa, from.Addr())
	sa.timers.halfOpen = e.afterFunc(halfOpenTimeout, func() {
		if sa.state != stateEstablished && sa.state != stateDeleted {
			sa.logger().Warn("phase 1 did not complete in time: dropping half-open ISAKMP SA")
			sa.failPhase1("phase 1 timed out (responder)")
		}
	})
	sa.lastInHash = digest(raw)
	sa.firstInHash = sa.lastInHash
	switch m.Header.Exchange {
	case isakmp.ExchangeIdentityProtection:
		sa.exchange = MainMode
		sa.processMM1(m)
	case isakmp.ExchangeAggressive:
		sa.exchange = AggressiveMode
		sa.processAM1(m)
	}
}

// lookupSA finds the ISAKMP SA of a message by its cookies. Once an SA knows
// the responder cookie, both cookies must match; the one exception is a
// retransmission of the very first message (responder cookie still zero),
// which gets the cached answer. known reports a message that names an
// existing SA's initiator cookie but does not belong to it: it is counted
// and dropped, neither answered nor passed to the SA (a forged message
// with a victim's initiator cookie must not reach its negotiation).
func (e *Engine) lookupSA(from netip.AddrPort, h isakmp.Header, raw []byte) (sa *ikeSA, known bool) {
	sa = e.sas[h.ICookie]
	if sa == nil {
		return nil, false
	}
	var zero [8]byte
	switch {
	case sa.rCookie == zero: // our initiator SA, before the first answer
		return sa, false
	case h.RCookie == sa.rCookie:
		return sa, false
	case h.RCookie == zero && !sa.initiator && digest(raw) == sa.firstInHash:
		return sa, false
	case h.RCookie != zero:
		return nil, false // a stale or unknown responder cookie: INVALID-COOKIE
	}
	e.counters.CookieMismatch++
	if e.counters.CookieMismatch%100 == 1 {
		e.log.WithFields(logrus.Fields{"peer": from.String(), "icookie": hex.EncodeToString(h.ICookie[:]),
			"exchange": h.Exchange.String(), "count": e.counters.CookieMismatch}).
			Warn("dropping a message with the initiator cookie of an existing ISAKMP SA and no responder cookie (not a retransmission of its first message)")
	}
	return nil, true
}

// staleFirstMessage reports (and logs) a responder's copy of the first
// message (MM1/AM1) that arrives after the exchange moved on: late or
// duplicated on the way, it is no message of the current step and must not
// be taken for MM3/MM5/AM3 (which would refuse it and end the negotiation).
func (sa *ikeSA) staleFirstMessage(dg [32]byte) bool {
	if sa.initiator || dg != sa.firstInHash {
		return false
	}
	sa.logger().WithField("state", sa.state.String()).Debug("a late copy of the first message: dropped (the exchange has moved on)")
	return true
}

// keepRCookieIfAnswered forgets a responder cookie learnt from a message that
// did not move the initiator's exchange on.
func (sa *ikeSA) keepRCookieIfAnswered() {
	if sa.state == stateMM1Sent || sa.state == stateAM1Sent {
		sa.rCookie = [8]byte{}
	}
}
