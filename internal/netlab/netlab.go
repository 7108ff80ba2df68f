// Package netlab builds small network-namespace topologies for tests.
//
// A Lab owns a set of network namespaces whose names are unique to the run
// ("vl" + 6 random hex digits + "-" + role, e.g. "vl3fa9c1-cgw"), veth pairs
// created directly inside them (never in the root namespace), addresses,
// routes, nftables rules and the processes started in them. Everything is
// torn down by Close, which is idempotent and registered with t.Cleanup by
// New: processes started through the lab are terminated (SIGTERM, then
// SIGKILL), any other process still inside one of the lab's namespaces is
// killed by PID, and the namespaces are deleted.
//
// A lab is marked as ours by a file under MarkerDir naming its owning
// process (marker.go). When the owner dies without Close (SIGKILL),
// Leftovers finds the lab by its namespace names and that marker and
// Leftover.Remove cleans it up (clean.go; `vpnlab clean`).
//
// The package shells out to iproute2 (`ip`) and nftables (`nft`) and runs
// commands inside a namespace with `ip netns exec NAME ...`, which also gives
// every such command its own mount namespace (so a process may bind-mount a
// private directory over /run, as the strongswan package does).
//
// All functions need root; New skips the test when it is not root or when
// `ip netns` does not work.
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Lab is a set of network namespaces and the processes running in them.
type Lab struct {
	logf   func(format string, args ...any) // notes about slow teardown
	id     string                           // "vl" + 6 hex digits
	logDir string

	mu     sync.Mutex
	nss    []*NS
	procs  []*Proc
	seq    int
	closed bool
	marker *marker // nil once Close removed it (marker.go)
}

// NS is one network namespace of a Lab.
type NS struct {
	lab  *Lab
	role string
	name string

	nftMu       sync.Mutex
	blackholeOK bool
}

// Proc is a background process started in a namespace.
type Proc struct {
	Cmd  *exec.Cmd
	Log  string // file receiving the process's stdout and stderr
	name string
	done chan struct{}
	err  error // exit status, valid after done is closed
}

// ipBin and nftBin are resolved once; tests skip if ip is missing.
var (
	ipBin  = "ip"
	nftBin = "nft"
)

// New creates an empty lab. It calls tb.Skip when the process is not root or
// network namespaces cannot be used, and registers Close with tb.Cleanup.
// Logs of background processes go to a fresh directory from tb.TempDir.
func New(tb testing.TB) (*Lab, error) {
	tb.Helper()
	if err := Usable(); err != nil {
		tb.Skipf("netlab: %v", err)
	}
	l, err := Open(tb.TempDir(), tb.Logf)
	if err != nil {
		return nil, err
	}
	// Registered after TempDir: cleanups run last-in first-out, so the lab is
	// torn down before its log directory is removed.
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("netlab: cleanup: %v", err)
		}
	})
	return l, nil
}

// Open creates an empty lab outside of a test (the scenario runner): the
// caller checks Usable first and must call Close (on every path: errors,
// signals, panics). Logs of background processes go to logDir, which must
// exist. logf receives notes about a slow teardown (nil: discarded).
func Open(logDir string, logf func(format string, args ...any)) (*Lab, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	id := "vl" + hex.EncodeToString(b[:])
	if _, err := os.Stat(markerPath(id)); err == nil {
		return nil, fmt.Errorf("netlab: lab %s already has a marker (%s): not ours", id, markerPath(id))
	}
	m, err := newMarker(id)
	if err != nil {
		return nil, err
	}
	if err := writeMarker(m); err != nil {
		return nil, err
	}
	return &Lab{logf: logf, id: id, logDir: logDir, marker: m}, nil
}

