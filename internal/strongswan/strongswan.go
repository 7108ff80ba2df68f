// Package strongswan runs a strongSwan charon as an IKEv1 interop peer inside
// a netlab namespace and queries it with swanctl.
//
// The machine's kernel has no IPsec data plane, so charon uses the
// kernel-libipsec plugin (user-space ESP over a TUN device). Consequences
// (see docs/interop.md): every SA is ESP-in-UDP on port 4500 because
// libipsec makes charon fake the NAT-D payloads, tunnel mode only, ESP only.
//
// Each instance gets its own directory (in the lab's log directory) holding a
// generated strongswan.conf (passed via STRONGSWAN_CONF, with an explicit
// plugin load list), the filelog, the generated swanctl.conf and a private
// run directory that is bind-mounted over /run inside the charon's mount
// namespace (`ip netns exec` gives each command its own), so several charons
// on one machine do not fight over /run/charon.pid and charon.ctl. The vici
// socket lives in that run directory; swanctl talks to it with --uri.
//
// Functions return an error wrapping ErrNotInstalled when charon or swanctl
// is missing; tests turn it into t.Skip.
package strongswan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

// Paths of the Debian 12 strongSwan binaries (packages strongswan-charon and
// strongswan-swanctl) and its plugin directory.
const (
	CharonPath  = "/usr/lib/ipsec/charon"
	SwanctlPath = "/usr/sbin/swanctl"
	PluginDir   = "/usr/lib/ipsec/plugins"
)

// ErrNotInstalled is returned (wrapped) when charon, swanctl or a needed
// plugin is missing.
var ErrNotInstalled = errors.New("strongSwan not installed")

// DefaultPlugins is charon's plugin load list: Debian's default relative
// order for the crypto plugins (aesni before aes, openssl before gmp: the
// first plugin offering an algorithm wins), kernel-libipsec before
// kernel-netlink (the first kernel-ipsec backend wins; kernel-netlink then
// only provides addresses and routes). All exist in Debian 12's
// libstrongswan, libstrongswan-standard-plugins, libstrongswan-extra-plugins
// and libcharon-extra-plugins (kernel-libipsec).
var DefaultPlugins = []string{
	"aesni", "aes", "sha2", "sha1", "random", "nonce", "x509", "pubkey", "pkcs1", "pem",
	"openssl", "gmp", "hmac", "kdf", "gcm", "kernel-libipsec", "kernel-netlink", "socket-default", "vici",
}

// Available reports whether charon, swanctl and the plugins of plugins (nil:
// DefaultPlugins) are installed. The error wraps ErrNotInstalled.
func Available(plugins []string) error {
	for _, p := range []string{CharonPath, SwanctlPath} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w: %s missing (apt-get install strongswan-charon strongswan-swanctl)", ErrNotInstalled, p)
		}
	}
	if plugins == nil {
		plugins = DefaultPlugins
	}
	for _, p := range plugins {
		f := filepath.Join(PluginDir, "libstrongswan-"+p+".so")
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w: plugin %s missing (%s; apt-get install libcharon-extra-plugins libstrongswan-extra-plugins)", ErrNotInstalled, p, f)
		}
	}
	return nil
}

// Options configure one charon instance. The zero value is usable.
type Options struct {
	// Name of the instance (directory name); default "charon-" + the
	// namespace's role.
	Name string
	// Dir is the instance directory (default: Name in the lab's log
	// directory). Its vici socket path must stay short (unix sockets).
	Dir string
	// LogLevel is the filelog default level (-1..4, default 1); ike and knl
	// log at least at level 2 (enough to see the exchanges).
	LogLevel int
	// KeyLog logs IKE and ESP keys (ike = chd = 4), e.g. for tshark.
	KeyLog bool
	// Plugins overrides DefaultPlugins.
	Plugins []string
	// Port and NATTPort are charon's IKE ports (default 500 / 4500).
	Port, NATTPort int
	// RoutingTable / RoutingTablePrio for the routes kernel-libipsec
	// installs via its TUN (default 220 / 220). Use a priority above 32766
	// to keep them behind the main table.
	RoutingTable, RoutingTablePrio int
	// Extra is appended verbatim inside the charon { } section.
	Extra string
	// Include is a strongswan.conf (e.g. one written by `vpnlab export
	// --format strongswan`) to run this charon with: the generated
	// strongswan.conf includes it and adds only the instance's private
	// settings (vici socket, filelog, no syslog), which win; the plugin
	// list, ports and routing table come from Include, and Plugins, Port,
	// NATTPort, RoutingTable and RoutingTablePrio are ignored.
	Include string
	// Vici, with Include, is where the vici socket that Include configures
	// appears from outside charon's mount namespace (e.g. in a directory
	// bind-mounted by Mounts); then the generated strongswan.conf leaves
	// the socket to Include. Empty: the instance's own socket.
	Vici string
	// Mounts are bind mounts made in charon's private mount namespace
	// before it starts (after /run), e.g. a directory of exported files over
	// /etc/swanctl so that the absolute paths in them resolve. Targets must
	// exist.
	Mounts []Mount
}

