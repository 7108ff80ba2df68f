package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/bird"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// The customer gateway of issue 4's interop requirement: strongSwan
// (kernel-libipsec) behind the masquerading wan router, BIRD 2 as its BGP
// speaker over the tunnels, peering with our vgw (GoBGP in the vgw process,
// inside addresses on its TUN device), in the topology of newConnEnv.
//
// kernel-libipsec gives one charon one TUN device, and one TUN cannot carry
// two tunnels whose CHILD_SAs have the same selectors (the reference lab's
// "central limitation": libipsec picks the SA by policy, not by route). So
// the cgw namespace runs one charon per tunnel, as the lab's --split mode:
//
//	charon-cgw1: IKE ports 500/4500, TUN ipsec0 = 169.254.10.2/30, tunnel 1 to 203.0.113.10
//	charon-cgw2: IKE ports 1500/14500, TUN ipsec1 = 169.254.11.2/30, tunnel 2 to 203.0.113.20
//
// (the second instance cannot bind 500/4500 again; after NAT detection it
// floats 1500 -> 14500 locally and 500 -> 4500 at our vgw, which answers
// whatever source port the masquerade leaves). Each tunnel negotiates one
// CHILD_SA 0.0.0.0/0 === 0.0.0.0/0, as AWS does (one SA pair per tunnel),
// that carries both the BGP session and the data; BIRD's routes point at
// the TUN of their tunnel, so BGP chooses the tunnel on the cgw side too.
// The libipsec routes (table 220/221) are put behind the main table.

var keepaliveRE = regexp.MustCompile(`(?m)^(bgp: \{.*\bkeepalive: )[0-9a-z.]+`)

// birdCGWTunnel is one tunnel of the strongSwan customer gateway.
type birdCGWTunnel struct {
	n         int // 1 or 2
	name      string
	child     string
	vgwAddr   netip.Addr
	cgwInside netip.Prefix // address of the TUN device
	vgwInside netip.Addr
	bgp       string // BIRD protocol name
	opt       strongswan.Options
	charon    *strongswan.Charon
	ike       strongswan.IKESA
	csa       strongswan.ChildSA
}

// vgwRoutingView is GET /v1/routing with the paths.
type vgwRoutingView struct {
	Neighbors []struct {
		Tunnel   string   `json:"tunnel"`
		Peer     string   `json:"peer"`
		PeerASN  uint32   `json:"peer_asn"`
		State    string   `json:"state"`
		Accepted int      `json:"accepted_route_count"`
		Received []string `json:"received"`
	} `json:"neighbors"`
	Routes []struct {
		Prefix  string   `json:"prefix"`
		Tunnels []string `json:"tunnels"`
		Active  int      `json:"active"`
		Reason  string   `json:"reason"`
		Paths   []struct {
			Tunnel string   `json:"tunnel"`
			Source string   `json:"source"`
			ASPath []uint32 `json:"as_path"`
		} `json:"paths"`
	} `json:"routes"`
}

func (v vgwRoutingView) summary() string {
	var b strings.Builder
	for _, n := range v.Neighbors {
		fmt.Fprintf(&b, "\n  neighbor %s %s AS%d %s received %v", n.Tunnel, n.Peer, n.PeerASN, n.State, n.Received)
	}
	for _, r := range v.Routes {
		fmt.Fprintf(&b, "\n  route %s via %v (active %d: %s)", r.Prefix, r.Tunnels, r.Active, r.Reason)
		for _, p := range r.Paths {
			fmt.Fprintf(&b, "\n    path %s %s as_path %v", p.Tunnel, p.Source, p.ASPath)
		}
	}
	return b.String()
}

// bgpPathTunnels returns the tunnels over which v has a BGP path for prefix
// whose AS_PATH is exactly asPath.
func (v vgwRoutingView) bgpPathTunnels(prefix string, asPath []uint32) []string {
	var ts []string
	for _, r := range v.Routes {
		if r.Prefix != prefix {
			continue
		}
		for _, p := range r.Paths {
			if p.Source == "bgp" && slices.Equal(p.ASPath, asPath) {
				ts = append(ts, p.Tunnel)
			}
		}
	}
	slices.Sort(ts)
	return ts
}

