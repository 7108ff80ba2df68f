package export

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// The strongswan format targets a Linux customer gateway whose kernel has no
// IPsec data plane, so charon does ESP itself with kernel-libipsec (a TUN
// device per charon, ESP in UDP only). One TUN cannot carry two tunnels
// whose CHILD_SAs both have AWS's 0.0.0.0/0 selectors (libipsec picks the SA
// by policy, not by route), so every tunnel gets its own charon instance
// and directory: route-based, the routes (BGP or static) choose the TUN and
// so the tunnel. Files per tunnel, meant to be installed under
// SwanctlRoot (e.g. /etc/swanctl/tunnel1/...):
//
//	TUNNEL/strongswan.conf   charon settings of this instance (plugins, ports, routing table, vici socket)
//	TUNNEL/swanctl.conf      the IKEv2 or IKEv1 connection and its secret (an include of secrets.conf)
//	TUNNEL/updown.sh         puts the inside address (and static routes) on this charon's TUN device
//	TUNNEL/secrets.conf      the PSK (only with IncludeSecrets; otherwise secrets.conf.example)

// SwanctlRoot is where the strongswan files are meant to be installed; the
// swanctl.conf files refer to their updown scripts by absolute path below
// it.
const SwanctlRoot = "/etc/swanctl"

// swanPlugins is charon's plugin load list: Debian's relative order for the
// crypto plugins (the first plugin offering an algorithm wins),
// kernel-libipsec before kernel-netlink (the first kernel-ipsec backend
// wins; kernel-netlink then only handles addresses and routes), and updown.
var swanPlugins = []string{
	"aesni", "aes", "sha2", "sha1", "random", "nonce", "x509", "pubkey", "pkcs1", "pem",
	"openssl", "gmp", "hmac", "kdf", "gcm", "kernel-libipsec", "kernel-netlink", "socket-default", "vici", "updown",
}

// Ports and routing tables of the instances: the first charon uses the
// standard ports, the next ones 1500/14500, 2500/24500... (two charons in
// one network namespace cannot bind the same ports; NAT-T floats them to
// the vgw's 4500 anyway).
const maxSwanInstances = 6

func swanPorts(i int) (ike, natt int) {
	if i == 0 {
		return 500, 4500
	}
	return 500 + 1000*i, 4500 + 10000*i
}

func genStrongSwan(m *model) ([]File, error) {
	if len(m.tunnels) > maxSwanInstances {
		return nil, fmt.Errorf("%d tunnels selected: at most %d charon instances (one per tunnel) fit the port scheme; select fewer connections", len(m.tunnels), maxSwanInstances)
	}
	var files []File
	for _, t := range m.tunnels {
		if err := swanCheck(m, t); err != nil {
			return nil, err
		}
		dir := t.name + "/"
		files = append(files,
			File{Name: dir + "strongswan.conf", Mode: 0o644, Data: []byte(swanConf(m, t))},
			File{Name: dir + "swanctl.conf", Mode: 0o644, Data: []byte(swanctlConf(m, t))},
			File{Name: dir + "updown.sh", Mode: 0o755, Data: []byte(swanUpdown(m, t))},
		)
		if m.opts.IncludeSecrets {
			files = append(files, File{Name: dir + "secrets.conf", Mode: 0o600, Data: []byte(swanSecret(m, t, true))})
		} else {
			files = append(files, File{Name: dir + "secrets.conf.example", Mode: 0o644, Data: []byte(swanSecret(m, t, false))})
		}
	}
	return files, nil
}

// swanCheck refuses what a kernel-libipsec charon cannot do.
func swanCheck(m *model, t *tunnel) error {
	v := t.vgw
	switch {
	case t.name == "." || t.name == "..":
		return fmt.Errorf("tunnel %q: the name is a directory of its files; rename the tunnel", t.name)
	case !v.NATT:
		return fmt.Errorf("tunnel %s: nat_traversal is off on the vgw, but kernel-libipsec sends ESP in UDP only", t.name)
	case t.awsPorts.NATT != 4500:
		return fmt.Errorf("tunnel %s: the vgw's natt_port is %d; strongSwan always floats to the peer's port 4500", t.name, t.awsPorts.NATT)
	case v.Phase2.Mode != childsa.ModeTunnel:
		return fmt.Errorf("tunnel %s: phase 2 mode %s; kernel-libipsec does tunnel mode only", t.name, v.Phase2.Mode)
	}
	for _, p := range v.Phase2.Proposals {
		if p.Protocol != isakmp.ProtoESP {
			return fmt.Errorf("tunnel %s: phase 2 proposal %s: kernel-libipsec does ESP only", t.name, gwconfig.FormatPhase2(p))
		}
	}
	if strings.ContainsAny(string(t.psk), "\"\\\n") {
		return errors.New("tunnel " + t.name + ": the pre-shared key has a quote, backslash or newline, which swanctl.conf cannot hold")
	}
	return nil
}