// Mount is a bind mount in charon's mount namespace.
type Mount struct{ Source, Target string }

// Charon is a running charon.
type Charon struct {
	ns      *netlab.NS
	dir     string
	logPath string
	vici    string // socket path
	proc    *netlab.Proc
	tun     string
}

// Start writes the instance's strongswan.conf, starts charon in ns and waits
// (up to 10 s) for its vici socket and its TUN device. The process is
// stopped by Stop or by the lab's cleanup at the latest.
func Start(ctx context.Context, ns *netlab.NS, opt Options) (*Charon, error) {
	if err := Available(opt.Plugins); err != nil {
		return nil, err
	}
	if opt.Name == "" {
		opt.Name = "charon-" + ns.Role()
	}
	dir := filepath.Join(ns.Lab().LogDir(), opt.Name)
	if opt.Dir != "" {
		dir = opt.Dir
	}
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o700); err != nil {
		return nil, err
	}
	c := &Charon{
		ns:      ns,
		dir:     dir,
		logPath: filepath.Join(dir, "charon.log"),
		vici:    filepath.Join(dir, "run", "charon.vici"),
	}
	if opt.Include != "" && opt.Vici != "" {
		c.vici = opt.Vici
	}
	if len("unix://"+c.vici) > 100 {
		return nil, fmt.Errorf("strongswan: vici socket path too long for a unix socket: %s (set TMPDIR shorter)", c.vici)
	}
	_ = os.Remove(c.vici)
	_ = os.Remove(c.logPath)
	conf := filepath.Join(dir, "strongswan.conf")
	if err := os.WriteFile(conf, []byte(c.strongswanConf(opt)), 0o600); err != nil {
		return nil, err
	}
	// `ip netns exec` runs the shell in a fresh mount namespace (slave
	// propagation), so the bind mount over /run is private to this charon:
	// its pid file and stroke socket land in dir/run.
	script := `mount --bind "$1" /run || exit 1
charon=$2
shift 2
while [ $# -gt 0 ]; do mount --bind "$1" "$2" || exit 1; shift 2; done
exec "$charon" --use-syslog`
	args := []string{"-c", script, "sh", filepath.Join(dir, "run"), CharonPath}
	for _, m := range opt.Mounts {
		args = append(args, m.Source, m.Target)
	}
	cmd := ns.Command(context.Background(), "/bin/sh", args...)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+conf)
	p, err := ns.StartCmd(cmd, opt.Name)
	if err != nil {
		return nil, err
	}
	c.proc = p
	if err := c.waitFor(ctx, 10*time.Second, "vici socket", func() bool {
		fi, err := os.Stat(c.vici)
		return err == nil && fi.Mode()&os.ModeSocket != 0
	}); err != nil {
		c.Stop()
		return nil, err
	}
	re := regexp.MustCompile(`created TUN device: (\S+)`)
	if err := c.waitFor(ctx, 5*time.Second, `"created TUN device" log line`, func() bool {
		b, _ := os.ReadFile(c.logPath)
		if m := re.FindSubmatch(b); m != nil {
			c.tun = string(m[1])
			return true
		}
		return false
	}); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Charon) strongswanConf(opt Options) string {
	lvl := opt.LogLevel
	if lvl == 0 {
		lvl = 1
	}
	atLeast2 := max(lvl, 2)
	ike, chd := atLeast2, lvl
	if opt.KeyLog {
		ike, chd = 4, 4
	}
	if opt.Include != "" {
		return c.includeConf(opt, c.logConf(logLevel{"default", lvl}, logLevel{"ike", ike},
			logLevel{"chd", chd}, logLevel{"knl", atLeast2}, logLevel{"cfg", atLeast2}))
	}
	plugins := opt.Plugins
	if plugins == nil {
		plugins = DefaultPlugins
	}
	orDefault := func(v, d int) int {
		if v == 0 {
			return d
		}
		return v
	}
	logs := c.logConf(logLevel{"default", lvl}, logLevel{"ike", ike}, logLevel{"chd", chd},
		logLevel{"knl", atLeast2}, logLevel{"cfg", lvl}, logLevel{"net", lvl}, logLevel{"enc", lvl}, logLevel{"esp", lvl})
	return fmt.Sprintf(`# generated by internal/strongswan for %s (netns %s)
charon {
  # explicit list: kernel-libipsec must come before kernel-netlink
  load = %s
  port = %d
  port_nat_t = %d
  install_routes = yes
  routing_table = %d
  routing_table_prio = %d
  install_virtual_ip = no
  ikesa_table_size = 32
  plugins {
    vici {
      socket = unix://%s
    }
  }
%s%s}
`, filepath.Base(c.dir), c.ns.Name(), strings.Join(plugins, " "),
		orDefault(opt.Port, 500), orDefault(opt.NATTPort, 4500),
		orDefault(opt.RoutingTable, 220), orDefault(opt.RoutingTablePrio, 220),
		c.vici, logs, opt.Extra)
}

