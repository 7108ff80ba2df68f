package export

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// TestIKEVersionChoice: IKEv2 where the tunnel allows it unless asked
// otherwise; an impossible request is an error that names the tunnel.
func TestIKEVersionChoice(t *testing.T) {
	v1only := strings.Replace(staticVGW, "    psk_file: a2.psk\n", "    psk_file: a2.psk\n    ike_versions: [ikev1]\n", 1)
	v2only := strings.Replace(staticVGW, "    psk_file: a2.psk\n", "    psk_file: a2.psk\n    ike_versions: [ikev2]\n", 1)
	version := func(fs map[string]File, tunnel string) string {
		return lineValue(string(fs[tunnel+"/swanctl.conf"].Data), "version")
	}
	for _, c := range []struct {
		name   string
		cfg    string
		opts   Options
		s1, s2 string // swanctl version of each tunnel
	}{
		{"default: IKEv2 where allowed", v1only, Options{}, "2", "1"},
		{"prefer IKEv1", v2only, Options{PreferIKEv1: true}, "1", "2"},
		{"ask IKEv1", staticVGW, Options{IKEVersion: policy.IKEv1}, "1", "1"},
		{"ask IKEv2", staticVGW, Options{IKEVersion: policy.IKEv2}, "2", "2"},
	} {
		fs := files(t, "strongswan", writeVGW(t, c.cfg), c.opts)
		if v1, v2 := version(fs, "s1"), version(fs, "s2"); v1 != c.s1 || v2 != c.s2 {
			t.Errorf("%s: versions %s %s, want %s %s", c.name, v1, v2, c.s1, c.s2)
		}
	}
	for _, c := range []struct {
		cfg  string
		opts Options
		want string
	}{
		{v1only, Options{IKEVersion: policy.IKEv2}, "tunnel s2: IKE version ikev2 was asked for, but the vgw tunnel allows ikev1 only (its ike_versions)"},
		{v2only, Options{IKEVersion: policy.IKEv1}, "tunnel s2: IKE version ikev1 was asked for, but the vgw tunnel allows ikev2 only"},
		{staticVGW, Options{IKEVersion: 3}, "IKE version ikev3: want ikev1 or ikev2"},
	} {
		if _, err := Export("generic", writeVGW(t, c.cfg), c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.opts, err, c.want)
		}
	}
}

// TestStrongSwanIKEv2: the swanctl.conf of an IKEv2 tunnel: version 2, the
// AES-GCM proposals in strongSwan's AEAD syntax, the IKE SA rekeyed (not
// reauthenticated), no IKEv1-only keys.
func TestStrongSwanIKEv2(t *testing.T) {
	p := writeVGW(t, testVGW)
	fs := files(t, "strongswan", p, Options{Connections: []string{"vpn-a"}, CustomerAddress: "10.99.0.2"})
	a1 := string(fs["a1/swanctl.conf"].Data)
	hasLines(t, "a1/swanctl.conf", a1,
		"version = 2", "mobike = no", "encap = yes", "dpd_delay = 10s",
		"rekey_time = 28530s", "reauth_time = 0s", "over_time = 270s", "rand_time = 270s",
		"life_time = 3600s", "rekey_time = 3330s", "start_action = start", "dpd_action = restart")
	for _, k := range []string{"aggressive", "dpd_timeout"} {
		if lineValue(a1, k) != "" {
			t.Errorf("IKEv2 swanctl.conf has %s", k)
		}
	}
	if !strings.Contains(a1, "# IKE version: IKEv2, which AWS recommends; the AWS tunnel allows ikev1, ikev2") {
		t.Errorf("no reason for the version:\n%s", a1)
	}
	props := strings.Split(lineValue(a1, "proposals"), ",")
	if len(props) != 4*4*12 || props[0] != "aes128-sha1-modp1024" || props[96] != "aes128gcm16-prfsha1-modp1024" || props[191] != "aes256gcm16-prfsha512-modp2048s256" {
		t.Errorf("a1 proposals: %d: %v", len(props), props)
	}
	// Every name is one the vgw's own parser reads back as the vgw's proposal.
	vgw, err := gwconfig.LoadVGW(p)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range props {
		if q, err := gwconfig.ParsePhase1Proposal(s); err != nil || q != vgw.IKE.Tunnels[0].Phase1.Proposals[i] {
			t.Errorf("proposal %d %s: %+v %v", i, s, q, err)
		}
	}
	// AWS initiates too: the comment says so.
	p = writeVGW(t, strings.Replace(testVGW, "    psk_file: a1.psk\n", "    psk_file: a1.psk\n    startup_action: start\n", 1))
	a1 = string(files(t, "strongswan", p, Options{Connections: []string{"vpn-a"}})["a1/swanctl.conf"].Data)
	if !strings.Contains(a1, "start_action = start  # AWS initiates too (startup action start)") {
		t.Errorf("startup start:\n%s", a1)
	}
}

