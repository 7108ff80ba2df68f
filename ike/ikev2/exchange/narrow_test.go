package exchange

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

func pfx(s string) wire.Selector { return wire.SelectorFromPrefix(netip.MustParsePrefix(s)) }

func rng(from, to string, proto uint8, p1, p2 uint16) wire.Selector {
	a, b := netip.MustParseAddr(from), netip.MustParseAddr(to)
	ty := wire.TSIPv4Range
	if a.Is6() {
		ty = wire.TSIPv6Range
	}
	return wire.Selector{Type: ty, Protocol: proto, StartPort: p1, EndPort: p2, Start: a, End: b}
}

func tsOf(resp bool, ss ...wire.Selector) *wire.TS { return &wire.TS{Responder: resp, Selectors: ss} }

func strs(ts *wire.TS) string {
	var out []string
	for _, s := range ts.Selectors {
		out = append(out, s.String())
	}
	return strings.Join(out, ", ")
}

// TestNarrow: the responder's narrowing against its policy (section 2.9).
func TestNarrow(t *testing.T) {
	aws := AWSSelectors()
	cases := []struct {
		name           string
		tsi, tsr       *wire.TS
		remote, local  []wire.Selector
		wantI, wantR   string
		notify         wire.NotifyType
		changed, cover bool
	}{
		{"AWS 0/0 both ways", tsOf(false, pfx("0.0.0.0/0")), tsOf(true, pfx("0.0.0.0/0")), aws, aws,
			"0.0.0.0-255.255.255.255 proto 0 ports 0-65535", "0.0.0.0-255.255.255.255 proto 0 ports 0-65535", 0, false, false},
		{"initiator's subnets inside 0/0", tsOf(false, pfx("10.1.0.0/16")), tsOf(true, pfx("172.16.0.0/12")), aws, aws,
			"10.1.0.0-10.1.255.255 proto 0 ports 0-65535", "172.16.0.0-172.31.255.255 proto 0 ports 0-65535", 0, false, false},
		{"0/0 narrowed to our subnets", tsOf(false, pfx("0.0.0.0/0")), tsOf(true, pfx("0.0.0.0/0")),
			[]wire.Selector{pfx("10.1.0.0/16")}, []wire.Selector{pfx("10.2.0.0/16"), pfx("10.3.0.0/24")},
			"10.1.0.0-10.1.255.255 proto 0 ports 0-65535",
			"10.2.0.0-10.2.255.255 proto 0 ports 0-65535, 10.3.0.0-10.3.0.255 proto 0 ports 0-65535", 0, true, false},
		{"protocol and ports", tsOf(false, rng("10.0.0.0", "10.0.0.255", 0, 0, 65535)), tsOf(true, rng("10.9.0.0", "10.9.0.255", 6, 1000, 2000)),
			[]wire.Selector{rng("10.0.0.0", "10.0.0.127", 6, 0, 65535)}, []wire.Selector{rng("10.9.0.0", "10.9.255.255", 0, 1500, 65535)},
			"10.0.0.0-10.0.0.127 proto 6 ports 0-65535", "10.9.0.0-10.9.0.255 proto 6 ports 1500-2000", 0, true, false},
		{"packet selector first, covered", tsOf(false, rng("10.1.2.3", "10.1.2.3", 17, 5000, 5000), pfx("10.5.0.0/16"), pfx("10.1.0.0/16")),
			tsOf(true, rng("10.2.3.4", "10.2.3.4", 17, 53, 53), pfx("10.2.0.0/16")), []wire.Selector{pfx("10.1.0.0/16"), pfx("10.5.0.0/16")}, aws,
			"10.1.0.0-10.1.255.255 proto 0 ports 0-65535, 10.5.0.0-10.5.255.255 proto 0 ports 0-65535",
			"10.2.0.0-10.2.255.255 proto 0 ports 0-65535", 0, true, true},
		{"packet selector outside the policy", tsOf(false, rng("10.7.0.1", "10.7.0.1", 0, 0, 65535), pfx("10.1.0.0/16")),
			tsOf(true, rng("10.2.3.4", "10.2.3.4", 0, 0, 65535), pfx("10.2.0.0/16")), []wire.Selector{pfx("10.1.0.0/16")}, aws,
			"10.1.0.0-10.1.255.255 proto 0 ports 0-65535", "10.2.0.0-10.2.255.255 proto 0 ports 0-65535", 0, true, false},
		{"IPv6 kept apart from IPv4", tsOf(false, pfx("0.0.0.0/0"), pfx("::/0")), tsOf(true, pfx("::/0")),
			aws, []wire.Selector{pfx("fd00::/8")}, "", "", wire.NotifyTSUnacceptable, false, false},
		{"only the family both sides keep", tsOf(false, pfx("0.0.0.0/0"), pfx("::/0")), tsOf(true, pfx("0.0.0.0/0"), pfx("::/0")),
			[]wire.Selector{pfx("10.0.0.0/8"), pfx("fd00::/8")}, aws, "10.0.0.0-10.255.255.255 proto 0 ports 0-65535",
			"0.0.0.0-255.255.255.255 proto 0 ports 0-65535", 0, true, false},
		{"IPv6 both ways", tsOf(false, pfx("2001:db8::/32")), tsOf(true, pfx("::/0")), []wire.Selector{pfx("::/0")}, []wire.Selector{pfx("fd00::/8")},
			"2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff proto 0 ports 0-65535", "fd00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff proto 0 ports 0-65535", 0, true, false},

		{"disjoint subnets", tsOf(false, pfx("10.1.0.0/16")), tsOf(true, pfx("0.0.0.0/0")), []wire.Selector{pfx("10.2.0.0/16")}, aws,
			"", "", wire.NotifyTSUnacceptable, false, false},
		{"other protocols", tsOf(false, rng("10.0.0.0", "10.0.0.9", 6, 0, 65535)), tsOf(true, pfx("0.0.0.0/0")),
			[]wire.Selector{rng("10.0.0.0", "10.0.0.9", 17, 0, 65535)}, aws, "", "", wire.NotifyTSUnacceptable, false, false},
		{"disjoint ports", tsOf(false, pfx("0.0.0.0/0")), tsOf(true, rng("10.0.0.0", "10.0.0.9", 6, 80, 80)),
			aws, []wire.Selector{rng("10.0.0.0", "10.0.0.9", 6, 443, 443)}, "", "", wire.NotifyTSUnacceptable, false, false},
		{"start above end", tsOf(false, rng("10.0.0.9", "10.0.0.1", 0, 0, 65535)), tsOf(true, pfx("0.0.0.0/0")), aws, aws,
			"", "", wire.NotifyTSUnacceptable, false, false},
		{"opaque ports", tsOf(false, pfx("0.0.0.0/0")), tsOf(true, rng("10.0.0.0", "10.0.0.9", 6, 65535, 0)), aws, aws,
			"", "", wire.NotifyTSUnacceptable, false, false},
		{"mismatched family", tsOf(false, wire.Selector{Type: wire.TSIPv4Range, StartPort: 0, EndPort: 65535,
			Start: netip.MustParseAddr("::"), End: netip.MustParseAddr("::1")}), tsOf(true, pfx("0.0.0.0/0")), aws, aws,
			"", "", wire.NotifyTSUnacceptable, false, false},
		{"unknown type", tsOf(false, wire.Selector{Type: 9, Start: netip.MustParseAddr("10.0.0.1"), End: netip.MustParseAddr("10.0.0.1")}),
			tsOf(true, pfx("0.0.0.0/0")), aws, aws, "", "", wire.NotifyTSUnacceptable, false, false},
		{"zero selectors", tsOf(false), tsOf(true, pfx("0.0.0.0/0")), aws, aws, "", "", wire.NotifyInvalidSyntax, false, false},
		{"no TSr", tsOf(false, pfx("0.0.0.0/0")), nil, aws, aws, "", "", wire.NotifyInvalidSyntax, false, false},
		{"empty policy", tsOf(false, pfx("0.0.0.0/0")), tsOf(true, pfx("0.0.0.0/0")), nil, aws, "", "", wire.NotifyTSUnacceptable, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := Narrow(c.tsi, c.tsr, c.remote, c.local)
			if got := notifyOf(t, err); got != c.notify {
				t.Fatalf("notify %v (%v), want %v", got, err, c.notify)
			}
			if err != nil {
				return
			}
			if strs(n.TSi) != c.wantI || strs(n.TSr) != c.wantR {
				t.Errorf("narrowed to\n TSi %s\n TSr %s\nwant\n TSi %s\n TSr %s", strs(n.TSi), strs(n.TSr), c.wantI, c.wantR)
			}
			if n.Changed != c.changed || n.PacketCovered != c.cover || n.TSi.Responder || !n.TSr.Responder {
				t.Errorf("changed %v covered %v, want %v %v", n.Changed, n.PacketCovered, c.changed, c.cover)
			}
			checkNarrowed(t, c.tsi, c.tsr, c.remote, c.local, n)
		})
	}
}

