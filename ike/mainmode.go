package ike

import (
	"crypto/rand"
	"fmt"
	"net/netip"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Main mode (identity protection, RFC 2409 section 5 with pre-shared keys):
//
//	Initiator                          Responder
//	MM1  HDR, SA, VID...           -->
//	                               <--  MM2  HDR, SA, VID...
//	MM3  HDR, KE, Ni, NAT-D, NAT-D -->
//	                               <--  MM4  HDR, KE, Nr, NAT-D, NAT-D
//	MM5  HDR*, IDii, HASH_I [, N]  -->          (UDP 4500 if NAT)
//	                               <--  MM6  HDR*, IDir, HASH_R

const nonceLen = 32

// startMainMode creates an initiator ISAKMP SA and sends MM1.
func (t *tunnel) startMainMode() *ikeSA {
	sa := t.newInitiatorSA(MainMode)
	sa.saiB = nil
	saP := phase1SA(t.cfg.Phase1.Proposals, t.cfg.Phase1.Lifetime, 0)
	ps := sa.addVendorIDs([]isakmp.Payload{saP})
	m := &isakmp.Message{Header: sa.header(isakmp.ExchangeIdentityProtection, 0), Payloads: ps}
	b, err := m.Encode()
	if err != nil {
		sa.fail("encoding MM1: "+err.Error(), false)
		return nil
	}
	sa.saiB = saP.Body()
	sa.state = stateMM1Sent
	sa.logger().WithField("proposals", len(saP.Proposals[0].Transforms)).Info("main mode: sending MM1 (SA proposal)")
	sa.sendPhase1(b, "MM1", true)
	return sa
}

// sendPhase1 transmits a phase 1 message through the SA's outbox.
func (sa *ikeSA) sendPhase1(b []byte, what string, expectReply bool) {
	var counters *Counters
	if sa.t != nil {
		sa.t.counters.MessagesOut++
		counters = &sa.t.counters
	}
	sa.e.transmit(&sa.out, counters, sa.msgRef(what), sa.local, sa.remote, b, what, expectReply, func() {
		sa.logger().WithField("message", what).Warn("no answer after all retransmissions: phase 1 failed")
		sa.failPhase1(fmt.Sprintf("phase 1 timed out waiting for the answer to %s (peer not responding)", what))
	})
}

func (sa *ikeSA) handleMainMode(s *socket, from netip.AddrPort, m *isakmp.Message, raw []byte) {
	dg := digest(raw)
	if dg == sa.lastInHash {
		// MM6 ends the exchange: a duplicate of it gets no answer (MM5 again
		// would make the responder send MM6 again, and so on forever).
		if sa.initiator && sa.state == stateEstablished {
			return
		}
		if sa.e.resend(&sa.out) && sa.t != nil {
			sa.t.counters.DuplicatesAnswered++
		}
		return
	}
	if sa.staleFirstMessage(dg) {
		return
	}
	if m.Header.MessageID != 0 {
		sa.dropQuick(dropPhase1MessageID, m.Header.MessageID, "main mode message with non-zero message ID: dropped")
		return
	}
	var ok bool
	switch {
	case sa.initiator && sa.state == stateMM1Sent:
		ok = sa.processMM2(m)
	case sa.initiator && sa.state == stateMM3Sent:
		ok = sa.processMM4(m)
	case sa.initiator && sa.state == stateMM5Sent:
		ok = sa.processMM6(m)
	case !sa.initiator && sa.state == stateMM2Sent:
		ok = sa.processMM3(m)
	case !sa.initiator && sa.state == stateMM4Sent:
		sa.local, sa.remote = s.local, from // the peer may have floated to 4500
		sa.floated = sa.floated || s.natt
		ok = sa.processMM5(m)
	default:
		sa.logger().WithField("state", sa.state.String()).Debug("unexpected main mode message: ignored")
		return
	}
	if ok {
		sa.lastInHash = dg
	}
}

// processMM1 (responder) chooses a proposal and answers MM2.
func (sa *ikeSA) processMM1(m *isakmp.Message) {
	saP, _ := m.Find(isakmp.PayloadSA).(*isakmp.SA)
	if saP == nil {
		sa.logger().Warn("MM1 without SA payload")
		sa.rejectPhase1(isakmp.NotifyPayloadMalformed, "MM1 has no SA payload")
		return
	}
	if !sa.chooseProposal(saP) {
		return
	}
	sa.processVendorIDs(m.Payloads)
	ps := sa.addVendorIDs([]isakmp.Payload{sa.replySA})
	out := &isakmp.Message{Header: sa.header(isakmp.ExchangeIdentityProtection, 0), Payloads: ps}
	b, err := out.Encode()
	if err != nil {
		sa.fail("encoding MM2: "+err.Error(), false)
		return
	}
	sa.state = stateMM2Sent
	sa.logger().WithFields(logrus.Fields{"proposal": sa.chosen.String(), "natt": sa.nattVersion.String(), "dpd": sa.peerDPD}).
		Info("main mode: MM1 received, sending MM2 with the chosen proposal")
	sa.sendPhase1(b, "MM2", false)
}

// chooseProposal runs the responder's phase 1 selection and logs why.
func (sa *ikeSA) chooseProposal(saP *isakmp.SA) bool {
	pol := &sa.t.cfg.Phase1
	p, life, reply, reasons, err := choosePhase1(pol, saP)
	if err != nil {
		sa.logger().WithField("offered", describeOffered(saP)).WithField("why", reasons).
			Warn("No Proposal Match Found: nothing the peer offered is allowed by this tunnel's phase 1 options; answering NO-PROPOSAL-CHOSEN")
		sa.rejectPhase1(isakmp.NotifyNoProposalChosen, "no phase 1 proposal matched ("+describeOffered(saP)+")")
		return false
	}
	sa.chosen = p
	sa.hash = p.Hash
	sa.lifetime = pol.Lifetime
	if life > 0 && life < sa.lifetime {
		sa.lifetime = life
	}
	sa.replySA = reply
	sa.saiB = saP.Body()
	return true
}

// rejectPhase1 sends a plaintext notify and drops the SA.
func (sa *ikeSA) rejectPhase1(nt isakmp.NotifyType, reason string) {
	sa.sendPlainNotify(nt)
	if sa.t != nil {
		sa.t.counters.NotifiesSent++
	}
	sa.fail(reason, false)
}

// processMM2 (initiator) reads the chosen proposal and sends MM3.
func (sa *ikeSA) processMM2(m *isakmp.Message) bool {
	if sa.checkErrorNotify(m) {
		return false
	}
	saP, _ := m.Find(isakmp.PayloadSA).(*isakmp.SA)
	if saP == nil || len(saP.Proposals) != 1 || len(saP.Proposals[0].Transforms) != 1 {
		sa.fail("MM2 must carry an SA payload with exactly one transform", false)
		return false
	}
	if !sa.acceptChosen(saP, 0) {
		return false
	}
	p := sa.chosen
	sa.processVendorIDs(m.Payloads)
	if !sa.makeKE(p.DHGroup, &sa.gxi) {
		return false
	}
	sa.ni = randomBytes(nonceLen)
	ps := []isakmp.Payload{&isakmp.KE{Data: sa.gxi}, &isakmp.Nonce{Data: sa.ni}}
	ps = sa.impairPayloads(sa.msgRef("MM3"), sa.addNATD(ps))
	b, err := (&isakmp.Message{Header: sa.header(isakmp.ExchangeIdentityProtection, 0), Payloads: ps}).Encode()
	if err != nil {
		sa.fail("encoding MM3: "+err.Error(), false)
		return false
	}
	sa.state = stateMM3Sent
	sa.logger().WithFields(logrus.Fields{"proposal": p.String(), "natt": sa.nattVersion.String()}).Info("main mode: MM2 received, sending MM3 (KE, nonce)")
	sa.sendPhase1(b, "MM3", true)
	return true
}

// makeKE generates our DH key for group and stores the public value.
func (sa *ikeSA) makeKE(group uint16, pub *[]byte) bool {
	g, err := dh.ByID(group)
	if err != nil {
		sa.fail(err.Error(), false)
		return false
	}
	k, err := sa.e.newDHKey(g, rand.Reader)
	if err != nil {
		sa.fail("DH key generation: "+err.Error(), false)
		return false
	}
	sa.dhKey = k
	*pub = k.Public()
	return true
}

// readKENonce extracts and checks the peer's KE and nonce.
func (sa *ikeSA) readKENonce(m *isakmp.Message, what string) (ke, nonce []byte, ok bool) {
	k, _ := m.Find(isakmp.PayloadKE).(*isakmp.KE)
	n, _ := m.Find(isakmp.PayloadNonce).(*isakmp.Nonce)
	if k == nil || n == nil {
		sa.rejectPhase1(isakmp.NotifyPayloadMalformed, what+" lacks KE or nonce")
		return nil, nil, false
	}
	if len(n.Data) < 8 || len(n.Data) > 256 {
		sa.rejectPhase1(isakmp.NotifyPayloadMalformed, fmt.Sprintf("%s nonce length %d outside 8..256 (RFC 2409 section 5)", what, len(n.Data)))
		return nil, nil, false
	}
	g, _ := dh.ByID(sa.chosen.DHGroup)
	if g != nil && len(k.Data) != g.PublicLen() {
		sa.rejectPhase1(isakmp.NotifyInvalidKeyInformation, fmt.Sprintf("%s KE length %d, group %s needs %d", what, len(k.Data), g.Name(), g.PublicLen()))
		return nil, nil, false
	}
	return k.Data, n.Data, true
}

// processMM4 (initiator) derives the keys and sends MM5.
func (sa *ikeSA) processMM4(m *isakmp.Message) bool {
	if sa.checkErrorNotify(m) {
		return false
	}
	gxr, nr, ok := sa.readKENonce(m, "MM4")
	if !ok {
		return false
	}
	sa.gxr, sa.nr = gxr, nr
	sa.processNATD(m.Payloads)
	if !sa.computeKeys(gxr) {
		return false
	}
	id := isakmp.IDFromAddr(sa.t.cfg.LocalID)
	hashI, ok := sa.proveAuth(true, id.Body())
	if !ok {
		return false
	}
	ps := []isakmp.Payload{id, &isakmp.Hash{Data: hashI}}
	// INITIAL-CONTACT (RFC 2407 section 4.6.3.3) tells the peer to drop
	// everything it has with us: only true when we have nothing with it,
	// not when this negotiation collides with another (both sides
	// initiating) or rekeys.
	if !sa.t.hasOtherState(sa) {
		ps = append(ps, &isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoISAKMP, SPI: sa.cookiesSPI(), NotifyType: isakmp.NotifyInitialContact})
	}
	if sa.natDetected() {
		sa.float()
	}
	b, err := sa.sealPhase1(sa.header(isakmp.ExchangeIdentityProtection, 0), sa.impairPayloads(sa.msgRef("MM5"), ps))
	if err != nil {
		sa.fail("encoding MM5: "+err.Error(), false)
		return false
	}
	sa.state = stateMM5Sent
	sa.logger().WithFields(logrus.Fields{"id": id.String(), "floated": sa.floated}).Info("main mode: MM4 received, keys derived, sending MM5 (ID, HASH_I)")
	sa.sendPhase1(b, "MM5", true)
	return true
}

