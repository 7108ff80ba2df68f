package ike

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// Quick mode (RFC 2409 section 5.5), protected by the ISAKMP SA:
//
//	Initiator                                          Responder
//	QM1  HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr]  -->
//	                                                  <--  QM2  HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr] [, N(RESPONDER-LIFETIME)]
//	QM3  HDR*, HASH(3)                                -->
//
// HASH(1) = prf(SKEYID_a, M-ID | rest), HASH(2) = prf(SKEYID_a, M-ID | Ni_b | rest),
// HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b), where rest is every payload
// after the HASH with its generic header. The responder installs the pair's
// inbound SA when it sends QM2 and moves its outbound traffic to the pair
// when QM3 arrives; the initiator installs on QM2 (after sending QM3) and,
// when the pair replaces another, keeps sending on the old one until the
// peer has used the new one or a grace period passed (qmstaging.go). The
// responder retransmits QM2 until QM3 arrives.

type qmState int

const (
	qmQM1Sent qmState = iota
	qmQM2Sent
	qmDone
	qmFailed
)

type quickMode struct {
	sa        *ikeSA
	mid       uint32
	initiator bool
	state     qmState

	offered []Phase2Proposal
	chosen  Phase2Proposal
	life    time.Duration
	lifeKB  uint64
	mode    Mode
	udp     bool
	encap   uint16

	spiIn, spiOut uint32
	ni, nr        []byte
	dhKey         dh.Key
	gi, gr        []byte
	shared        []byte // g^xy of PFS, once the peer's KE was checked
	localTS       netip.Prefix
	remoteTS      netip.Prefix
	// From the peer's NAT-OA payloads (transport mode in UDP): the peer's
	// original address and our address as the peer knows it.
	oaRemote, oaLocal netip.Addr

	out        outbox
	forget     *time.Timer // drops the finished exchange after the retransmission span
	lastInHash [32]byte
	replaces   *childSA // the pair this negotiation rekeys, if any
	started    time.Time

	// Staging (qmstaging.go). Responder: staged is set once the pair's
	// inbound SA is in the data path (QM2 sent), pair is that pair, and
	// QM3 moves the outbound. Initiator: outboundStaged says the pair was
	// installed inbound only at QM2, and the tunnel moves its outbound
	// later (tunnel.checkStaged).
	staged         bool
	pair           ChildSAPair
	outboundStaged bool
}

func (qm *quickMode) logger() logrus.FieldLogger {
	return qm.sa.logger().WithField("msgid", fmt.Sprintf("%08x", qm.mid))
}

func spiBytes(spi uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, spi)
	return b
}

// startQuickMode negotiates a new IPsec SA pair on the tunnel's ISAKMP SA.
func (t *tunnel) startQuickMode(replaces *childSA) {
	sa := t.sa
	if sa == nil || sa.state != stateEstablished {
		return
	}
	pol := &t.cfg.Phase2
	proto := pol.Proposals[0].Protocol
	spi, err := t.e.dp.AllocateSPI(proto)
	if err != nil {
		t.setError("cannot allocate an SPI: " + err.Error())
		return
	}
	offered := rekeyOffer(pol.Proposals, replaces)
	qm := &quickMode{sa: sa, mid: newMessageID(), initiator: true, offered: offered, spiIn: spi,
		life: pol.Lifetime, lifeKB: pol.LifetimeKB, mode: pol.Mode, localTS: pol.LocalTS, remoteTS: pol.RemoteTS,
		replaces: replaces, started: timeNow()}
	qm.udp = sa.natDetected()
	qm.encap = encapMode(qm.mode, qm.udp, sa.nattVersion)
	pfs := offered[0].PFSGroup
	saP := phase2SA(offered, spi, qm.life, qm.lifeKB, qm.encap, pfs)
	qm.ni = randomBytes(nonceLen)
	after := []isakmp.Payload{saP, &isakmp.Nonce{Data: qm.ni}}
	if pfs != 0 {
		g, err := dh.ByID(pfs)
		if err != nil {
			t.setError(err.Error())
			return
		}
		if qm.dhKey, err = qm.sa.e.newDHKey(g, rand.Reader); err != nil {
			t.setError("DH: " + err.Error())
			return
		}
		qm.gi = qm.dhKey.Public()
		after = append(after, &isakmp.KE{Data: qm.gi})
	}
	after = append(after, isakmp.IDFromPrefix(qm.localTS), isakmp.IDFromPrefix(qm.remoteTS))
	after = append(after, qm.natOA()...)
	ref := sa.msgRef("QM1")
	after = sa.impairPayloads(ref, after)
	_, rest, err := isakmp.EncodePayloads(after)
	if err != nil {
		t.setError("encoding QM1: " + err.Error())
		return
	}
	h1 := keymat.QMHash1(sa.hash, sa.skeyidA, qm.mid, rest)
	b, err := qm.seal(sa.impairPayloads(ref, append([]isakmp.Payload{&isakmp.Hash{Data: h1}}, after...)))
	if err != nil {
		t.setError("encoding QM1: " + err.Error())
		return
	}
	sa.quick[qm.mid] = qm
	sa.rememberQuickID(qm.mid)
	qm.state = qmQM1Sent
	t.setPhase2State("Negotiating")
	qm.logger().WithFields(logrus.Fields{"proposals": len(saP.Proposals), "local_ts": qm.localTS.String(), "remote_ts": qm.remoteTS.String(),
		"encap": qm.encap, "spi_in": fmt.Sprintf("%08x", spi), "rekey": replaces != nil}).Info("quick mode: sending QM1")
	qm.send(b, "QM1", true)
}

