package scenarios

import (
	"time"

	"gopkg.in/yaml.v3"
)

// Scenario is one scenario file (docs/scenarios.md describes every field).
type Scenario struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Vars are the defaults of the ${name} variables; Profiles are named
	// sets of overrides (--profile aws), --set name=value overrides both.
	Vars     map[string]string            `yaml:"vars"`
	Profiles map[string]map[string]string `yaml:"profiles"`
	// Timeout bounds the whole run (default 120s).
	Timeout  Duration `yaml:"timeout"`
	Topology Topology `yaml:"topology"`
	Steps    []Step   `yaml:"steps"`

	// File is the path the scenario was loaded from; Effective the
	// variables after profile and --set.
	File      string            `yaml:"-"`
	Effective map[string]string `yaml:"-"`
	plan      *plan
}

// Topology is the lab: a customer side and an AWS side joined by a WAN.
type Topology struct {
	WAN         WAN          `yaml:"wan"`
	Customer    Side         `yaml:"customer"`
	AWS         Side         `yaml:"aws"`
	Connections []Connection `yaml:"connections"`
}

// WAN is the router between the customer gateway and the AWS endpoints.
type WAN struct {
	// NAT: "none" (default) or "masquerade" (the customer gateway is behind
	// a NAT whose public address is the WAN router's, 203.0.113.1).
	NAT string `yaml:"nat"`
	// Capture writes wan.pcap of the link to the AWS side (default true).
	Capture *bool `yaml:"capture"`
}

// Side is one side's gateway and the hosts behind it.
type Side struct {
	Gateway Gateway `yaml:"gateway"`
	Hosts   []Host  `yaml:"hosts"`
}

// Gateway is how one gateway process is run and configured.
type Gateway struct {
	// Kind is what runs on the customer side: "vpnlab" (default, a vpnlab
	// gateway process) or "strongswan" (a foreign customer gateway: one
	// strongSwan charon per tunnel, configured from `vpnlab export`, with
	// BIRD for BGP; docs/scenarios.md, Foreign customer gateway).
	Kind string `yaml:"kind"`
	// BGP is the foreign gateway's BGP speaker: "bird" (default), "frr" or
	// "none".
	BGP string `yaml:"bgp"`
	// SwanctlFiles replace the exported swanctl.conf of a tunnel (tunnel
	// name -> file, relative to the scenario file) for a strongswan kind.
	SwanctlFiles map[string]string `yaml:"swanctl_files"`
	// Binary is the gateway profile: "cgw" (customer side default) or
	// "vgw" (AWS side default; AWS's defaults and limits).
	Binary string `yaml:"binary"`
	// Outside is the customer gateway's WAN address (default 10.99.0.2/24);
	// the AWS side's outside addresses are its tunnels' aws_outside.
	Outside string `yaml:"outside"`
	// Config is an inline gateway configuration (docs/config.md) merged
	// over the one the runner generates; ConfigFile is the same from a
	// file (relative to the scenario file). TunnelOptions are merged into
	// every tunnel before the tunnel's own entry in Config.
	Config        yaml.Node `yaml:"config"`
	ConfigFile    string    `yaml:"config_file"`
	TunnelOptions yaml.Node `yaml:"tunnel_options"`
}

// Host is a machine behind a gateway, in its own namespace.
type Host struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"` // with prefix length, e.g. 10.10.1.10/24
}

// Connection is one VPN connection: two tunnels (AWS gives two; one is
// allowed for transport-mode labs).
type Connection struct {
	Name string `yaml:"name"`
	// PSK is the pre-shared key of both sides (default: random per run,
	// AWS-style); CustomerPSK overrides the customer side's (a mismatch).
	PSK         string       `yaml:"psk"`
	CustomerPSK string       `yaml:"customer_psk"`
	Tunnels     []TunnelSpec `yaml:"tunnels"`
}

// TunnelSpec places one tunnel.
type TunnelSpec struct {
	Name       string `yaml:"name"`
	AWSOutside string `yaml:"aws_outside"` // the AWS endpoint's address
	InsideCIDR string `yaml:"inside_cidr"` // a /30 in 169.254.0.0/16
}

