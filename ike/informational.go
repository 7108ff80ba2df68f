package ike

import (
	"crypto/hmac"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// Informational exchanges (RFC 2408 section 4.8, RFC 2409 section 5.7):
//
//	HDR*, HASH(1), N/D      HASH(1) = prf(SKEYID_a, M-ID | N/D)
//
// with a fresh message ID and IV = hash(last phase-1 block | M-ID). Before
// keys exist, error notifies go out in the clear. R-U-THERE (RFC 3706) is
// answered with R-U-THERE-ACK carrying the same sequence number.

// sendInformational sends one protected informational message.
func (sa *ikeSA) sendInformational(p isakmp.Payload, what string) {
	if sa.skeyidA == nil {
		if n, ok := p.(*isakmp.Notify); ok {
			sa.sendPlainNotify(n.NotifyType)
		}
		return
	}
	mid := newMessageID()
	_, rest, err := isakmp.EncodePayloads([]isakmp.Payload{p})
	if err != nil {
		return
	}
	h := keymat.QMHash1(sa.hash, sa.skeyidA, mid, rest)
	ref := sa.nextInfoRef(what)
	first, body, err := isakmp.EncodePayloads(sa.impairPayloads(ref, []isakmp.Payload{&isakmp.Hash{Data: h}, p}))
	if err != nil {
		return
	}
	b, err := sa.sealExchange(sa.header(isakmp.ExchangeInformational, mid), body, first)
	delete(sa.ivs, mid)
	if err != nil {
		return
	}
	if sa.t != nil {
		sa.t.counters.MessagesOut++
	}
	sa.e.sendOut(ref, sendFirst, sa.local, sa.remote, b, what)
}

// sendPlainNotify sends an unencrypted error notify of this SA, before keys
// exist.
func (sa *ikeSA) sendPlainNotify(nt isakmp.NotifyType) {
	b, err := plainNotify(sa.iCookie, sa.rCookie, nt)
	if err != nil {
		return
	}
	what := "Informational " + nt.String()
	sa.e.sendOut(sa.nextInfoRef(what), sendFirst, sa.local, sa.remote, b, what)
}

// sendNotify sends a notify through this SA (encrypted once keys exist).
func (sa *ikeSA) sendNotify(nt isakmp.NotifyType, proto uint8, spi, data []byte) {
	if proto == isakmp.ProtoISAKMP && spi == nil && sa.skeyidA != nil {
		spi = sa.cookiesSPI()
	}
	n := &isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: proto, SPI: spi, NotifyType: nt, Data: data}
	if sa.t != nil {
		sa.t.counters.NotifiesSent++
	}
	if nt < 16384 {
		sa.logger().WithField("notify", nt.String()).Info("sending error notify")
		sa.e.emit(Event{Tunnel: sa.tunnelName(), Type: "notify-sent", Detail: map[string]string{"notify": nt.String()}})
	}
	sa.sendInformational(n, "Informational "+nt.String())
}

// sendDelete tells the peer that SAs are gone. For IPsec SAs the SPI is our
// inbound one; for the ISAKMP SA it is the cookie pair.
func (sa *ikeSA) sendDelete(proto uint8, spis ...[]byte) {
	if sa.skeyidA == nil || len(spis) == 0 {
		return
	}
	d := &isakmp.Delete{DOI: isakmp.DOIIPsec, ProtocolID: proto, SPISize: uint8(len(spis[0])), SPIs: spis}
	if sa.suppressDelete(d) {
		return
	}
	sa.logger().WithField("delete", isakmp.Describe(d)).Info("sending DELETE")
	sa.sendInformational(d, "Informational DELETE")
}

