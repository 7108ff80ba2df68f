package export

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/internal/libreswan"
)

// TestFormats: the vgw formats (containerlab registers itself from package
// export/containerlab, whose test checks it).
func TestFormats(t *testing.T) {
	want := "strongswan libreswan bird frr vpnlab generic"
	if got := strings.Join(Formats(), " "); got != want {
		t.Errorf("Formats() = %q, want %q", got, want)
	}
	for f, in := range map[string]string{"strongswan": InputVGW, "generic": InputVGW, "containerlab": "", "cisco": ""} {
		if got := Input(f); got != in {
			t.Errorf("Input(%s) = %q, want %q", f, got, in)
		}
	}
}

// needTool finds a program or fails (CI) / skips with the reason.
func needTool(t *testing.T, why string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if lp, err := exec.LookPath(p); err == nil {
			return lp
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed: %s", paths[0], why)
	}
	t.Skipf("%s not installed: %s", paths[0], why)
	return ""
}

// libreswanTools returns the directory of Libreswan's addconn and algparse
// (internal/libreswan: installed, or the package extracted).
func libreswanTools(t *testing.T) string {
	t.Helper()
	bin, err := libreswan.Bin("addconn")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Libreswan's parser: %v", err)
		}
		t.Skipf("Libreswan's parser: %v", err)
	}
	return filepath.Dir(bin)
}

func TestLibreswan(t *testing.T) {
	p := writeVGW(t, testVGW)
	fs := files(t, "libreswan", p, Options{Connections: []string{"vpn-a"}, CustomerAddress: "10.99.0.2", IKEVersion: policy.IKEv1})
	conf, ok := fs["ipsec.conf"]
	sec, ok2 := fs["ipsec.secrets.example"]
	if !ok || !ok2 || len(fs) != 2 || sec.Mode != 0o644 {
		t.Fatalf("files %v", keys(fs))
	}
	text := string(conf.Data)
	hasLines(t, "ipsec.conf", text,
		"ikev1-policy=accept", "conn a1", "conn a2", "ikev2=no", "aggressive=no", "authby=secret",
		"left=10.99.0.2", "leftid=198.51.100.2", "right=203.0.113.10", "rightid=203.0.113.10",
		"leftsubnet=0.0.0.0/0", "rightsubnet=0.0.0.0/0",
		"ikelifetime=28800s", "salifetime=3600s", "rekeymargin=270s", "rekeyfuzz=100%", "replay-window=1024",
		"dpddelay=10s", "dpdtimeout=40s", "dpdaction=restart", "encapsulation=auto", "auto=start",
		"ipsec-interface=1", "ipsec-interface=2", "pfs=yes",
		"ike=aes256-sha2_256-modp2048", "esp=aes_gcm256-null-modp2048",
		"ikelifetime=14400s", "salifetime=1800s", "rekeymargin=120s", "rekeyfuzz=50%", "dpdtimeout=30s",
	)
	// a1: AWS's defaults minus what Libreswan's IKEv1 cannot do (AES-GCM;
	// DH 2, 22-24 of the 12 AWS groups; one MODP PFS group: 14).
	ikeA1 := lineValueEq(text, "ike")
	if n := len(strings.Split(ikeA1, ",")); n != 2*4*8 || strings.Contains(ikeA1, "modp1024") || !strings.Contains(ikeA1, "aes256-sha2_512-ecp521") {
		t.Errorf("a1 ike= has %d proposals: %s", n, ikeA1)
	}
	espA1 := lineValueEq(text, "esp")
	if n := len(strings.Split(espA1, ",")); n != 10 || !strings.Contains(espA1, "aes128-sha1-modp2048,") || !strings.Contains(espA1, "aes_gcm128-null-modp2048") {
		t.Errorf("a1 esp= has %d proposals: %s", n, espA1)
	}
	noSecrets(t, fs)
	if s := string(sec.Data); !strings.Contains(s, `# 198.51.100.2 203.0.113.10 : PSK "PRE-SHARED-KEY"`) || !strings.Contains(s, "a1.psk (the vgw's psk_file)") {
		t.Errorf("ipsec.secrets.example:\n%s", s)
	}

	// Libreswan's own parser: the file (addconn --checkconfig) and every
	// ike=/esp= list (algparse -v1, IKEv1 with PFS).
	tools := libreswanTools(t)
	f := filepath.Join(t.TempDir(), "ipsec.conf")
	os.WriteFile(f, conf.Data, 0o644)
	if out, err := exec.Command(filepath.Join(tools, "addconn"), "--checkconfig", "--config", f).CombinedOutput(); err != nil {
		t.Errorf("addconn --checkconfig: %v\n%s", err, out)
	}
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "ike=") && !strings.HasPrefix(l, "esp=") {
			continue
		}
		l, _, _ = strings.Cut(l, "  #")
		if out, err := exec.Command(filepath.Join(tools, "algparse"), "-v1", "-pfs=yes", l).CombinedOutput(); err != nil || strings.Contains(string(out), "ERROR") {
			t.Errorf("algparse -v1 %s: %v\n%s", l[:min(len(l), 80)], err, out)
		}
	}
	// The checker does catch errors.
	os.WriteFile(f, append(conf.Data, []byte("\tno-such-keyword=1\n")...), 0o644)
	if err := exec.Command(filepath.Join(tools, "addconn"), "--checkconfig", "--config", f).Run(); err == nil {
		t.Error("addconn --checkconfig accepted an unknown keyword")
	}

	// With secrets: ipsec.secrets, 0600, one line per tunnel.
	fs = files(t, "libreswan", p, Options{IncludeSecrets: true})
	s, ok := fs["ipsec.secrets"]
	if !ok || s.Mode != 0o600 || !strings.Contains(string(s.Data), `198.51.100.2 203.0.113.30 : PSK "`+pskB1+`"`) {
		t.Errorf("ipsec.secrets: %v mode %o\n%s", ok, s.Mode, s.Data)
	}
}

