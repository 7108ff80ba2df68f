package gwconfig

import (
	"crypto"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

const testPSK = "Sup3rSecretKey.value_42"

// minimal returns a one-tunnel config with extra lines appended to the
// tunnel (indented by the caller with 4 spaces).
func minimal(extra string) string {
	return `tunnels:
  - name: tunnel1
    local_address: 203.0.113.10
    remote_address: 198.51.100.2
    psk_env: VPNLAB_TEST_PSK
` + extra
}

func parse(t *testing.T, profile Profile, yml string) (*Config, error) {
	t.Helper()
	t.Setenv("VPNLAB_TEST_PSK", testPSK)
	return Parse([]byte(yml), profile, "test.yaml")
}

func mustParse(t *testing.T, profile Profile, yml string) *Config {
	t.Helper()
	c, err := parse(t, profile, yml)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// wantErr parses and checks that the error text contains every fragment.
func wantErr(t *testing.T, profile Profile, yml string, frags ...string) error {
	t.Helper()
	_, err := parse(t, profile, yml)
	if err == nil {
		t.Fatalf("Parse succeeded; want error containing %q", frags)
	}
	for _, f := range frags {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not contain %q", err, f)
		}
	}
	if strings.Contains(err.Error(), testPSK) {
		t.Errorf("error contains the PSK: %q", err)
	}
	return err
}

func TestVGWDefaultsAreAWS(t *testing.T) {
	c := mustParse(t, VGW, minimal(""))
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	if c.Log != (Log{Format: "text", Level: "info"}) || c.Control.Enabled() || c.KeyLog != "" || c.LabTimers {
		t.Errorf("process defaults: %+v %+v %q %v", c.Log, c.Control, c.KeyLog, c.LabTimers)
	}
	if c.IKE.Ports != policy.DefaultPorts || c.IKE.RetransmitTimeout != 4*time.Second || c.IKE.RetransmitBase != 1.8 ||
		c.IKE.RetransmitTries != 5 || c.IKE.MaxHalfOpen != 1024 {
		t.Errorf("ike defaults: %+v", c.IKE)
	}
	tc := c.IKE.Tunnels[0]
	any4 := netip.MustParsePrefix("0.0.0.0/0")
	if tc.LocalID != tc.LocalAddr || tc.RemoteID != tc.RemoteAddr || tc.RemotePorts != policy.DefaultPorts {
		t.Errorf("ids/ports: %v %v %v", tc.LocalID, tc.RemoteID, tc.RemotePorts)
	}
	if string(tc.PSK) != testPSK {
		t.Errorf("psk not loaded")
	}
	if tc.StartupAction != policy.StartupAdd || tc.Phase1.Exchange != policy.MainMode || tc.Phase1.AllowAggressive {
		t.Errorf("startup/mode: %v %v %v", tc.StartupAction, tc.Phase1.Exchange, tc.Phase1.AllowAggressive)
	}
	if tc.Phase1.Selection != policy.SelectLowestValue || tc.Phase2.Selection != policy.SelectLowestValue {
		t.Errorf("selection: %v %v", tc.Phase1.Selection, tc.Phase2.Selection)
	}
	if tc.Phase1.Lifetime != 28800*time.Second || tc.Phase2.Lifetime != 3600*time.Second || tc.Phase2.LifetimeKB != 0 {
		t.Errorf("lifetimes: %v %v", tc.Phase1.Lifetime, tc.Phase2.Lifetime)
	}
	if tc.RekeyMargin != 270*time.Second || tc.RekeyFuzz != 100 || tc.Phase2.ReplayWindow != 1024 {
		t.Errorf("rekey/replay: %v %v %v", tc.RekeyMargin, tc.RekeyFuzz, tc.Phase2.ReplayWindow)
	}
	if tc.DPDTimeout != 40*time.Second || tc.DPDAction != policy.DPDClear {
		t.Errorf("dpd: %v %v", tc.DPDTimeout, tc.DPDAction)
	}
	if tc.Phase2.LocalTS != any4 || tc.Phase2.RemoteTS != any4 || tc.Phase2.Mode != childsa.ModeTunnel || !tc.NATT || tc.ForceEncap {
		t.Errorf("ts/mode/natt: %+v", tc.Phase2)
	}

	// IKE versions: AWS's both, IKEv1 first (what it initiates with).
	if !reflect.DeepEqual(tc.IKEVersions, []policy.Version{policy.IKEv1, policy.IKEv2}) {
		t.Errorf("ike versions: %v", tc.IKEVersions)
	}
	// Phase 1: AES128, AES256, AES128-GCM-16, AES256-GCM-16 x SHA1..SHA2-512
	// (with GCM: the PRF) x DH 2, 14-24, in AWS order.
	var p1 []policy.Phase1Proposal
	for _, c := range []struct {
		bits int
		gcm  bool
	}{{128, false}, {256, false}, {128, true}, {256, true}} {
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			for _, g := range []uint16{2, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24} {
				p1 = append(p1, policy.Phase1Proposal{EncKeyBits: c.bits, GCM: c.gcm, Hash: h, DHGroup: g})
			}
		}
	}
	if len(p1) != 192 || !reflect.DeepEqual(tc.Phase1.Proposals, p1) {
		t.Errorf("phase 1 proposals:\n got %v\nwant %v", Phase1Names(tc.Phase1.Proposals), Phase1Names(p1))
	}
	// Phase 2: AES128, AES256 (x 4 integrity), AES128-GCM-16, AES256-GCM-16
	// (no integrity) x PFS 2, 5, 14-24.
	groups := []uint16{2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}
	var p2 []policy.Phase2Proposal
	for _, e := range []int{128, 256} {
		for _, a := range []uint16{isakmp.AuthHMACSHA1, isakmp.AuthHMACSHA2256, isakmp.AuthHMACSHA2384, isakmp.AuthHMACSHA2512} {
			for _, g := range groups {
				p2 = append(p2, policy.Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: e, Integrity: a, PFSGroup: g})
			}
		}
	}
	for _, e := range []int{128, 256} {
		for _, g := range groups {
			p2 = append(p2, policy.Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKeyBits: e, PFSGroup: g})
		}
	}
	if !reflect.DeepEqual(tc.Phase2.Proposals, p2) {
		t.Errorf("phase 2 proposals:\n got %v\nwant %v", Phase2Names(tc.Phase2.Proposals), Phase2Names(p2))
	}
}

