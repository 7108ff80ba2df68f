package scenarios

import (
	"fmt"
	"net/netip"
)

// LabSpec is a scenario's resolved lab (the addressing buildLab puts into
// namespaces, and both gateways' generated configurations), for building
// the same lab elsewhere: vpnlab export --format containerlab.
type LabSpec struct {
	NAT bool // the WAN router masquerades the customer network
	// CustomerNet joins cgw and the WAN router: CustomerOutside is the
	// cgw's address on it, WANCustomer the router's. PublicNet joins the
	// router (WANPublic, also the NAT address) and the AWS endpoints.
	CustomerNet, CustomerOutside, PublicNet netip.Prefix
	WANCustomer, WANPublic                  netip.Addr
	Tunnels                                 []LabTunnel
	Hosts                                   []LabHost
	Gateways                                []LabGateway // cgw, then vgw
	// StartsGateways: the runner starts both gateways before the first
	// step (false when the first step starts one itself).
	StartsGateways bool
}

// LabTunnel is one tunnel's placement.
type LabTunnel struct {
	Name, Connection string
	AWSOutside       netip.Addr
	Inside           netip.Prefix
}

// LabHost is a host behind a gateway; GW is the gateway's address on the
// host's link.
type LabHost struct {
	Name, Side string // side: customer or aws
	Addr       netip.Prefix
	GW         netip.Addr
}

// LabGateway is one gateway process: its profile (cgw or vgw), its
// configuration as the runner generates it and the environment carrying
// its pre-shared keys (NAME=KEY).
type LabGateway struct {
	Name, Side, Binary string
	Config             []byte
	Env                []string
}

// GatewayPaths are where a gateway's configuration puts its control socket,
// key log and events, on the machine that runs it.
type GatewayPaths struct {
	Control, KeyLog, Events string
}

// LabSpec resolves the scenario's lab. paths gives each gateway's file
// locations; both configurations are generated exactly as a run does and
// checked with the gateways' own parser.
func (s *Scenario) LabSpec(paths func(gateway string) GatewayPaths) (*LabSpec, error) {
	p := s.plan
	ls := &LabSpec{
		NAT: p.nat, CustomerNet: custNet, CustomerOutside: p.cgwOutside, PublicNet: publicNet,
		WANCustomer: wanCustAddr, WANPublic: wanPublicAddr,
		StartsGateways: len(s.Steps) == 0 || s.Steps[0].Start == "",
	}
	for _, t := range p.tunnels {
		ls.Tunnels = append(ls.Tunnels, LabTunnel{Name: t.Name, Connection: t.Conn.Name, AWSOutside: t.AWSOutside, Inside: t.Inside})
	}
	for _, h := range p.hosts {
		ls.Hosts = append(ls.Hosts, LabHost{Name: h.Name, Side: h.Side, Addr: h.Addr, GW: h.GW})
	}
	for _, name := range gatewayNames {
		pg := p.gateways[name]
		gp := paths(name)
		f := gatewayFiles{Config: name + ".yaml", Control: gp.Control, KeyLog: gp.KeyLog, Events: gp.Events}
		data, env, err := p.buildConfig(pg, f)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: gateway %s: %v", s.File, pg.line, name, err)
		}
		if err := checkConfig(pg.Binary, data, env, name+".yaml (generated)"); err != nil {
			return nil, fmt.Errorf("%s:%d: the %s configuration the scenario makes is invalid:\n%v", s.File, pg.line, name, err)
		}
		ls.Gateways = append(ls.Gateways, LabGateway{Name: name, Side: pg.Side, Binary: pg.Binary, Config: data, Env: env})
	}
	return ls, nil
}