// Usable reports why network namespaces cannot be used here (nil if they can).
func Usable() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	p, err := exec.LookPath(ipBin)
	if err != nil {
		return fmt.Errorf("iproute2 not installed: %v", err)
	}
	ipBin = p
	if out, err := exec.Command(ipBin, "netns", "list").CombinedOutput(); err != nil {
		return fmt.Errorf("`ip netns` unusable: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// ID is the run-unique prefix of the lab's namespace names.
func (l *Lab) ID() string { return l.id }

// LogDir is the directory holding the logs of background processes. Other
// packages may put their own files (configs, sockets) there too.
func (l *Lab) LogDir() string { return l.logDir }

// Namespaces returns the lab's namespaces in creation order.
func (l *Lab) Namespaces() []*NS {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*NS(nil), l.nss...)
}

// AddNS creates a namespace for role (e.g. "cgw", "wan", "vgw"; at most 6
// characters of [a-z0-9]). Its real name is Name(). Loopback is brought up
// and IPv6 is disabled (keeps captures and tests free of IPv6 chatter).
func (l *Lab) AddNS(role string) (*NS, error) {
	if role == "" || len(role) > 6 || strings.Trim(role, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return nil, fmt.Errorf("netlab: bad role %q (1-6 chars [a-z0-9])", role)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("netlab: lab is closed")
	}
	for _, ns := range l.nss {
		if ns.role == role {
			l.mu.Unlock()
			return nil, fmt.Errorf("netlab: role %q already exists", role)
		}
	}
	ns := &NS{lab: l, role: role, name: l.id + "-" + role}
	l.mu.Unlock()

	if _, err := os.Stat("/run/netns/" + ns.name); err == nil {
		return nil, fmt.Errorf("netlab: namespace %s already exists (not ours)", ns.name)
	}
	if err := run(context.Background(), ipBin, "netns", "add", ns.name); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.nss = append(l.nss, ns)
	l.mu.Unlock()
	if err := ns.sysctl("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		return nil, err
	}
	if err := ns.ip("link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return ns, nil
}

// Link connects a and b with a veth pair: interface aIf in a with address
// aAddr, bIf in b with bAddr (interface names at most 15 characters; they
// only need to be unique inside their namespace). Both ends are brought up.
// A zero (invalid) prefix means "no address".
func (l *Lab) Link(a *NS, aIf string, aAddr netip.Prefix, b *NS, bIf string, bAddr netip.Prefix) error {
	if len(aIf) > 15 || len(bIf) > 15 || aIf == "" || bIf == "" {
		return fmt.Errorf("netlab: interface names must be 1-15 characters (%q, %q)", aIf, bIf)
	}
	if err := a.ip("link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.name); err != nil {
		return err
	}
	for _, e := range []struct {
		ns   *NS
		dev  string
		addr netip.Prefix
	}{{a, aIf, aAddr}, {b, bIf, bAddr}} {
		if e.addr.IsValid() {
			if err := e.ns.AddAddr(e.dev, e.addr); err != nil {
				return err
			}
		}
		if err := e.ns.ip("link", "set", e.dev, "up"); err != nil {
			return err
		}
	}
	return nil
}

// Close stops all processes started through the lab, kills whatever else
// still runs inside the lab's namespaces and deletes the namespaces. It is
// idempotent and safe to call concurrently with nothing else.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := append([]*Proc(nil), l.procs...)
	nss := append([]*NS(nil), l.nss...)
	l.mu.Unlock()

	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if ok, _ := p.Exited(); ok {
			continue
		}
		t0 := time.Now()
		p.Stop(3 * time.Second)
		if d := time.Since(t0); d > time.Second {
			l.logf("netlab: %s (pid %d) took %v to stop", p.name, p.Pid(), d.Round(time.Millisecond))
		}
	}
	for _, ns := range nss {
		ns.killAll()
		if err := run(context.Background(), ipBin, "netns", "del", ns.name); err != nil {
			errs = append(errs, err)
		}
	}
	// The marker goes last, and only when nothing is left: otherwise
	// `vpnlab clean` finds the rest once this process has exited.
	if len(errs) == 0 {
		if err := l.removeMarker(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Name is the namespace's real (run-unique) name.
func (ns *NS) Name() string { return ns.name }

// Role is the role the namespace was created for.
func (ns *NS) Role() string { return ns.role }

// Lab is the lab the namespace belongs to.
func (ns *NS) Lab() *Lab { return ns.lab }

// Command returns an exec.Cmd running name with args inside the namespace
// (via `ip netns exec`). The caller may set Env, Dir, Stdin... before running
// it. Run and Start are the usual entry points.
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, ipBin, append([]string{"netns", "exec", ns.name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined output.
// A non-zero exit is an error that includes the output.
func (ns *NS) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := ns.Command(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("netlab: %s: %s %s: %v: %s", ns.name, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Start starts a command in the background inside the namespace. Its output
// goes to a file in the lab's log directory (Proc.Log). The process is
// stopped by Lab.Close at the latest (and killed when ctx is done).
func (ns *NS) Start(ctx context.Context, name string, args ...string) (*Proc, error) {
	return ns.StartCmd(ns.Command(ctx, name, args...), filepath.Base(name))
}

// StartCmd starts a command built with Command (e.g. after setting Env) in
// the background, tracked like Start. logName names its log file.
func (ns *NS) StartCmd(cmd *exec.Cmd, logName string) (*Proc, error) {
	l := ns.lab
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("netlab: lab is closed")
	}
	l.seq++
	logPath := filepath.Join(l.logDir, fmt.Sprintf("%s-%s-%d.log", ns.role, sanitize(logName), l.seq))
	l.mu.Unlock()

	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group: Stop signals the whole group, children included.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if cmd.Cancel == nil {
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("netlab: %s: start %s: %v", ns.name, logName, err)
	}
	p := &Proc{Cmd: cmd, Log: logPath, name: logName, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	closed := l.closed
	l.mu.Unlock()
	if closed { // raced with Close
		p.Stop(time.Second)
	}
	return p, nil
}

// Pid is the process id (the command itself: `ip netns exec` execs it).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited and, if so, its exit error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, waits up to grace for the process
// to exit, then sends SIGKILL. It returns the exit error (nil after a clean
// exit). Calling it again is harmless.
func (p *Proc) Stop(grace time.Duration) error {
	if ok, err := p.Exited(); ok {
		return err
	}
	pgid := p.Cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("netlab: %s (pid %d) did not exit after SIGKILL", p.name, pgid)
		}
	}
	return p.err
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string { return TailFile(p.Log, n) }

// TailFile returns the last n lines of a file (or a note why it cannot).
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// AddAddr adds an address to an interface of the namespace.
func (ns *NS) AddAddr(dev string, addr netip.Prefix) error {
	return ns.ip("addr", "add", addr.String(), "dev", dev)
}

// AddRoute adds a route to dst via the gateway via. dst may be 0.0.0.0/0
// (default route).
func (ns *NS) AddRoute(dst netip.Prefix, via netip.Addr) error {
	return ns.ip("route", "add", dst.String(), "via", via.String())
}

// AddBlackholeRoute adds `blackhole dst metric metric`: a safety net so that
// traffic for a protected prefix never leaves in clear text.
func (ns *NS) AddBlackholeRoute(dst netip.Prefix, metric int) error {
	return ns.ip("route", "add", "blackhole", dst.String(), "metric", strconv.Itoa(metric))
}

// EnableForwarding turns on IPv4 forwarding and turns off reverse-path
// filtering (asymmetric paths through TUN devices).
func (ns *NS) EnableForwarding() error {
	return ns.sysctl("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
}

// Nft loads an nftables ruleset (`nft -f -`) inside the namespace.
func (ns *NS) Nft(ruleset string) error {
	cmd := ns.Command(context.Background(), nftBin, "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: %s: nft -f -: %v: %s\nruleset:\n%s", ns.name, err, bytes.TrimSpace(out), ruleset)
	}
	return nil
}

// SNAT rewrites the source of packets from src leaving through oif to the
// address to (table ip netlab_nat). A router between a customer gateway and
// the VPN endpoint uses it to put the customer gateway behind NAT.
func (ns *NS) SNAT(oif string, src netip.Prefix, to netip.Addr) error {
	return ns.Nft(fmt.Sprintf(`table ip netlab_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname %q ip saddr %s snat to %s
  }
}
`, oif, src, to))
}

// Masquerade is SNAT to the outgoing interface's address.
func (ns *NS) Masquerade(oif string, src netip.Prefix) error {
	return ns.Nft(fmt.Sprintf(`table ip netlab_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname %q ip saddr %s masquerade
  }
}
`, oif, src))
}

const blackholeTable = `table inet netlab_filter {
  set blackholed { type ipv4_addr; }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ip daddr @blackholed counter drop
    ip saddr @blackholed counter drop
  }
}
`

// Blackhole makes the namespace (a router) drop forwarded packets from and to
// addr, e.g. to simulate a dead tunnel endpoint. Unblackhole undoes it.
func (ns *NS) Blackhole(addr netip.Addr) error {
	ns.nftMu.Lock()
	defer ns.nftMu.Unlock()
	if !ns.blackholeOK {
		if err := ns.Nft(blackholeTable); err != nil {
			return err
		}
		ns.blackholeOK = true
	}
	_, err := ns.Run(context.Background(), nftBin, "add", "element", "inet", "netlab_filter", "blackholed", "{ "+addr.String()+" }")
	return err
}

// Unblackhole removes addr from the blackhole set (no error if absent).
func (ns *NS) Unblackhole(addr netip.Addr) error {
	ns.nftMu.Lock()
	defer ns.nftMu.Unlock()
	if !ns.blackholeOK {
		return nil
	}
	_, err := ns.Run(context.Background(), nftBin, "delete", "element", "inet", "netlab_filter", "blackholed", "{ "+addr.String()+" }")
	if err != nil && strings.Contains(err.Error(), "No such file") {
		return nil
	}
	return err
}

// ip runs `ip -n NAME args...`.
func (ns *NS) ip(args ...string) error {
	return run(context.Background(), ipBin, append([]string{"-n", ns.name}, args...)...)
}

func (ns *NS) sysctl(kv ...string) error {
	_, err := ns.Run(context.Background(), "sysctl", append([]string{"-qw"}, kv...)...)
	return err
}

// killAll kills (by PID) every process still inside the namespace: SIGTERM,
// up to 2 s grace, then SIGKILL. Only called for the lab's own namespaces.
func (ns *NS) killAll() {
	pids := func() []int {
		out, err := exec.Command(ipBin, "netns", "pids", ns.name).Output()
		if err != nil {
			return nil
		}
		var ps []int
		for _, f := range strings.Fields(string(out)) {
			if p, err := strconv.Atoi(f); err == nil && p != os.Getpid() {
				ps = append(ps, p)
			}
		}
		return ps
	}
	ps := pids()
	if len(ps) == 0 {
		return
	}
	for _, p := range ps {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if ps = pids(); len(ps) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range ps {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	time.Sleep(100 * time.Millisecond)
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: %s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