// processMM3 (responder) answers MM4 and derives the keys.
func (sa *ikeSA) processMM3(m *isakmp.Message) bool {
	gxi, ni, ok := sa.readKENonce(m, "MM3")
	if !ok {
		return false
	}
	sa.gxi, sa.ni = gxi, ni
	if !sa.makeKE(sa.chosen.DHGroup, &sa.gxr) {
		return false
	}
	sa.nr = randomBytes(nonceLen)
	sa.processNATD(m.Payloads)
	if !sa.computeKeys(gxi) {
		return false
	}
	ps := sa.addNATD([]isakmp.Payload{&isakmp.KE{Data: sa.gxr}, &isakmp.Nonce{Data: sa.nr}})
	ps = sa.impairPayloads(sa.msgRef("MM4"), ps)
	b, err := (&isakmp.Message{Header: sa.header(isakmp.ExchangeIdentityProtection, 0), Payloads: ps}).Encode()
	if err != nil {
		sa.fail("encoding MM4: "+err.Error(), false)
		return false
	}
	sa.state = stateMM4Sent
	sa.logger().Info("main mode: MM3 received, sending MM4 (KE, nonce)")
	sa.sendPhase1(b, "MM4", false)
	return true
}

// processMM5 (responder) authenticates the initiator and answers MM6.
func (sa *ikeSA) processMM5(m *isakmp.Message) bool {
	if m.Header.Flags&isakmp.FlagEncryption == 0 {
		if sa.checkErrorNotify(m) {
			return false
		}
		sa.rejectPhase1(isakmp.NotifyInvalidFlags, "MM5 is not encrypted")
		return false
	}
	ps, _, err := sa.openPhase1(m)
	if sa.undecryptablePhase1(err, "MM5") {
		return false
	}
	if err != nil {
		sa.logger().WithError(err).Warn("payload decryption was unsuccessful due to invalid pre-shared key: MM5 does not decrypt to valid payloads (the pre-shared keys differ)")
		sa.rejectPhase1(isakmp.NotifyAuthenticationFailed, "MM5 decryption failed: pre-shared key mismatch")
		return false
	}
	id, _ := findPayload(ps, isakmp.PayloadID).(*isakmp.ID)
	hp, _ := findPayload(ps, isakmp.PayloadHash).(*isakmp.Hash)
	if id == nil || hp == nil {
		sa.rejectPhase1(isakmp.NotifyPayloadMalformed, "MM5 lacks ID or HASH")
		return false
	}
	if !sa.verifyAuth(true, id.Body(), hp.Data) {
		sa.logger().Warn("HASH_I does not verify: the pre-shared keys differ")
		sa.rejectPhase1(isakmp.NotifyAuthenticationFailed, "HASH_I mismatch: pre-shared key mismatch")
		return false
	}
	if err := sa.checkPeerID(id); err != nil {
		sa.rejectPhase1(isakmp.NotifyInvalidIDInformation, err.Error())
		return false
	}
	initialContact := hasNotify(ps, isakmp.NotifyInitialContact)
	myID := isakmp.IDFromAddr(sa.t.cfg.LocalID)
	hashR, ok := sa.proveAuth(false, myID.Body())
	if !ok {
		return false
	}
	b, err := sa.sealPhase1(sa.header(isakmp.ExchangeIdentityProtection, 0), sa.impairPayloads(sa.msgRef("MM6"), []isakmp.Payload{myID, &isakmp.Hash{Data: hashR}}))
	if err != nil {
		sa.fail("encoding MM6: "+err.Error(), false)
		return false
	}
	sa.logger().WithFields(logrus.Fields{"peer_id": id.String(), "initial_contact": initialContact}).Info("main mode: MM5 authenticated, sending MM6")
	sa.sendPhase1(b, "MM6", false)
	sa.establish(initialContact)
	return true
}

