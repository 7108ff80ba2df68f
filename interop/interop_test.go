package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// Timeouts: the whole negotiation takes ~50 ms between two strongSwans here;
// 10 s leaves room for two retransmissions without letting a broken gateway
// hang the test.
const (
	upTimeout      = 10 * time.Second
	startTimeout   = 5 * time.Second
	buildTimeout   = 5 * time.Minute
	logTailLines   = 40
	pskEnv         = "VPNLAB_PSK_T1"
	tunnelName     = "tunnel1"
	ikeProposal    = "aes256-sha256-modp2048" // strongSwan syntax; AWS default set includes it
	espProposal    = "aes128-sha256-modp2048" // strongSwan esp_proposals syntax (modp2048 = PFS)
	ourP2Proposal  = "esp-" + espProposal     // our config syntax (gwconfig.ParsePhase2Proposal)
	wantIKEChosen  = "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"
	wantESPChosen  = "AES_CBC-128/HMAC_SHA2_256_128/MODP_2048"
	strongswanConn = "t1"
	strongswanCSA  = "t1-net"
)

var (
	binDir    string // built gateway binaries, removed by TestMain
	buildMu   sync.Mutex
	buildDone = map[string]buildResult{}
)

type buildResult struct {
	path string
	err  error
}

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "vpnlab-interop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// topo describes one test topology.
type topo struct {
	name string
	nat  bool // cgw behind a wan router that SNATs it to its public address
	// addresses
	cgwLocal netip.Addr // address the customer gateway sends from
	cgwID    netip.Addr // its IKE identity (public address)
	vgwAddr  netip.Addr // the VPN endpoint (AWS tunnel outside address)
}

var topologies = []topo{
	{
		name:     "direct", // cgw 10.99.0.2/24 <-> vgw 10.99.0.1/24
		cgwLocal: netip.MustParseAddr("10.99.0.2"),
		cgwID:    netip.MustParseAddr("10.99.0.2"),
		vgwAddr:  netip.MustParseAddr("10.99.0.1"),
	},
	{
		// cgw 10.99.0.2 -- wan (SNAT -> 198.51.100.2) -- vgw 203.0.113.10,
		// as the reference lab and a NATed AWS customer gateway.
		name:     "nat",
		nat:      true,
		cgwLocal: netip.MustParseAddr("10.99.0.2"),
		cgwID:    netip.MustParseAddr("198.51.100.2"),
		vgwAddr:  netip.MustParseAddr("203.0.113.10"),
	},
}

// env is one running topology.
type env struct {
	t        *testing.T
	topo     topo
	lab      *netlab.Lab
	cgw, vgw *netlab.NS
	capture  string // pcap of the vgw's outside interface ("" without tshark)
}

// requirements skips the test when it cannot run here.
func requirements(t *testing.T) {
	t.Helper()
	if err := netlab.Usable(); err != nil {
		t.Skipf("interop: %v", err)
	}
	if err := strongswan.Available(nil); err != nil {
		t.Skipf("interop: %v", err)
	}
}

// newEnv builds the topology; everything is removed at the end of the test.
func newEnv(t *testing.T, tp topo) *env {
	t.Helper()
	lab, err := netlab.New(t)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, topo: tp, lab: lab}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("topology: %v", err)
		}
	}
	e.cgw, err = lab.AddNS("cgw")
	must(err)
	e.vgw, err = lab.AddNS("vgw")
	must(err)
	if !tp.nat {
		must(lab.Link(e.cgw, "wan0", netip.PrefixFrom(tp.cgwLocal, 24), e.vgw, "wan0", netip.PrefixFrom(tp.vgwAddr, 24)))
	} else {
		wan, err := lab.AddNS("wan")
		must(err)
		P, A := netip.MustParsePrefix, netip.MustParseAddr
		must(lab.Link(e.cgw, "wan0", netip.PrefixFrom(tp.cgwLocal, 24), wan, "cgw0", P("10.99.0.1/24")))
		must(lab.Link(wan, "vgw0", P("203.0.113.1/24"), e.vgw, "wan0", netip.PrefixFrom(tp.vgwAddr, 24)))
		must(wan.EnableForwarding())
		must(wan.SNAT("vgw0", P("10.99.0.0/24"), tp.cgwID))
		must(e.cgw.AddRoute(P("0.0.0.0/0"), A("10.99.0.1")))
		must(e.vgw.AddRoute(P("0.0.0.0/0"), A("203.0.113.1")))
	}
	for _, ns := range []*netlab.NS{e.cgw, e.vgw} {
		must(ns.EnableForwarding())
	}
	// Safety nets as in the reference lab: protected prefixes never leave in
	// clear text via a default route.
	must(e.cgw.AddBlackholeRoute(netip.MustParsePrefix("172.31.0.0/16"), 4000))
	must(e.vgw.AddBlackholeRoute(netip.MustParsePrefix("10.10.0.0/16"), 4000))
	e.startCapture()
	e.onFailure("packets on the vgw's outside interface", e.captureSummary)
	return e
}

