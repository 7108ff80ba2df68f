package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const minimal = `name: t
topology:
  wan: {nat: masquerade}
steps:
  - wait: tunnel1 phase2 up
`

func parseErr(t *testing.T, src string, o Options) string {
	t.Helper()
	_, err := Parse([]byte(src), "x.yaml", o)
	if err == nil {
		t.Fatalf("no error for:\n%s", src)
	}
	return err.Error()
}

func TestParseMinimal(t *testing.T) {
	s, err := Parse([]byte(minimal), "x.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := s.plan
	if len(p.tunnels) != 2 || p.tunnels[0].Name != "tunnel1" || p.tunnels[1].AWSOutside.String() != "203.0.113.20" ||
		p.tunnels[1].Inside.String() != "169.254.11.0/30" {
		t.Fatalf("default tunnels: %+v %+v", p.tunnels[0], p.tunnels[1])
	}
	if !p.nat || p.cgwPublic.String() != "203.0.113.1" || len(p.hosts) != 2 || p.hosts[0].GW.String() != "10.10.1.1" {
		t.Fatalf("plan: nat %v public %v hosts %+v", p.nat, p.cgwPublic, p.hosts)
	}
	if len(s.Steps[0].waits) != 1 || s.Steps[0].waits[0].Field != "phase2" || s.Steps[0].Timeout.D().Seconds() != 30 {
		t.Fatalf("wait: %+v", s.Steps[0])
	}
	if err := s.Check(); err != nil {
		t.Fatalf("generated configurations: %v", err)
	}
}

// Every problem names the file, the line and what is allowed.
func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		name, src string
		o         Options
		want      []string
	}{
		{"unknown key", minimal + "  - sleep: 1s\n    colour: red\n", Options{}, []string{`x.yaml:7: steps[1]: unknown key "colour" (allowed: name, timeout, start,`}},
		{"unknown top key", "nmae: x\n" + minimal, Options{}, []string{`x.yaml:1: scenario: unknown key "nmae" (allowed: name, description, vars, profiles, timeout, topology, steps)`}},
		{"bad nat", strings.Replace(minimal, "masquerade", "cgnat", 1), Options{}, []string{`x.yaml:3: topology.wan.nat: "cgnat" is not allowed (allowed: none, masquerade)`}},
		{"missing tunnel", strings.Replace(minimal, "tunnel1 phase2", "tunnel9 phase2", 1), Options{}, []string{`x.yaml:5: steps[0] (wait): "tunnel9 phase2 up": no tunnel "tunnel9" (tunnels: tunnel1, tunnel2)`}},
		{"bad cidr", minimal + "  - flow: {name: f, from: onprem, to: vpc}\n", Options{}, nil},
		{"bad host cidr", strings.Replace(minimal, "  wan: {nat: masquerade}\n", "  wan: {nat: masquerade}\n  customer:\n    hosts: [{name: a, address: 10.10.1.300/24}]\n", 1), Options{},
			[]string{`x.yaml:5: topology.customer.hosts[0] (a): address "10.10.1.300/24" must be an IPv4 host address`}},
		{"ah through nat", strings.Replace(minimal, "  wan: {nat: masquerade}\n", "  wan: {nat: masquerade}\n  customer:\n    gateway:\n      tunnel_options:\n        phase2: {mode: transport, proposals: [ah-sha256]}\n", 1), Options{},
			[]string{"x.yaml:7: AH cannot cross the WAN's NAT (masquerade)"}},
		{"unknown flow", minimal + "  - stop_flow: nope\n", Options{}, []string{`x.yaml:6: steps[1] (stop_flow): no flow "nope" started before this step`}},
		{"since an unknown step", minimal + "  - assert: 'cgw event route since \"up\" count == 1'\n", Options{}, []string{`x.yaml:6: steps[1] (assert): "cgw event route since \"up\" count == 1": no step named "up" at or before this step (named so far: none)`}},
		{"two actions", minimal + "  - sleep: 1s\n    restore: all\n", Options{}, []string{"x.yaml:6: steps[1]: a step has exactly one action, this one has 2 (restore, sleep)"}},
		{"bad condition", minimal + "  - assert: flow x lost < many\n", Options{}, []string{`x.yaml:6: steps[1] (assert): < needs a number or a duration, not "many"`}},
		{"unknown variable", minimal + "  - sleep: ${nap}\n", Options{}, []string{"x.yaml:6: unknown variable ${nap} (declared in vars: none)"}},
		{"unknown profile", minimal, Options{Profile: "aws"}, []string{"x.yaml: --profile aws: the scenario has no such profile (it has: none)"}},
		{"unknown set", "vars: {a: 1s}\n" + minimal, Options{Set: map[string]string{"b": "2"}}, []string{"x.yaml: --set b: no such variable (declared: a)"}},
		{"bad duration", minimal + "  - sleep: soon\n", Options{}, []string{`x.yaml:6: bad duration "soon"`}},
		{"flush without nat", strings.Replace(minimal, "masquerade", "none", 1) + "  - impair: {tunnel: tunnel1, fault: flush-nat}\n", Options{}, []string{"flush-nat needs topology.wan.nat: masquerade"}},
		{"loss percent", minimal + "  - impair: {tunnel: tunnel2, fault: loss}\n", Options{}, []string{"x.yaml:6: steps[1] (impair): loss needs percent in (0, 100]"}},
		{"bad ike impairment", minimal + "  - ike_impair: {gateway: cgw, spec: drop:main:x}\n", Options{}, []string{"x.yaml:6: steps[1] (ike_impair): "}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.want == nil {
				if _, err := Parse([]byte(c.src), "x.yaml", c.o); err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			got := parseErr(t, c.src, c.o)
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", got, w)
				}
			}
		})
	}
}