func swanConf(m *model, t *tunnel) string {
	port, natt := swanPorts(t.index)
	var b strings.Builder
	b.WriteString(m.header("#", fmt.Sprintf("strongswan.conf of the charon instance of tunnel %s (kernel-libipsec).", t.name), false))
	fmt.Fprintf(&b, `# One charon per tunnel. charon's pid file (/run/charon.pid) is compiled in,
# so each instance runs in its own mount namespace with a private /run:
#   mkdir -p /run/charon-%[2]s
#   unshare -m sh -c 'mount --bind /run/charon-%[2]s /run &&
#     STRONGSWAN_CONF=%[1]s/%[2]s/strongswan.conf exec /usr/lib/ipsec/charon' &
#   swanctl --load-all --file %[1]s/%[2]s/swanctl.conf --uri unix://%[1]s/%[2]s/charon.vici
charon {
  # explicit plugin list: kernel-libipsec must come before kernel-netlink
  load = %[3]s
  # IKE ports of this instance (two charons cannot share a port)
  port = %[4]d
  port_nat_t = %[5]d
  # kernel-libipsec routes every CHILD_SA's remote selector (0.0.0.0/0) via
  # its TUN device in this table; the rule sits behind the main table
  # (32766) so that the BGP or static routes in main choose the tunnel
  install_routes = yes
  routing_table = %[6]d
  routing_table_prio = %[7]d
  install_virtual_ip = no
  plugins {
    vici {
      # outside /run: reachable from outside the mount namespace
      socket = unix://%[1]s/%[2]s/charon.vici
    }
  }
}
`, SwanctlRoot, t.name, strings.Join(swanPlugins, " "), port, natt, 220+t.index, 32800+t.index)
	return b.String()
}

// secs formats a duration as whole seconds in swanctl syntax.
func secs(d time.Duration) string { return fmt.Sprintf("%ds", int64(d/time.Second)) }

// swanProposals are the vgw's phase 1 proposals for the tunnel's version in
// strongSwan syntax: aes128-sha256-modp2048 (with IKEv2 the HMAC is the
// integrity and, strongSwan adding it, the PRF), aes256gcm16-prfsha256-modp2048.
func swanProposals(t *tunnel) []string { return gwconfig.Phase1Names(t.phase1For()) }

// swanESP are the vgw's phase 2 ESP proposals in strongSwan syntax (the
// trailing group is PFS).
func swanESP(v *policy.Tunnel) []string {
	var s []string
	for _, p := range v.Phase2.Proposals {
		s = append(s, strings.TrimPrefix(gwconfig.FormatPhase2(p), "esp-"))
	}
	return s
}

// rekeyTimes returns strongSwan's rekey (or reauth) time and rand_time for
// a lifetime: rekey at lifetime - margin, minus up to margin * fuzz %
// (AWS: the rekey instant is random in the margin window).
func rekeyTimes(life, margin time.Duration, fuzz int) (rekey, rand time.Duration) {
	return life - margin, margin * time.Duration(fuzz) / 100
}