// natOA returns NAT-OA payloads for transport mode behind NAT (RFC 3947
// section 5.2): the original addresses, for the transport checksum fix-up.
// rekeyOffer is what a quick mode offers: our proposals, and for a rekey
// the one the SA being replaced uses first, so that its PFS group is the
// one offered (one KE payload carries one group). Without it a responder
// that had picked the peer's choice would, when it rekeys, offer only the
// first group of its own list: a VGW's full AWS list starts with group 2,
// which a customer gateway that allows only group 14 refuses.
func rekeyOffer(ps []Phase2Proposal, replaces *childSA) []Phase2Proposal {
	if replaces == nil {
		return ps
	}
	for i, p := range ps {
		if p == replaces.proposal {
			out := make([]Phase2Proposal, 0, len(ps))
			out = append(out, p)
			out = append(out, ps[:i]...)
			return append(out, ps[i+1:]...)
		}
	}
	return ps
}

func (qm *quickMode) natOA() []isakmp.Payload {
	if qm.mode != ModeTransport || !qm.udp {
		return nil
	}
	draft := qm.sa.nattVersion == nattDraft
	oa := func(a netip.Addr) *isakmp.NATOA {
		t := isakmp.IDIPv4Addr
		if a.Is6() {
			t = isakmp.IDIPv6Addr
		}
		return &isakmp.NATOA{IDType: t, Addr: a.AsSlice(), Draft: draft}
	}
	if qm.initiator {
		return []isakmp.Payload{oa(qm.sa.local.Addr()), oa(qm.sa.remote.Addr())}
	}
	return []isakmp.Payload{oa(qm.sa.remote.Addr()), oa(qm.sa.local.Addr())}
}

// readNATOA takes the peer's NAT-OA payloads (RFC 3947 section 5.2): the
// first is NAT-OAi (the initiator's address), the second NAT-OAr (the
// responder's address), each as the sender of the message knows them. So the
// peer's original address is NAT-OAi when the peer initiated, NAT-OAr
// otherwise, and the other one is our address as the peer sees it. Both are
// what the peer put into its TCP/UDP pseudo-header.
func (qm *quickMode) readNATOA(ps []isakmp.Payload) {
	var oas []netip.Addr
	for _, p := range ps {
		if n, ok := p.(*isakmp.NATOA); ok {
			if a, ok := netip.AddrFromSlice(n.Addr); ok {
				oas = append(oas, a)
			}
		}
	}
	if len(oas) != 2 {
		if qm.mode == ModeTransport && qm.udp {
			qm.logger().WithField("nat_oa", len(oas)).Info("transport mode in UDP without two NAT-OA payloads: TCP/UDP checksums are recomputed instead")
		}
		return
	}
	if qm.initiator { // the responder sent them: NAT-OAi is us as it sees us
		qm.oaLocal, qm.oaRemote = oas[0], oas[1]
	} else {
		qm.oaRemote, qm.oaLocal = oas[0], oas[1]
	}
	qm.logger().WithFields(logrus.Fields{"peer_original": qm.oaRemote.String(), "local_as_seen": qm.oaLocal.String()}).Debug("NAT-OA received")
}

