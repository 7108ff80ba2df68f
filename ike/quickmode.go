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
// after the HASH with its generic header. The initiator installs after sending
// QM3, the responder after receiving it; the responder retransmits QM2 until
// QM3 arrives.

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
	localTS       netip.Prefix
	remoteTS      netip.Prefix
	// From the peer's NAT-OA payloads (transport mode in UDP): the peer's
	// original address and our address as the peer knows it.
	oaRemote, oaLocal netip.Addr

	out        outbox
	lastInHash [32]byte
	replaces   *childSA // the pair this negotiation rekeys, if any
	started    time.Time
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
		if qm.dhKey, err = g.Generate(rand.Reader); err != nil {
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
	if sa.state != stateEstablished {
		sa.logger().Debug("quick mode before phase 1 completed: dropped")
		return
	}
	if m.Header.Flags&isakmp.FlagEncryption == 0 {
		sa.logger().Warn("unencrypted quick mode message: dropped")
		return
	}
	dg := digest(raw)
	qm := sa.quick[m.Header.MessageID]
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
	plain, commit, err := sa.openExchange(m)
	if err != nil {
		sa.logger().WithError(err).Warn("quick mode message does not decrypt: dropped")
		return
	}
	ps, err := isakmp.DecodePayloads(m.Header.NextPayload, plain, isakmp.HeaderLen)
	if err != nil || len(ps) == 0 || ps[0].Type() != isakmp.PayloadHash {
		sa.logger().WithError(err).Warn("quick mode message is malformed or does not start with HASH: answering PAYLOAD-MALFORMED")
		sa.sendNotify(isakmp.NotifyPayloadMalformed, isakmp.ProtoISAKMP, nil, nil)
		return
	}
	rest, err := chainAfterFirst(plain)
	if err != nil {
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
		sa.processQM1(m.Header.MessageID, ps[1:], dg)
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
		qm.logger().Debug("unexpected quick mode message: ignored")
	}
}

// idPair returns the ID payloads of a quick mode message (IDci, IDcr).
func idPair(ps []isakmp.Payload) (ci, cr *isakmp.ID, n int) {
	for _, p := range ps {
		if id, ok := p.(*isakmp.ID); ok {
			switch n {
			case 0:
				ci = id
			case 1:
				cr = id
			}
			n++
		}
	}
	return ci, cr, n
}

