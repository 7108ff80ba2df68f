package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestVectorsShipped(t *testing.T) {
	code, out, errOut := runCLI("vectors", "../../testvectors")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "PASS  prf  prf_rfc4868.json  PRF-1 (sha256)\n") {
		t.Errorf("missing PRF-1 line:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if !strings.HasSuffix(last, " passed, 0 failed") {
		t.Errorf("summary %q", last)
	}
	if errOut != "" {
		t.Errorf("stderr: %s", errOut)
	}
}

func TestVectorsFailures(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"kind":"prf","source":"x","vectors":[
 {"name":"ok","hash":"sha1","key":"4a656665","data":"7768617420646f2079612077616e7420666f72206e6f7468696e673f","output":"effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
 {"name":"bad","hash":"sha1","key":"4a656665","data":"7768617420646f2079612077616e7420666f72206e6f7468696e673f","output":"00"}]}`), 0o644)
	code, out, _ := runCLI("vectors", dir)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(out, "FAIL  prf  a.json  bad : output: expected 00 got effcdf6a") || !strings.HasSuffix(out, "1 passed, 1 failed\n") {
		t.Errorf("output:\n%s", out)
	}

	// Unknown kind and unreadable path: exit 1, clear message, no panic trace.
	os.WriteFile(filepath.Join(dir, "u.json"), []byte(`{"kind":"no-such-kind","source":"x","vectors":[{"name":"a"}]}`), 0o644)
	code, out, errOut := runCLI("vectors", filepath.Join(dir, "u.json"), filepath.Join(dir, "missing"))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, s := range []string{`unknown vector kind "no-such-kind"`, "known kinds:", "missing: cannot read"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("stderr lacks %q:\n%s", s, errOut)
		}
	}
	if strings.Contains(errOut, "goroutine") || !strings.Contains(out, "0 passed, 0 failed, 2 file error(s)") {
		t.Errorf("stdout %q stderr %q", out, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, errOut := runCLI("vectors"); code != 2 || !strings.Contains(errOut, "requires at least 1 arg") {
		t.Errorf("no args: %d %q", code, errOut)
	}
	if code, _, _ := runCLI("bogus"); code != 2 {
		t.Errorf("unknown command: %d", code)
	}
}