// processMM6 (initiator) authenticates the responder.
func (sa *ikeSA) processMM6(m *isakmp.Message) bool {
	if m.Header.Flags&isakmp.FlagEncryption == 0 {
		sa.checkErrorNotify(m)
		return false
	}
	ps, _, err := sa.openPhase1(m)
	if sa.undecryptablePhase1(err, "MM6") {
		return false
	}
	if err != nil {
		sa.logger().WithError(err).Warn("MM6 does not decrypt: the pre-shared keys differ")
		sa.fail("MM6 decryption failed: pre-shared key mismatch", false)
		return false
	}
	id, _ := findPayload(ps, isakmp.PayloadID).(*isakmp.ID)
	hp, _ := findPayload(ps, isakmp.PayloadHash).(*isakmp.Hash)
	if id == nil || hp == nil {
		sa.fail("MM6 lacks ID or HASH", false)
		return false
	}
	if !sa.verifyAuth(false, id.Body(), hp.Data) {
		sa.sendNotify(isakmp.NotifyAuthenticationFailed, isakmp.ProtoISAKMP, sa.cookiesSPI(), nil)
		sa.fail("HASH_R mismatch: pre-shared key mismatch", false)
		return false
	}
	if err := sa.checkPeerID(id); err != nil {
		sa.sendNotify(isakmp.NotifyInvalidIDInformation, isakmp.ProtoISAKMP, sa.cookiesSPI(), nil)
		sa.fail(err.Error(), false)
		return false
	}
	sa.out.answered()
	sa.logger().WithField("peer_id", id.String()).Info("main mode: MM6 authenticated")
	sa.peerConfirmed = true // the responder verified HASH_I before it sent MM6
	sa.establish(false)
	return true
}

