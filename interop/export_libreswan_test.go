package interop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/libreswan"
	"github.com/vpnlab/vpnlab/internal/netlab"
)

// startPluto runs Libreswan's pluto in ns with conf (the exported
// ipsec.conf, minus what this kernel cannot do) and the secrets file, its
// NSS database and control socket in dir, and loads and starts the conns
// (`addconn --autoall`). pluto execs /usr/libexec/ipsec/addconn itself, so
// the programs' tree is bind-mounted over /usr/libexec in its private mount
// namespace (ip netns exec gives it one).
func startPluto(ctx context.Context, t *testing.T, e *connEnv, ns *netlab.NS, dir, conf, secrets string) *netlab.Proc {
	t.Helper()
	root, err := libreswan.Root()
	if errors.Is(err, libreswan.ErrNotAvailable) {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	pluto := filepath.Join(root, "usr/libexec/ipsec/pluto")
	if out, err := exec.Command("ldd", pluto).CombinedOutput(); err != nil || strings.Contains(string(out), "not found") {
		t.Fatalf("pluto's libraries (apt-get install libldns3 libevent-pthreads-2.1-7 libunbound8 libnss3): %v\n%s", err, out)
	}
	nss, run := filepath.Join(dir, "nss"), filepath.Join(dir, "run")
	for _, d := range []string{nss, run} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("certutil", "-N", "-d", "sql:"+nss, "--empty-password").CombinedOutput(); err != nil {
		t.Fatalf("certutil -N (apt-get install libnss3-tools): %v\n%s", err, out)
	}
	p, err := ns.StartCmd(ns.Command(context.Background(), "/bin/sh", "-c",
		`mount --bind "$1" /usr/libexec && shift && exec "$@"`, "sh", filepath.Join(root, "usr/libexec"),
		pluto, "--nofork", "--stderrlog", "--config", conf, "--secretsfile", secrets,
		"--nssdir", nss, "--rundir", run, "--ipsecdir", dir), "pluto")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	e.onFailure("pluto log", func() string { return p.Tail(logTailLines) })
	ctl := filepath.Join(run, "pluto.ctl")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(ctl); err == nil {
			break
		}
		if ok, err := p.Exited(); ok {
			t.Fatalf("pluto exited (%v):\n%s", err, p.Tail(20))
		}
		if time.Now().After(deadline) {
			t.Fatalf("pluto: no %s after 10 s", ctl)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := ns.Run(ctx, filepath.Join(root, "usr/libexec/ipsec/addconn"), "--config", conf, "--ctlsocket", ctl, "--autoall"); err != nil {
		t.Fatalf("addconn --autoall: %v\n%s", err, out)
	}
	return p
}

// TestExportedLibreswanIKE: Libreswan 4.10's pluto with the exported
// ipsec.conf and ipsec.secrets in the cgw namespace behind the NAT, against
// our vgw. This kernel has neither XFRM interfaces nor ESP, so the test
// drops the ipsec-interface= lines (pluto refuses such a conn here) and
// checks what can happen: for both tunnels pluto initiates IKEv1 main
// mode, both sides establish the ISAKMP SA with the exported proposal
// through the NAT (UDP 4500), pluto offers the exported quick mode proposal
// and our vgw accepts it (QM2). pluto then cannot install the SA in the
// kernel (logged, not a failure of the export).
func TestExportedLibreswanIKE(t *testing.T) {
	requirements(t)
	vgwBin, vpnlabBin := buildGateway(t, "vgw"), buildGateway(t, "vpnlab")
	e := newConnEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vcfg, _ := e.configs(connOpts{})
	vg := e.startGateway(vgwBin, "vgw", vcfg, e.psk, e.vgw)
	dir, err := os.MkdirTemp("", "vpnlab-ls-") // short: pluto's unix sockets
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	runExport(t, vpnlabBin, e.psk, "--format", "libreswan", "--ike-version", "ikev1", "--include-secrets", "--customer-address", connCGWLocal.String(),
		"--out", dir, filepath.Join(e.lab.LogDir(), "vgw.yaml"))
	conf := filepath.Join(dir, "ipsec.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	noIface := regexp.MustCompile(`(?m)^\tipsec-interface=\d+\n`)
	if n := len(noIface.FindAll(b, -1)); n != 2 {
		t.Fatalf("exported ipsec.conf has %d ipsec-interface lines, want 2:\n%s", n, b)
	}
	if err := os.WriteFile(conf, noIface.ReplaceAll(b, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPluto(ctx, t, e, e.cgw, dir, conf, filepath.Join(dir, "ipsec.secrets"))

	deadline := time.Now().Add(15 * time.Second)
	for {
		log := p.Tail(2000)
		qm := vgwLogPeers(vg, "quick mode: QM1 accepted, sending QM2")
		ok := len(qm["tunnel1"]) > 0 && len(qm["tunnel2"]) > 0
		for _, tu := range []string{"tunnel1", "tunnel2"} {
			ok = ok && regexp.MustCompile(fmt.Sprintf(`"%s" #\d+: IKE SA established \{auth=PRESHARED_KEY cipher=AES_CBC_256 integ=HMAC_SHA2_256 group=MODP2048\}`, tu)).MatchString(log) &&
				regexp.MustCompile(fmt.Sprintf(`"%s" #\d+: initiating Quick Mode IKEv1\+PSK\+ENCRYPT\+TUNNEL\+PFS\S* \{using isakmp#\d+ msgid:\w+ proposal=AES_GCM_16_128-NONE-MODP2048 pfsgroup=MODP2048\}`, tu)).MatchString(log)
		}
		if ok {
			t.Logf("our vgw accepted pluto's quick mode on both tunnels from %v", qm)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no IKE SA and accepted quick mode on both tunnels within 15 s (vgw QM2 sent: %v)", qm)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, name := range []string{"tunnel1", "tunnel2"} {
		waitVGWPhase1(ctx, t, vg, name, "aes256-sha256-modp2048")
	}
	if m := regexp.MustCompile(`(?m)^.*netlink response for Add SA.*$`).FindString(p.Tail(2000)); m != "" {
		t.Logf("pluto cannot install the SA on this kernel (no ESP): %s", strings.TrimSpace(m))
	}
}

// waitVGWPhase1 waits until our vgw has the tunnel's ISAKMP SA established
// with proposal, through the NAT on UDP 4500 (pluto re-initiates after each
// failed SA installation, so the state comes and goes).
func waitVGWPhase1(ctx context.Context, t *testing.T, vg *gateway, name, proposal string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last status.Tunnel
	for {
		if st, err := control.Dial(vg.control).Status(ctx); err == nil {
			for _, ts := range st.Tunnels {
				if ts.Name == name {
					last = ts
				}
			}
		}
		if last.Phase1State == "Established" && last.Proposal == proposal && last.RemoteBehindNAT && last.Floated {
			t.Logf("our vgw %s: phase 1 %s %s, remote behind NAT, floated to 4500", name, last.Phase1State, last.Proposal)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("our vgw %s: phase 1 %s %q remote behind NAT %v floated %v; want Established %s through the NAT", name, last.Phase1State, last.Proposal, last.RemoteBehindNAT, last.Floated, proposal)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
