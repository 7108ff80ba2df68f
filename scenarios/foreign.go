package scenarios

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vpnlab/vpnlab/export"
	"github.com/vpnlab/vpnlab/internal/bird"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
	"github.com/vpnlab/vpnlab/scenarios/report"
)

// foreignCGW is a customer gateway that is not ours (kind strongswan): one
// strongSwan charon (kernel-libipsec) per tunnel, configured with the files
// of `vpnlab export --format strongswan` made from the run's vgw
// configuration, and BIRD with `--format bird` for BGP. The runner starts
// and stops the daemons and polls their own tools (foreignstate.go).
type foreignCGW struct {
	ns      *netlab.NS
	dir     string // the exported files: TUNNEL/..., bird.conf (with the keys: in the run's private folder)
	short   string // folder for the daemons' sockets (unix socket paths are short)
	out     string // the run's output folder (logs and the files without keys)
	tunnels []string
	inside  map[string]netip.Prefix // the customer's inside address of each tunnel (.2 of its /30)
	bgp     string                  // bird or none

	mu      sync.Mutex
	charons map[string]*strongswan.Charon // by tunnel
	bird    *bird.BIRD
	frr     *frrDaemons
	// vgwInside is the vgw's inside address of each tunnel (the BGP
	// neighbor); awsNets are the AWS hosts' networks (the lab's blackholes
	// for them go with FRR: zebra does not override a kernel route).
	vgwInside map[string]netip.Addr
	awsNets   []netip.Prefix
	tempDirs  []string // removed by finish
	logs      []string // every daemon log, for "cgw log contains" and the artifacts
	starts    int
	last      *foreignState               // the last poll (foreignstate.go)
	prev      map[string]foreignTunnelKey // what the last poll's events compared
}

// foreignPreflight says what a strongswan customer gateway lacks on this
// machine (nil: nothing or no foreign gateway).
func (p *plan) foreignPreflight() error {
	pg := p.gateways["cgw"]
	if pg == nil || pg.kind != "strongswan" {
		return nil
	}
	if err := strongswan.Available(append(slices.Clone(strongswan.DefaultPlugins), "updown")); err != nil {
		return fmt.Errorf("the strongswan customer gateway: %v", err)
	}
	if pg.bgp == "frr" {
		if err := frrAvailable(); err != nil {
			return fmt.Errorf("the strongswan customer gateway's BGP: %v", err)
		}
	}
	if pg.bgp == "bird" {
		if _, err := bird.Available(); err != nil {
			return fmt.Errorf("the strongswan customer gateway's BGP: %v", err)
		}
	}
	return nil
}