// logLevel is one subsystem's level in the filelog section.
type logLevel struct {
	subsystem string
	level     int
}

// logConf is the part of charon's section that sends its log to the
// instance's file (at the given levels) and nowhere else.
func (c *Charon) logConf(levels ...logLevel) string {
	var b strings.Builder
	fmt.Fprintf(&b, `  filelog {
    interop {
      path = %s
      time_format = %%Y-%%m-%%d %%H:%%M:%%S
      time_add_ms = yes
      ike_name = yes
      append = no
      flush_line = yes
`, c.logPath)
	for _, l := range levels {
		fmt.Fprintf(&b, "      %s = %d\n", l.subsystem, l.level)
	}
	b.WriteString(`    }
  }
  syslog {
    daemon {
      default = -1
    }
    auth {
      default = -1
    }
  }
`)
	return b.String()
}

// includeConf is the strongswan.conf of an instance run with
// Options.Include: that file first, then the instance's private settings
// (logs: its filelog sections).
func (c *Charon) includeConf(opt Options, logs string) string {
	vici := fmt.Sprintf("  plugins {\n    vici {\n      socket = unix://%s\n    }\n  }\n", c.vici)
	if opt.Vici != "" {
		vici = "  # the vici socket is Include's\n"
	}
	return fmt.Sprintf(`# generated by internal/strongswan for %s (netns %s)
include %s
charon {
%s%s%s}
`, filepath.Base(c.dir), c.ns.Name(), opt.Include, vici, logs, opt.Extra)
}

