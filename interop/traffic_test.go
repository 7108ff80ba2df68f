package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// Hosts behind the gateways, as in the reference lab.
var (
	onpremNet  = netip.MustParsePrefix("10.10.0.0/16")
	vpcNet     = netip.MustParsePrefix("172.31.0.0/16")
	onpremHost = netip.MustParseAddr("10.10.1.10")
	vpcHost    = netip.MustParseAddr("172.31.1.10")
)

const transferBytes = 4 << 20 // TCP transfer size, each direction

// addHosts adds the onprem host behind the cgw and the vpc host behind the
// vgw.
func (e *env) addHosts() (onprem, vpc *netlab.NS) {
	e.t.Helper()
	P, A := netip.MustParsePrefix, netip.MustParseAddr
	must := func(err error) {
		e.t.Helper()
		if err != nil {
			e.t.Fatalf("topology: %v", err)
		}
	}
	onprem, err := e.lab.AddNS("onprem")
	must(err)
	vpc, err = e.lab.AddNS("vpc")
	must(err)
	must(e.lab.Link(onprem, "lan0", P("10.10.1.10/24"), e.cgw, "lan0", P("10.10.1.1/24")))
	must(e.lab.Link(vpc, "lan0", P("172.31.1.10/24"), e.vgw, "vpc0", P("172.31.1.1/24")))
	must(onprem.AddRoute(P("0.0.0.0/0"), A("10.10.1.1")))
	must(vpc.AddRoute(P("0.0.0.0/0"), A("172.31.1.1")))
	return onprem, vpc
}

// ourConfig is a gateway configuration with a data path.
func ourConfig(dir, name string, local, localID, remote netip.Addr, lts, rts netip.Prefix, start bool, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log: {format: json, level: debug}\ncontrol: {listen: \"unix:%s\"}\nkey_log: %s\nlab_timers: true\n",
		filepath.Join(dir, name+".sock"), filepath.Join(dir, name+"-keys.log"))
	fmt.Fprintf(&b, "data_path: {tun: vpnlab0, mtu: 1400}\n")
	fmt.Fprintf(&b, "tunnels:\n  - name: %s\n    local_address: %s\n    remote_address: %s\n    psk_env: %s\n    local_ts: %s\n    remote_ts: %s\n",
		tunnelName, local, remote, pskEnv, lts, rts)
	if localID != local {
		fmt.Fprintf(&b, "    local_id: %s\n", localID)
	}
	if start {
		b.WriteString("    startup_action: start\n")
	}
	b.WriteString(extra)
	return b.String()
}

// startOurGateways starts our vgw binary vgwBin (responder) and our cgw
// (initiator) for the topology, with phase 2 proposal p2 and extra tunnel
// lines; cgwTop is prepended to the cgw's configuration (e.g. a capture
// line). Both share one fresh PSK.
func (e *env) startOurGateways(vgwBin, cgwBin, p2, extra, cgwTop string) (cg, vg *gateway) {
	e.t.Helper()
	tp, dir, psk := e.topo, e.lab.LogDir(), newPSK(e.t)
	p := fmt.Sprintf("    phase1: {proposals: [aes256-sha256-modp2048]}\n    phase2: {proposals: [%s]}\n", p2) + extra
	vg = e.startGateway(vgwBin, "vgw", ourConfig(dir, "vgw", tp.vgwAddr, tp.vgwAddr, tp.cgwID, vpcNet, onpremNet, false, p), psk, e.vgw)
	cg = e.startGateway(cgwBin, "cgw", cgwTop+ourConfig(dir, "cgw", tp.cgwLocal, tp.cgwID, tp.vgwAddr, onpremNet, vpcNet, true, p), psk, e.cgw)
	return cg, vg
}

