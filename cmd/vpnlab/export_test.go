package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExportCLI(t *testing.T) {
	vgw := "../../examples/vgw.yaml"
	code, out, errOut := runCLI("export", "--format", "bird", "--advertise", "10.10.0.0/16,10.20.0.0/16", vgw)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "==> bird.conf <==\n# BIRD 2 configuration") || !strings.Contains(out, "route 10.20.0.0/16 blackhole;") {
		t.Errorf("stdout:\n%s", out)
	}
	code, out, _ = runCLI("export", "--format", "strongswan", "--connection", "vpn-0example", vgw)
	if code != 0 || strings.Count(out, "==> ") != 8 || !strings.Contains(out, "==> tunnel2/updown.sh <==\n#!/bin/sh\n") {
		t.Errorf("strongswan to stdout: exit %d, %d headers", code, strings.Count(out, "==> "))
	}

	dir := t.TempDir()
	code, out, errOut = runCLI("export", "--format", "vpnlab", "--include-secrets", "--out", dir, vgw)
	if code != 0 {
		t.Fatalf("--out: exit %d: %s", code, errOut)
	}
	for name, mode := range map[string]os.FileMode{"cgw.yaml": 0o644, "tunnel1.psk": 0o600, "tunnel2.psk": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v mode %v, want %v", name, err, fi, mode)
		}
		if !strings.Contains(out, "wrote "+filepath.Join(dir, name)) {
			t.Errorf("stdout does not list %s:\n%s", name, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "tunnel1.psk")); string(b) != "Example_PSK_tunnel1.replace_me\n" {
		t.Errorf("tunnel1.psk: %q, want examples/tunnel1.psk's key", b)
	}

	bad := filepath.Join(t.TempDir(), "vgw.yaml")
	os.WriteFile(bad, []byte("tunnels:\n  - name: t1\n    local_address: 203.0.113.10\n    remote_address: nope\n    psk_env: X\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", vgw}, "--format is required (formats: strongswan, libreswan, bird, frr, vpnlab, generic)"},
		{[]string{"export", "--format", "cisco", vgw}, `unknown format "cisco"`},
		{[]string{"export", "--format", "bird", "--connection", "vpn-x", vgw}, `unknown connection "vpn-x" in ../../examples/vgw.yaml (connections: vpn-0example)`},
		{[]string{"export", "--format", "bird", bad}, "vgw.yaml:4"},
		{[]string{"export", "--format", "bird", bad}, `"nope" is not an IP address`},
		{[]string{"export", "--format", "bird", "--advertise", "10.1.1.1/8", vgw}, "has host bits set"},
		{[]string{"export", "--format", "bird"}, "accepts 1 arg(s)"},
	} {
		code, _, errOut := runCLI(c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "goroutine") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut, c.want)
		}
	}
}