func (qm *quickMode) seal(ps []isakmp.Payload) ([]byte, error) {
	first, body, err := isakmp.EncodePayloads(ps)
	if err != nil {
		return nil, err
	}
	return qm.sa.sealExchange(qm.sa.header(isakmp.ExchangeQuickMode, qm.mid), body, first)
}

func (qm *quickMode) send(b []byte, what string, expectReply bool) {
	sa := qm.sa
	var counters *Counters
	if sa.t != nil {
		sa.t.counters.MessagesOut++
		counters = &sa.t.counters
	}
	sa.e.transmit(&qm.out, counters, sa.msgRef(what), sa.local, sa.remote, b, what, expectReply, func() {
		qm.fail(fmt.Sprintf("quick mode timed out waiting for the answer to %s", what))
	})
}

func (qm *quickMode) fail(reason string) {
	if qm.state == qmFailed {
		return
	}
	qm.state = qmFailed
	qm.out.stop()
	qm.logger().WithField("reason", reason).Warn("phase 2 failed")
	if qm.spiIn != 0 {
		_ = qm.sa.e.dp.Delete(qm.chosen.Protocol, qm.spiIn)
	}
	delete(qm.sa.quick, qm.mid)
	if t := qm.sa.t; t != nil {
		t.onChildFailed(qm, reason)
	}
}

// handleQuickMode dispatches a quick mode message by message ID.
func (sa *ikeSA) handleQuickMode(s *socket, from netip.AddrPort, m *isakmp.Message, raw []byte) {
	mid := m.Header.MessageID
	if sa.state != stateEstablished {
		sa.dropQuick(dropQuickEarly, mid, "quick mode before phase 1 completed: dropped")
		return
	}
	if m.Header.Flags&isakmp.FlagEncryption == 0 {
		sa.dropQuick(dropQuickPlain, mid, "unencrypted quick mode message: dropped")
		return
	}
	dg := digest(raw)
	qm := sa.quick[mid]
	if qm != nil && qm.lastInHash == dg {
		// QM3 ends the exchange: a duplicate of it gets no answer (QM2 again
		// would make the initiator send QM3 again, and so on forever).
		if !qm.initiator && qm.state == qmDone {
			return
		}
		if sa.e.resend(&qm.out) {
			sa.t.counters.DuplicatesAnswered++
		}
		return
	}
	if sa.staleQuick(m, qm) { // qmreplay.go
		return
	}
	plain, commit, err := sa.openExchange(m)
	if err != nil {
		sa.dropQuick(dropQuickUndecrypted, mid, "quick mode message does not decrypt ("+err.Error()+"): dropped")
		return
	}
	ps, rest, err := quickPayloads(m, plain)
	if err != nil {
		sa.logger().WithError(err).WithField("msgid", fmt.Sprintf("%08x", mid)).Warn("malformed quick mode message: answering PAYLOAD-MALFORMED")
		sa.sendNotify(isakmp.NotifyPayloadMalformed, isakmp.ProtoISAKMP, nil, nil)
		return
	}
	hash := ps[0].(*isakmp.Hash).Data
	switch {
	case qm == nil:
		if !hmac.Equal(hash, keymat.QMHash1(sa.hash, sa.skeyidA, m.Header.MessageID, rest)) {
			sa.logger().Warn("quick mode HASH(1) does not verify: answering INVALID-HASH-INFORMATION")
			sa.sendNotify(isakmp.NotifyInvalidHashInformation, isakmp.ProtoISAKMP, nil, nil)
			return
		}
		commit()
		sa.authenticated(from)
		sa.rememberQuickID(mid)
		sa.processQM1(mid, ps[1:], dg)
	case qm.initiator && qm.state == qmQM1Sent:
		if !hmac.Equal(hash, keymat.QMHash2(sa.hash, sa.skeyidA, qm.mid, qm.ni, rest)) {
			qm.logger().Warn("quick mode HASH(2) does not verify: dropped")
			sa.sendNotify(isakmp.NotifyInvalidHashInformation, isakmp.ProtoISAKMP, nil, nil)
			return
		}
		commit()
		sa.authenticated(from)
		qm.lastInHash = dg
		qm.processQM2(ps[1:])
	case !qm.initiator && qm.state == qmQM2Sent:
		if !hmac.Equal(hash, keymat.QMHash3(sa.hash, sa.skeyidA, qm.mid, qm.ni, qm.nr)) {
			qm.logger().Warn("quick mode HASH(3) does not verify: dropped")
			sa.sendNotify(isakmp.NotifyInvalidHashInformation, isakmp.ProtoISAKMP, nil, nil)
			return
		}
		commit()
		sa.authenticated(from)
		qm.lastInHash = dg
		qm.out.answered()
		qm.logger().Info("quick mode: QM3 received")
		qm.install()
	default:
		sa.dropQuick(dropQuickStale, mid, "quick mode message the exchange does not expect now: dropped")
	}
}

