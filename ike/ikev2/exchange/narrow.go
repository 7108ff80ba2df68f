package exchange

import (
	"fmt"
	"net/netip"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// maxSelectors is what one TS payload can carry (an 8-bit count).
const maxSelectors = 255

// Narrowed is the responder's answer to the initiator's TSi/TSr.
type Narrowed struct {
	TSi, TSr *wire.TS
	// Packet: the initiator's first selectors were one address each, the
	// addresses of the packet that triggered the request (section 2.9);
	// PacketCovered: the answer covers that packet, and the selectors
	// that do are the first of TSi and TSr.
	Packet, PacketCovered bool
	// Changed: the answer differs from what the initiator proposed.
	Changed bool
}

// Narrow is the responder's traffic selector narrowing (section 2.9).
// remote is our policy for the initiator's side (its TSi), local for ours
// (TSr). Each offered selector is intersected with each policy selector
// (address range, IP protocol with 0 as any, port range); what is
// contained in another result is dropped. When the initiator's first
// selectors name one packet, the result selectors covering it are put
// first. Selectors of mismatched families, with start above end or of
// unknown types are skipped, and so are those of an address family that
// is left on one side only (IPv4 to IPv6 carries nothing). An empty result on either side is
// TS_UNACCEPTABLE; missing or empty TS payloads are INVALID_SYNTAX.
func Narrow(tsi, tsr *wire.TS, remote, local []wire.Selector) (*Narrowed, error) {
	if tsi == nil || tsr == nil || len(tsi.Selectors) == 0 || len(tsr.Selectors) == 0 {
		return nil, refuse(wire.NotifyInvalidSyntax, "TSi or TSr missing or without selectors")
	}
	ni, nr := narrowList(tsi.Selectors, remote), narrowList(tsr.Selectors, local)
	ni, nr = sameFamilies(ni, nr), sameFamilies(nr, ni)
	if len(ni) == 0 || len(nr) == 0 {
		e := refuse(wire.NotifyTSUnacceptable, "no traffic selector left after narrowing")
		e.Details = []string{
			fmt.Sprintf("TSi %s against %s: %d left", summary(tsi.Selectors), summary(remote), len(ni)),
			fmt.Sprintf("TSr %s against %s: %d left", summary(tsr.Selectors), summary(local), len(nr)),
		}
		return nil, e
	}
	n := &Narrowed{TSi: &wire.TS{Selectors: ni}, TSr: &wire.TS{Responder: true, Selectors: nr}}
	pi, pr := tsi.Selectors[0], tsr.Selectors[0]
	n.Packet = len(tsi.Selectors) > 1 && len(tsr.Selectors) > 1 && valid(pi) && valid(pr) &&
		pi.Start == pi.End && pr.Start == pr.End
	if n.Packet {
		ci, cr := front(ni, pi), front(nr, pr)
		n.PacketCovered = ci && cr
	}
	n.Changed = !sameSelectors(ni, tsi.Selectors) || !sameSelectors(nr, tsr.Selectors)
	return n, nil
}

// narrowList intersects every offered selector with every policy one.
func narrowList(offer, policy []wire.Selector) []wire.Selector {
	var out []wire.Selector
	for _, o := range offer {
		for _, p := range policy {
			if x, ok := intersect(o, p); ok {
				out = append(out, x)
			}
		}
	}
	return minimal(out)
}

// sameFamilies keeps the selectors of ss whose type also occurs in other.
func sameFamilies(ss, other []wire.Selector) []wire.Selector {
	var out []wire.Selector
	for _, s := range ss {
		for _, o := range other {
			if o.Type == s.Type {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// minimal drops selectors contained in an earlier one (or equal to it),
// or in a later one, keeping the order, at most maxSelectors.
func minimal(ss []wire.Selector) []wire.Selector {
	var out []wire.Selector
	for i, s := range ss {
		dup := false
		for j, t := range ss {
			if i != j && contains(t, s) && (!contains(s, t) || j < i) {
				dup = true
				break
			}
		}
		if !dup && len(out) < maxSelectors {
			out = append(out, s)
		}
	}
	return out
}

// valid: a known type with addresses of its family, start <= end, and a
// port range start <= end.
func valid(s wire.Selector) bool {
	var fam func(netip.Addr) bool
	switch s.Type {
	case wire.TSIPv4Range:
		fam = netip.Addr.Is4
	case wire.TSIPv6Range:
		fam = func(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }
	default:
		return false
	}
	return fam(s.Start) && fam(s.End) && !s.End.Less(s.Start) && s.StartPort <= s.EndPort
}

// intersect returns a ∩ b.
func intersect(a, b wire.Selector) (wire.Selector, bool) {
	if !valid(a) || !valid(b) || a.Type != b.Type {
		return wire.Selector{}, false
	}
	x := wire.Selector{Type: a.Type, Protocol: a.Protocol}
	switch {
	case a.Protocol == 0:
		x.Protocol = b.Protocol
	case b.Protocol != 0 && b.Protocol != a.Protocol:
		return x, false
	}
	x.StartPort, x.EndPort = max(a.StartPort, b.StartPort), min(a.EndPort, b.EndPort)
	x.Start, x.End = a.Start, a.End
	if b.Start.Compare(x.Start) > 0 {
		x.Start = b.Start
	}
	if b.End.Compare(x.End) < 0 {
		x.End = b.End
	}
	if x.StartPort > x.EndPort || x.End.Less(x.Start) {
		return x, false
	}
	return x, true
}

// contains reports whether a covers all of b.
func contains(a, b wire.Selector) bool {
	return a.Type == b.Type && (a.Protocol == 0 || a.Protocol == b.Protocol) &&
		a.StartPort <= b.StartPort && b.EndPort <= a.EndPort &&
		a.Start.Compare(b.Start) <= 0 && b.End.Compare(a.End) <= 0
}

// front moves the first selector of ss that covers p to the front.
func front(ss []wire.Selector, p wire.Selector) bool {
	for i, s := range ss {
		if contains(s, p) {
			copy(ss[1:i+1], ss[:i])
			ss[0] = s
			return true
		}
	}
	return false
}

func sameSelectors(a, b []wire.Selector) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func summary(ss []wire.Selector) string {
	switch len(ss) {
	case 0:
		return "nothing"
	case 1:
		return ss[0].String()
	}
	return fmt.Sprintf("%s and %d more", ss[0], len(ss)-1)
}
