package containerlab

import (
	_ "embed"
	"fmt"
	"github.com/vpnlab/vpnlab/export"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vpnlab/vpnlab/scenarios"
)

// The containerlab format: from a scenario file, a containerlab topology
// (*.clab.yml) with the lab's WAN router, gateways and hosts as nodes of
// kind linux running the vpnlab image, the gateways' configurations as the
// runner generates them (scenarios.LabSpec) bound into them, exec commands
// that set addresses, routes, forwarding and NAT as the runner's lab does,
// the Dockerfile of the image and a runbook of the scenario's steps
// (docs/multihost.md).

//go:embed Dockerfile
var clabDockerfile []byte

// DefaultImage is the image of every node unless export.Options.Image says.
const DefaultImage = "vpnlab:latest"

// Paths inside the containers.
const (
	clabEtc     = "/etc/vpnlab"
	clabControl = "/run/vpnlab.sock"
	clabLogDir  = "/var/log/vpnlab"
)

// clabTopo is the part of containerlab's topology file we write; field
// order is the file's.
type clabTopo struct {
	Name     string       `yaml:"name"`
	Topology clabTopology `yaml:"topology"`
}

type clabTopology struct {
	Nodes map[string]*clabNode `yaml:"nodes"`
	Links []clabLink           `yaml:"links"`
}

type clabNode struct {
	Kind     string            `yaml:"kind"`
	Image    string            `yaml:"image"`
	Labels   map[string]string `yaml:"labels,omitempty"`
	Devices  []string          `yaml:"devices,omitempty"`
	Sysctls  map[string]string `yaml:"sysctls,omitempty"`
	EnvFiles []string          `yaml:"env-files,omitempty"`
	Binds    []string          `yaml:"binds,omitempty"`
	Exec     []string          `yaml:"exec,omitempty"`
}

// clabLink is a veth link (Endpoints, "node:interface") or, for a lab
// split over two machines, a vxlan link (Type vxlan).
type clabLink struct {
	Endpoints []string      `yaml:"endpoints,omitempty"`
	Type      string        `yaml:"type,omitempty"`
	Endpoint  *clabEndpoint `yaml:"endpoint,omitempty"`
	Remote    string        `yaml:"remote,omitempty"`
	VNI       int           `yaml:"vni,omitempty"`
	DstPort   int           `yaml:"dst-port,omitempty"`
	MTU       int           `yaml:"mtu,omitempty"`
}

type clabEndpoint struct {
	Node      string `yaml:"node"`
	Interface string `yaml:"interface"`
}

// clab is one export in progress.
type clab struct {
	s     *scenarios.Scenario
	ls    *scenarios.LabSpec
	opts  export.Options
	name  string // the lab's name
	topo  clabTopo
	files []export.File
	// ifaces: per gateway node, the interface of each host's link.
	hostIf map[string]string
	// policies: the BGP neighbor policy (gateway/tunnel) the runbook's
	// steps have set so far.
	policies map[string]neighborPolicy
}

var labNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-._]*$`)

// exportContainerlab reads the scenario file at path and returns the lab's
// files.
func exportContainerlab(path string, opts export.Options) ([]export.File, error) {
	s, err := scenarios.Load(path, scenarios.Options{Profile: opts.Profile, Set: opts.Set})
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	ls, err := s.LabSpec(func(gw string) scenarios.GatewayPaths {
		return scenarios.GatewayPaths{Control: clabControl, KeyLog: clabLogDir + "/keys.log", Events: clabLogDir + "/events.ndjson"}
	})
	if err != nil {
		return nil, err
	}
	c := &clab{s: s, ls: ls, opts: opts, hostIf: map[string]string{}, policies: map[string]neighborPolicy{}}
	c.name = opts.LabName
	if c.name == "" {
		c.name = "vpnlab-" + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
				return r
			}
			return '-'
		}, s.Name)
	}
	if !labNameRE.MatchString(c.name) {
		return nil, fmt.Errorf("lab name %q: containerlab takes letters, digits, '-', '.' and '_', starting with a letter or digit", c.name)
	}
	if opts.Image == "" {
		c.opts.Image = DefaultImage
	}
	if err := splitOptions(&c.opts); err != nil {
		return nil, err
	}
	c.topo = clabTopo{Name: c.name, Topology: clabTopology{Nodes: map[string]*clabNode{}}}
	c.build()
	c.split()
	if err := c.gatewayFiles(); err != nil {
		return nil, err
	}
	if c.topo.Topology.Nodes["wan"] != nil {
		c.files = append(c.files, export.File{Name: "wan/wan.nft", Mode: 0o644, Data: c.wanNft()})
	}
	c.files = append(c.files, export.File{Name: "Dockerfile", Mode: 0o644, Data: clabDockerfile})
	c.files = append(c.files, export.File{Name: "steps.txt", Mode: 0o644, Data: c.runbook()})
	y, err := yaml.Marshal(&c.topo)
	if err != nil {
		return nil, err
	}
	c.files = append(c.files, export.File{Name: c.name + ".clab.yml", Mode: 0o644, Data: append([]byte(c.header()), y...)})
	return c.files, nil
}

// clabOptionsOK refuses the options of the vgw formats.
func clabOptionsOK(o export.Options) error {
	var bad []string
	if len(o.Connections) > 0 {
		bad = append(bad, "--connection")
	}
	if len(o.Advertise) > 0 {
		bad = append(bad, "--advertise")
	}
	if o.CustomerAddress != "" {
		bad = append(bad, "--customer-address")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: not used by --format containerlab (the scenario file says which connections, prefixes and addresses the lab has)", strings.Join(bad, ", "))
	}
	return nil
}

func (c *clab) header() string {
	h := fmt.Sprintf(`# containerlab topology of the scenario %q (%s), generated by
