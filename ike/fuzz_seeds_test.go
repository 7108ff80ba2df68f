package ike

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Seeds of the phase 1 fuzz targets, taken from the real exchange (the
// message the harness holds, decrypted with the receiver's key), and
// TestPhase1FuzzHarness, which proves the harness gets a valid replaced
// message accepted and the defective ones refused: a harness whose fuzzed
// messages never pass the HASH check would fuzz only the first lines.

// fuzzSeed is one seed input and whether the receiver accepts it.
type fuzzSeed struct {
	name    string
	data    []byte
	accepts bool
}

// chainLen is the length of the payload chain at the start of b (without
// encryption padding), or len(b) if it does not walk.
func chainLen(first byte, b []byte) int {
	next, off := first, 0
	for next != 0 {
		if off+4 > len(b) {
			return len(b)
		}
		l := int(binary.BigEndian.Uint16(b[off+2:]))
		if l < 4 || off+l > len(b) {
			return len(b)
		}
		next = b[off]
		off += l
	}
	return off
}

// heldChain returns the payload chain of the held message, decrypted with
// the receiver's key and IV (without changing its state).
func heldChain(t testing.TB, h *qmHarness, pt phase1Target, held *harnessPacket) (byte, []byte) {
	raw := ikeBytes(*held)
	hdr, err := isakmp.DecodeHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	body := raw[isakmp.HeaderLen:hdr.Length]
	if pt.enc {
		recv := h.cgw
		if pt.to == toVGW {
			recv = h.vgw
		}
		sa := recv.sas[hdr.ICookie]
		if body, err = sa.decrypt(sa.phase1IV, body); err != nil {
			t.Fatal(err)
		}
	}
	first := byte(hdr.NextPayload)
	return first, body[:chainLen(first, body)]
}

// phase1Seeds: the real chain of msg and variants the receiver must refuse.
func phase1Seeds(t testing.TB, msg string) []fuzzSeed {
	pt := phase1Targets[msg]
	h, held, hdr := pt.upTo(t)
	first, chain := heldChain(t, h, pt, held)
	h.close()
	ps, err := isakmp.DecodePayloads(isakmp.PayloadType(first), chain, isakmp.HeaderLen)
	if err != nil {
		t.Fatalf("%s: %v", msg, err)
	}
	without := func(pt isakmp.PayloadType) []isakmp.Payload {
		var out []isakmp.Payload
		for _, p := range ps {
			if p.Type() != pt {
				out = append(out, p)
			}
		}
		return out
	}
	replace := func(pt isakmp.PayloadType, np isakmp.Payload) []isakmp.Payload {
		out := append([]isakmp.Payload(nil), ps...)
		for i, p := range out {
			if p.Type() == pt {
				out[i] = np
			}
		}
		return out
	}
	ic := &isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoISAKMP, NotifyType: isakmp.NotifyInitialContact,
		SPI: append(append([]byte(nil), hdr.ICookie[:]...), hdr.RCookie[:]...)}
	seeds := []fuzzSeed{
		{"real", append([]byte{first}, chain...), true},
		{"no-hash", seedChain(t, without(isakmp.PayloadHash)...), false},
		{"initial-contact", seedChain(t, append(append([]isakmp.Payload(nil), ps...), ic)...), true},
	}
	if msg != "AM3" {
		other := isakmp.IDFromAddr(netip.MustParseAddr("198.51.100.9"))
		seeds = append(seeds, fuzzSeed{"other-id", seedChain(t, replace(isakmp.PayloadID, other)...), false})
	}
	if msg == "AM2" {
		seeds = append(seeds, fuzzSeed{"empty-ke", seedChain(t, replace(isakmp.PayloadKE, &isakmp.KE{})...), false},
			fuzzSeed{"nonce-7", seedChain(t, replace(isakmp.PayloadNonce, &isakmp.Nonce{Data: make([]byte, 7)})...), false})
	}
	return seeds
}

// TestPhase1FuzzHarness: every phase 1 target's real chain, rebuilt by the
// target (new HASH, encrypted with the receiver's IV), completes phase 1 on
// the receiver, and the defective seeds do not.
func TestPhase1FuzzHarness(t *testing.T) {
	for _, msg := range []string{"MM5", "MM6", "AM2", "AM3"} {
		pt := phase1Targets[msg]
		for _, s := range phase1Seeds(t, msg) {
			h := runPhase1Fuzz(t, s.data, pt)
			recv := h.cgw
			if pt.to == toVGW {
				recv = h.vgw
			}
			sa := recv.byName["tunnel1"].sa
			up := sa != nil && sa.state == stateEstablished
			if up != s.accepts {
				t.Errorf("%s %s: receiver established %v, want %v", msg, s.name, up, s.accepts)
			}
			h.close()
		}
	}
}
