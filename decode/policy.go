package decode

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Policy is what one gateway configuration (a vgw.yaml or cgw.yaml, e.g.
// the ones a scenario run leaves) allows per tunnel, so that a failure can
// say "they offered ..., we allow ...". Only the proposal lists and
// addresses are read; pre-shared keys are not touched.
type Policy struct {
	Tunnels []PolicyTunnel
}

// PolicyTunnel is one tunnel of a gateway configuration.
type PolicyTunnel struct {
	Source  string // file and tunnel name
	Local   netip.Addr
	Remote  netip.Addr
	Phase1  string // allowed phase 1 proposals, as configured
	Phase2  string
	Default bool // no explicit list: the gateway's defaults apply
}

type policyFile struct {
	Tunnels []struct {
		Name          string    `yaml:"name"`
		LocalAddress  string    `yaml:"local_address"`
		RemoteAddress string    `yaml:"remote_address"`
		Phase1        phaseOpts `yaml:"phase1"`
		Phase2        phaseOpts `yaml:"phase2"`
	} `yaml:"tunnels"`
}

type phaseOpts struct {
	Proposals  []string `yaml:"proposals"`
	Encryption []string `yaml:"encryption"`
	Integrity  []string `yaml:"integrity"`
	DHGroups   []int    `yaml:"dh_groups"`
}

func (o phaseOpts) String() string {
	if len(o.Proposals) > 0 {
		return strings.Join(o.Proposals, " | ")
	}
	var parts []string
	if len(o.Encryption) > 0 {
		parts = append(parts, "encryption "+strings.Join(o.Encryption, "|"))
	}
	if len(o.Integrity) > 0 {
		parts = append(parts, "integrity "+strings.Join(o.Integrity, "|"))
	}
	if len(o.DHGroups) > 0 {
		parts = append(parts, "DH groups "+strings.Trim(strings.Join(strings.Fields(fmt.Sprint(o.DHGroups)), ","), "[]"))
	}
	return strings.Join(parts, ", ")
}

// LoadPolicyFile reads a gateway configuration's tunnels.
func (p *Policy) LoadPolicyFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var f policyFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("%s: not a gateway configuration: %v", path, err)
	}
	if len(f.Tunnels) == 0 {
		return fmt.Errorf("%s: no tunnels in the configuration", path)
	}
	for _, t := range f.Tunnels {
		pt := PolicyTunnel{Source: path + " tunnel " + t.Name, Phase1: t.Phase1.String(), Phase2: t.Phase2.String()}
		pt.Local, _ = netip.ParseAddr(t.LocalAddress)
		pt.Remote, _ = netip.ParseAddr(t.RemoteAddress)
		if pt.Phase1 == "" {
			pt.Phase1, pt.Default = "the gateway's default proposals (docs/config.md)", true
		}
		if pt.Phase2 == "" {
			pt.Phase2 = "the gateway's default proposals (docs/config.md)"
		}
		p.Tunnels = append(p.Tunnels, pt)
	}
	return nil
}

// forResponder finds the tunnel of a configuration whose local address is
// the given one (the side that refused).
func (p *Policy) forLocal(a netip.Addr) *PolicyTunnel {
	if p == nil {
		return nil
	}
	for i := range p.Tunnels {
		if p.Tunnels[i].Local == a {
			return &p.Tunnels[i]
		}
	}
	return nil
}