// TestLibreswanIKEv2: ikev2=insist (the keyword Libreswan 4.10 accepts),
// the AES-GCM IKE proposals, and Libreswan's own parsers on the file
// (addconn --checkconfig) and on every ike=/esp= list (algparse -v2).
func TestLibreswanIKEv2(t *testing.T) {
	p := writeVGW(t, testVGW)
	conf := files(t, "libreswan", p, Options{Connections: []string{"vpn-a"}, CustomerAddress: "10.99.0.2"})["ipsec.conf"].Data
	text := string(conf)
	hasLines(t, "ipsec.conf", text, "ikev2=insist", "auto=start", "ike=aes256-sha2_256-modp2048", "esp=aes_gcm256-null-modp2048")
	if lineValueEq(text, "aggressive") != "" || strings.Count(text, "\tikev2=insist") != 2 {
		t.Errorf("IKEv1 keys in an IKEv2 conn:\n%s", text)
	}
	// a1: AWS's 4 ciphers x 4 hashes x the 8 of AWS's groups Libreswan can do (14-21).
	ike := strings.Split(lineValueEq(text, "ike"), ",")
	if len(ike) != 4*4*8 || ike[0] != "aes128-sha1-modp2048" || ike[len(ike)-1] != "aes_gcm256-sha2_512-ecp521" {
		t.Errorf("a1 ike= %d: %v", len(ike), ike)
	}
	tools := libreswanTools(t)
	f := filepath.Join(t.TempDir(), "ipsec.conf")
	os.WriteFile(f, conf, 0o644)
	if out, err := exec.Command(filepath.Join(tools, "addconn"), "--checkconfig", "--config", f).CombinedOutput(); err != nil {
		t.Errorf("addconn --checkconfig: %v\n%s", err, out)
	}
	n := 0
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "ike=") && !strings.HasPrefix(l, "esp=") {
			continue
		}
		l, _, _ = strings.Cut(l, "  #")
		out, err := exec.Command(filepath.Join(tools, "algparse"), "-v2", "-pfs=yes", l).CombinedOutput()
		if err != nil || strings.Contains(string(out), "ERROR") {
			t.Errorf("algparse -v2 %s: %v\n%s", l[:min(len(l), 80)], err, out)
		}
		if strings.HasPrefix(l, "ike=aes128-sha1") && !strings.Contains(string(out), "AES_GCM_16_256-HMAC_SHA2_512-DH21") {
			t.Errorf("algparse -v2 does not list the AES-GCM proposal:\n%s", out)
		}
		n++
	}
	if n != 4 {
		t.Errorf("%d ike=/esp= lines, want 4", n)
	}
	// The checker does refuse a bad ikev2= value (and Libreswan 5's
	// keyexchange=ikev2, so the file must say ikev2=insist for 4.x).
	for _, bad := range []string{"ikev2=bogus", "keyexchange=ikev2"} {
		os.WriteFile(f, []byte(strings.Replace(text, "\tikev2=insist", "\t"+bad, 1)), 0o644)
		if err := exec.Command(filepath.Join(tools, "addconn"), "--checkconfig", "--config", f).Run(); err == nil {
			t.Errorf("addconn --checkconfig accepted %s", bad)
		}
	}
}

// TestVPNLabIKEVersions: the exported cgw.yaml names the version, and the
// cgw's parser takes it (GCM proposals only with IKEv2).
func TestVPNLabIKEVersions(t *testing.T) {
	p := writeVGW(t, testVGW)
	for _, c := range []struct {
		opts  Options
		want  []policy.Version
		props int
	}{
		{Options{Connections: []string{"vpn-b"}, IncludeSecrets: true}, []policy.Version{policy.IKEv2}, 192},
		{Options{Connections: []string{"vpn-b"}, IncludeSecrets: true, IKEVersion: policy.IKEv1}, []policy.Version{policy.IKEv1}, 96},
	} {
		fs := files(t, "vpnlab", p, c.opts)
		dir := t.TempDir()
		for n, f := range fs {
			os.WriteFile(filepath.Join(dir, n), f.Data, 0o600)
		}
		cfg, err := gwconfig.LoadCGW(filepath.Join(dir, "cgw.yaml"))
		if err != nil {
			t.Fatalf("%v: %v\n%s", c.opts.IKEVersion, err, fs["cgw.yaml"].Data)
		}
		ct := cfg.IKE.Tunnels[0]
		if len(ct.IKEVersions) != len(c.want) || ct.IKEVersions[0] != c.want[0] || len(ct.Phase1.Proposals) != c.props {
			t.Errorf("%v: versions %v, %d proposals", c.opts.IKEVersion, ct.IKEVersions, len(ct.Phase1.Proposals))
		}
	}
	// IKEv1 asked for where AWS starts (with IKEv2): the cgw answers IKEv2 too.
	p = writeVGW(t, strings.Replace(testVGW, "    psk_env: EXPORT_TEST_PSK\n", "    psk_env: EXPORT_TEST_PSK\n    startup_action: start\n", 1))
	y := string(files(t, "vpnlab", p, Options{Connections: []string{"vpn-b"}, IKEVersion: policy.IKEv1})["cgw.yaml"].Data)
	hasLines(t, "cgw.yaml", y, "ike_versions: [ikev1, ikev2]", "ike_mode: main")
}

// TestExportRefusesNameIdentities: a vgw tunnel with an FQDN or KEY_ID
// identity would be exported with its addresses as identities, and the
// customer's IKE_AUTH would fail on the identity: export refuses it and
// says which identity.
func TestExportRefusesNameIdentities(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"    local_id: vpn.example.com\n", "tunnel s2: local_id (AWS's identity) is the fqdn identity vpn.example.com"},
		{"    remote_id: \"@#0102\"\n", "tunnel s2: remote_id (the customer's identity) is the keyid identity @#0102"},
	} {
		cfg := strings.Replace(staticVGW, "    psk_file: a2.psk\n", "    psk_file: a2.psk\n    ike_versions: [ikev2]\n"+c.line, 1)
		if _, err := Export("strongswan", writeVGW(t, cfg), Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.line, err, c.want)
		}
	}
}