func (sa *ikeSA) handleInformational(s *socket, from netip.AddrPort, m *isakmp.Message) {
	var ps []isakmp.Payload
	authenticated := false
	if m.Header.Flags&isakmp.FlagEncryption != 0 {
		if sa.block == nil {
			sa.dropQuick(dropInfoNoKeys, m.Header.MessageID, "encrypted informational before keys exist: dropped")
			return
		}
		plain, commit, err := sa.openExchange(m)
		delete(sa.ivs, m.Header.MessageID)
		if err != nil {
			sa.dropQuick(dropInfoUndecryptable, m.Header.MessageID, "informational message does not decrypt: dropped")
			return
		}
		ps, err = isakmp.DecodePayloads(m.Header.NextPayload, plain, isakmp.HeaderLen)
		if err != nil || len(ps) < 2 || ps[0].Type() != isakmp.PayloadHash {
			sa.dropQuick(dropInfoMalformed, m.Header.MessageID, "informational message malformed or without HASH(1): dropped")
			return
		}
		rest, err := chainAfterFirst(plain)
		if err != nil || !hmac.Equal(ps[0].(*isakmp.Hash).Data, keymat.QMHash1(sa.hash, sa.skeyidA, m.Header.MessageID, rest)) {
			sa.dropQuick(dropInfoBadHash, m.Header.MessageID, "informational HASH(1) does not verify: dropped")
			return
		}
		// An informational's IV is derived afresh from its message ID
		// (RFC 2409 appendix B): nothing to keep, so commit is not called.
		_ = commit
		if slices.Contains(sa.seenInfoOrder, m.Header.MessageID) {
			return // a retransmitted informational
		}
		sa.rememberInfo(m.Header.MessageID)
		authenticated = true
		ps = ps[1:]
	} else {
		ps = m.Payloads
	}
	for _, p := range ps {
		switch v := p.(type) {
		case *isakmp.Notify:
			sa.processNotify(v, authenticated)
		case *isakmp.Delete:
			if !authenticated {
				sa.dropQuick(dropUnauthDelete, m.Header.MessageID, "unauthenticated (plaintext) DELETE ignored")
				continue
			}
			sa.processDelete(v)
		}
	}
	if authenticated && sa.state == stateEstablished {
		sa.authenticated(from)
	}
}

// seenInfoKept bounds how many informational message IDs an SA remembers
// to recognise retransmissions: a DPD probe every 10 s for 8 hours must not
// grow the SA without bound.
const seenInfoKept = 64

// rememberInfo keeps the last seenInfoKept message IDs, oldest first, in a
// slice of at most 256 bytes (searched linearly: a map of 64 entries cost
// ~1.3 KB per ISAKMP SA once an idle tunnel's DPD had filled it).
func (sa *ikeSA) rememberInfo(mid uint32) {
	if len(sa.seenInfoOrder) < seenInfoKept {
		sa.seenInfoOrder = append(sa.seenInfoOrder, mid)
		return
	}
	copy(sa.seenInfoOrder, sa.seenInfoOrder[1:])
	sa.seenInfoOrder[len(sa.seenInfoOrder)-1] = mid
}

func (sa *ikeSA) processNotify(n *isakmp.Notify, authenticated bool) {
	if sa.t != nil {
		sa.t.counters.NotifiesReceived++
	}
	// Built only where a line is written: R-U-THERE and its ACK arrive
	// once per DPD delay on every idle tunnel.
	log := func() logrus.FieldLogger {
		return sa.logger().WithFields(logrus.Fields{"notify": n.NotifyType.String(), "authenticated": authenticated})
	}
	switch n.NotifyType {
	case isakmp.NotifyRUThere:
		if !authenticated {
			return
		}
		ack := &isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoISAKMP, SPI: sa.cookiesSPI(), NotifyType: isakmp.NotifyRUThereAck, Data: n.Data}
		if sa.e.debugEnabled() {
			log().WithField("seq", hex.EncodeToString(n.Data)).Debug("DPD: R-U-THERE received, answering R-U-THERE-ACK")
		}
		sa.sendInformational(ack, "Informational R-U-THERE-ACK")
		return
	case isakmp.NotifyRUThereAck:
		if authenticated {
			sa.onDPDAck(n)
		}
		return
	case isakmp.NotifyInitialContact:
		// Not after a phase 1 collision: the other SA and what was
		// negotiated over it are this peer's, from just now.
		if authenticated && sa.t != nil && !sa.collided {
			sa.t.initialContact(sa)
		}
		return
	}
	if n.NotifyType < 16384 {
		if !authenticated {
			sa.unauthenticatedNotify(n.NotifyType) // phase1notify.go
			return
		}
		log().Warn("peer reported an error")
		sa.peerError(n.NotifyType)
		return
	}
	log().Info("notify received")
}