// checkPeerID compares the peer's identity with the configured one.
func (sa *ikeSA) checkPeerID(id *isakmp.ID) error {
	want := sa.t.cfg.RemoteID
	if !want.IsValid() {
		want = sa.t.cfg.RemoteAddr
	}
	p, err := id.Prefix()
	if err != nil || !p.IsSingleIP() || p.Addr() != want {
		return fmt.Errorf("peer identity %s is not the configured %s", id.String(), want)
	}
	return nil
}

// checkErrorNotify looks for an error notify in a plaintext phase 1 message
// (some peers answer with one in place of the expected message). It is
// unauthenticated: phase1notify.go decides what it may end.
func (sa *ikeSA) checkErrorNotify(m *isakmp.Message) bool {
	for _, n := range m.Notifies() {
		if n.NotifyType < 16384 {
			sa.unauthenticatedNotify(n.NotifyType)
			return true
		}
	}
	return false
}

func findPayload(ps []isakmp.Payload, t isakmp.PayloadType) isakmp.Payload {
	for _, p := range ps {
		if p.Type() == t {
			return p
		}
	}
	return nil
}

func hasNotify(ps []isakmp.Payload, nt isakmp.NotifyType) bool {
	for _, p := range ps {
		if n, ok := p.(*isakmp.Notify); ok && n.NotifyType == nt {
			return true
		}
	}
	return false
}