// quickPayloads decodes a decrypted quick mode body: a payload chain that
// starts with HASH, and the bytes after the HASH that it covers.
func quickPayloads(m *isakmp.Message, plain []byte) ([]isakmp.Payload, []byte, error) {
	ps, err := isakmp.DecodePayloads(m.Header.NextPayload, plain, isakmp.HeaderLen)
	if err != nil {
		return nil, nil, err
	}
	if len(ps) == 0 || ps[0].Type() != isakmp.PayloadHash {
		first := "nothing"
		if len(ps) > 0 {
			first = ps[0].Type().String()
		}
		return nil, nil, fmt.Errorf("the payload chain starts with %s, not HASH", first)
	}
	rest, err := chainAfterFirst(plain)
	if err != nil {
		return nil, nil, err
	}
	return ps, rest, nil
}

// processQM2 (initiator): read the responder's choice, send QM3, install.
func (qm *quickMode) processQM2(ps []isakmp.Payload) {
	sa := qm.sa
	saP, _ := findPayload(ps, isakmp.PayloadSA).(*isakmp.SA)
	nr, _ := findPayload(ps, isakmp.PayloadNonce).(*isakmp.Nonce)
	if saP == nil || nr == nil || len(saP.Proposals) != 1 || len(saP.Proposals[0].Transforms) != 1 || len(saP.Proposals[0].SPI) != 4 {
		qm.fail("QM2 must carry one proposal with one transform and a nonce")
		return
	}
	prop := saP.Proposals[0]
	o, err := parsePhase2Transform(prop.ProtocolID, prop.Transforms[0])
	if err != nil || !containsP2(qm.offered, o.p) || o.encap != qm.encap {
		qm.fail(fmt.Sprintf("the responder chose a proposal we did not offer (%v)", err))
		return
	}
	if !nonceLenOK(nr.Data) {
		qm.sa.sendNotify(isakmp.NotifyPayloadMalformed, isakmp.ProtoISAKMP, nil, nil)
		qm.fail(fmt.Sprintf("QM2 nonce of %d bytes (RFC 2409: %d to %d): answered PAYLOAD-MALFORMED", len(nr.Data), minNonceLen, maxNonceLen))
		return
	}
	if !qm.sameIDs(ps) {
		qm.fail("QM2 ID payloads differ from those we sent")
		return
	}
	qm.chosen, qm.spiOut, qm.nr = o.p, binary.BigEndian.Uint32(prop.SPI), nr.Data
	qm.readNATOA(ps)
	for _, p := range ps {
		if n, ok := p.(*isakmp.Notify); ok && n.NotifyType == isakmp.NotifyResponderLifetime {
			qm.applyResponderLifetime(n.Data)
		}
	}
	qm.life, qm.lifeKB = minLifetime(qm.life, o.life), minLifeKB(qm.lifeKB, o.lifeKB)
	ke, _ := findPayload(ps, isakmp.PayloadKE).(*isakmp.KE)
	if qm.dhKey == nil && ke != nil {
		// We offered no PFS: a responder that sends KE computes KEYMAT
		// with g(qm)^xy and we without, so the pair would never carry
		// traffic. The responder side refuses the same mismatch.
		qm.fail("QM2 carries a KE payload but we offered no PFS")
		return
	}
	if qm.dhKey != nil {
		if ke == nil {
			qm.fail("QM2 lacks the KE payload that PFS requires")
			return
		}
		qm.gr = ke.Data
		var err error
		if qm.shared, err = qm.dhKey.SharedSecret(qm.gr); err != nil {
			qm.sa.sendNotify(isakmp.NotifyInvalidKeyInformation, qm.chosen.Protocol, spiBytes(qm.spiOut), nil)
			qm.fail("QM2 KE: " + err.Error() + ": answered INVALID-KEY-INFORMATION")
			return
		}
	}
	h3 := keymat.QMHash3(sa.hash, sa.skeyidA, qm.mid, qm.ni, qm.nr)
	b, err := qm.seal(sa.impairPayloads(sa.msgRef("QM3"), []isakmp.Payload{&isakmp.Hash{Data: h3}}))
	if err != nil {
		qm.fail("encoding QM3: " + err.Error())
		return
	}
	qm.out.answered()
	qm.logger().WithField("proposal", o.p.String()).Info("quick mode: QM2 received, sending QM3")
	qm.send(b, "QM3", false)
	qm.install()
}

