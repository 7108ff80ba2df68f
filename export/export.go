// Package export generates, from a vgw configuration, the configuration a
// customer gateway needs to connect to it: what the AWS console's "Download
// configuration" gives for a vendor. The vgw configuration is read through
// gwconfig (its parser, checks and AWS defaults), so the files describe the
// tunnel options the vgw really uses: addresses and identities, proposals,
// lifetimes, rekey margin and fuzz, DPD, NAT-T, inside /30s, BGP.
//
// Formats (docs/export.md):
//
//	strongswan  swanctl.conf, strongswan.conf fragment and updown script per tunnel (kernel-libipsec, route-based)
//	libreswan   ipsec.conf and an ipsec.secrets template (IKEv1 main mode)
//	bird        BIRD 2 BGP configuration over the tunnels' inside /30s
//	frr         FRR bgpd configuration over the tunnels' inside /30s
//	vpnlab      a cgw.yaml for this project's customer gateway
//	generic     the plain-text parameter sheet AWS gives for unlisted devices
//	containerlab from a scenario file (not a vgw configuration): a containerlab
//	            topology of the scenario's lab, its gateways' files, the image's Dockerfile
//
// Pre-shared keys appear in the files only with Options.IncludeSecrets;
// otherwise the files refer to where the vgw configuration takes them from
// (its psk_file or psk_env).
package export

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// Options select what is exported and how.
type Options struct {
	Connections    []string // empty: all connections in the config
	IncludeSecrets bool     // put the PSKs into the files; otherwise references/placeholders
	Advertise      []string // the customer's prefixes (BGP advertise / static routes); may be empty
	// CustomerAddress is the customer gateway's own outside address if it
	// differs from the address AWS sees (behind NAT); empty: use what the
	// vgw config says.
	CustomerAddress string
	// IKEVersion is the IKE version of the customer gateway's files: 0
	// chooses per tunnel, IKEv2 where the vgw tunnel allows it (AWS
	// recommends IKEv2), else IKEv1; IKEv1 or IKEv2 asks for that version
	// and a tunnel that does not allow it is an error (ikeversion.go).
	IKEVersion policy.Version
	// PreferIKEv1 makes the per-tunnel choice IKEv1 where the tunnel allows
	// it (vpnlab run's strongSwan customer gateway).
	PreferIKEv1 bool

	// The containerlab format (a scenario file): the scenario's profile
	// and --set variables, the image of every node (default containerlab.DefaultImage)
	// and the lab's name (default "vpnlab-" and the scenario's name).
	Profile string
	Set     map[string]string
	Image   string
	LabName string
	// Machine splits the lab over two machines joined by a VXLAN link in
	// place of the WAN router's link to the AWS endpoints: "customer"
	// (wan, cgw, the customer's hosts) or "aws" (vgw, the AWS hosts); ""
	// (default) is the whole lab on one machine. VXLANRemote is the other
	// machine's address, VNI the link's VXLAN network identifier.
	Machine     string
	VXLANRemote string
	VNI         int
}

// File is one generated file. Name is relative (e.g. "swanctl.conf" or
// "tunnel1/updown.sh").
type File struct {
	Name string
	Mode fs.FileMode
	Data []byte
}

// generator renders one format from the model.
type generator func(m *model) ([]File, error)

var generators = map[string]generator{
	"strongswan": genStrongSwan,
	"libreswan":  genLibreswan,
	"bird":       genBIRD,
	"frr":        genFRR,
	"vpnlab":     genVPNLab,
	"generic":    genGeneric,
}

// formatOrder is the order Formats lists them in.
var formatOrder = []string{"strongswan", "libreswan", "bird", "frr", "vpnlab", "generic", "containerlab"}

// ScenarioExporter exports a scenario file (not a vgw configuration).
type ScenarioExporter func(path string, opts Options) ([]File, error)

// scenarioFormats read a scenario file instead of a vgw configuration. The
// containerlab format lives in package export/containerlab, which registers
// itself here (RegisterScenarioFormat) when imported: it reads scenarios
// through package scenarios, which itself uses this package for a foreign
// customer gateway's files.
var scenarioFormats = map[string]ScenarioExporter{}