// waitFor polls cond every 50 ms until it holds, the timeout passes, ctx is
// done or charon exits.
func (c *Charon) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if ok, err := c.proc.Exited(); ok {
			return fmt.Errorf("strongswan: charon in %s exited (%v) while waiting for %s\n--- charon.log:\n%s\n--- stdout/stderr:\n%s",
				c.ns.Name(), err, what, c.LogTail(30), c.proc.Tail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("strongswan: charon in %s: no %s after %v (log: %s)", c.ns.Name(), what, timeout, c.logPath)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("strongswan: waiting for %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Dir is the instance directory (configs, logs, run/).
func (c *Charon) Dir() string { return c.dir }

// LogPath is charon's filelog.
func (c *Charon) LogPath() string { return c.logPath }

// LogTail returns the last n lines of charon's log.
func (c *Charon) LogTail(n int) string { return netlab.TailFile(c.logPath, n) }

// TUN is the name of the TUN device kernel-libipsec created (e.g. "ipsec0").
func (c *Charon) TUN() string { return c.tun }

// URI is the vici URI for swanctl --uri.
func (c *Charon) URI() string { return "unix://" + c.vici }

// Proc is the charon process.
func (c *Charon) Proc() *netlab.Proc { return c.proc }

// Swanctl runs `swanctl CMD --uri URI ARGS...` (the command must come before
// --uri) and returns its combined output.
func (c *Charon) Swanctl(ctx context.Context, cmd string, args ...string) ([]byte, error) {
	all := append([]string{cmd, "--uri", c.URI()}, args...)
	out, err := exec.CommandContext(ctx, SwanctlPath, all...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("strongswan: swanctl %s: %v: %s", strings.Join(all, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Load writes cfg as swanctl.conf into the instance directory and loads it
// (`swanctl --load-all --file`).
func (c *Charon) Load(ctx context.Context, cfg Config) error {
	text, err := cfg.Render()
	if err != nil {
		return err
	}
	f := filepath.Join(c.dir, "swanctl.conf")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		return err
	}
	_, err = c.Swanctl(ctx, "--load-all", "--file", f)
	return err
}

// LoadFile loads a swanctl.conf written elsewhere (e.g. by vpnlab export):
// `swanctl --load-all --file PATH`. Its relative includes are resolved
// from its directory.
func (c *Charon) LoadFile(ctx context.Context, path string) ([]byte, error) {
	return c.Swanctl(ctx, "--load-all", "--file", path)
}

// Initiate runs `swanctl --initiate --child CHILD` and waits up to timeout
// (whole seconds, at least 1) for the result; it returns swanctl's output
// (the log of the exchange).
func (c *Charon) Initiate(ctx context.Context, child string, timeout time.Duration) ([]byte, error) {
	secs := max(int((timeout+time.Second-1)/time.Second), 1)
	return c.Swanctl(ctx, "--initiate", "--child", child, "--timeout", strconv.Itoa(secs))
}

// Terminate terminates an IKE_SA by name (`swanctl --terminate --ike NAME`).
func (c *Charon) Terminate(ctx context.Context, ike string, timeout time.Duration) ([]byte, error) {
	secs := max(int((timeout+time.Second-1)/time.Second), 1)
	return c.Swanctl(ctx, "--terminate", "--ike", ike, "--timeout", strconv.Itoa(secs))
}

// ListSAs runs `swanctl --list-sas --raw` and parses the IKE_SAs.
func (c *Charon) ListSAs(ctx context.Context) ([]IKESA, error) {
	out, err := c.Swanctl(ctx, "--list-sas", "--raw")
	if err != nil {
		return nil, err
	}
	return ParseListSAs(out)
}

// WaitEstablished polls ListSAs every 200 ms until an IKE_SA named ike is
// ESTABLISHED with a CHILD_SA named child INSTALLED (child "" = any IKE_SA
// state check only), timeout passes, ctx is done or charon exits.
func (c *Charon) WaitEstablished(ctx context.Context, ike, child string, timeout time.Duration) (IKESA, ChildSA, error) {
	var (
		sa   IKESA
		csa  ChildSA
		last []IKESA
		lerr error
	)
	err := c.waitFor(ctx, timeout, fmt.Sprintf("ESTABLISHED IKE_SA %q with INSTALLED CHILD_SA %q", ike, child), func() bool {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		last, lerr = c.ListSAs(qctx)
		for _, s := range last {
			if s.Name != ike || s.State != "ESTABLISHED" {
				continue
			}
			if child == "" {
				sa = s
				return true
			}
			for _, ch := range s.Children {
				if ch.Name == child && ch.State == "INSTALLED" {
					sa, csa = s, ch
					return true
				}
			}
		}
		return false
	})
	if err != nil {
		return sa, csa, fmt.Errorf("%w\n--- last list-sas: %s (error: %v)", err, Summary(last), lerr)
	}
	return sa, csa, nil
}

// Stop terminates charon (SIGTERM, SIGKILL after 5 s) and waits for it.
func (c *Charon) Stop() error {
	if c.proc == nil {
		return nil
	}
	err := c.proc.Stop(5 * time.Second)
	var ee *exec.ExitError
	if errors.As(err, &ee) && !ee.Exited() { // killed by our signal
		return nil
	}
	return err
}