func TestVariablesAndProfiles(t *testing.T) {
	src := "vars: {nap: 1s, gap: 6s}\nprofiles: {aws: {nap: 30s}}\n" + minimal + "  - sleep: ${nap}\n  - assert: tunnel1 retransmits < ${gap}\n"
	for _, c := range []struct {
		o    Options
		want string
	}{{Options{}, "1s"}, {Options{Profile: "aws"}, "30s"}, {Options{Profile: "aws", Set: map[string]string{"nap": "2s"}}, "2s"}} {
		s, err := Parse([]byte(src), "x.yaml", c.o)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Steps[1].Sleep.D().String(); got != c.want {
			t.Errorf("%+v: sleep %s, want %s", c.o, got, c.want)
		}
	}
	if got := parseErr(t, "vars: {a: 1}\nprofiles: {fast: {b: 2}}\n"+minimal, Options{}); !strings.Contains(got, `x.yaml:2: profiles.fast: "b" is not a variable declared in vars (declared: a)`) {
		t.Error(got)
	}
}

func TestConditions(t *testing.T) {
	for _, c := range []struct {
		text                     string
		kind, gw, field, op, val string
	}{
		{"tunnel1 phase2 up", "tunnel", "", "phase2", "==", "Established"},
		{"cgw tunnel2 up", "tunnel", "cgw", "status", "==", "UP"},
		{"vgw tunnel1 bgp Established", "tunnel", "vgw", "bgp", "==", "Established"},
		{"tunnel1 ipsec_proposal == esp-aes128gcm16-modp2048", "tunnel", "", "ipsec_proposal", "==", "esp-aes128gcm16-modp2048"},
		{"flow ping outage < 6s", "flow", "", "max_gap", "<", "6s"},
		{`cgw log contains "AUTHENTICATION-FAILED"`, "log", "cgw", "", "contains", "AUTHENTICATION-FAILED"},
		{"vgw counter half_open_refused > 0", "counter", "vgw", "", ">", "0"},
		{"dpd timeout tunnel1", "event", "", "", ">=", "1"},
		{"cgw event notify-received tunnel1 notify=INVALID-ID-INFORMATION count == 1", "event", "cgw", "", "==", "1"},
	} {
		cd, err := parseCond(c.text, 1, true)
		if err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		if cd.Kind != c.kind || cd.Gateway != c.gw || cd.Field != c.field || cd.Op != c.op || cd.Value != c.val {
			t.Errorf("%s: got %+v", c.text, cd)
		}
	}
	r, err := parseCond("vgw route 10.10.0.0/16 via tunnel2,tunnel1", 1, false)
	if err != nil || r.Kind != "route" || strings.Join(r.Via, " ") != "tunnel2 tunnel1" || r.Prefix.String() != "10.10.0.0/16" {
		t.Fatalf("route: %+v %v", r, err)
	}
	for _, bad := range []string{"tunnel1 phase3 up", "route 10.0.0.1/8 via tunnel1", "flow x jitter < 1", "counter x > 1", "cgw", "flow x done"} {
		if _, err := parseCond(bad, 1, false); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestCompare(t *testing.T) {
	for _, c := range []struct {
		seen, op, want string
		ok             bool
	}{
		{"4.036s", "<", "6s", true}, {"7s", "<", "6s", false}, {"0", "==", "0", true}, {"3", ">=", "1", true},
		{"Established", "==", "established", true}, {"UP", "!=", "DOWN", true}, {"1.5", "<=", "2%", true},
		{"no proposal chosen", "contains", "PROPOSAL", true}, {"x", "!contains", "x", false}, {"(no SA)", "<", "3", false},
	} {
		if got := compare(c.seen, c.op, c.want); got != c.ok {
			t.Errorf("compare(%q %s %q) = %v", c.seen, c.op, c.want, got)
		}
	}
}

// Every shipped scenario (and every profile of it) is valid and makes
// valid gateway configurations.
func TestShippedScenariosValidate(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	if len(files) == 0 {
		t.Fatal("no scenarios shipped")
	}
	for _, f := range files {
		s, err := Load(f, Options{})
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if err := s.Check(); err != nil {
			t.Errorf("%v", err)
		}
		for p := range s.Profiles {
			if _, err := Load(f, Options{Profile: p}); err != nil {
				t.Errorf("profile %s: %v", p, err)
			}
		}
	}
}

// Findings of the documentation review, each a validation now.
func TestParseMoreErrors(t *testing.T) {
	hosts := strings.Replace(minimal, "  wan: {nat: masquerade}\n", "  wan: {nat: masquerade}\n  customer:\n    hosts: [{name: h1, address: 10.10.1.10/24}, {name: long-host-name, address: 10.10.2.10/24}]\n", 1)
	s, err := Parse([]byte(hosts), "x.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r0, r1 := s.plan.hosts[0].role, s.plan.hosts[1].role; r0 != "h1" || r1 != "h2" {
		t.Errorf("roles %q %q, want h1 h2", r0, r1)
	}
	for _, c := range []struct{ src, want string }{
		{minimal + "  - flow: {name: f, from: onprem, to: vpc, size: 10}\n", "size 24-1400 bytes"},
		{minimal + "  - flow: {name: f, from: onprem, to: vpc, dst: \"::1\"}\n", `dst "::1" is not an IPv4 address`},
		{minimal + "  - ike_impair: {gateway: cgw, spec: tunnel7/drop:main:3}\n", `no tunnel "tunnel7"`},
		{strings.Replace(minimal, "  wan: {nat: masquerade}\n", "  wan: {nat: masquerade}\n  connections: [{name: vpn-1}, {name: VPN_1}]\n", 1), `connections "vpn-1" and "VPN_1": names must differ`},
	} {
		if got := parseErr(t, c.src, Options{}); !strings.Contains(got, c.want) {
			t.Errorf("error\n%s\nlacks %q", got, c.want)
		}
	}
	// No bgp section and no static mode: BGP still advertises the hosts.
	s, err = Parse([]byte(minimal), "x.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := s.plan.buildConfig(s.plan.gateways["cgw"], gatewayFiles{Config: "c", Control: "s", KeyLog: "k", Events: "e"})
	if err != nil || !strings.Contains(string(data), "advertise:\n        - 10.10.1.0/24") {
		t.Errorf("cgw config without a bgp section (%v):\n%s", err, data)
	}
}

// The gateways' configuration warnings reach vpnlab run --check (they were
// only in the gateway's log), and transport mode gets no bgp section the
// gateway would call ignored.
func TestCheckReportsGatewayWarnings(t *testing.T) {
	src := "topology:\n  connections:\n    - name: one\n      tunnels: [{name: tunnel1}]\nsteps:\n  - wait: tunnel1 phase2 up\n"
	s, err := Parse([]byte(src), "w.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range s.Warnings {
		found = found || strings.Contains(w, `connection "one" has 1 tunnel(s): an AWS VPN connection has exactly two`) && strings.HasPrefix(w, "w.yaml:")
	}
	if !found {
		t.Errorf("warnings %q", s.Warnings)
	}
	b, err := os.ReadFile("ah-transport.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err = Parse(b, "ah-transport.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil || len(s.Warnings) != 0 {
		t.Errorf("ah-transport: %v, warnings %q", err, s.Warnings)
	}
}

// Every shipped scenario whose outcome depends on DPD or BGP timers (it
// sets them) has an aws profile with AWS's values, and checks with it.
func TestTimerScenariosHaveAWSProfile(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		if !strings.Contains(src, "dpd:") && !strings.Contains(src, "hold_time") && !strings.Contains(src, "nat_keepalive") {
			continue
		}
		n++
		s, err := Load(f, Options{Profile: "aws"})
		if err != nil {
			t.Errorf("%s: sets DPD/BGP/NAT timers but has no usable aws profile: %v", f, err)
			continue
		}
		if _, ok := s.Profiles["aws"]; !ok {
			t.Errorf("%s: no aws profile", f)
		}
	}
	if n < 10 {
		t.Errorf("only %d scenarios set timers; the glob or the test is wrong", n)
	}
}
