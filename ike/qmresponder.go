package ike

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// Quick mode, responder side: the checks of a QM1 whose HASH(1) verified
// (the peer is authenticated, but its input is still untrusted) and QM2.
// Every refusal sends one notify and fails the negotiation
// (phase2-failed event, the tunnel's last error); docs/hostile-input.md
// lists them.

// Nonce length bounds of RFC 2409 section 5: "The length of nonce payload
// MUST be between 8 and 256 bytes inclusive."
const (
	minNonceLen = 8
	maxNonceLen = 256
)

// qm1 is what a QM1 carries.
type qm1 struct {
	sa     *isakmp.SA
	ni     *isakmp.Nonce
	ke     *isakmp.KE // nil if absent; present but empty is not nil
	ci, cr *isakmp.ID
	nids   int
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

// nonceLenOK reports whether a nonce has a length RFC 2409 allows.
func nonceLenOK(n []byte) bool { return len(n) >= minNonceLen && len(n) <= maxNonceLen }

// processQM1 (responder): check the QM1, choose a proposal, answer QM2.
func (sa *ikeSA) processQM1(mid uint32, ps []isakmp.Payload, dg [32]byte) {
	qm := &quickMode{sa: sa, mid: mid, initiator: false, lastInHash: dg, started: timeNow()}
	in, ok := qm.readQM1(ps)
	if !ok {
		return
	}
	o, ok := qm.chooseQM1(in)
	if !ok {
		return
	}
	qm.chosen, qm.mode, qm.udp, qm.encap, qm.spiOut = o.p, o.mode, o.udp, o.encap, o.spi
	qm.readNATOA(ps)
	notifies := qm.responderLifetime(o)
	if o.p.PFSGroup != 0 && !qm.responderDH(o.p.PFSGroup, in.ke.Data) {
		return
	}
	spi, err := sa.e.dp.AllocateSPI(o.p.Protocol)
	if err != nil {
		qm.refuse(isakmp.NotifyNoProposalChosen, o.p.Protocol, spiBytes(o.spi), "cannot allocate an SPI: "+err.Error())
		return
	}
	qm.spiIn = spi
	qm.nr = randomBytes(nonceLen)
	reply := &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: in.sa.Situation, Proposals: []isakmp.Proposal{{
		Number: o.prop.Number, ProtocolID: o.p.Protocol, SPI: spiBytes(spi), Transforms: []isakmp.Transform{o.tr}}}}
	after := []isakmp.Payload{reply, &isakmp.Nonce{Data: qm.nr}}
	if qm.dhKey != nil {
		after = append(after, &isakmp.KE{Data: qm.gr})
	}
	if in.nids == 2 {
		after = append(after, in.ci, in.cr)
	}
	after = append(after, qm.natOA()...)
	after = append(after, notifies...)
	qm.sendQM2(after, o)
}

// sendQM2 hashes, seals and sends QM2, and keeps the quick mode until QM3.
func (qm *quickMode) sendQM2(after []isakmp.Payload, o phase2Offer) {
	sa := qm.sa
	ref := sa.msgRef("QM2")
	after = sa.impairPayloads(ref, after)
	_, rest, err := isakmp.EncodePayloads(after)
	if err != nil {
		qm.refuse(isakmp.NotifyNoProposalChosen, o.p.Protocol, spiBytes(o.spi), "encoding QM2: "+err.Error())
		return
	}
	h2 := keymat.QMHash2(sa.hash, sa.skeyidA, qm.mid, qm.ni, rest)
	b, err := qm.seal(sa.impairPayloads(ref, append([]isakmp.Payload{&isakmp.Hash{Data: h2}}, after...)))
	if err != nil {
		qm.refuse(isakmp.NotifyNoProposalChosen, o.p.Protocol, spiBytes(o.spi), "encoding QM2: "+err.Error())
		return
	}
	if !qm.stageInbound(o) { // qmstaging.go
		return
	}
	sa.quick[qm.mid] = qm
	qm.state = qmQM2Sent
	sa.t.setPhase2State("Negotiating")
	qm.logger().WithFields(logrus.Fields{"proposal": o.p.String(), "mode": qm.mode.String(), "udp_encap": qm.udp,
		"local_ts": qm.localTS.String(), "remote_ts": qm.remoteTS.String(), "lifetime": qm.life.String()}).Info("quick mode: QM1 accepted, sending QM2")
	qm.send(b, "QM2", true)
}