func TestLibreswanRefuses(t *testing.T) {
	cfg := strings.Replace(staticVGW, "    static_routes: [10.10.0.0/16]\n", "    static_routes: [10.10.0.0/16]\n    phase1: {dh_groups: [2, 22]}\n", 1)
	p := writeVGW(t, cfg)
	if _, err := Export("libreswan", p, Options{}); err == nil || !strings.Contains(err.Error(), "tunnel s1: none of the vgw's phase 1 proposals") {
		t.Errorf("DH 2/22 only: %v", err)
	}
	cfg = strings.Replace(staticVGW, "    static_routes: [10.10.0.0/16]\n", "    static_routes: [10.10.0.0/16]\n    phase2: {pfs_groups: [19, 20]}\n", 1)
	p = writeVGW(t, cfg)
	if _, err := Export("libreswan", p, Options{IKEVersion: policy.IKEv1}); err == nil || !strings.Contains(err.Error(), "with IKEv1 (ESP, one MODP PFS group") {
		t.Errorf("ECP PFS only: %v", err)
	}
	// IKEv2 ESP takes an ECP group.
	fs := files(t, "libreswan", p, Options{})
	if esp := lineValueEq(string(fs["ipsec.conf"].Data), "esp"); !strings.HasSuffix(esp, "-ecp256") {
		t.Errorf("IKEv2 with ECP PFS: esp=%s", esp)
	}
	cfg = strings.Replace(staticVGW, "    static_routes: [10.10.0.0/16]\n", "    static_routes: [10.10.0.0/16]\n    phase1: {dh_groups: [2, 22]}\n", 1)
	if _, err := Export("libreswan", writeVGW(t, cfg), Options{IKEVersion: policy.IKEv2}); err == nil || !strings.Contains(err.Error(), "can be done by Libreswan with IKEv2") {
		t.Errorf("IKEv2, DH 2/22 only: %v", err)
	}
}

// lineValueEq returns the value of the first "key=value" line.
func lineValueEq(text, key string) string {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), key+"="); ok {
			v, _, _ = strings.Cut(v, "  #")
			return v
		}
	}
	return ""
}