// processQM1 (responder): choose a proposal, check selectors, answer QM2.
func (sa *ikeSA) processQM1(mid uint32, ps []isakmp.Payload, dg [32]byte) {
	t := sa.t
	pol := &t.cfg.Phase2
	qm := &quickMode{sa: sa, mid: mid, initiator: false, lastInHash: dg, started: timeNow()}
	saP, _ := findPayload(ps, isakmp.PayloadSA).(*isakmp.SA)
	ni, _ := findPayload(ps, isakmp.PayloadNonce).(*isakmp.Nonce)
	ke, _ := findPayload(ps, isakmp.PayloadKE).(*isakmp.KE)
	if saP == nil || ni == nil {
		qm.logger().Warn("QM1 lacks SA or nonce: answering PAYLOAD-MALFORMED")
		sa.sendNotify(isakmp.NotifyPayloadMalformed, isakmp.ProtoISAKMP, nil, nil)
		return
	}
	qm.ni = ni.Data
	// Traffic selectors: IDci is the initiator's side (our remote), IDcr ours.
	ci, cr, nids := idPair(ps)
	qm.localTS = netip.PrefixFrom(sa.local.Addr(), sa.local.Addr().BitLen())
	qm.remoteTS = netip.PrefixFrom(sa.remote.Addr(), sa.remote.Addr().BitLen())
	if nids == 2 {
		rp, err1 := ci.Prefix()
		lp, err2 := cr.Prefix()
		if err1 != nil || err2 != nil {
			qm.rejectTS(fmt.Sprintf("unsupported ID payloads %s / %s", ci.String(), cr.String()))
			return
		}
		qm.remoteTS, qm.localTS = rp, lp
	} else if nids != 0 {
		qm.rejectTS("QM1 carries one ID payload; quick mode needs none or two")
		return
	}
	if !prefixWithin(qm.localTS, pol.LocalTS) || !prefixWithin(qm.remoteTS, pol.RemoteTS) {
		qm.rejectTS(fmt.Sprintf("traffic selectors do not match: peer proposes %s === %s (its side first), this tunnel allows %s === %s",
			qm.remoteTS, qm.localTS, pol.RemoteTS, pol.LocalTS))
		return
	}
	keLen := 0
	if ke != nil {
		keLen = len(ke.Data)
	}
	o, reasons, err := choosePhase2(pol, saP, sa.natDetected(), keLen)
	if err != nil {
		qm.logger().WithField("why", reasons).Warn("No Proposal Match Found. Notifying with \"No proposal chosen\"")
		var spi []byte
		if len(saP.Proposals) > 0 {
			spi = saP.Proposals[0].SPI
		}
		proto := isakmp.ProtoESP
		if len(saP.Proposals) > 0 {
			proto = saP.Proposals[0].ProtocolID
		}
		sa.sendNotify(isakmp.NotifyNoProposalChosen, proto, spi, nil)
		t.onChildFailed(qm, "no phase 2 proposal matched")
		return
	}
	qm.chosen, qm.mode, qm.udp, qm.encap, qm.spiOut = o.p, o.mode, o.udp, o.encap, o.spi
	qm.readNATOA(ps)
	qm.life, qm.lifeKB = pol.Lifetime, pol.LifetimeKB
	var notifies []isakmp.Payload
	if o.life > 0 && o.life < qm.life {
		qm.life = o.life
	}
	if o.lifeKB > 0 && (qm.lifeKB == 0 || o.lifeKB < qm.lifeKB) {
		qm.lifeKB = o.lifeKB
	}
	if o.life > qm.life || (qm.lifeKB > 0 && o.lifeKB > qm.lifeKB) {
		qm.logger().WithFields(logrus.Fields{"proposed": o.life.String(), "configured": qm.life.String()}).Info("peer proposed a longer lifetime: answering with RESPONDER-LIFETIME")
		attrs := []isakmp.Attribute{isakmp.AttrBasic(isakmp.AttrSALifeType, isakmp.LifeSeconds), isakmp.AttrUint(isakmp.AttrSALifeDuration, uint64(qm.life/time.Second))}
		if qm.lifeKB > 0 {
			attrs = append(attrs, isakmp.AttrBasic(isakmp.AttrSALifeType, isakmp.LifeKilobytes), isakmp.AttrUint(isakmp.AttrSALifeDuration, qm.lifeKB))
		}
		notifies = append(notifies, &isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: o.p.Protocol, SPI: spiBytes(o.spi),
			NotifyType: isakmp.NotifyResponderLifetime, Data: encodeAttributes(attrs)})
	}
	spi, err := sa.e.dp.AllocateSPI(o.p.Protocol)
	if err != nil {
		qm.logger().WithError(err).Warn("cannot allocate SPI")
		return
	}
	qm.spiIn = spi
	qm.nr = randomBytes(nonceLen)
	reply := &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: saP.Situation, Proposals: []isakmp.Proposal{{
		Number: o.prop.Number, ProtocolID: o.p.Protocol, SPI: spiBytes(spi), Transforms: []isakmp.Transform{o.tr}}}}
	after := []isakmp.Payload{reply, &isakmp.Nonce{Data: qm.nr}}
	if ke != nil {
		g, _ := dh.ByID(o.p.PFSGroup)
		if qm.dhKey, err = g.Generate(rand.Reader); err != nil {
			qm.logger().WithError(err).Warn("DH generation failed")
			return
		}
		qm.gi, qm.gr = ke.Data, qm.dhKey.Public()
		after = append(after, &isakmp.KE{Data: qm.gr})
	}
	if nids == 2 {
		after = append(after, ci, cr)
	}
	after = append(after, qm.natOA()...)
	after = append(after, notifies...)
	ref := sa.msgRef("QM2")
	after = sa.impairPayloads(ref, after)
	_, rest, err := isakmp.EncodePayloads(after)
	if err != nil {
		return
	}
	h2 := keymat.QMHash2(sa.hash, sa.skeyidA, mid, qm.ni, rest)
	b, err := qm.seal(sa.impairPayloads(ref, append([]isakmp.Payload{&isakmp.Hash{Data: h2}}, after...)))
	if err != nil {
		return
	}
	sa.quick[mid] = qm
	qm.state = qmQM2Sent
	t.setPhase2State("Negotiating")
	qm.logger().WithFields(logrus.Fields{"proposal": o.p.String(), "mode": qm.mode.String(), "udp_encap": qm.udp,
		"local_ts": qm.localTS.String(), "remote_ts": qm.remoteTS.String(), "lifetime": qm.life.String()}).Info("quick mode: QM1 accepted, sending QM2")
	qm.send(b, "QM2", true)
}

func (qm *quickMode) rejectTS(why string) {
	qm.logger().Warn(why + ": answering INVALID-ID-INFORMATION")
	qm.sa.sendNotify(isakmp.NotifyInvalidIDInformation, isakmp.ProtoISAKMP, nil, nil)
	qm.sa.t.onChildFailed(qm, why)
}

