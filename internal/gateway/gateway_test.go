package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/gwconfig"
)

const psk = "Gateway.Test_PSK_123"

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t.psk"), []byte(psk+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodConfig = `ike:
  port: 15500
  natt_port: 15501
tunnels:
  - name: t1
    local_address: 127.0.0.1
    remote_address: 127.0.0.2
    psk_file: t.psk
`

func run(ctx context.Context, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(ctx, gwconfig.VGW, "vgw", args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheck(t *testing.T) {
	p := writeConfig(t, goodConfig)
	code, out, errs := run(context.Background(), "--config", p, "--check", "--control", "unix:/tmp/x.sock", "--log-format", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, f := range []string{"profile:            vgw", "tunnel t1:", "ike_versions:     ikev1, ikev2 (initiates with ikev1)", "192 proposals", "control:            unix:/tmp/x.sock", "format=json", "configuration OK"} {
		if !strings.Contains(out, f) {
			t.Errorf("--check output lacks %q:\n%s", f, out)
		}
	}
	if strings.Contains(out+errs, psk) {
		t.Error("--check output contains the PSK")
	}
}

func TestConfigErrors(t *testing.T) {
	p := writeConfig(t, goodConfig+"    replay_window: 5\n    psk: "+psk+"\n")
	code, out, errs := run(context.Background(), "--config", p, "--check")
	if code != ExitError || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "vgw: "+p+":9: tunnels[0].replay_window: 5 is out of range") ||
		!strings.Contains(lines[1], ":10: tunnels[0].psk: inline pre-shared keys") || !strings.Contains(lines[2], "2 errors") {
		t.Errorf("stderr:\n%s", errs)
	}
	if strings.Contains(errs, psk) || strings.Contains(errs, "goroutine") {
		t.Errorf("stderr shows the PSK or a stack trace:\n%s", errs)
	}

	code, _, errs = run(context.Background(), "--config", filepath.Join(t.TempDir(), "none.yaml"))
	if code != ExitError || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: %d %q", code, errs)
	}
}

func TestUsage(t *testing.T) {
	if code, _, errs := run(context.Background()); code != ExitUsage || !strings.Contains(errs, "--config is required") {
		t.Errorf("no --config: %d %q", code, errs)
	}
	if code, _, _ := run(context.Background(), "--bogus"); code != ExitUsage {
		t.Errorf("bad flag: %d", code)
	}
	if code, _, _ := run(context.Background(), "--help"); code != ExitOK {
		t.Errorf("--help: %d", code)
	}
	p := writeConfig(t, goodConfig)
	for _, args := range [][]string{
		{"--log-format", "xml"}, {"--log-level", "loud"}, {"--control", "0.0.0.0:9500"},
	} {
		code, _, errs := run(context.Background(), append([]string{"--config", p, "--check"}, args...)...)
		if code != ExitUsage || !strings.Contains(errs, args[0]) {
			t.Errorf("%v: %d %q", args, code, errs)
		}
	}
}

type fakeKeyLog struct{ closed bool }

func (f *fakeKeyLog) IKEv1Keys([8]byte, []byte) {}
func (f *fakeKeyLog) ChildKeys(childsa.Pair)    {}
func (f *fakeKeyLog) Close() error              { f.closed = true; return nil }

func TestRunHooksAndLogs(t *testing.T) {
	p := writeConfig(t, goodConfig)
	kl := &fakeKeyLog{}
	var gotListen, gotKeyPath string
	KeyLogHook = func(path string) (KeyLog, error) { gotKeyPath = path; return kl, nil }
	ControlHook = func(ctx context.Context, listen string, eng control.Backend, log logrus.FieldLogger) (func() error, error) {
		gotListen = listen
		return func() error { <-ctx.Done(); return nil }, nil
	}
	defer func() { KeyLogHook, ControlHook = nil, nil }()

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the engine stops at once (or fails to start: both end Run)
	keyPath := filepath.Join(t.TempDir(), "keys")
	code, _, errs := run(ctx, "--config", p, "--log-format", "json", "--log-level", "debug", "--key-log", keyPath, "--control", "127.0.0.1:9599")
	if code != ExitOK && code != ExitError {
		t.Fatalf("exit %d", code)
	}
	if gotListen != "127.0.0.1:9599" || gotKeyPath != keyPath || !kl.closed {
		t.Errorf("hooks: listen %q key log %q closed %v", gotListen, gotKeyPath, kl.closed)
	}
	if strings.Contains(errs, psk) {
		t.Error("logs contain the PSK")
	}
	var sawTunnel bool
	for _, l := range strings.Split(strings.TrimSpace(errs), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue // the final one-line error, if the engine failed
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if ts, _ := m["time"].(string); len(ts) < len("2006-01-02T15:04:05.000") || ts[19] != '.' {
			t.Errorf("timestamp without ms: %q", ts)
		}
		if m["tunnel"] == "t1" && strings.Contains(m["msg"].(string), "aes128-sha1-modp1024") {
			sawTunnel = true
		}
	}
	if !sawTunnel {
		t.Errorf("no per-tunnel startup line:\n%s", errs)
	}
}

func TestRunHookFailures(t *testing.T) {
	p := writeConfig(t, goodConfig)
	defer func() { KeyLogHook, ControlHook = nil, nil }()
	KeyLogHook = func(string) (KeyLog, error) { return nil, errors.New("permission denied") }
	code, _, errs := run(context.Background(), "--config", p, "--key-log", "/x/keys")
	if code != ExitError || !strings.Contains(errs, "vgw: key log: permission denied") {
		t.Errorf("key log failure: %d %q", code, errs)
	}
	KeyLogHook = nil
	ControlHook = func(context.Context, string, control.Backend, logrus.FieldLogger) (func() error, error) {
		return nil, errors.New("address already in use")
	}
	code, _, errs = run(context.Background(), "--config", p, "--control", "127.0.0.1:9599")
	if code != ExitError || !strings.Contains(errs, "vgw: control API on 127.0.0.1:9599: address already in use") {
		t.Errorf("control failure: %d %q", code, errs)
	}
	// Without hooks, requested features are warnings.
	ControlHook = nil
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, errs = run(ctx, "--config", p, "--control", "127.0.0.1:9599", "--key-log", "/x/keys")
	if !strings.Contains(errs, "this build has no key logger") || !strings.Contains(errs, "this build has none") {
		t.Errorf("no-hook warnings missing:\n%s", errs)
	}
}

func TestNewLogger(t *testing.T) {
	var b bytes.Buffer
	l, err := NewLogger("text", "warn", &b)
	if err != nil {
		t.Fatal(err)
	}
	l.WithField("tunnel", "t1").Info("hidden")
	l.WithField("tunnel", "t1").Warn("shown")
	if s := b.String(); strings.Contains(s, "hidden") || !strings.Contains(s, "tunnel=t1") || !strings.Contains(s, "shown") {
		t.Errorf("text log: %q", s)
	}
	if _, err := NewLogger("xml", "info", &b); err == nil {
		t.Error("xml accepted")
	}
	if _, err := NewLogger("json", "loud", &b); err == nil {
		t.Error("level loud accepted")
	}
}
