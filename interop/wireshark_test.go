package interop

// TestWireshark*: tshark must decode every IKE message our engines send, with
// the keys they export (package keylog), without malformed packets or expert
// warnings. Two in-process engines (vgw responder, cgw initiator) run on
// loopback on the real ports 500/4500; each writes its own capture
// (package capture) and key log. The scenario: phase 1 (main or aggressive
// mode), quick mode with PFS, a phase 2 rekey (second quick mode), then
// Terminate on the cgw (informational DELETEs for ESP and ISAKMP).

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/capture"
	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/keylog"
)

const (
	wsTunnel  = "tunnel1"
	wsTimeout = 10 * time.Second
)

var wsPSK = policy.Secret("wireshark.test_psk1")

type wsScenario struct {
	nat        bool // cgw -> relay (127.A.B.3 / .4) -> vgw: IKE floats to 4500
	aggressive bool
}

func TestWiresharkDecodesMainMode(t *testing.T) {
	wsRun(t, wsScenario{})
}

func TestWiresharkDecodesNATTraversal(t *testing.T) {
	wsRun(t, wsScenario{nat: true})
}

func TestWiresharkDecodesAggressiveMode(t *testing.T) {
	wsRun(t, wsScenario{aggressive: true})
}

func wsRequirements(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("wireshark: needs root to bind UDP 500/4500 on loopback addresses")
	}
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("wireshark: tshark is not installed (apt-get install tshark)")
	}
	return tshark
}

// wsAddrs picks 127.A.B.1 (cgw), .2 (vgw) and, with NAT, .3/.4 (relay) such
// that every needed socket can be bound; ports are 500/4500 unless they are
// taken (e.g. by a charon on the wildcard address), then random high ports.
func wsAddrs(t *testing.T, nat bool) (addrs [4]netip.Addr, ports policy.Ports) {
	t.Helper()
	n := 2
	if nat {
		n = 4
	}
	try := func(ports policy.Ports) bool {
		x, y := byte(rand.IntN(250)+1), byte(rand.IntN(250)+1)
		for i := range addrs {
			addrs[i] = netip.AddrFrom4([4]byte{127, x, y, byte(i + 1)})
		}
		var conns []*net.UDPConn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for _, a := range addrs[:n] {
			for _, p := range []uint16{ports.IKE, ports.NATT} {
				c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, p)))
				if err != nil {
					return false
				}
				conns = append(conns, c)
			}
		}
		return true
	}
	for i := 0; i < 5; i++ {
		if try(policy.DefaultPorts) {
			return addrs, policy.DefaultPorts
		}
	}
	for i := 0; i < 20; i++ {
		p := uint16(20000 + rand.IntN(20000))
		ports = policy.Ports{IKE: p, NATT: p + 1}
		if try(ports) {
			t.Logf("UDP 500/4500 not available on loopback: using %d/%d (tshark gets Decode As options)", ports.IKE, ports.NATT)
			return addrs, ports
		}
	}
	t.Fatal("no loopback addresses/ports could be bound")
	return
}

// wsGateway is one running engine with its capture and key log.
type wsGateway struct {
	name   string
	e      *ike.Engine
	pcap   *capture.Writer
	keys   *keylog.Writer
	pcapF  string
	keysF  string
	events <-chan status.Event
	logs   *wsLogBuffer
	cancel context.CancelFunc
	done   chan error
}

type wsLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *wsLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *wsLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func wsStart(t *testing.T, dir, name string, cfg policy.Config) *wsGateway {
	t.Helper()
	g := &wsGateway{name: name, logs: &wsLogBuffer{}, done: make(chan error, 1),
		pcapF: filepath.Join(dir, name+".pcap"), keysF: filepath.Join(dir, name+".keys")}
	var err error
	if g.pcap, err = capture.Create(g.pcapF); err != nil {
		t.Fatal(err)
	}
	if g.keys, err = keylog.Open(g.keysF); err != nil {
		t.Fatal(err)
	}
	lg := logrus.New()
	lg.SetOutput(g.logs)
	lg.SetLevel(logrus.DebugLevel)
	g.e, err = ike.NewEngine(cfg, ike.WithLogger(lg.WithField("gw", name)),
		ike.WithPacketSink(g.pcap), ike.WithKeyLogger(g.keys))
	if err != nil {
		t.Fatalf("%s: NewEngine: %v", name, err)
	}
	g.events, _ = g.e.Subscribe()
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.done <- g.e.Run(ctx) }()
	t.Cleanup(func() {
		g.stop(t)
		if t.Failed() {
			t.Logf("---- %s log ----\n%s", name, g.logs.String())
		}
	})
	return g
}

