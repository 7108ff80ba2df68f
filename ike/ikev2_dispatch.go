package ike

import (
	"encoding/hex"
	"errors"
	"net/netip"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// IKEv2 message entry. handleDatagram (dispatch.go) sends every datagram
// whose header says major version 2 (byte 17, high nibble) here before
// any decoding. A message is looked up by our own SPI: SPIr when the
// sender is the original initiator (flag I), SPIi otherwise. A first
// IKE_SA_INIT request (SPIr zero, message ID 0) goes to the responder
// (ikev2_sa_init.go) unless it retransmits one we answered. The exchange
// type then picks the handler (CREATE_CHILD_SA: ikev2_create_child_sa.go,
// INFORMATIONAL: ikev2_informational.go); unknown exchanges are counted
// and dropped in unhandledV2.

// Drop reasons of IKEv2 messages (EngineCounters.Drops).
const (
	dropV2Malformed       = "ikev2-malformed"
	dropV2UnknownSPI      = "ikev2-unknown-spi"
	dropV2Unhandled       = "ikev2-unhandled-exchange"
	dropV2WrongDirection  = "ikev2-unexpected-message"
	dropV2Integrity       = "ikev2-integrity"
	dropV2MessageID       = "ikev2-message-id"
	dropV2VersionRefused  = "ikev2-version-refused"
	dropV1VersionRefused  = "ikev1-version-refused"
	dropV2NoTunnel        = "ikev2-unknown-peer"
	dropV2CookieDemanded  = "ikev2-cookie-demanded"
	dropV2UnexpectedState = "ikev2-unexpected-state"
)

// isIKEv2 reports whether a datagram's IKE header says major version 2.
func isIKEv2(b []byte) bool { return len(b) > 17 && b[17]>>4 == 2 }

// handleV2 is the entry point of every IKEv2 message on the loop.
func (e *Engine) handleV2(s *socket, from netip.AddrPort, b []byte) {
	h, err := wire.DecodeHeader(b)
	if err != nil {
		e.counters.Malformed++
		e.countDrop(dropV2Malformed)
		e.log.WithFields(logrus.Fields{"peer": from.String(), "len": len(b)}).WithError(err).Debug("dropping malformed IKEv2 message")
		return
	}
	var zero [8]byte
	if h.SPIi == zero || h.Exchange < wire.ExchangeIKESAInit {
		// A zero SPIi names no IKE SA (section 3.1); exchange types below
		// 34 are reserved in IKEv2 (IKEv1's, under a broken version field).
		e.counters.Malformed++
		e.countDrop(dropV2Malformed)
		e.log.WithFields(logrus.Fields{"peer": from.String(), "exchange": h.Exchange.String(), "spi_i": hex.EncodeToString(h.SPIi[:])}).
			Debug("dropping an IKEv2 message with a zero SPIi or a reserved exchange type")
		return
	}
	if h.Exchange == wire.ExchangeIKESAInit && !h.Response() && h.Initiator() && h.SPIr == zero && h.MessageID == 0 {
		if sa := e.v2init[v2InitKey{from.Addr(), h.SPIi}]; sa != nil {
			sa.initRetransmitted(b)
			return
		}
		e.respondV2First(s, from, h, b)
		return
	}
	sa := e.lookupV2(h)
	if sa == nil {
		e.counters.UnknownCookie++
		e.countDrop(dropV2UnknownSPI)
		if e.counters.UnknownCookie%100 == 1 {
			e.log.WithFields(logrus.Fields{"peer": from.String(), "spi_i": hex.EncodeToString(h.SPIi[:]),
				"spi_r": hex.EncodeToString(h.SPIr[:]), "exchange": h.Exchange.String()}).
				Warn("IKEv2 message for an unknown IKE SA (SPIs): dropped")
		}
		return
	}
	if sa.t != nil {
		countV2Received(&sa.t.counters, h.Exchange) // counters.go
	}
	switch h.Exchange {
	case wire.ExchangeIKESAInit:
		sa.handleInitResponse(h, b)
	case wire.ExchangeIKEAuth:
		sa.handleAuth(s, from, h, b)
	case wire.ExchangeCreateChildSA:
		sa.handleCreateChildSA(h, b) // ikev2_create_child_sa.go
	case wire.ExchangeInformational:
		sa.handleInformational(h, b) // ikev2_informational.go
	default:
		sa.unhandledV2(h)
	}
}

// lookupV2 finds the IKEv2 SA of a message by the SPI that is ours.
func (e *Engine) lookupV2(h wire.Header) *ikev2SA {
	if h.Initiator() {
		// From the original initiator: we are the responder.
		if sa := e.sas2[h.SPIr]; sa != nil && !sa.initiator && sa.spiI == h.SPIi {
			return sa
		}
		return nil
	}
	sa := e.sas2[h.SPIi]
	if sa == nil || !sa.initiator {
		return nil
	}
	var zero [8]byte
	if sa.spiR != zero && h.SPIr != sa.spiR {
		return nil
	}
	return sa
}

// unhandledV2 counts and drops an exchange the IKEv2 core does not handle
// (CREATE_CHILD_SA and INFORMATIONAL belong to other files; anything else
// is unknown).
func (sa *ikev2SA) unhandledV2(h wire.Header) {
	sa.e.countDrop(dropV2Unhandled)
	sa.logger().WithFields(logrus.Fields{"exchange": h.Exchange.String(), "msgid": h.MessageID, "response": h.Response()}).
		Debug("IKEv2 exchange not handled: dropped")
}

// findV2Tunnel finds the tunnel of a first message the way IKEv1 does: by
// the local address it arrived on and the peer's address.
func (e *Engine) findTunnelFor(local, from netip.AddrPort) *tunnel {
	for _, c := range e.tunnels {
		if c.cfg.RemoteAddr == from.Addr() && c.cfg.LocalAddr == local.Addr() {
			return c
		}
	}
	return nil
}

// versionRefused records a first message of a version the tunnel does not
// speak: counted, logged, and in the tunnel's last error and an event, so
// that a version mismatch explains itself. It is reported once per
// negotiation attempt, not per retransmission.
func (t *tunnel) versionRefused(got policy.Version, from netip.AddrPort) {
	var names []string
	for _, v := range t.cfg.Versions() {
		names = append(names, v.String())
	}
	msg := "peer started " + versionName(got) + " but tunnel allows only " + joinComma(names)
	reason := dropV2VersionRefused
	if got == policy.IKEv1 {
		reason = dropV1VersionRefused
	}
	t.e.countDrop(reason)
	if t.lastError == msg {
		return
	}
	t.log.WithField("peer", from.String()).Warn(msg)
	t.setError(msg)
	t.e.emit(Event{Tunnel: t.cfg.Name, Type: "version-mismatch", Detail: map[string]string{
		"peer_version": got.String(), "allowed": joinComma(names), "message": msg}})
}

func versionName(v policy.Version) string {
	if v == policy.IKEv2 {
		return "IKEv2"
	}
	return "IKEv1"
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// errV2 is a refusal the responder answers with a notify.
type errV2 struct {
	notify wire.NotifyType
	data   []byte
	reason string
}

func (e *errV2) Error() string { return e.reason }

func asErrV2(err error) (*errV2, bool) {
	var v *errV2
	ok := errors.As(err, &v)
	return v, ok
}

// recoveredV2 is the panic safety net's part for an IKEv2 message
// (recover.go): log it with its header and end the IKE SA it belongs to.
func (e *Engine) recoveredV2(f logrus.Fields, b []byte) {
	h, err := wire.DecodeHeader(b)
	var sa *ikev2SA
	if err == nil {
		f["exchange"], f["msgid"] = h.Exchange.String(), h.MessageID
		f["spi_i"], f["spi_r"] = hex.EncodeToString(h.SPIi[:]), hex.EncodeToString(h.SPIr[:])
		sa = e.lookupV2(h)
	}
	if sa != nil && sa.t != nil {
		f["tunnel"] = sa.t.cfg.Name
	}
	e.log.WithFields(f).Error("internal error while handling an IKEv2 message: recovered, ending its IKE SA; the engine keeps serving")
	if sa == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			e.counters.Panics++
			sa.state = v2Deleted
			e.removeSA2(sa)
			if sa.t != nil && sa.t.v2 == sa {
				sa.t.v2 = nil
			}
		}
	}()
	sa.fail("internal error while handling a message of this IKEv2 SA")
}
