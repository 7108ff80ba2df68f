package interop

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/bird"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// The customer gateway's public address in examples/vgw.yaml (the NAT's).
const exampleCGWPublic = "198.51.100.2"

// TestExportedExampleConfiguration is the quick start of docs/export.md as a
// user runs it: our vgw runs examples/vgw.yaml exactly as shipped (AWS
// defaults on tunnel1, tunnel2 narrowed; keys from examples/tunnel*.psk;
// only the control socket is moved with --control), `vpnlab export
// --format strongswan examples/vgw.yaml` and `--format bird` make the
// customer side, and a stock charon per tunnel plus BIRD run those files in
// the cgw namespace behind a NAT that maps it to 198.51.100.2, the address
// the example expects. Both tunnels come up, BGP is Established on both
// with routes both ways, and the hosts behind the gateways ping each other.
func TestExportedExampleConfiguration(t *testing.T) {
	requirements(t)
	if _, err := bird.Available(); err != nil {
		t.Skipf("interop: %v (.ci/run installs bird2)", err)
	}
	if err := strongswan.Available(append(slices.Clone(strongswan.DefaultPlugins), "updown")); err != nil {
		t.Skip(err)
	}
	example, err := filepath.Abs(filepath.Join("..", "examples", "vgw.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vgwBin, vpnlabBin := buildGateway(t, "vgw"), buildGateway(t, "vpnlab")
	e := newConnEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// The wan router maps the customer gateway to the example's address
	// instead of its own; the vgw routes that address back through it.
	if err := e.wan.Nft("flush chain ip netlab_nat postrouting\nadd rule ip netlab_nat postrouting oifname \"vgw0\" ip saddr 10.99.0.0/24 snat to " + exampleCGWPublic + "\n"); err != nil {
		t.Fatal(err)
	}
	if out, err := e.vgw.Run(ctx, "ip", "route", "add", exampleCGWPublic+"/32", "via", "203.0.113.1"); err != nil {
		t.Fatalf("route to the customer gateway's public address: %v\n%s", err, out)
	}

	sock := filepath.Join(e.lab.LogDir(), "vgw.sock")
	cmd := e.vgw.Command(context.Background(), vgwBin, "--config", example, "--control", "unix:"+sock)
	p, err := e.vgw.StartCmd(cmd, "vgw")
	if err != nil {
		t.Fatal(err)
	}
	vg := &gateway{name: "vgw", proc: p, sock: sock, control: "unix:" + sock}
	e.onFailure("our vgw log "+p.Log, func() string { return p.Tail(logTailLines) })
	waitSocket(t, p, sock)

	// Short: the vici sockets in it must fit a unix socket address.
	dir, err := os.MkdirTemp("", "vpnlab-exa-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	swanDir, birdDir := filepath.Join(dir, "strongswan"), filepath.Join(dir, "bird")
	runExport(t, vpnlabBin, "", "--format", "strongswan", "--ike-version", "ikev1", "--include-secrets", "--customer-address", connCGWLocal.String(), "--out", swanDir, example)
	runExport(t, vpnlabBin, "", "--format", "bird", "--advertise", onpremNet.String(), "--out", birdDir, example)

	tunnels := []*exportedTunnel{{name: "tunnel1", inside: "169.254.10.2/30"}, {name: "tunnel2", inside: "169.254.11.2/30"}}
	tLoad := time.Now()
	startExportedCharons(ctx, t, e, swanDir, tunnels)
	bd := startExportedBIRD(ctx, t, e, birdDir)

	// tunnel1 keeps AWS's defaults, tunnel2 is narrowed in the example to
	// AES256/SHA2-256/DH 14, 19, 20 and ESP AES256-GCM-16 or AES256: the
	// vgw picks the lowest values in AWS's order of each list, whatever
	// the order offered, so AES256-CBC before AES256-GCM-16.
	want := map[string][2]string{
		"tunnel1": {"AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "AES_CBC-128/HMAC_SHA1_96/MODP_1024"},
		"tunnel2": {"AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "AES_CBC-256/HMAC_SHA2_256_128/MODP_2048"},
	}
	for _, tu := range tunnels {
		sa, csa, err := tu.charon.WaitEstablished(ctx, tu.name, tu.name, upTimeout)
		if err != nil {
			t.Fatalf("%s: %v", tu.name, err)
		}
		t.Logf("%s up %v after loading:%s", tu.name, time.Since(tLoad).Round(time.Millisecond), strongswan.Summary([]strongswan.IKESA{sa}))
		if sa.Version != 1 || sa.LocalID != exampleCGWPublic || sa.Raw["nat-local"] != "yes" {
			t.Errorf("%s: IKEv%d, local id %s, nat-local %q; want IKEv1 with id %s behind the NAT", tu.name, sa.Version, sa.LocalID, sa.Raw["nat-local"], exampleCGWPublic)
		}
		if got := [2]string{sa.Proposal(), csa.Proposal()}; got != want[tu.name] {
			t.Errorf("%s: proposals %q, want %q", tu.name, got, want[tu.name])
		}
		waitAddr(ctx, t, e.cgw, tu.charon.TUN(), tu.inside, true)
	}
	waitTunnels(t, vg, 30*time.Second, "tunnel1", "tunnel2")
	if _, err := bd.WaitEstablished(ctx, 30*time.Second, "aws_tunnel1", "aws_tunnel2"); err != nil {
		t.Fatal(err)
	}
	t.Logf("BGP Established on both tunnels %v after loading", time.Since(tLoad).Round(time.Millisecond))
	waitRoutesBothWays(ctx, t, vg, bd)
	pingUntil(t, e.onprem, vpcHost)
	pingUntil(t, e.vpc, onpremHost)
	checkCounters(t, vg)
}

// waitSocket waits until a gateway process opened its control socket,
// failing at once when it exits.
func waitSocket(t *testing.T, p interface{ Exited() (bool, error) }, sock string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		if ok, err := p.Exited(); ok {
			t.Fatalf("our gateway exited at start-up: %v (log below)", err)
		}
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control socket %s within %v", sock, startTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