// exportForeign writes the strongswan (and bird) files for the customer
// gateway from the vgw configuration at vgwConfig (its keys in env) into
// dir, applies the scenario's swanctl_files and the customer's own PSK, and
// copies the files without keys into out/cgw-strongswan.
func (p *plan) exportForeign(pg *planGateway, vgwConfig string, env []string, dir, out string) error {
	var advertise []string
	for _, n := range p.hostNets("customer") {
		advertise = append(advertise, n.String())
	}
	// PreferIKEv1: a strongSwan customer speaks IKEv1 where the AWS tunnel
	// allows it (as before IKEv2 existed), IKEv2 where the scenario's AWS
	// side says ike_versions: [ikev2] (docs/scenarios.md).
	opts := export.Options{IncludeSecrets: true, Advertise: advertise, CustomerAddress: p.cgwOutside.Addr().String(), PreferIKEv1: true}
	var files []export.File
	err := withEnv(env, func() error {
		f, err := export.Export("strongswan", vgwConfig, opts)
		if err != nil {
			return fmt.Errorf("vpnlab export --format strongswan: %v", err)
		}
		files = f
		if pg.bgp == "bird" || pg.bgp == "frr" {
			b, err := export.Export(pg.bgp, vgwConfig, opts)
			if err != nil {
				return fmt.Errorf("vpnlab export --format %s: %v", pg.bgp, err)
			}
			files = append(files, b...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, t := range p.tunnels {
		if t.key("customer") != t.key("aws") { // a mismatch on purpose
			files = append(files, export.File{Name: t.Name + "/secrets.conf", Mode: 0o600,
				Data: []byte(fmt.Sprintf("# the customer's key (customer_psk)\nsecret = %q\n", t.key("customer")))})
		}
		if f, ok := pg.swanctl[t.Name]; ok {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			files = append(files, export.File{Name: t.Name + "/swanctl.conf", Mode: 0o644, Data: b})
		}
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.Name), f.Data, f.Mode); err != nil {
			return err
		}
		if strings.HasSuffix(f.Name, "secrets.conf") {
			continue // keys stay in the private folder
		}
		if err := writeFile(filepath.Join(out, "cgw-strongswan", f.Name), f.Data, f.Mode&0o755); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	os.Remove(path) // WriteFile keeps an old file's mode
	return os.WriteFile(path, data, mode)
}

// start runs a charon per tunnel (each loads its swanctl.conf, whose
// start_action initiates), then BIRD.
func (f *foreignCGW) start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.charons) > 0 {
		return fmt.Errorf("cgw (strongSwan) is already running")
	}
	f.starts++
	for _, tn := range f.tunnels {
		c, err := strongswan.Start(ctx, f.ns, strongswan.Options{
			Name:    fmt.Sprintf("charon-%s-%d", tn, f.starts),
			Dir:     filepath.Join(f.short, fmt.Sprintf("c%d-%s", f.starts, tn)),
			Include: filepath.Join(f.dir, tn, "strongswan.conf"),
			Mounts:  []strongswan.Mount{{Source: f.dir, Target: export.SwanctlRoot}},
		})
		if err != nil {
			f.stopLocked(false)
			return fmt.Errorf("cgw (strongSwan) tunnel %s: %v", tn, err)
		}
		f.charons[tn] = c
		f.logs = append(f.logs, c.LogPath())
		// kernel-libipsec installs a CHILD_SA only with a local address in
		// its local selector: a child for the inside /32s (BGP) needs the
		// inside address before its updown script runs. Put it on the TUN
		// now, as the reference lab does (updown.sh uses ip addr replace).
		if in, ok := f.inside[tn]; ok {
			if out, err := f.ns.Run(ctx, "ip", "addr", "replace", in.String(), "dev", c.TUN()); err != nil {
				f.stopLocked(false)
				return fmt.Errorf("cgw (strongSwan) tunnel %s: inside address on %s: %v\n%s", tn, c.TUN(), err, out)
			}
		}
		if out, err := c.LoadFile(ctx, filepath.Join(f.dir, tn, "swanctl.conf")); err != nil {
			f.stopLocked(false)
			return fmt.Errorf("cgw (strongSwan) tunnel %s: loading swanctl.conf: %v\n%s", tn, err, out)
		}
	}
	if f.bgp == "frr" {
		return f.startFRRLocked(ctx)
	}
	if f.bgp == "bird" {
		conf, err := os.ReadFile(filepath.Join(f.dir, "bird.conf"))
		if err != nil {
			f.stopLocked(false)
			return err
		}
		b, err := bird.Start(ctx, f.ns, bird.Options{Name: fmt.Sprintf("bird-cgw-%d", f.starts), Config: string(conf)})
		if err != nil {
			f.stopLocked(false)
			return fmt.Errorf("cgw (BIRD): %v", err)
		}
		f.bird = b
		f.logs = append(f.logs, b.LogPath())
	}
	return nil
}

// stop ends the daemons: SIGTERM (charon deletes its SAs and tells the
// vgw; BIRD closes its sessions), or SIGKILL with kill (nothing is said).
func (f *foreignCGW) stop(kill bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.charons) == 0 {
		return fmt.Errorf("cgw (strongSwan) is not running")
	}
	return f.stopLocked(kill)
}

func (f *foreignCGW) stopLocked(kill bool) error {
	var errs []string
	var procs []*netlab.Proc
	for _, c := range f.charons {
		procs = append(procs, c.Proc())
	}
	if f.bird != nil {
		procs = append(procs, f.bird.Proc())
	}
	if f.frr != nil {
		errs = append(errs, f.frr.stop(kill)...)
	}
	if kill {
		for _, p := range procs {
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		}
		for _, p := range procs {
			select {
			case <-p.Done():
			case <-time.After(5 * time.Second):
				errs = append(errs, fmt.Sprintf("pid %d did not exit after SIGKILL", p.Pid()))
			}
		}
	} else {
		for tn, c := range f.charons {
			if err := c.Stop(); err != nil {
				errs = append(errs, fmt.Sprintf("charon of %s: %v", tn, err))
			}
		}
		if f.bird != nil {
			if err := f.bird.Stop(); err != nil {
				errs = append(errs, fmt.Sprintf("bird: %v", err))
			}
		}
	}
	f.charons, f.bird, f.frr = map[string]*strongswan.Charon{}, nil, nil
	if len(errs) > 0 {
		return fmt.Errorf("cgw (strongSwan): %s", strings.Join(errs, "; "))
	}
	return nil
}

// running: every charon is alive.
func (f *foreignCGW) running() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.charons) == 0 {
		return false
	}
	for _, c := range f.charons {
		if ok, _ := c.Proc().Exited(); ok {
			return false
		}
	}
	return true
}

// charon returns the running charon of a tunnel.
func (f *foreignCGW) charon(tunnel string) (*strongswan.Charon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.charons[tunnel]
	if c == nil {
		return nil, fmt.Errorf("cgw (strongSwan) is not running")
	}
	return c, nil
}

