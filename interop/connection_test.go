package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/netlab"
)

// An AWS-style VPN connection end to end: two tunnels from one customer
// gateway behind a masquerading NAT to two outside addresses of one vgw,
// BGP over both tunnels' inside addresses, hosts behind both gateways.
//
//	onprem 10.10.1.10 -- cgw 10.99.0.2 -- wan (masquerade -> 203.0.113.1) -- vgw 203.0.113.10 (tunnel1)
//	                                                                            203.0.113.20 (tunnel2)
//	                                                                      vgw 172.31.1.1 -- vpc 172.31.1.10
//	inside: tunnel1 169.254.10.0/30, tunnel2 169.254.11.0/30 (vgw .1, cgw .2)

var (
	connCGWLocal  = netip.MustParseAddr("10.99.0.2")
	connCGWPublic = netip.MustParseAddr("203.0.113.1") // the wan router's address: masquerade
	connVGW1      = netip.MustParseAddr("203.0.113.10")
	connVGW2      = netip.MustParseAddr("203.0.113.20")
)

// connEnv is the running topology.
type connEnv struct {
	*env
	wan         *netlab.NS
	onprem, vpc *netlab.NS
	psk         string
}

func newConnEnv(t *testing.T) *connEnv {
	t.Helper()
	lab, err := netlab.New(t)
	if err != nil {
		t.Fatal(err)
	}
	e := &connEnv{env: &env{t: t, lab: lab, topo: topo{name: "connection", nat: true, cgwLocal: connCGWLocal, cgwID: connCGWPublic, vgwAddr: connVGW1}}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("topology: %v", err)
		}
	}
	P, A := netip.MustParsePrefix, netip.MustParseAddr
	e.cgw, err = lab.AddNS("cgw")
	must(err)
	e.vgw, err = lab.AddNS("vgw")
	must(err)
	e.wan, err = lab.AddNS("wan")
	must(err)
	must(lab.Link(e.cgw, "wan0", P("10.99.0.2/24"), e.wan, "cgw0", P("10.99.0.1/24")))
	must(lab.Link(e.wan, "vgw0", P("203.0.113.1/24"), e.vgw, "wan0", P("203.0.113.10/24")))
	must(e.vgw.AddAddr("wan0", P("203.0.113.20/24")))
	must(e.wan.EnableForwarding())
	must(e.wan.Masquerade("vgw0", P("10.99.0.0/24")))
	must(e.cgw.AddRoute(P("0.0.0.0/0"), A("10.99.0.1")))
	for _, ns := range []*netlab.NS{e.cgw, e.vgw} {
		must(ns.EnableForwarding())
	}
	must(e.cgw.AddBlackholeRoute(P("172.31.0.0/16"), 4000))
	must(e.vgw.AddBlackholeRoute(P("10.10.0.0/16"), 4000))
	e.onprem, e.vpc = e.addHosts()
	e.psk = newPSK(t)
	e.startCapture()
	e.onFailure("packets on the vgw's outside interface", e.captureSummary)
	return e
}

// connOpts are the knobs of the two gateway configurations.
type connOpts struct {
	vgwDPD, cgwDPD string // dpd mapping, e.g. "{delay: 1s, timeout: 4s, action: clear}"
	cgwTunnelBGP   [2]string
	cgwAdvertise   []string
	vgwTop, cgwTop string // extra top-level lines
	holdTime       string
}

func (o connOpts) dpd(s string) string {
	if s == "" {
		return "{delay: 1s, timeout: 4s, action: clear}"
	}
	return s
}