func TestFRR(t *testing.T) {
	p := writeVGW(t, testVGW)
	fs := files(t, "frr", p, Options{Advertise: []string{"10.10.0.0/16"}})
	f, ok := fs["frr.conf"]
	if !ok || len(fs) != 1 {
		t.Fatalf("files %v", keys(fs))
	}
	text := string(f.Data)
	hasLines(t, "frr.conf", text,
		"router bgp 65000", "bgp router-id 169.254.10.2", "no bgp network import-check",
		"ip prefix-list CUSTOMER-PREFIXES seq 5 permit 10.10.0.0/16",
		"neighbor 169.254.10.1 remote-as 64512", "neighbor 169.254.10.1 update-source 169.254.10.2",
		"neighbor 169.254.10.1 timers 10 30", "neighbor 169.254.11.1 remote-as 64512",
		"neighbor 169.254.12.1 local-as 65010 no-prepend replace-as",
		"network 10.10.0.0/16", "neighbor 169.254.12.1 route-map AWS-OUT out", "neighbor 169.254.11.1 activate",
	)
	vtysh := needTool(t, "FRR's parser (apt-get install frr)", "vtysh")
	file := filepath.Join(t.TempDir(), "frr.conf")
	os.WriteFile(file, f.Data, 0o644)
	if out, err := exec.Command(vtysh, "--dryrun", "-f", file).CombinedOutput(); err != nil {
		t.Errorf("vtysh --dryrun: %v\n%s", err, out)
	}
	os.WriteFile(file, append(f.Data, []byte("router bgp 65000\n neighbor 169.254.10.1 no-such-option\n")...), 0o644)
	if err := exec.Command(vtysh, "--dryrun", "-f", file).Run(); err == nil {
		t.Error("vtysh --dryrun accepted a bad line")
	}
	// No prefixes: a deny-all list, still valid.
	fs = files(t, "frr", p, Options{Connections: []string{"vpn-a"}})
	os.WriteFile(file, fs["frr.conf"].Data, 0o644)
	if out, err := exec.Command(vtysh, "--dryrun", "-f", file).CombinedOutput(); err != nil || !strings.Contains(string(fs["frr.conf"].Data), "seq 5 deny any") {
		t.Errorf("vtysh --dryrun without prefixes: %v\n%s", err, out)
	}
}