// TestStrongSwanBIRDCustomerGateway: strongSwan charon (kernel-libipsec,
// one instance per tunnel) and BIRD 2 in the cgw namespace behind the NAT,
// our vgw binary on the other side. Both tunnels come up on UDP 4500 through
// the NAT (IKEv1 main mode PSK with the public address as ID, quick mode
// with AES-GCM-16 and modp2048 PFS, DPD), both BGP sessions are Established
// on both sides, our vgw learns 10.10.0.0/16 from AS 65000 over both
// tunnels, BIRD learns 172.31.0.0/16 from AS 64512 over both and installs
// it in the kernel, and the hosts behind the gateways ping each other; the
// pings leave the cgw through the charon of BIRD's best path.
func TestStrongSwanBIRDCustomerGateway(t *testing.T) {
	requirements(t)
	birdVersion, err := bird.Available()
	if err != nil {
		t.Skipf("interop: %v (.ci/run installs bird2)", err)
	}
	vgwBin := buildGateway(t, "vgw")
	t0 := time.Now()
	e := newConnEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	P, A := netip.MustParsePrefix, netip.MustParseAddr

	// Our vgw: the configuration of the BGP connection test (AWS defaults:
	// selectors 0.0.0.0/0, AS 64512, customer AS 65000, inside
	// 169.254.10.0/30 and 169.254.11.0/30, DPD 1 s / 4 s clear) with AWS's
	// BGP keepalive of 10 s instead of 1 s: with a keepalive (and so a TCP
	// ACK from BIRD) every second a tunnel is never idle for DPD's 1 s.
	vcfg, _ := e.configs(connOpts{})
	if !keepaliveRE.MatchString(vcfg) {
		t.Fatalf("vgw configuration without a bgp keepalive to change:\n%s", vcfg)
	}
	vcfg = keepaliveRE.ReplaceAllString(vcfg, "${1}10s")
	vg := e.startGateway(vgwBin, "vgw", vcfg, e.psk, e.vgw)

	tunnels := []*birdCGWTunnel{
		{n: 1, vgwAddr: connVGW1, cgwInside: P("169.254.10.2/30"), vgwInside: A("169.254.10.1"),
			opt: strongswan.Options{Name: "charon-cgw1", LogLevel: 1, RoutingTable: 220, RoutingTablePrio: 32800}},
		{n: 2, vgwAddr: connVGW2, cgwInside: P("169.254.11.2/30"), vgwInside: A("169.254.11.1"),
			opt: strongswan.Options{Name: "charon-cgw2", LogLevel: 1, Port: 1500, NATTPort: 14500, RoutingTable: 221, RoutingTablePrio: 32801}},
	}
	for _, tu := range tunnels {
		tu.name, tu.child, tu.bgp = fmt.Sprintf("t%d", tu.n), fmt.Sprintf("t%d-all", tu.n), fmt.Sprintf("tun%d", tu.n)
		// One after the other: the TUN devices are named in start order.
		c, err := strongswan.Start(ctx, e.cgw, tu.opt)
		if errors.Is(err, strongswan.ErrNotInstalled) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		tu.charon = c
		t.Cleanup(func() { c.Stop() })
		e.onFailure(tu.opt.Name+" log "+c.LogPath(), func() string { return c.LogTail(logTailLines) })
		if err := e.cgw.AddAddr(c.TUN(), tu.cgwInside); err != nil {
			t.Fatal(err)
		}
		conn := strongswan.Conn{
			Name:        tu.name,
			LocalAddrs:  connCGWLocal.String(),
			RemoteAddrs: tu.vgwAddr.String(),
			LocalID:     connCGWPublic.String(), // the public address (masquerade), as AWS expects
			RemoteID:    tu.vgwAddr.String(),
			Proposals:   []string{ikeProposal},
			Encap:       true,
			DPDDelay:    "10s",
			DPDTimeout:  "30s",
			ReauthTime:  "28740s", // + over_time = 28800 s proposed
			OverTime:    "60s",
			RekeyTime:   "0s",
			KeyingTries: "0",
			PSK:         e.psk,
			Children: []strongswan.Child{{
				Name:         tu.child,
				LocalTS:      []string{"0.0.0.0/0"},
				RemoteTS:     []string{"0.0.0.0/0"},
				ESPProposals: []string{"aes128gcm16-modp2048"},
				DPDAction:    "restart",
				LifeTime:     "3600s",
				RekeyTime:    "3060s",
			}},
		}
		if err := c.Load(ctx, strongswan.Config{Connections: []strongswan.Conn{conn}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("charons: %s on %s (ports 500/4500), %s on %s (ports 1500/14500)", tunnels[0].opt.Name, tunnels[0].charon.TUN(), tunnels[1].opt.Name, tunnels[1].charon.TUN())

	// BIRD: AS 65000, one session per tunnel from the cgw's inside address.
	bc := bird.BGPConfig{RouterID: A("10.10.1.1"), LocalAS: 65000, Originate: []netip.Prefix{onpremNet},
		HoldTime: 30 * time.Second, Keepalive: 10 * time.Second, ConnectRetry: 2 * time.Second,
		ErrorWait: [2]time.Duration{2 * time.Second, 16 * time.Second}, KernelExport: true, Debug: true}
	for _, tu := range tunnels {
		bc.Neighbors = append(bc.Neighbors, bird.Neighbor{Name: tu.bgp, Addr: tu.vgwInside, AS: 64512, Source: tu.cgwInside.Addr()})
	}
	bcfg, err := bc.Render()
	if err != nil {
		t.Fatal(err)
	}
	bd, err := bird.Start(ctx, e.cgw, bird.Options{Name: "bird-cgw", Config: bcfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bd.Stop() })
	e.onFailure("BIRD log "+bd.LogPath(), func() string { return bd.LogTail(logTailLines) })
	e.onFailure("BIRD protocols and routes", func() string {
		qctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, _ := bd.Birdc(qctx, "show", "protocols", "all")
		r, _ := bd.Birdc(qctx, "show", "route", "all")
		return string(p) + "\n" + string(r)
	})

	// Initiate both tunnels at once.
	var (
		initMu  sync.Mutex
		initOut = map[string]string{}
	)
	e.onFailure("swanctl --initiate output", func() string {
		initMu.Lock()
		defer initMu.Unlock()
		var b strings.Builder
		for k, v := range initOut {
			fmt.Fprintf(&b, "--- %s:\n%s\n", k, v)
		}
		return b.String()
	})
	tInit := time.Now()
	for _, tu := range tunnels {
		go func() {
			out, err := tu.charon.Initiate(ctx, tu.child, upTimeout)
			initMu.Lock()
			initOut[tu.opt.Name] = fmt.Sprintf("(err %v)\n%s", err, out)
			initMu.Unlock()
		}()
	}
	for _, tu := range tunnels {
		sa, csa, err := tu.charon.WaitEstablished(ctx, tu.name, tu.child, upTimeout)
		if err != nil {
			if ok, perr := vg.proc.Exited(); ok {
				t.Fatalf("our vgw exited during the negotiation (%v)", perr)
			}
			t.Fatalf("%s: %v", tu.opt.Name, err)
		}
		tu.ike, tu.csa = sa, csa
		t.Logf("%s up after %v:%s", tu.opt.Name, time.Since(tInit).Round(time.Millisecond), strongswan.Summary([]strongswan.IKESA{sa}))
	}
	tUp := time.Since(tInit)

	// strongSwan's view: IKEv1 through the NAT on 4500, one CHILD_SA per
	// tunnel, ESP in UDP, the proposals we configured.
	for _, tu := range tunnels {
		sa, csa := tu.ike, tu.csa
		wantLocalPort := 4500
		if tu.opt.NATTPort != 0 {
			wantLocalPort = tu.opt.NATTPort
		}
		if sa.Version != 1 || !sa.Initiator {
			t.Errorf("%s: IKE version %d initiator %v, want IKEv1 initiator", tu.opt.Name, sa.Version, sa.Initiator)
		}
		if sa.LocalPort != wantLocalPort || sa.RemotePort != 4500 || sa.RemoteHost != tu.vgwAddr.String() {
			t.Errorf("%s: IKE_SA %s:%d -> %s:%d, want local port %d -> %s:4500 (NAT-T floated)", tu.opt.Name, sa.LocalHost, sa.LocalPort, sa.RemoteHost, sa.RemotePort, wantLocalPort, tu.vgwAddr)
		}
		if sa.Raw["nat-local"] != "yes" {
			t.Errorf("%s: charon did not detect that it is behind the NAT (nat-local=%q)", tu.opt.Name, sa.Raw["nat-local"])
		}
		if sa.LocalID != connCGWPublic.String() || sa.RemoteID != tu.vgwAddr.String() {
			t.Errorf("%s: identities %s -> %s, want %s -> %s", tu.opt.Name, sa.LocalID, sa.RemoteID, connCGWPublic, tu.vgwAddr)
		}
		if got := sa.Proposal(); got != wantIKEChosen {
			t.Errorf("%s: IKE proposal %q, want %q", tu.opt.Name, got, wantIKEChosen)
		}
		if got, want := csa.Proposal(), "AES_GCM_16-128/MODP_2048"; got != want {
			t.Errorf("%s: ESP proposal %q, want %q", tu.opt.Name, got, want)
		}
		if csa.Mode != "TUNNEL" || csa.Protocol != "ESP" || !csa.Encap {
			t.Errorf("%s: CHILD_SA %s %s encap %v, want TUNNEL ESP in UDP", tu.opt.Name, csa.Mode, csa.Protocol, csa.Encap)
		}
		if !slices.Equal(csa.LocalTS, []string{"0.0.0.0/0"}) || !slices.Equal(csa.RemoteTS, []string{"0.0.0.0/0"}) {
			t.Errorf("%s: CHILD_SA selectors %v === %v, want 0.0.0.0/0 both ways", tu.opt.Name, csa.LocalTS, csa.RemoteTS)
		}
		if n := len(sa.Children); n != 1 {
			t.Errorf("%s: %d CHILD_SAs, want 1", tu.opt.Name, n)
		}
	}

	// Our vgw: both tunnels UP with BGP Established (AWS TunnelState), the
	// SA pairs are strongSwan's, NAT-T in use.
	waitTunnels(t, vg, 15*time.Second, "tunnel1", "tunnel2")
	tBGPvgw := time.Since(tInit)
	ps, err := bd.WaitEstablished(ctx, 10*time.Second, "tun1", "tun2")
	if err != nil {
		t.Fatal(err)
	}
	tBGPbird := time.Since(tInit)
	t.Logf("BIRD %s `show protocols`:\n%s", birdVersion, bird.FormatProtocols(ps))
	st, err := control.Dial(vg.control).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tu := range tunnels {
		name := fmt.Sprintf("tunnel%d", tu.n)
		i := slices.IndexFunc(st.Tunnels, func(x status.Tunnel) bool { return x.Name == name })
		if i < 0 {
			t.Fatalf("our vgw has no %s: %+v", name, st.Tunnels)
		}
		ts := st.Tunnels[i]
		t.Logf("our vgw %s: %s phase1 %s phase2 %s %s, nat %v remote behind nat %v floated %v, dpd %s, bgp %s",
			name, ts.Status, ts.Phase1State, ts.Phase2State, ts.Proposal, ts.NATDetected, ts.RemoteBehindNAT, ts.Floated, ts.DPDState, ts.BGPState)
		if !ts.NATDetected || !ts.RemoteBehindNAT || !ts.Floated {
			t.Errorf("our vgw %s: NAT-T not in use (nat %v, remote behind nat %v, floated %v)", name, ts.NATDetected, ts.RemoteBehindNAT, ts.Floated)
		}
		if len(ts.SAs) != 1 {
			t.Errorf("our vgw %s: %d SA pairs, want 1: %+v", name, len(ts.SAs), ts.SAs)
		}
		found := false
		for _, sa := range ts.SAs {
			if strings.EqualFold(sa.InboundSPI, tu.csa.SPIOut) && strings.EqualFold(sa.OutboundSPI, tu.csa.SPIIn) {
				found = true
				if !sa.UDPEncap || !strings.EqualFold(sa.Proposal, "esp-aes128gcm16-modp2048") {
					t.Errorf("our vgw %s: SA %s udp_encap %v, want esp-aes128gcm16-modp2048 in UDP", name, sa.Proposal, sa.UDPEncap)
				}
			}
		}
		if !found {
			t.Errorf("our vgw %s: no SA pair with strongSwan's SPIs (in %s out %s): %+v", name, tu.csa.SPIOut, tu.csa.SPIIn, ts.SAs)
		}
	}

	// Routes both ways: our vgw has 10.10.0.0/16 from AS 65000 over both
	// tunnels, BIRD has 172.31.0.0/16 from AS 64512 over both.
	rv := waitVGWLearns(ctx, t, vg)
	t.Logf("our vgw routing:%s", rv.summary())
	for _, n := range rv.Neighbors {
		if n.State != "Established" || n.PeerASN != 65000 || !slices.Contains(n.Received, onpremNet.String()) {
			t.Errorf("our vgw neighbor %s (%s AS%d): %s, received %v; want Established, AS 65000, %s", n.Tunnel, n.Peer, n.PeerASN, n.State, n.Received, onpremNet)
		}
	}
	brs := waitBIRDLearns(ctx, t, bd, "tun1", "tun2")
	t.Logf("BIRD `show route %s all`:\n%s", vpcNet, bird.FormatRoutes(brs))
	var best *birdCGWTunnel
	for _, r := range brs {
		for _, tu := range tunnels {
			if r.Protocol != tu.bgp {
				continue
			}
			if r.NextHop != tu.vgwInside.String() || r.Iface != tu.charon.TUN() {
				t.Errorf("BIRD path from %s: via %s on %s, want via %s on %s", r.Protocol, r.NextHop, r.Iface, tu.vgwInside, tu.charon.TUN())
			}
			if r.Primary {
				best = tu
			}
		}
	}
	if best == nil {
		t.Fatalf("BIRD has no best path for %s:\n%s", vpcNet, bird.FormatRoutes(brs))
	}
	// BIRD's best path is in the kernel: the data goes into that tunnel's TUN.
	var kr []byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		kr, err = e.cgw.Run(ctx, "ip", "route", "show", "exact", vpcNet.String())
		if err == nil && strings.Contains(string(kr), "via "+best.vgwInside.String()+" dev "+best.charon.TUN()) && strings.Contains(string(kr), "proto bird") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgw kernel route for %s is not BIRD's via %s dev %s: %v\n%s", vpcNet, best.vgwInside, best.charon.TUN(), err, kr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("cgw kernel: %s", strings.TrimSpace(string(kr)))

	// Traffic both ways through strongSwan's ESP and ours; onprem -> vpc
	// leaves the cgw by the charon of BIRD's best path.
	before := childCounters(ctx, t, tunnels)
	pingUntil(t, e.onprem, vpcHost)
	pingUntil(t, e.vpc, onpremHost)
	after := childCounters(ctx, t, tunnels)
	for i, tu := range tunnels {
		dOut, dIn := after[i].PacketsOut-before[i].PacketsOut, after[i].PacketsIn-before[i].PacketsIn
		t.Logf("%s CHILD_SA %s during the pings: %d packets out, %d in", tu.opt.Name, tu.child, dOut, dIn)
		if tu == best && dOut < 3 {
			t.Errorf("%s carries BIRD's best path but sent only %d packets during the pings", tu.opt.Name, dOut)
		}
	}
	checkCounters(t, vg)

	// DPD: our vgw (delay 1 s) probes a tunnel whenever nothing arrived on
	// it for a second (BIRD sends keepalives every 10 s); charon must answer
	// every R-U-THERE with an R-U-THERE-ACK (RFC 3706) on both tunnels.
	tDPD := time.Now()
	var acks, probes map[string][]string
	for {
		probes = vgwLogPeers(vg, "DPD: peer silent, sending R-U-THERE")
		acks = vgwLogPeers(vg, "DPD: R-U-THERE-ACK received")
		if len(acks["tunnel1"]) > 0 && len(acks["tunnel2"]) > 0 {
			break
		}
		if time.Since(tDPD) > 15*time.Second {
			t.Fatalf("our vgw: no R-U-THERE-ACK from strongSwan on both tunnels within 15 s (R-U-THERE sent: %v, acks: %v)", probes, acks)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, name := range []string{"tunnel1", "tunnel2"} {
		t.Logf("DPD on %s: our vgw sent %d R-U-THERE, strongSwan answered %d (from %v)", name, len(probes[name]), len(acks[name]), slices.Compact(acks[name]))
	}
	if st, err := control.Dial(vg.control).Status(ctx); err == nil {
		for _, ts := range st.Tunnels {
			if ts.DPDState != "alive" && ts.DPDState != "probing" {
				t.Errorf("our vgw %s: DPD state %q", ts.Name, ts.DPDState)
			}
		}
	}
	t.Logf("timings: tunnels up %v after initiate, BGP established on our vgw %v / in BIRD %v, whole test %v",
		tUp.Round(time.Millisecond), tBGPvgw.Round(time.Millisecond), tBGPbird.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}

// vgwLogPeers returns, per tunnel, the peer field of every line of our
// vgw's JSON log whose message is msg.
func vgwLogPeers(g *gateway, msg string) map[string][]string {
	b, err := os.ReadFile(g.proc.Log)
	if err != nil {
		return nil
	}
	m := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		var f struct {
			Msg    string `json:"msg"`
			Tunnel string `json:"tunnel"`
			Peer   string `json:"peer"`
		}
		if json.Unmarshal([]byte(line), &f) == nil && f.Msg == msg {
			m[f.Tunnel] = append(m[f.Tunnel], f.Peer)
		}
	}
	return m
}

// childCounters returns each tunnel's CHILD_SA as charon reports it now.
func childCounters(ctx context.Context, t *testing.T, tunnels []*birdCGWTunnel) []strongswan.ChildSA {
	t.Helper()
	out := make([]strongswan.ChildSA, len(tunnels))
	for i, tu := range tunnels {
		sas, err := tu.charon.ListSAs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, sa := range sas {
			for _, c := range sa.Children {
				if sa.Name == tu.name && c.Name == tu.child && c.State == "INSTALLED" {
					out[i] = c
				}
			}
		}
		if out[i].SPIIn == "" {
			t.Fatalf("%s: CHILD_SA %s no longer installed:%s", tu.opt.Name, tu.child, strongswan.Summary(sas))
		}
	}
	return out
}
