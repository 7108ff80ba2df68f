package export

import (
	"crypto"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// Libreswan (4.x, as in Debian 12): Diffie-Hellman groups 2 (modp1024) and
// 22-24 are not supported, with IKEv1 and IKEv2; IKEv1 quick mode takes
// exactly one PFS group, which must be MODP (no ECP with IKEv1 ESP); IKEv2
// ESP takes ECP groups too. AES-GCM for the IKE SA is IKEv2 only. Checked
// with Libreswan 4.10's algparse -v1 and -v2.
var (
	lsIKEGroups   = []uint16{5, 14, 15, 16, 17, 18, 19, 20, 21}
	lsPFSGroups   = []uint16{5, 14, 15, 16, 17, 18}
	lsPFSGroupsV2 = []uint16{5, 14, 15, 16, 17, 18, 19, 20, 21}
)

// lsGroup is the Libreswan name of a DH group.
var lsGroup = map[uint16]string{
	5: "modp1536", 14: "modp2048", 15: "modp3072", 16: "modp4096", 17: "modp6144", 18: "modp8192",
	19: "ecp256", 20: "ecp384", 21: "ecp521",
}

// lsHash is the Libreswan name of a phase 1 hash (HMAC integrity and PRF).
var lsHash = map[crypto.Hash]string{crypto.SHA1: "sha1", crypto.SHA256: "sha2_256", crypto.SHA384: "sha2_384", crypto.SHA512: "sha2_512"}

// lsInteg is the Libreswan name of a hash / HMAC (by strongSwan name).
var lsInteg = map[string]string{"sha1": "sha1", "sha256": "sha2_256", "sha384": "sha2_384", "sha512": "sha2_512"}

func genLibreswan(m *model) ([]File, error) {
	var conf, sec strings.Builder
	conf.WriteString(m.header("#", "Libreswan ipsec.conf: IKEv2 or IKEv1 (main mode) with pre-shared keys, route-based (XFRM ipsec-interface).", false))
	conf.WriteString(`# For Libreswan 4.x (Debian 12: 4.10). Libreswan 5 spells ikev2=insist as
# keyexchange=ikev2 and ikev2=no as keyexchange=ikev1. Pre-shared keys:
# ipsec.secrets.

config setup
	# IKEv1 packets are dropped unless accepted (Libreswan 4.10 and later)
	ikev1-policy=accept
`)
	sec.WriteString(m.header("#", "Libreswan ipsec.secrets: one pre-shared key per tunnel (identities: ours, AWS's).", true))
	for _, t := range m.tunnels {
		if err := lsConn(m, t, &conf); err != nil {
			return nil, err
		}
		if m.opts.IncludeSecrets {
			if strings.ContainsAny(string(t.psk), "\"\n") {
				return nil, fmt.Errorf("tunnel %s: the pre-shared key has a quote or newline, which ipsec.secrets cannot hold", t.name)
			}
			fmt.Fprintf(&sec, "%s %s : PSK \"%s\"\n", t.cgwID, t.awsID, string(t.psk))
		} else {
			fmt.Fprintf(&sec, "# tunnel %s: the key is in %s\n# %s %s : PSK \"PRE-SHARED-KEY\"\n", t.name, t.pskSource(), t.cgwID, t.awsID)
		}
	}
	secName, secMode := "ipsec.secrets.example", fs.FileMode(0o644)
	if m.opts.IncludeSecrets {
		secName, secMode = "ipsec.secrets", 0o600
	}
	return []File{
		{Name: "ipsec.conf", Mode: 0o644, Data: []byte(conf.String())},
		{Name: secName, Mode: secMode, Data: []byte(sec.String())},
	}, nil
}

// lsProposals returns the ike= and esp= values for t: the vgw's proposals
// that Libreswan can do, and the PFS group chosen (0: none).
func lsProposals(t *tunnel) (ikeList, espList []string, pfs uint16, err error) {
	v := t.vgw
	for _, p := range t.phase1For() {
		if !slices.Contains(lsIKEGroups, p.DHGroup) {
			continue
		}
		// aesN-HASH-GROUP; with AES-GCM (IKEv2) aes_gcmN-PRF-GROUP: "the
		// second argument to an AEAD algorithm denotes the PRF"
		// (Libreswan 4.10's ipsec.conf(5), ike=), there is no integrity.
		enc := fmt.Sprintf("aes%d", p.EncKeyBits)
		if p.GCM {
			enc = fmt.Sprintf("aes_gcm%d", p.EncKeyBits)
		}
		ikeList = append(ikeList, fmt.Sprintf("%s-%s-%s", enc, lsHash[p.Hash], lsGroup[p.DHGroup]))
	}
	pfsGroups, ver := lsPFSGroups, "IKEv1"
	if t.version == policy.IKEv2 {
		pfsGroups, ver = lsPFSGroupsV2, "IKEv2"
	}
	// One PFS group for all of quick mode: modp2048 if the vgw allows it,
	// else the first the vgw lists that Libreswan can do.
	var groups []uint16
	for _, p := range v.Phase2.Proposals {
		if !slices.Contains(groups, p.PFSGroup) {
			groups = append(groups, p.PFSGroup)
		}
	}
	switch {
	case slices.Contains(groups, 14):
		pfs = 14
	case slices.Contains(groups, 0):
		pfs = 0
	default:
		pfs = 0xffff
		for _, g := range groups {
			if slices.Contains(pfsGroups, g) {
				pfs = g
				break
			}
		}
	}
	for _, p := range v.Phase2.Proposals {
		if p.Protocol != isakmp.ProtoESP || p.PFSGroup != pfs {
			continue
		}
		var s string
		switch p.Encryption {
		case isakmp.ESPAESCBC:
			// "esp-aesN-HASH[-GROUP]"
			s = fmt.Sprintf("aes%d-%s", p.EncKeyBits, lsInteg[strings.Split(gwconfig.FormatPhase2(p), "-")[2]])
		case isakmp.ESPAESGCM16:
			s = fmt.Sprintf("aes_gcm%d-null", p.EncKeyBits)
		default:
			continue
		}
		if pfs != 0 {
			s += "-" + lsGroup[pfs]
		}
		espList = append(espList, s)
	}
	switch {
	case len(ikeList) == 0:
		note := ""
		if ver == "IKEv1" {
			note = "; AES-GCM with IKEv2 only"
		}
		err = fmt.Errorf("tunnel %s: none of the vgw's phase 1 proposals (%s) can be done by Libreswan with %s (DH groups %s%s)", t.name,
			strings.Join(gwconfig.Phase1Names(v.Phase1.Proposals), ", "), ver, groupList(lsIKEGroups), note)
	case len(espList) == 0:
		kind := "one MODP PFS group"
		if ver == "IKEv2" {
			kind = "one PFS group"
		}
		err = fmt.Errorf("tunnel %s: none of the vgw's phase 2 proposals (%s) can be done by Libreswan with %s (ESP, %s of %s)", t.name,
			strings.Join(gwconfig.Phase2Names(v.Phase2.Proposals), ", "), ver, kind, groupList(pfsGroups))
	}
	return ikeList, espList, pfs, err
}

func groupList(gs []uint16) string {
	s := make([]string, len(gs))
	for i, g := range gs {
		s[i] = fmt.Sprint(g)
	}
	return strings.Join(s, ", ")
}

func lsConn(m *model, t *tunnel, b *strings.Builder) error {
	v := t.vgw
	if v.Phase2.Mode != childsa.ModeTunnel {
		return fmt.Errorf("tunnel %s: phase 2 mode %s: this export writes tunnel mode (AWS's) only", t.name, v.Phase2.Mode)
	}
	ikeList, espList, pfs, err := lsProposals(t)
	if err != nil {
		return err
	}
	iface := t.index + 1
	fmt.Fprintf(b, "\n# tunnel %s%s: AWS %s, this gateway %s", t.name, connSuffix(t), t.awsAddr, t.cgwLocal)
	if t.natted() {
		fmt.Fprintf(b, " (AWS sees %s)", t.cgwPublic)
	}
	fmt.Fprintf(b, ".\n# Route-based: the SA is bound to the XFRM interface ipsec%d; put the inside\n# address on it and route through it", iface)
	if t.cgwInside.IsValid() {
		fmt.Fprintf(b, ":\n#   ip addr add %s dev ipsec%d", t.cgwInside, iface)
	}
	if m.static {
		for _, p := range m.vpc {
			fmt.Fprintf(b, "\n#   ip route add %s dev ipsec%d metric %d", p, iface, 100+t.index)
		}
	} else {
		b.WriteString("\n# (BGP: the bird or frr export)")
	}
	b.WriteString("\n")
	w := func(k, val, comment string) {
		fmt.Fprintf(b, "\t%s=%s", k, val)
		if comment != "" {
			fmt.Fprintf(b, "  # %s", comment)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "# IKE version: %s.\n", t.versionWhy(m.opts))
	fmt.Fprintf(b, "conn %s\n", t.name)
	if t.version == policy.IKEv2 {
		// Libreswan 4.10's ipsec.conf(5): yes (the default) accepts only
		// IKEv2, and insist, an older keyword, "is now interpreted as
		// yes"; older versions' propose and permit allowed either version.
		w("ikev2", "insist", "IKEv2 only")
	} else {
		w("ikev2", "no", "IKEv1")
		w("aggressive", "no", "AWS: main mode only")
	}
	w("authby", "secret", "")
	w("type", "tunnel", "")
	w("left", t.cgwLocal.String(), "")
	w("leftid", t.cgwID.String(), "")
	w("leftsubnet", v.Phase2.RemoteTS.String(), "")
	w("right", t.awsAddr.String(), "")
	w("rightid", t.awsID.String(), "")
	w("rightsubnet", v.Phase2.LocalTS.String(), "one SA pair per tunnel, as AWS")
	if t.awsPorts.IKE != 500 {
		w("rightikeport", fmt.Sprint(t.awsPorts.IKE), "the vgw's IKE port")
	}
	w("ike", strings.Join(ikeList, ","), "the vgw's proposals Libreswan can do")
	w("esp", strings.Join(espList, ","), "")
	if pfs != 0 {
		w("pfs", "yes", fmt.Sprintf("PFS group %d (one group for all proposals)", pfs))
	} else {
		w("pfs", "no", "")
	}
	w("ikelifetime", secs(v.Phase1.Lifetime), "")
	w("salifetime", secs(v.Phase2.Lifetime), "")
	w("rekeymargin", secs(v.RekeyMargin), "")
	w("rekeyfuzz", fmt.Sprintf("%d%%", v.RekeyFuzz), "")
	w("replay-window", fmt.Sprint(v.Phase2.ReplayWindow), "")
	if v.DPDTimeout > 0 {
		w("dpddelay", secs(v.DPDDelay), "")
		w("dpdtimeout", secs(v.DPDTimeout), "")
		w("dpdaction", "restart", "")
	}
	if v.NATT {
		w("encapsulation", "auto", "NAT-T when a NAT is detected")
	} else {
		w("encapsulation", "no", "the vgw has nat_traversal off")
	}
	w("keyingtries", "%forever", "")
	w("ipsec-interface", fmt.Sprint(iface), "")
	w("auto", "start", t.startComment())
	return nil
}