func TestVPNLab(t *testing.T) {
	p := writeVGW(t, testVGW)
	fs := files(t, "vpnlab", p, Options{Connections: []string{"vpn-a"}, CustomerAddress: "10.99.0.2", Advertise: []string{"10.10.0.0/16"}})
	f, ok := fs["cgw.yaml"]
	if !ok || len(fs) != 1 {
		t.Fatalf("files %v", keys(fs))
	}
	noSecrets(t, fs)
	dir := filepath.Dir(p) // the psk_file references are absolute: load it from elsewhere
	other := filepath.Join(t.TempDir(), "cgw.yaml")
	os.WriteFile(other, f.Data, 0o600)
	cfg, err := gwconfig.LoadCGW(other)
	if err != nil {
		t.Fatalf("gwconfig rejects the exported cgw.yaml: %v\n%s", err, f.Data)
	}
	vgw, err := gwconfig.LoadVGW(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.IKE.Tunnels) != 2 || cfg.BGP == nil || cfg.BGP.ASN != 65000 || cfg.BGP.PeerASN != 64512 || len(cfg.BGP.Advertise) != 1 {
		t.Fatalf("cgw: %s", cfg.Describe())
	}
	for i, ct := range cfg.IKE.Tunnels {
		vt := vgw.IKE.Tunnels[i]
		switch {
		case ct.LocalAddr.String() != "10.99.0.2" || ct.LocalID != vt.RemoteAddr || ct.RemoteAddr != vt.LocalAddr:
			t.Errorf("%s: addresses %s id %s -> %s", ct.Name, ct.LocalAddr, ct.LocalID, ct.RemoteAddr)
		case string(ct.PSK) != string(vt.PSK):
			t.Errorf("%s: the psk_file reference does not give the vgw's key (dir %s)", ct.Name, dir)
		case strings.Join(gwconfig.Phase1Names(ct.Phase1.Proposals), " ") != strings.Join(gwconfig.Phase1Names(vt.Phase1.Proposals), " "),
			strings.Join(gwconfig.Phase2Names(ct.Phase2.Proposals), " ") != strings.Join(gwconfig.Phase2Names(vt.Phase2.Proposals), " "):
			t.Errorf("%s: proposals differ from the vgw's", ct.Name)
		case ct.Phase1.Lifetime != vt.Phase1.Lifetime || ct.Phase2.Lifetime != vt.Phase2.Lifetime || ct.RekeyMargin != vt.RekeyMargin || ct.RekeyFuzz != vt.RekeyFuzz:
			t.Errorf("%s: lifetimes/rekey differ", ct.Name)
		case ct.DPDDelay != vt.DPDDelay || ct.DPDTimeout != vt.DPDTimeout || ct.DPDAction != policy.DPDRestart || ct.StartupAction != policy.StartupStart:
			t.Errorf("%s: DPD %v/%v %v startup %v", ct.Name, ct.DPDDelay, ct.DPDTimeout, ct.DPDAction, ct.StartupAction)
		case cfg.Tunnels[i].Inside != vgw.Tunnels[i].Inside || cfg.Tunnels[i].LocalInside.Addr() != vgw.Tunnels[i].PeerInside:
			t.Errorf("%s: inside %s", ct.Name, cfg.Tunnels[i].Describe())
		}
	}

	// With secrets: key files of mode 0600 next to cgw.yaml.
	fs = files(t, "vpnlab", p, Options{Connections: []string{"vpn-b"}, IncludeSecrets: true})
	k, ok := fs["b1.psk"]
	if !ok || k.Mode != 0o600 || string(k.Data) != pskB1+"\n" || !strings.Contains(string(fs["cgw.yaml"].Data), "psk_file: b1.psk") {
		t.Errorf("b1.psk: %v mode %o", ok, k.Mode)
	}
	// Different customer ASNs cannot go into one cgw.yaml.
	if _, err := Export("vpnlab", p, Options{}); err == nil || !strings.Contains(err.Error(), "different customer ASNs") {
		t.Errorf("two ASNs: %v", err)
	}
	// Static routing: the VPC prefix as static route.
	sfs := files(t, "vpnlab", writeVGW(t, staticVGW), Options{})
	hasLines(t, "static cgw.yaml", string(sfs["cgw.yaml"].Data), "routing: {mode: static}", "static_routes: [172.31.0.0/16]")
}

