package ike

import (
	"encoding/binary"
	"testing"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Seeds of the quick mode and informational fuzz targets, and
// TestPhase2FuzzHarness, which proves that the real QM2 and QM3, rebuilt by
// the targets, install pairs, and that a fuzzed informational is
// authenticated (answered, or acted on).

// qmSeeds: the real chain after HASH(2) (or HASH(3)) and variants.
func qmSeeds(t testing.TB, n int) []fuzzSeed {
	h, held, hdr := qmUpTo(t, n)
	defer h.close()
	recv := h.cgw
	if n == 3 {
		recv = h.vgw
	}
	sa := recv.sas[hdr.ICookie]
	raw := ikeBytes(*held)
	plain, err := sa.decrypt(sa.ivs[hdr.MessageID], raw[isakmp.HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	if n == 3 {
		notify := &isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoESP, SPI: []byte{1, 2, 3, 4}, NotifyType: isakmp.NotifyConnected}
		return []fuzzSeed{{"real", []byte{plain[0]}, true}, {"extra-notify", seedChain(t, notify), true}}
	}
	rest, err := chainAfterFirst(plain)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := isakmp.DecodePayloads(isakmp.PayloadType(plain[0]), rest, isakmp.HeaderLen)
	if err != nil {
		t.Fatal(err)
	}
	with := func(pt isakmp.PayloadType, np isakmp.Payload) []isakmp.Payload {
		var out []isakmp.Payload
		for _, p := range ps {
			if p.Type() != pt {
				out = append(out, p)
			} else if np != nil {
				out = append(out, np)
			}
		}
		return out
	}
	return []fuzzSeed{
		{"real", append([]byte{plain[0]}, rest...), true},
		{"nonce-7", seedChain(t, with(isakmp.PayloadNonce, &isakmp.Nonce{Data: make([]byte, 7)})...), false},
		{"nonce-257", seedChain(t, with(isakmp.PayloadNonce, &isakmp.Nonce{Data: make([]byte, 257)})...), false},
		{"no-sa", seedChain(t, with(isakmp.PayloadSA, nil)...), false},
		{"no-ids", seedChain(t, with(isakmp.PayloadID, nil)...), true},
		{"ke-without-pfs", seedChain(t, append(append([]isakmp.Payload(nil), ps...), &isakmp.KE{Data: make([]byte, 64)})...), false},
	}
}

// infoSeeds: data[0] is the receiver (1: vgw), then a chain.
func infoSeeds(t testing.TB) []fuzzSeed {
	cookies := infoCookies[:]
	seq := make([]byte, 4)
	binary.BigEndian.PutUint32(seq, 7)
	n := func(nt isakmp.NotifyType, proto uint8, spi, data []byte) *isakmp.Notify {
		return &isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: proto, SPI: spi, NotifyType: nt, Data: data}
	}
	del := func(proto uint8, spis ...[]byte) *isakmp.Delete {
		return &isakmp.Delete{DOI: isakmp.DOIIPsec, ProtocolID: proto, SPISize: uint8(len(spis[0])), SPIs: spis}
	}
	type s struct {
		name string
		ps   []isakmp.Payload
	}
	var out []fuzzSeed
	for _, c := range []s{
		{"r-u-there", []isakmp.Payload{n(isakmp.NotifyRUThere, isakmp.ProtoISAKMP, cookies, seq)}},
		{"r-u-there-ack", []isakmp.Payload{n(isakmp.NotifyRUThereAck, isakmp.ProtoISAKMP, cookies, seq)}},
		{"delete-isakmp", []isakmp.Payload{del(isakmp.ProtoISAKMP, cookies)}},
		{"delete-esp-unknown", []isakmp.Payload{del(isakmp.ProtoESP, []byte{0xde, 0xad, 0xbe, 0xef})}},
		{"initial-contact", []isakmp.Payload{n(isakmp.NotifyInitialContact, isakmp.ProtoISAKMP, cookies, nil)}},
		{"invalid-spi", []isakmp.Payload{n(isakmp.NotifyInvalidSPI, isakmp.ProtoESP, []byte{1, 2, 3, 4}, nil)}},
		{"auth-failed", []isakmp.Payload{n(isakmp.NotifyAuthenticationFailed, isakmp.ProtoISAKMP, cookies, nil)}},
		{"two-deletes", []isakmp.Payload{del(isakmp.ProtoESP, []byte{1, 1, 1, 1}), del(isakmp.ProtoAH, []byte{2, 2, 2, 2})}},
	} {
		for dir := byte(0); dir < 2; dir++ {
			out = append(out, fuzzSeed{c.name, append([]byte{dir}, seedChain(t, c.ps...)...), true})
		}
	}
	return out
}

// TestPhase2FuzzHarness: the targets' rebuilt real QM2 and QM3 install a
// pair on the receiver (and a defective QM2 does not), and a fuzzed
// R-U-THERE is answered while a fuzzed DELETE of the ISAKMP SA takes it
// down: the informational HASH verifies.
func TestPhase2FuzzHarness(t *testing.T) {
	for _, n := range []int{2, 3} {
		for _, s := range qmSeeds(t, n) {
			h, held, hdr := qmUpTo(t, n)
			dp, build := h.cdp, buildQM2
			if n == 3 {
				dp, build = h.vdp, buildQM3
			}
			before := dp.Installs()
			h.replaceAndRun(held, build(h, hdr, s.data[0], s.data[1:]))
			if got := dp.Installs() - before; (got == 1) != s.accepts {
				t.Errorf("QM%d %s: %d pairs installed, accepted want %v", n, s.name, got, s.accepts)
			}
			h.close()
		}
	}
	for _, s := range infoSeeds(t) {
		h := establishedHarness(t, harnessOpts{noPFS: true})
		h.pump(10)
		to := harnessAddr(s.data[0] == 1)
		h.sendInfo(to, s.data[1], s.data[2:])
		switch s.name {
		case "r-u-there":
			if len(h.wire.pkts) != 1 {
				t.Errorf("R-U-THERE to %v: %d answers, want an ACK", to, len(h.wire.pkts))
			}
		case "delete-isakmp":
			recv := h.cgw
			if to == toVGW {
				recv = h.vgw
			}
			if sa := recv.byName["tunnel1"].sa; sa != nil && sa.state == stateEstablished {
				t.Errorf("DELETE of the ISAKMP SA to %v: still established", to)
			}
		}
		h.pump(10)
		h.checkEngines(t)
		h.close()
	}
}
