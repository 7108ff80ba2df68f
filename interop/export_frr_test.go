package interop

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

// FRR 8 daemons (Debian 12 package frr).
const (
	frrZebra = "/usr/lib/frr/zebra"
	frrBGPd  = "/usr/lib/frr/bgpd"
	frrVtysh = "/usr/bin/vtysh"
)

// frrInstance is zebra and bgpd in one namespace, with their sockets, pid
// files and logs in dir (owned by the frr user the daemons switch to; not
// the shared /var/run/frr).
type frrInstance struct {
	dir string
}

// startFRR runs zebra and bgpd (with conf) in ns and waits for bgpd's vty.
func startFRR(ctx context.Context, t *testing.T, e *connEnv, ns *netlab.NS, conf []byte) *frrInstance {
	t.Helper()
	dir, err := os.MkdirTemp("", "vpnlab-frr-") // short: unix socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &frrInstance{dir: dir}
	confPath := filepath.Join(dir, "frr.conf")
	empty := filepath.Join(dir, "zebra.conf")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(empty, nil, 0o600)
	u, err := user.Lookup("frr")
	if err != nil {
		t.Fatalf("FRR: %v (the frr package creates the user)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range []string{dir, confPath, empty} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	common := func(name string) []string {
		return []string{"-z", filepath.Join(dir, "zserv.api"), "-i", filepath.Join(dir, name+".pid"),
			"--vty_socket", dir, "-P", "0", "--log", "file:" + filepath.Join(dir, name+".log"), "--log-level", "debug"}
	}
	for _, d := range []struct{ name, bin, conf string }{{"zebra", frrZebra, empty}, {"bgpd", frrBGPd, confPath}} {
		p, err := ns.StartCmd(ns.Command(context.Background(), d.bin, append(common(d.name), "-f", d.conf)...), "frr-"+d.name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop(5 * time.Second) })
		log := filepath.Join(dir, d.name+".log")
		e.onFailure("FRR "+d.name+" log", func() string { return netlab.TailFile(log, logTailLines) + "\n" + p.Tail(10) })
		if d.name == "zebra" { // bgpd connects to zebra's socket
			waitFile(t, filepath.Join(dir, "zserv.api"), p)
		} else {
			waitFile(t, filepath.Join(dir, "bgpd.vty"), p)
		}
	}
	e.onFailure("FRR show bgp summary, show ip bgp, show ip route", func() string {
		var b strings.Builder
		for _, c := range []string{"show bgp summary", "show ip bgp", "show ip route"} {
			out, _ := f.vtysh(context.Background(), c)
			b.WriteString(out)
		}
		return b.String()
	})
	return f
}

func waitFile(t *testing.T, path string, p *netlab.Proc) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if ok, err := p.Exited(); ok {
			t.Fatalf("FRR exited (%v) before %s appeared:\n%s", err, path, p.Tail(20))
		}
		if time.Now().After(deadline) {
			t.Fatalf("FRR: no %s after 10 s", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *frrInstance) vtysh(ctx context.Context, cmd string) (string, error) {
	out, err := exec.CommandContext(ctx, frrVtysh, "--vty_socket", f.dir, "-c", cmd).CombinedOutput()
	return string(out), err
}

// waitEstablished waits until bgpd has every neighbor in Established.
func (f *frrInstance) waitEstablished(ctx context.Context, t *testing.T, d time.Duration, peers ...string) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for {
		out, err := f.vtysh(ctx, "show bgp ipv4 unicast summary json")
		last = out
		var s struct {
			Peers map[string]struct {
				State string `json:"state"`
			} `json:"peers"`
		}
		if err == nil && json.Unmarshal([]byte(out), &s) == nil {
			up := 0
			for _, p := range peers {
				if s.Peers[p].State == "Established" {
					up++
				}
			}
			if up == len(peers) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("FRR: neighbors %v not Established after %v (error %v):\n%s", peers, d, err, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestExportedStrongSwanFRRCustomerGateway: the strongswan export with the
// frr export instead of bird: FRR's zebra and bgpd run the exported
// frr.conf in the cgw namespace next to the exported charons; both
// sessions come up with our vgw, the vgw learns the customer prefix over
// both tunnels, zebra installs AWS's prefix in the kernel and the hosts
// ping each other.
func TestExportedStrongSwanFRRCustomerGateway(t *testing.T) {
	requirements(t)
	for _, p := range []string{frrZebra, frrBGPd, frrVtysh} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("interop: FRR not installed (%s; .ci/run installs frr)", p)
		}
	}
	vgwBin, vpnlabBin := buildGateway(t, "vgw"), buildGateway(t, "vpnlab")
	e := newConnEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vcfg, _ := e.configs(connOpts{})
	vg := e.startGateway(vgwBin, "vgw", vcfg, e.psk, e.vgw)
	vgwYAML := filepath.Join(e.lab.LogDir(), "vgw.yaml")
	dir, err := os.MkdirTemp("", "vpnlab-exp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	swanDir := filepath.Join(dir, "strongswan")
	runExport(t, vpnlabBin, e.psk, "--format", "strongswan", "--ike-version", "ikev1", "--include-secrets", "--customer-address", connCGWLocal.String(), "--out", swanDir, vgwYAML)
	out := runExport(t, vpnlabBin, e.psk, "--format", "frr", "--advertise", onpremNet.String(), vgwYAML)
	conf, ok := strings.CutPrefix(out, "==> frr.conf <==\n")
	if !ok {
		t.Fatalf("frr export:\n%s", out)
	}
	tunnels := []*exportedTunnel{
		{name: "tunnel1", inside: "169.254.10.2/30", wantIKE: wantIKEChosen, wantESP: "AES_GCM_16-128/MODP_2048"},
		{name: "tunnel2", inside: "169.254.11.2/30", wantIKE: wantIKEChosen, wantESP: "AES_GCM_16-128/MODP_2048"},
	}
	// zebra prefers a kernel route (distance 0) to BGP (20) for the same
	// prefix: the lab's safety blackhole for the VPC would win, so it goes
	// (the wan router has no route to the VPC: nothing leaks in clear).
	if out, err := e.cgw.Run(ctx, "ip", "route", "del", "blackhole", vpcNet.String(), "metric", "4000"); err != nil {
		t.Fatalf("removing the cgw's blackhole for %s: %v\n%s", vpcNet, err, out)
	}
	tLoad := time.Now()
	startExportedCharons(ctx, t, e, swanDir, tunnels)
	fr := startFRR(ctx, t, e, e.cgw, []byte(conf))
	checkExportedSAs(ctx, t, tunnels, tLoad)
	waitTunnels(t, vg, 30*time.Second, "tunnel1", "tunnel2")
	fr.waitEstablished(ctx, t, 30*time.Second, "169.254.10.1", "169.254.11.1")
	t.Logf("FRR sessions Established %v after loading", time.Since(tLoad).Round(time.Millisecond))
	waitVGWLearns(ctx, t, vg)

	// zebra put AWS's prefix into the kernel via a tunnel's inside address.
	deadline := time.Now().Add(10 * time.Second)
	for {
		kr, err := e.cgw.Run(ctx, "ip", "route", "show", "exact", vpcNet.String())
		if err == nil && strings.Contains(string(kr), "proto bgp") && strings.Contains(string(kr), "via 169.254.1") {
			t.Logf("cgw kernel: %s", strings.TrimSpace(string(kr)))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgw kernel has no BGP route for %s from FRR: %v\n%s", vpcNet, err, kr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pingUntil(t, e.onprem, vpcHost)
	pingUntil(t, e.vpc, onpremHost)
	checkCounters(t, vg)
}
