package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

// These tests run the real CLI (vpnlab run) on the shipped scenarios in
// network namespaces: root, iproute2, nftables and /dev/net/tun needed.

func needLab(t *testing.T) {
	t.Helper()
	if err := preflight(); err != nil {
		t.Skipf("scenario runs: %v", err)
	}
}

// buildVpnlab builds cmd/vpnlab once per test binary run.
var vpnlabBin string

func vpnlab(t *testing.T) string {
	t.Helper()
	if vpnlabBin != "" {
		return vpnlabBin
	}
	dir, err := os.MkdirTemp("", "vpnlab-bin-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "vpnlab")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/vpnlab")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	vpnlabBin = bin
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if vpnlabBin != "" {
		os.RemoveAll(filepath.Dir(vpnlabBin))
	}
	os.Exit(code)
}

// runCLI runs vpnlab with args and returns its output and exit status.
func runCLI(t *testing.T, d time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, vpnlab(t), args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("vpnlab %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), code
}

// labLeft returns the namespaces of the run recorded in dir's timeline
// that still exist, and its marker if it does (a run must leave none).
func labLeft(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "timeline.json"))
	if err != nil {
		t.Fatalf("no timeline: %v", err)
	}
	var tl struct {
		Events []struct {
			Type   string            `json:"type"`
			Detail map[string]string `json:"detail"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &tl); err != nil {
		t.Fatal(err)
	}
	id := ""
	for _, e := range tl.Events {
		if e.Type == "lab" {
			id = e.Detail["id"]
		}
	}
	if id == "" {
		t.Fatalf("the timeline has no lab event")
	}
	left, _ := filepath.Glob("/run/netns/" + id + "-*")
	if _, err := os.Stat(filepath.Join(netlab.MarkerDir, id)); err == nil {
		left = append(left, filepath.Join(netlab.MarkerDir, id))
	}
	return left
}

// TestShippedScenarios runs every scenario in scenarios/: each must pass,
// well under a minute, and leave nothing behind.
func TestShippedScenarios(t *testing.T) {
	needLab(t)
	files, _ := filepath.Glob("*.yaml")
	out := t.TempDir()
	for _, f := range files {
		name := strings.TrimSuffix(f, ".yaml")
		t.Run(name, func(t *testing.T) {
			if s, err := Load(f, Options{}); err == nil {
				if err := s.plan.foreignPreflight(); err != nil {
					t.Skipf("%v (.ci/run installs strongSwan and BIRD)", err)
				}
			}
			start := time.Now()
			text, code := runCLI(t, 2*time.Minute, "run", "--out", out, f)
			if code != 0 {
				t.Fatalf("vpnlab run %s: exit %d\n%s", f, code, text)
			}
			if !strings.Contains(text, "PASS  "+name) {
				t.Errorf("no PASS verdict in the output:\n%s", text)
			}
			if left := labLeft(t, filepath.Join(out, name)); len(left) > 0 {
				t.Errorf("namespaces left behind: %v", left)
			}
			cgwFiles := "cgw.yaml"
			if strings.HasPrefix(name, "strongswan-") { // a foreign customer gateway: vpnlab export's files
				cgwFiles = "cgw-strongswan/tunnel1/swanctl.conf"
			}
			for _, a := range []string{"failover.html", "junit.xml", "timeline.json", "wan.pcap", "keys.log", cgwFiles, "vgw-events.ndjson"} {
				if _, err := os.Stat(filepath.Join(out, name, a)); err != nil {
					t.Errorf("artifact missing: %v", err)
				}
			}
			t.Logf("%s: %v", name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestWrongExpectationFails: a deliberately wrong expectation fails the
// run (exit 1) with what was expected and what was seen, and the steps
// after it are skipped.
func TestWrongExpectationFails(t *testing.T) {
	needLab(t)
	out := t.TempDir()
	text, code := runCLI(t, 2*time.Minute, "run", "--out", out, "testdata/wrong-expectation.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, text)
	}
	for _, want := range []string{
		"FAIL  wrong-expectation",
		"tunnel1 proposal == aes128-sha1-modp1024: expected proposal == aes128-sha1-modp1024, seen tunnel1 proposal: cgw aes256-sha256-modp2048, vgw aes256-sha256-modp2048",
		"flow ping sent == 11: expected sent == 11, seen 10",
		"skipped",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	junit, err := os.ReadFile(filepath.Join(out, "wrong-expectation", "junit.xml"))
	if err != nil || !bytes.Contains(junit, []byte("<failure")) {
		t.Errorf("junit.xml has no failure (%v)", err)
	}
	if left := labLeft(t, filepath.Join(out, "wrong-expectation")); len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
}

// TestInterruptCleansUp: SIGTERM in the middle of a run stops it, cleans
// up everything (namespaces, gateway processes) and still writes the
// record; a second run right after works.
func TestInterruptCleansUp(t *testing.T) {
	needLab(t)
	out := t.TempDir()
	cmd := exec.Command(vpnlab(t), "run", "--out", out, "failover.yaml")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(buf.String(), "step 3/") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("vpnlab run did not exit 30s after SIGTERM:\n%s", buf.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d after SIGTERM, want 130\n%s", code, buf.String())
	}
	if !strings.Contains(buf.String(), "interrupted") {
		t.Errorf("the summary does not say the run was interrupted:\n%s", buf.String())
	}
	if left := labLeft(t, filepath.Join(out, "failover")); len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
	if text, code := runCLI(t, 2*time.Minute, "run", "--out", out, "basic.yaml"); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, text)
	}
}

// TestNotRoot: without root the run says so and what to do, exit 3.
func TestNotRoot(t *testing.T) {
	needLab(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	bin := vpnlab(t)
	os.Chmod(filepath.Dir(bin), 0o755)
	abs, _ := filepath.Abs("basic.yaml")
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "run", "--out", t.TempDir(), abs)
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 3 {
		t.Fatalf("exit %v, want 3\n%s", err, out)
	}
	if !strings.Contains(string(out), "needs root") || strings.Contains(string(out), "goroutine") {
		t.Errorf("unclear message:\n%s", out)
	}
}