// prefixWithin reports whether p lies inside q.
func prefixWithin(p, q netip.Prefix) bool {
	return p.Addr().Is4() == q.Addr().Is4() && p.Bits() >= q.Bits() && q.Contains(p.Addr())
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
	if ci, cr, n := idPair(ps); n == 2 {
		cp, e1 := ci.Prefix()
		rp, e2 := cr.Prefix()
		if e1 != nil || e2 != nil || cp != qm.localTS || rp != qm.remoteTS {
			qm.fail("QM2 ID payloads differ from those we sent")
			return
		}
	}
	qm.chosen, qm.spiOut, qm.nr = o.p, binary.BigEndian.Uint32(prop.SPI), nr.Data
	qm.readNATOA(ps)
	for _, p := range ps {
		if n, ok := p.(*isakmp.Notify); ok && n.NotifyType == isakmp.NotifyResponderLifetime {
			qm.applyResponderLifetime(n.Data)
		}
	}
	if o.life > 0 && o.life < qm.life {
		qm.life = o.life
	}
	if qm.dhKey != nil {
		ke, _ := findPayload(ps, isakmp.PayloadKE).(*isakmp.KE)
		if ke == nil {
			qm.fail("QM2 lacks the KE payload that PFS requires")
			return
		}
		qm.gr = ke.Data
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

// applyResponderLifetime adopts the responder's shorter lifetimes (RFC 2407 4.6.3.1).
func (qm *quickMode) applyResponderLifetime(data []byte) {
	attrs, err := decodeAttributes(data)
	if err != nil {
		qm.logger().WithError(err).Warn("malformed RESPONDER-LIFETIME notify ignored")
		return
	}
	lt := uint16(0)
	for _, a := range attrs {
		v, _ := a.Uint()
		switch a.Type {
		case isakmp.AttrSALifeType:
			lt = uint16(v)
		case isakmp.AttrSALifeDuration:
			if lt == isakmp.LifeSeconds {
				qm.life = time.Duration(v) * time.Second
			} else if lt == isakmp.LifeKilobytes {
				qm.lifeKB = v
			}
		}
	}
	qm.logger().WithField("lifetime", qm.life.String()).Info("responder lifetime adopted")
}

// install derives KEYMAT for both SPIs and hands the pair to the data path.
func (qm *quickMode) install() {
	sa := qm.sa
	var gqm []byte
	if qm.dhKey != nil {
		peer := qm.gr
		if !qm.initiator {
			peer = qm.gi
		}
		var err error
		if gqm, err = qm.dhKey.SharedSecret(peer); err != nil {
			qm.fail("PFS DH: " + err.Error())
			return
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
	if err := sa.e.dp.Install(pair); err != nil {
		qm.fail("data path refused the SAs: " + err.Error())
		return
	}
	if sa.e.klog != nil {
		sa.e.klog.ChildKeys(pair)
	}
	qm.state = qmDone
	sa.t.onChildUp(qm, pair)
	// Keep the state a little for duplicate QM2/QM3, then forget it.
	sa.e.afterFunc(2*sa.e.cfg.RetransmitTimeout, func() {
		if sa.quick[qm.mid] == qm {
			qm.out.stop()
			delete(sa.quick, qm.mid)
			delete(sa.ivs, qm.mid)
		}
	})
}

// encodeAttributes/decodeAttributes handle the attribute list carried in a
// RESPONDER-LIFETIME notify's data (RFC 2407 4.6.3.1).
func encodeAttributes(attrs []isakmp.Attribute) []byte {
	var out []byte
	for _, a := range attrs {
		if a.Basic {
			out = binary.BigEndian.AppendUint16(out, a.Type|0x8000)
			out = binary.BigEndian.AppendUint16(out, a.Value)
			continue
		}
		out = binary.BigEndian.AppendUint16(out, a.Type)
		out = binary.BigEndian.AppendUint16(out, uint16(len(a.Data)))
		out = append(out, a.Data...)
	}
	return out
}

func decodeAttributes(b []byte) ([]isakmp.Attribute, error) {
	var out []isakmp.Attribute
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("attribute truncated")
		}
		t := binary.BigEndian.Uint16(b)
		v := binary.BigEndian.Uint16(b[2:])
		if t&0x8000 != 0 {
			out = append(out, isakmp.Attribute{Type: t &^ 0x8000, Basic: true, Value: v})
			b = b[4:]
			continue
		}
		if len(b) < 4+int(v) {
			return nil, fmt.Errorf("attribute length %d past end", v)
		}
		out = append(out, isakmp.Attribute{Type: t, Data: append([]byte(nil), b[4:4+int(v)]...)})
		b = b[4+int(v):]
	}
	return out, nil
}