// swanctl runs a tunnel's action on the customer side through its charon:
// rekey (phase 1: the IKE_SA, 2: the CHILD_SAs), initiate or terminate.
func (f *foreignCGW) swanctl(ctx context.Context, act string, tunnel string, phase int) error {
	c, err := f.charon(tunnel)
	if err != nil {
		return err
	}
	var args []string
	switch {
	case act == "rekey" && phase == 1:
		args = []string{"--rekey", "--ike", tunnel, "--reauth"}
	case act == "rekey":
		children, err := f.children(ctx, c, tunnel)
		if err != nil {
			return err
		}
		for _, ch := range children {
			if _, err := c.Swanctl(ctx, "--rekey", "--child", ch); err != nil {
				return err
			}
		}
		return nil
	case act == "initiate":
		children, err := f.children(ctx, c, tunnel)
		if err != nil {
			return err
		}
		for _, ch := range children {
			if _, err := c.Initiate(ctx, ch, 20*time.Second); err != nil {
				return err
			}
		}
		return nil
	case act == "terminate":
		_, err := c.Terminate(ctx, tunnel, 10*time.Second)
		return err
	}
	_, err = c.Swanctl(ctx, args[0], args[1:]...)
	return err
}

// children are the CHILD_SA configurations of a tunnel's connection
// (`swanctl --list-conns --raw`): usually one named as the tunnel.
func (f *foreignCGW) children(ctx context.Context, c *strongswan.Charon, tunnel string) ([]string, error) {
	out, err := c.Swanctl(ctx, "--list-conns", "--raw")
	if err != nil {
		return nil, err
	}
	l := strongswan.ParseListConns(out)[tunnel]
	if len(l) == 0 {
		return nil, fmt.Errorf("cgw (strongSwan): connection %s has no children (swanctl --list-conns)", tunnel)
	}
	return l, nil
}

func (f *foreignCGW) logFiles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.logs...)
}

// finish copies the daemons' logs that are outside the output folder (the
// charons' in the run's private folder, FRR's in its own; both removed at
// the end) into it, as cgw-charon-cN-TUNNEL.log and cgw-frrN-DAEMON.log,
// and removes FRR's folders.
func (f *foreignCGW) finish() {
	f.mu.Lock()
	defer f.mu.Unlock()
	frr := map[string]int{}
	for i, d := range f.tempDirs {
		frr[d] = i + 1
	}
	for i, l := range f.logs {
		var name string
		switch dir := filepath.Dir(l); {
		case strings.HasPrefix(l, f.short+string(filepath.Separator)): // c<start>-<tunnel>/charon.log
			name = "cgw-charon-" + filepath.Base(dir) + ".log"
		case frr[dir] > 0:
			name = fmt.Sprintf("cgw-frr%d-%s", frr[dir], filepath.Base(l))
		default:
			continue
		}
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		dst := filepath.Join(f.out, name)
		if os.WriteFile(dst, b, 0o644) == nil {
			f.logs[i] = dst
		}
	}
	for _, d := range f.tempDirs {
		os.RemoveAll(d)
	}
	f.tempDirs = nil
}

// artifacts lists what the foreign gateway leaves in the output folder.
func (f *foreignCGW) artifacts(out string) []report.Artifact {
	l := []report.Artifact{{Name: "cgw-strongswan/", Path: "cgw-strongswan",
		What: "the customer gateway's files from vpnlab export (strongswan, bird; without the keys)"}}
	for _, p := range f.logFiles() {
		rel, _ := filepath.Rel(out, p)
		l = append(l, report.Artifact{Name: filepath.Base(p), Path: rel, What: "strongSwan/BIRD log of the customer gateway"})
	}
	return l
}

// startFRRLocked runs FRR with the exported frr.conf, after removing the
// lab's blackholes for the AWS hosts' networks (zebra prefers a kernel
// route to BGP's; the WAN router has no route to them, nothing leaks).
func (f *foreignCGW) startFRRLocked(ctx context.Context) error {
	for _, n := range f.awsNets {
		_, _ = f.ns.Run(ctx, "ip", "route", "del", "blackhole", n.String(), "metric", "4000")
	}
	conf, err := os.ReadFile(filepath.Join(f.dir, "frr.conf"))
	if err != nil {
		f.stopLocked(false)
		return err
	}
	// Its own folder: the daemons run as the frr user, who cannot enter the
	// run's private folder.
	dir, err := os.MkdirTemp("", "vpnlab-frr-")
	if err != nil {
		f.stopLocked(false)
		return err
	}
	f.tempDirs = append(f.tempDirs, dir)
	d, err := startFRR(ctx, f.ns, dir, conf)
	if err != nil {
		f.stopLocked(false)
		return fmt.Errorf("cgw (FRR): %v", err)
	}
	f.frr = d
	f.logs = append(f.logs, d.logs...)
	return nil
}