// Step is one entry of the timeline: exactly one action plus the common
// fields name and timeout.
type Step struct {
	Name    string   `yaml:"name"`
	Timeout Duration `yaml:"timeout"`

	Start   string `yaml:"start"`   // gateway
	Stop    string `yaml:"stop"`    // gateway (SIGTERM)
	Kill    string `yaml:"kill"`    // gateway (SIGKILL)
	Restart string `yaml:"restart"` // gateway (SIGTERM, then start)

	Impair  *ImpairStep `yaml:"impair"`
	Restore string      `yaml:"restore"` // tunnel name or "all"
	WAN     *WANStep    `yaml:"wan"`     // WAN emulation (wan.go)

	Flow     *FlowStep  `yaml:"flow"`
	StopFlow StringList `yaml:"stop_flow"`

	IKEImpair *IKEImpairStep `yaml:"ike_impair"`
	Flood     *FloodStep     `yaml:"flood"`
	Rekey     *TunnelAction  `yaml:"rekey"`
	Initiate  *TunnelAction  `yaml:"initiate"`
	Terminate *TunnelAction  `yaml:"terminate"`
	BGP       *BGPStep       `yaml:"bgp"`

	Wait   StringList `yaml:"wait"`
	Sleep  Duration   `yaml:"sleep"`
	Assert StringList `yaml:"assert"`

	Line int `yaml:"-"`
	// parsed by validation
	waits, asserts []*Cond
}

// ImpairStep impairs one tunnel's outside path in the WAN router.
type ImpairStep struct {
	Tunnel  string  `yaml:"tunnel"`
	Fault   string  `yaml:"fault"`   // blackhole, loss, drop-ike, drop-esp, flush-nat
	Percent float64 `yaml:"percent"` // loss
}

// FlowStep starts a measured traffic flow.
type FlowStep struct {
	Name     string   `yaml:"name"`
	Proto    string   `yaml:"proto"` // icmp (default), udp, tcp
	From     string   `yaml:"from"`  // host or gateway name
	To       string   `yaml:"to"`
	Dst      string   `yaml:"dst"` // destination address (default: To's address)
	Port     int      `yaml:"port"`
	Rate     float64  `yaml:"rate"` // probes per second (default 20)
	Size     int      `yaml:"size"`
	Count    int      `yaml:"count"`
	Duration Duration `yaml:"duration"`
}

// IKEImpairStep makes a gateway misbehave at the protocol level.
type IKEImpairStep struct {
	Gateway string     `yaml:"gateway"`
	Spec    StringList `yaml:"spec"` // ike impairment specs, "none" clears
}

// FloodStep sends IKE main mode first messages with random cookies from
// the WAN router to a tunnel's AWS endpoint.
type FloodStep struct {
	Tunnel string  `yaml:"tunnel"`
	Count  int     `yaml:"count"`
	Rate   float64 `yaml:"rate"` // per second, 0 = as fast as possible
}

// TunnelAction names a gateway's tunnel (rekey also a phase).
type TunnelAction struct {
	Gateway string `yaml:"gateway"`
	Tunnel  string `yaml:"tunnel"`
	Phase   int    `yaml:"phase"`
}

// BGPStep changes what a gateway advertises, or its policy towards one
// tunnel's neighbor.
type BGPStep struct {
	Gateway   string     `yaml:"gateway"`
	Advertise StringList `yaml:"advertise"`
	Withdraw  StringList `yaml:"withdraw"`
	Tunnel    string     `yaml:"tunnel"`
	Prepend   *int       `yaml:"prepend"`
	MED       *int       `yaml:"med"`
}

// StringList is a YAML string or list of strings, each with its line.
type StringList struct {
	Items []string
	Lines []int
}

// UnmarshalYAML accepts a scalar or a sequence of scalars.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		l.Items, l.Lines = []string{n.Value}, []int{n.Line}
		return nil
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return &yaml.TypeError{Errors: []string{lineMsg(c.Line, "expected a string")}}
			}
			l.Items = append(l.Items, c.Value)
			l.Lines = append(l.Lines, c.Line)
		}
		return nil
	}
	return &yaml.TypeError{Errors: []string{lineMsg(n.Line, "expected a string or a list of strings")}}
}

// Duration is a time.Duration written like "4s" or "500ms".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{lineMsg(n.Line, "expected a duration like 4s or 500ms")}}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return &yaml.TypeError{Errors: []string{lineMsg(n.Line, "bad duration "+quote(n.Value)+" (write e.g. 4s, 500ms, 1m30s)")}}
	}
	*d = Duration(v)
	return nil
}

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML records the step's line and decodes its fields.
func (s *Step) UnmarshalYAML(n *yaml.Node) error {
	type plain Step
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*s = Step(p)
	s.Line = n.Line
	return nil
}