// stop ends the engine (once) and closes its capture and key log.
func (g *wsGateway) stop(t *testing.T) {
	t.Helper()
	if g.cancel == nil {
		return
	}
	g.cancel()
	g.cancel = nil
	select {
	case err := <-g.done:
		if err != nil {
			t.Errorf("%s: Run: %v", g.name, err)
		}
	case <-time.After(wsTimeout):
		t.Errorf("%s: engine did not stop", g.name)
	}
	if err := g.pcap.Close(); err != nil {
		t.Errorf("%s: capture: %v", g.name, err)
	}
	if err := g.keys.Close(); err != nil {
		t.Errorf("%s: key log: %v", g.name, err)
	}
}

func (g *wsGateway) wait(t *testing.T, typ string) status.Event {
	t.Helper()
	timeout := time.After(wsTimeout)
	for {
		select {
		case ev := <-g.events:
			if ev.Type == "error" || ev.Type == "phase2-failed" {
				t.Errorf("%s: %s event: %v", g.name, ev.Type, ev.Detail)
			}
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("%s: no %q event within %v", g.name, typ, wsTimeout)
		}
	}
}

// wsRelay forwards UDP like a NAT: the cgw talks to cgwSide, the vgw sees
// the cgw's packets coming from vgwSide (ports unchanged).
func wsRelay(t *testing.T, cgwSide, vgwSide, cgwAddr, vgwAddr netip.Addr, ports policy.Ports) {
	t.Helper()
	var conns []*net.UDPConn
	var wg sync.WaitGroup
	pump := func(in, out *net.UDPConn, to netip.AddrPort) {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := in.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			out.WriteToUDPAddrPort(buf[:n], to)
		}
	}
	for _, p := range []uint16{ports.IKE, ports.NATT} {
		a, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(cgwSide, p)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(vgwSide, p)))
		if err != nil {
			a.Close()
			t.Fatal(err)
		}
		conns = append(conns, a, b)
		wg.Add(2)
		go pump(a, b, netip.AddrPortFrom(vgwAddr, p))
		go pump(b, a, netip.AddrPortFrom(cgwAddr, p))
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	})
}

func wsTunnelConfig(local, remote netip.Addr, ports policy.Ports) policy.Tunnel {
	return policy.Tunnel{
		Name: wsTunnel, LocalAddr: local, RemoteAddr: remote, PSK: wsPSK, RemotePorts: ports,
		Phase1: policy.Phase1{
			Proposals: []policy.Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 14}},
			Lifetime:  28800 * time.Second,
		},
		Phase2: policy.Phase2{
			Proposals: []policy.Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128,
				Integrity: isakmp.AuthHMACSHA2256, PFSGroup: 14}},
			Lifetime: 3600 * time.Second,
			LocalTS:  netip.MustParsePrefix("10.10.0.0/16"),
			RemoteTS: netip.MustParsePrefix("172.31.0.0/16"),
		},
		RekeyMargin: 270 * time.Second, RekeyFuzz: 100, NATT: true,
	}
}