// childPair derives KEYMAT for both SPIs: the pair as the data path takes it.
func (qm *quickMode) childPair() (ChildSAPair, error) {
	sa := qm.sa
	gqm := qm.shared
	if qm.dhKey != nil && gqm == nil {
		peer := qm.gr
		if !qm.initiator {
			peer = qm.gi
		}
		var err error
		if gqm, err = qm.dhKey.SharedSecret(peer); err != nil {
			return ChildSAPair{}, fmt.Errorf("PFS DH: %w", err)
		}
	}
	encLen, integLen := keyLengths(qm.chosen)
	proto := qm.chosen.Protocol
	mk := func(spi uint32) ChildSA {
		km := keymat.Keymat(sa.hash, sa.skeyidD, gqm, proto, spiBytes(spi), qm.ni, qm.nr, encLen+integLen)
		return ChildSA{SPI: spi, Protocol: proto, Encryption: qm.chosen.Encryption, EncKey: km[:encLen],
			Integrity: qm.chosen.Integrity, IntegKey: km[encLen:]}
	}
	pair := ChildSAPair{
		Tunnel: sa.tunnelName(), Inbound: mk(qm.spiIn), Outbound: mk(qm.spiOut), Mode: qm.mode, UDPEncap: qm.udp,
		Local: sa.local, Remote: sa.remote, LocalTS: qm.localTS, RemoteTS: qm.remoteTS,
		Lifetime: qm.life, LifetimeKB: qm.lifeKB, ReplayWindow: sa.t.cfg.Phase2.ReplayWindow,
		OriginalLocal: qm.oaLocal, OriginalRemote: qm.oaRemote,
	}
	if !qm.udp {
		pair.Local = netip.AddrPortFrom(sa.local.Addr(), 0)
		pair.Remote = netip.AddrPortFrom(sa.remote.Addr(), 0)
	}
	return pair, nil
}

// install completes the negotiation: the pair goes to the data path (all
// of it, or what staging left to do: qmstaging.go) and to the tunnel.
func (qm *quickMode) install() {
	sa := qm.sa
	pair := qm.pair
	if !qm.staged {
		var err error
		if pair, err = qm.childPair(); err != nil {
			qm.fail(err.Error())
			return
		}
	}
	if err := qm.installPair(pair); err != nil {
		qm.fail("data path refused the SAs: " + err.Error())
		return
	}
	qm.state = qmDone
	sa.t.onChildUp(qm, pair)
	// Keep the state for duplicate QM2/QM3 as long as the peer may
	// retransmit (a lost QM3 and a lost retransmission must still get the
	// cached QM3), then forget it.
	qm.forget = sa.e.afterFunc(sa.e.retransmitSpan(), func() {
		if sa.quick[qm.mid] == qm {
			qm.out.stop()
			delete(sa.quick, qm.mid)
			delete(sa.ivs, qm.mid)
		}
	})
}
