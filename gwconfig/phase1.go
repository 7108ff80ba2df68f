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
	ikev2 := len(t.IKEVersions) == 0 || t.Allows(policy.IKEv2) // no versions: their errors are reported
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
			if enc := phase1EncAWSName(p); !containsFold(encAllowed, enc) {
				b.d.errf(it.n, o.p("proposals"), "%s: %s is not allowed (allowed: %s)", it.s, enc, strings.Join(encAllowed, ", "))
				ok = false
			} else if p.GCM && !ikev2 {
				b.d.errf(it.n, o.p("proposals"), "%s: %s", it.s, gcmNeedsIKEv2(t))
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
		ciphers := b.p1Encryption(o, encs, eset, encAllowed, t, ikev2)
		hs := b.integrity(o, integs, iset, false)
		gs := b.groups(o, "dh_groups", groups, gset, AWSPhase1DHGroups, groupAllowed, false)
		// Every encryption with every integrity and every group; with
		// AES-GCM the integrity list names the PRF (no integrity
		// transform: RFC 5282 section 8).
		for _, c := range ciphers {
			for _, h := range hs {
				for _, g := range gs {
					t.Phase1.Proposals = append(t.Phase1.Proposals, policy.Phase1Proposal{EncKeyBits: c.bits, GCM: c.gcm, Hash: hashes[h].h, DHGroup: g})
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

// p1Cipher is one phase 1 cipher: AES-CBC or AES-GCM-16 with a key length.
type p1Cipher struct {
	bits int
	gcm  bool
}

// p1Encryption reads the phase 1 encryption list (absent: AWS's list, its
// AES-GCM entries only when the tunnel allows IKEv2). AES-GCM exists for
// the IKE SA in IKEv2 only (RFC 5282); AWS offers it in phase 1 with IKEv2.
func (b *tunnelDecoder) p1Encryption(o *object, items []item, set bool, allowed []string, t *policy.Tunnel, ikev2 bool) []p1Cipher {
	if !set {
		var cs []p1Cipher
		for _, s := range AWSPhase1Encryption {
			enc, k, _ := parseAWSEnc(s)
			if enc == isakmp.ESPAESGCM16 && !ikev2 {
				continue
			}
			cs = append(cs, p1Cipher{bits: k, gcm: enc == isakmp.ESPAESGCM16})
		}
		return cs
	}
	if len(items) == 0 {
		b.d.errf(o.line("encryption"), o.p("encryption"), "must not be empty")
	}
	var cs []p1Cipher
	seen := map[string]bool{}
	for _, it := range items {
		enc, k, ok := parseAWSEnc(it.s)
		switch {
		case !ok || !containsFold(allowed, it.s):
			b.d.errf(it.n, o.p("encryption"), "%s is not allowed (allowed: %s)", it.s, strings.Join(allowed, ", "))
		case enc == isakmp.ESPAESGCM16 && !ikev2:
			b.d.errf(it.n, o.p("encryption"), "%s: %s", it.s, gcmNeedsIKEv2(t))
		case seen[strings.ToUpper(it.s)]:
			b.d.errf(it.n, o.p("encryption"), "%s is listed twice", it.s)
		default:
			seen[strings.ToUpper(it.s)] = true
			cs = append(cs, p1Cipher{bits: k, gcm: enc == isakmp.ESPAESGCM16})
		}
	}
	return cs
}

// phase1EncAWSName is the AWS name of a phase 1 cipher: AES128, AES256-GCM-16.
func phase1EncAWSName(p policy.Phase1Proposal) string {
	if p.GCM {
		return fmt.Sprintf("AES%d-GCM-16", p.EncKeyBits)
	}
	return fmt.Sprintf("AES%d", p.EncKeyBits)
}

// gcmNeedsIKEv2 says why AES-GCM is refused in phase 1 of t.
func gcmNeedsIKEv2(t *policy.Tunnel) string {
	return fmt.Sprintf("AES-GCM in phase 1 needs IKEv2 (RFC 5282 defines it for the IKEv2 SA only; AWS offers it with IKEv2), and ike_versions is [%s]; add ikev2 to ike_versions or use AES-CBC", strings.Join(VersionNames(t.IKEVersions), ", "))
}