func wsRun(t *testing.T, sc wsScenario) {
	tshark := wsRequirements(t)
	t.Parallel()
	dir := t.TempDir()
	addrs, ports := wsAddrs(t, sc.nat)
	c, v := addrs[0], addrs[1]
	cgwPeer, vgwPeer := v, c // where each gateway sends to
	if sc.nat {
		rc, rv := addrs[2], addrs[3]
		wsRelay(t, rc, rv, c, v, ports)
		cgwPeer, vgwPeer = rc, rv
	}
	vt := wsTunnelConfig(v, vgwPeer, ports)
	vt.Phase2.LocalTS, vt.Phase2.RemoteTS = vt.Phase2.RemoteTS, vt.Phase2.LocalTS
	vt.RemoteID = c
	vt.Phase1.AllowAggressive = sc.aggressive
	ct := wsTunnelConfig(c, cgwPeer, ports)
	ct.RemoteID = v
	ct.StartupAction = policy.StartupStart
	if sc.aggressive {
		ct.Phase1.Exchange = policy.AggressiveMode
	}
	fast := func(tc policy.Tunnel) policy.Config {
		return policy.Config{Tunnels: []policy.Tunnel{tc}, Ports: ports,
			RetransmitTimeout: 2 * time.Second, RetransmitBase: 1.5, RetransmitTries: 3}
	}
	vgw := wsStart(t, dir, "vgw", fast(vt))
	time.Sleep(20 * time.Millisecond) // let the responder bind first
	cgw := wsStart(t, dir, "cgw", fast(ct))

	cgw.wait(t, "phase2-up")
	vgw.wait(t, "phase2-up")
	if sc.nat {
		for _, g := range []*wsGateway{cgw, vgw} {
			st := g.e.Status()
			if len(st.Tunnels) != 1 || !st.Tunnels[0].NATDetected || !st.Tunnels[0].Floated {
				t.Fatalf("%s: NAT-T not in use: %+v", g.name, st.Tunnels)
			}
		}
	}
	if err := cgw.e.Rekey(wsTunnel, 2); err != nil {
		t.Fatal(err)
	}
	cgw.wait(t, "phase2-up")
	vgw.wait(t, "phase2-up")
	if err := cgw.e.Terminate(wsTunnel); err != nil {
		t.Fatal(err)
	}
	vgw.wait(t, "phase1-down")
	time.Sleep(100 * time.Millisecond) // the last datagrams reach both sinks
	counts := map[string]int{}
	for _, g := range []*wsGateway{cgw, vgw} {
		g.stop(t)
		counts[g.name] = g.pcap.Count()
	}

	var decodeAs []string
	if ports != policy.DefaultPorts {
		decodeAs = []string{"-d", fmt.Sprintf("udp.port==%d,isakmp", ports.IKE), "-d", fmt.Sprintf("udp.port==%d,udpencap", ports.NATT)}
	}
	for _, g := range []*wsGateway{cgw, vgw} {
		t.Run(g.name+"_capture", func(t *testing.T) {
			wsCheckCapture(t, tshark, g.pcapF, g.keysF, decodeAs, counts[g.name], sc, ports)
		})
	}
}

// wsTshark runs tshark on pcap with the key log's options and a private,
// empty configuration directory.
func wsTshark(t *testing.T, tshark, pcap string, opts []string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"-n", "-r", pcap}, opts...)
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, tshark, args...)
	cmd.Env = append(os.Environ(), "WIRESHARK_CONFIG_DIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || ctx.Err() != nil {
			t.Fatalf("tshark %s: %v\n%s", strings.Join(extra, " "), err, wsStderr(stderr.String()))
		}
		t.Fatal(err)
	}
	if s := wsStderr(stderr.String()); s != "" {
		t.Errorf("tshark %s printed on stderr:\n%s", strings.Join(extra, " "), s)
	}
	return string(out)
}