// waitOurUp waits until our gateway reports phase 2 Established.
func waitOurUp(t *testing.T, g *gateway) status.Tunnel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	cl := control.Dial(g.control)
	var last status.Tunnel
	for {
		if tu, err := cl.Tunnel(ctx, tunnelName); err == nil {
			last = tu
			if tu.Phase2State == "Established" && len(tu.SAs) > 0 {
				return tu
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("our %s: tunnel not up within %v: %+v", g.name, upTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pingUntil pings dst from ns until three echo replies in a row arrive or
// the deadline passes (the first packets may leave before the peer has
// installed its SAs).
func pingUntil(t *testing.T, ns *netlab.NS, dst netip.Addr) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var out []byte
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err = ns.Run(ctx, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", dst.String())
		cancel()
		if err == nil {
			t.Logf("ping %s -> %s: %s", ns.Role(), dst, lastLine(out))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("ping %s -> %s failed: %v\n%s", ns.Role(), dst, err, out)
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// tcpServer and tcpClient are python3 programs (python3 is part of every
// Debian install): the server reads one connection to the end and prints
// the SHA-256 and length of what arrived; the client sends n pseudo-random
// bytes and prints the same of what it sent.
const tcpServer = `import hashlib,socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(("0.0.0.0",int(sys.argv[1]))); s.listen(1)
print("listening",flush=True)
c,_=s.accept(); h=hashlib.sha256(); n=0
while True:
    b=c.recv(65536)
    if not b: break
    h.update(b); n+=len(b)
print(n,h.hexdigest(),flush=True)
`
const tcpClient = `import hashlib,random,socket,sys
r=random.Random(int(sys.argv[3])); n=int(sys.argv[4]); h=hashlib.sha256(); c=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=20); left=n
while left>0:
    b=r.randbytes(min(left,65536)); c.sendall(b); h.update(b); left-=len(b)
c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
print(n,h.hexdigest(),flush=True)
`

// tcpTransfer sends n bytes over TCP from client to server (at dst) and
// checks that exactly those bytes arrived.
func tcpTransfer(t *testing.T, client, server *netlab.NS, dst netip.Addr, n int) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3 is needed for the TCP transfer check: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	port := "5301"
	srv := server.Command(ctx, "python3", "-c", tcpServer, port)
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	buf := make([]byte, 256)
	got := ""
	for !strings.Contains(got, "listening") {
		k, err := stdout.Read(buf)
		if err != nil {
			t.Fatalf("TCP server in %s did not start: %v", server.Role(), err)
		}
		got += string(buf[:k])
	}
	start := time.Now()
	out, err := client.Run(ctx, "python3", "-c", tcpClient, dst.String(), port, "42", fmt.Sprint(n))
	if err != nil {
		t.Fatalf("TCP client %s -> %s: %v\n%s", client.Role(), dst, err, out)
	}
	elapsed := time.Since(start)
	got = ""
	for !strings.Contains(got, "\n") || strings.Count(got, "\n") < 2 {
		k, err := stdout.Read(buf)
		got += string(buf[:k])
		if err != nil {
			break
		}
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	recv := strings.TrimSpace(lines[len(lines)-1])
	sent := strings.TrimSpace(string(out))
	if recv != sent {
		t.Fatalf("TCP %s -> %s: sent %q, server received %q", client.Role(), server.Role(), sent, recv)
	}
	t.Logf("TCP %s -> %s: %d bytes intact (sha256 match) in %v", client.Role(), server.Role(), n, elapsed.Round(time.Millisecond))
}

// iperf runs iperf3 for secs seconds from client to server (at dst) and
// logs the received rate; without iperf3 installed it only logs that.
func iperf(t *testing.T, client, server *netlab.NS, dst netip.Addr, secs int) {
	t.Helper()
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Logf("iperf3 not installed: throughput not measured (.ci/run installs it)")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+20)*time.Second)
	defer cancel()
	p, err := server.Start(ctx, "iperf3", "-s", "-1", "-p", "5302")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	for i := 0; ; i++ {
		ss, _ := server.Run(ctx, "ss", "-Hltn", "sport = :5302")
		if strings.Contains(string(ss), "5302") {
			break
		}
		if i == 100 {
			t.Fatalf("iperf3 server in %s not listening after 5 s: %s", server.Role(), p.Tail(5))
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := client.Run(ctx, "iperf3", "-c", dst.String(), "-p", "5302", "-t", fmt.Sprint(secs), "-J")
	if err != nil {
		t.Fatalf("iperf3 %s -> %s: %v\n%s", client.Role(), dst, err, out)
	}
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				Bytes       float64 `json:"bytes"`
				BitsPerSec  float64 `json:"bits_per_second"`
				Retransmits int     `json:"retransmits"`
			} `json:"sum_received"`
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("iperf3 JSON: %v", err)
	}
	if r.End.SumReceived.Bytes == 0 {
		t.Fatalf("iperf3 %s -> %s: nothing received (iperf3 error %q)", client.Role(), dst, r.Error)
	}
	t.Logf("iperf3 %s -> %s: %.0f Mbit/s over %d s, %d retransmits", client.Role(), dst, r.End.SumReceived.BitsPerSec/1e6, secs, r.End.SumSent.Retransmits)
}

// iperfSeconds is the iperf3 duration: 2 s, or VPNLAB_IPERF_SECONDS.
func iperfSeconds() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("VPNLAB_IPERF_SECONDS"), &n); err == nil && n > 0 && n <= 60 {
		return n
	}
	return 2
}

// checkCounters asks our gateway for its SA counters: traffic both ways and
// no drops of authentic traffic.
func checkCounters(t *testing.T, g *gateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := control.Dial(g.control).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tu := range st.Tunnels {
		for _, sa := range tu.SAs {
			c := sa.Counters
			if c == nil {
				t.Fatalf("our %s: SA %s has no counters in the status API", g.name, sa.InboundSPI)
			}
			t.Logf("our %s: SA %s/%s %s in %d pkts %d B, out %d pkts %d B, drops %v", g.name, sa.InboundSPI, sa.OutboundSPI, sa.Proposal,
				c.PacketsIn, c.BytesIn, c.PacketsOut, c.BytesOut, c.Drops)
			if c.PacketsIn == 0 || c.PacketsOut == 0 {
				t.Errorf("our %s: SA %s carried no traffic one way", g.name, sa.InboundSPI)
			}
			for _, r := range []string{"icv", "padding", "malformed", "selector"} {
				if c.Drops[r] != 0 {
					t.Errorf("our %s: SA %s dropped %d packets (%s)", g.name, sa.InboundSPI, c.Drops[r], r)
				}
			}
		}
	}
}

// TestTrafficBetweenOurGateways: our cgw and vgw, separate processes in
// their namespaces, carry ping and TCP between onprem and vpc hosts over
// ESP in UDP, raw ESP and AH, directly and through NAT.
func TestTrafficBetweenOurGateways(t *testing.T) {
	if err := netlab.Usable(); err != nil {
		t.Skipf("traffic: %v", err)
	}
	vgwBin, cgwBin := buildGateway(t, "vgw"), buildGateway(t, "cgw")
	cases := []struct {
		name  string
		topo  topo
		p2    string
		extra string
		encap bool
		proto string
	}{
		{"esp-udp-gcm", topologies[0], "esp-aes128gcm16-modp2048", "    force_encap: true\n", true, "esp"},
		{"esp-raw-cbc", topologies[0], "esp-aes256-sha256-modp2048", "", false, "esp"},
		{"ah-raw", topologies[0], "ah-sha256-modp2048", "", false, "ah"},
		{"nat-esp-udp", topologies[1], "esp-aes128-sha256-modp2048", "", true, "esp"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.topo)
			onprem, vpc := e.addHosts()
			vgw := vgwBin
			if tc.proto == "ah" {
				vgw = cgwBin // the vgw profile refuses AH, as AWS does; a cgw answers instead
			}
			cg, vg := e.startOurGateways(vgw, cgwBin, tc.p2, tc.extra, "")
			tu := waitOurUp(t, cg)
			sa := tu.SAs[0]
			if sa.UDPEncap != tc.encap || sa.Protocol != tc.proto {
				t.Fatalf("SA %+v, want protocol %s udp_encap %v", sa, tc.proto, tc.encap)
			}
			pingUntil(t, onprem, vpcHost)
			pingUntil(t, vpc, onpremHost)
			tcpTransfer(t, onprem, vpc, vpcHost, transferBytes)
			tcpTransfer(t, vpc, onprem, onpremHost, transferBytes)
			iperf(t, onprem, vpc, vpcHost, iperfSeconds())
			checkCounters(t, cg)
			checkCounters(t, vg)
		})
	}
}

