package ike

import (
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Aggressive mode (RFC 2409 section 5, pre-shared keys; NAT-D per RFC 3947
// section 3.2 in messages 2 and 3):
//
//	Initiator                                  Responder
//	AM1  HDR, SA, KE, Ni, IDii, VID...     -->
//	                                       <--  AM2  HDR, SA, KE, Nr, IDir, HASH_R, VID..., NAT-D, NAT-D
//	AM3  HDR*, HASH_I, NAT-D, NAT-D        -->  (UDP 4500 if NAT)
//
// All transforms in AM1 share the DH group of its KE payload.
//
// AM3 is encrypted. RFC 2409 section 5.4 draws it as "HDR, HASH_I", but
// RFC 2408 section 4.7 (the aggressive exchange) encrypts the third message
// ("HDR*"), and established implementations follow that: strongSwan marks
// HASH as an encrypted payload of aggressive mode and so encrypts the whole
// message; Libreswan encrypts it ("RFC2408 says we must encrypt at this
// point") and accepts only an encrypted one. We send it encrypted and
// accept both forms.
//
// IVs (RFC 2409 appendix B): the phase 1 IV is hash(g^xi | g^xr) truncated
// to the cipher block, as strongSwan (iv_manager init_iv_chain) and
// Libreswan (calc_v1_skeyid_and_iv) truncate it; AM3 is encrypted with it
// and its last ciphertext block is the "last phase 1 CBC block" that seeds
// hash(block | M-ID) for every quick mode and informational exchange. A
// plaintext AM3 leaves no such block: the seed is then the phase 1 IV
// itself, as strongSwan does when it accepts one (its phase 1 IV is updated
// only by encrypted messages).

func (t *tunnel) startAggressiveMode() *ikeSA {
	sa := t.newInitiatorSA(AggressiveMode)
	group := v1Proposals(t.cfg.Phase1.Proposals)[0].DHGroup // validateTunnel: at least one
	saP := phase1SA(t.cfg.Phase1.Proposals, t.cfg.Phase1.Lifetime, group)
	sa.chosen.DHGroup = group
	if !sa.makeKE(group, &sa.gxi) {
		return nil
	}
	sa.ni = randomBytes(nonceLen)
	id := isakmp.IDFromAddr(t.cfg.LocalID)
	ps := sa.addVendorIDs([]isakmp.Payload{saP, &isakmp.KE{Data: sa.gxi}, &isakmp.Nonce{Data: sa.ni}, id})
	ps = sa.impairPayloads(sa.msgRef("AM1"), ps)
	b, err := (&isakmp.Message{Header: sa.header(isakmp.ExchangeAggressive, 0), Payloads: ps}).Encode()
	if err != nil {
		sa.fail("encoding AM1: "+err.Error(), false)
		return nil
	}
	sa.saiB = saP.Body()
	sa.idiB = id.Body()
	sa.state = stateAM1Sent
	sa.logger().WithField("id", id.String()).Info("aggressive mode: sending AM1 (SA, KE, nonce, ID)")
	sa.sendPhase1(b, "AM1", true)
	return sa
}

func (sa *ikeSA) handleAggressive(s *socket, from netip.AddrPort, m *isakmp.Message, raw []byte) {
	dg := digest(raw)
	if dg == sa.lastInHash {
		// AM3 ends the exchange: a duplicate of it gets no answer (AM2 again
		// would make the initiator send AM3 again, and so on forever).
		if !sa.initiator && sa.state == stateEstablished {
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
		sa.dropQuick(dropPhase1MessageID, m.Header.MessageID, "aggressive mode message with non-zero message ID: dropped")
		return
	}
	var ok bool
	switch {
	case sa.initiator && sa.state == stateAM1Sent:
		ok = sa.processAM2(m)
	case !sa.initiator && sa.state == stateAM2Sent:
		sa.local, sa.remote = s.local, from
		sa.floated = sa.floated || s.natt
		ok = sa.processAM3(m)
	default:
		sa.logger().WithField("state", sa.state.String()).Debug("unexpected aggressive mode message: ignored")
		return
	}
	if ok {
		sa.lastInHash = dg
	}
}

// processAM1 (responder).
func (sa *ikeSA) processAM1(m *isakmp.Message) {
	if !sa.t.cfg.Phase1.AllowAggressive {
		sa.logger().Warn("aggressive mode is not allowed on this tunnel (allow_aggressive: false; AWS accepts main mode only): answering NO-PROPOSAL-CHOSEN")
		sa.rejectPhase1(isakmp.NotifyNoProposalChosen, "aggressive mode refused by policy")
		return
	}
	saP, _ := m.Find(isakmp.PayloadSA).(*isakmp.SA)
	id, _ := m.Find(isakmp.PayloadID).(*isakmp.ID)
	if saP == nil || id == nil {
		sa.rejectPhase1(isakmp.NotifyPayloadMalformed, "AM1 lacks SA or ID")
		return
	}
	if !sa.chooseProposal(saP) {
		return
	}
	gxi, ni, ok := sa.readKENonce(m, "AM1")
	if !ok {
		return
	}
	if err := sa.checkPeerID(id); err != nil {
		sa.rejectPhase1(isakmp.NotifyInvalidIDInformation, err.Error())
		return
	}
	sa.gxi, sa.ni, sa.idiB = gxi, ni, id.Body()
	sa.processVendorIDs(m.Payloads)
	if !sa.makeKE(sa.chosen.DHGroup, &sa.gxr) {
		return
	}
	sa.nr = randomBytes(nonceLen)
	if !sa.computeKeys(gxi) {
		return
	}
	myID := isakmp.IDFromAddr(sa.t.cfg.LocalID)
	hashR, ok := sa.proveAuth(false, myID.Body())
	if !ok {
		return
	}
	ps := []isakmp.Payload{sa.replySA, &isakmp.KE{Data: sa.gxr}, &isakmp.Nonce{Data: sa.nr}, myID, &isakmp.Hash{Data: hashR}}
	ps = sa.addVendorIDs(ps)
	ps = sa.impairPayloads(sa.msgRef("AM2"), sa.addNATD(ps))
	b, err := (&isakmp.Message{Header: sa.header(isakmp.ExchangeAggressive, 0), Payloads: ps}).Encode()
	if err != nil {
		sa.fail("encoding AM2: "+err.Error(), false)
		return
	}
	sa.state = stateAM2Sent
	sa.logger().WithFields(logrus.Fields{"proposal": sa.chosen.String(), "peer_id": id.String()}).Info("aggressive mode: AM1 received, sending AM2")
	sa.sendPhase1(b, "AM2", true)
}

// processAM2 (initiator).
func (sa *ikeSA) processAM2(m *isakmp.Message) bool {
	if sa.checkErrorNotify(m) {
		return false
	}
	saP, _ := m.Find(isakmp.PayloadSA).(*isakmp.SA)
	id, _ := m.Find(isakmp.PayloadID).(*isakmp.ID)
	hp, _ := m.Find(isakmp.PayloadHash).(*isakmp.Hash)
	if saP == nil || id == nil || hp == nil || len(saP.Proposals) != 1 || len(saP.Proposals[0].Transforms) != 1 {
		sa.fail("AM2 must carry SA (one transform), ID and HASH", false)
		return false
	}
	if !sa.acceptChosen(saP, sa.chosen.DHGroup) {
		return false
	}
	p := sa.chosen
	gxr, nr, ok := sa.readKENonce(m, "AM2")
	if !ok {
		return false
	}
	sa.gxr, sa.nr = gxr, nr
	sa.processVendorIDs(m.Payloads)
	if !sa.computeKeys(gxr) {
		return false
	}
	if !sa.verifyAuth(false, id.Body(), hp.Data) {
		sa.rejectPhase1(isakmp.NotifyAuthenticationFailed, "HASH_R mismatch: pre-shared key mismatch")
		return false
	}
	if err := sa.checkPeerID(id); err != nil {
		sa.rejectPhase1(isakmp.NotifyInvalidIDInformation, err.Error())
		return false
	}
	sa.processNATD(m.Payloads)
	hashI, ok := sa.proveAuth(true, sa.idiB)
	if !ok {
		return false
	}
	ps := sa.impairPayloads(sa.msgRef("AM3"), sa.addNATD([]isakmp.Payload{&isakmp.Hash{Data: hashI}}))
	if sa.natDetected() {
		sa.float()
	}
	// AM3 goes out encrypted (see the comment at the top): its last CBC
	// block seeds the IVs of quick mode and informational exchanges.
	seal := sa.sealPhase1
	if sa.e.am3InClear { // tests only: a peer that sends AM3 in the clear
		seal = func(h isakmp.Header, ps []isakmp.Payload) ([]byte, error) {
			return (&isakmp.Message{Header: h, Payloads: ps}).Encode()
		}
	}
	b, err := seal(sa.header(isakmp.ExchangeAggressive, 0), ps)
	if err != nil {
		sa.fail("encoding AM3: "+err.Error(), false)
		return false
	}
	sa.out.answered()
	sa.logger().WithFields(logrus.Fields{"proposal": p.String(), "peer_id": id.String(), "floated": sa.floated}).Info("aggressive mode: AM2 authenticated, sending AM3 (HASH_I, encrypted)")
	sa.sendPhase1(b, "AM3", false)
	sa.establish(false)
	return true
}

// processAM3 (responder).
func (sa *ikeSA) processAM3(m *isakmp.Message) bool {
	ps := m.Payloads
	if m.Header.Flags&isakmp.FlagEncryption != 0 {
		var err error
		if ps, _, err = sa.openPhase1(m); sa.undecryptablePhase1(err, "AM3") {
			return false
		} else if err != nil {
			sa.rejectPhase1(isakmp.NotifyAuthenticationFailed, "AM3 decryption failed: pre-shared key mismatch")
			return false
		}
	}
	hp, _ := findPayload(ps, isakmp.PayloadHash).(*isakmp.Hash)
	if hp == nil {
		sa.rejectPhase1(isakmp.NotifyPayloadMalformed, "AM3 lacks HASH")
		return false
	}
	if !sa.verifyAuth(true, sa.idiB, hp.Data) {
		sa.logger().Warn("HASH_I does not verify: the pre-shared keys differ")
		sa.rejectPhase1(isakmp.NotifyAuthenticationFailed, "HASH_I mismatch: pre-shared key mismatch")
		return false
	}
	sa.processNATD(ps)
	sa.out.answered()
	sa.logger().Info("aggressive mode: AM3 authenticated")
	sa.peerConfirmed = true // the initiator verified HASH_R before it sent AM3
	sa.establish(hasNotify(ps, isakmp.NotifyInitialContact))
	return true
}

// am3Settle is how long an aggressive mode initiator waits after AM3 before
// it sends QM1. AM3 and QM1 would otherwise leave back to back, and a
// multi-threaded responder may take QM1 up first: strongSwan then logs
// "ignoring QUICK_MODE request while phase 1 is incomplete" and the tunnel
// waits a whole retransmission timeout (seen in
// interop/TestCGWAggressiveToStrongSwan in about half the runs). Main mode
// has no such race: its initiator completes on receiving MM6.
const am3Settle = 50 * time.Millisecond

// firstQuickModeAfterAM3 starts the tunnel's first quick mode am3Settle
// after AM3, if the SA is still the tunnel's and nothing started one since.
func (sa *ikeSA) firstQuickModeAfterAM3() {
	t := sa.t
	sa.e.afterFunc(am3Settle, func() {
		if t.sa == sa && sa.state == stateEstablished && t.wantUp && len(t.children) == 0 && !t.quickPending() {
			t.startQuickMode(nil)
		}
	})
}
