package ike

import (
	"testing"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// FuzzFirstMessage fuzzes the plaintext first messages of phase 1 (harness:
// fuzz_harness_test.go): data[0] mod 4 picks MM1 or AM1 to a responder
// (fresh cookie, no state before), or MM2 or AM2 to an initiator that sent
// the real MM1/AM1 (its cookie, a responder cookie of ours); data[1] is the
// type of the first payload, data[2:] the chain. AM2 here is not given a
// valid HASH_R (FuzzAM2 does that): this target covers the parsing and the
// checks before authentication, and the state a first message creates.
func FuzzFirstMessage(f *testing.F) {
	for _, s := range firstSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFirstBody(t, data) })
}

// fuzzFirstBody runs one FuzzFirstMessage input.
func fuzzFirstBody(t testing.TB, data []byte) {
	if len(data) < 2 {
		return
	}
	first, chain, ok := chainInput(data[1:])
	if !ok {
		return
	}
	h := runFirst(t, data[0]%4, first, chain)
	h.checkEngines(t)
	h.close()
}

// firstKinds are the four messages, in the order of data[0] mod 4.
var firstKinds = [4]struct {
	name string
	ex   isakmp.ExchangeType
	aggr bool
	to   harnessAddr
}{
	{"MM1", isakmp.ExchangeIdentityProtection, false, toVGW},
	{"AM1", isakmp.ExchangeAggressive, true, toVGW},
	{"MM2", isakmp.ExchangeIdentityProtection, false, toCGW},
	{"AM2", isakmp.ExchangeAggressive, true, toCGW},
}

// fuzzICookie and fuzzRCookie are the cookies of the injected messages.
var (
	fuzzICookie = [8]byte{0xf1, 0, 0, 0, 0, 0, 0, 1}
	fuzzRCookie = [8]byte{0xf2, 0, 0, 0, 0, 0, 0, 2}
)

// runFirst delivers one fuzzed first message and lets the engines answer.
func runFirst(t testing.TB, kind byte, first byte, chain []byte) *qmHarness {
	k := firstKinds[kind]
	h := newFuzzHarness(t, harnessOpts{aggressive: k.aggr, noPFS: true})
	hdr := isakmp.Header{ICookie: fuzzICookie, Version: isakmp.Version, Exchange: k.ex}
	if k.to == toCGW {
		h.start()
		held := h.pumpHold(1, holdTo(toVGW, k.ex, false, 1))
		if held == nil {
			h.close()
			t.Fatal("harness: no first message")
		}
		hdr, _ = isakmp.DecodeHeader(ikeBytes(*held))
		hdr.RCookie = fuzzRCookie
	}
	if b := plainRaw(hdr, first, chain); b != nil {
		recv := h.vgw
		if k.to == toCGW {
			recv = h.cgw
		}
		h.inject(recv, b)
	}
	h.pump(10)
	return h
}

// firstSeeds: the real first messages of each kind (MM1/AM1 as the cgw
// sends them, MM2/AM2 as the vgw answers them).
func firstSeeds(t testing.TB) []fuzzSeed {
	var out []fuzzSeed
	for i, k := range firstKinds {
		h := newFuzzHarness(t, harnessOpts{aggressive: k.aggr, noPFS: true})
		h.start()
		held := h.pumpHold(3, holdTo(k.to, k.ex, false, 1))
		if held == nil {
			t.Fatalf("%s: not sent", k.name)
		}
		raw := ikeBytes(*held)
		hdr, _ := isakmp.DecodeHeader(raw)
		out = append(out, fuzzSeed{k.name, append([]byte{byte(i), byte(hdr.NextPayload)}, raw[isakmp.HeaderLen:hdr.Length]...), true})
		h.close()
	}
	return out
}

// TestFirstMessageHarness: each real first message, injected by the target,
// moves the receiver on: the responder answers MM1/AM1 (and holds one
// half-open SA) and the initiator answers MM2 with MM3. (The real AM2
// under another responder cookie fails its HASH_R: FuzzAM2 covers that.)
func TestFirstMessageHarness(t *testing.T) {
	for _, s := range firstSeeds(t) {
		k := firstKinds[s.data[0]]
		h := runFirst(t, s.data[0], s.data[1], s.data[2:])
		switch k.name {
		case "MM1", "AM1":
			if h.vgw.halfOpen != 1 || len(h.vgw.sas) != 1 {
				t.Errorf("%s: the responder created no SA", k.name)
			}
		case "MM2":
			if sa := h.cgw.byName["tunnel1"].sa; sa == nil || sa.state != stateMM3Sent {
				t.Errorf("MM2: the initiator did not move on to MM3")
			}
		}
		h.checkEngines(t)
		h.close()
	}
}