# vpnlab export --format containerlab (docs/multihost.md).
# Build the image first (Dockerfile beside this file), then:
#   containerlab deploy -t %s.clab.yml
# Nodes: %s; every node runs %s.
# steps.txt lists the scenario's steps as commands.
`, c.s.Name, filepath.Base(c.s.File), c.name, c.nodeList(), c.opts.Image)
	if c.opts.Machine != "" {
		h += fmt.Sprintf(`# This is the %s machine's part of the lab; the other part runs on %s
# (vpnlab export --format containerlab --machine %s --vxlan-remote THIS_MACHINE
# --vni %d). The WAN router's link to the AWS endpoints is VXLAN %d over UDP %d
# between the machines: their path must carry 1550-byte packets.
`, c.opts.Machine, c.opts.VXLANRemote, other(c.opts.Machine), c.opts.VNI, c.opts.VNI, VXLANPort)
	}
	return h
}

// nodeList names the topology's nodes: the WAN router, the gateways, then
// the hosts.
func (c *clab) nodeList() string {
	var l []string
	for _, n := range []struct{ name, what string }{{"wan", "wan (the WAN router)"}, {"cgw", "cgw (customer gateway)"}, {"vgw", "vgw (AWS side)"}} {
		if c.topo.Topology.Nodes[n.name] != nil {
			l = append(l, n.what)
		}
	}
	for _, h := range c.ls.Hosts {
		if c.topo.Topology.Nodes[h.Name] != nil {
			l = append(l, h.Name+" ("+h.Side+" host)")
		}
	}
	return strings.Join(l, ", ")
}

func other(machine string) string {
	if machine == "customer" {
		return "aws"
	}
	return "customer"
}

// container is the name containerlab gives a node's container.
func (c *clab) container(node string) string { return "clab-" + c.name + "-" + node }

func (c *clab) node(name, role string) *clabNode {
	n := &clabNode{Kind: "linux", Image: c.opts.Image, Labels: map[string]string{"vpnlab.role": role}}
	c.topo.Topology.Nodes[name] = n
	return n
}

// link joins a:ai and b:bi with a veth pair of MTU 1500 (containerlab's
// default is 9500; the lab's links and the Internet have 1500).
func (c *clab) link(a, ai, b, bi string) {
	c.topo.Topology.Links = append(c.topo.Topology.Links, clabLink{Endpoints: []string{a + ":" + ai, b + ":" + bi}, MTU: 1500})
}

var routerSysctls = map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"}

// build makes the nodes and links, addressed as buildLab does:
//
//	host(s) -- cgw eth1 -- eth1 wan eth2 -- eth1 vgw -- host(s)
func (c *clab) build() {
	ls := c.ls
	wan := c.node("wan", "wan")
	wan.Sysctls = routerSysctls
	wan.Binds = []string{"wan/wan.nft:" + clabEtc + "/wan.nft:ro"}
	wan.Exec = []string{
		"ip addr add " + pfx(ls.WANCustomer, ls.CustomerNet.Bits()) + " dev eth1",
		"ip addr add " + pfx(ls.WANPublic, ls.PublicNet.Bits()) + " dev eth2",
		// No way out to the management network: the lab's WAN ends here.
		`sh -c "ip route del default || true"`,
		"nft -f " + clabEtc + "/wan.nft",
	}
	cgw, vgw := c.gateway("cgw"), c.gateway("vgw")
	c.link("cgw", "eth1", "wan", "eth1")
	c.link("wan", "eth2", "vgw", "eth1")
	cgw.Exec = []string{
		"ip addr add " + ls.CustomerOutside.String() + " dev eth1",
		"ip route replace default via " + ls.WANCustomer.String() + " dev eth1",
	}
	vgw.Exec = []string{`sh -c "ip route del default || true"`}
	for _, t := range ls.Tunnels {
		vgw.Exec = append(vgw.Exec, "ip addr add "+pfx(t.AWSOutside, ls.PublicNet.Bits())+" dev eth1")
	}
	if !ls.NAT {
		vgw.Exec = append(vgw.Exec, "ip route add "+ls.CustomerNet.String()+" via "+ls.WANPublic.String())
	}
	next := map[string]int{"cgw": 2, "vgw": 2}
	for _, h := range ls.Hosts {
		gw, gwn := "cgw", cgw
		if h.Side == "aws" {
			gw, gwn = "vgw", vgw
		}
		iface := fmt.Sprintf("eth%d", next[gw])
		next[gw]++
		c.hostIf[h.Name] = iface
		n := c.node(h.Name, h.Side+"-host")
		n.Exec = []string{
			"ip addr add " + h.Addr.String() + " dev eth1",
			"ip route replace default via " + h.GW.String() + " dev eth1",
		}
		c.link(h.Name, "eth1", gw, iface)
		gwn.Exec = append(gwn.Exec, "ip addr add "+pfx(h.GW, h.Addr.Bits())+" dev "+iface)
	}
	// The other side's host networks never leave a gateway in the clear.
	for _, h := range ls.Hosts {
		gwn := vgw
		if h.Side == "aws" {
			gwn = cgw
		}
		gwn.Exec = append(gwn.Exec, "ip route add blackhole "+h.Addr.Masked().String()+" metric 4000")
	}
	if ls.StartsGateways {
		// As the runner: the vgw first, then the cgw (exec runs per node
		// once its links are attached; the cgw retransmits if it is first).
		vgw.Exec = append(vgw.Exec, clabEtc+"/gateway.sh start")
		cgw.Exec = append(cgw.Exec, clabEtc+"/gateway.sh start")
	}
}

// gateway makes a gateway node: TUN device, forwarding, its files.
func (c *clab) gateway(name string) *clabNode {
	n := c.node(name, name)
	n.Devices = []string{"/dev/net/tun"}
	n.Sysctls = routerSysctls
	n.EnvFiles = []string{name + "/psk.env"}
	n.Binds = []string{
		name + "/" + name + ".yaml:" + clabEtc + "/" + name + ".yaml:ro",
		name + "/gateway.sh:" + clabEtc + "/gateway.sh:ro",
	}
	return n
}

// gatewayFiles adds each gateway's configuration, start script and key
// file (or its example).
func (c *clab) gatewayFiles() error {
	for _, g := range c.ls.Gateways {
		if c.topo.Topology.Nodes[g.Name] == nil {
			// On the other machine. A scenario without psk gets random
			// keys per export: its key file goes there from this export.
			if c.opts.IncludeSecrets {
				psk, err := c.pskFile(g)
				if err != nil {
					return err
				}
				c.files = append(c.files, psk)
			}
			continue
		}
		cfg := append([]byte(fmt.Sprintf("# In the containerlab lab %s (vpnlab export --format containerlab): %s/%s.yaml.\n", c.name, clabEtc, g.Name)), g.Config...)
		psk, err := c.pskFile(g)
		if err != nil {
			return err
		}
		c.files = append(c.files,
			export.File{Name: g.Name + "/" + g.Name + ".yaml", Mode: 0o644, Data: cfg},
			export.File{Name: g.Name + "/gateway.sh", Mode: 0o755, Data: gatewayScript(g)},
			psk)
	}
	return nil
}

func pfx(a interface{ String() string }, bits int) string { return fmt.Sprintf("%s/%d", a, bits) }

func init() { export.RegisterScenarioFormat("containerlab", Export) }

// Export reads the scenario file at path and returns the files of its
// containerlab lab (export.Export with --format containerlab calls it).
func Export(path string, opts export.Options) ([]export.File, error) {
	if err := clabOptionsOK(opts); err != nil {
		return nil, err
	}
	return exportContainerlab(path, opts)
}