// TestTrafficWithStrongSwan: strongSwan's userspace ESP (kernel-libipsec,
// ESP in UDP) and our gateway carry ping and TCP both ways, with charon as
// the customer gateway (initiator, behind NAT) and as the AWS side.
func TestTrafficWithStrongSwan(t *testing.T) {
	requirements(t)
	for _, side := range []string{"charon-cgw", "charon-vgw"} {
		t.Run(side, func(t *testing.T) {
			tp := topologies[1]
			if side == "charon-vgw" {
				tp = topologies[0]
			}
			e := newEnv(t, tp)
			onprem, vpc := e.addHosts()
			psk := newPSK(t)
			dir := e.lab.LogDir()
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			p := fmt.Sprintf("    phase1: {proposals: [%s]}\n    phase2: {proposals: [esp-aes128gcm16-modp2048]}\n", ikeProposal)
			conn := strongswan.Conn{
				Name: strongswanConn, Proposals: []string{ikeProposal}, Encap: true, PSK: psk,
				DPDDelay: "10s", DPDTimeout: "30s", RekeyTime: "0s", KeyingTries: "1",
				Children: []strongswan.Child{{Name: strongswanCSA, ESPProposals: []string{"aes128gcm16-modp2048"},
					LifeTime: "3600s", RekeyTime: "0s", DPDAction: "clear"}},
			}
			var g *gateway
			var c *strongswan.Charon
			if side == "charon-cgw" {
				conn.LocalAddrs, conn.RemoteAddrs = tp.cgwLocal.String(), tp.vgwAddr.String()
				conn.LocalID, conn.RemoteID = tp.cgwID.String(), tp.vgwAddr.String()
				conn.Children[0].LocalTS, conn.Children[0].RemoteTS = []string{onpremNet.String()}, []string{vpcNet.String()}
				g = e.startGateway(buildGateway(t, "vgw"), "vgw", ourConfig(dir, "vgw", tp.vgwAddr, tp.vgwAddr, tp.cgwID, vpcNet, onpremNet, false, p), psk, e.vgw)
				c = e.startCharon(ctx, e.cgw, conn)
				go c.Initiate(ctx, strongswanCSA, upTimeout)
			} else {
				conn.LocalAddrs, conn.RemoteAddrs = tp.vgwAddr.String(), tp.cgwID.String()
				conn.LocalID, conn.RemoteID = tp.vgwAddr.String(), tp.cgwID.String()
				conn.Children[0].LocalTS, conn.Children[0].RemoteTS = []string{vpcNet.String()}, []string{onpremNet.String()}
				c = e.startCharon(ctx, e.vgw, conn)
				g = e.startGateway(buildGateway(t, "cgw"), "cgw", ourConfig(dir, "cgw", tp.cgwLocal, tp.cgwID, tp.vgwAddr, onpremNet, vpcNet, true, p), psk, e.cgw)
			}
			e.waitUp(ctx, c, g)
			waitOurUp(t, g)
			pingUntil(t, onprem, vpcHost)
			pingUntil(t, vpc, onpremHost)
			tcpTransfer(t, onprem, vpc, vpcHost, transferBytes)
			tcpTransfer(t, vpc, onprem, onpremHost, transferBytes)
			iperf(t, onprem, vpc, vpcHost, 2)
			iperf(t, vpc, onprem, onpremHost, 2)
			checkCounters(t, g)
		})
	}
}