func TestGeneric(t *testing.T) {
	p := writeVGW(t, testVGW)
	fs := files(t, "generic", p, Options{Advertise: []string{"10.10.0.0/16"}, IKEVersion: policy.IKEv1})
	f, ok := fs["vpn-parameters.txt"]
	if !ok || f.Mode != 0o644 {
		t.Fatalf("files %v", keys(fs))
	}
	noSecrets(t, fs)
	text := string(f.Data)
	for _, s := range []string{
		"Tunnel a1 of VPN connection vpn-a", "Tunnel b1 of VPN connection vpn-b",
		"AWS endpoint:              203.0.113.10",
		"Version:                   IKEv1, main mode",
		"DH groups:                 2, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24",
		"Proposals:                 all 96 combinations of the above",
		"Encryption:                AES256-GCM-16", "PFS groups:                14",
		"Lifetime:                  14400s", "start 120s before expiry, plus up to 50%",
		"peer dead 30s after its last packet",
		"Inside addresses:          ours 169.254.10.2/30, AWS's 169.254.10.1/30",
		"Our ASN:                   65010", "AWS's ASN:                 64512",
		"Hold time / keepalive:     30 s / 10 s", "Announce:                  10.10.0.0/16",
		"AWS announces:             172.31.0.0/16, 172.32.0.0/16",
		"with these proposals at most 1422, or 1406 with NAT-T", // a1: AES-CBC + SHA2-512
		"with these proposals at most 1446, or 1438 with NAT-T", // a2: AES-GCM only
		"a1.psk (the vgw's psk_file)", "environment variable EXPORT_TEST_PSK",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("sheet lacks %q", s)
		}
	}
	// IKEv2 (the default where the tunnel allows it): AES-GCM too, whose
	// hash is the PRF.
	text = string(files(t, "generic", p, Options{})["vpn-parameters.txt"].Data)
	for _, s := range []string{
		"Version:                   IKEv2 (IKEv2, which AWS recommends; the AWS tunnel allows ikev1, ikev2 (--ike-version ikev1 for IKEv1))",
		"Encryption:                AES128, AES256, AES128-GCM-16, AES256-GCM-16 (AES alone is CBC)",
		"Integrity and PRF:         SHA1, SHA2-256, SHA2-384, SHA2-512 (HMAC; with AES-GCM the PRF only, no integrity)",
		"Proposals:                 all 192 combinations of the above",
		"Encryption:                AES256 (CBC)", // a2: its own list
	} {
		if !strings.Contains(text, s) {
			t.Errorf("IKEv2 sheet lacks %q", s)
		}
	}
	text = string(files(t, "generic", writeVGW(t, staticVGW+"    ike_versions: [ikev2]\n    phase1: {encryption: [AES256-GCM-16], integrity: [SHA2-384], dh_groups: [20]}\n"), Options{})["vpn-parameters.txt"].Data)
	for _, s := range []string{
		"Version:                   IKEv2 (ikev2: the only version the AWS tunnel allows)",
		"Encryption:                AES256-GCM-16\n", "PRF:                       SHA2-384 (HMAC; no integrity with AES-GCM)",
		"Proposals:                 all 1 combinations of the above",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("GCM-only sheet lacks %q:\n%s", s, text)
		}
	}

	fs = files(t, "generic", p, Options{IncludeSecrets: true})
	if f := fs["vpn-parameters.txt"]; f.Mode != 0o600 || !strings.Contains(string(f.Data), "Pre-shared key:            "+pskA2) {
		t.Errorf("with secrets: mode %o", f.Mode)
	}
}

// TestMTU: the ESP overhead arithmetic gives AWS's MTU/MSS table
// (AWSUG your-cgw.md, anchors 1.1).
func TestMTU(t *testing.T) {
	cbc := func(bits int, integ uint16) policy.Phase2Proposal {
		return policy.Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: bits, Integrity: integ}
	}
	gcm := policy.Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKeyBits: 128}
	for _, c := range []struct {
		name string
		p    policy.Phase2Proposal
		natt bool
		mtu  int
	}{
		{"AES-GCM", gcm, false, 1446},
		{"AES-GCM NAT-T", gcm, true, 1438},
		{"AES-CBC SHA1", cbc(128, isakmp.AuthHMACSHA1), false, 1438},
		{"AES-CBC SHA2-256", cbc(256, isakmp.AuthHMACSHA2256), false, 1438},
		{"AES-CBC SHA1 NAT-T", cbc(128, isakmp.AuthHMACSHA1), true, 1422},
		{"AES-CBC SHA2-256 NAT-T", cbc(128, isakmp.AuthHMACSHA2256), true, 1422},
		{"AES-CBC SHA2-512 NAT-T", cbc(256, isakmp.AuthHMACSHA2512), true, 1406},
	} {
		if got := innerMTU(c.p, c.natt); got != c.mtu {
			t.Errorf("%s: MTU %d, want %d (MSS %d)", c.name, got, c.mtu, c.mtu-40)
		}
	}
	if got := tunnelMTU([]policy.Phase2Proposal{gcm, cbc(256, isakmp.AuthHMACSHA2512)}, true); got != 1406 {
		t.Errorf("tunnel MTU %d, want the smaller 1406", got)
	}
	if AWSMaxMTU != innerMTU(gcm, false) || AWSMaxMSS != AWSMaxMTU-40 {
		t.Error("AWS's maximum is AES-GCM without NAT-T")
	}
}