func swanctlConf(m *model, t *tunnel) string {
	v := t.vgw
	ikev2 := t.version == policy.IKEv2
	var b strings.Builder
	what := "IKEv1 main mode"
	if ikev2 {
		what = "IKEv2"
	}
	b.WriteString(m.header("#", fmt.Sprintf("swanctl.conf of tunnel %s%s: %s with pre-shared key, route-based.", t.name, connSuffix(t), what), true))
	fmt.Fprintf(&b, "# AWS endpoint %s; this customer gateway sends from %s", t.awsAddr, t.cgwLocal)
	if t.natted() {
		fmt.Fprintf(&b, " (AWS sees %s: behind NAT)", t.cgwPublic)
	}
	b.WriteString(".\n")
	fmt.Fprintf(&b, "# IKE version: %s.\n", t.versionWhy(m.opts))
	prekey, prand := rekeyTimes(v.Phase1.Lifetime, v.RekeyMargin, v.RekeyFuzz)
	crekey, crand := rekeyTimes(v.Phase2.Lifetime, v.RekeyMargin, v.RekeyFuzz)
	w := func(indent int, k, val, comment string) {
		fmt.Fprintf(&b, "%s%s = %s", strings.Repeat("  ", indent), k, val)
		if comment != "" {
			fmt.Fprintf(&b, "  # %s", comment)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "connections {\n  %s {\n", t.name)
	if ikev2 {
		w(2, "version", "2", "IKEv2 (RFC 7296)")
	} else {
		w(2, "version", "1", "IKEv1")
		w(2, "aggressive", "no", "AWS: main mode only")
	}
	w(2, "local_addrs", t.cgwLocal.String(), "")
	w(2, "remote_addrs", t.awsAddr.String(), "")
	if t.awsPorts.IKE != 500 {
		w(2, "remote_port", fmt.Sprint(t.awsPorts.IKE), "the vgw's IKE port")
	}
	w(2, "proposals", strings.Join(swanProposals(t), ","), "what the vgw accepts ("+v.Phase1.Selection.String()+" selection)")
	w(2, "encap", "yes", "ESP in UDP 4500 (kernel-libipsec needs it; NAT-T)")
	if ikev2 {
		w(2, "mobike", "no", "one fixed address pair per tunnel")
	}
	if v.DPDTimeout > 0 {
		w(2, "dpd_delay", secs(v.DPDDelay), "probe after this much silence (RFC 3706; IKEv2: an empty INFORMATIONAL)")
		if ikev2 {
			b.WriteString("    # no dpd_timeout: with IKEv2 the peer is dead when the probe's retransmissions time out\n")
		} else {
			w(2, "dpd_timeout", secs(v.DPDTimeout), "peer dead after this much silence, as the vgw")
		}
	}
	if ikev2 {
		w(2, "rekey_time", secs(prekey), fmt.Sprintf("IKE SA rekey: phase 1 lifetime %s - rekey margin %s", secs(v.Phase1.Lifetime), secs(v.RekeyMargin)))
		w(2, "reauth_time", "0s", "no reauthentication: IKEv2 rekeys the IKE SA")
	} else {
		w(2, "rekey_time", "0s", "IKEv1 renews the ISAKMP SA by reauthentication")
		w(2, "reauth_time", secs(prekey), fmt.Sprintf("phase 1 lifetime %s - rekey margin %s", secs(v.Phase1.Lifetime), secs(v.RekeyMargin)))
	}
	w(2, "over_time", secs(v.RekeyMargin), "hard lifetime = rekey/reauth time + over_time = the vgw's")
	w(2, "rand_time", secs(prand), fmt.Sprintf("rekey fuzz %d%% of the margin", v.RekeyFuzz))
	w(2, "keyingtries", "0", "retry forever")
	fmt.Fprintf(&b, "    local {\n      auth = psk\n      id = %s\n    }\n", t.cgwID)
	fmt.Fprintf(&b, "    remote {\n      auth = psk\n      id = %s\n    }\n", t.awsID)
	fmt.Fprintf(&b, "    children {\n      %s {\n", t.name)
	w(4, "local_ts", v.Phase2.RemoteTS.String(), "")
	w(4, "remote_ts", v.Phase2.LocalTS.String(), "one SA pair per tunnel, as AWS")
	w(4, "mode", "tunnel", "")
	espWhy := "the trailing group is PFS"
	if ikev2 {
		espWhy = "the trailing group is PFS (CREATE_CHILD_SA; the first CHILD_SA comes with IKE_AUTH)"
	}
	w(4, "esp_proposals", strings.Join(swanESP(v), ","), espWhy)
	w(4, "life_time", secs(v.Phase2.Lifetime), "")
	w(4, "rekey_time", secs(crekey), "")
	w(4, "rand_time", secs(crand), "")
	if v.Phase2.LifetimeKB > 0 {
		w(4, "life_bytes", fmt.Sprint(v.Phase2.LifetimeKB*1024), "")
	}
	w(4, "replay_window", fmt.Sprint(v.Phase2.ReplayWindow), "")
	w(4, "start_action", "start", t.startComment())
	w(4, "dpd_action", "restart", "")
	w(4, "close_action", "start", "re-initiate when AWS deletes the SA")
	w(4, "updown", SwanctlRoot+"/"+t.name+"/updown.sh", "")
	b.WriteString("      }\n    }\n  }\n}\n")
	fmt.Fprintf(&b, "secrets {\n  ike-%s {\n    id-1 = %s\n    id-2 = %s\n", t.name, t.cgwID, t.awsID)
	fmt.Fprintf(&b, "    # secret = \"...\": the pre-shared key, from %s\n", t.pskSource())
	b.WriteString("    include secrets.conf\n  }\n}\n")
	return b.String()
}

func connSuffix(t *tunnel) string {
	if t.connection == "" {
		return ""
	}
	return " of VPN connection " + t.connection
}

func swanSecret(m *model, t *tunnel, include bool) string {
	var b strings.Builder
	if include {
		fmt.Fprintf(&b, "# The pre-shared key of tunnel %s (included by swanctl.conf). Keep this file private.\n", t.name)
		fmt.Fprintf(&b, "secret = \"%s\"\n", string(t.psk))
		return b.String()
	}
	fmt.Fprintf(&b, "# Copy to secrets.conf (mode 0600) with the pre-shared key of tunnel %s,\n", t.name)
	fmt.Fprintf(&b, "# taken from %s:\n", t.pskSource())
	b.WriteString("# secret = \"PRE-SHARED-KEY\"\n")
	return b.String()
}

func swanUpdown(m *model, t *tunnel) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString(m.header("#", fmt.Sprintf("strongSwan updown script of tunnel %s: route-based glue for kernel-libipsec.", t.name), false))
	var routes []string
	if m.static {
		routes = prefixStrings(m.vpc)
	}
	inside := ""
	if t.cgwInside.IsValid() {
		inside = t.cgwInside.String()
	}
	fmt.Fprintf(&b, `# charon runs it (PLUTO_VERB=up-client/down-client) when the tunnel's
# CHILD_SA comes up or goes down. It finds this charon's TUN device (the
# tun fd charon holds) and puts the tunnel's inside address on it (the BGP
# session runs between the inside addresses)%s.
INSIDE="%s"
ROUTES="%s"
METRIC=%d

charon_pid() {
	p=$$
	while [ -n "$p" ] && [ "$p" -gt 1 ]; do
		if [ "$(cat /proc/"$p"/comm 2>/dev/null)" = charon ]; then
			echo "$p"
			return
		fi
		p=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/"$p"/status 2>/dev/null)
	done
}

pid=$(charon_pid)
tun=""
if [ -n "$pid" ]; then
	tun=$(cat /proc/"$pid"/fdinfo/* 2>/dev/null | sed -n 's/^iff:[[:space:]]*//p' | head -n 1)
fi
if [ -z "$tun" ]; then
	echo "updown %s: cannot find the TUN device of this charon (kernel-libipsec loaded?)" >&2
	exit 1
fi

case "${PLUTO_VERB:-}" in
up-client|up-host)
	ip link set dev "$tun" up
	if [ -n "$INSIDE" ]; then
		ip addr replace "$INSIDE" dev "$tun"
	fi
	for r in $ROUTES; do
		ip route replace "$r" dev "$tun" metric "$METRIC"
	done
	;;
down-client|down-host)
	for r in $ROUTES; do
		ip route del "$r" dev "$tun" metric "$METRIC" 2>/dev/null
	done
	if [ -n "$INSIDE" ]; then
		ip addr del "$INSIDE" dev "$tun" 2>/dev/null
	fi
	;;
esac
exit 0
`, staticNote(m), inside, strings.Join(routes, " "), 100+t.index, t.name)
	return b.String()
}

func staticNote(m *model) string {
	if !m.static {
		return ""
	}
	return "\n# and routes the prefixes behind AWS into it (static routing; the metric\n# prefers the first tunnel while it is up)"
}
