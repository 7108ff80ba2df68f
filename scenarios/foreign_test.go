package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const foreignMinimal = `name: t
topology:
  customer:
    gateway:
      kind: strongswan
steps:
  - wait: tunnel1 phase2 up
`

// TestForeignValidation: what a strongSwan customer gateway cannot do is
// refused with the line and why.
func TestForeignValidation(t *testing.T) {
	s, err := Parse([]byte(foreignMinimal), "x.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pg := s.plan.gateways["cgw"]; pg.kind != "strongswan" || pg.bgp != "bird" || pg.kindLine != 5 {
		t.Fatalf("plan: kind %q bgp %q line %d", pg.kind, pg.bgp, pg.kindLine)
	}
	gw := func(extra string) string {
		return strings.Replace(foreignMinimal, "      kind: strongswan\n", "      kind: strongswan\n"+extra, 1)
	}
	for _, c := range []struct{ src, want string }{
		{strings.Replace(foreignMinimal, "strongswan", "libreswan", 1), `x.yaml:5: topology.customer.gateway.kind: "libreswan" is not allowed (allowed: vpnlab, strongswan)`},
		{gw("      bgp: quagga\n"), `x.yaml:6: topology.customer.gateway.bgp: "quagga" is not allowed (allowed: bird, frr, none)`},
		{gw("      binary: cgw\n"), "x.yaml:6: topology.customer.gateway.binary: a strongswan customer gateway runs charon"},
		{gw("      config: {bgp: {asn: 65000}}\n"), "x.yaml:5: topology.customer.gateway: config, config_file and tunnel_options configure a vpnlab gateway"},
		{gw("      swanctl_files: {tunnel1: nope.conf}\n"), "x.yaml:6: topology.customer.gateway.swanctl_files.tunnel1: stat nope.conf: no such file"},
		{strings.Replace(foreignMinimal, "      kind: strongswan\n", "      bgp: bird\n", 1), "x.yaml:5: topology.customer.gateway: bgp and swanctl_files need kind: strongswan"},
		{foreignMinimal + "  - ike_impair: {gateway: cgw, spec: drop:main:3}\n", "x.yaml:8: steps[1] (ike_impair): IKE impairments act inside a vpnlab gateway; the customer gateway is strongSwan (kind strongswan, line 5)"},
		{foreignMinimal + "  - bgp: {gateway: cgw, advertise: 10.20.0.0/16}\n", "x.yaml:8: steps[1] (bgp): changes go through a vpnlab gateway's control API"},
		{foreignMinimal + "  - assert: tunnel1 retransmits == 0\n", `x.yaml:8: steps[1]: "tunnel1 retransmits == 0": field retransmits is not reported by strongSwan; the customer gateway is strongSwan (kind strongswan, line 5) (a condition without a gateway asks both; write vgw tunnel1 retransmits ...)`},
		{foreignMinimal + "  - assert: cgw counter malformed == 0\n", "x.yaml:8: steps[1]: \"cgw counter malformed == 0\": engine counters belong to a vpnlab gateway"},
		{gw("      bgp: none\n") + "  - wait: cgw tunnel1 bgp Established\n", "the strongSwan customer gateway runs no BGP (bgp: none)"},
		{strings.Replace(foreignMinimal, "  customer:\n", "  aws:\n    gateway: {kind: strongswan}\n  customer:\n", 1), `x.yaml:4: topology.aws.gateway.kind: "strongswan" is not allowed: the AWS side is always a vpnlab gateway`},
	} {
		if got := parseErr(t, c.src, Options{}); !strings.Contains(got, c.want) {
			t.Errorf("error\n%s\nlacks\n%s", got, c.want)
		}
	}
	// Allowed: the vgw's fields, customer-side rekey/initiate/terminate
	// (run through swanctl), cgw tunnel fields strongSwan reports.
	ok := foreignMinimal + "  - rekey: {gateway: cgw, tunnel: tunnel1, phase: 2}\n  - initiate: {gateway: cgw, tunnel: tunnel2}\n" +
		"  - assert: [vgw tunnel1 retransmits == 0, cgw tunnel1 sas == 1, tunnel1 proposal contains AES, cgw log contains \"IKE_SA\"]\n"
	if _, err := Parse([]byte(ok), "x.yaml", Options{}); err != nil {
		t.Fatal(err)
	}
	if s, err := Parse([]byte(gw("      bgp: frr\n")), "x.yaml", Options{}); err != nil || s.plan.gateways["cgw"].bgp != "frr" {
		t.Fatalf("bgp: frr: %v", err)
	}
}

// TestForeignExport: Check exports the customer gateway's files from the
// generated vgw configuration; swanctl_files replaces a tunnel's
// swanctl.conf, customer_psk its key; no key reaches the output folder.
func TestForeignExport(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(dir, "own.conf")
	if err := os.WriteFile(own, []byte("# my own\nconnections {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(foreignMinimal, "      kind: strongswan\n", "      kind: strongswan\n      swanctl_files: {tunnel2: own.conf}\n", 1)
	src = strings.Replace(src, "topology:\n", "topology:\n  connections: [{name: vpn-1, psk: aws.key.12345678, customer_psk: cust.key.12345678}]\n", 1)
	s, err := Parse([]byte(src), filepath.Join(dir, "x.yaml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	work, out := filepath.Join(dir, "work"), filepath.Join(dir, "out")
	vgw := filepath.Join(dir, "vgw.yaml")
	data, env, err := s.plan.buildConfig(s.plan.gateways["vgw"], gatewayFiles{Config: vgw, Control: "s", KeyLog: "k", Events: "e"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vgw, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.plan.exportForeign(s.plan.gateways["cgw"], vgw, env, work, out); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(filepath.Join(work, "tunnel2", "swanctl.conf")); got != "# my own\nconnections {}\n" {
		t.Errorf("tunnel2 swanctl.conf not replaced: %q", got)
	}
	if got := read(filepath.Join(work, "tunnel1", "swanctl.conf")); !strings.Contains(got, "remote_addrs = 203.0.113.10") || !strings.Contains(got, "local_addrs = 10.99.0.2") {
		t.Errorf("tunnel1 swanctl.conf:\n%s", got)
	}
	if got := read(filepath.Join(work, "tunnel1", "secrets.conf")); !strings.Contains(got, `"cust.key.12345678"`) {
		t.Errorf("secrets.conf has not the customer's key:\n%s", got)
	}
	if got := read(filepath.Join(work, "bird.conf")); !strings.Contains(got, "route 10.10.1.0/24 blackhole") {
		t.Errorf("bird.conf does not advertise the customer's host network:\n%s", got)
	}
	filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if b := read(p); strings.Contains(b, "key.12345678") || strings.HasSuffix(p, "secrets.conf") {
				t.Errorf("a key in the output folder: %s", p)
			}
		}
		return nil
	})
}
