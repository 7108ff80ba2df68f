package export

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testVGW is a vgw configuration with two connections: vpn-a (BGP-style
// inside CIDRs, tunnel a2 narrowed) and vpn-b; the PSKs come from files.
const testVGW = `routing: {mode: bgp}
bgp: {asn: 64512, peer_asn: 65000, advertise: [172.31.0.0/16, 172.32.0.0/16], hold_time: 30s, keepalive: 10s}
tunnels:
  - name: a1
    connection: vpn-a
    local_address: 203.0.113.10
    remote_address: 198.51.100.2
    psk_file: a1.psk
    inside_cidr: 169.254.10.0/30
  - name: a2
    connection: vpn-a
    local_address: 203.0.113.20
    remote_address: 198.51.100.2
    psk_file: a2.psk
    inside_cidr: 169.254.11.0/30
    phase1: {encryption: [AES256], integrity: [SHA2-256], dh_groups: [14], lifetime: 14400s}
    phase2: {encryption: [AES256-GCM-16], pfs_groups: [14], lifetime: 1800s}
    rekey_margin: 120s
    rekey_fuzz: 50
    dpd: {timeout: 30s}
  - name: b1
    connection: vpn-b
    local_address: 203.0.113.30
    remote_address: 198.51.100.2
    psk_env: EXPORT_TEST_PSK
    inside_cidr: 169.254.12.0/30
    bgp: {peer_asn: 65010}
`

const (
	pskA1 = "Secret.a1.abcdefgh"
	pskA2 = "Secret.a2.abcdefgh"
	pskB1 = "Secret.b1.abcdefgh"
)

// writeVGW writes a vgw configuration and its PSK files into a temporary
// directory and returns its path.
func writeVGW(t *testing.T, cfg string) string {
	t.Helper()
	dir := t.TempDir()
	for n, k := range map[string]string{"a1.psk": pskA1, "a2.psk": pskA2} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(k+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("EXPORT_TEST_PSK", pskB1)
	p := filepath.Join(dir, "vgw.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// files returns the export as a name -> File map.
func files(t *testing.T, format, path string, o Options) map[string]File {
	t.Helper()
	fs, err := Export(format, path, o)
	if err != nil {
		t.Fatalf("Export(%s): %v", format, err)
	}
	m := map[string]File{}
	for _, f := range fs {
		if _, dup := m[f.Name]; dup {
			t.Fatalf("file %s twice", f.Name)
		}
		m[f.Name] = f
	}
	return m
}

// hasLines checks that text contains each line (trimmed, comments after
// "  #" removed) exactly.
func hasLines(t *testing.T, what, text string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		if i := strings.Index(l, "  #"); i > 0 {
			l = l[:i]
		}
		have[strings.TrimSpace(l)] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("%s lacks the line %q:\n%s", what, l, text)
		}
	}
}

// noSecrets fails if any file holds a PSK.
func noSecrets(t *testing.T, fs map[string]File) {
	t.Helper()
	for _, f := range fs {
		for _, k := range []string{pskA1, pskA2, pskB1} {
			if strings.Contains(string(f.Data), k) {
				t.Errorf("%s contains a pre-shared key without IncludeSecrets", f.Name)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	p := writeVGW(t, testVGW)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("tunnels:\n  - name: x\n    local_address: 1.2.3\n"), 0o600)
	for _, c := range []struct {
		format, path string
		o            Options
		want         string
	}{
		{"cisco", p, Options{}, `unknown format "cisco" (formats: ` + strings.Join(Formats(), ", ") + ")"},
		{"bird", p, Options{Connections: []string{"vpn-x"}}, `unknown connection "vpn-x"`},
		{"bird", p, Options{Connections: []string{"vpn-x"}}, `(connections: vpn-a, vpn-b)`},
		{"bird", p, Options{Advertise: []string{"10.0.0.1/8"}}, "has host bits set"},
		{"bird", p, Options{Advertise: []string{"nope"}}, "not a CIDR prefix"},
		{"strongswan", p, Options{CustomerAddress: "x"}, `customer address "x" is not an IPv4 address`},
		{"bird", bad, Options{}, "bad.yaml:3"},
		{"bird", filepath.Join(t.TempDir(), "missing.yaml"), Options{}, "no such file"},
	} {
		_, err := Export(c.format, c.path, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Export(%s, %+v): %v, want an error with %q", c.format, c.o, err, c.want)
		}
	}
}

func TestSelectConnection(t *testing.T) {
	p := writeVGW(t, testVGW)
	fs := files(t, "strongswan", p, Options{Connections: []string{"vpn-b"}})
	if _, ok := fs["b1/swanctl.conf"]; !ok || len(fs) != 4 {
		t.Errorf("vpn-b: files %v, want b1's four", keys(fs))
	}
	fs = files(t, "strongswan", p, Options{})
	if len(fs) != 12 {
		t.Errorf("all connections: %d files %v, want 12", len(fs), keys(fs))
	}
}

func keys(m map[string]File) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	return s
}

func TestBIRD(t *testing.T) {
	p := writeVGW(t, testVGW)
	fs := files(t, "bird", p, Options{Advertise: []string{"10.10.0.0/16", "10.20.0.0/16"}})
	f, ok := fs["bird.conf"]
	if !ok || len(fs) != 1 || f.Mode != 0o644 {
		t.Fatalf("files %v", keys(fs))
	}
	text := string(f.Data)
	hasLines(t, "bird.conf", text,
		"router id 169.254.10.2;",
		"route 10.10.0.0/16 blackhole;", "route 10.20.0.0/16 blackhole;",
		"hold time 30;", "keepalive time 10;",
		"export where proto = \"customer_prefixes\";",
		"protocol bgp aws_a1 from aws {", "local 169.254.10.2 as 65000;", "neighbor 169.254.10.1 as 64512;",
		"protocol bgp aws_a2 from aws {", "local 169.254.11.2 as 65000;", "neighbor 169.254.11.1 as 64512;",
		"protocol bgp aws_b1 from aws {", "local 169.254.12.2 as 65010;", "neighbor 169.254.12.1 as 64512;",
	)
	noSecrets(t, fs)
	birdParse(t, text)

	// Static routing: no BGP to configure.
	sp := writeVGW(t, staticVGW)
	if _, err := Export("bird", sp, Options{}); err == nil || !strings.Contains(err.Error(), "static routing") {
		t.Errorf("static: %v", err)
	}
}

// staticVGW is a connection with static routing.
const staticVGW = `tunnels:
  - name: s1
    connection: vpn-s
    local_address: 203.0.113.10
    remote_address: 198.51.100.2
    psk_file: a1.psk
    local_ts: 172.31.0.0/16
    static_routes: [10.10.0.0/16]
  - name: s2
    connection: vpn-s
    local_address: 203.0.113.20
    remote_address: 198.51.100.2
    psk_file: a2.psk
    local_ts: 172.31.0.0/16
    static_routes: [10.10.0.0/16]
`

// birdParse checks a configuration with BIRD's own parser (bird -p), when
// BIRD 2 is installed (CI installs bird2).
func birdParse(t *testing.T, text string) {
	t.Helper()
	bin, err := exec.LookPath("bird")
	if err != nil {
		bin = "/usr/sbin/bird"
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("bird not installed (apt-get install bird2)")
			}
			t.Log("bird not installed: configuration not parsed by BIRD")
			return
		}
	}
	f := filepath.Join(t.TempDir(), "bird.conf")
	os.WriteFile(f, []byte(text), 0o600)
	if out, err := exec.Command(bin, "-p", "-c", f).CombinedOutput(); err != nil {
		t.Errorf("bird -p rejects the configuration: %v\n%s\n%s", err, out, text)
	}
}
