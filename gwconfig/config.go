// Package gwconfig loads the YAML configuration of the two gateway binaries:
// cmd/vgw (the AWS-modelled virtual private gateway) and cmd/cgw (the customer
// gateway). It applies the profile's defaults, validates every field with an
// error that names the file, line and field path, reads the pre-shared keys,
// and converts the result to an policy.Config.
//
// The vgw profile defaults to, and is held to, the AWS Site-to-Site VPN tunnel
// options; the cgw profile defaults to a typical strongSwan-like customer
// gateway and checks only what the protocol needs. docs/config.md describes
// every field.
package gwconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vpnlab/vpnlab/ike/policy"
)

// Profile selects defaults and validation rules.
type Profile int

const (
	// VGW is the AWS virtual private gateway: AWS tunnel-option defaults and
	// ranges.
	VGW Profile = iota
	// CGW is the customer gateway: strongSwan-like defaults, protocol checks.
	CGW
)

func (p Profile) String() string {
	if p == CGW {
		return "cgw"
	}
	return "vgw"
}

// ParseProfile parses "vgw" or "cgw".
func ParseProfile(s string) (Profile, error) {
	switch strings.ToLower(s) {
	case "vgw":
		return VGW, nil
	case "cgw":
		return CGW, nil
	}
	return 0, fmt.Errorf("unknown profile %q (want vgw or cgw)", s)
}

// Log is the logging configuration.
type Log struct {
	Format string // "text" or "json"
	Level  string // "debug", "info", "warn" or "error"
}

// LogFormats and LogLevels are the allowed values of Log.
var (
	LogFormats = []string{"text", "json", "aws"}
	LogLevels  = []string{"debug", "info", "warn", "error"}
)

// Control is where the control API listens. The zero value means no control
// API.
type Control struct {
	Network string // "unix" or "tcp"
	Address string // socket path or loopback host:port
}

// Enabled reports whether a control API address is configured.
func (c Control) Enabled() bool { return c.Address != "" }

// String returns the address in the configuration syntax ("unix:/path" or
// "127.0.0.1:9500"), or "off".
func (c Control) String() string {
	switch {
	case !c.Enabled():
		return "off"
	case c.Network == "unix":
		return "unix:" + c.Address
	}
	return c.Address
}

// ParseControl parses a control API address: "unix:/path/to.sock" or a TCP
// "host:port" (also "tcp:host:port") whose host is a loopback address or
// "localhost". A non-loopback TCP address is refused: the control API has no
// authentication. An empty string means no control API.
func ParseControl(s string) (Control, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Control{}, nil
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(s, "unix:")
		if p == "" {
			return Control{}, errors.New("unix: needs a socket path, e.g. unix:/run/vpnlab/vgw.sock")
		}
		return Control{Network: "unix", Address: p}, nil
	}
	s = strings.TrimPrefix(s, "tcp:")
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Control{}, fmt.Errorf("%q: want unix:/path/to.sock or a loopback host:port such as 127.0.0.1:9500", s)
	}
	if _, err := netip.ParseAddrPort(net.JoinHostPort("127.0.0.1", port)); err != nil {
		return Control{}, fmt.Errorf("%q: bad port %q", s, port)
	}
	if host != "localhost" {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return Control{}, fmt.Errorf("%q: host must be a loopback IP address or localhost", s)
		}
		if !a.IsLoopback() {
			return Control{}, fmt.Errorf("%q: refusing a non-loopback address: the control API has no authentication (use 127.0.0.1, ::1 or a unix socket)", s)
		}
	}
	return Control{Network: "tcp", Address: s}, nil
}

// Config is a loaded configuration: the engine's configuration and the
// gateway process settings.
type Config struct {
	Profile Profile
	File    string // as given to Load or Parse

	Log     Log
	Control Control
	// KeyLog is the path of the opt-in Wireshark key log; "" is off.
	KeyLog string
	// LabTimers relaxes the lower bounds of the vgw's timers (lifetimes,
	// rekey margin, DPD timeout) for tests and demos.
	LabTimers bool

	IKE policy.Config

	// Routing is the routing section: static or BGP.
	Routing Routing
	// BGP is the bgp section; non-nil exactly when Routing.Mode is
	// RoutingBGP.
	BGP *BGP
	// Tunnels is parallel to IKE.Tunnels (same length, same order, same
	// names): each tunnel's connection, inside addresses, BGP neighbor
	// settings and static routes.
	Tunnels []Tunnel

	// DataPath is the TUN data path; nil means IKE only.
	DataPath *DataPath
	// Capture is the path of a pcap file of everything crossing the
	// outside sockets (IKE, NAT-T, ESP, AH); "" is off.
	Capture string

	// Warnings are problems that did not stop loading; log them.
	Warnings []*Warning
}

// LoadVGW loads a virtual private gateway configuration (AWS defaults and
// ranges).
func LoadVGW(path string) (*Config, error) { return Load(path, VGW) }

// LoadCGW loads a customer gateway configuration.
func LoadCGW(path string) (*Config, error) { return Load(path, CGW) }

// Load reads and parses the file at path for profile. A relative psk_file is
// taken relative to the directory of path. The error is an ErrorList when the
// file could be read.
func Load(path string, profile Profile) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, profile, path)
}

