package gwconfig

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// phase1 reads a tunnel's phase1 block: selection, lifetime and the proposals
// (strings, or AWS-style lists, or the customer gateway's defaults).
func (b *tunnelDecoder) phase1(t *policy.Tunnel, o *object) {
	t.Phase1.Selection = b.selection(o)
	min, max := time.Second, time.Duration(math.MaxInt64)
	if b.vgw {
		max = AWSPhase1Lifetime
		if !b.lab {
			min = AWSPhase1LifetimeMin
		}
	}
	t.Phase1.Lifetime = b.lifetime(o, AWSPhase1Lifetime, min, max)

	props, pset := o.list("proposals")
	encs, eset := o.list("encryption")
	integs, iset := o.list("integrity")
	groups, gset := o.list("dh_groups")
	encAllowed, groupAllowed := cgwPhase1Encryption, allDHGroups
	if b.vgw {
		encAllowed, groupAllowed = AWSPhase1Encryption, AWSPhase1DHGroups
	}
	switch {
	case pset && (eset || iset || gset):
		b.d.errf(o.line("proposals"), o.p("proposals"), "use either proposals or the encryption/integrity/dh_groups lists, not both")
	case pset:
		if len(props) == 0 {
			b.d.errf(o.line("proposals"), o.p("proposals"), "must not be empty")
		}
		seen := map[policy.Phase1Proposal]bool{}
		for _, it := range props {
			p, err := ParsePhase1Proposal(it.s)
			if err != nil {
				b.d.errf(it.n, o.p("proposals"), "%v", err)
				continue
			}
			ok := true
			if enc := fmt.Sprintf("AES%d", p.EncKeyBits); !containsFold(encAllowed, enc) {
				b.d.errf(it.n, o.p("proposals"), "%s: %s is not allowed (allowed: %s)", it.s, enc, strings.Join(encAllowed, ", "))
				ok = false
			}
			if !containsGroup(groupAllowed, p.DHGroup) {
				b.d.errf(it.n, o.p("proposals"), "%s: DH group %d is not allowed (allowed: %s)", it.s, p.DHGroup, formatGroups(groupAllowed))
				ok = false
			}
			if seen[p] {
				b.d.errf(it.n, o.p("proposals"), "%s is listed twice", it.s)
				ok = false
			}
			seen[p] = true
			if ok {
				t.Phase1.Proposals = append(t.Phase1.Proposals, p)
			}
		}
	case eset || iset || gset || b.vgw:
		encBits := b.p1Encryption(o, encs, eset, encAllowed)
		hs := b.integrity(o, integs, iset, false)
		gs := b.groups(o, "dh_groups", groups, gset, AWSPhase1DHGroups, groupAllowed, false)
		for _, e := range encBits {
			for _, h := range hs {
				for _, g := range gs {
					t.Phase1.Proposals = append(t.Phase1.Proposals, policy.Phase1Proposal{EncKeyBits: e, Hash: hashes[h].h, DHGroup: g})
				}
			}
		}
	default:
		for _, s := range CGWPhase1Proposals {
			p, _ := ParsePhase1Proposal(s)
			t.Phase1.Proposals = append(t.Phase1.Proposals, p)
		}
	}
}

// p1Encryption reads the phase 1 encryption list as AES key lengths
// (absent: AWS's list).
func (b *tunnelDecoder) p1Encryption(o *object, items []item, set bool, allowed []string) []int {
	if !set {
		var bits []int
		for _, s := range AWSPhase1Encryption {
			_, k, _ := parseAWSEnc(s)
			bits = append(bits, k)
		}
		return bits
	}
	if len(items) == 0 {
		b.d.errf(o.line("encryption"), o.p("encryption"), "must not be empty")
	}
	var bits []int
	seen := map[string]bool{}
	for _, it := range items {
		enc, k, ok := parseAWSEnc(it.s)
		switch {
		case ok && enc == isakmp.ESPAESGCM16:
			b.d.errf(it.n, o.p("encryption"), "%s is not available in IKEv1 phase 1: AWS offers AES-GCM in phase 1 only with IKEv2 (allowed: %s)", it.s, strings.Join(allowed, ", "))
		case !ok || !containsFold(allowed, it.s):
			b.d.errf(it.n, o.p("encryption"), "%s is not allowed (allowed: %s)", it.s, strings.Join(allowed, ", "))
		case seen[strings.ToUpper(it.s)]:
			b.d.errf(it.n, o.p("encryption"), "%s is listed twice", it.s)
		default:
			seen[strings.ToUpper(it.s)] = true
			bits = append(bits, k)
		}
	}
	return bits
}
