package gwconfig

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vpnlab/vpnlab/ike/policy"
)

// selection reads how a responder picks among the proposals: AWS's
// lowest-value on a vgw by default, the initiator's order on a cgw.
func (b *tunnelDecoder) selection(o *object) policy.Selection {
	def := "lowest-value"
	if !b.vgw {
		def = "initiator-order"
	}
	if o.enum("selection", def, "lowest-value", "initiator-order") == "lowest-value" {
		return policy.SelectLowestValue
	}
	return policy.SelectInitiatorOrder
}

// integrity returns indexes into hashes. emptyOK allows an explicit empty list.
func (b *tunnelDecoder) integrity(o *object, items []item, set, emptyOK bool) []int {
	if !set {
		return []int{0, 1, 2, 3}
	}
	if len(items) == 0 && !emptyOK {
		b.d.errf(o.line("integrity"), o.p("integrity"), "must not be empty")
	}
	var r []int
	seen := map[int]bool{}
	for _, it := range items {
		i, ok := parseAWSIntegrity(it.s)
		switch {
		case !ok:
			b.d.errf(it.n, o.p("integrity"), "%s is not allowed (allowed: %s)", it.s, strings.Join(AWSPhase1Integrity, ", "))
		case seen[i]:
			b.d.errf(it.n, o.p("integrity"), "%s is listed twice", it.s)
		default:
			seen[i] = true
			r = append(r, i)
		}
	}
	return r
}

// groups reads a DH group list (numbers or names such as modp2048). An
// explicit empty list gives [0] (no PFS) when emptyOK.
func (b *tunnelDecoder) groups(o *object, key string, items []item, set bool, def, allowed []uint16, emptyOK bool) []uint16 {
	if !set {
		return def
	}
	if len(items) == 0 {
		if emptyOK {
			return []uint16{0}
		}
		b.d.errf(o.line(key), o.p(key), "must not be empty")
	}
	var r []uint16
	seen := map[uint16]bool{}
	for _, it := range items {
		g, ok := uint16(0), false
		if v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(it.s), "group"), 10, 16); err == nil {
			g, ok = uint16(v), true
		} else if gn, found := dhGroupByName(strings.ToLower(it.s)); found {
			g, ok = gn, true
		}
		switch {
		case !ok:
			b.d.errf(it.n, o.p(key), "%q is not a DH group number (allowed: %s)", it.s, formatGroups(allowed))
		case !containsGroup(allowed, g):
			b.d.errf(it.n, o.p(key), "%s is not allowed (allowed: %s)", it.s, formatGroups(allowed))
		case seen[g]:
			b.d.errf(it.n, o.p(key), "%s is listed twice", it.s)
		default:
			seen[g] = true
			r = append(r, g)
		}
	}
	return r
}

// formatGroups lists DH groups with runs of three or more as ranges
// (2, 5, 14-24).
func formatGroups(g []uint16) string {
	var parts []string
	for i := 0; i < len(g); {
		j := i
		for j+1 < len(g) && g[j+1] == g[j]+1 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, fmt.Sprintf("%d-%d", g[i], g[j]))
		case j == i:
			parts = append(parts, strconv.Itoa(int(g[i])))
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, strconv.Itoa(int(g[k])))
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// containsGroup reports whether g is in l.
func containsGroup(l []uint16, g uint16) bool {
	for _, x := range l {
		if x == g {
			return true
		}
	}
	return false
}

// containsFold reports whether s is in l, in any case.
func containsFold(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
