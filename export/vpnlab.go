package export

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// genVPNLab writes a cgw.yaml for this project's customer gateway (cmd/cgw,
// `vpnlab gateway cgw`), checked by gwconfig's cgw parser before it is
// returned. With IncludeSecrets each tunnel's key goes into TUNNEL.psk
// (mode 0600, psk_file relative to cgw.yaml); otherwise the tunnel refers
// to the vgw's own psk_file or psk_env.
func genVPNLab(m *model) ([]File, error) {
	var b strings.Builder
	b.WriteString(m.header("#", "vpnlab customer gateway configuration (cmd/cgw --config cgw.yaml; docs/config.md).", true))
	b.WriteString("log: {format: text, level: info}\n")
	b.WriteString("data_path: {tun: vpnlab0}   # the tunnels' inside addresses go on this TUN device\n")
	var files []File
	if m.static {
		b.WriteString("routing: {mode: static}\n")
	} else {
		asn, err := commonASN(m)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "routing: {mode: bgp}\nbgp:\n  asn: %d\n  peer_asn: %d\n  hold_time: %ds\n  keepalive: %ds\n",
			asn, m.bgp.ASN, int(m.bgp.HoldTime/time.Second), int(m.bgp.Keepalive/time.Second))
		if m.bgp.Port != 179 {
			fmt.Fprintf(&b, "  port: %d\n", m.bgp.Port)
		}
		fmt.Fprintf(&b, "  advertise: [%s]\n", strings.Join(prefixStrings(m.advertise), ", "))
	}
	b.WriteString("tunnels:\n")
	for _, t := range m.tunnels {
		psk, f, err := vpnlabPSK(m, t)
		if err != nil {
			return nil, err
		}
		if f != nil {
			files = append(files, *f)
		}
		vpnlabTunnel(m, t, psk, &b)
	}
	data := []byte(b.String())
	if err := checkCGW(data, files); err != nil {
		return nil, err
	}
	return append(files, File{Name: "cgw.yaml", Mode: 0o644, Data: data}), nil
}

// commonASN is the customer ASN of the BGP tunnels: the cgw configuration
// has one.
func commonASN(m *model) (uint32, error) {
	var asn uint32
	for _, t := range m.tunnels {
		if t.cgwASN == 0 {
			continue
		}
		if asn != 0 && t.cgwASN != asn {
			return 0, fmt.Errorf("the selected tunnels expect different customer ASNs (%d, %d): a vpnlab cgw has one; export one connection at a time (--connection)", asn, t.cgwASN)
		}
		asn = t.cgwASN
	}
	if asn == 0 {
		asn = m.bgp.PeerASN
	}
	return asn, nil
}

// vpnlabPSK returns the tunnel's psk_file/psk_env line and, with secrets,
// the key file.
func vpnlabPSK(m *model, t *tunnel) (string, *File, error) {
	if m.opts.IncludeSecrets {
		name := t.name + ".psk"
		return "psk_file: " + name, &File{Name: name, Mode: 0o600, Data: append([]byte(string(t.psk)), '\n')}, nil
	}
	k, v, ok := strings.Cut(t.pskRef, " ")
	if !ok {
		return "", nil, fmt.Errorf("tunnel %s: cannot tell where the vgw takes its pre-shared key from; use --include-secrets", t.name)
	}
	return fmt.Sprintf("%s: %s", k, yamlQuote(v)), nil, nil
}

func yamlQuote(s string) string { return fmt.Sprintf("%q", s) }

