package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vpnlab/vpnlab/ike/status"
)

// ikev2Scenario: the AWS side's tunnels IKEv2 only (and AWS initiating),
// the customer gateway IKEv2 by tunnel_options, per-tunnel options and its
// config.tunnels entry.
const ikev2Scenario = `name: v2
topology:
  customer:
    gateway:
      tunnel_options: {ike_versions: [ikev2]}
      config:
        tunnels:
          - {name: tunnel2, ike_versions: [ikev2, ikev1]}
  aws:
    gateway:
      tunnel_options:
        ike_versions: [ikev2]
        startup_action: start
  connections:
    - name: vpn-1
      tunnels:
        - {name: tunnel1, aws_options: {phase1: {encryption: [AES256-GCM-16], integrity: [SHA2-256], dh_groups: [20]}}}
        - {name: tunnel2}
steps:
  - wait: tunnel1 ike_version == ikev2
`

// TestScenarioIKEVersions: ike_versions reaches both gateways' generated
// configurations wherever tunnel fields are accepted, and the gateways'
// parser takes them (with AES-GCM in phase 1 and AWS's startup action
// start, both of which need IKEv2).
func TestScenarioIKEVersions(t *testing.T) {
	s, err := Parse([]byte(ikev2Scenario), "v2.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("generated configurations: %v", err)
	}
	want := map[string][]string{"cgw": {"[ikev2]", "[ikev2, ikev1]"}, "vgw": {"[ikev2]", "[ikev2]"}}
	for gw, versions := range want {
		data, _, err := s.plan.buildConfig(s.plan.gateways[gw], gatewayFiles{Config: "c", Control: "s", KeyLog: "k", Events: "e"})
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Tunnels []struct {
				Name        string   `yaml:"name"`
				IKEVersions []string `yaml:"ike_versions"`
			} `yaml:"tunnels"`
		}
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		for i, tn := range cfg.Tunnels {
			if got := "[" + strings.Join(tn.IKEVersions, ", ") + "]"; got != versions[i] {
				t.Errorf("%s %s: ike_versions %s, want %s", gw, tn.Name, got, versions[i])
			}
		}
	}
	if c := s.Steps[0].waits[0]; c.Field != "ike_version" || tunnelField(&status.Tunnel{IKEVersion: "ikev2"}, c.Field) != "ikev2" {
		t.Errorf("condition field: %+v", c)
	}
}

// TestScenarioIKEVersionErrors: bad ike_versions are reported at the
// scenario's line; rules that need other fields come from the gateway's
// parser on the generated configuration.
func TestScenarioIKEVersionErrors(t *testing.T) {
	for _, c := range []struct{ from, to, want string }{
		{"tunnel_options: {ike_versions: [ikev2]}", "tunnel_options: {ike_versions: [ikev2, ikev3]}",
			`x.yaml:5: topology.customer.gateway.tunnel_options.ike_versions: "ikev3" is not an IKE version (allowed: ikev1, ikev2)`},
		{"        ike_versions: [ikev2]\n", "        ike_versions: []\n", "x.yaml:12: topology.aws.gateway.tunnel_options.ike_versions: must not be empty"},
		{"- {name: tunnel2, ike_versions: [ikev2, ikev1]}", "- {name: tunnel2, ike_versions: [ikev2, IKEv2]}",
			"x.yaml:8: topology.customer.gateway.config.tunnels[].ike_versions: IKEv2 is listed twice"},
		{"- {name: tunnel2}", "- {name: tunnel2, customer_options: {ike_versions: {v: 2}}}",
			"x.yaml:18: connection vpn-1 tunnel tunnel2: customer_options.ike_versions: expected a list of IKE versions"},
	} {
		src := strings.Replace(ikev2Scenario, c.from, c.to, 1)
		if src == ikev2Scenario {
			t.Fatalf("%q not in the scenario", c.from)
		}
		if got := parseErr(t, src, Options{}); !strings.Contains(got, c.want) {
			t.Errorf("error\n%s\nlacks %q", got, c.want)
		}
	}
	// IKEv1 only on the AWS side with startup action start: the vgw's
	// parser refuses the generated configuration, saying why.
	s, err := Parse([]byte(strings.Replace(ikev2Scenario, "        ike_versions: [ikev2]\n", "        ike_versions: [ikev1]\n", 1)), "v2.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), "startup_action: start needs IKEv2: AWS initiates IKE (startup action start) with IKEv2 only") {
		t.Errorf("Check: %v", err)
	}
}

// TestForeignCustomerIKEVersion: a strongSwan customer gateway speaks
// IKEv1 where the AWS tunnel allows it (AWS's default both: the shipped
// strongswan-* scenarios are unchanged) and IKEv2 where the scenario's AWS
// side allows only ikev2.
func TestForeignCustomerIKEVersion(t *testing.T) {
	for _, c := range []struct{ aws, want string }{
		{"", "version = 1"},
		{"  aws:\n    gateway:\n      tunnel_options: {ike_versions: [ikev2]}\n", "version = 2"},
		{"  aws:\n    gateway:\n      tunnel_options: {ike_versions: [ikev2, ikev1]}\n", "version = 1"},
	} {
		dir := t.TempDir()
		src := strings.Replace(foreignMinimal, "steps:\n", c.aws+"steps:\n", 1)
		s, err := Parse([]byte(src), filepath.Join(dir, "x.yaml"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		vgw := filepath.Join(dir, "vgw.yaml")
		data, env, err := s.plan.buildConfig(s.plan.gateways["vgw"], gatewayFiles{Config: vgw, Control: "s", KeyLog: "k", Events: "e"})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vgw, data, 0o600); err != nil {
			t.Fatal(err)
		}
		work := filepath.Join(dir, "work")
		if err := s.plan.exportForeign(s.plan.gateways["cgw"], vgw, env, work, filepath.Join(dir, "out")); err != nil {
			t.Fatal(err)
		}
		for _, tn := range []string{"tunnel1", "tunnel2"} {
			b, err := os.ReadFile(filepath.Join(work, tn, "swanctl.conf"))
			if err != nil || !strings.Contains(string(b), "    "+c.want+"  #") {
				t.Errorf("aws %q: %s swanctl.conf lacks %q (%v)", c.aws, tn, c.want, err)
			}
		}
	}
}