// describeOffered summarises a peer's phase 1 SA payload for logs.
func describeOffered(sa *isakmp.SA) string {
	var out string
	for _, prop := range sa.Proposals {
		for _, tr := range prop.Transforms {
			p, _, err := parsePhase1Transform(tr)
			s := p.String()
			if err != nil {
				s = "unsupported(" + err.Error() + ")"
			}
			if out != "" {
				out += ", "
			}
			out += s
		}
	}
	return out
}

// computeKeys derives g^xy from the peer's KE and then all phase 1 keys.
func (sa *ikeSA) computeKeys(peerKE []byte) bool {
	gxy, err := sa.dhKey.SharedSecret(peerKE)
	if err != nil {
		sa.rejectPhase1(isakmp.NotifyInvalidKeyInformation, "peer's DH value is invalid: "+err.Error())
		return false
	}
	if err := sa.deriveKeys(gxy); err != nil {
		sa.fail("key derivation: "+err.Error(), false)
		return false
	}
	// The key is logged as soon as it exists, not when phase 1 is
	// established: a negotiation that fails in MM5/MM6 (a wrong pre-shared
	// key) is exactly the one worth decrypting (vpnlab decode, Wireshark).
	if sa.e.klog != nil {
		sa.e.klog.IKEv1Keys(sa.iCookie, sa.encKey)
	}
	return true
}

// acceptChosen (initiator) checks that the responder's one transform is one
// we offered (with the given DH group, if non-zero) and adopts it.
func (sa *ikeSA) acceptChosen(saP *isakmp.SA, group uint16) bool {
	p, life, err := parsePhase1Transform(saP.Proposals[0].Transforms[0])
	if err != nil || !containsP1(sa.t.cfg.Phase1.Proposals, p) || (group != 0 && p.DHGroup != group) {
		sa.rejectPhase1(isakmp.NotifyNoProposalChosen, fmt.Sprintf("the responder chose a transform we did not offer (%v)", err))
		return false
	}
	sa.chosen, sa.hash = p, p.Hash
	sa.lifetime = sa.t.cfg.Phase1.Lifetime
	if life > 0 && life < sa.lifetime {
		sa.lifetime = life
	}
	return true
}