func (e *connEnv) configs(o connOpts) (vgw, cgw string) {
	dir := e.lab.LogDir()
	hold := o.holdTime
	if hold == "" {
		hold = "30s"
	}
	adv := o.cgwAdvertise
	if adv == nil {
		adv = []string{onpremNet.String()}
	}
	top := func(name string) string {
		return fmt.Sprintf("log: {format: json, level: debug}\ncontrol: {listen: \"unix:%s\"}\nkey_log: %s\nlab_timers: true\n"+
			"ike: {retransmit_timeout: 1s, retransmit_base: 1.2, retransmit_tries: 20}\ndata_path: {tun: vpnlab0, mtu: 1400}\n",
			filepath.Join(dir, name+".sock"), filepath.Join(dir, name+"-keys.log"))
	}
	var v, c strings.Builder
	v.WriteString(top("vgw") + o.vgwTop)
	fmt.Fprintf(&v, "bgp: {asn: 64512, advertise: [%s], hold_time: %s, keepalive: 1s, connect_retry: 1s}\ntunnels:\n", vpcNet, hold)
	c.WriteString(top("cgw") + o.cgwTop)
	fmt.Fprintf(&c, "bgp: {asn: 65000, advertise: [%s], hold_time: %s, keepalive: 1s, connect_retry: 1s}\ntunnels:\n", strings.Join(adv, ", "), hold)
	for i, vgwAddr := range []netip.Addr{connVGW1, connVGW2} {
		n := i + 1
		inside := fmt.Sprintf("169.254.%d.0/30", 9+n)
		props := "    phase1: {proposals: [aes256-sha256-modp2048]}\n    phase2: {proposals: [esp-aes128gcm16-modp2048]}\n"
		fmt.Fprintf(&v, "  - name: tunnel%d\n    connection: vpn-1\n    local_address: %s\n    remote_address: %s\n    psk_env: %s\n    inside_cidr: %s\n    dpd: %s\n%s",
			n, vgwAddr, connCGWPublic, pskEnv, inside, o.dpd(o.vgwDPD), props)
		fmt.Fprintf(&c, "  - name: tunnel%d\n    connection: vpn-1\n    local_address: %s\n    local_id: %s\n    remote_address: %s\n    psk_env: %s\n    startup_action: start\n    inside_cidr: %s\n    dpd: %s\n%s",
			n, connCGWLocal, connCGWPublic, vgwAddr, pskEnv, inside, o.dpd(o.cgwDPD), props)
		if o.cgwTunnelBGP[i] != "" {
			fmt.Fprintf(&c, "    bgp: %s\n", o.cgwTunnelBGP[i])
		}
	}
	return v.String(), c.String()
}

func (e *connEnv) start(o connOpts) (cg, vg *gateway) {
	e.t.Helper()
	vc, cc := e.configs(o)
	vg = e.startGateway(buildGateway(e.t, "vgw"), "vgw", vc, e.psk, e.vgw)
	cg = e.startGateway(buildGateway(e.t, "cgw"), "cgw", cc, e.psk, e.cgw)
	return cg, vg
}

// routingView is the part of GET /v1/routing the tests read.
type routingView struct {
	Neighbors []struct {
		Tunnel   string `json:"tunnel"`
		State    string `json:"state"`
		Accepted int    `json:"accepted_route_count"`
		Limit    int    `json:"limit_exceeded"`
	} `json:"neighbors"`
	Routes []struct {
		Prefix  string   `json:"prefix"`
		Tunnels []string `json:"tunnels"`
		Active  int      `json:"active"`
		ECMP    bool     `json:"ecmp"`
	} `json:"routes"`
}

func routing(ctx context.Context, g *gateway) (routingView, error) {
	var v routingView
	b, err := control.Dial(g.control).Raw(ctx, "GET", "/v1/routing")
	if err != nil {
		return v, err
	}
	err = json.Unmarshal(b, &v)
	return v, err
}

// activeTunnel returns the tunnel that carries prefix on g ("" if none).
func (v routingView) active(prefix string) []string {
	for _, r := range v.Routes {
		if r.Prefix == prefix && len(r.Tunnels) > 0 {
			n := max(r.Active, 1)
			return r.Tunnels[:min(n, len(r.Tunnels))]
		}
	}
	return nil
}

