package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

// FRR 8 (Debian 12 package frr) as the BGP speaker of a foreign customer
// gateway (bgp: frr): zebra and bgpd in the cgw namespace, bgpd with the
// frr.conf of `vpnlab export --format frr`, their sockets, pid files and
// logs in a private folder owned by the frr user the daemons switch to
// (never the shared /var/run/frr); vtysh talks to them through it.
const (
	frrZebra = "/usr/lib/frr/zebra"
	frrBGPd  = "/usr/lib/frr/bgpd"
	frrVtysh = "/usr/bin/vtysh"
)

// frrAvailable says what of FRR is missing.
func frrAvailable() error {
	for _, p := range []string{frrZebra, frrBGPd, frrVtysh} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("FRR not installed: %s missing (apt-get install frr)", p)
		}
	}
	if _, err := user.Lookup("frr"); err != nil {
		return fmt.Errorf("FRR: %v (the frr package creates the user)", err)
	}
	return nil
}

// frrDaemons is one running zebra + bgpd.
type frrDaemons struct {
	dir   string
	procs []*netlab.Proc
	logs  []string
}

// startFRR runs zebra and bgpd with conf in ns; dir (short: unix sockets)
// is created for them.
func startFRR(ctx context.Context, ns *netlab.NS, dir string, conf []byte) (*frrDaemons, error) {
	u, err := user.Lookup("frr")
	if err != nil {
		return nil, fmt.Errorf("FRR: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	confPath, empty := filepath.Join(dir, "frr.conf"), filepath.Join(dir, "zebra.conf")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		return nil, err
	}
	for _, p := range []string{dir, confPath, empty} {
		if err := os.Chown(p, uid, gid); err != nil {
			return nil, err
		}
	}
	d := &frrDaemons{dir: dir}
	for _, x := range []struct{ name, bin, conf, ready string }{
		{"zebra", frrZebra, empty, "zserv.api"}, // bgpd connects to zebra's socket
		{"bgpd", frrBGPd, confPath, "bgpd.vty"},
	} {
		log := filepath.Join(dir, x.name+".log")
		args := []string{"-z", filepath.Join(dir, "zserv.api"), "-i", filepath.Join(dir, x.name+".pid"),
			"--vty_socket", dir, "-P", "0", "--log", "file:" + log, "-f", x.conf}
		p, err := ns.StartCmd(ns.Command(context.Background(), x.bin, args...), "frr-"+x.name)
		if err != nil {
			d.stop(false)
			return nil, err
		}
		d.procs = append(d.procs, p)
		d.logs = append(d.logs, log)
		if err := waitPath(ctx, filepath.Join(dir, x.ready), p); err != nil {
			d.stop(false)
			return nil, fmt.Errorf("FRR %s: %v\n%s", x.name, err, p.Tail(10))
		}
	}
	return d, nil
}

func waitPath(ctx context.Context, path string, p *netlab.Proc) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if ok, err := p.Exited(); ok {
			return fmt.Errorf("exited (%v) before %s appeared", err, path)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no %s after 10 s", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends bgpd, then zebra (zebra removes the routes it installed).
func (d *frrDaemons) stop(kill bool) []string {
	var errs []string
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		if kill {
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			<-p.Done()
			continue
		}
		if err := p.Stop(5 * time.Second); err != nil {
			if ee, ok := err.(*exec.ExitError); !ok || ee.Exited() && ee.ExitCode() != 0 {
				errs = append(errs, fmt.Sprintf("FRR: %v", err))
			}
		}
	}
	return errs
}

func (d *frrDaemons) vtysh(ctx context.Context, cmd string) ([]byte, error) {
	return exec.CommandContext(ctx, frrVtysh, "--vty_socket", d.dir, "-c", cmd).Output()
}

// sessions are bgpd's neighbors by address and their FSM state.
func (d *frrDaemons) sessions(ctx context.Context) map[string]string {
	out, err := d.vtysh(ctx, "show bgp ipv4 unicast summary json")
	states := map[string]string{}
	if err != nil {
		return states
	}
	var s struct {
		Peers map[string]struct {
			State string `json:"state"`
		} `json:"peers"`
	}
	if json.Unmarshal(out, &s) == nil {
		for addr, p := range s.Peers {
			states[addr] = p.State
		}
	}
	return states
}

// routing is bgpd's table as the runner's routing view: per prefix the
// tunnels of its paths (by the neighbor that sent them), the best first.
func (d *frrDaemons) routing(ctx context.Context, tunnelOf map[string]string) *routingView {
	rv := &routingView{Mode: "bgp"}
	out, err := d.vtysh(ctx, "show ip bgp json")
	if err != nil {
		return rv
	}
	var t struct {
		Routes map[string][]struct {
			Valid    bool   `json:"valid"`
			BestPath bool   `json:"bestpath"`
			PeerID   string `json:"peerId"`
		} `json:"routes"`
	}
	if json.Unmarshal(out, &t) != nil {
		return rv
	}
	for prefix, paths := range t.Routes {
		var tunnels []string
		for _, p := range paths {
			tn, ok := tunnelOf[p.PeerID]
			if !ok || !p.Valid {
				continue
			}
			if p.BestPath {
				tunnels = append([]string{tn}, tunnels...)
			} else {
				tunnels = append(tunnels, tn)
			}
		}
		if len(tunnels) > 0 {
			rv.Routes = append(rv.Routes, struct {
				Prefix  string   `json:"prefix"`
				Tunnels []string `json:"tunnels"`
				Active  int      `json:"active"`
			}{Prefix: prefix, Tunnels: tunnels, Active: 1})
		}
	}
	return rv
}

// frrState is bgpd's session state in the words of the BGP FSM.
func frrState(s string) string {
	if s == "" {
		return "Idle"
	}
	return strings.Fields(s)[0]
}
