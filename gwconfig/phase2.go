package gwconfig

import (
	"math"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// phase2 reads a tunnel's phase2 block: selection, lifetimes, mode and the
// proposals.
func (b *tunnelDecoder) phase2(t *policy.Tunnel, o *object) {
	t.Phase2.Selection = b.selection(o)
	b.phase2Lifetimes(t, o)
	if o.enum("mode", "tunnel", "tunnel", "transport") == "transport" {
		t.Phase2.Mode = childsa.ModeTransport
		if b.vgw {
			b.d.warnf(o.line("mode"), o.p("mode"), "AWS uses tunnel mode only")
		}
	}
	b.phase2Proposals(t, o)
}

// phase2Lifetimes reads lifetime (on a vgw within AWS's limits and below the
// phase 1 lifetime) and lifetime_kb. It runs after phase1.
func (b *tunnelDecoder) phase2Lifetimes(t *policy.Tunnel, o *object) {
	min, max := time.Second, time.Duration(math.MaxInt64)
	if b.vgw {
		max = AWSPhase2Lifetime
		if !b.lab {
			min = AWSPhase2LifetimeMin
		}
	}
	t.Phase2.Lifetime = b.lifetime(o, AWSPhase2Lifetime, min, max)
	if b.vgw && t.Phase2.Lifetime >= t.Phase1.Lifetime {
		what := ""
		if !o.has("lifetime") {
			what = "the default "
		}
		b.d.errf(o.line("lifetime"), o.p("lifetime"), "%s%s must be less than the phase 1 lifetime (%s)", what, secs(t.Phase2.Lifetime), secs(t.Phase1.Lifetime))
	}
	kb := o.integer("lifetime_kb", 0, 0, math.MaxInt64)
	t.Phase2.LifetimeKB = uint64(kb)
	if kb != 0 && b.vgw {
		b.d.warnf(o.line("lifetime_kb"), o.p("lifetime_kb"), "AWS has no volume lifetime")
	}
}

// phase2Lists is what a phase2 block says about algorithms, besides
// proposal strings: each list and whether it was set.
type phase2Lists struct {
	encs, integs, groups []item
	eset, iset, gset     bool
	encAllowed           []string
	groupAllowed         []uint16
}

// phase2Proposals reads the phase 2 proposals: either proposal strings, or
// the encryption/integrity/pfs_groups/protocol lists (on a vgw their AWS
// defaults), or else the customer gateway's default proposals.
func (b *tunnelDecoder) phase2Proposals(t *policy.Tunnel, o *object) {
	props, pset := o.list("proposals")
	encs, eset := o.list("encryption")
	integs, iset := o.list("integrity")
	groups, gset := o.list("pfs_groups")
	_, protoSet := o.scalar("protocol")
	encAllowed, groupAllowed := cgwPhase2Encryption, allDHGroups
	if b.vgw {
		encAllowed, groupAllowed = AWSPhase2Encryption, AWSPhase2DHGroups
	}
	switch {
	case pset && (eset || iset || gset || protoSet):
		b.d.errf(o.line("proposals"), o.p("proposals"), "use either proposals or the encryption/integrity/pfs_groups/protocol lists, not both")
	case pset:
		b.phase2ProposalStrings(t, o, props, encAllowed, groupAllowed)
	case eset || iset || gset || protoSet || b.vgw:
		b.phase2ProposalLists(t, o, phase2Lists{encs: encs, integs: integs, groups: groups,
			eset: eset, iset: iset, gset: gset, encAllowed: encAllowed, groupAllowed: groupAllowed})
	default:
		for _, s := range CGWPhase2Proposals {
			p, _ := ParsePhase2Proposal(s)
			t.Phase2.Proposals = append(t.Phase2.Proposals, p)
		}
	}
}

// phase2ProposalStrings reads proposals such as esp-aes128-sha1-modp2048.
func (b *tunnelDecoder) phase2ProposalStrings(t *policy.Tunnel, o *object, props []item, encAllowed []string, groupAllowed []uint16) {
	if len(props) == 0 {
		b.d.errf(o.line("proposals"), o.p("proposals"), "must not be empty")
	}
	seen := map[policy.Phase2Proposal]bool{}
	for _, it := range props {
		p, err := ParsePhase2Proposal(it.s)
		if err != nil {
			b.d.errf(it.n, o.p("proposals"), "%v", err)
			continue
		}
		ok := true
		if p.Protocol == isakmp.ProtoAH && b.vgw {
			b.d.errf(it.n, o.p("proposals"), "%s: AH is not allowed (AWS uses ESP only)", it.s)
			ok = false
		}
		if enc := p2EncAWSName(p.Encryption, p.EncKeyBits); p.Protocol == isakmp.ProtoESP && !containsFold(encAllowed, enc) {
			b.d.errf(it.n, o.p("proposals"), "%s: %s is not allowed (allowed: %s)", it.s, enc, strings.Join(encAllowed, ", "))
			ok = false
		}
		if p.PFSGroup != 0 && !containsGroup(groupAllowed, p.PFSGroup) {
			b.d.errf(it.n, o.p("proposals"), "%s: PFS group %d is not allowed (allowed: %s)", it.s, p.PFSGroup, formatGroups(groupAllowed))
			ok = false
		}
		if seen[p] {
			b.d.errf(it.n, o.p("proposals"), "%s is listed twice", it.s)
			ok = false
		}
		seen[p] = true
		if ok {
			t.Phase2.Proposals = append(t.Phase2.Proposals, p)
		}
	}
	if b.vgw {
		for _, p := range t.Phase2.Proposals {
			if p.PFSGroup == 0 {
				b.d.warnf(o.line("proposals"), o.p("proposals"), "%s has no PFS group: AWS requires PFS in phase 2", FormatPhase2(p))
				break
			}
		}
	}
}

// phase2ProposalLists makes the proposals of every combination of the
// protocol's lists (AWS's way of listing phase 2 options).
func (b *tunnelDecoder) phase2ProposalLists(t *policy.Tunnel, o *object, l phase2Lists) {
	proto := o.enum("protocol", "esp", "esp", "ah")
	if proto == "ah" && b.vgw {
		b.d.errf(o.line("protocol"), o.p("protocol"), "ah is not allowed (AWS uses ESP only)")
		return
	}
	gs := b.groups(o, "pfs_groups", l.groups, l.gset, AWSPhase2DHGroups, l.groupAllowed, true)
	if b.vgw && len(gs) == 1 && gs[0] == 0 {
		b.d.warnf(o.line("pfs_groups"), o.p("pfs_groups"), "empty: AWS requires PFS in phase 2")
	}
	if proto == "ah" {
		if l.eset {
			b.d.errf(o.line("encryption"), o.p("encryption"), "must not be set with protocol ah (AH does not encrypt)")
		}
		for _, h := range b.integrity(o, l.integs, l.iset, false) {
			for _, g := range gs {
				t.Phase2.Proposals = append(t.Phase2.Proposals, policy.Phase2Proposal{Protocol: isakmp.ProtoAH, Integrity: hashes[h].auth, PFSGroup: g})
			}
		}
		return
	}
	es := b.p2Encryption(o, l.encs, l.eset, l.encAllowed)
	needInteg := false
	for _, e := range es {
		needInteg = needInteg || e.id != isakmp.ESPAESGCM16
	}
	hs := b.integrity(o, l.integs, l.iset, !needInteg)
	for _, e := range es {
		if e.id == isakmp.ESPAESGCM16 {
			// GCM carries its own integrity: one proposal per group.
			for _, g := range gs {
				t.Phase2.Proposals = append(t.Phase2.Proposals, policy.Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: e.id, EncKeyBits: e.bits, PFSGroup: g})
			}
			continue
		}
		for _, h := range hs {
			for _, g := range gs {
				t.Phase2.Proposals = append(t.Phase2.Proposals, policy.Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: e.id, EncKeyBits: e.bits, Integrity: hashes[h].auth, PFSGroup: g})
			}
		}
	}
}