// waitRoute waits until g sends prefix over exactly the tunnels want.
func waitRoute(t *testing.T, g *gateway, prefix string, want []string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var last routingView
	var lastErr error
	for {
		v, err := routing(ctx, g)
		lastErr = err
		if err == nil {
			last = v
			if strings.Join(v.active(prefix), ",") == strings.Join(want, ",") {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("our %s: %s not via %v within %v; routing: %+v (last error: %v)", g.name, prefix, want, d, last, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitTunnels waits until both tunnels of g are UP with BGP established.
func waitTunnels(t *testing.T, g *gateway, d time.Duration, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cl := control.Dial(g.control)
	var last status.Snapshot
	for {
		if st, err := cl.Status(ctx); err == nil {
			last = st
			up := 0
			for _, tu := range st.Tunnels {
				for _, n := range names {
					if tu.Name == n && tu.Status == "UP" && tu.BGPState == "Established" {
						up++
					}
				}
			}
			if up == len(names) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("our %s: tunnels %v not UP with BGP established within %v: %+v", g.name, names, d, last.Tunnels)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// probe is continuous ICMP probe traffic (ping -D every 50 ms) whose
// replies are timestamped, to measure an outage: the longest gap between
// two replies, and the number of probes without a reply.
type probe struct {
	proc  *netlab.Proc
	start time.Time
}

const probeInterval = 50 * time.Millisecond

func startProbe(t *testing.T, ns *netlab.NS, dst netip.Addr, maxDur time.Duration) *probe {
	t.Helper()
	p, err := ns.Start(context.Background(), "ping", "-n", "-D", "-i", "0.05", "-W", "1", "-w", strconv.Itoa(int(maxDur.Seconds())), dst.String())
	if err != nil {
		t.Fatal(err)
	}
	return &probe{proc: p, start: time.Now()}
}

type probeResult struct {
	Sent, Received, Lost int
	MaxGap               time.Duration
	GapStart             time.Time
}

var pingReply = regexp.MustCompile(`^\[(\d+\.\d+)\] .* icmp_seq=(\d+) `)

// stop ends the probe and reads its log.
func (p *probe) stop(t *testing.T) probeResult {
	t.Helper()
	_ = p.proc.Stop(2 * time.Second)
	f, err := os.Open(p.proc.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type reply struct {
		at  time.Time
		seq int
	}
	var rs []reply
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := pingReply.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseFloat(m[1], 64)
		seq, _ := strconv.Atoi(m[2])
		rs = append(rs, reply{time.Unix(0, int64(sec*1e9)), seq})
	}
	if len(rs) < 2 {
		t.Fatalf("probe: %d replies; log:\n%s", len(rs), p.proc.Tail(20))
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].seq < rs[j].seq })
	seen := map[int]bool{}
	var r probeResult
	for i, x := range rs {
		seen[x.seq] = true
		if i > 0 {
			if g := x.at.Sub(rs[i-1].at); g > r.MaxGap {
				r.MaxGap, r.GapStart = g, rs[i-1].at
			}
		}
	}
	r.Sent = rs[len(rs)-1].seq - rs[0].seq + 1
	r.Received = len(seen)
	r.Lost = r.Sent - r.Received
	return r
}

func connRequirements(t *testing.T) {
	t.Helper()
	if err := netlab.Usable(); err != nil {
		t.Skipf("connection: %v", err)
	}
}

// TestConnectionBGPOverBothTunnels: both tunnels come up through the NAT on
// UDP 4500, BGP is established on both, each side learns the other's
// prefix over both tunnels with tunnel1 active (tie-break), traffic flows
// both ways; then the customer gateway prepends its AS on tunnel1 and the
// vgw moves 10.10.0.0/16 to tunnel2; then equal AS_PATHs with a lower MED
// on tunnel1 move it back, and a lower MED on tunnel2 moves it again.
func TestConnectionBGPOverBothTunnels(t *testing.T) {
	connRequirements(t)
	e := newConnEnv(t)
	cg, vg := e.start(connOpts{})
	waitTunnels(t, cg, 30*time.Second, "tunnel1", "tunnel2")
	waitTunnels(t, vg, 30*time.Second, "tunnel1", "tunnel2")
	st, err := control.Dial(cg.control).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tu := range st.Tunnels {
		if !tu.NATDetected || !tu.Floated || !tu.LocalBehindNAT {
			t.Fatalf("cgw %s: NAT-T not in use (nat %v floated %v behind %v)", tu.Name, tu.NATDetected, tu.Floated, tu.LocalBehindNAT)
		}
	}
	waitRoute(t, vg, onpremNet.String(), []string{"tunnel1"}, 20*time.Second)
	waitRoute(t, cg, vpcNet.String(), []string{"tunnel1"}, 20*time.Second)
	pingUntil(t, e.onprem, vpcHost)
	pingUntil(t, e.vpc, onpremHost)

	cl := control.Dial(cg.control)
	ctx := context.Background()
	step := func(what, tunnel string, med uint32, prepend int, want string) {
		t.Helper()
		if err := cl.SetNeighborPolicy(ctx, tunnel, med, prepend); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		waitRoute(t, vg, onpremNet.String(), []string{want}, 20*time.Second)
		pingUntil(t, e.vpc, onpremHost)
		t.Logf("%s: vgw sends %s via %s", what, onpremNet, want)
	}
	step("prepend 2 on tunnel1", "tunnel1", 0, 2, "tunnel2")
	step("no prepend, MED 100 on tunnel1", "tunnel1", 100, 0, "tunnel2") // tunnel2 has MED 0 (none): lower wins
	step("MED 200 on tunnel2", "tunnel2", 200, 0, "tunnel1")
}

// String summarises the probe for test logs.
func (r probeResult) String() string {
	return fmt.Sprintf("%d probes, %d answered, %d lost, longest silence %v", r.Sent, r.Received, r.Lost, r.MaxGap.Round(time.Millisecond))
}

// TestConnectionFailover blackholes tunnel 1's outside path under
// continuous probe traffic from the onprem host to the vpc host: DPD
// (delay 1 s, timeout 4 s) takes tunnel 1 down on both sides, traffic moves
// to tunnel 2, the BGP hold timer (9 s) withdraws tunnel 1's routes; when the
// path returns, the customer gateway's DPD action restart brings tunnel 1
// back, BGP re-establishes and the routes move back. The measured outage
// must be at most the DPD timeout plus 2 seconds.
func TestConnectionFailover(t *testing.T) {
	connRequirements(t)
	e := newConnEnv(t)
	const dpdTimeout = 4 * time.Second
	cg, vg := e.start(connOpts{
		vgwDPD:   "{delay: 1s, timeout: 4s, action: clear}",
		cgwDPD:   "{delay: 1s, timeout: 4s, action: restart}",
		holdTime: "9s",
	})
	waitTunnels(t, cg, 30*time.Second, "tunnel1", "tunnel2")
	waitTunnels(t, vg, 30*time.Second, "tunnel1", "tunnel2")
	waitRoute(t, vg, onpremNet.String(), []string{"tunnel1"}, 20*time.Second)
	waitRoute(t, cg, vpcNet.String(), []string{"tunnel1"}, 20*time.Second)
	pingUntil(t, e.onprem, vpcHost)

	p := startProbe(t, e.onprem, vpcHost, 90*time.Second)
	time.Sleep(2 * time.Second)
	blackholed := time.Now()
	if err := e.wan.Blackhole(connVGW1); err != nil {
		t.Fatal(err)
	}
	t.Logf("tunnel1's outside path (%s) blackholed", connVGW1)
	// BGP hold timer: tunnel1's routes are withdrawn on both sides.
	waitRoute(t, vg, onpremNet.String(), []string{"tunnel2"}, 30*time.Second)
	waitRoute(t, cg, vpcNet.String(), []string{"tunnel2"}, 30*time.Second)
	v, _ := routing(context.Background(), vg)
	for _, r := range v.Routes {
		if r.Prefix == onpremNet.String() && strings.Contains(strings.Join(r.Tunnels, ","), "tunnel1") {
			t.Fatalf("vgw still lists tunnel1 for %s after the hold timer: %+v", onpremNet, r)
		}
	}
	t.Logf("routes withdrawn from tunnel1 %v after the blackhole", time.Since(blackholed).Round(100*time.Millisecond))
	time.Sleep(time.Second)
	if err := e.wan.Unblackhole(connVGW1); err != nil {
		t.Fatal(err)
	}
	restored := time.Now()
	waitTunnels(t, cg, 40*time.Second, "tunnel1", "tunnel2")
	waitRoute(t, vg, onpremNet.String(), []string{"tunnel1"}, 30*time.Second)
	waitRoute(t, cg, vpcNet.String(), []string{"tunnel1"}, 30*time.Second)
	t.Logf("failback: tunnel1 carries the routes again %v after the path returned", time.Since(restored).Round(100*time.Millisecond))
	time.Sleep(2 * time.Second)
	r := p.stop(t)
	t.Logf("probe onprem -> vpc every %v: %v (silence began %v after the blackhole)", probeInterval, r, r.GapStart.Sub(blackholed).Round(time.Millisecond))
	if limit := dpdTimeout + 2*time.Second; r.MaxGap > limit {
		t.Fatalf("outage %v is longer than the DPD timeout + 2 s (%v)", r.MaxGap, limit)
	}
	st, err := control.Dial(vg.control).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tu := range st.Tunnels {
		if tu.Status != "UP" || tu.AcceptedRouteCount != 1 {
			t.Fatalf("vgw %s after failback: status %s, accepted routes %d", tu.Name, tu.Status, tu.AcceptedRouteCount)
		}
	}
}

// TestConnectionNATMappingFlush: mid-session the wan router forgets every
// NAT mapping (conntrack -F) and from then on masquerades to other ports;
// the vgw follows the customer gateway to its new public port (NAT
// rebinding, from the first authenticated packet) and traffic keeps flowing.
func TestConnectionNATMappingFlush(t *testing.T) {
	connRequirements(t)
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Skip("conntrack (Debian package conntrack) is needed to flush the NAT mappings; .ci/run installs it")
	}
	e := newConnEnv(t)
	cg, vg := e.start(connOpts{})
	waitTunnels(t, cg, 30*time.Second, "tunnel1", "tunnel2")
	waitTunnels(t, vg, 30*time.Second, "tunnel1", "tunnel2")
	waitRoute(t, vg, onpremNet.String(), []string{"tunnel1"}, 20*time.Second)
	pingUntil(t, e.onprem, vpcHost)
	p := startProbe(t, e.onprem, vpcHost, 60*time.Second)
	time.Sleep(time.Second)
	if err := e.wan.Nft("flush chain ip netlab_nat postrouting\nadd rule ip netlab_nat postrouting oifname \"vgw0\" ip saddr 10.99.0.0/24 ip protocol udp masquerade to :20000-30000\n" +
		"add rule ip netlab_nat postrouting oifname \"vgw0\" ip saddr 10.99.0.0/24 masquerade\n"); err != nil {
		t.Fatal(err)
	}
	if out, err := e.wan.Run(context.Background(), "conntrack", "-F"); err != nil {
		t.Fatalf("conntrack -F: %v: %s", err, out)
	}
	t.Log("NAT mappings flushed; new mappings use ports 20000-30000")
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(netlab.TailFile(vg.proc.Log, 2000), "NAT rebinding") {
		if time.Now().After(deadline) {
			t.Fatal("the vgw never followed the customer gateway to its new NAT mapping (no \"NAT rebinding\" log line)")
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	pingUntil(t, e.vpc, onpremHost)
	r := p.stop(t)
	t.Logf("probe onprem -> vpc across the flush: %v", r)
	if r.MaxGap > 2*time.Second {
		t.Fatalf("traffic stopped for %v after the NAT mapping flush", r.MaxGap)
	}
	waitTunnels(t, vg, 10*time.Second, "tunnel1", "tunnel2")
}

// TestConnectionRouteLimit: a customer gateway that advertises more than
// the vgw's route limit (AWS: 100) has its session reset (Cease, maximum
// number of prefixes) and its routes dropped, with a clear event.
func TestConnectionRouteLimit(t *testing.T) {
	connRequirements(t)
	e := newConnEnv(t)
	var adv []string
	for i := range 101 {
		adv = append(adv, fmt.Sprintf("10.%d.%d.0/24", 100+i/200, i%200))
	}
	adv = append(adv, onpremNet.String())
	_, vg := e.start(connOpts{cgwAdvertise: adv})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		v, err := routing(ctx, vg)
		if err == nil {
			exceeded := 0
			for _, n := range v.Neighbors {
				if n.Limit > 0 {
					exceeded++
				}
			}
			if exceeded == 2 {
				t.Logf("vgw: both sessions over the route limit: %+v", v.Neighbors)
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("vgw did not report the route limit on both tunnels: %+v", v.Neighbors)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !strings.Contains(netlab.TailFile(vg.proc.Log, 5000), "limit") {
		t.Fatal("no route limit message in the vgw log")
	}
}

// TestConnectionDPDActions: tunnel 1's path is blackholed until both sides
// declare the peer dead, then restored. clear: the tunnel stays down (a
// vgw with startup action add waits for the customer gateway, which also
// cleared). none: the peer is reported dead but the SAs stay, and the
// tunnel carries traffic again when the path returns. (restart is
// TestConnectionFailover.)
func TestConnectionDPDActions(t *testing.T) {
	connRequirements(t)
	for _, action := range []string{"clear", "none"} {
		t.Run(action, func(t *testing.T) {
			e := newConnEnv(t)
			dpd := fmt.Sprintf("{delay: 1s, timeout: 3s, action: %s}", action)
			cg, vg := e.start(connOpts{vgwDPD: dpd, cgwDPD: dpd, holdTime: "9s"})
			waitTunnels(t, cg, 30*time.Second, "tunnel1", "tunnel2")
			waitTunnels(t, vg, 30*time.Second, "tunnel1", "tunnel2")
			if err := e.wan.Blackhole(connVGW1); err != nil {
				t.Fatal(err)
			}
			tu := waitDPD(t, cg, "tunnel1", "dead", 15*time.Second)
			if tu.LastError != "Peer is not responsive - Declaring peer dead" && action == "clear" {
				t.Fatalf("cgw tunnel1 after DPD: last error %q", tu.LastError)
			}
			waitDPD(t, vg, "tunnel1", "dead", 15*time.Second)
			if err := e.wan.Unblackhole(connVGW1); err != nil {
				t.Fatal(err)
			}
			switch action {
			case "clear":
				time.Sleep(3 * time.Second)
				st, err := control.Dial(cg.control).Tunnel(context.Background(), "tunnel1")
				if err != nil {
					t.Fatal(err)
				}
				if st.Phase1State != "Down" || len(st.SAs) != 0 || st.Status != "DOWN" {
					t.Fatalf("after clear tunnel1 should stay down: %+v", st)
				}
				waitRoute(t, vg, onpremNet.String(), []string{"tunnel2"}, 40*time.Second)
			case "none":
				st, _ := control.Dial(cg.control).Tunnel(context.Background(), "tunnel1")
				if len(st.SAs) == 0 {
					t.Fatalf("action none removed tunnel1's SAs: %+v", st)
				}
				waitDPD(t, cg, "tunnel1", "alive", 15*time.Second)
			}
			pingUntil(t, e.onprem, vpcHost)
		})
	}
}

// waitDPD waits until the tunnel's dpd_state is want.
func waitDPD(t *testing.T, g *gateway, tunnel, want string, d time.Duration) status.Tunnel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cl := control.Dial(g.control)
	var last status.Tunnel
	for {
		if st, err := cl.Tunnel(ctx, tunnel); err == nil {
			last = st
			// clear and restart remove the monitor with the SAs: a dead
			// verdict then shows as the AWS message.
			if st.DPDState == want || (want == "dead" && st.StatusMessage == "Peer is not responsive - Declaring peer dead") {
				return st
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("our %s: %s DPD state not %q within %v: %+v", g.name, tunnel, want, d, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