// readQM1 finds a QM1's payloads and checks the nonce and the traffic
// selectors. It refuses the QM1 (notify sent) and returns false if they do
// not pass.
func (qm *quickMode) readQM1(ps []isakmp.Payload) (qm1, bool) {
	var in qm1
	in.sa, _ = findPayload(ps, isakmp.PayloadSA).(*isakmp.SA)
	in.ni, _ = findPayload(ps, isakmp.PayloadNonce).(*isakmp.Nonce)
	in.ke, _ = findPayload(ps, isakmp.PayloadKE).(*isakmp.KE)
	if in.sa == nil || in.ni == nil {
		qm.refuse(isakmp.NotifyPayloadMalformed, isakmp.ProtoISAKMP, nil, "QM1 lacks the SA or the nonce payload")
		return in, false
	}
	if !nonceLenOK(in.ni.Data) {
		qm.refuse(isakmp.NotifyPayloadMalformed, isakmp.ProtoISAKMP, nil,
			fmt.Sprintf("QM1 nonce of %d bytes (RFC 2409: %d to %d)", len(in.ni.Data), minNonceLen, maxNonceLen))
		return in, false
	}
	qm.ni = in.ni.Data
	in.ci, in.cr, in.nids = idPair(ps)
	return in, qm.checkSelectors(in)
}

// checkSelectors sets the quick mode's traffic selectors from IDci/IDcr
// (IDci is the initiator's side, our remote), or the two gateway addresses
// without ID payloads (RFC 2409 section 5.5). Only address selectors are
// honoured: the data path selects by address, so an ID with an IP protocol
// or port (RFC 2407 section 4.6.2) could not be enforced, and IKEv1 has no
// narrowing (the responder echoes IDci/IDcr): such IDs are refused with
// INVALID-ID-INFORMATION instead of being echoed as if agreed.
func (qm *quickMode) checkSelectors(in qm1) bool {
	sa, pol := qm.sa, &qm.sa.t.cfg.Phase2
	qm.localTS = netip.PrefixFrom(sa.local.Addr(), sa.local.Addr().BitLen())
	qm.remoteTS = netip.PrefixFrom(sa.remote.Addr(), sa.remote.Addr().BitLen())
	switch in.nids {
	case 0:
	case 2:
		for _, id := range []*isakmp.ID{in.ci, in.cr} {
			if id.ProtocolID != 0 || id.Port != 0 {
				qm.rejectTS(fmt.Sprintf("ID %s selects IP protocol %d port %d; this gateway negotiates address selectors only (protocol any, port 0)",
					id.String(), id.ProtocolID, id.Port))
				return false
			}
		}
		rp, err1 := in.ci.Prefix()
		lp, err2 := in.cr.Prefix()
		if err1 != nil || err2 != nil {
			qm.rejectTS(fmt.Sprintf("unsupported ID payloads %s / %s", in.ci.String(), in.cr.String()))
			return false
		}
		qm.remoteTS, qm.localTS = rp, lp
	default:
		qm.rejectTS(fmt.Sprintf("QM1 carries %d ID payloads; quick mode needs none or two", in.nids))
		return false
	}
	if !prefixWithin(qm.localTS, pol.LocalTS) || !prefixWithin(qm.remoteTS, pol.RemoteTS) {
		qm.rejectTS(fmt.Sprintf("traffic selectors do not match: peer proposes %s === %s (its side first), this tunnel allows %s === %s",
			qm.remoteTS, qm.localTS, pol.RemoteTS, pol.LocalTS))
		return false
	}
	return true
}

