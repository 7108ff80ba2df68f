package export

import (
	"crypto"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// genGeneric writes the plain-text parameter sheet for a device without
// its own format: per tunnel every value to type into it.
func genGeneric(m *model) ([]File, error) {
	var b strings.Builder
	b.WriteString(m.header("#", "Customer gateway parameters (generic device), one section per tunnel.", true))
	for _, t := range m.tunnels {
		genericTunnel(m, t, &b)
	}
	return []File{{Name: "vpn-parameters.txt", Mode: genericMode(m), Data: []byte(b.String())}}, nil
}

func genericMode(m *model) fs.FileMode {
	if m.opts.IncludeSecrets {
		return 0o600
	}
	return 0o644
}

// AWS-style algorithm names.
var (
	awsHash = map[crypto.Hash]string{crypto.SHA1: "SHA1", crypto.SHA256: "SHA2-256", crypto.SHA384: "SHA2-384", crypto.SHA512: "SHA2-512"}
	awsAuth = map[uint16]string{isakmp.AuthHMACSHA1: "SHA1", isakmp.AuthHMACSHA2256: "SHA2-256", isakmp.AuthHMACSHA2384: "SHA2-384", isakmp.AuthHMACSHA2512: "SHA2-512"}
)

func p2Enc(p policy.Phase2Proposal) string {
	switch p.Encryption {
	case isakmp.ESPAESCBC:
		return fmt.Sprintf("AES%d", p.EncKeyBits)
	case isakmp.ESPAESGCM16:
		return fmt.Sprintf("AES%d-GCM-16", p.EncKeyBits)
	case isakmp.ESPNull:
		return "NULL"
	}
	return "none (AH)"
}

// addUniq appends s to l unless it is there.
func addUniq(l []string, s string) []string {
	if s == "" || slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}

func groupsText(gs []uint16) string {
	if len(gs) == 0 {
		return "none"
	}
	return groupList(gs)
}

func genericTunnel(m *model, t *tunnel, b *strings.Builder) {
	v := t.vgw
	row := func(k, val string) { fmt.Fprintf(b, "  %-26s %s\n", k+":", val) }
	title := fmt.Sprintf("Tunnel %s%s", t.name, connSuffix(t))
	fmt.Fprintf(b, "\n%s\n%s\n", title, strings.Repeat("=", len(title)))

	b.WriteString("Outside addresses\n")
	cg := t.cgwPublic.String()
	if t.natted() {
		cg += fmt.Sprintf(" (as AWS sees it; the gateway itself sends from %s, behind NAT)", t.cgwLocal)
	}
	row("Customer gateway", cg)
	row("AWS endpoint", t.awsAddr.String())
	row("IKE ports", fmt.Sprintf("UDP %d, and %d for NAT traversal (open both, and ESP (IP protocol 50) without NAT)", t.awsPorts.IKE, t.awsPorts.NATT))

	b.WriteString("IKE (phase 1)\n")
	if t.version == policy.IKEv2 {
		row("Version", "IKEv2 ("+t.versionWhy(m.opts)+")")
	} else {
		row("Version", "IKEv1, main mode (aggressive mode is refused) ("+t.versionWhy(m.opts)+")")
	}
	row("Authentication", "pre-shared key")
	if m.opts.IncludeSecrets {
		row("Pre-shared key", string(t.psk))
	} else {
		row("Pre-shared key", "from "+t.pskSource())
	}
	row("Identities", fmt.Sprintf("ours ID_IPV4_ADDR %s, AWS's ID_IPV4_ADDR %s", t.cgwID, t.awsID))
	genericPhase1(t, row, b)
	row("Lifetime", secs(v.Phase1.Lifetime))
	row("Proposal choice", "AWS takes, among those offered, the one with the lowest values (whatever the order)")

	b.WriteString("IPsec (phase 2)\n")
	row("Protocol and mode", "ESP, tunnel mode")
	var p2enc, p2int []string
	var pfs []uint16
	for _, p := range v.Phase2.Proposals {
		p2enc = addUniq(p2enc, p2Enc(p))
		p2int = addUniq(p2int, awsAuth[p.Integrity])
		if !slices.Contains(pfs, p.PFSGroup) {
			pfs = append(pfs, p.PFSGroup)
		}
	}
	row("Encryption", strings.Join(p2enc, ", "))
	row("Integrity", strings.Join(p2int, ", ")+" (HMAC; none with GCM)")
	row("PFS groups", groupsText(pfs))
	row("Lifetime", secs(v.Phase2.Lifetime)+lifetimeKB(v))
	row("Traffic selectors", fmt.Sprintf("ours %s, AWS's %s (one SA pair per tunnel)", v.Phase2.RemoteTS, v.Phase2.LocalTS))
	row("Replay window", fmt.Sprintf("%d packets", v.Phase2.ReplayWindow))
	row("Rekey", fmt.Sprintf("start %s before expiry, plus up to %d%% of that at random (AWS's margin and fuzz)", secs(v.RekeyMargin), v.RekeyFuzz))

	b.WriteString("Dead peer detection (RFC 3706) and NAT traversal\n")
	if v.DPDTimeout > 0 {
		row("DPD", fmt.Sprintf("R-U-THERE after %s without traffic; peer dead %s after its last packet; action on the gateway: restart", secs(v.DPDDelay), secs(v.DPDTimeout)))
		row("AWS's DPD action", v.DPDAction.String())
	} else {
		row("DPD", "off on the AWS side")
	}
	if v.NATT {
		row("NAT traversal", "RFC 3947 / 3948: ESP in UDP 4500 when a NAT is detected; NAT keepalives every 20 s")
	} else {
		row("NAT traversal", "off on the AWS side: the gateway must not be behind a NAT")
	}

	genericRouting(m, t, row, b)

	plain, udp := tunnelMTU(v.Phase2.Proposals, false), tunnelMTU(v.Phase2.Proposals, true)
	b.WriteString("MTU and TCP MSS\n")
	row("Interface MTU", fmt.Sprintf("%d (AWS's recommendation); with these proposals at most %d, or %d with NAT-T (ESP in UDP)", AWSInterfaceMTU, plain, udp))
	row("TCP MSS clamp", fmt.Sprintf("%d (interface MTU - 40); at most %d, or %d with NAT-T", AWSInterfaceMTU-40, plain-40, udp-40))
	row("Fragmentation", "fragment before encryption; AWS does no path MTU discovery and no jumbo frames")
}

// genericPhase1 lists the phase 1 algorithms of the tunnel's version: the
// AES-GCM ones only with IKEv2, where the hash of a GCM proposal is its PRF
// (no integrity, RFC 5282) and that of a CBC one both integrity and PRF.
func genericPhase1(t *tunnel, row func(k, v string), b *strings.Builder) {
	ps := t.phase1For()
	var encs, hashes []string
	var groups []uint16
	gcm, cbc := false, false
	for _, p := range ps {
		if p.GCM {
			encs, gcm = addUniq(encs, fmt.Sprintf("AES%d-GCM-16", p.EncKeyBits)), true
		} else {
			encs, cbc = addUniq(encs, fmt.Sprintf("AES%d", p.EncKeyBits)), true
		}
		hashes = addUniq(hashes, awsHash[p.Hash])
		if !slices.Contains(groups, p.DHGroup) {
			groups = append(groups, p.DHGroup)
		}
	}
	switch {
	case gcm && cbc:
		row("Encryption", strings.Join(encs, ", ")+" (AES alone is CBC)")
		row("Integrity and PRF", strings.Join(hashes, ", ")+" (HMAC; with AES-GCM the PRF only, no integrity)")
	case gcm:
		row("Encryption", strings.Join(encs, ", "))
		row("PRF", strings.Join(hashes, ", ")+" (HMAC; no integrity with AES-GCM)")
	default:
		row("Encryption", strings.Join(encs, ", ")+" (CBC)")
		row("Integrity and PRF", strings.Join(hashes, ", ")+" (HMAC)")
	}
	row("DH groups", groupsText(groups))
	comb(b, len(encs)*len(hashes)*len(groups), gwconfig.Phase1Names(ps))
}

// comb lists the proposals when they are not every combination of the
// sets above.
func comb(b *strings.Builder, product int, names []string) {
	if len(names) == product {
		fmt.Fprintf(b, "  %-26s all %d combinations of the above\n", "Proposals:", product)
		return
	}
	fmt.Fprintf(b, "  %-26s %s\n", "Proposals (exactly):", strings.Join(names, ", "))
}

func lifetimeKB(v *policy.Tunnel) string {
	if v.Phase2.LifetimeKB == 0 {
		return ""
	}
	return fmt.Sprintf(" or %d KB", v.Phase2.LifetimeKB)
}

func genericRouting(m *model, t *tunnel, row func(k, v string), b *strings.Builder) {
	b.WriteString("Routing\n")
	if t.inside.IsValid() {
		row("Inside addresses", fmt.Sprintf("ours %s, AWS's %s/30 (on the tunnel interface)", t.cgwInside, t.awsInside))
	}
	if m.static || t.cgwASN == 0 {
		row("Type", "static")
		row("Routes via this tunnel", prefixOrNone(m.vpc, "the VPC prefixes (not in the vgw configuration)"))
		row("AWS routes to us", prefixOrNone(m.advertise, "the static routes of the VPN connection"))
		return
	}
	row("Type", "BGP (eBGP over the inside addresses)")
	row("Our ASN", fmt.Sprint(t.cgwASN))
	row("AWS's ASN", fmt.Sprint(m.bgp.ASN))
	row("Neighbor", fmt.Sprintf("%s, TCP port %d, source %s", t.awsInside, m.bgp.Port, t.cgwInside.Addr()))
	row("Hold time / keepalive", fmt.Sprintf("%d s / %d s", int(m.bgp.HoldTime/time.Second), int(m.bgp.Keepalive/time.Second)))
	row("Announce", prefixOrNone(m.advertise, "the customer's prefixes (at most 100)"))
	row("AWS announces", prefixOrNone(m.vpc, "the VPC prefixes"))
}

func prefixOrNone(ps []netip.Prefix, what string) string {
	if len(ps) == 0 {
		return what
	}
	return strings.Join(prefixStrings(ps), ", ")
}
