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

	// IKEv2 by default (the example allows both), IKEv1 on request.
	for v, want := range map[string]string{"": "version = 2  # IKEv2", "ikev1": "version = 1  # IKEv1", "IKEv2": "version = 2  # IKEv2"} {
		code, out, errOut = runCLI("export", "--format", "strongswan", "--ike-version", v, vgw)
		if code != 0 || strings.Count(out, want) != 2 {
			t.Errorf("--ike-version %q: exit %d %s, want %q twice", v, code, errOut, want)
		}
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
		{[]string{"export", vgw}, "--format is required (formats: strongswan, libreswan, bird, frr, vpnlab, generic, containerlab)"},
		{[]string{"export", "--format", "cisco", vgw}, `unknown format "cisco"`},
		{[]string{"export", "--format", "bird", "--connection", "vpn-x", vgw}, `unknown connection "vpn-x" in ../../examples/vgw.yaml (connections: vpn-0example)`},
		{[]string{"export", "--format", "bird", bad}, "vgw.yaml:4"},
		{[]string{"export", "--format", "bird", bad}, `"nope" is not an IP address`},
		{[]string{"export", "--format", "bird", "--advertise", "10.1.1.1/8", vgw}, "has host bits set"},
		{[]string{"export", "--format", "bird"}, "accepts 1 arg(s)"},
		{[]string{"export", "--format", "generic", "--ike-version", "ikev3", vgw}, `--ike-version "ikev3": want ikev1 or ikev2`},
	} {
		code, _, errOut := runCLI(c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "goroutine") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut, c.want)
		}
	}
}

// TestExportContainerlabCLI: the format decides what the argument is; the
// wrong kind of file and the other formats' flags are refused with a
// message.
func TestExportContainerlabCLI(t *testing.T) {
	scen, vgw := "../../scenarios/failover.yaml", "../../examples/vgw.yaml"
	dir := t.TempDir()
	code, out, errOut := runCLI("export", "--format", "containerlab", "--include-secrets", "--lab-name", "fo", "--out", dir, scen)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for name, mode := range map[string]os.FileMode{"fo.clab.yml": 0o644, "Dockerfile": 0o644, "steps.txt": 0o644,
		"cgw/cgw.yaml": 0o644, "cgw/gateway.sh": 0o755, "cgw/psk.env": 0o600, "vgw/psk.env": 0o600, "wan/wan.nft": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v mode %v, want %v", name, err, fi, mode)
		}
	}
	if !strings.Contains(out, "wrote "+filepath.Join(dir, "fo.clab.yml")) {
		t.Errorf("stdout:\n%s", out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--format", "containerlab", vgw}, "is a vgw configuration (it has tunnels), but --format containerlab takes a scenario file; the formats that take a vgw configuration: strongswan, libreswan, bird, frr, vpnlab, generic"},
		{[]string{"export", "--format", "strongswan", scen}, "is a scenario file (it has a topology or steps), but --format strongswan takes a vgw configuration; the formats that take a scenario file: containerlab"},
		{[]string{"export", "--format", "containerlab", "--advertise", "10.0.0.0/8", scen}, "--advertise: not used by --format containerlab"},
		{[]string{"export", "--format", "bird", "--image", "x", vgw}, "--image: only used by --format containerlab"},
		{[]string{"export", "--format", "containerlab", "--set", "nope=1", scen}, "--set nope: no such variable"},
		{[]string{"export", "--format", "containerlab", "--set", "nope", scen}, `--set "nope": expected name=value`},
		{[]string{"export", "--format", "containerlab", "--lab-name", "a b", scen}, `lab name "a b"`},
		{[]string{"export", "--format", "containerlab", "--machine", "aws", scen}, "--machine aws needs --vxlan-remote"},
		{[]string{"export", "--format", "bird", "--machine", "aws", vgw}, "--machine/--vxlan-remote/--vni: only used by --format containerlab"},
	} {
		code, _, errOut := runCLI(c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "goroutine") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut, c.want)
		}
	}
}
