package containerlab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/vpnlab/vpnlab/export"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/internal/netlab"
)

// TestContainerlabTopologyInNamespaces plays containerlab without Docker:
// every node of an exported topology becomes a network namespace, every
// link a veth pair with the topology's interface names, sysctls are set,
// binds are copied (the container paths /etc/vpnlab, /run/vpnlab and
// /var/log/vpnlab mapped to a directory per node, since namespaces share
// one file system), env-files become the environment, and then each node's
// exec commands run as they are, gateway.sh included, with the vpnlab
// binary built from this tree. Both gateways must bring every tunnel up and
// a host must reach the other side's host through them; then every command
// of steps.txt (docker exec CONTAINER ... run in that node's namespace)
// must succeed.
func TestContainerlabTopologyInNamespaces(t *testing.T) {
	if err := netlab.Usable(); err != nil {
		t.Skipf("netlab: %v", err)
	}
	for _, tool := range []string{"nft", "curl", "ping", "conntrack", "setsid", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (the image has it): %v", tool, err)
		}
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "vpnlab"), "../../cmd/vpnlab").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Scenarios whose steps.txt works without its waits (which are not
	// mapped): not ike-impair, whose phase 2 rekey comes while tunnel1 is
	// still being renegotiated after its impaired main mode, and which the
	// gateway then refuses (500), as it would if typed too early by hand.
	for _, name := range []string{"nat-t", "failover", "kill-restart", "bgp-preference", "rekey", "dpd-actions"} {
		t.Run(name, func(t *testing.T) { playLab(t, bin, "../../scenarios/"+name+".yaml", false) })
	}
	// A lab split over two machines (two namespaces standing for them, the
	// WAN router's link to the AWS endpoints a real VXLAN between them).
	for _, name := range []string{"nat-t", "kill-restart"} {
		t.Run(name+"/split", func(t *testing.T) { playLab(t, bin, "../../scenarios/"+name+".yaml", true) })
	}
}

// emuLab is an exported lab played in namespaces: one part, or the two
// machines' parts of a split lab.
type emuLab struct {
	t     *testing.T
	dir   map[string]string // node -> the directory of its part's files
	steps string            // steps.txt of the first part
	root  string            // per-node directories
	bin   string
	lab   *netlab.Lab
	parts []clabTopo
	topo  clabTopo // every part's nodes
	host  map[string]*netlab.NS
	ns    map[string]*netlab.NS
	env   map[string][]string
	cname map[string]string // container name -> node
}

// The two machines of a split lab: their underlay addresses.
var machineAddr = map[string]string{"customer": "192.0.2.1", "aws": "192.0.2.2"}

func playLab(t *testing.T, bin, scenario string, split bool) {
	e := &emuLab{t: t, dir: map[string]string{}, root: t.TempDir(), bin: bin, host: map[string]*netlab.NS{},
		ns: map[string]*netlab.NS{}, env: map[string][]string{}, cname: map[string]string{}}
	e.topo.Topology.Nodes = map[string]*clabNode{}
	machines := []string{""}
	if split {
		machines = []string{"customer", "aws"}
	}
	var keys []export.File // the customer part's key files, for the aws part (docs/multihost.md)
	for _, m := range machines {
		o := export.Options{IncludeSecrets: m != "aws", Machine: m}
		if m != "" {
			o.VXLANRemote = machineAddr[other(m)]
		}
		files, err := export.Export("containerlab", scenario, o)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		var part clabTopo
		if m == "aws" {
			files = append(files, keys...)
		}
		for _, f := range files {
			if strings.HasSuffix(f.Name, "/psk.env") {
				keys = append(keys, f)
			}
			p := filepath.Join(dir, filepath.FromSlash(f.Name))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(f.Name, ".clab.yml") {
				if err := yaml.Unmarshal(f.Data, &part); err != nil {
					t.Fatal(err)
				}
			}
		}
		if e.steps == "" {
			e.steps = filepath.Join(dir, "steps.txt")
		}
		e.topo.Name = part.Name
		for n, node := range part.Topology.Nodes {
			e.topo.Topology.Nodes[n], e.dir[n] = node, dir
		}
		e.parts = append(e.parts, part)
	}
	var err error
	if e.lab, err = netlab.New(t); err != nil {
		t.Fatal(err)
	}
	if split {
		e.underlay()
	}
	e.deploy()
	if split { // the VXLAN link carries the WAN: the router reaches the vgw
		if out, err := e.sh("wan", "ping -c 1 -W 2 203.0.113.10"); err != nil {
			t.Fatalf("wan cannot reach the vgw over the VXLAN link: %v\n%s", err, out)
		}
	}
	cgw := control.Dial("unix:" + e.path("cgw", clabControl))
	vgw := control.Dial("unix:" + e.path("vgw", clabControl))
	start := time.Now()
	waitUp(t, cgw, vgw, 30*time.Second, e.logs)
	t.Logf("every tunnel up on both gateways %v after the cgw's exec commands", time.Since(start).Round(time.Millisecond))
	e.pingAcross(20 * time.Second)
	t.Logf("host to host through the tunnels %v after", time.Since(start).Round(time.Millisecond))
	e.runSteps()
}