func vpnlabTunnel(m *model, t *tunnel, psk string, b *strings.Builder) {
	v := t.vgw
	fmt.Fprintf(b, "  - name: %s\n", t.name)
	if t.connection != "" {
		fmt.Fprintf(b, "    connection: %s\n", t.connection)
	}
	fmt.Fprintf(b, "    local_address: %s\n", t.cgwLocal)
	if t.cgwID != t.cgwLocal {
		fmt.Fprintf(b, "    local_id: %s   # the address AWS sees\n", t.cgwID)
	}
	fmt.Fprintf(b, "    remote_address: %s\n", t.awsAddr)
	if t.awsID != t.awsAddr {
		fmt.Fprintf(b, "    remote_id: %s\n", t.awsID)
	}
	if t.awsPorts.IKE != 500 {
		fmt.Fprintf(b, "    remote_port: %d\n", t.awsPorts.IKE)
	}
	if t.awsPorts.NATT != 4500 {
		fmt.Fprintf(b, "    remote_natt_port: %d\n", t.awsPorts.NATT)
	}
	fmt.Fprintf(b, "    %s\n", psk)
	fmt.Fprintf(b, "    ike_versions: [%s]   # %s\n", strings.Join(gwconfig.VersionNames(vpnlabVersions(t)), ", "), t.versionWhy(m.opts))
	fmt.Fprintf(b, "    startup_action: start   # %s\n", t.startComment())
	if t.version == policy.IKEv1 {
		b.WriteString("    ike_mode: main\n")
	}
	fmt.Fprintf(b, "    phase1:\n      proposals: [%s]\n      lifetime: %s\n", strings.Join(gwconfig.Phase1Names(t.phase1For()), ", "), secs(v.Phase1.Lifetime))
	fmt.Fprintf(b, "    phase2:\n      proposals: [%s]\n      lifetime: %s\n", strings.Join(gwconfig.Phase2Names(v.Phase2.Proposals), ", "), secs(v.Phase2.Lifetime))
	if v.Phase2.LifetimeKB > 0 {
		fmt.Fprintf(b, "      lifetime_kb: %d\n", v.Phase2.LifetimeKB)
	}
	if v.Phase2.Mode == childsa.ModeTransport {
		b.WriteString("      mode: transport\n")
	}
	fmt.Fprintf(b, "    local_ts: %s\n    remote_ts: %s\n", v.Phase2.RemoteTS, v.Phase2.LocalTS)
	fmt.Fprintf(b, "    rekey_margin: %s\n    rekey_fuzz: %d\n    replay_window: %d\n", secs(v.RekeyMargin), v.RekeyFuzz, v.Phase2.ReplayWindow)
	if v.DPDTimeout > 0 {
		fmt.Fprintf(b, "    dpd: {delay: %s, timeout: %s, action: restart}\n", secs(v.DPDDelay), secs(v.DPDTimeout))
	} else {
		b.WriteString("    dpd: {action: none}\n")
	}
	fmt.Fprintf(b, "    nat_traversal: %t\n", v.NATT)
	if t.inside.IsValid() {
		fmt.Fprintf(b, "    inside_cidr: %s   # we are %s, AWS %s\n", t.inside, t.cgwInside.Addr(), t.awsInside)
	}
	if m.static && len(m.vpc) > 0 {
		fmt.Fprintf(b, "    static_routes: [%s]\n", strings.Join(prefixStrings(m.vpc), ", "))
	}
}

// vpnlabVersions are the cgw's ike_versions: the exported version, and
// IKEv2 after IKEv1 where AWS initiates too (it does so with IKEv2 only).
func vpnlabVersions(t *tunnel) []policy.Version {
	if t.version == policy.IKEv1 && t.vgw.StartupAction == policy.StartupStart && t.vgw.Allows(policy.IKEv2) {
		return []policy.Version{policy.IKEv1, policy.IKEv2}
	}
	return []policy.Version{t.version}
}

// checkCGW loads the generated configuration with gwconfig's cgw profile
// from a temporary directory (with the key files beside it), so that an
// export the cgw would refuse is an error here, not at the customer's.
func checkCGW(data []byte, keyFiles []File) error {
	dir, err := os.MkdirTemp("", "vpnlab-export-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, f := range keyFiles {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o600); err != nil {
			return err
		}
	}
	p := filepath.Join(dir, "cgw.yaml")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return err
	}
	if _, err := gwconfig.LoadCGW(p); err != nil {
		return fmt.Errorf("the generated cgw.yaml does not pass the cgw's checks: %w", err)
	}
	return nil
}
