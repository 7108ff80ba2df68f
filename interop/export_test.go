package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/internal/bird"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// exportedTunnel is one tunnel of the exported strongSwan customer gateway.
type exportedTunnel struct {
	name      string // tunnel, IKE_SA and CHILD_SA name (the vgw's)
	bgp       string // BIRD protocol name in the exported bird.conf
	inside    string // the customer's inside address with /30
	vgwInside string
	wantIKE   string
	wantESP   string
	charon    *strongswan.Charon
}

// runExport runs `vpnlab export ARGS...` with the PSK in the environment
// (the vgw configuration takes it from psk_env) and fails the test on an
// error.
func runExport(t *testing.T, bin, psk string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"export"}, args...)...)
	cmd.Env = append(os.Environ(), pskEnv+"="+psk)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vpnlab export %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestExportedStrongSwanBIRDCustomerGateway: `vpnlab export --format
// strongswan` and `--format bird` of our vgw's configuration, used as they
// are by a stock charon (kernel-libipsec, one instance per tunnel, its
// strongswan.conf included, swanctl.conf loaded from the exported
// directory, which is bind-mounted over /etc/swanctl so the updown paths
// resolve) and BIRD 2 in the cgw namespace behind the NAT. Tunnel 1 keeps
// all of AWS's default proposals (the export offers every one, the vgw
// picks the lowest values), tunnel 2 is narrowed to one proposal. Both
// tunnels come up (initiated by start_action = start at load), the exported
// updown script puts the inside addresses on each charon's TUN device,
// both BGP sessions are Established on both sides with the exported
// prefixes, and the hosts behind the gateways ping each other.
func TestExportedStrongSwanBIRDCustomerGateway(t *testing.T) {
	requirements(t)
	if _, err := bird.Available(); err != nil {
		t.Skipf("interop: %v (.ci/run installs bird2)", err)
	}
	if err := strongswan.Available(append(slices.Clone(strongswan.DefaultPlugins), "updown")); err != nil {
		t.Skip(err)
	}
	vgwBin, vpnlabBin := buildGateway(t, "vgw"), buildGateway(t, "vpnlab")
	t0 := time.Now()
	e := newConnEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Our vgw: the connection test's configuration, tunnel 1 with AWS's
	// default proposals (no phase1/phase2 lists).
	vcfg, _ := e.configs(connOpts{})
	narrow := "    phase1: {proposals: [aes256-sha256-modp2048]}\n    phase2: {proposals: [esp-aes128gcm16-modp2048]}\n"
	if strings.Count(vcfg, narrow) != 2 {
		t.Fatalf("vgw configuration without the two proposal lists to change:\n%s", vcfg)
	}
	vcfg = strings.Replace(vcfg, narrow, "", 1)
	vg := e.startGateway(vgwBin, "vgw", vcfg, e.psk, e.vgw)
	vgwYAML := filepath.Join(e.lab.LogDir(), "vgw.yaml")

	dir := filepath.Join(e.lab.LogDir(), "export")
	swanDir, birdDir := filepath.Join(dir, "strongswan"), filepath.Join(dir, "bird")
	runExport(t, vpnlabBin, e.psk, "--format", "strongswan", "--include-secrets", "--customer-address", connCGWLocal.String(), "--out", swanDir, vgwYAML)
	runExport(t, vpnlabBin, e.psk, "--format", "bird", "--advertise", onpremNet.String(), "--out", birdDir, vgwYAML)
	if fi, err := os.Stat(filepath.Join(swanDir, "tunnel1", "secrets.conf")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("exported secrets.conf: %v (mode %v), want mode 0600", err, fi)
	}

	tunnels := []*exportedTunnel{
		{name: "tunnel1", bgp: "aws_tunnel1", inside: "169.254.10.2/30", vgwInside: "169.254.10.1",
			wantIKE: "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", wantESP: "AES_CBC-128/HMAC_SHA1_96/MODP_1024"},
		{name: "tunnel2", bgp: "aws_tunnel2", inside: "169.254.11.2/30", vgwInside: "169.254.11.1",
			wantIKE: wantIKEChosen, wantESP: "AES_GCM_16-128/MODP_2048"},
	}
	var (
		loadMu  sync.Mutex
		loadOut = map[string]string{}
	)
	e.onFailure("swanctl --load-all output", func() string {
		loadMu.Lock()
		defer loadMu.Unlock()
		var b strings.Builder
		for k, v := range loadOut {
			fmt.Fprintf(&b, "--- %s:\n%s\n", k, v)
		}
		return b.String()
	})
	tLoad := time.Now()
	for _, tu := range tunnels {
		c, err := strongswan.Start(ctx, e.cgw, strongswan.Options{
			Name:    "charon-" + tu.name,
			Include: filepath.Join(swanDir, tu.name, "strongswan.conf"),
			Mounts:  []strongswan.Mount{{Source: swanDir, Target: "/etc/swanctl"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		tu.charon = c
		t.Cleanup(func() { c.Stop() })
		e.onFailure(tu.name+" charon log "+c.LogPath(), func() string { return c.LogTail(logTailLines) })
		// start_action = start: loading initiates the tunnel.
		out, err := c.LoadFile(ctx, filepath.Join(swanDir, tu.name, "swanctl.conf"))
		loadMu.Lock()
		loadOut[tu.name] = string(out)
		loadMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}

	bcfg, err := os.ReadFile(filepath.Join(birdDir, "bird.conf"))
	if err != nil {
		t.Fatal(err)
	}
	bd, err := bird.Start(ctx, e.cgw, bird.Options{Name: "bird-cgw", Config: string(bcfg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bd.Stop() })
	e.onFailure("BIRD log "+bd.LogPath(), func() string { return bd.LogTail(logTailLines) })

	for _, tu := range tunnels {
		sa, csa, err := tu.charon.WaitEstablished(ctx, tu.name, tu.name, upTimeout)
		if err != nil {
			t.Fatalf("%s: %v", tu.name, err)
		}
		t.Logf("%s up %v after loading:%s", tu.name, time.Since(tLoad).Round(time.Millisecond), strongswan.Summary([]strongswan.IKESA{sa}))
		if sa.Version != 1 || !sa.Initiator || sa.LocalID != connCGWPublic.String() || sa.Raw["nat-local"] != "yes" {
			t.Errorf("%s: IKEv%d initiator %v local id %s nat-local %q; want IKEv1 initiator with id %s behind the NAT",
				tu.name, sa.Version, sa.Initiator, sa.LocalID, sa.Raw["nat-local"], connCGWPublic)
		}
		if got := sa.Proposal(); got != tu.wantIKE {
			t.Errorf("%s: IKE proposal %q, want %q", tu.name, got, tu.wantIKE)
		}
		if got := csa.Proposal(); got != tu.wantESP || !csa.Encap || csa.Mode != "TUNNEL" {
			t.Errorf("%s: CHILD_SA %s %s encap %v, want %s TUNNEL in UDP", tu.name, got, csa.Mode, csa.Encap, tu.wantESP)
		}
	}

	// The exported updown script put each inside address on its charon's TUN.
	for _, tu := range tunnels {
		out, err := e.cgw.Run(ctx, "ip", "-4", "-o", "addr", "show", "dev", tu.charon.TUN())
		if err != nil || !strings.Contains(string(out), "inet "+tu.inside+" ") {
			t.Fatalf("%s: %s has no %s (updown.sh): %v\n%s", tu.name, tu.charon.TUN(), tu.inside, err, out)
		}
	}

	waitTunnels(t, vg, 30*time.Second, "tunnel1", "tunnel2")
	ps, err := bd.WaitEstablished(ctx, 30*time.Second, "aws_tunnel1", "aws_tunnel2")
	if err != nil {
		t.Fatal(err)
	}
	tBGP := time.Since(tLoad)
	t.Logf("BIRD `show protocols`:\n%s", bird.FormatProtocols(ps))

	// Routes both ways: the vgw learns the exported --advertise prefix from
	// AS 65000 over both tunnels, BIRD learns the VPC from AS 64512 over both.
	var rv vgwRoutingView
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := control.Dial(vg.control).Raw(ctx, "GET", "/v1/routing")
		if err == nil {
			rv = vgwRoutingView{}
			err = json.Unmarshal(b, &rv)
		}
		if err == nil && slices.Equal(rv.bgpPathTunnels(onpremNet.String(), []uint32{65000}), []string{"tunnel1", "tunnel2"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("our vgw did not learn %s from AS 65000 over both tunnels (error %v):%s", onpremNet, err, rv.summary())
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		brs, err := bd.Routes(ctx, vpcNet.String())
		var from []string
		for _, r := range brs {
			if slices.Equal(r.ASPath, []uint32{64512}) {
				from = append(from, r.Protocol)
			}
		}
		slices.Sort(from)
		if err == nil && slices.Equal(from, []string{"aws_tunnel1", "aws_tunnel2"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("BIRD did not learn %s from AS 64512 over both sessions (error %v):\n%s", vpcNet, err, bird.FormatRoutes(brs))
		}
		time.Sleep(100 * time.Millisecond)
	}

	pingUntil(t, e.onprem, vpcHost)
	pingUntil(t, e.vpc, onpremHost)
	checkCounters(t, vg)
	t.Logf("timings: BGP established on both %v after loading, whole test %v", tBGP.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}