// underlay makes the two machines: a namespace each (containerlab's host
// namespace), joined by a link of MTU 1600 (VXLAN adds 50 bytes).
func (e *emuLab) underlay() {
	for _, m := range []string{"customer", "aws"} {
		ns, err := e.lab.AddNS("host" + m[:1])
		if err != nil {
			e.t.Fatal(err)
		}
		e.host[m] = ns
	}
	a, b := netip.MustParseAddr(machineAddr["customer"]), netip.MustParseAddr(machineAddr["aws"])
	if err := e.lab.Link(e.host["customer"], "under0", netip.PrefixFrom(a, 24), e.host["aws"], "under0", netip.PrefixFrom(b, 24)); err != nil {
		e.t.Fatal(err)
	}
	for _, ns := range e.host {
		e.run(ns, "ip", "link", "set", "under0", "mtu", "1600")
	}
}

func (e *emuLab) run(ns *netlab.NS, args ...string) {
	if _, err := ns.Run(context.Background(), args[0], args[1:]...); err != nil {
		e.t.Fatal(err)
	}
}

// vxlan does what containerlab's vxlan link does: the VXLAN interface is
// made in the machine's namespace and pushed into the node's.
func (e *emuLab) vxlan(machine string, l clabLink) {
	host, node := e.host[machine], e.ns[l.Endpoint.Node]
	tmp := fmt.Sprintf("vx%d", l.VNI)
	e.run(host, "ip", "link", "add", tmp, "type", "vxlan", "id", fmt.Sprint(l.VNI), "remote", l.Remote,
		"local", machineAddr[machine], "dstport", fmt.Sprint(l.DstPort), "dev", "under0")
	e.run(host, "ip", "link", "set", tmp, "netns", node.Name())
	e.run(node, "ip", "link", "set", tmp, "name", l.Endpoint.Interface)
	e.run(node, "ip", "link", "set", l.Endpoint.Interface, "mtu", fmt.Sprint(l.MTU), "up")
}

// path maps a container path of node to the node's directory.
func (e *emuLab) path(node, p string) string { return e.mapPaths(node, p) }

// mapPaths rewrites every container path in s for node.
func (e *emuLab) mapPaths(node, s string) string {
	for _, pre := range []string{clabEtc, "/run/vpnlab", clabLogDir} {
		s = strings.ReplaceAll(s, pre, filepath.Join(e.root, node, strings.TrimPrefix(pre, "/")))
	}
	return s
}