// startCapture records UDP on the vgw's outside interface with dumpcap (or
// tshark) if installed, so that a failure can show what went over the wire.
func (e *env) startCapture() {
	tool := "dumpcap"
	if _, err := exec.LookPath(tool); err != nil {
		if tool = "tshark"; func() error { _, err := exec.LookPath(tool); return err }() != nil {
			return
		}
	}
	if _, err := exec.LookPath("tshark"); err != nil { // needed to decode
		return
	}
	pcap := filepath.Join(e.lab.LogDir(), "vgw-wan0.pcap")
	p, err := e.vgw.Start(context.Background(), tool, "-n", "-q", "-i", "wan0", "-f", "udp", "-w", pcap)
	if err != nil {
		e.t.Logf("capture not started: %v", err)
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(p.Log); bytes.Contains(b, []byte("Capturing on")) {
			e.capture = pcap
			e.t.Cleanup(func() { p.Stop(2 * time.Second) })
			return
		}
		if ok, _ := p.Exited(); ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Logf("capture not running: %s", p.Tail(5))
	p.Stop(time.Second)
}

// captureSummary decodes the capture, one line per packet.
func (e *env) captureSummary() string {
	if e.capture == "" {
		return "(no capture: tshark not installed)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The capture is still being written: dumpcap flushes per packet.
	cmd := exec.CommandContext(ctx, "tshark", "-n", "-r", e.capture)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Sprintf("(tshark -r %s: %v) %s", e.capture, err, stderr.Bytes())
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return "(no UDP packets captured)"
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 60 {
		lines = append(lines[:60], fmt.Sprintf("... %d more", len(lines)-60))
	}
	return strings.Join(lines, "\n")
}

// onFailure registers a dump of the logs that help to diagnose a failure;
// it runs before the lab is torn down.
func (e *env) onFailure(what string, tail func() string) {
	e.t.Cleanup(func() {
		if e.t.Failed() {
			e.t.Logf("--- %s (last %d lines):\n%s", what, logTailLines, tail())
		}
	})
}

// newPSK returns a PSK that satisfies AWS's rules: 8-64 characters of
// [A-Za-z0-9._], not starting with 0.
func newPSK(t *testing.T) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "Interop." + hex.EncodeToString(b[:])
}

// moduleRoot finds the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/vpnlab/vpnlab")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod of github.com/vpnlab/vpnlab not found above the working directory")
		}
		dir = parent
	}
}

// goTool is the go command that runs this test.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); runtime.GOROOT() != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// buildGateway builds ./cmd/NAME once per test binary and returns its path.
func buildGateway(t *testing.T, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	r, ok := buildDone[name]
	if !ok {
		r = func() buildResult {
			root, err := moduleRoot()
			if err != nil {
				return buildResult{err: err}
			}
			if _, err := os.Stat(filepath.Join(root, "cmd", name)); err != nil {
				return buildResult{err: fmt.Errorf("./cmd/%s does not exist yet: the gateway is not implemented", name)}
			}
			out := filepath.Join(binDir, name)
			ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, goTool(), "build", "-o", out, "./cmd/"+name)
			cmd.Dir = root
			if b, err := cmd.CombinedOutput(); err != nil {
				return buildResult{err: fmt.Errorf("go build ./cmd/%s: %v\n%s", name, err, b)}
			}
			return buildResult{path: out}
		}()
		buildDone[name] = r
	}
	if r.err != nil {
		t.Fatalf("interop: %v", r.err)
	}
	return r.path
}

