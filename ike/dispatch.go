package ike

import (
	"encoding/hex"
	"net/netip"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// handleDatagram is the entry point of every IKE message on the loop.
func (e *Engine) handleDatagram(s *socket, from netip.AddrPort, b []byte) {
	e.counters.Received++
	m, err := isakmp.Decode(b)
	if err != nil {
		e.counters.Malformed++
		e.log.WithFields(logrus.Fields{"peer": from.String(), "len": len(b)}).WithError(err).Warn("dropping malformed IKE message")
		if h, herr := isakmp.DecodeHeader(b); herr == nil {
			if sa := e.sas[h.ICookie]; sa != nil && sa.t != nil {
				sa.t.counters.received(h.Exchange)
				// A plaintext message of a known SA that does not parse: tell the peer.
				if h.Flags&isakmp.FlagEncryption == 0 {
					sa.sendNotify(isakmp.NotifyPayloadMalformed, isakmp.ProtoISAKMP, nil, nil)
				}
			}
		}
		return
	}
	h := m.Header
	sa := e.sas[h.ICookie]
	var zero [8]byte
	if sa != nil && h.RCookie != zero && sa.rCookie != zero && sa.rCookie != h.RCookie {
		sa = nil
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
		sa.t.counters.received(h.Exchange)
	}
	if sa.initiator && sa.rCookie == zero {
		sa.rCookie = h.RCookie
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
	if e.halfOpen >= e.cfg.MaxHalfOpen {
		e.counters.HalfOpenRefused++
		if e.counters.HalfOpenRefused%100 == 1 {
			log.WithField("half_open", e.halfOpen).Warn("too many half-open ISAKMP SAs: dropping new first messages")
		}
		return
	}
	sa := &ikeSA{
		e: e, t: t, initiator: false, iCookie: m.Header.ICookie, rCookie: randomCookie(),
		local: s.local, remote: from, created: timeNow(),
		quick: map[uint32]*quickMode{}, ivs: map[uint32][]byte{}, seenInfo: map[uint32]bool{},
	}
	if s.natt {
		sa.floated = true
	}
	t.counters.received(m.Header.Exchange) // the first message, counted here: it has no SA yet in handleDatagram
	e.sas[sa.iCookie] = sa
	sa.halfOpen = true
	e.halfOpen++
	sa.timers.halfOpen = e.afterFunc(halfOpenTimeout, func() {
		if sa.state != stateEstablished && sa.state != stateDeleted {
			sa.logger().Warn("phase 1 did not complete in time: dropping half-open ISAKMP SA")
			sa.fail("phase 1 timed out (responder)", false)
		}
	})
	sa.lastInHash = digest(raw)
	switch m.Header.Exchange {
	case isakmp.ExchangeIdentityProtection:
		sa.exchange = MainMode
		sa.processMM1(m)
	case isakmp.ExchangeAggressive:
		sa.exchange = AggressiveMode
		sa.processAM1(m)
	}
}
