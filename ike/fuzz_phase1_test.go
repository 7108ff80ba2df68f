package ike

import (
	"net/netip"
	"testing"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// Stateful fuzz targets of phase 1 (harness: fuzz_harness_test.go). Each
// runs a real exchange between the two engines up to the message it
// fuzzes, replaces that message's decrypted payload chain with the input
// (data[0]: the type of the first payload, data[1:]: the chain), gives any
// HASH payload of the right length the value the receiver computes (so the
// input gets past the HASH check whenever its ID decodes), encrypts it with
// the receiver's own key and IV, delivers it, lets both engines answer, and
// checks the invariants of checkEngine.

// sealRaw encrypts a raw chain under sa with iv, in the header of held.
func sealRaw(sa *ikeSA, hdr isakmp.Header, iv []byte, first byte, chain []byte) []byte {
	hdr.NextPayload = isakmp.PayloadType(first)
	hdr.Flags |= isakmp.FlagEncryption
	var ct []byte
	if len(chain) > 0 {
		ct = sa.encrypt(iv, chain)
	}
	b, err := (&isakmp.Message{Header: hdr, Body: ct}).Encode()
	if err != nil {
		return nil
	}
	return b
}

// plainRaw builds an unencrypted message with a raw chain.
func plainRaw(hdr isakmp.Header, first byte, chain []byte) []byte {
	hdr.NextPayload = isakmp.PayloadType(first)
	hdr.Flags &^= isakmp.FlagEncryption
	b, err := (&isakmp.Message{Header: hdr, Body: append([]byte{}, chain...)}).Encode()
	if err != nil {
		return nil
	}
	return b
}

// replaceAndRun delivers b in place of held, then lets the engines answer.
func (h *qmHarness) replaceAndRun(held *harnessPacket, b []byte) {
	if b == nil {
		return
	}
	p := *held
	if p.dst.Port() == 4500 {
		b = append([]byte{0, 0, 0, 0}, b...)
	}
	p.b = b
	h.deliver(p)
	h.pump(10)
}

// holdTo returns a pumpHold predicate: the n-th (from 1) message of
// exchange ex to addr whose encryption flag is enc.
func holdTo(to harnessAddr, ex isakmp.ExchangeType, enc bool, n int) func(harnessPacket, isakmp.Header) bool {
	seen := 0
	return func(p harnessPacket, m isakmp.Header) bool {
		if p.dst.Addr() != to.addr() || m.Exchange != ex || isEncrypted(m) != enc {
			return false
		}
		seen++
		return seen == n
	}
}

// harnessAddr names an engine of the harness.
type harnessAddr bool

const (
	toCGW harnessAddr = false
	toVGW harnessAddr = true
)

func (a harnessAddr) addr() netip.Addr {
	if a {
		return harnessV
	}
	return harnessC
}

// phase1Target is one fuzzed phase 1 message: the harness options, the
// message to replace (its receiver, exchange, whether it is encrypted) and
// how a fuzzed chain is built into its place.
type phase1Target struct {
	o     harnessOpts
	to    harnessAddr
	ex    isakmp.ExchangeType
	enc   bool
	build func(h *qmHarness, hdr isakmp.Header, first byte, chain []byte) []byte
}

var phase1Targets = map[string]phase1Target{
	"MM5": {harnessOpts{noPFS: true}, toVGW, isakmp.ExchangeIdentityProtection, true, buildMM5},
	"MM6": {harnessOpts{noPFS: true}, toCGW, isakmp.ExchangeIdentityProtection, true, buildMM6},
	"AM2": {harnessOpts{aggressive: true, noPFS: true}, toCGW, isakmp.ExchangeAggressive, false, buildAM2},
	"AM3": {harnessOpts{aggressive: true, noPFS: true}, toVGW, isakmp.ExchangeAggressive, true, buildAM3},
}

// upTo runs the target's exchange up to its message and holds that one.
func (pt phase1Target) upTo(t testing.TB) (*qmHarness, *harnessPacket, isakmp.Header) {
	h := newFuzzHarness(t, pt.o)
	h.start()
	held := h.pumpHold(10, holdTo(pt.to, pt.ex, pt.enc, 1))
	if held == nil {
		h.close()
		t.Fatal("harness: the exchange never sent the message to replace")
	}
	hdr, _ := isakmp.DecodeHeader(ikeBytes(*held))
	return h, held, hdr
}

// runPhase1Fuzz runs one input against one phase 1 message; the caller
// closes the harness it returns (nil: input out of range).
func runPhase1Fuzz(t testing.TB, data []byte, pt phase1Target) *qmHarness {
	first, chain, ok := chainInput(data)
	if !ok {
		return nil
	}
	h, held, hdr := pt.upTo(t)
	h.replaceAndRun(held, pt.build(h, hdr, first, chain))
	h.checkEngines(t)
	return h
}

// buildMM5 seals a chain as MM5 with HASH_I over its first ID.
func buildMM5(h *qmHarness, hdr isakmp.Header, first byte, chain []byte) []byte {
	sa := h.vgw.sas[hdr.ICookie]
	chain = fixHash(first, chain, func(ps []isakmp.Payload) []byte {
		if id := idBody(ps); id != nil {
			return keymat.HashI(sa.hash, sa.skeyid, sa.gxi, sa.gxr, sa.iCookie[:], sa.rCookie[:], sa.saiB, id)
		}
		return nil
	})
	return sealRaw(sa, hdr, sa.phase1IV, first, chain)
}

// buildMM6 seals a chain as MM6 with HASH_R over its first ID.
func buildMM6(h *qmHarness, hdr isakmp.Header, first byte, chain []byte) []byte {
	sa := h.cgw.sas[hdr.ICookie]
	chain = fixHash(first, chain, func(ps []isakmp.Payload) []byte {
		if id := idBody(ps); id != nil {
			return keymat.HashR(sa.hash, sa.skeyid, sa.gxr, sa.gxi, sa.rCookie[:], sa.iCookie[:], sa.saiB, id)
		}
		return nil
	})
	return sealRaw(sa, hdr, sa.phase1IV, first, chain)
}

// buildAM3 seals a chain as AM3 with HASH_I (over AM1's ID).
func buildAM3(h *qmHarness, hdr isakmp.Header, first byte, chain []byte) []byte {
	sa := h.vgw.sas[hdr.ICookie]
	chain = fixHash(first, chain, func([]isakmp.Payload) []byte {
		return keymat.HashI(sa.hash, sa.skeyid, sa.gxi, sa.gxr, sa.iCookie[:], sa.rCookie[:], sa.saiB, sa.idiB)
	})
	return sealRaw(sa, hdr, sa.phase1IV, first, chain)
}

// buildAM2 builds a plaintext AM2 whose HASH_R is computed from the chain's
// own KE and nonce with the initiator's DH key, nonce and the pre-shared
// key, over the chain's ID: a well-formed chain is authenticated.
func buildAM2(h *qmHarness, hdr isakmp.Header, first byte, chain []byte) []byte {
	sa := h.cgw.sas[hdr.ICookie]
	hash := sa.t.cfg.Phase1.Proposals[0].Hash
	chain = fixHash(first, chain, func(ps []isakmp.Payload) []byte {
		ke, _ := findPayload(ps, isakmp.PayloadKE).(*isakmp.KE)
		nr, _ := findPayload(ps, isakmp.PayloadNonce).(*isakmp.Nonce)
		id := idBody(ps)
		if ke == nil || nr == nil || id == nil {
			return nil
		}
		gxy, err := sa.dhKey.SharedSecret(ke.Data)
		if err != nil {
			return nil
		}
		_ = gxy // SKEYID for pre-shared keys does not use g^xy
		skeyid := keymat.SKEYIDPreShared(hash, sa.t.cfg.PSK, sa.ni, nr.Data)
		return keymat.HashR(hash, skeyid, ke.Data, sa.gxi, hdr.RCookie[:], sa.iCookie[:], sa.saiB, id)
	})
	return plainRaw(hdr, first, chain)
}

// FuzzMM5 fuzzes the decrypted chain of MM5 (ID, HASH_I, notifies) at a
// main mode responder.
func FuzzMM5(f *testing.F) { fuzzPhase1(f, "MM5") }

// FuzzMM6 fuzzes the decrypted chain of MM6 at a main mode initiator.
func FuzzMM6(f *testing.F) { fuzzPhase1(f, "MM6") }

// FuzzAM2 fuzzes the chain of AM2 (plaintext) at an aggressive mode
// initiator; HASH_R is computed from the chain's KE, nonce and ID.
func FuzzAM2(f *testing.F) { fuzzPhase1(f, "AM2") }

// FuzzAM3 fuzzes the decrypted chain of AM3 at an aggressive mode responder.
func FuzzAM3(f *testing.F) { fuzzPhase1(f, "AM3") }

func fuzzPhase1(f *testing.F, msg string) {
	pt := phase1Targets[msg]
	for _, s := range phase1Seeds(f, msg) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if h := runPhase1Fuzz(t, data, pt); h != nil {
			h.close()
		}
	})
}