// gateway is one of our gateway processes.
type gateway struct {
	name    string // "vgw" or "cgw"
	proc    *netlab.Proc
	control string // control API address ("unix:/path")
	sock    string
}

// startGateway writes cfg (YAML) and runs `BIN --config FILE` in ns with the
// PSK in the environment. It fails the test at once if the process exits
// within startTimeout or does not open its control socket.
func (e *env) startGateway(bin, name, cfg, psk string, ns *netlab.NS) *gateway {
	e.t.Helper()
	dir := e.lab.LogDir()
	cfgPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
	cmd := ns.Command(context.Background(), bin, "--config", cfgPath)
	cmd.Env = append(os.Environ(), pskEnv+"="+psk)
	p, err := ns.StartCmd(cmd, name)
	if err != nil {
		e.t.Fatal(err)
	}
	g := &gateway{name: name, proc: p, sock: filepath.Join(dir, name+".sock")}
	g.control = "unix:" + g.sock
	e.onFailure("our "+name+" log "+p.Log, func() string { return p.Tail(logTailLines) })
	e.onFailure("our "+name+" configuration", func() string { return cfg })
	waitSocket(e.t, p, g.sock)
	return g
}

// startCharon starts charon in ns and loads conn.
func (e *env) startCharon(ctx context.Context, ns *netlab.NS, conn strongswan.Conn) *strongswan.Charon {
	e.t.Helper()
	return e.startCharonWith(ctx, ns, strongswan.Options{LogLevel: 1}, conn)
}

// startCharonWith is startCharon with charon's options.
func (e *env) startCharonWith(ctx context.Context, ns *netlab.NS, opt strongswan.Options, conn strongswan.Conn) *strongswan.Charon {
	e.t.Helper()
	c, err := strongswan.Start(ctx, ns, opt)
	if errors.Is(err, strongswan.ErrNotInstalled) {
		e.t.Skip(err)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	e.onFailure("charon log "+c.LogPath(), func() string { return c.LogTail(logTailLines) })
	if err := c.Load(ctx, strongswan.Config{Connections: []strongswan.Conn{conn}}); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// waitUp waits until charon shows the IKE_SA ESTABLISHED with the CHILD_SA
// INSTALLED, failing at once when our gateway exits.
func (e *env) waitUp(ctx context.Context, c *strongswan.Charon, g *gateway) (strongswan.IKESA, strongswan.ChildSA) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, upTimeout+5*time.Second) // WaitEstablished's own timeout is upTimeout
	defer cancel()
	type res struct {
		ike   strongswan.IKESA
		child strongswan.ChildSA
		err   error
	}
	ch := make(chan res, 1)
	go func() {
		i, c, err := c.WaitEstablished(ctx, strongswanConn, strongswanCSA, upTimeout)
		ch <- res{i, c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			e.t.Fatalf("interop: no ESTABLISHED IKE_SA with an INSTALLED CHILD_SA in strongSwan within %v: %v", upTimeout, r.err)
		}
		return r.ike, r.child
	case <-g.proc.Done():
		_, err := g.proc.Exited()
		cancel()
		<-ch
		e.t.Fatalf("interop: our %s exited during the negotiation (%v)", g.name, err)
	}
	panic("unreachable")
}

// checkStrongSwanSAs checks what charon negotiated.
func checkStrongSwanSAs(t *testing.T, sa strongswan.IKESA, child strongswan.ChildSA, initiator bool) {
	t.Helper()
	t.Logf("strongSwan:%s", strongswan.Summary([]strongswan.IKESA{sa}))
	if sa.Version != 1 {
		t.Errorf("IKE version %d, want 1", sa.Version)
	}
	if sa.Initiator != initiator {
		t.Errorf("strongSwan initiator=%v, want %v", sa.Initiator, initiator)
	}
	if got := sa.Proposal(); got != wantIKEChosen {
		t.Errorf("IKE proposal %q, want %q", got, wantIKEChosen)
	}
	if got := child.Proposal(); got != wantESPChosen {
		t.Errorf("ESP proposal %q, want %q", got, wantESPChosen)
	}
	if child.Mode != "TUNNEL" || child.Protocol != "ESP" || !child.Encap {
		t.Errorf("CHILD_SA mode %s protocol %s encap %v, want TUNNEL ESP encap (kernel-libipsec forces NAT-T)", child.Mode, child.Protocol, child.Encap)
	}
	if sa.LocalPort != 4500 || sa.RemotePort != 4500 {
		t.Errorf("IKE_SA ports %d -> %d, want 4500 -> 4500 (NAT-T floated)", sa.LocalPort, sa.RemotePort)
	}
	if child.SPIIn == "" || child.SPIOut == "" {
		t.Errorf("CHILD_SA without SPIs: in %q out %q", child.SPIIn, child.SPIOut)
	}
}