// TestTransportModeBetweenOurGateways: transport mode protects traffic
// between the gateways' own outside addresses (raw ESP and AH, which no
// peer on this kernel speaks): a policy rule sends unmarked packets to the
// peer into the TUN device, our sockets are marked and bypass it.
func TestTransportModeBetweenOurGateways(t *testing.T) {
	if err := netlab.Usable(); err != nil {
		t.Skipf("traffic: %v", err)
	}
	cgwBin := buildGateway(t, "cgw") // the vgw profile allows tunnel mode only, as AWS
	for _, p2 := range []string{"esp-aes128-sha256-modp2048", "ah-sha256"} {
		t.Run(p2, func(t *testing.T) {
			tp := topologies[0]
			e := newEnv(t, tp)
			psk := newPSK(t)
			dir := e.lab.LogDir()
			p := fmt.Sprintf("    phase1: {proposals: [aes256-sha256-modp2048]}\n    phase2: {mode: transport, proposals: [%s]}\n", p2)
			c32, v32 := netip.PrefixFrom(tp.cgwLocal, 32), netip.PrefixFrom(tp.vgwAddr, 32)
			vg := e.startGateway(cgwBin, "vgw", ourConfig(dir, "vgw", tp.vgwAddr, tp.vgwAddr, tp.cgwID, v32, c32, false, p), psk, e.vgw)
			cg := e.startGateway(cgwBin, "cgw", ourConfig(dir, "cgw", tp.cgwLocal, tp.cgwID, tp.vgwAddr, c32, v32, true, p), psk, e.cgw)
			tu := waitOurUp(t, cg)
			if tu.SAs[0].Mode != "transport" {
				t.Fatalf("SA mode %q, want transport", tu.SAs[0].Mode)
			}
			pingUntil(t, e.cgw, tp.vgwAddr)
			pingUntil(t, e.vgw, tp.cgwLocal)
			tcpTransfer(t, e.cgw, e.vgw, tp.vgwAddr, transferBytes)
			tcpTransfer(t, e.vgw, e.cgw, tp.cgwLocal, transferBytes)
			checkCounters(t, cg)
			checkCounters(t, vg)
		})
	}
}