// chooseQM1 picks a proposal or refuses: INVALID-KEY-INFORMATION when only
// the KE payload's length stood in the way (RFC 2408 section 5.7),
// NO-PROPOSAL-CHOSEN otherwise (a KE payload without any PFS proposal that
// could use it included).
func (qm *quickMode) chooseQM1(in qm1) (phase2Offer, bool) {
	o, reasons, err := choosePhase2(&qm.sa.t.cfg.Phase2, in.sa, qm.sa.natDetected(), in.ke)
	if err == nil {
		return o, true
	}
	var spi []byte
	proto := isakmp.ProtoESP
	if len(in.sa.Proposals) > 0 {
		spi, proto = in.sa.Proposals[0].SPI, in.sa.Proposals[0].ProtocolID
	}
	if errors.Is(err, errInvalidKE) {
		qm.logger().WithField("why", reasons).Warn("QM1 KE payload does not fit the PFS group")
		qm.refuse(isakmp.NotifyInvalidKeyInformation, proto, spi, "the QM1 KE payload does not fit the PFS group")
		return o, false
	}
	qm.logger().WithField("why", reasons).Warn("No Proposal Match Found. Notifying with \"No proposal chosen\"")
	qm.refuse(isakmp.NotifyNoProposalChosen, proto, spi, "no phase 2 proposal matched")
	return o, false
}

// responderDH makes our PFS key and checks the initiator's public value now,
// so that a bad one is refused before QM2 rather than failing at QM3.
func (qm *quickMode) responderDH(group uint16, gi []byte) bool {
	g, err := dh.ByID(group)
	if err == nil {
		qm.dhKey, err = qm.sa.e.newDHKey(g, rand.Reader)
	}
	if err != nil {
		qm.refuse(isakmp.NotifyNoProposalChosen, qm.chosen.Protocol, spiBytes(qm.spiOut), "PFS group: "+err.Error())
		return false
	}
	if qm.shared, err = qm.dhKey.SharedSecret(gi); err != nil {
		qm.refuse(isakmp.NotifyInvalidKeyInformation, qm.chosen.Protocol, spiBytes(qm.spiOut), "QM1 KE: "+err.Error())
		return false
	}
	qm.gi, qm.gr = gi, qm.dhKey.Public()
	return true
}

// refuse answers a QM1 with an error notify and fails the negotiation.
func (qm *quickMode) refuse(nt isakmp.NotifyType, proto uint8, spi []byte, why string) {
	qm.logger().WithField("reason", why).Warn("refusing QM1: answering " + nt.String())
	qm.sa.sendNotify(nt, proto, spi, nil)
	qm.sa.t.onChildFailed(qm, why)
}

func (qm *quickMode) rejectTS(why string) {
	qm.refuse(isakmp.NotifyInvalidIDInformation, isakmp.ProtoISAKMP, nil, why)
}

// prefixWithin reports whether p lies inside q.
func prefixWithin(p, q netip.Prefix) bool {
	return p.Addr().Is4() == q.Addr().Is4() && p.Bits() >= q.Bits() && q.Contains(p.Addr())
}

// sameIDs (initiator) reports whether QM2's ID payloads, if any, are the
// ones we sent: the same prefixes, protocol any and port 0 (IKEv1 has no
// narrowing, see checkSelectors).
func (qm *quickMode) sameIDs(ps []isakmp.Payload) bool {
	ci, cr, n := idPair(ps)
	if n == 0 {
		return true
	}
	if n != 2 || ci.ProtocolID != 0 || ci.Port != 0 || cr.ProtocolID != 0 || cr.Port != 0 {
		return false
	}
	cp, e1 := ci.Prefix()
	rp, e2 := cr.Prefix()
	return e1 == nil && e2 == nil && cp == qm.localTS && rp == qm.remoteTS
}