// checkOurSide asks our gateway's control API for the tunnel and compares it
// with what strongSwan reports (polls briefly: the responder of quick mode
// installs its SAs when QM3 arrives).
func checkOurSide(t *testing.T, g *gateway, child strongswan.ChildSA) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl := control.Dial(g.control)
	var (
		last status.Tunnel
		err  error
	)
	for {
		var st status.Snapshot
		st, err = cl.Status(ctx)
		if err == nil {
			for _, tu := range st.Tunnels {
				if tu.Name != tunnelName {
					continue
				}
				last = tu
				for _, sa := range tu.SAs {
					if strings.EqualFold(sa.InboundSPI, child.SPIOut) && strings.EqualFold(sa.OutboundSPI, child.SPIIn) {
						t.Logf("our %s: phase1 %s phase2 %s proposal %s, SA %s in %s out %s", g.name, tu.Phase1State, tu.Phase2State, tu.Proposal, sa.Proposal, sa.InboundSPI, sa.OutboundSPI)
						if tu.Phase1State != "Established" {
							t.Errorf("our %s: phase1_state %q, want Established", g.name, tu.Phase1State)
						}
						if !strings.EqualFold(tu.Proposal, ikeProposal) {
							t.Errorf("our %s: IKE proposal %q, want %q", g.name, tu.Proposal, ikeProposal)
						}
						if !strings.EqualFold(sa.Proposal, ourP2Proposal) {
							t.Errorf("our %s: ESP proposal %q, want %q", g.name, sa.Proposal, ourP2Proposal)
						}
						if !sa.UDPEncap {
							t.Errorf("our %s: SA not UDP-encapsulated (strongSwan uses ESP-in-UDP)", g.name)
						}
						return
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Errorf("our %s: control API shows no SA matching strongSwan's SPIs (in %s out %s): last status %+v, error %v",
				g.name, child.SPIOut, child.SPIIn, last, err)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestStrongSwanInitiatesToVGW: charon in the cgw namespace initiates IKEv1
// PSK main mode + quick mode to our vgw (responder, AWS defaults).
func TestStrongSwanInitiatesToVGW(t *testing.T) {
	requirements(t)
	bin := buildGateway(t, "vgw")
	for _, tp := range topologies {
		t.Run(tp.name, func(t *testing.T) {
			e := newEnv(t, tp)
			psk := newPSK(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dir := e.lab.LogDir()
			cfg := fmt.Sprintf(`log: {format: json, level: debug}
control: {listen: "unix:%s"}
key_log: %s
tunnels:
  - name: %s
    local_address: %s
    remote_address: %s
    psk_env: %s
    local_ts: 0.0.0.0/0
    remote_ts: 0.0.0.0/0
`, filepath.Join(dir, "vgw.sock"), filepath.Join(dir, "vgw-keys.log"), tunnelName, tp.vgwAddr, tp.cgwID, pskEnv)
			g := e.startGateway(bin, "vgw", cfg, psk, e.vgw)

			c := e.startCharon(ctx, e.cgw, strongswan.Conn{
				Name:        strongswanConn,
				LocalAddrs:  tp.cgwLocal.String(),
				RemoteAddrs: tp.vgwAddr.String(),
				LocalID:     tp.cgwID.String(), // the public address, as AWS expects
				RemoteID:    tp.vgwAddr.String(),
				Proposals:   []string{ikeProposal},
				Encap:       true,
				DPDDelay:    "10s",
				DPDTimeout:  "30s",
				ReauthTime:  "28740s", // + over_time = 28800 s proposed (AWS phase 1 lifetime)
				OverTime:    "60s",
				RekeyTime:   "0s",
				KeyingTries: "1",
				PSK:         psk,
				Children: []strongswan.Child{{
					Name:         strongswanCSA,
					LocalTS:      []string{"0.0.0.0/0"},
					RemoteTS:     []string{"0.0.0.0/0"},
					ESPProposals: []string{espProposal},
					DPDAction:    "restart",
					LifeTime:     "3600s",
					RekeyTime:    "3060s",
				}},
			})
			start := time.Now()
			initOut := make(chan string, 1)
			go func() {
				out, err := c.Initiate(ctx, strongswanCSA, upTimeout)
				initOut <- fmt.Sprintf("swanctl --initiate (err %v):\n%s", err, out)
			}()
			e.onFailure("swanctl --initiate output", func() string {
				select {
				case s := <-initOut:
					return s
				case <-time.After(upTimeout + 2*time.Second):
					return "(still running)"
				}
			})
			sa, child := e.waitUp(ctx, c, g)
			t.Logf("up after %v", time.Since(start).Round(time.Millisecond))
			checkStrongSwanSAs(t, sa, child, true)
			if sa.LocalID != tp.cgwID.String() || sa.RemoteID != tp.vgwAddr.String() {
				t.Errorf("identities %s -> %s, want %s -> %s", sa.LocalID, sa.RemoteID, tp.cgwID, tp.vgwAddr)
			}
			checkOurSide(t, g, child)
		})
	}
}

// TestCGWInitiatesToStrongSwan: our cgw (startup_action start) initiates to
// charon in the vgw namespace, configured like an AWS endpoint (responder).
func TestCGWInitiatesToStrongSwan(t *testing.T) {
	requirements(t)
	bin := buildGateway(t, "cgw")
	for _, tp := range topologies {
		t.Run(tp.name, func(t *testing.T) {
			e := newEnv(t, tp)
			psk := newPSK(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c := e.startCharon(ctx, e.vgw, strongswan.Conn{
				Name:        strongswanConn,
				LocalAddrs:  tp.vgwAddr.String(),
				RemoteAddrs: tp.cgwID.String(),
				LocalID:     tp.vgwAddr.String(),
				RemoteID:    tp.cgwID.String(),
				Proposals:   []string{ikeProposal},
				DPDDelay:    "10s",
				DPDTimeout:  "30s",
				ReauthTime:  "0s", // responder only (AWS IKEv1 startup action "add")
				RekeyTime:   "0s",
				PSK:         psk,
				Children: []strongswan.Child{{
					Name:         strongswanCSA,
					LocalTS:      []string{"0.0.0.0/0"},
					RemoteTS:     []string{"0.0.0.0/0"},
					ESPProposals: []string{espProposal},
					DPDAction:    "clear", // AWS default DPD timeout action
					LifeTime:     "3600s",
					RekeyTime:    "0s",
				}},
			})
			dir := e.lab.LogDir()
			localID := ""
			if tp.cgwID != tp.cgwLocal {
				localID = fmt.Sprintf("    local_id: %s\n", tp.cgwID)
			}
			cfg := fmt.Sprintf(`log: {format: json, level: debug}
control: {listen: "unix:%s"}
key_log: %s
tunnels:
  - name: %s
    local_address: %s
%s    remote_address: %s
    psk_env: %s
    startup_action: start
    local_ts: 0.0.0.0/0
    remote_ts: 0.0.0.0/0
    phase1:
      proposals: [%s]
    phase2:
      proposals: [%s]
`, filepath.Join(dir, "cgw.sock"), filepath.Join(dir, "cgw-keys.log"), tunnelName, tp.cgwLocal, localID, tp.vgwAddr, pskEnv, ikeProposal, ourP2Proposal)
			start := time.Now()
			g := e.startGateway(bin, "cgw", cfg, psk, e.cgw)
			sa, child := e.waitUp(ctx, c, g)
			t.Logf("up after %v (from cgw start)", time.Since(start).Round(time.Millisecond))
			checkStrongSwanSAs(t, sa, child, false)
			if sa.LocalID != tp.vgwAddr.String() || sa.RemoteID != tp.cgwID.String() {
				t.Errorf("identities %s -> %s, want %s -> %s", sa.LocalID, sa.RemoteID, tp.vgwAddr, tp.cgwID)
			}
			checkOurSide(t, g, child)
		})
	}
}