// Parse parses configuration data; filename is used in errors and as the
// base of relative psk_file paths (its directory; the working directory when
// filename has none). On failure the error is an ErrorList with every problem
// found, each naming filename:line and the field path.
func Parse(data []byte, profile Profile, filename string) (*Config, error) {
	d := &decoder{file: filename}
	if profile != VGW && profile != CGW {
		return nil, fmt.Errorf("config: unknown profile %d", int(profile))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			d.errf(nil, "", "empty configuration")
			return nil, d.sorted()
		}
		d.errs = append(d.errs, yamlError(filename, err))
		return nil, d.sorted()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		if err != nil {
			d.errs = append(d.errs, yamlError(filename, err))
		} else {
			d.errf(&extra, "", "more than one YAML document")
		}
		return nil, d.sorted()
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	c := &Config{Profile: profile, File: filename}
	base := filepath.Dir(filename)
	if filename == "" {
		base = "."
	}
	d.config(c, root, base)
	c.Warnings = d.warns
	if len(d.errs) > 0 {
		return nil, d.sorted()
	}
	return c, nil
}

// yamlError turns a yaml.v3 syntax error ("yaml: line 3: ...") into an Error.
func yamlError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var ln int
	if _, e := fmt.Sscanf(msg, "line %d:", &ln); e == nil {
		if i := strings.Index(msg, ":"); i >= 0 {
			msg = strings.TrimSpace(msg[i+1:])
		}
	}
	return &Error{File: file, Line: ln, Msg: "YAML syntax: " + msg}
}

// Engine defaults (strongSwan's retransmission settings).
const (
	defaultRetransmitTimeout = 4 * time.Second
	defaultRetransmitBase    = 1.8
	defaultRetransmitTries   = 5
	defaultMaxHalfOpen       = 1024
)

func (d *decoder) config(c *Config, root *yaml.Node, base string) {
	if isNull(resolve(root)) {
		d.errf(root, "", "empty configuration")
		return
	}
	top := d.object(root, "", "log", "control", "key_log", "capture", "lab_timers", "ike", "data_path", "routing", "bgp", "tunnels", "impair")
	if resolve(root).Kind != yaml.MappingNode {
		return
	}

	lg := d.object(top.get("log"), "log", "format", "level")
	c.Log.Format = lg.enum("format", "text", LogFormats...)
	c.Log.Level = lg.enum("level", "info", LogLevels...)

	ctl := d.object(top.get("control"), "control", "listen")
	if n, ok := ctl.scalar("listen"); ok {
		cc, err := ParseControl(n.Value)
		if err != nil {
			d.errf(n, "control.listen", "%v", err)
		}
		c.Control = cc
	}
	c.KeyLog = top.str("key_log", "")
	c.Capture = top.str("capture", "")
	d.dataPath(c, top)
	c.LabTimers = top.boolean("lab_timers", false)
	impairs := d.impair(top)

	ik := d.object(top.get("ike"), "ike", "port", "natt_port", "retransmit_timeout", "retransmit_base", "retransmit_tries", "max_half_open")
	c.IKE.Ports.IKE = uint16(ik.integer("port", 500, 1, 65535))
	c.IKE.Ports.NATT = uint16(ik.integer("natt_port", 4500, 1, 65535))
	if c.IKE.Ports.IKE == c.IKE.Ports.NATT {
		d.errf(ik.line("natt_port"), "ike.natt_port", "must differ from ike.port (%d)", c.IKE.Ports.IKE)
	}
	c.IKE.RetransmitTimeout, _ = ik.duration("retransmit_timeout", defaultRetransmitTimeout)
	if c.IKE.RetransmitTimeout <= 0 {
		d.errf(ik.line("retransmit_timeout"), "ike.retransmit_timeout", "must be positive")
	}
	base1, set := ik.float("retransmit_base", defaultRetransmitBase)
	if set && base1 < 1 {
		d.errf(ik.line("retransmit_base"), "ike.retransmit_base", "%v is out of range (allowed: >= 1)", base1)
		base1 = defaultRetransmitBase
	}
	c.IKE.RetransmitBase = base1
	c.IKE.RetransmitTries = int(ik.integer("retransmit_tries", defaultRetransmitTries, 1, 100))
	c.IKE.MaxHalfOpen = int(ik.integer("max_half_open", defaultMaxHalfOpen, 1, 1<<20))

	tn := top.get("tunnels")
	if tn == nil {
		d.errf(top.line("tunnels"), "tunnels", "at least one tunnel is required")
		return
	}
	if tn.Kind != yaml.SequenceNode {
		d.errf(tn, "tunnels", "expected a list, got %s", kindName(tn))
		return
	}
	if len(tn.Content) == 0 {
		d.errf(tn, "tunnels", "at least one tunnel is required")
		return
	}
	names := make(map[string]int, len(tn.Content))
	type pair struct{ l, r netip.Addr }
	peers := make(map[pair]string, len(tn.Content))
	raws := make([]*tunnelRaw, len(tn.Content))
	for i, n := range tn.Content {
		path := fmt.Sprintf("tunnels[%d]", i)
		raws[i] = &tunnelRaw{}
		t := d.tunnel(c, resolve(n), path, base, raws[i])
		if !raws[i].ok {
			continue
		}
		if first, dup := names[t.Name]; dup {
			d.errf(n, path+".name", "%q is already used by tunnels[%d]", t.Name, first)
		} else {
			names[t.Name] = i
		}
		k := pair{t.LocalAddr, t.RemoteAddr}
		if other, dup := peers[k]; dup {
			d.errf(n, path, "local_address %s and remote_address %s are already used by tunnel %q (the peer could not tell the tunnels apart)", t.LocalAddr, t.RemoteAddr, other)
		} else {
			peers[k] = t.Name
		}
		c.IKE.Tunnels = append(c.IKE.Tunnels, t)
	}
	d.impairTunnels(c, impairs)
	d.routing(c, top, raws)
}
