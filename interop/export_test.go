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
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/internal/bird"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// exportedTunnel is one tunnel of the exported strongSwan customer gateway.
type exportedTunnel struct {
	name    string // tunnel, IKE_SA and CHILD_SA name (the vgw's)
	inside  string // the customer's inside address with /30
	wantIKE string
	wantESP string
	charon  *strongswan.Charon
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
// resolve, and its vici socket is the exported one) and BIRD 2 in the cgw namespace behind the NAT. Tunnel 1 keeps
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

	// Short: the vici socket in it must fit a unix socket address.
	dir, err := os.MkdirTemp("", "vpnlab-exp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	swanDir, birdDir := filepath.Join(dir, "strongswan"), filepath.Join(dir, "bird")
	runExport(t, vpnlabBin, e.psk, "--format", "strongswan", "--ike-version", "ikev1", "--include-secrets", "--customer-address", connCGWLocal.String(), "--out", swanDir, vgwYAML)
	runExport(t, vpnlabBin, e.psk, "--format", "bird", "--advertise", onpremNet.String(), "--out", birdDir, vgwYAML)
	if fi, err := os.Stat(filepath.Join(swanDir, "tunnel1", "secrets.conf")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("exported secrets.conf: %v (mode %v), want mode 0600", err, fi)
	}

	tunnels := []*exportedTunnel{
		{name: "tunnel1", inside: "169.254.10.2/30",
			wantIKE: "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", wantESP: "AES_CBC-128/HMAC_SHA1_96/MODP_1024"},
		{name: "tunnel2", inside: "169.254.11.2/30",
			wantIKE: wantIKEChosen, wantESP: "AES_GCM_16-128/MODP_2048"},
	}
	tLoad := time.Now()
	startExportedCharons(ctx, t, e, swanDir, tunnels)

	bd := startExportedBIRD(ctx, t, e, birdDir)

	checkExportedSAs(ctx, t, tunnels, tLoad)

	// The exported updown script put each inside address on its charon's TUN.
	for _, tu := range tunnels {
		waitAddr(ctx, t, e.cgw, tu.charon.TUN(), tu.inside, true)
	}

	waitTunnels(t, vg, 30*time.Second, "tunnel1", "tunnel2")
	ps, err := bd.WaitEstablished(ctx, 30*time.Second, "aws_tunnel1", "aws_tunnel2")
	if err != nil {
		t.Fatal(err)
	}
	tBGP := time.Since(tLoad)
	t.Logf("BIRD `show protocols`:\n%s", bird.FormatProtocols(ps))

	waitRoutesBothWays(ctx, t, vg, bd)
	pingUntil(t, e.onprem, vpcHost)
	pingUntil(t, e.vpc, onpremHost)
	checkCounters(t, vg)

	tu := tunnels[1]
	dDown := downAndUp(ctx, t, e, bd, tu)
	t.Logf("timings: BGP established on both %v after loading; %s down and up again, BGP back %v after the terminate; whole test %v",
		tBGP.Round(time.Millisecond), tu.name, dDown.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}

// startExportedCharons starts one charon per tunnel with the exported
// strongswan.conf included, the export directory bind-mounted over
// /etc/swanctl (the updown paths) and the exported vici socket, and loads
// the exported swanctl.conf (start_action = start: loading initiates).
func startExportedCharons(ctx context.Context, t *testing.T, e *connEnv, swanDir string, tunnels []*exportedTunnel) {
	t.Helper()
	loadOut := map[string]string{}
	e.onFailure("swanctl --load-all output", func() string {
		var b strings.Builder
		for k, v := range loadOut {
			fmt.Fprintf(&b, "--- %s:\n%s\n", k, v)
		}
		return b.String()
	})
	for _, tu := range tunnels {
		c, err := strongswan.Start(ctx, e.cgw, strongswan.Options{
			Name:    "charon-" + tu.name,
			Include: filepath.Join(swanDir, tu.name, "strongswan.conf"),
			// the exported socket /etc/swanctl/TUNNEL/charon.vici, seen from here
			Vici:   filepath.Join(swanDir, tu.name, "charon.vici"),
			Mounts: []strongswan.Mount{{Source: swanDir, Target: "/etc/swanctl"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		tu.charon = c
		t.Cleanup(func() { c.Stop() })
		e.onFailure(tu.name+" charon log "+c.LogPath(), func() string { return c.LogTail(logTailLines) })
		out, err := c.LoadFile(ctx, filepath.Join(swanDir, tu.name, "swanctl.conf"))
		loadOut[tu.name] = string(out)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// startExportedBIRD starts BIRD in the cgw namespace with the exported
// bird.conf.
func startExportedBIRD(ctx context.Context, t *testing.T, e *connEnv, birdDir string) *bird.BIRD {
	t.Helper()
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
	return bd
}

// checkExportedSAs waits for each tunnel's IKE_SA and CHILD_SA and checks
// what was negotiated.
func checkExportedSAs(ctx context.Context, t *testing.T, tunnels []*exportedTunnel, tLoad time.Time) {
	t.Helper()
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

}

// waitRoutesBothWays: the vgw learns the exported --advertise prefix from
// AS 65000 over both tunnels, BIRD learns the VPC from AS 64512 over both.
func waitRoutesBothWays(ctx context.Context, t *testing.T, vg *gateway, bd *bird.BIRD) {
	t.Helper()
	waitVGWLearns(ctx, t, vg)
	waitBIRDLearns(ctx, t, bd, "aws_tunnel1", "aws_tunnel2")
}

// waitVGWLearns waits until the vgw has the customer's prefix (onpremNet)
// from AS 65000 over both tunnels and returns its routing view.
func waitVGWLearns(ctx context.Context, t *testing.T, vg *gateway) vgwRoutingView {
	t.Helper()
	var rv vgwRoutingView
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := control.Dial(vg.control).Raw(ctx, "GET", "/v1/routing")
		if err == nil {
			rv = vgwRoutingView{}
			err = json.Unmarshal(b, &rv)
		}
		if err == nil && slices.Equal(rv.bgpPathTunnels(onpremNet.String(), []uint32{65000}), []string{"tunnel1", "tunnel2"}) {
			return rv
		}
		if time.Now().After(deadline) {
			t.Fatalf("our vgw did not learn %s from AS 65000 over both tunnels (error %v):%s", onpremNet, err, rv.summary())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitBIRDLearns waits until BIRD has the VPC from AS 64512 over exactly
// the given sessions (sorted) and returns its routes.
func waitBIRDLearns(ctx context.Context, t *testing.T, bd *bird.BIRD, protocols ...string) []bird.Route {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		brs, err := bd.Routes(ctx, vpcNet.String())
		var from []string
		for _, r := range brs {
			if slices.Equal(r.ASPath, []uint32{64512}) {
				from = append(from, r.Protocol)
			}
		}
		slices.Sort(from)
		if err == nil && slices.Equal(from, protocols) {
			return brs
		}
		if time.Now().After(deadline) {
			t.Fatalf("BIRD did not learn %s from AS 64512 over %v (error %v):\n%s", vpcNet, protocols, err, bird.FormatRoutes(brs))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Down and up again: terminating tunnel2 runs the updown script's
// down-client (the inside address leaves the TUN, so BIRD's session
// drops at once); initiating it again brings address and session back.
// It returns how long BGP took to be Established again.
func downAndUp(ctx context.Context, t *testing.T, e *connEnv, bd *bird.BIRD, tu *exportedTunnel) time.Duration {
	t.Helper()
	if out, err := tu.charon.Terminate(ctx, tu.name, upTimeout); err != nil {
		t.Fatalf("terminate %s: %v\n%s", tu.name, err, out)
	}
	waitAddr(ctx, t, e.cgw, tu.charon.TUN(), tu.inside, false)
	tDown := time.Now()
	if _, err := bd.WaitEstablished(ctx, 10*time.Second, "aws_tunnel1"); err != nil {
		t.Fatal(err)
	}
	if _, err := tu.charon.Initiate(ctx, tu.name, upTimeout); err != nil {
		t.Fatalf("initiate %s again: %v", tu.name, err)
	}
	waitAddr(ctx, t, e.cgw, tu.charon.TUN(), tu.inside, true)
	if _, err := bd.WaitEstablished(ctx, 30*time.Second, "aws_tunnel1", "aws_tunnel2"); err != nil {
		t.Fatal(err)
	}
	return time.Since(tDown)
}

// waitAddr waits until prefix is (present) or is not on dev in ns.
func waitAddr(ctx context.Context, t *testing.T, ns *netlab.NS, dev, prefix string, present bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := ns.Run(ctx, "ip", "-4", "-o", "addr", "show", "dev", dev)
		if err == nil && strings.Contains(string(out), "inet "+prefix+" ") == present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s: want present=%v (updown.sh) after 5 s: %v\n%s", prefix, dev, present, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestExportedVPNLabCustomerGateway: `vpnlab export --format vpnlab` of
// our vgw's configuration, run as it is (plus a control socket for the
// test) by our cgw behind the NAT: both tunnels come up with BGP
// Established on both sides, the pre-shared keys come through the exported
// psk_env references, and the hosts ping each other.
func TestExportedVPNLabCustomerGateway(t *testing.T) {
	requirements(t)
	vgwBin, cgwBin, vpnlabBin := buildGateway(t, "vgw"), buildGateway(t, "cgw"), buildGateway(t, "vpnlab")
	e := newConnEnv(t)
	vcfg, _ := e.configs(connOpts{})
	vg := e.startGateway(vgwBin, "vgw", vcfg, e.psk, e.vgw)
	out := runExport(t, vpnlabBin, e.psk, "--format", "vpnlab", "--ike-version", "ikev1", "--customer-address", connCGWLocal.String(),
		"--advertise", onpremNet.String(), filepath.Join(e.lab.LogDir(), "vgw.yaml"))
	ccfg, ok := strings.CutPrefix(out, "==> cgw.yaml <==\n")
	if !ok || strings.Contains(ccfg, e.psk) || !strings.Contains(ccfg, "psk_env: \""+pskEnv+"\"") {
		t.Fatalf("exported cgw.yaml (want one file, the key by reference):\n%s", out)
	}
	ccfg += fmt.Sprintf("control: {listen: \"unix:%s\"}\n", filepath.Join(e.lab.LogDir(), "cgw.sock"))
	cg := e.startGateway(cgwBin, "cgw", ccfg, e.psk, e.cgw)
	waitTunnels(t, vg, 30*time.Second, "tunnel1", "tunnel2")
	waitTunnels(t, cg, 10*time.Second, "tunnel1", "tunnel2")
	waitRoute(t, vg, onpremNet.String(), []string{"tunnel1"}, 15*time.Second)
	pingUntil(t, e.onprem, vpcHost)
	pingUntil(t, e.vpc, onpremHost)
	checkCounters(t, vg)
	checkCounters(t, cg)
}

// TestExportedStrongSwanStaticCustomerGateway: a static-routing vgw (AWS
// "static": selectors 10.10.0.0/16 === 172.31.0.0/16, the customer prefix
// as static route of both tunnels) and the strongswan export alone: the
// exported updown scripts route the VPC prefix into each charon's TUN
// (tunnel1 metric 100, tunnel2 101), the hosts ping each other, and when
// tunnel1 is terminated its route goes and the pings go over tunnel2.
func TestExportedStrongSwanStaticCustomerGateway(t *testing.T) {
	requirements(t)
	if err := strongswan.Available(append(slices.Clone(strongswan.DefaultPlugins), "updown")); err != nil {
		t.Skip(err)
	}
	vgwBin, vpnlabBin := buildGateway(t, "vgw"), buildGateway(t, "vpnlab")
	e := newConnEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vcfg, _ := e.configs(connOpts{vgwTop: "routing: {mode: static}\n"})
	for n := 1; n <= 2; n++ {
		in := fmt.Sprintf("    inside_cidr: 169.254.%d.0/30\n", 9+n)
		if !strings.Contains(vcfg, in) {
			t.Fatalf("vgw configuration without %q:\n%s", in, vcfg)
		}
		vcfg = strings.Replace(vcfg, in, in+fmt.Sprintf("    local_ts: %s\n    remote_ts: %s\n    static_routes: [%s]\n", vpcNet, onpremNet, onpremNet), 1)
	}
	vcfg = strings.Replace(vcfg, "bgp: {", "# bgp: {", 1) // static: no bgp section
	vg := e.startGateway(vgwBin, "vgw", vcfg, e.psk, e.vgw)
	dir, err := os.MkdirTemp("", "vpnlab-exp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	swanDir := filepath.Join(dir, "strongswan")
	runExport(t, vpnlabBin, e.psk, "--format", "strongswan", "--ike-version", "ikev1", "--include-secrets", "--customer-address", connCGWLocal.String(),
		"--out", swanDir, filepath.Join(e.lab.LogDir(), "vgw.yaml"))
	tunnels := []*exportedTunnel{
		{name: "tunnel1", inside: "169.254.10.2/30", wantIKE: wantIKEChosen, wantESP: "AES_GCM_16-128/MODP_2048"},
		{name: "tunnel2", inside: "169.254.11.2/30", wantIKE: wantIKEChosen, wantESP: "AES_GCM_16-128/MODP_2048"},
	}
	startExportedCharons(ctx, t, e, swanDir, tunnels)
	checkExportedSAs(ctx, t, tunnels, time.Now())
	for i, tu := range tunnels {
		waitRouteVia(ctx, t, e.cgw, tu.charon.TUN(), 100+i, true)
	}
	pingUntil(t, e.onprem, vpcHost)
	pingUntil(t, e.vpc, onpremHost)
	if in, out := vgwPackets(ctx, t, vg, "tunnel1"); in == 0 || out == 0 {
		t.Errorf("our vgw tunnel1 (the first static route) carried %d packets in, %d out", in, out)
	}

	t1 := tunnels[0]
	if out, err := t1.charon.Terminate(ctx, t1.name, upTimeout); err != nil {
		t.Fatalf("terminate %s: %v\n%s", t1.name, err, out)
	}
	waitRouteVia(ctx, t, e.cgw, t1.charon.TUN(), 100, false)
	in0, out0 := vgwPackets(ctx, t, vg, "tunnel2")
	pingUntil(t, e.onprem, vpcHost)
	pingUntil(t, e.vpc, onpremHost)
	if in, out := vgwPackets(ctx, t, vg, "tunnel2"); in <= in0 || out <= out0 {
		t.Errorf("our vgw tunnel2 after tunnel1 went: packets in %d -> %d, out %d -> %d", in0, in, out0, out)
	}
}

// vgwPackets sums the packet counters of a tunnel's SA pairs on our vgw.
func vgwPackets(ctx context.Context, t *testing.T, vg *gateway, tunnel string) (in, out uint64) {
	t.Helper()
	st, err := control.Dial(vg.control).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tu := range st.Tunnels {
		if tu.Name != tunnel {
			continue
		}
		for _, sa := range tu.SAs {
			if sa.Counters != nil {
				in += sa.Counters.PacketsIn
				out += sa.Counters.PacketsOut
			}
		}
	}
	return in, out
}

// waitRouteVia waits until the cgw's route for the VPC via dev with metric
// is there (present) or gone.
func waitRouteVia(ctx context.Context, t *testing.T, ns *netlab.NS, dev string, metric int, present bool) {
	t.Helper()
	want := fmt.Sprintf("%s dev %s scope link metric %d", vpcNet, dev, metric)
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := ns.Run(ctx, "ip", "route", "show", vpcNet.String())
		if err == nil && strings.Contains(string(out), want) == present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgw route %q: want present=%v (updown.sh) after 5 s: %v\n%s", want, present, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
