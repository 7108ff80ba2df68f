package ike

import (
	"crypto/aes"
	"math/big"
	"testing"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// Quick mode rows of the hostile-peer battery whose defect is inside the
// encrypted body: a bad KE or nonce in QM1 or QM2 from a peer that passed
// phase 1 (it knows the keys, so its HASH verifies). The relay holds both
// engines' keys (they are in process): it decrypts the message, changes the
// payload, computes the HASH again as the sender would and encrypts it with
// the IV the receiver expects. The receiver's answer (a notify) is what the
// rows check; the sender's IV chain no longer matches, which does not
// matter once the message is refused.

// quickEdits are the payload defects, applied after the HASH.
var quickEdits = []struct {
	name string
	edit func(ps []isakmp.Payload) []isakmp.Payload
}{
	{"ke-empty", editKE(func([]byte) []byte { return nil })},
	{"ke-short", editKE(func(b []byte) []byte { return b[:len(b)-1] })},
	{"ke-long", editKE(func(b []byte) []byte { return append(b, 0) })},
	{"ke-zero", editKE(func(b []byte) []byte { return make([]byte, len(b)) })},
	{"ke-out-of-range", editKE(func(b []byte) []byte { return allOnes(len(b)) })},
	{"nonce-0", editNonce(0)},
	{"nonce-7", editNonce(7)},
	{"nonce-257", editNonce(257)},
}

func allOnes(n int) []byte {
	one := big.NewInt(1)
	return new(big.Int).Sub(new(big.Int).Lsh(one, uint(8*n)), one).Bytes()
}

func editKE(data func([]byte) []byte) func(ps []isakmp.Payload) []isakmp.Payload {
	return func(ps []isakmp.Payload) []isakmp.Payload {
		for _, p := range ps {
			if ke, ok := p.(*isakmp.KE); ok {
				ke.Data = data(ke.Data)
			}
		}
		return ps
	}
}

func editNonce(n int) func(ps []isakmp.Payload) []isakmp.Payload {
	return func(ps []isakmp.Payload) []isakmp.Payload {
		for _, p := range ps {
			if no, ok := p.(*isakmp.Nonce); ok {
				no.Data = bytesOf(0x3c, n)
			}
		}
		return ps
	}
}

// addEmptyKE puts an empty KE payload after the nonce (a KE without PFS:
// issue 12's crash of a responder without PFS).
func addEmptyKE(ps []isakmp.Payload) []isakmp.Payload {
	out := make([]isakmp.Payload, 0, len(ps)+1)
	for _, p := range ps {
		out = append(out, p)
		if p.Type() == isakmp.PayloadNonce {
			out = append(out, &isakmp.KE{})
		}
	}
	return out
}

// resealQuick rewrites the first copy of QM1 or QM2 with edit applied to
// its payloads after HASH, with a HASH that verifies.
func resealQuick(msg string, edit func(ps []isakmp.Payload) []isakmp.Payload) mangleFn {
	var qm1Last []byte // QM2's IV: the last cipher block of QM1
	return func(r *batRelay, name string, copy int, p harnessPacket) []harnessPacket {
		if name == "QM1" && copy == 1 {
			if b := ikeBytes(p); len(b) >= aes.BlockSize {
				qm1Last = append([]byte(nil), b[len(b)-aes.BlockSize:]...)
			}
		}
		if name != msg || copy != 1 {
			return []harnessPacket{p}
		}
		q := p
		q.b = withIKE(p, r.reseal(msg, ikeBytes(p), qm1Last, edit))
		return []harnessPacket{q}
	}
}

// reseal decrypts a quick mode message with the sender's ISAKMP SA, edits
// it and seals it again (HASH(1) or HASH(2) computed over the new chain).
func (r *batRelay) reseal(msg string, raw, qm1Last []byte, edit func(ps []isakmp.Payload) []isakmp.Payload) []byte {
	sa := sender(r, msg).byName["tunnel1"].sa
	m, err := isakmp.Decode(raw)
	if err != nil || sa == nil {
		return raw
	}
	mid := m.Header.MessageID
	iv := keymat.MessageIV(sa.hash, sa.lastP1Block, mid, aes.BlockSize)
	if msg == "QM2" {
		iv = qm1Last
	}
	plain, err := sa.decrypt(iv, m.Body)
	if err != nil {
		return raw
	}
	ps, err := isakmp.DecodePayloads(m.Header.NextPayload, plain, isakmp.HeaderLen)
	if err != nil || len(ps) < 2 || ps[0].Type() != isakmp.PayloadHash {
		return raw
	}
	after := edit(ps[1:])
	_, rest, err := isakmp.EncodePayloads(after)
	if err != nil {
		return raw
	}
	h := keymat.QMHash1(sa.hash, sa.skeyidA, mid, rest)
	if msg == "QM2" {
		qm := r.ini().byName["tunnel1"].sa.quick[mid]
		if qm == nil {
			return raw
		}
		h = keymat.QMHash2(sa.hash, sa.skeyidA, mid, qm.ni, rest)
	}
	first, body, err := isakmp.EncodePayloads(append([]isakmp.Payload{&isakmp.Hash{Data: h}}, after...))
	if err != nil {
		return raw
	}
	hdr := m.Header
	hdr.NextPayload, hdr.Flags = first, hdr.Flags|isakmp.FlagEncryption
	b, err := (&isakmp.Message{Header: hdr, Body: sa.encrypt(iv, body)}).Encode()
	if err != nil {
		return raw
	}
	return b
}

// quickWant: the documented reactions (tables "Quick mode, responder" and
// "Quick mode, initiator" above the battery in docs/hostile-input.md):
// the receiver refuses the message with a protected notify and that quick
// mode ends; a QM2 refused by the initiator is retransmitted by the
// responder into quick-mode-replay drops. A QM2 with KE although no PFS
// was offered ends the quick mode without a notify.
func init() {
	for _, e := range quickEdits {
		n := "INVALID-KEY-INFORMATION"
		if e.name[0] == 'n' {
			n = "PAYLOAD-MALFORMED"
		}
		batWant["QM1/"+e.name] = batExpect{want: "down", notify: "vgw:" + n}
		batWant["QM2/"+e.name] = batExpect{want: "down", notify: "cgw:" + n, counts: []string{"cgw.drops.quick-mode-replay"}}
	}
	batWant["QM1/ke-without-pfs"] = batExpect{want: "down", notify: "vgw:NO-PROPOSAL-CHOSEN"}
	batWant["QM2/ke-without-pfs"] = batExpect{want: "down", counts: []string{"cgw.drops.quick-mode-replay"}}
}

// phase1Kept: a refused quick mode costs only that negotiation: both
// ISAKMP SAs stay established.
func phase1Kept(t *testing.T, r *batRelay) {
	for name, e := range map[string]*Engine{"cgw": r.h.cgw, "vgw": r.h.vgw} {
		if sa := e.byName["tunnel1"].sa; sa == nil || sa.state != stateEstablished {
			t.Errorf("%s: the ISAKMP SA did not survive a refused quick mode", name)
		}
	}
}

// quickPayloadCases: every edit on QM1 and QM2 with PFS, and a KE
// without PFS in both.
func quickPayloadCases() []batCase {
	var cases []batCase
	add := func(name string, o harnessOpts, m mangleFn) {
		w, ok := batWant[name]
		if !ok {
			w = batExpect{want: "up"}
		}
		cases = append(cases, batCase{name: name, o: o, mangle: m, want: w.want, counts: w.counts, notify: w.notify, check: phase1Kept})
	}
	for _, msg := range []string{"QM1", "QM2"} {
		for _, e := range quickEdits {
			add(msg+"/"+e.name, harnessOpts{}, resealQuick(msg, e.edit))
		}
		add(msg+"/ke-without-pfs", harnessOpts{noPFS: true}, resealQuick(msg, addEmptyKE))
	}
	return cases
}
