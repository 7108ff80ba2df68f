package containerlab

import (
	"bytes"
	"encoding/json"
	"github.com/vpnlab/vpnlab/export"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// clabSchema compiles the cited copy of containerlab's topology schema
// (testdata/README.md).
func clabSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/clab.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	const id = "https://containerlab.dev/clab.schema.json"
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlToJSON decodes a YAML document into the JSON values the validator
// takes.
func yamlToJSON(t *testing.T, y []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func fileByName(files []export.File, name string) *export.File {
	for i := range files {
		if files[i].Name == name {
			return &files[i]
		}
	}
	return nil
}

// TestContainerlabEveryScenario exports every shipped scenario and checks
// the topology against containerlab's schema, and what the schema cannot
// say: every bind source and env file is among the exported files, every
// link joins two nodes of the topology, no interface is used twice.
func TestContainerlabEveryScenario(t *testing.T) {
	schema := clabSchema(t)
	paths, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil || len(paths) < 10 {
		t.Fatalf("scenarios: %v %v", paths, err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			name := "vpnlab-" + strings.TrimSuffix(filepath.Base(p), ".yaml") + ".clab.yml"
			nodes := map[string][]string{}
			for _, m := range []string{"", "customer", "aws"} {
				o := export.Options{IncludeSecrets: true, Machine: m}
				if m != "" {
					o.VXLANRemote = "192.0.2.7"
				}
				files, err := export.Export("containerlab", p, o)
				if err != nil {
					t.Fatal(err)
				}
				topo := fileByName(files, name)
				if topo == nil {
					t.Fatalf("no %s among %d files", name, len(files))
				}
				if err := schema.Validate(yamlToJSON(t, topo.Data)); err != nil {
					t.Fatalf("machine %q: %s does not validate against containerlab's schema:\n%v\n%s", m, name, err, topo.Data)
				}
				nodes[m] = checkTopology(t, m, topo.Data, files)
			}
			// The two machines' parts are the whole lab.
			both := append(nodes["customer"], nodes["aws"]...)
			slices.Sort(both)
			if !slices.Equal(both, nodes[""]) {
				t.Errorf("customer + aws machines: nodes %v, want %v", both, nodes[""])
			}
		})
	}
}

// checkTopology checks a topology (machine: "" whole, or a split part) and
// returns its node names, sorted.
func checkTopology(t *testing.T, machine string, data []byte, files []export.File) []string {
	t.Helper()
	var topo clabTopo
	if err := yaml.Unmarshal(data, &topo); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"": {"cgw", "wan", "vgw"}, "customer": {"cgw", "wan"}, "aws": {"vgw"}}[machine]
	for _, role := range want {
		if topo.Topology.Nodes[role] == nil {
			t.Errorf("machine %q: no node %s", machine, role)
		}
	}
	for name, n := range topo.Topology.Nodes {
		for _, b := range n.Binds {
			src, _, _ := strings.Cut(b, ":")
			if fileByName(files, src) == nil {
				t.Errorf("node %s binds %s, which is not exported", name, src)
			}
		}
		for _, e := range n.EnvFiles {
			if fileByName(files, e) == nil {
				t.Errorf("node %s reads env file %s, which is not exported", name, e)
			}
		}
		if len(n.Exec) == 0 {
			t.Errorf("node %s has no exec commands", name)
		}
	}
	used := map[string]bool{}
	vxlans := 0
	for _, l := range topo.Topology.Links {
		eps := l.Endpoints
		if l.Type == "vxlan" {
			vxlans++
			eps = []string{l.Endpoint.Node + ":" + l.Endpoint.Interface}
			if l.Remote != "192.0.2.7" || l.VNI != DefaultVNI || l.DstPort != VXLANPort {
				t.Errorf("vxlan link %+v", l)
			}
		} else if len(l.Endpoints) != 2 {
			t.Fatalf("link %v: want two endpoints", l)
		}
		for _, e := range eps {
			node, _, _ := strings.Cut(e, ":")
			if topo.Topology.Nodes[node] == nil {
				t.Errorf("link endpoint %s: no such node", e)
			}
			if used[e] {
				t.Errorf("interface %s used by two links", e)
			}
			used[e] = true
		}
	}
	// Every interface an exec command configures is a link's.
	ifRE := regexp.MustCompile(`dev (eth\d+)`)
	for name, n := range topo.Topology.Nodes {
		for _, x := range n.Exec {
			for _, m := range ifRE.FindAllStringSubmatch(x, -1) {
				if !used[name+":"+m[1]] {
					t.Errorf("node %s: %q uses %s, which no link attaches", name, x, m[1])
				}
			}
		}
	}
	if want := map[bool]int{true: 0, false: 1}[machine == ""]; vxlans != want {
		t.Errorf("machine %q: %d vxlan links, want %d", machine, vxlans, want)
	}
	var names []string
	for n := range topo.Topology.Nodes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// TestContainerlabSchemaRejects shows that the validator does reject what
// containerlab's schema forbids, so that the test above can fail.
func TestContainerlabSchemaRejects(t *testing.T) {
	schema := clabSchema(t)
	files, err := export.Export("containerlab", "../../scenarios/basic.yaml", export.Options{IncludeSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	good := fileByName(files, "vpnlab-basic.clab.yml").Data
	for _, c := range []struct{ what, from, to string }{
		{"an unknown node key", "    kind: linux\n", "    kind: linux\n            mounts: [x]\n"},
		{"an unknown kind", "kind: linux", "kind: not-a-kind"},
		{"a bad lab name", "name: vpnlab-basic", "name: -bad name"},
	} {
		bad := strings.Replace(string(good), c.from, c.to, 1)
		if bad == string(good) {
			t.Fatalf("%s: the mutation did not apply", c.what)
		}
		if err := schema.Validate(yamlToJSON(t, []byte(bad))); err == nil {
			t.Errorf("%s: validates, want rejected", c.what)
		}
	}
}

// TestContainerlabDockerfile parses the exported Dockerfile with BuildKit's
// own parser (the one docker build uses) into its instructions and checks
// the stages: a golang builder of go.mod's Go version, then debian:12-slim
// with iproute2 and nftables, and that what it copies from the source tree
// exists.
func TestContainerlabDockerfile(t *testing.T) {
	files, err := export.Export("containerlab", "../../scenarios/basic.yaml", export.Options{})
	if err != nil {
		t.Fatal(err)
	}
	df := fileByName(files, "Dockerfile")
	if df == nil {
		t.Fatal("no Dockerfile")
	}
	res, err := parser.Parse(bytes.NewReader(df.Data))
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(res.AST)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != 2 {
		t.Fatalf("%d stages, want 2 (builder, runtime)", len(stages))
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVer == nil {
		t.Fatal("no go directive in go.mod")
	}
	if want := "golang:" + string(goVer[1]) + "-"; !strings.HasPrefix(stages[0].BaseName, want) || stages[0].Name != "build" {
		t.Errorf("builder stage FROM %s AS %s, want %s... AS build", stages[0].BaseName, stages[0].Name, want)
	}
	if stages[1].BaseName != "debian:12-slim" {
		t.Errorf("runtime stage FROM %s, want debian:12-slim", stages[1].BaseName)
	}
	var run strings.Builder
	for _, cmd := range stages[1].Commands {
		if r, ok := cmd.(*instructions.RunCommand); ok {
			run.WriteString(strings.Join(r.CmdLine, " "))
		}
		if c, ok := cmd.(*instructions.CopyCommand); ok && c.From != "build" {
			t.Errorf("runtime stage copies %v from %q, want from the build stage", c.SourcePaths, c.From)
		}
	}
	for _, pkg := range []string{"iproute2", "nftables", "conntrack", "curl", "tini"} {
		if !strings.Contains(run.String(), " "+pkg) {
			t.Errorf("runtime stage does not install %s: %s", pkg, run.String())
		}
	}
	for _, cmd := range stages[0].Commands {
		switch c := cmd.(type) {
		case *instructions.CopyCommand:
			for _, src := range c.SourcePaths {
				if _, err := os.Stat(filepath.Join("..", "..", src)); err != nil {
					t.Errorf("COPY %s: not in the source tree: %v", src, err)
				}
			}
		case *instructions.RunCommand:
			for _, f := range strings.Fields(strings.Join(c.CmdLine, " ")) {
				if strings.HasPrefix(f, "./cmd/") {
					if _, err := os.Stat(filepath.Join("..", "..", f, "main.go")); err != nil {
						t.Errorf("builds %s: %v", f, err)
					}
				}
			}
		}
	}
	// The parser does reject a broken file (an instruction without its
	// arguments), so the checks above can fail.
	if res, err := parser.Parse(strings.NewReader("FROM debian:12-slim\nCOPY\n")); err == nil {
		if _, _, err := instructions.Parse(res.AST); err == nil {
			t.Error("a COPY without arguments parses")
		}
	}
}

// TestContainerlabSecrets: keys go into the files only with
// IncludeSecrets, then into each gateway's psk.env (0600), each side its
// own (psk-mismatch gives the customer another key on tunnel1: a per-tunnel
// key with its own variable).
func TestContainerlabSecrets(t *testing.T) {
	const aws, cust = "correct.horse.battery.staple", "wrong.horse.battery.staple"
	files, err := export.Export("containerlab", "../../scenarios/psk-mismatch.yaml", export.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if bytes.Contains(f.Data, []byte("horse")) {
			t.Errorf("%s holds a key without IncludeSecrets", f.Name)
		}
	}
	if f := fileByName(files, "cgw/psk.env.example"); f == nil || !bytes.Contains(f.Data, []byte("\nVPNLAB_PSK_CUSTOMER_VPN_1=\n")) {
		t.Errorf("cgw/psk.env.example: %v", f)
	}
	files, err = export.Export("containerlab", "../../scenarios/psk-mismatch.yaml", export.Options{IncludeSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	for gw, lines := range map[string][]string{
		"cgw": {"VPNLAB_PSK_CUSTOMER_VPN_1__TUNNEL1='" + cust + "'", "VPNLAB_PSK_CUSTOMER_VPN_1='" + aws + "'"},
		"vgw": {"VPNLAB_PSK_AWS_VPN_1='" + aws + "'"},
	} {
		f := fileByName(files, gw+"/psk.env")
		for _, line := range lines {
			if f == nil || f.Mode != 0o600 || !bytes.Contains(f.Data, []byte("\n"+line+"\n")) {
				t.Errorf("%s/psk.env: want mode 0600 with %s; got %+v", gw, line, f)
			}
		}
	}
	for _, f := range files {
		if bytes.Contains(f.Data, []byte("horse")) && !strings.HasSuffix(f.Name, "/psk.env") {
			t.Errorf("%s holds a key", f.Name)
		}
	}
}

// TestContainerlabSplitErrors: the split's options are checked.
func TestContainerlabSplitErrors(t *testing.T) {
	for _, c := range []struct {
		o    export.Options
		want string
	}{
		{export.Options{Machine: "edge", VXLANRemote: "192.0.2.1"}, `--machine "edge": customer`},
		{export.Options{Machine: "aws"}, "--machine aws needs --vxlan-remote"},
		{export.Options{Machine: "aws", VXLANRemote: "2001:db8::1"}, "needs --vxlan-remote, the IPv4 address"},
		{export.Options{Machine: "aws", VXLANRemote: "192.0.2.1", VNI: 1 << 24}, "--vni 16777216"},
		{export.Options{VXLANRemote: "192.0.2.1"}, "need --machine"},
	} {
		_, err := export.Export("containerlab", "../../scenarios/basic.yaml", c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	files, err := export.Export("containerlab", "../../scenarios/failover.yaml", export.Options{Machine: "customer", VXLANRemote: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if fileByName(files, "vgw/vgw.yaml") != nil || fileByName(files, "cgw/cgw.yaml") == nil || fileByName(files, "wan/wan.nft") == nil {
		t.Error("the customer machine's files: want cgw's and wan's, not vgw's")
	}
	// With the keys, the customer part also writes the vgw's key file for
	// the aws machine (random keys differ between exports).
	files, err = export.Export("containerlab", "../../scenarios/failover.yaml", export.Options{Machine: "customer", VXLANRemote: "192.0.2.1", IncludeSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	if f := fileByName(files, "vgw/psk.env"); f == nil || f.Mode != 0o600 || !bytes.Contains(f.Data, []byte("vgw runs on the aws machine: copy this file to vgw/psk.env")) {
		t.Errorf("vgw/psk.env for the aws machine: %+v", f)
	}
	files, err = export.Export("containerlab", "../../scenarios/kill-restart.yaml", export.Options{Machine: "aws", VXLANRemote: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	steps := string(fileByName(files, "steps.txt").Data)
	if !strings.Contains(steps, "#   on the customer machine:\ndocker exec clab-vpnlab-kill-restart-cgw /etc/vpnlab/gateway.sh kill\n") {
		t.Errorf("steps.txt does not say that the kill runs on the customer machine:\n%s", steps)
	}
}

// TestRegistered: importing this package adds the containerlab format to
// package export, reading scenario files.
func TestRegistered(t *testing.T) {
	if got := strings.Join(export.Formats(), " "); got != "strongswan libreswan bird frr vpnlab generic containerlab" {
		t.Errorf("export.Formats() = %q", got)
	}
	if got := export.Input("containerlab"); got != export.InputScenario {
		t.Errorf("export.Input(containerlab) = %q, want %q", got, export.InputScenario)
	}
}
