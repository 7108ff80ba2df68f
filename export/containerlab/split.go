package containerlab

import (
	"fmt"
	"github.com/vpnlab/vpnlab/export"
	"net/netip"
	"strings"
)

// VXLANPort is the UDP port of the VXLAN link between two machines (IANA's
// VXLAN port, RFC 7348).
const VXLANPort = 4789

// DefaultVNI is the VXLAN network identifier unless export.Options.VNI says.
const DefaultVNI = 4242

// machineNodes says which nodes run on which machine of a split lab.
func (c *clab) machineOf(node string) string {
	switch node {
	case "wan", "cgw":
		return "customer"
	case "vgw":
		return "aws"
	}
	for _, h := range c.ls.Hosts {
		if h.Name == node {
			return h.Side
		}
	}
	return ""
}

// splitOptions checks Machine, VXLANRemote and VNI.
func splitOptions(o *export.Options) error {
	if o.Machine == "" {
		if o.VXLANRemote != "" || o.VNI != 0 {
			return fmt.Errorf("--vxlan-remote and --vni need --machine customer or --machine aws")
		}
		return nil
	}
	if o.Machine != "customer" && o.Machine != "aws" {
		return fmt.Errorf("--machine %q: customer (wan, cgw and the customer's hosts) or aws (vgw and the AWS hosts)", o.Machine)
	}
	a, err := netip.ParseAddr(strings.TrimSpace(o.VXLANRemote))
	if err != nil || !a.Is4() {
		return fmt.Errorf("--machine %s needs --vxlan-remote, the IPv4 address of the machine that runs the other part (got %q)", o.Machine, o.VXLANRemote)
	}
	o.VXLANRemote = a.String()
	if o.VNI == 0 {
		o.VNI = DefaultVNI
	}
	if o.VNI < 1 || o.VNI > 1<<24-1 {
		return fmt.Errorf("--vni %d: a VXLAN network identifier is 1-16777215", o.VNI)
	}
	return nil
}

// split keeps this machine's nodes and replaces the link between the WAN
// router (eth2) and the vgw (eth1) by a VXLAN link to the other machine.
func (c *clab) split() {
	m := c.opts.Machine
	if m == "" {
		return
	}
	for name := range c.topo.Topology.Nodes {
		if c.machineOf(name) != m {
			delete(c.topo.Topology.Nodes, name)
		}
	}
	var links []clabLink
	for _, l := range c.topo.Topology.Links {
		a, ai, _ := strings.Cut(l.Endpoints[0], ":")
		b, _, _ := strings.Cut(l.Endpoints[1], ":")
		switch {
		case a == "wan" && b == "vgw":
			ep := &clabEndpoint{Node: "wan", Interface: ai}
			if m == "aws" {
				_, bi, _ := strings.Cut(l.Endpoints[1], ":")
				ep = &clabEndpoint{Node: "vgw", Interface: bi}
			}
			links = append(links, clabLink{Type: "vxlan", Endpoint: ep, Remote: c.opts.VXLANRemote, VNI: c.opts.VNI, DstPort: VXLANPort, MTU: 1500})
		case c.machineOf(a) == m:
			links = append(links, l)
		}
	}
	c.topo.Topology.Links = links
}
