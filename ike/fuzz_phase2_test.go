package ike

import (
	"bytes"
	"crypto/aes"
	"encoding/binary"
	"testing"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// Stateful fuzz targets after phase 1 (harness: fuzz_harness_test.go):
// the initiator side of quick mode (QM2, QM3 at the responder) and
// protected informational exchanges in both directions. The fuzz input is
// the chain after the HASH payload, as in FuzzQM1: data[0] the type of the
// payload after HASH, data[1:] the chain; the HASH is computed over it as
// the receiver will, so the input reaches the checks behind it.

// hashedBody is HASH(hash) | chain as a raw decrypted body.
func hashedBody(hlen int, first byte, chain []byte, hash func(rest []byte) []byte) []byte {
	body := make([]byte, 4+hlen, 4+hlen+len(chain))
	body[0] = first
	binary.BigEndian.PutUint16(body[2:], uint16(4+hlen))
	body = append(body, chain...)
	rest, err := chainAfterFirst(body)
	if err != nil {
		rest = chain
	}
	copy(body[4:], hash(rest))
	return body
}

// qmUpTo brings phase 1 up, starts a quick mode on the cgw and runs it up
// to its n-th message (2: QM2 held before the cgw, 3: QM3 held before the
// vgw).
func qmUpTo(t testing.TB, n int) (*qmHarness, *harnessPacket, isakmp.Header) {
	h := establishedHarness(t, harnessOpts{noPFS: true})
	h.pump(10)
	h.cgw.byName["tunnel1"].startQuickMode(nil)
	if len(h.wire.pkts) == 0 {
		h.close()
		t.Fatal("harness: no QM1")
	}
	qm1, _ := isakmp.DecodeHeader(ikeBytes(h.wire.pkts[len(h.wire.pkts)-1]))
	to := toCGW
	if n == 3 {
		to = toVGW
	}
	seen := 0
	held := h.pumpHold(10, func(p harnessPacket, m isakmp.Header) bool {
		if m.Exchange != isakmp.ExchangeQuickMode || m.MessageID != qm1.MessageID || p.dst.Addr() != to.addr() {
			return false
		}
		seen++
		return to == toCGW || seen == 2
	})
	if held == nil {
		h.close()
		t.Fatalf("harness: QM%d was not sent", n)
	}
	return h, held, qm1
}

// buildQM2 seals HASH(2) | chain on the cgw's SA with the IV after QM1.
func buildQM2(h *qmHarness, hdr isakmp.Header, first byte, chain []byte) []byte {
	sa := h.cgw.sas[hdr.ICookie]
	qm := sa.quick[hdr.MessageID]
	body := hashedBody(sa.hash.Size(), first, chain, func(rest []byte) []byte {
		return keymat.QMHash2(sa.hash, sa.skeyidA, hdr.MessageID, qm.ni, rest)
	})
	return sealRaw(sa, hdr, sa.ivs[hdr.MessageID], byte(isakmp.PayloadHash), body)
}

// buildQM3 seals HASH(3) | chain on the vgw's SA with the IV after QM2.
func buildQM3(h *qmHarness, hdr isakmp.Header, first byte, chain []byte) []byte {
	sa := h.vgw.sas[hdr.ICookie]
	qm := sa.quick[hdr.MessageID]
	body := hashedBody(sa.hash.Size(), first, chain, func([]byte) []byte {
		return keymat.QMHash3(sa.hash, sa.skeyidA, hdr.MessageID, qm.ni, qm.nr)
	})
	return sealRaw(sa, hdr, sa.ivs[hdr.MessageID], byte(isakmp.PayloadHash), body)
}

// runQMFuzz replaces QM2 or QM3 with the input and checks the engines: the
// ISAKMP SAs survive (a bad quick mode costs only that negotiation).
func runQMFuzz(t testing.TB, n int, data []byte) *qmHarness {
	first, chain, ok := chainInput(data)
	if !ok {
		return nil
	}
	h, held, hdr := qmUpTo(t, n)
	build := buildQM2
	if n == 3 {
		build = buildQM3
	}
	h.replaceAndRun(held, build(h, hdr, first, chain))
	h.checkEngines(t)
	for _, e := range []*Engine{h.cgw, h.vgw} {
		if sa := e.byName["tunnel1"].sa; sa == nil || sa.state != stateEstablished {
			t.Fatal("an ISAKMP SA went down over one quick mode message")
		}
	}
	return h
}

// FuzzQM2 fuzzes the decrypted chain of QM2 after HASH(2) at the initiator.
func FuzzQM2(f *testing.F) {
	for _, s := range qmSeeds(f, 2) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if h := runQMFuzz(t, 2, data); h != nil {
			h.close()
		}
	})
}

// FuzzQM3 fuzzes what follows HASH(3) in QM3 at the responder.
func FuzzQM3(f *testing.F) {
	for _, s := range qmSeeds(f, 3) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if h := runQMFuzz(t, 3, data); h != nil {
			h.close()
		}
	})
}

// infoCookies in a fuzzed informational stands for the SA's cookie pair
// (the ISAKMP SPI), which changes with every run: sendInfo puts the real
// one in its place, so that seeds can name the SA (DELETE, DPD).
var infoCookies = [16]byte{0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0}

// infoMID is the message ID of the fuzzed informational exchanges.
const infoMID = 0x1f0e0001

// sendInfo seals HASH(1) | chain as an informational to e (the cgw if
// toVGW is false), with the receiver's key and the IV of infoMID.
func (h *qmHarness) sendInfo(to harnessAddr, first byte, chain []byte) {
	recv := h.cgw
	if to == toVGW {
		recv = h.vgw
	}
	sa := recv.byName["tunnel1"].sa
	chain = bytes.ReplaceAll(chain, infoCookies[:], sa.cookiesSPI())
	body := hashedBody(sa.hash.Size(), first, chain, func(rest []byte) []byte {
		return keymat.QMHash1(sa.hash, sa.skeyidA, infoMID, rest)
	})
	iv := keymat.MessageIV(sa.hash, sa.lastP1Block, infoMID, aes.BlockSize)
	b := sealRaw(sa, sa.header(isakmp.ExchangeInformational, infoMID), iv, byte(isakmp.PayloadHash), body)
	h.inject(recv, b)
}

// runInfoFuzz: data[0] bit 0 picks the receiver, data[1:] is the chain
// input. After an informational the engines hold no half-open state, and
// an ISAKMP SA that is gone took its quick modes with it.
func runInfoFuzz(t testing.TB, data []byte) *qmHarness {
	if len(data) < 1 {
		return nil
	}
	first, chain, ok := chainInput(data[1:])
	if !ok {
		return nil
	}
	h := establishedHarness(t, harnessOpts{noPFS: true})
	h.pump(10)
	h.sendInfo(harnessAddr(data[0]&1 == 1), first, chain)
	h.pump(10)
	h.checkEngines(t)
	return h
}

// FuzzInformational fuzzes protected informational messages (notifies,
// DELETEs, DPD) with a valid HASH(1), to either engine.
func FuzzInformational(f *testing.F) {
	for _, s := range infoSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if h := runInfoFuzz(t, data); h != nil {
			h.close()
		}
	})
}