func TestCGWDefaults(t *testing.T) {
	c := mustParse(t, CGW, minimal(""))
	tc := c.IKE.Tunnels[0]
	if got := Phase1Names(tc.Phase1.Proposals); !reflect.DeepEqual(got, []string{"aes128-sha1-modp2048"}) {
		t.Errorf("phase 1: %v", got)
	}
	if got := Phase2Names(tc.Phase2.Proposals); !reflect.DeepEqual(got, []string{"esp-aes128-sha1-modp2048"}) {
		t.Errorf("phase 2: %v", got)
	}
	if tc.StartupAction != policy.StartupStart || tc.Phase1.Selection != policy.SelectInitiatorOrder || tc.Phase2.Selection != policy.SelectInitiatorOrder {
		t.Errorf("startup/selection: %v %v %v", tc.StartupAction, tc.Phase1.Selection, tc.Phase2.Selection)
	}
	if tc.Phase1.Lifetime != 28800*time.Second || tc.Phase2.Lifetime != 3600*time.Second || tc.RekeyMargin != 270*time.Second {
		t.Errorf("lifetimes: %v %v %v", tc.Phase1.Lifetime, tc.Phase2.Lifetime, tc.RekeyMargin)
	}
	if tc.DPDTimeout != 40*time.Second || tc.DPDAction != policy.DPDRestart {
		t.Errorf("dpd: %v %v", tc.DPDTimeout, tc.DPDAction)
	}
}

func TestFullSchema(t *testing.T) {
	yml := `log:
  format: json
  level: debug
control:
  listen: 127.0.0.1:9500
key_log: /tmp/keys.log
ike:
  port: 1500
  natt_port: 14500
  retransmit_timeout: 2s
  retransmit_base: 2
  retransmit_tries: 3
  max_half_open: 10
tunnels:
  - name: t1
    local_address: 10.99.0.2
    local_id: 198.51.100.2
    remote_address: 203.0.113.10
    remote_id: any
    remote_port: 1500
    remote_natt_port: 14500
    psk_env: VPNLAB_TEST_PSK
    startup_action: add
    ike_mode: aggressive
    allow_aggressive: true
    phase1:
      proposals: aes256-sha512-ecp384, aes192-sha256-modp1536
      lifetime: 3600
      selection: lowest-value
    phase2:
      proposals: [esp-null-sha256, ah-sha384-modp2048, esp-aes192gcm16-ecp521]
      lifetime: 1h
      lifetime_kb: 100000
      mode: transport
      selection: initiator-order
    local_ts: 10.1.0.0/16
    remote_ts: 192.168.7.1
    rekey_margin: 60
    rekey_fuzz: 0
    replay_window: 0
    dpd: { timeout: 0s, action: none }
    nat_traversal: true
    force_encap: true
`
	c := mustParse(t, CGW, yml)
	if c.Log != (Log{"json", "debug"}) || c.Control != (Control{"tcp", "127.0.0.1:9500"}) || c.KeyLog != "/tmp/keys.log" {
		t.Errorf("process: %+v %+v %q", c.Log, c.Control, c.KeyLog)
	}
	if c.IKE.Ports != (policy.Ports{IKE: 1500, NATT: 14500}) || c.IKE.RetransmitTimeout != 2*time.Second || c.IKE.RetransmitBase != 2 || c.IKE.RetransmitTries != 3 || c.IKE.MaxHalfOpen != 10 {
		t.Errorf("ike: %+v", c.IKE)
	}
	tc := c.IKE.Tunnels[0]
	if tc.RemoteID.IsValid() || tc.LocalID != netip.MustParseAddr("198.51.100.2") || tc.RemotePorts != (policy.Ports{IKE: 1500, NATT: 14500}) {
		t.Errorf("ids: %+v", tc)
	}
	if tc.StartupAction != policy.StartupAdd || tc.Phase1.Exchange != policy.AggressiveMode || !tc.Phase1.AllowAggressive {
		t.Errorf("modes: %+v", tc)
	}
	if got := strings.Join(Phase1Names(tc.Phase1.Proposals), " "); got != "aes256-sha512-ecp384 aes192-sha256-modp1536" {
		t.Errorf("phase 1: %s", got)
	}
	if got := strings.Join(Phase2Names(tc.Phase2.Proposals), " "); got != "esp-null-sha256 ah-sha384-modp2048 esp-aes192gcm16-ecp521" {
		t.Errorf("phase 2: %s", got)
	}
	if tc.Phase1.Lifetime != time.Hour || tc.Phase1.Selection != policy.SelectLowestValue || tc.Phase2.Selection != policy.SelectInitiatorOrder ||
		tc.Phase2.LifetimeKB != 100000 || tc.Phase2.Mode != childsa.ModeTransport {
		t.Errorf("phase settings: %+v %+v", tc.Phase1, tc.Phase2)
	}
	if tc.Phase2.LocalTS.String() != "10.1.0.0/16" || tc.Phase2.RemoteTS.String() != "192.168.7.1/32" {
		t.Errorf("ts: %v %v", tc.Phase2.LocalTS, tc.Phase2.RemoteTS)
	}
	if tc.RekeyMargin != time.Minute || tc.RekeyFuzz != 0 || tc.Phase2.ReplayWindow != 0 || tc.DPDTimeout != 0 || tc.DPDAction != policy.DPDNone || !tc.ForceEncap {
		t.Errorf("misc: %+v", tc)
	}
}