// wsStderr drops tshark's usual notice about running as root.
func wsStderr(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == "" || strings.Contains(l, `Running as user "root"`) {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// wsFrame is one frame of tshark -V output.
type wsFrame struct {
	n    int
	text string
}

var wsFrameStart = regexp.MustCompile(`(?m)^Frame (\d+): `)

func wsSplitFrames(v string) []wsFrame {
	idx := wsFrameStart.FindAllStringSubmatchIndex(v, -1)
	var out []wsFrame
	for i, m := range idx {
		end := len(v)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		var n int
		fmt.Sscanf(v[m[2]:m[3]], "%d", &n)
		out = append(out, wsFrame{n: n, text: v[m[0]:end]})
	}
	return out
}

// wsExchangeLine finds the ISAKMP exchange type name, e.g. "Identity
// Protection (Main Mode)".
var wsExchangeLine = regexp.MustCompile(`(?m)^\s+Exchange type: (.+) \(\d+\)$`)

const wsISAKMP = "\nInternet Security Association and Key Management Protocol\n"

// wsTsharkChecks are preferences that make tshark verify the IP and UDP
// checksums the capture writer computed (a wrong one is an expert error).
var wsTsharkChecks = []string{"-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"}

func wsCheckCapture(t *testing.T, tshark, pcap, keys string, decodeAs []string, written int, sc wsScenario, ports policy.Ports) {
	opts, err := keylog.TsharkOptions(keys)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(opts, "\n"), "uat:"+keylog.TableIKEv1+":"); n != 1 {
		t.Errorf("key log has %d ISAKMP SA records, want 1", n)
	}
	opts = append(append(opts, decodeAs...), wsTsharkChecks...)

	summary := wsTshark(t, tshark, pcap, opts)
	t.Logf("tshark -r %s (%d datagrams written):\n%s", filepath.Base(pcap), written, summary)
	verbose := wsTshark(t, tshark, pcap, opts, "-V")
	expert := wsTshark(t, tshark, pcap, opts, "-q", "-z", "expert,warn")
	if t.Failed() {
		return
	}
	defer func() {
		if !t.Failed() {
			return
		}
		if dir := os.Getenv("VPNLAB_WIRESHARK_KEEP"); dir != "" {
			prefix := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"_")
			os.WriteFile(prefix+"tshark-V.txt", []byte(verbose), 0o600)
			for _, f := range []string{pcap, keys} {
				b, _ := os.ReadFile(f)
				os.WriteFile(prefix+filepath.Base(f), b, 0o600)
			}
			t.Logf("capture, key log and tshark -V output kept as %s*", prefix)
		} else {
			t.Log("set VPNLAB_WIRESHARK_KEEP=<dir> to keep the capture, key log and tshark -V output")
		}
	}()
	if strings.Contains(expert, "Warnings (") || strings.Contains(expert, "Errors (") {
		t.Errorf("tshark expert info (warnings and errors):\n%s", expert)
	}

	frames := wsSplitFrames(verbose)
	if len(frames) != written {
		t.Fatalf("tshark shows %d frames, the capture writer wrote %d datagrams", len(frames), written)
	}
	var (
		exchanges = map[string]int{}
		found     = map[string]int{}
	)
	problem := func(f wsFrame, format string, args ...any) {
		t.Errorf("frame %d: %s", f.n, fmt.Sprintf(format, args...))
	}
	for _, f := range frames {
		for _, l := range strings.Split(f.text, "\n") {
			if strings.Contains(l, "Malformed") || strings.Contains(l, "[Expert Info (Warning") ||
				strings.Contains(l, "[Expert Info (Error") {
				problem(f, "tshark: %s", strings.TrimSpace(l))
			}
		}
		if !strings.Contains(f.text, ":isakmp]") {
			problem(f, "not dissected as ISAKMP")
			continue
		}
		m := wsExchangeLine.FindStringSubmatch(f.text)
		if m == nil {
			problem(f, "no ISAKMP exchange type")
			continue
		}
		ex := m[1]
		exchanges[ex]++
		// What follows the ISAKMP header line: the dissected message.
		msg := f.text[strings.Index(f.text, wsISAKMP):]
		has := func(ss ...string) bool {
			for _, s := range ss {
				if !strings.Contains(msg, s) {
					return false
				}
			}
			return true
		}
		natt := strings.Contains(f.text, "Src Port: 4500,") || strings.Contains(f.text, fmt.Sprintf("Src Port: %d,", ports.NATT))
		if natt && !strings.Contains(f.text, "Non-ESP Marker") {
			problem(f, "%s on the NAT-T port without the non-ESP marker", ex)
		}
		encrypted := strings.Contains(msg, "= Encryption: Encrypted")
		if encrypted {
			_, dec, _ := strings.Cut(msg, "Encrypted Data (")
			if !strings.Contains(dec, "Payload: ") {
				problem(f, "%s: tshark could not decrypt it with the exported key", ex)
				continue
			}
		}
		switch ex {
		case "Identity Protection (Main Mode)":
			switch {
			case !encrypted && has("Payload: Security Association (1)", "Payload: Proposal (2)", "Payload: Transform (3)"):
				found["MM1/2"]++
			case !encrypted && has("Payload: Key Exchange (4)", "Payload: Nonce (10)"):
				found["MM3/4"]++
				if sc.nat && !has("Payload: NAT-D (RFC 3947) (20)") {
					problem(f, "MM3/MM4 without NAT-D payloads")
				}
			case encrypted && has("Payload: Identification (5)", "ID_IPV4_ADDR: ", "Payload: Hash (8)", "Hash DATA: "):
				found["MM5/6"]++
				if sc.nat != natt {
					problem(f, "MM5/MM6 on the wrong port (NAT-T scenario: %v)", sc.nat)
				}
			default:
				problem(f, "main mode message with unexpected contents")
			}
		case "Aggressive":
			switch {
			case !encrypted && has("Payload: Security Association (1)", "Payload: Key Exchange (4)", "Payload: Nonce (10)", "Payload: Identification (5)", "Payload: Hash (8)"):
				found["AM2"]++
			case !encrypted && has("Payload: Security Association (1)", "Payload: Key Exchange (4)", "Payload: Nonce (10)", "Payload: Identification (5)"):
				found["AM1"]++
			case has("Payload: Hash (8)", "Hash DATA: "):
				found["AM3"]++
			default:
				problem(f, "aggressive mode message with unexpected contents")
			}
		case "Quick Mode":
			switch {
			case !encrypted:
				problem(f, "quick mode message not encrypted")
			case has("Payload: Hash (8)", "Payload: Security Association (1)", "Protocol ID: IPSEC_ESP (3)", "Payload: Transform (3)",
				"Payload: Nonce (10)", "Nonce DATA: ", "Payload: Key Exchange (4)", "Key Exchange Data: ", "Group Description: 2048 bit MODP group (14)") &&
				strings.Count(msg, "Payload: Identification (5)") == 2 && strings.Count(msg, "ID_IPV4_SUBNET: 255.255.0.0") == 2:
				found["QM1/2"]++
			case has("Payload: Hash (8)", "Hash DATA: ") && !has("Payload: Security Association (1)"):
				found["QM3"]++
			default:
				problem(f, "quick mode message with unexpected contents")
			}
		case "Informational":
			switch {
			case !encrypted:
				problem(f, "informational message not encrypted")
			case has("Payload: Hash (8)", "Payload: Delete (12)", "Protocol ID: IPSEC_ESP (3)", "Delete SPI: "):
				found["DELETE ESP"]++
			case has("Payload: Hash (8)", "Payload: Delete (12)", "Protocol ID: ISAKMP (1)", "Delete SPI: "):
				found["DELETE ISAKMP"]++
			default:
				problem(f, "informational message with unexpected contents")
			}
		default:
			problem(f, "unexpected exchange %q", ex)
		}
	}
	t.Logf("exchanges: %v; messages recognised: %v", exchanges, found)
	want := map[string]int{"QM1/2": 4, "QM3": 2, "DELETE ESP": 2, "DELETE ISAKMP": 1}
	if sc.aggressive {
		want["AM1"], want["AM2"], want["AM3"] = 1, 1, 1
	} else {
		want["MM1/2"], want["MM3/4"], want["MM5/6"] = 2, 2, 2
	}
	for k, n := range want {
		if found[k] < n {
			t.Errorf("tshark shows %d %s messages (decoded and decrypted), want %d", found[k], k, n)
		}
	}
}