// espEncryption is one ESP encryption algorithm: its transform ID and key
// length in bits.
type espEncryption struct {
	id   uint8
	bits int
}

// p2Encryption reads the phase 2 encryption list (absent: AWS's list).
func (b *tunnelDecoder) p2Encryption(o *object, encs []item, eset bool, encAllowed []string) []espEncryption {
	var es []espEncryption
	if !eset {
		for _, s := range AWSPhase2Encryption {
			id, k, _ := parseAWSEnc(s)
			es = append(es, espEncryption{id, k})
		}
		return es
	}
	if len(encs) == 0 {
		b.d.errf(o.line("encryption"), o.p("encryption"), "must not be empty")
	}
	seen := map[espEncryption]bool{}
	for _, it := range encs {
		id, k, ok := parseAWSEnc(it.s)
		switch {
		case !ok || !containsFold(encAllowed, it.s):
			b.d.errf(it.n, o.p("encryption"), "%s is not allowed (allowed: %s)", it.s, strings.Join(encAllowed, ", "))
		case seen[espEncryption{id, k}]:
			b.d.errf(it.n, o.p("encryption"), "%s is listed twice", it.s)
		default:
			seen[espEncryption{id, k}] = true
			es = append(es, espEncryption{id, k})
		}
	}
	return es
}
