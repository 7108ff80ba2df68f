package scenarios

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Kinds of customer gateway and the BGP speakers of a foreign one.
var (
	gatewayKinds = []string{"vpnlab", "strongswan"}
	foreignBGPs  = []string{"bird", "frr", "none"}
)

// foreignFields are the tunnel fields a strongSwan customer gateway reports
// (from swanctl --list-sas and birdc show protocols; foreign.go).
var foreignFields = map[string]bool{
	"status": true, "phase1": true, "phase2": true, "proposal": true, "ipsec_proposal": true,
	"protocol": true, "mode": true, "udp_encap": true, "nat": true, "role": true, "bgp": true,
	"packets_in": true, "packets_out": true, "sas": true, "data_in": true, "data_out": true,
}

// validateKind checks topology.customer.gateway.kind and what goes with it;
// it fills pg's foreign fields. lineOf gives the line of a key path.
func validateKind(s *Scenario, g *Gateway, pg *planGateway, side string, lineOf func(...string) int, el *errList) {
	at := func(k string) int { return lineOf("topology", side, "gateway", k) }
	if side == "aws" {
		if g.Kind != "" && g.Kind != "vpnlab" {
			el.add(at("kind"), "topology.aws.gateway.kind: %q is not allowed: the AWS side is always a vpnlab gateway (kind vpnlab)", g.Kind)
		}
		if g.BGP != "" || g.SwanctlFiles != nil {
			el.add(at("kind"), "topology.aws.gateway: bgp and swanctl_files belong to a strongswan customer gateway")
		}
		return
	}
	switch g.Kind {
	case "", "vpnlab":
		if g.BGP != "" || g.SwanctlFiles != nil {
			el.add(at("bgp"), "topology.customer.gateway: bgp and swanctl_files need kind: strongswan")
		}
		return
	case "strongswan":
	default:
		el.add(at("kind"), "topology.customer.gateway.kind: %q is not allowed (allowed: %s)", g.Kind, strings.Join(gatewayKinds, ", "))
		return
	}
	pg.kind, pg.kindLine, pg.bgp = "strongswan", at("kind"), "bird"
	switch g.BGP {
	case "", "bird":
	case "none", "frr":
		pg.bgp = g.BGP
	default:
		el.add(at("bgp"), "topology.customer.gateway.bgp: %q is not allowed (allowed: %s)", g.BGP, strings.Join(foreignBGPs, ", "))
	}
	if g.Binary != "" {
		el.add(at("binary"), "topology.customer.gateway.binary: a strongswan customer gateway runs charon, not a vpnlab profile (leave binary out)")
	}
	if g.Config.Kind != 0 || g.ConfigFile != "" || g.TunnelOptions.Kind != 0 {
		el.add(at("kind"), "topology.customer.gateway: config, config_file and tunnel_options configure a vpnlab gateway; a strongswan one is configured by vpnlab export from the vgw's configuration (change the aws side's config, or give swanctl_files)")
	}
	pg.swanctl = map[string]string{}
	for tn, f := range g.SwanctlFiles {
		path := f
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(s.File), f)
		}
		if _, err := os.Stat(path); err != nil {
			el.add(at("swanctl_files"), "topology.customer.gateway.swanctl_files.%s: %v", tn, err)
		}
		pg.swanctl[tn] = path
	}
}

// validateForeignSteps refuses what cannot apply to a foreign customer
// gateway, with the step's line and why.
func validateForeignSteps(s *Scenario, p *plan, el *errList) {
	pg := p.gateways["cgw"]
	if pg == nil || pg.kind != "strongswan" {
		return
	}
	for tn := range pg.swanctl {
		if p.tunnel(tn) == nil {
			el.add(pg.kindLine, "topology.customer.gateway.swanctl_files: no tunnel %q (tunnels: %s)", tn, strings.Join(p.tunnelNames(), ", "))
		}
	}
	why := fmt.Sprintf("the customer gateway is strongSwan (kind strongswan, line %d)", pg.kindLine)
	for i := range s.Steps {
		st := &s.Steps[i]
		what := fmt.Sprintf("steps[%d]", i)
		switch {
		case st.IKEImpair != nil && st.IKEImpair.Gateway == "cgw":
			el.add(st.Line, "%s (ike_impair): IKE impairments act inside a vpnlab gateway; %s, which has none (impair the vgw, or the WAN with impair)", what, why)
		case st.BGP != nil && st.BGP.Gateway == "cgw":
			el.add(st.Line, "%s (bgp): changes go through a vpnlab gateway's control API; %s with BIRD configured by vpnlab export (change the vgw's side, or the topology)", what, why)
		}
		for _, c := range append(append([]*Cond(nil), st.waits...), st.asserts...) {
			foreignCond(c, pg, why, what, el)
		}
	}
}

// foreignCond refuses conditions a strongSwan customer gateway cannot
// answer.
func foreignCond(c *Cond, pg *planGateway, why, what string, el *errList) {
	cgw := c.Gateway == "cgw" || c.Gateway == ""
	switch {
	case c.Kind == "tunnel" && cgw && !foreignFields[c.Field]:
		hint := ""
		if c.Gateway == "" {
			hint = " (a condition without a gateway asks both; write vgw " + c.Tunnel + " " + c.Field + " ...)"
		}
		el.add(c.Line, "%s: %q: field %s is not reported by strongSwan; %s%s; its fields: %s", what, c.Text, c.Field, why, hint, keys(foreignFields))
	case c.Kind == "tunnel" && cgw && c.Field == "bgp" && pg.bgp == "none":
		el.add(c.Line, "%s: %q: the strongSwan customer gateway runs no BGP (bgp: none)", what, c.Text)
	case c.Kind == "counter" && c.Gateway == "cgw":
		el.add(c.Line, "%s: %q: engine counters belong to a vpnlab gateway; %s", what, c.Text, why)
	}
}