// peerError reacts to an error notify from the peer: an unfinished exchange
// has failed.
func (sa *ikeSA) peerError(nt isakmp.NotifyType) {
	sa.e.emit(Event{Tunnel: sa.tunnelName(), Type: "notify-received", Detail: map[string]string{"notify": nt.String()}})
	reason := "peer sent " + nt.String()
	switch nt {
	case isakmp.NotifyNoProposalChosen:
		reason = "No Proposal Match Found: the peer answered NO-PROPOSAL-CHOSEN"
	case isakmp.NotifyAuthenticationFailed, isakmp.NotifyInvalidHashInformation:
		reason = "the peer reports " + nt.String() + ": pre-shared key mismatch"
		if sa.state == stateEstablished {
			// Phase 1 authenticated both keys: a phase 2 HASH the peer
			// refuses is a corrupted or forged message, not a wrong key.
			reason = "the peer reports " + nt.String() + ": it could not verify our quick mode HASH (the message was altered; phase 1 keys match)"
		}
	case isakmp.NotifyInvalidIDInformation:
		reason = "the peer reports INVALID-ID-INFORMATION: identities or traffic selectors do not match"
	}
	if sa.state != stateEstablished {
		sa.fail(reason, false)
		return
	}
	if sa.peerRejectedPhase1(nt) { // phase1notify.go
		return
	}
	// Phase 2 failures: fail the pending quick modes.
	for _, qm := range sa.quick {
		if qm.state == qmQM1Sent {
			qm.fail(reason)
		}
	}
	if sa.t != nil {
		sa.t.setError(reason)
	}
}

func (sa *ikeSA) processDelete(d *isakmp.Delete) {
	switch d.ProtocolID {
	case isakmp.ProtoISAKMP:
		target := sa.deleteTarget(d)
		if target == nil {
			sa.dropQuick(dropDeleteUnknownSPI, 0, "DELETE for an ISAKMP SA we do not have (cookies): ignored")
			return
		}
		target.logger().Info("peer deleted the ISAKMP SA (received DELETE for IKE_SA)")
		sa.e.emit(Event{Tunnel: sa.tunnelName(), Type: "delete-received", Detail: map[string]string{"protocol": "isakmp"}})
		target.delete("peer sent DELETE for the ISAKMP SA", false)
	case isakmp.ProtoESP, isakmp.ProtoAH:
		for _, spi := range d.SPIs {
			if len(spi) != 4 {
				continue
			}
			v := binary.BigEndian.Uint32(spi)
			sa.logger().WithField("spi", hex.EncodeToString(spi)).Info("received DELETE for phase 2 SA")
			sa.e.emit(Event{Tunnel: sa.tunnelName(), Type: "delete-received", Detail: map[string]string{"protocol": protoName(d.ProtocolID), "spi": hex.EncodeToString(spi)}})
			if sa.t == nil || !sa.t.deleteChildByOutbound(d.ProtocolID, v, "peer sent DELETE") {
				sa.dropQuick(dropDeleteUnknownSPI, 0, "DELETE for a phase 2 SA we do not have (SPI): ignored")
			}
		}
	}
}

// Drop reasons of informational messages (counters.drops).
const (
	dropInfoNoKeys        = "informational-before-keys"
	dropInfoUndecryptable = "informational-undecryptable"
	dropInfoMalformed     = "informational-malformed"
	dropInfoBadHash       = "informational-bad-hash"
	dropUnauthDelete      = "unauthenticated-delete"
	dropDeleteUnknownSPI  = "delete-unknown-spi"
)

// deleteTarget is the ISAKMP SA a DELETE names: the one of these cookies
// if it is of the same peer (this SA's tunnel), nil if the DELETE names
// cookies we do not hold. A DELETE without a 16-byte SPI (not what RFC
// 2408 section 3.15 asks, but seen) deletes the SA it came on, as before.
func (sa *ikeSA) deleteTarget(d *isakmp.Delete) *ikeSA {
	found16 := false
	for _, spi := range d.SPIs {
		if len(spi) != 16 {
			continue
		}
		found16 = true
		var ic, rc [8]byte
		copy(ic[:], spi[:8])
		copy(rc[:], spi[8:])
		if o := sa.e.sas[ic]; o != nil && o.rCookie == rc && (o == sa || (o.t != nil && o.t == sa.t)) {
			return o
		}
	}
	if !found16 {
		return sa
	}
	return nil
}

func protoName(p uint8) string {
	switch p {
	case isakmp.ProtoESP:
		return "esp"
	case isakmp.ProtoAH:
		return "ah"
	case isakmp.ProtoISAKMP:
		return "isakmp"
	}
	return "unknown"
}