func TestAWSListsCrossProduct(t *testing.T) {
	c := mustParse(t, VGW, minimal(`    phase1:
      encryption: [AES256, aes128]
      integrity: [SHA2-256]
      dh_groups: [14, 2]
    phase2:
      encryption: [AES128-GCM-16, AES128]
      integrity: [SHA1, SHA2-512]
      pfs_groups: [19]
`))
	tc := c.IKE.Tunnels[0]
	want1 := "aes256-sha256-modp2048 aes256-sha256-modp1024 aes128-sha256-modp2048 aes128-sha256-modp1024"
	if got := strings.Join(Phase1Names(tc.Phase1.Proposals), " "); got != want1 {
		t.Errorf("phase 1: %s\nwant %s", got, want1)
	}
	want2 := "esp-aes128gcm16-ecp256 esp-aes128-sha1-ecp256 esp-aes128-sha512-ecp256"
	if got := strings.Join(Phase2Names(tc.Phase2.Proposals), " "); got != want2 {
		t.Errorf("phase 2: %s\nwant %s", got, want2)
	}

	// Empty PFS list: no PFS (a warning on the vgw, where AWS requires PFS).
	c = mustParse(t, VGW, minimal("    phase2:\n      pfs_groups: []\n"))
	for _, p := range c.IKE.Tunnels[0].Phase2.Proposals {
		if p.PFSGroup != 0 {
			t.Fatalf("PFS group %d with an empty pfs_groups", p.PFSGroup)
		}
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].String(), "requires PFS") {
		t.Errorf("warnings: %v", c.Warnings)
	}

	// AH with AWS lists (cgw only).
	c = mustParse(t, CGW, minimal("    phase2:\n      protocol: ah\n      integrity: [SHA2-256]\n      pfs_groups: [14]\n"))
	if got := strings.Join(Phase2Names(c.IKE.Tunnels[0].Phase2.Proposals), " "); got != "ah-sha256-modp2048" {
		t.Errorf("ah: %s", got)
	}
	// GCM only: integrity may be empty.
	c = mustParse(t, CGW, minimal("    phase2:\n      encryption: [AES256-GCM-16]\n      integrity: []\n      pfs_groups: [modp2048]\n"))
	if got := strings.Join(Phase2Names(c.IKE.Tunnels[0].Phase2.Proposals), " "); got != "esp-aes256gcm16-modp2048" {
		t.Errorf("gcm: %s", got)
	}
}