func (e *emuLab) deploy() {
	t := e.t
	for name := range e.topo.Topology.Nodes {
		ns, err := e.lab.AddNS(name)
		if err != nil {
			t.Fatal(err)
		}
		e.ns[name] = ns
		e.cname["clab-"+e.topo.Name+"-"+name] = name
	}
	machines := []string{"customer", "aws"}
	for i, part := range e.parts {
		for _, l := range part.Topology.Links {
			if l.Type == "vxlan" {
				e.vxlan(machines[i], l)
				continue
			}
			a, ai, _ := strings.Cut(l.Endpoints[0], ":")
			b, bi, _ := strings.Cut(l.Endpoints[1], ":")
			if err := e.lab.Link(e.ns[a], ai, netip0, e.ns[b], bi, netip0); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, n := range e.topo.Topology.Nodes {
		for k, v := range n.Sysctls {
			if _, err := e.ns[name].Run(context.Background(), "sysctl", "-qw", k+"="+v); err != nil {
				t.Fatal(err)
			}
		}
		for _, b := range n.Binds {
			parts := strings.Split(b, ":")
			data, err := os.ReadFile(filepath.Join(e.dir[name], parts[0]))
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(filepath.Join(e.dir[name], parts[0]))
			dst := e.path(name, parts[1])
			os.MkdirAll(filepath.Dir(dst), 0o755)
			if err := os.WriteFile(dst, []byte(e.mapPaths(name, string(data))), fi.Mode()); err != nil {
				t.Fatal(err)
			}
		}
		os.MkdirAll(e.path(name, "/run/vpnlab"), 0o755)
		e.env[name] = append(os.Environ(), "PATH="+e.bin+":"+os.Getenv("PATH"))
		for _, f := range n.EnvFiles {
			e.env[name] = append(e.env[name], readEnvFile(t, filepath.Join(e.dir[name], f))...)
		}
	}
	// containerlab runs a node's exec once its links are attached; here the
	// WAN and the hosts first, then vgw, then cgw.
	order := []string{"wan"}
	for name := range e.topo.Topology.Nodes {
		if name != "wan" && name != "cgw" && name != "vgw" {
			order = append(order, name)
		}
	}
	for _, name := range append(order, "vgw", "cgw") {
		for _, x := range e.topo.Topology.Nodes[name].Exec {
			if out, err := e.sh(name, x); err != nil {
				t.Fatalf("%s: exec %q: %v\n%s\n%s", name, x, err, out, e.logs())
			}
		}
	}
}

// sh runs a command line in node's namespace as docker exec would (the
// commands' own quoting, the node's environment).
func (e *emuLab) sh(node, line string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := e.ns[node].Command(ctx, "sh", "-c", e.mapPaths(node, line))
	cmd.Env = e.env[node]
	return cmd.CombinedOutput()
}

func (e *emuLab) logs() string {
	var b strings.Builder
	for _, gw := range []string{"cgw", "vgw"} {
		fmt.Fprintf(&b, "--- %s log (end):\n%s\n", gw, netlab.TailFile(e.path(gw, clabLogDir+"/gateway.log"), 15))
	}
	return b.String()
}

// waitUp waits until every tunnel of both gateways is UP.
func waitUp(t *testing.T, cgw, vgw *control.Client, within time.Duration, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		seen := ""
		up := true
		for _, c := range []*control.Client{cgw, vgw} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := c.Status(ctx)
			cancel()
			if err != nil || len(st.Tunnels) == 0 {
				up, seen = false, fmt.Sprint(seen, " ", err)
				continue
			}
			for _, tn := range st.Tunnels {
				seen += " " + tn.Name + ":" + tn.Status
				up = up && tn.Status == "UP"
			}
		}
		if up {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tunnels not up after %v:%s\n%s", within, seen, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var netip0 netip.Prefix

// pingAcross pings from the first customer host to the first AWS host
// until it answers.
func (e *emuLab) pingAcross(within time.Duration) {
	var from, to string
	for name, n := range e.topo.Topology.Nodes {
		switch n.Labels["vpnlab.role"] {
		case "customer-host":
			from = name
		case "aws-host":
			to = name
		}
	}
	var addr string
	for _, x := range e.topo.Topology.Nodes[to].Exec {
		if f := strings.Fields(x); len(f) > 3 && f[1] == "addr" && f[2] == "add" {
			addr, _, _ = strings.Cut(f[3], "/")
		}
	}
	deadline := time.Now().Add(within)
	for {
		out, err := e.sh(from, "ping -c 1 -W 1 "+addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s cannot ping %s (%s) after %v: %v\n%s\n%s", from, to, addr, within, err, out, e.logs())
		}
	}
}

// runSteps runs every command of steps.txt; docker exec CONTAINER runs in
// the container's node.
func (e *emuLab) runSteps() {
	data, err := os.ReadFile(e.steps)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		node := ""
		if rest, ok := strings.CutPrefix(line, "docker exec "); ok {
			c, cmd, _ := strings.Cut(rest, " ")
			if node = e.cname[c]; node == "" {
				e.t.Fatalf("steps.txt: %q: no such container", line)
			}
			line = cmd
		} else if !strings.HasPrefix(line, "sleep ") {
			e.t.Fatalf("steps.txt: %q is neither docker exec nor sleep", line)
		}
		var out []byte
		if node == "" {
			out, err = exec.Command("sh", "-c", line).CombinedOutput()
		} else {
			out, err = e.sh(node, line)
		}
		if err != nil {
			e.t.Fatalf("steps.txt: %q: %v\n%s\n%s", line, err, out, e.logs())
		}
		n++
	}
	e.t.Logf("%d commands of steps.txt succeeded", n)
}

func readEnvFile(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, l := range strings.Split(string(data), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		env = append(env, k+"="+strings.Trim(v, "'"))
	}
	return env
}
