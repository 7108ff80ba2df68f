package decode

import (
	"fmt"
	"strings"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// IKEReport is one ISAKMP SA as the capture tells it.
type IKEReport struct {
	ICookie   string        `json:"icookie"`
	RCookie   string        `json:"rcookie"`
	Initiator string        `json:"initiator"`
	Responder string        `json:"responder"`
	Exchange  string        `json:"exchange"`
	Offered   string        `json:"offered,omitempty"`
	Chosen    string        `json:"chosen,omitempty"`
	IDi       string        `json:"id_i,omitempty"`
	IDr       string        `json:"id_r,omitempty"`
	Status    string        `json:"status"` // established, failed, incomplete
	Reason    string        `json:"reason,omitempty"`
	Hashes    []HashCheck   `json:"hashes,omitempty"`
	Story     []Event       `json:"story"`
	Quick     []QuickReport `json:"quick_modes,omitempty"`
	// Undecrypted counts encrypted messages no key decrypted.
	Undecrypted int `json:"undecrypted"`
}

// QuickReport is one quick mode exchange.
type QuickReport struct {
	MessageID string   `json:"message_id"`
	Offered   string   `json:"offered,omitempty"`
	Chosen    string   `json:"chosen,omitempty"`
	Selectors []string `json:"traffic_selectors,omitempty"`
	SPIs      []string `json:"spis,omitempty"`
	PFS       bool     `json:"pfs"`
	Status    string   `json:"status"`
	Reason    string   `json:"reason,omitempty"`
}

func (sa *ikeSA) report(keys *Keys, pol *Policy) IKEReport {
	psks := keys.PSKs
	r := IKEReport{ICookie: fmt.Sprintf("%x", sa.icookie), RCookie: fmt.Sprintf("%x", sa.rcookie),
		Initiator: sa.init.String(), Responder: sa.resp.String(), Exchange: exchangeName(sa.exchange), Story: sa.story}
	if sa.offered != nil {
		r.Offered = describeP1Offer(sa.offered)
	}
	if sa.chosen != nil {
		r.Chosen = describeP1Offer(sa.chosen)
	}
	if sa.idi != nil {
		r.IDi = sa.idi.String()
	}
	if sa.idr != nil {
		r.IDr = sa.idr.String()
	}
	for _, m := range sa.msgs {
		if !m.dup && !m.plain && m.h.Flags&isakmp.FlagEncryption != 0 {
			r.Undecrypted++
		}
	}
	r.Hashes = sa.verifyAuth(psks)
	for _, k := range keys.IKE[sa.icookie] {
		sa.logged = append(sa.logged, k.Source)
	}
	r.Status, r.Reason = sa.phase1Verdict(r.Hashes, pol)
	for _, mid := range sa.qmOrd {
		q := sa.qms[mid].report()
		if t := pol.forLocal(sa.resp.Addr()); t != nil && q.Status == "failed" && strings.Contains(q.Reason, "NO-PROPOSAL-CHOSEN") {
			q.Reason += "; we allow (" + t.Source + "): " + t.Phase2
		}
		r.Quick = append(r.Quick, q)
	}
	return r
}

func exchangeName(e isakmp.ExchangeType) string {
	switch e {
	case isakmp.ExchangeIdentityProtection:
		return "main mode"
	case isakmp.ExchangeAggressive:
		return "aggressive mode"
	case 0:
		return "(phase 1 not in the capture)"
	}
	return e.String()
}

// lastPhase1 is the highest phase 1 message label seen, and how often the
// initiator's last message was retransmitted.
func (sa *ikeSA) lastPhase1() (last string, n int, retrans int) {
	for _, m := range sa.msgs {
		if m.h.Exchange != isakmp.ExchangeIdentityProtection && m.h.Exchange != isakmp.ExchangeAggressive {
			continue
		}
		if m.dup {
			retrans++
			continue
		}
		last, retrans = m.label, 0
		n++
	}
	return last, n, retrans
}

// errorNotify returns the first error notify of the SA and who sent it.
func (sa *ikeSA) errorNotify() (isakmp.NotifyType, *ikeMsg) {
	for _, m := range sa.msgs {
		for _, p := range m.payloads {
			if n, ok := p.(*isakmp.Notify); ok && n.NotifyType.IsError() {
				return n.NotifyType, m
			}
		}
	}
	return 0, nil
}

// phase1Verdict says in plain words how phase 1 ended.
func (sa *ikeSA) phase1Verdict(hc []HashCheck, pol *Policy) (string, string) {
	for _, c := range hc {
		if c.Result == "mismatch" {
			return "failed", fmt.Sprintf("%s does not verify with the given pre-shared key(s): pre-shared key mismatch", c.Hash)
		}
	}
	nt, nm := sa.errorNotify()
	if len(sa.split) > 0 {
		sp := sa.split[0]
		answer := answerNote(nt, nm)
		return "failed", fmt.Sprintf("pre-shared key mismatch: the two sides derived different encryption keys for this SA. "+
			"The initiator's %s (frame %d) decrypts with the initiator's key (%s) but is garbage with the other key "+
			"logged for this cookie (%s, the responder's). With the same nonces and DH values the keys differ only "+
			"when SKEYID = prf(PSK, Ni|Nr) differs, i.e. the pre-shared keys differ%s",
			sp.msg, sp.frame, sp.good, strings.Join(sp.bad, ", "), answer)
	}
	last, n, retrans := sa.lastPhase1()
	if len(sa.logged) > 1 && !sa.p1Done {
		return "failed", fmt.Sprintf("pre-shared key mismatch: %d different encryption keys are logged for this cookie (%s). "+
			"Both sides saw the same nonces and DH values, so their keys differ only when SKEYID = prf(PSK, Ni|Nr) "+
			"differs, i.e. the pre-shared keys differ%s", len(sa.logged), strings.Join(sa.logged, ", "), answerNote(nt, nm))
	}
	if nm != nil && authNotify(nt) {
		for _, c := range hc {
			if c.Result == "verified" && ((c.Hash == "HASH_R" && nm.fromI) || (c.Hash == "HASH_I" && !nm.fromI)) {
				return "failed", fmt.Sprintf("pre-shared key mismatch: %s verifies with the pre-shared key of %s, yet the %s rejected it with %s (frame %d): the %s uses another pre-shared key",
					c.Hash, c.PSK, sideName(nm.fromI), nt, nm.p.d.Frame, sideName(nm.fromI))
			}
		}
	}
	if sa.p1Done {
		// Main mode: MM6 is only sent after MM5 authenticated. Aggressive
		// mode: the responder may still refuse AM3.
		if sa.exchange == isakmp.ExchangeAggressive && nm != nil && authNotify(nt) {
			return "failed", notifyReason(sa, nt, nm, "AM3", pol)
		}
		return "established", ""
	}
	if n == 0 {
		return "incomplete", "the phase 1 exchange of this SA is not in the capture"
	}
	if nm != nil {
		return "failed", notifyReason(sa, nt, nm, last, pol)
	}
	again := ""
	if retrans > 0 {
		again = fmt.Sprintf(" (sent %d more times)", retrans)
	}
	switch last {
	case "MM1", "AM1":
		return "failed", "no answer to " + last + again + ": the responder is unreachable, not listening on UDP 500, or silently refused the proposal"
	case "MM5":
		return "failed", "no MM6: the responder did not accept MM5" + again + " and sent no notify; it could not decrypt or authenticate it, which is almost always a pre-shared key mismatch (decode with the key logs of both sides or --psk to prove it)"
	}
	return "incomplete", "the exchange stops after " + last + again
}

func answerNote(nt isakmp.NotifyType, nm *ikeMsg) string {
	if nm == nil {
		return ""
	}
	return fmt.Sprintf(" (the %s answered %s, frame %d)", sideName(nm.fromI), nt, nm.p.d.Frame)
}

// authNotify is a notify that refuses authentication (or the decryption
// that precedes it).
func authNotify(nt isakmp.NotifyType) bool {
	switch nt {
	case isakmp.NotifyAuthenticationFailed, isakmp.NotifyInvalidHashInformation, isakmp.NotifyPayloadMalformed,
		isakmp.NotifyInvalidPayloadType, isakmp.NotifyInvalidIDInformation:
		return true
	}
	return false
}

func notifyReason(sa *ikeSA, nt isakmp.NotifyType, m *ikeMsg, last string, pol *Policy) string {
	who := sideName(m.fromI)
	switch nt {
	case isakmp.NotifyNoProposalChosen:
		offered := "(offer not in the capture)"
		if sa.offered != nil {
			offered = describeP1Offer(sa.offered)
		}
		allowed := "its allowed set is not in the capture; --config with its configuration shows it"
		if t := pol.forLocal(m.p.src.Addr()); t != nil {
			allowed = "we allow (" + t.Source + "): " + t.Phase1
		}
		return fmt.Sprintf("no proposal in common: the initiator offered %s; the %s (frame %d) accepted none of them (NO-PROPOSAL-CHOSEN); %s", offered, who, m.p.d.Frame, allowed)
	case isakmp.NotifyAuthenticationFailed, isakmp.NotifyInvalidHashInformation, isakmp.NotifyPayloadMalformed, isakmp.NotifyInvalidPayloadType:
		if last == "MM5" || last == "MM6" || last == "AM3" || last == "AM2" {
			what := "decrypt or authenticate"
			if last == "AM2" {
				what = "authenticate"
			}
			return fmt.Sprintf("the %s rejected %s with %s (frame %d): it could not %s it, which is almost always a pre-shared key mismatch; the key logs of both sides or --psk prove it", who, last, nt, m.p.d.Frame, what)
		}
	case isakmp.NotifyInvalidIDInformation:
		return fmt.Sprintf("the %s refused the peer's identity (INVALID-ID-INFORMATION, frame %d)", who, m.p.d.Frame)
	case isakmp.NotifyInvalidKeyInformation:
		return fmt.Sprintf("the %s refused the Diffie-Hellman value (INVALID-KEY-INFORMATION, frame %d): group mismatch or a damaged KE", who, m.p.d.Frame)
	}
	return fmt.Sprintf("the %s sent %s after %s (frame %d)", who, nt, last, m.p.d.Frame)
}

func (qm *quickMode) report() QuickReport {
	r := QuickReport{MessageID: fmt.Sprintf("%08x", qm.mid), SPIs: qm.spis, PFS: qm.pfs}
	if qm.offered != nil {
		r.Offered = describeP2Offer(qm.offered)
	}
	if qm.chosen != nil {
		r.Chosen = describeP2Offer(qm.chosen)
	}
	for _, id := range qm.ids {
		r.Selectors = append(r.Selectors, id.String())
	}
	switch {
	case qm.readable == 0:
		r.Status, r.Reason = "unknown", "encrypted and not decrypted (no key)"
	case qm.notify == isakmp.NotifyNoProposalChosen.String():
		r.Status, r.Reason = "failed", "no phase 2 proposal in common: the initiator offered "+r.Offered+"; the responder answered NO-PROPOSAL-CHOSEN"
	case qm.notify == isakmp.NotifyInvalidIDInformation.String():
		ts := "(not readable)"
		if len(r.Selectors) >= 2 {
			ts = r.Selectors[0] + " <-> " + r.Selectors[1]
		}
		r.Status, r.Reason = "failed", "traffic selectors differ: the initiator proposed "+ts+"; the responder answered INVALID-ID-INFORMATION"
	case qm.notify != "":
		r.Status, r.Reason = "failed", "the peer answered "+qm.notify
	case qm.done:
		r.Status = "established"
	case qm.n == 1:
		r.Status, r.Reason = "failed", "no QM2: the responder did not answer the proposal"
	default:
		r.Status, r.Reason = "incomplete", fmt.Sprintf("%d of 3 messages", qm.n)
	}
	return r
}