func TestProposalRoundTrip(t *testing.T) {
	var p1 []string
	for _, e := range []string{"aes128", "aes192", "aes256"} {
		for _, h := range []string{"sha1", "sha256", "sha384", "sha512"} {
			for _, g := range dhGroups {
				p1 = append(p1, e+"-"+h+"-"+g.name)
			}
		}
	}
	for _, s := range p1 {
		p, err := ParsePhase1Proposal(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got := FormatPhase1(p); got != s {
			t.Errorf("FormatPhase1(ParsePhase1Proposal(%q)) = %q", s, got)
		}
	}
	p, _ := ParsePhase1Proposal("AES-SHA256-ECP256")
	if p != (policy.Phase1Proposal{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 19}) {
		t.Errorf("alias: %+v", p)
	}

	var p2 []string
	groups := []string{""}
	for _, g := range dhGroups {
		groups = append(groups, "-"+g.name)
	}
	for _, g := range groups {
		for _, e := range []string{"aes128", "aes192", "aes256", "null"} {
			for _, h := range []string{"sha1", "sha256", "sha384", "sha512"} {
				p2 = append(p2, "esp-"+e+"-"+h+g)
			}
		}
		for _, e := range []string{"aes128gcm16", "aes192gcm16", "aes256gcm16"} {
			p2 = append(p2, "esp-"+e+g)
		}
		for _, h := range []string{"sha1", "sha256", "sha384", "sha512"} {
			p2 = append(p2, "ah-"+h+g)
		}
	}
	for _, s := range p2 {
		p, err := ParsePhase2Proposal(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got := FormatPhase2(p); got != s {
			t.Errorf("FormatPhase2(ParsePhase2Proposal(%q)) = %q", s, got)
		}
	}
	want := map[string]policy.Phase2Proposal{
		"esp-aes128-sha256-modp2048": {Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA2256, PFSGroup: 14},
		"esp-aes256gcm16":            {Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKeyBits: 256},
		"esp-null-sha1":              {Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPNull, Integrity: isakmp.AuthHMACSHA1},
		"ah-sha512-ecp384":           {Protocol: isakmp.ProtoAH, Integrity: isakmp.AuthHMACSHA2512, PFSGroup: 20},
	}
	for s, w := range want {
		if p, err := ParsePhase2Proposal(s); err != nil || p != w {
			t.Errorf("ParsePhase2Proposal(%q) = %+v, %v; want %+v", s, p, err, w)
		}
	}
	// The formatter agrees with the engine's names (once the engine has
	// String methods; fmt falls back to the struct before that).
	for _, s := range p1 {
		p, _ := ParsePhase1Proposal(s)
		if e := fmt.Sprint(p); !strings.HasPrefix(e, "{") && e != FormatPhase1(p) {
			t.Errorf("ike says %q, gwconfig %q", e, FormatPhase1(p))
		}
	}
	for _, s := range p2 {
		p, _ := ParsePhase2Proposal(s)
		if e := fmt.Sprint(p); !strings.HasPrefix(e, "{") && e != FormatPhase2(p) {
			t.Errorf("ike says %q, gwconfig %q", e, FormatPhase2(p))
		}
	}
}

func TestProposalParseErrors(t *testing.T) {
	bad1 := map[string]string{
		"aes128-sha1":                "want ENC-HASH-GROUP",
		"aes128gcm16-sha1-modp2048":  "AES-GCM has no integrity algorithm; name the PRF, e.g. aes128gcm16-prfsha1-modp2048",
		"aes128-prfsha1-modp2048":    "with AES-CBC the hash is both integrity and PRF; write aes128-sha1-modp2048",
		"aes128gcm8-prfsha1-ecp256":  "unknown encryption",
		"aes128gcm16-prfmd5-ecp256":  "unknown integrity/PRF",
		"3des-sha1-modp1024":         "unknown encryption",
		"aes128-md5-modp1024":        "unknown integrity",
		"aes128-sha1-modp768":        "unknown DH group",
		"aes128-sha1-modp2048-extra": "want ENC-HASH-GROUP",
	}
	for s, frag := range bad1 {
		if _, err := ParsePhase1Proposal(s); err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("ParsePhase1Proposal(%q) = %v; want %q", s, err, frag)
		}
	}
	bad2 := map[string]string{
		"esp":                          "want esp-ENC",
		"esp-aes128":                   "needs an integrity",
		"esp-aes128gcm16-sha256":       "carries its own integrity",
		"esp-3des-sha1":                "unknown ESP encryption",
		"ah-md5":                       "unknown AH integrity",
		"gre-sha1":                     "unknown protocol",
		"esp-aes128-sha1-modp9":        "unknown PFS group",
		"esp-aes128-sha1-modp2048-foo": "unexpected",
	}
	for s, frag := range bad2 {
		if _, err := ParsePhase2Proposal(s); err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("ParsePhase2Proposal(%q) = %v; want %q", s, err, frag)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	cases := []struct {
		name    string
		profile Profile
		yml     string
		frags   []string
	}{
		{"unknown top key", VGW, "tunnel:\n  - name: x\n", []string{"test.yaml:1: tunnel: unknown field"}},
		{"unknown tunnel key", VGW, minimal("    lifetime: 3600s\n"), []string{"test.yaml:6: tunnels[0].lifetime: unknown field"}},
		{"unknown nested key", VGW, minimal("    phase1:\n      dh_group: [14]\n"), []string{"test.yaml:7: tunnels[0].phase1.dh_group: unknown field"}},
		{"duplicate key", VGW, minimal("    name: again\n"), []string{"test.yaml:6: tunnels[0].name: duplicate field (first on line 2)"}},
		{"yaml syntax", VGW, "tunnels: [\n", []string{"test.yaml", "YAML syntax"}},
		{"empty", VGW, "", []string{"empty configuration"}},
		{"no tunnels", VGW, "log: {level: info}\n", []string{"tunnels: at least one tunnel is required"}},
		{"bad DH group", VGW, minimal("    phase1:\n      dh_groups: [14, 7]\n"), []string{"test.yaml:7: tunnels[0].phase1.dh_groups: 7 is not allowed (allowed: 2, 14-24)"}},
		{"DH 5 not in AWS phase 1", VGW, minimal("    phase1:\n      dh_groups: [5]\n"), []string{"tunnels[0].phase1.dh_groups: 5 is not allowed (allowed: 2, 14-24)"}},
		{"DH 5 ok in cgw phase 1", CGW, minimal("    phase1:\n      dh_groups: [1]\n"), []string{"phase1.dh_groups: 1 is not allowed (allowed: 2, 5, 14-24)"}},
		{"bad PFS group", VGW, minimal("    phase2:\n      pfs_groups: [25]\n"), []string{"tunnels[0].phase2.pfs_groups: 25 is not allowed (allowed: 2, 5, 14-24)"}},
		{"proposal DH not AWS", VGW, minimal("    phase1:\n      proposals: [aes128-sha1-modp1536]\n"), []string{"phase1.proposals: aes128-sha1-modp1536: DH group 5 is not allowed (allowed: 2, 14-24)"}},
		{"AES192 not AWS", VGW, minimal("    phase1:\n      encryption: [AES192]\n"), []string{"phase1.encryption: AES192 is not allowed (allowed: AES128, AES256, AES128-GCM-16, AES256-GCM-16)"}},
		{"AES192-GCM not AWS", VGW, minimal("    phase1:\n      encryption: [AES192-GCM-16]\n"), []string{"phase1.encryption: AES192-GCM-16 is not allowed (allowed: AES128, AES256, AES128-GCM-16, AES256-GCM-16)"}},
		{"GCM in phase 1 IKEv1 only", VGW, minimal("    ike_versions: [ikev1]\n    phase1:\n      encryption: [AES128, AES128-GCM-16]\n"),
			[]string{"test.yaml:8: tunnels[0].phase1.encryption: AES128-GCM-16: AES-GCM in phase 1 needs IKEv2 (RFC 5282", "ike_versions is [ikev1]; add ikev2"}},
		{"GCM proposal IKEv1 only", VGW, minimal("    ike_versions: ikev1\n    phase1:\n      proposals: [aes256gcm16-prfsha256-modp2048]\n"),
			[]string{"test.yaml:8: tunnels[0].phase1.proposals: aes256gcm16-prfsha256-modp2048: AES-GCM in phase 1 needs IKEv2"}},
		{"GCM in phase 1 cgw default", CGW, minimal("    phase1:\n      proposals: [aes128gcm16-prfsha256-modp2048]\n"), []string{"AES-GCM in phase 1 needs IKEv2", "ike_versions is [ikev1]"}},
		{"GCM with integrity", CGW, minimal("    phase1:\n      proposals: [aes128gcm16-sha256-modp2048]\n"), []string{"name the PRF, e.g. aes128gcm16-prfsha256-modp2048"}},
		{"ike_versions unknown", VGW, minimal("    ike_versions: [ikev1, ikev3]\n"), []string{`test.yaml:6: tunnels[0].ike_versions: "ikev3" is not an IKE version (allowed: ikev1, ikev2)`}},
		{"ike_versions empty", VGW, minimal("    ike_versions: []\n"), []string{"test.yaml:6: tunnels[0].ike_versions: must not be empty (allowed: ikev1, ikev2)"}},
		{"ike_versions null", CGW, minimal("    ike_versions:\n"), []string{"tunnels[0].ike_versions: must not be empty"}},
		{"ike_versions twice", CGW, minimal("    ike_versions: [ikev2, IKEv2]\n"), []string{"test.yaml:6: tunnels[0].ike_versions: IKEv2 is listed twice"}},
		{"ike_versions mapping", CGW, minimal("    ike_versions: {ikev2: true}\n"), []string{"tunnels[0].ike_versions: expected a list"}},
		{"start needs IKEv2", VGW, minimal("    ike_versions: [ikev1]\n    startup_action: start\n"),
			[]string{"test.yaml:7: tunnels[0].startup_action: start needs IKEv2: AWS initiates IKE (startup action start) with IKEv2 only, and ike_versions is [ikev1]; add ikev2 to ike_versions or use startup_action: add"}},
		{"aggressive with IKEv2 initiator", CGW, minimal("    ike_versions: [ikev2, ikev1]\n    ike_mode: aggressive\n"),
			[]string{"tunnels[0].ike_mode: aggressive is an IKEv1 exchange, but the tunnel initiates with ikev2 (the first of ike_versions)"}},
		{"aggressive when AWS starts", VGW, minimal("    startup_action: start\n    ike_mode: aggressive\n"),
			[]string{"tunnels[0].ike_mode: aggressive is an IKEv1 exchange, but with startup_action start AWS initiates with IKEv2"}},
		{"allow_aggressive without IKEv1", CGW, minimal("    ike_versions: [ikev2]\n    allow_aggressive: true\n"),
			[]string{"tunnels[0].allow_aggressive: aggressive mode is IKEv1, and ike_versions has no ikev1"}},
		{"both styles phase 1", CGW, minimal("    phase1:\n      proposals: [aes128-sha1-modp2048]\n      dh_groups: [14]\n"), []string{"phase1.proposals: use either proposals or"}},
		{"both styles phase 2", CGW, minimal("    phase2:\n      proposals: [esp-aes128-sha1]\n      protocol: esp\n"), []string{"phase2.proposals: use either proposals or"}},
		{"ah with encryption", CGW, minimal("    phase2:\n      protocol: ah\n      encryption: [AES128]\n"), []string{"phase2.encryption: must not be set with protocol ah"}},
		{"ah on vgw", VGW, minimal("    phase2:\n      proposals: [ah-sha256-modp2048]\n"), []string{"AH is not allowed (AWS uses ESP only)"}},
		{"null on vgw", VGW, minimal("    phase2:\n      proposals: [esp-null-sha256-modp2048]\n"), []string{"NULL is not allowed"}},
		{"force_encap without natt", CGW, minimal("    nat_traversal: false\n    force_encap: true\n"), []string{"force_encap: needs nat_traversal: true"}},
		{"bad phase 2 proposal", CGW, minimal("    phase2:\n      proposals: [esp-aes128]\n"), []string{"test.yaml:7: tunnels[0].phase2.proposals:", "needs an integrity"}},
		{"p1 lifetime low", VGW, minimal("    phase1:\n      lifetime: 600s\n"), []string{"test.yaml:7: tunnels[0].phase1.lifetime: 10m0s is out of range (allowed: 900 s to 28800 s)", "lab_timers"}},
		{"p1 lifetime high", VGW, minimal("    phase1:\n      lifetime: 28801\n"), []string{"phase1.lifetime: 8h0m1s is out of range (allowed: 900 s to 28800 s)"}},
		{"p2 lifetime high", VGW, minimal("    phase2:\n      lifetime: 2h\n"), []string{"phase2.lifetime: 2h0m0s is out of range (allowed: 900 s to 3600 s)"}},
		{"p2 not below p1", VGW, minimal("    phase1:\n      lifetime: 1800s\n    phase2:\n      lifetime: 1800s\n"), []string{"phase2.lifetime: 1800 s must be less than the phase 1 lifetime (1800 s)"}},
		{"default p2 not below p1", VGW, minimal("    phase1:\n      lifetime: 900s\n"), []string{"phase2.lifetime: the default 3600 s must be less than the phase 1 lifetime (900 s)"}},
		{"fractional lifetime", CGW, minimal("    phase1:\n      lifetime: 1.5s\n"), []string{"not a whole number of seconds"}},
		{"bad duration", CGW, minimal("    phase1:\n      lifetime: forever\n"), []string{"phase1.lifetime: expected a duration"}},
		{"margin low", VGW, minimal("    rekey_margin: 30s\n"), []string{"rekey_margin: 30 s is out of range (allowed: 60 s to phase 2 lifetime / 2 = 1800 s)"}},
		{"margin high", VGW, minimal("    rekey_margin: 1801\n"), []string{"rekey_margin: 1801 s is out of range"}},
		{"default margin vs short p2", VGW, "lab_timers: true\n" + minimal("    phase2:\n      lifetime: 120s\n"), []string{"rekey_margin: the default 270 s is more than phase 2 lifetime / 2 (60 s)"}},
		{"cgw margin >= lifetime", CGW, minimal("    phase2:\n      lifetime: 200s\n"), []string{"rekey_margin: the default 270 s must be less than the phase 1 and phase 2 lifetimes (200 s)"}},
		{"fuzz", VGW, minimal("    rekey_fuzz: 101\n"), []string{"rekey_fuzz: 101 is out of range (allowed: 0-100)"}},
		{"replay low", VGW, minimal("    replay_window: 32\n"), []string{"replay_window: 32 is out of range (allowed: 64-2048)"}},
		{"replay high", VGW, minimal("    replay_window: 4096\n"), []string{"replay_window: 4096 is out of range (allowed: 64-2048)"}},
		{"dpd low", VGW, minimal("    dpd: {timeout: 10s}\n"), []string{"test.yaml:6: tunnels[0].dpd.timeout: 10s is out of range (allowed: >= 30 s"}},
		{"dpd action", VGW, minimal("    dpd: {action: hold}\n"), []string{`dpd.action: "hold" is not allowed (allowed: clear, restart, none)`}},
		{"psk missing", VGW, strings.Replace(minimal(""), "    psk_env: VPNLAB_TEST_PSK\n", "", 1), []string{"tunnels[0]: a pre-shared key is required"}},
		{"psk both", VGW, minimal("    psk_file: x.psk\n"), []string{"set either psk_file or psk_env, not both"}},
		{"psk env unset", VGW, strings.Replace(minimal(""), "VPNLAB_TEST_PSK", "VPNLAB_TEST_UNSET_VAR", 1), []string{`psk_env: environment variable "VPNLAB_TEST_UNSET_VAR" is not set`}},
		{"psk file missing", VGW, strings.Replace(minimal(""), "psk_env: VPNLAB_TEST_PSK", "psk_file: /nonexistent/t1.psk", 1), []string{"psk_file: cannot read the pre-shared key: /nonexistent/t1.psk: no such file"}},
		{"inline psk", VGW, minimal("    psk: " + testPSK + "\n"), []string{"tunnels[0].psk: inline pre-shared keys are not supported"}},
		{"name required", VGW, strings.Replace(minimal(""), "  - name: tunnel1\n    local", "  - local", 1), []string{"tunnels[0].name: required"}},
		{"name chars", VGW, strings.Replace(minimal(""), "name: tunnel1", "name: tun nel", 1), []string{"tunnels[0].name:"}},
		{"duplicate name", VGW, minimal("") + "  - name: tunnel1\n    local_address: 203.0.113.20\n    remote_address: 198.51.100.2\n    psk_env: VPNLAB_TEST_PSK\n",
			[]string{"tunnels[1].name: \"tunnel1\" is already used by tunnels[0]"}},
		{"duplicate peer", VGW, minimal("") + "  - name: tunnel2\n    local_address: 203.0.113.10\n    remote_address: 198.51.100.2\n    psk_env: VPNLAB_TEST_PSK\n",
			[]string{"tunnels[1]: local_address 203.0.113.10 and remote_address 198.51.100.2 are already used by tunnel \"tunnel1\""}},
		{"bad address", VGW, strings.Replace(minimal(""), "203.0.113.10", "203.0.113.300", 1), []string{`test.yaml:3: tunnels[0].local_address: "203.0.113.300" is not an IP address`}},
		{"unspecified address", VGW, strings.Replace(minimal(""), "203.0.113.10", "0.0.0.0", 1), []string{"local_address: 0.0.0.0 is not a unicast address"}},
		{"mixed families", VGW, strings.Replace(minimal(""), "203.0.113.10", "2001:db8::1", 1), []string{"different IP versions"}},
		{"ts host bits", VGW, minimal("    local_ts: 10.0.0.1/8\n"), []string{"local_ts: 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)"}},
		{"bad enum", VGW, minimal("    startup_action: now\n"), []string{`startup_action: "now" is not allowed (allowed: add, start)`}},
		{"bad bool", VGW, minimal("    nat_traversal: maybe\n"), []string{`nat_traversal: expected true or false, got "maybe"`}},
		{"ports equal", VGW, "ike:\n  port: 500\n  natt_port: 500\n" + minimal(""), []string{"ike.natt_port: must differ from ike.port"}},
		{"port range", VGW, "ike:\n  port: 70000\n" + minimal(""), []string{"test.yaml:2: ike.port: 70000 is out of range (allowed: 1-65535)"}},
		{"control non-loopback", VGW, "control:\n  listen: 0.0.0.0:9500\n" + minimal(""), []string{"test.yaml:2: control.listen:", "non-loopback"}},
		{"log format", VGW, "log:\n  format: xml\n" + minimal(""), []string{`log.format: "xml" is not allowed (allowed: text, json, aws)`}},
		{"tunnel not mapping", VGW, "tunnels:\n  - tunnel1\n", []string{"tunnels[0]: expected a mapping, got a string"}},
		{"list of mappings", VGW, minimal("    phase1:\n      dh_groups: [{a: 1}]\n"), []string{"phase1.dh_groups: expected a list of values"}},
		{"duplicate list entry", VGW, minimal("    phase1:\n      dh_groups: [14, 14]\n"), []string{"dh_groups: 14 is listed twice"}},
		{"empty list", VGW, minimal("    phase1:\n      encryption: []\n"), []string{"phase1.encryption: must not be empty"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.profile, tc.yml, tc.frags...) })
	}
}

func TestErrorListAllReported(t *testing.T) {
	err := wantErr(t, VGW, minimal("    replay_window: 1\n    rekey_fuzz: 500\n    phase1:\n      dh_groups: [3]\n"),
		"test.yaml:6:", "test.yaml:7:", "test.yaml:9:")
	var el ErrorList
	if !errors.As(err, &el) || len(el) != 3 {
		t.Fatalf("want an ErrorList of 3, got %#v", err)
	}
	if el[0].Line != 6 || el[0].Path != "tunnels[0].replay_window" {
		t.Errorf("first: %+v", el[0])
	}
}

func TestLabTimers(t *testing.T) {
	yml := "lab_timers: true\n" + minimal(`    phase1:
      lifetime: 60s
    phase2:
      lifetime: 20s
    rekey_margin: 5s
    dpd: {timeout: 3s}
`)
	c := mustParse(t, VGW, yml)
	tc := c.IKE.Tunnels[0]
	if !c.LabTimers || tc.Phase1.Lifetime != time.Minute || tc.Phase2.Lifetime != 20*time.Second || tc.RekeyMargin != 5*time.Second || tc.DPDTimeout != 3*time.Second {
		t.Errorf("lab timers: %+v", tc)
	}
	// Upper bounds and relations still hold.
	wantErr(t, VGW, "lab_timers: true\n"+minimal("    phase2:\n      lifetime: 20s\n    rekey_margin: 11s\n"), "rekey_margin: 11 s is out of range (allowed: 1 s to phase 2 lifetime / 2 = 10 s)")
	wantErr(t, VGW, "lab_timers: true\n"+minimal("    phase1:\n      lifetime: 30000s\n"), "phase1.lifetime")
}

func TestVGWWarnings(t *testing.T) {
	c := mustParse(t, VGW, minimal("    ike_mode: aggressive\n    allow_aggressive: true\n    phase2:\n      mode: transport\n      lifetime_kb: 1000\n"))
	w := fmt.Sprint(c.Warnings)
	for _, f := range []string{"main mode only", "accepts IKEv1 main mode only", "tunnel mode only", "no volume lifetime"} {
		if !strings.Contains(w, f) {
			t.Errorf("warnings %s lack %q", w, f)
		}
	}
	if c := mustParse(t, CGW, minimal("    ike_mode: aggressive\n")); len(c.Warnings) != 0 {
		t.Errorf("cgw warnings: %v", c.Warnings)
	}
}

func TestPSKRules(t *testing.T) {
	bad := map[string]string{
		"Ab1_x":                                  "too short",
		strings.Repeat("a", 65):                  "too long",
		"0abcdefghij":                            "starts with 0",
		"abc-defghij":                            "characters other than",
		"abc defghij":                            "characters other than",
		"pässwörter":                             "characters other than",
		"abcdefgh\nabcdefgh":                     "characters other than",
		strings.Repeat("Ab1._", 12) + "Ab1.":     "",
		"A2345678":                               "",
		strings.Repeat("z", 64):                  "",
		"Abc_def.123":                            "",
		"1" + strings.Repeat("0", 7):             "",
		"X" + strings.Repeat("0", 63) + "extra1": "too long",
	}
	for psk, frag := range bad {
		err := CheckAWSPSK([]byte(psk))
		if frag == "" {
			if err != nil {
				t.Errorf("CheckAWSPSK(%q) = %v; want ok", psk, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("CheckAWSPSK(%q) = %v; want %q", psk, err, frag)
			continue
		}
		if strings.Contains(err.Error(), psk) {
			t.Errorf("error shows the key: %v", err)
		}
	}

	// vgw: error; cgw: warning. Neither shows the key.
	weak := "0weak-key!"
	t.Setenv("VPNLAB_WEAK", weak)
	yml := strings.Replace(minimal(""), "VPNLAB_TEST_PSK", "VPNLAB_WEAK", 1)
	_, err := Parse([]byte(yml), VGW, "test.yaml")
	if err == nil || !strings.Contains(err.Error(), "test.yaml:5: tunnels[0].psk_env: pre-shared key") || strings.Contains(err.Error(), weak) {
		t.Errorf("vgw weak psk: %v", err)
	}
	c, err := Parse([]byte(yml), CGW, "test.yaml")
	if err != nil {
		t.Fatalf("cgw weak psk: %v", err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].String(), "AWS virtual private gateway would refuse it") || strings.Contains(c.Warnings[0].String(), weak) {
		t.Errorf("cgw warnings: %v", c.Warnings)
	}
	if string(c.IKE.Tunnels[0].PSK) != weak {
		t.Errorf("cgw psk not loaded")
	}
	// Empty env var.
	t.Setenv("VPNLAB_EMPTY", "")
	wantErr(t, CGW, strings.Replace(minimal(""), "VPNLAB_TEST_PSK", "VPNLAB_EMPTY", 1), `environment variable "VPNLAB_EMPTY" is empty`)
}

// Each AWS pre-shared key rule, at its boundary: an error naming the field
// on the vgw, a warning on the cgw, never the key itself.
func TestPSKRulesPerProfile(t *testing.T) {
	for _, tc := range []struct{ psk, frag string }{
		{"Abcdef1", "too short (AWS: 8-64 characters)"},
		{"Abcdef12" + strings.Repeat("x", 57), "too long (AWS: 8-64 characters)"},
		{"0bcdefgh", "starts with 0 (AWS rule)"},
		{"abcd-efgh", "characters other than A-Z a-z 0-9 . _"},
		{"abcd/efgh", "characters other than"},
		{"abcd+efgh", "characters other than"},
		{"abcdéfgh", "characters other than"},
		{"Abcdefg1", ""},
		{"Abcdef12" + strings.Repeat("x", 56), ""},
		{"9._Ab_.z", ""},
	} {
		t.Setenv("VPNLAB_RULE_PSK", tc.psk)
		yml := strings.Replace(minimal(""), "VPNLAB_TEST_PSK", "VPNLAB_RULE_PSK", 1)
		_, verr := Parse([]byte(yml), VGW, "test.yaml")
		c, cerr := Parse([]byte(yml), CGW, "test.yaml")
		if cerr != nil {
			t.Errorf("%q: cgw: %v", tc.psk, cerr)
			continue
		}
		if tc.frag == "" {
			if verr != nil || len(c.Warnings) != 0 {
				t.Errorf("%q: want valid: vgw %v, cgw warnings %v", tc.psk, verr, c.Warnings)
			}
			continue
		}
		if verr == nil || !strings.Contains(verr.Error(), "test.yaml:5: tunnels[0].psk_env: pre-shared key ") || !strings.Contains(verr.Error(), tc.frag) || strings.Contains(verr.Error(), tc.psk) {
			t.Errorf("%q: vgw error %v; want %q", tc.psk, verr, tc.frag)
		}
		if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].String(), tc.frag) ||
			!strings.Contains(c.Warnings[0].String(), "an AWS virtual private gateway would refuse it") || strings.Contains(c.Warnings[0].String(), tc.psk) {
			t.Errorf("%q: cgw warnings %v; want %q", tc.psk, c.Warnings, tc.frag)
		}
	}
}

func TestPSKFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("nl.psk", testPSK+"\n")
	write("crlf.psk", testPSK+"\r\n")
	write("raw.psk", testPSK)
	write("two.psk", testPSK+"\n\n")
	write("empty.psk", "\n")
	cfgFile := filepath.Join(dir, "vgw.yaml")
	for name, want := range map[string]string{"nl.psk": testPSK, "crlf.psk": testPSK, "raw.psk": testPSK} {
		yml := strings.Replace(minimal(""), "psk_env: VPNLAB_TEST_PSK", "psk_file: "+name, 1)
		c, err := Parse([]byte(yml), VGW, cfgFile)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(c.IKE.Tunnels[0].PSK) != want {
			t.Errorf("%s: wrong key", name)
		}
	}
	// Only one newline is trimmed: the second makes the key invalid for AWS.
	yml := strings.Replace(minimal(""), "psk_env: VPNLAB_TEST_PSK", "psk_file: two.psk", 1)
	_, err := Parse([]byte(yml), VGW, cfgFile)
	if err == nil || strings.Contains(err.Error(), testPSK) {
		t.Errorf("two newlines: %v", err)
	}
	yml = strings.Replace(minimal(""), "psk_env: VPNLAB_TEST_PSK", "psk_file: empty.psk", 1)
	if _, err := Parse([]byte(yml), CGW, cfgFile); err == nil || !strings.Contains(err.Error(), "empty.psk is empty") {
		t.Errorf("empty file: %v", err)
	}
	// Load reads the file and resolves psk_file next to it.
	if err := os.WriteFile(cfgFile, []byte(strings.Replace(minimal(""), "psk_env: VPNLAB_TEST_PSK", "psk_file: nl.psk", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadVGW(cfgFile)
	if err != nil || string(c.IKE.Tunnels[0].PSK) != testPSK || c.File != cfgFile {
		t.Errorf("LoadVGW: %v", err)
	}
	if _, err := LoadCGW(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestNoPSKInOutput(t *testing.T) {
	c := mustParse(t, VGW, minimal(""))
	outs := map[string]string{
		"Describe": c.Describe(),
		"String":   c.String(),
		"Summary":  c.Summary(),
		"%v":       fmt.Sprintf("%v", c),
		"%+v":      fmt.Sprintf("%+v", *c),
		"%#v":      fmt.Sprintf("%#v", *c),
		"tunnel":   fmt.Sprintf("%+v", c.IKE.Tunnels[0]),
		"ikecfg":   fmt.Sprintf("%#v", c.IKE),
		"describe": DescribeTunnel(&c.IKE.Tunnels[0]),
	}
	for name, s := range outs {
		if strings.Contains(s, testPSK) {
			t.Errorf("%s contains the PSK: %s", name, s)
		}
	}
	if !strings.Contains(c.Describe(), "aes128-sha1-modp1024") || !strings.Contains(c.Describe(), "esp-aes256gcm16-modp2048s256") {
		t.Errorf("Describe lacks proposals: %s", c.Describe())
	}
	if strings.Contains(c.Describe(), "\n") {
		t.Errorf("Describe is not one line")
	}
	if !strings.Contains(c.Summary(), "psk:              [redacted] (set)") {
		t.Errorf("Summary: %s", c.Summary())
	}
}

func TestParseControl(t *testing.T) {
	ok := map[string]Control{
		"":                        {},
		"unix:/run/vpnlab/x.sock": {"unix", "/run/vpnlab/x.sock"},
		"127.0.0.1:9500":          {"tcp", "127.0.0.1:9500"},
		"tcp:127.0.0.2:9500":      {"tcp", "127.0.0.2:9500"},
		"[::1]:9500":              {"tcp", "[::1]:9500"},
		"localhost:9500":          {"tcp", "localhost:9500"},
	}
	for s, want := range ok {
		got, err := ParseControl(s)
		if err != nil || got != want {
			t.Errorf("ParseControl(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"0.0.0.0:9500", "10.0.0.1:9500", ":9500", "example.com:9500", "unix:", "127.0.0.1", "127.0.0.1:http0"} {
		if _, err := ParseControl(s); err == nil {
			t.Errorf("ParseControl(%q) accepted", s)
		}
	}
	if (Control{"unix", "/a.sock"}).String() != "unix:/a.sock" || (Control{}).String() != "off" {
		t.Error("Control.String")
	}
}

func TestExamplesLoad(t *testing.T) {
	for _, tc := range []struct {
		file    string
		profile Profile
		tunnels int
	}{
		{"../examples/vgw.yaml", VGW, 2},
		{"../examples/cgw.yaml", CGW, 2},
	} {
		c, err := Load(tc.file, tc.profile)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if len(c.IKE.Tunnels) != tc.tunnels {
			t.Errorf("%s: %d tunnels", tc.file, len(c.IKE.Tunnels))
		}
		if len(c.Warnings) != 0 {
			t.Errorf("%s: warnings %v", tc.file, c.Warnings)
		}
		for _, tn := range c.IKE.Tunnels {
			if len(tn.PSK) == 0 {
				t.Errorf("%s: %s has no PSK", tc.file, tn.Name)
			}
		}
	}
	// The example cgw's first proposals are acceptable to the example vgw.
	v, _ := LoadVGW("../examples/vgw.yaml")
	c, _ := LoadCGW("../examples/cgw.yaml")

	// One AWS-style connection with BGP: the two sides agree on the inside
	// addresses and on each other's ASN.
	if v.Routing.Mode != RoutingBGP || c.Routing.Mode != RoutingBGP || v.BGP == nil || c.BGP == nil {
		t.Fatalf("examples are not in bgp mode: %+v %+v", v.Routing, c.Routing)
	}
	if v.BGP.ASN != c.BGP.PeerASN || c.BGP.ASN != v.BGP.PeerASN {
		t.Errorf("ASNs: vgw %d/%d cgw %d/%d", v.BGP.ASN, v.BGP.PeerASN, c.BGP.ASN, c.BGP.PeerASN)
	}
	if !reflect.DeepEqual(v.BGP.Advertise, []netip.Prefix{netip.MustParsePrefix("172.31.0.0/16")}) ||
		!reflect.DeepEqual(c.BGP.Advertise, []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16")}) {
		t.Errorf("advertise: vgw %v cgw %v", v.BGP.Advertise, c.BGP.Advertise)
	}
	for i, inside := range []string{"169.254.10.0/30", "169.254.11.0/30"} {
		vt, ct := v.Tunnels[i], c.Tunnels[i]
		if vt.Inside.String() != inside || ct.Inside != vt.Inside || vt.Connection == "" || ct.Connection != vt.Connection {
			t.Errorf("tunnel %d: vgw %+v cgw %+v", i, vt, ct)
		}
		if vt.PeerInside != ct.LocalInside.Addr() || ct.PeerInside != vt.LocalInside.Addr() || vt.PeerASN != c.BGP.ASN || ct.PeerASN != v.BGP.ASN {
			t.Errorf("tunnel %d: the sides disagree: vgw %+v cgw %+v", i, vt, ct)
		}
	}
	for i := range c.IKE.Tunnels {
		ct, vt := c.IKE.Tunnels[i], v.IKE.Tunnels[i]
		if string(ct.PSK) != string(vt.PSK) {
			t.Errorf("tunnel %d: PSKs differ", i)
		}
		if !containsP1(vt.Phase1.Proposals, ct.Phase1.Proposals[0]) {
			t.Errorf("tunnel %d: vgw does not accept %s", i, FormatPhase1(ct.Phase1.Proposals[0]))
		}
		if !containsP2(vt.Phase2.Proposals, ct.Phase2.Proposals[0]) {
			t.Errorf("tunnel %d: vgw does not accept %s", i, FormatPhase2(ct.Phase2.Proposals[0]))
		}
	}
}

func containsP1(l []policy.Phase1Proposal, p policy.Phase1Proposal) bool {
	for _, x := range l {
		if x == p {
			return true
		}
	}
	return false
}

func containsP2(l []policy.Phase2Proposal, p policy.Phase2Proposal) bool {
	for _, x := range l {
		if x == p {
			return true
		}
	}
	return false
}

func TestProfile(t *testing.T) {
	for _, p := range []Profile{VGW, CGW} {
		q, err := ParseProfile(p.String())
		if err != nil || q != p {
			t.Errorf("ParseProfile(%q) = %v, %v", p, q, err)
		}
	}
	if _, err := ParseProfile("xgw"); err == nil {
		t.Error("ParseProfile(xgw) accepted")
	}
}