// RegisterScenarioFormat adds a format that reads a scenario file.
func RegisterScenarioFormat(name string, fn ScenarioExporter) { scenarioFormats[name] = fn }

// Formats returns the supported format names.
func Formats() []string {
	var fs []string
	for _, f := range formatOrder {
		if generators[f] != nil || scenarioFormats[f] != nil {
			fs = append(fs, f)
		}
	}
	return fs
}

// What a format reads (Input).
const (
	InputVGW      = "vgw configuration"
	InputScenario = "scenario file"
)

// Input says what the path given to Export is for format: InputVGW or
// InputScenario ("" for an unknown format).
func Input(format string) string {
	switch {
	case scenarioFormats[format] != nil:
		return InputScenario
	case generators[format] != nil:
		return InputVGW
	}
	return ""
}

// Export reads the file at path and returns the files of format. For the
// vgw formats path is a vgw configuration (read through gwconfig, with the
// vgw profile) and the files are for the selected connections; for
// containerlab it is a scenario file. Errors name the bad format,
// connection, option, the wrong kind of input file or the problems of the
// file (file:line).
func Export(format string, path string, opts Options) ([]File, error) {
	in := Input(format)
	if in == "" {
		return nil, fmt.Errorf("unknown format %q (formats: %s)", format, strings.Join(Formats(), ", "))
	}
	if err := checkInput(format, in, path); err != nil {
		return nil, err
	}
	if in == InputScenario {
		if opts.IKEVersion != 0 || opts.PreferIKEv1 {
			return nil, fmt.Errorf("--ike-version is for the formats that read a vgw configuration, not %s (the scenario's ike_versions decide)", format)
		}
		files, err := scenarioFormats[format](path, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", format, err)
		}
		sort.SliceStable(files, func(i, j int) bool { return files[i].Name < files[j].Name })
		return files, nil
	}
	if err := vgwOptionsOK(opts); err != nil {
		return nil, err
	}
	if err := checkIKEVersion(opts.IKEVersion); err != nil {
		return nil, err
	}
	gen := generators[format]
	m, err := load(path, opts)
	if err != nil {
		return nil, err
	}
	m.format = format
	files, err := gen(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", format, err)
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

// model is the customer's view of the selected tunnels.
type model struct {
	format  string
	file    string // the vgw configuration, as given
	cfg     *gwconfig.Config
	opts    Options
	tunnels []*tunnel
	// static: routing mode static (no BGP).
	static bool
	// awsASN/holdTime/keepalive: the vgw's BGP settings (bgp mode).
	bgp *gwconfig.BGP
	// vpc are the prefixes behind the vgw (what it advertises, or its local
	// traffic selector in static mode); may be empty.
	vpc []netip.Prefix
	// advertise are the customer's prefixes (Options.Advertise, or the vgw's
	// static routes in static mode).
	advertise []netip.Prefix
}

// tunnel is one tunnel seen from the customer gateway.
type tunnel struct {
	index      int // among the exported tunnels, from 0
	name       string
	connection string // the tunnel's connection ("" none)
	vgw        *policy.Tunnel
	ext        *gwconfig.Tunnel
	version    policy.Version // of the exported files (chooseVersion)

	awsAddr  netip.Addr   // AWS outside address (the vgw's local_address)
	awsID    netip.Addr   // the identity AWS sends
	awsPorts policy.Ports // the vgw's IKE and NAT-T ports
	// cgwPublic is the customer address AWS sees; cgwID the identity AWS
	// expects; cgwLocal the address the customer gateway sends from.
	cgwPublic, cgwID, cgwLocal netip.Addr
	psk                        policy.Secret
	pskRef                     string // where the vgw takes the PSK from, e.g. "psk_file /etc/vgw/t1.psk"

	inside    netip.Prefix // the /30 (invalid: none)
	cgwInside netip.Prefix // the customer's inside address with /30
	awsInside netip.Addr
	cgwASN    uint32 // the customer's ASN (0: no BGP session)
}

// natted reports whether the customer gateway sends from another address
// than AWS sees.
func (t *tunnel) natted() bool { return t.cgwLocal != t.cgwPublic }

func load(path string, opts Options) (*model, error) {
	cfg, err := gwconfig.LoadVGW(path)
	if err != nil {
		return nil, fmt.Errorf("vgw configuration: %w", err)
	}
	m := &model{file: path, cfg: cfg, opts: opts, static: cfg.Routing.Mode == gwconfig.RoutingStatic, bgp: cfg.BGP}
	var local netip.Addr
	if opts.CustomerAddress != "" {
		local, err = netip.ParseAddr(strings.TrimSpace(opts.CustomerAddress))
		if err != nil || !local.Is4() {
			return nil, fmt.Errorf("customer address %q is not an IPv4 address", opts.CustomerAddress)
		}
	}
	for _, s := range opts.Advertise {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		switch {
		case err != nil:
			return nil, fmt.Errorf("advertise %q is not a CIDR prefix such as 10.10.0.0/16", s)
		case !p.Addr().Is4():
			return nil, fmt.Errorf("advertise %s is not IPv4", p)
		case p.Masked() != p:
			return nil, fmt.Errorf("advertise %s has host bits set (did you mean %s?)", p, p.Masked())
		}
		if !slices.Contains(m.advertise, p) {
			m.advertise = append(m.advertise, p)
		}
	}
	refs, err := pskRefs(path)
	if err != nil {
		return nil, err
	}
	if err := m.selectTunnels(local, refs); err != nil {
		return nil, err
	}
	m.routes()
	return m, nil
}

// connName is the connection a tunnel belongs to for selection: its
// connection, or its own name when it has none.
func connName(ext *gwconfig.Tunnel) string {
	if ext.Connection != "" {
		return ext.Connection
	}
	return ext.Name
}

func (m *model) selectTunnels(local netip.Addr, refs map[string]string) error {
	var known []string
	for i := range m.cfg.Tunnels {
		if c := connName(&m.cfg.Tunnels[i]); !slices.Contains(known, c) {
			known = append(known, c)
		}
	}
	for _, c := range m.opts.Connections {
		if !slices.Contains(known, c) {
			return fmt.Errorf("unknown connection %q in %s (connections: %s)", c, m.file, strings.Join(known, ", "))
		}
	}
	for i := range m.cfg.IKE.Tunnels {
		vt, ext := &m.cfg.IKE.Tunnels[i], &m.cfg.Tunnels[i]
		if len(m.opts.Connections) > 0 && !slices.Contains(m.opts.Connections, connName(ext)) {
			continue
		}
		if !vt.LocalAddr.Is4() || !vt.RemoteAddr.Is4() {
			return fmt.Errorf("tunnel %s: only IPv4 outside addresses can be exported", vt.Name)
		}
		for _, id := range []struct {
			side string
			v    policy.Identity
		}{{"local_id (AWS's identity)", vt.LocalIdentity}, {"remote_id (the customer's identity)", vt.RemoteIdentity}} {
			if id.v.IsSet() && id.v.Type != policy.IdentityAddr {
				// The customer's files would name the addresses and fail
				// IKE_AUTH with an identity mismatch: refuse instead.
				return fmt.Errorf("tunnel %s: %s is the %s identity %s, and export writes address identities only (set an address, or edit the exported files)",
					vt.Name, id.side, id.v.Type, id.v)
			}
		}
		t := &tunnel{
			index: len(m.tunnels), name: vt.Name, connection: ext.Connection, vgw: vt, ext: ext,
			awsAddr: vt.LocalAddr, awsID: vt.LocalID, awsPorts: m.cfg.IKE.Ports,
			cgwPublic: vt.RemoteAddr, cgwID: vt.RemoteID, cgwLocal: vt.RemoteAddr,
			psk: vt.PSK, pskRef: refs[vt.Name],
			inside: ext.Inside, awsInside: ext.LocalInside.Addr(), cgwASN: ext.PeerASN,
		}
		if !t.awsID.IsValid() {
			t.awsID = t.awsAddr
		}
		if !t.cgwID.IsValid() { // the vgw accepts any identity: send the address it sees
			t.cgwID = t.cgwPublic
		}
		if local.IsValid() {
			t.cgwLocal = local
		}
		if ext.Inside.IsValid() {
			t.cgwInside = netip.PrefixFrom(ext.PeerInside, 30)
		}
		v, err := chooseVersion(t, m.opts)
		if err != nil {
			return err
		}
		t.version = v
		m.tunnels = append(m.tunnels, t)
	}
	if len(m.tunnels) == 0 {
		return fmt.Errorf("no tunnel selected in %s", m.file)
	}
	return nil
}

// routes fills vpc and, in static mode without Options.Advertise, the
// customer's prefixes from the vgw's static routes.
func (m *model) routes() {
	if m.bgp != nil {
		m.vpc = slices.Clone(m.bgp.Advertise)
	}
	for _, t := range m.tunnels {
		if ts := t.vgw.Phase2.LocalTS; ts.Bits() > 0 && !slices.Contains(m.vpc, ts) && m.static {
			m.vpc = append(m.vpc, ts)
		}
		if m.static && len(m.opts.Advertise) == 0 {
			for _, p := range t.ext.StaticRoutes {
				if !slices.Contains(m.advertise, p) {
					m.advertise = append(m.advertise, p)
				}
			}
		}
	}
}

// pskRefs reads, per tunnel name, where the vgw configuration takes the
// pre-shared key from ("psk_file /abs/path" or "psk_env NAME"). The file
// has already been parsed by gwconfig; this only looks at those two keys.
func pskRefs(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vgw configuration: %w", err)
	}
	var doc struct {
		Tunnels []struct {
			Name    string `yaml:"name"`
			PSKFile string `yaml:"psk_file"`
			PSKEnv  string `yaml:"psk_env"`
		} `yaml:"tunnels"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("vgw configuration %s: %w", path, err)
	}
	refs := map[string]string{}
	for _, t := range doc.Tunnels {
		switch {
		case t.PSKFile != "":
			p := t.PSKFile
			if !filepath.IsAbs(p) {
				if abs, err := filepath.Abs(filepath.Join(filepath.Dir(path), p)); err == nil {
					p = abs
				}
			}
			refs[t.Name] = "psk_file " + p
		case t.PSKEnv != "":
			refs[t.Name] = "psk_env " + t.PSKEnv
		}
	}
	return refs, nil
}

// pskSource describes where the PSK of t comes from, for comments.
func (t *tunnel) pskSource() string {
	if t.pskRef == "" {
		return "the vgw configuration"
	}
	k, v, _ := strings.Cut(t.pskRef, " ")
	if k == "psk_file" {
		return "the file " + v + " (the vgw's psk_file)"
	}
	return "the environment variable " + v + " (the vgw's psk_env)"
}

// errNoBGP is returned by the routing formats in static mode.
var errNoBGP = errors.New("the vgw configuration uses static routing (routing.mode static): there is no BGP session to configure; the static routes are in the strongswan/libreswan/vpnlab/generic exports")

// bgpTunnels returns the tunnels with a BGP session, or errNoBGP.
func (m *model) bgpTunnels() ([]*tunnel, error) {
	if m.static || m.bgp == nil {
		return nil, errNoBGP
	}
	var ts []*tunnel
	for _, t := range m.tunnels {
		if t.cgwASN != 0 && t.inside.IsValid() {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return nil, errors.New("no selected tunnel has an inside_cidr: there is no BGP session to configure")
	}
	return ts, nil
}

// header is the comment block at the top of every file; c is the comment
// prefix ("#", "!"); secrets: the file would hold a pre-shared key.
func (m *model) header(c, what string, secrets bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", c, what)
	fmt.Fprintf(&b, "%s Generated by `vpnlab export --format %s` from the vgw configuration %s.\n", c, m.format, filepath.Base(m.file))
	if secrets && !m.opts.IncludeSecrets {
		fmt.Fprintf(&b, "%s Pre-shared keys are not included (--include-secrets includes them).\n", c)
	}
	return b.String()
}

func prefixStrings(ps []netip.Prefix) []string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return s
}