// checkNarrowed: every answered selector lies inside one offered and one
// policy selector (the responder never widens), and it encodes.
func checkNarrowed(t *testing.T, tsi, tsr *wire.TS, remote, local []wire.Selector, n *Narrowed) {
	t.Helper()
	for _, side := range []struct {
		got           *wire.TS
		offer, policy []wire.Selector
	}{{n.TSi, tsi.Selectors, remote}, {n.TSr, tsr.Selectors, local}} {
		if len(side.got.Selectors) == 0 || len(side.got.Selectors) > 255 {
			t.Errorf("%d selectors", len(side.got.Selectors))
		}
		for _, s := range side.got.Selectors {
			if !valid(s) || !coveredByAny(s, side.offer) || !coveredByAny(s, side.policy) {
				t.Errorf("selector %s is not inside the offer and the policy", s)
			}
		}
	}
	if err := CheckNarrowed(tsi, tsr, n.TSi, n.TSr); err != nil {
		t.Errorf("the initiator's check refuses our narrowing: %v", err)
	}
	if _, err := (&wire.Message{Payloads: []wire.Payload{n.TSi, n.TSr}}).Encode(); err != nil {
		t.Errorf("narrowed selectors do not encode: %v", err)
	}
}

// TestNarrowHostile: 255 selectors against a policy of 16 stays bounded.
func TestNarrowHostile(t *testing.T) {
	var offer, policy []wire.Selector
	for i := 0; i < 255; i++ {
		offer = append(offer, rng("10.0.0.0", netip.AddrFrom4([4]byte{10, byte(i), 255, 255}).String(), uint8(i%3), uint16(i), 65535))
	}
	for i := 0; i < 16; i++ {
		policy = append(policy, pfx(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i * 16), 0, 0}), 12).String()))
	}
	n, err := Narrow(tsOf(false, offer...), tsOf(true, offer...), policy, policy)
	if err != nil {
		t.Fatal(err)
	}
	checkNarrowed(t, tsOf(false, offer...), tsOf(true, offer...), policy, policy, n)
}

// TestCheckNarrowed: the initiator refuses a responder that widens.
func TestCheckNarrowed(t *testing.T) {
	oi, or := tsOf(false, pfx("10.1.0.0/16")), tsOf(true, rng("10.2.0.0", "10.2.255.255", 6, 80, 443))
	for _, c := range []struct {
		name     string
		gotI, gt *wire.TS
		ok       bool
	}{
		{"same", oi, or, true},
		{"narrower", tsOf(false, pfx("10.1.2.0/24")), tsOf(true, rng("10.2.0.1", "10.2.0.1", 6, 443, 443)), true},
		{"wider address", tsOf(false, pfx("10.0.0.0/8")), or, false},
		{"wider ports", oi, tsOf(true, rng("10.2.0.0", "10.2.255.255", 6, 0, 65535)), false},
		{"any protocol", oi, tsOf(true, rng("10.2.0.0", "10.2.255.255", 0, 80, 443)), false},
		{"empty", tsOf(false), or, false},
		{"missing", oi, nil, false},
		{"start above end", tsOf(false, rng("10.1.0.9", "10.1.0.1", 0, 0, 65535)), or, false},
	} {
		if err := CheckNarrowed(oi, or, c.gotI, c.gt); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
