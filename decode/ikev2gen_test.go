//go:build ikev2capture

package decode

// Regenerates the real IKEv2 captures in testdata/ikev2 (see its README):
//
//	go test -tags ikev2capture -count=1 -run TestGenerateIKEv2Captures ./decode/
//
// Two strongSwan charons (kernel-libipsec) in network namespaces made by
// internal/netlab (removed again at the end), tshark capturing on the
// initiator's veth, the IKE keys taken from the initiator's charon log (ike
// level 4) and written as Wireshark ikev2_decryption_table files (the format
// of strongSwan's save-keys plugin, which Debian does not ship). Every
// capture is checked with tshark before it is written.

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/pcapfile"
	"github.com/vpnlab/vpnlab/internal/strongswan"
	"github.com/vpnlab/vpnlab/keylog"
)

const genDir = "testdata/ikev2"

type genSA struct {
	spii, spir             []byte
	encr                   string // Wireshark name
	integ                  string
	skei, sker, skai, skar []byte
}

// charonKeys returns the Sk_* dumps of a charon log in order, four (or two
// with AEAD: Sk_ai/Sk_ar are then empty and not dumped) per IKE SA.
func charonKeys(t *testing.T, path string) []map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := regexp.MustCompile(`(\d+)\[IKE\] .*(Sk_[ea][ir]) secret => (\d+) bytes`)
	line := regexp.MustCompile(`(\d+)\[IKE\] .*\s+\d+: ((?:[0-9A-F]{2} )+)`)
	var out []map[string][]byte
	var thread, name string
	var want int
	var buf []byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for sc.Scan() {
		s := sc.Text()
		if m := head.FindStringSubmatch(s); m != nil {
			thread, name, buf = m[1], m[2], nil
			fmt.Sscan(m[3], &want)
			if _, dup := lastMap(out)[name]; dup || len(out) == 0 {
				out = append(out, map[string][]byte{})
			}
			continue
		}
		if name == "" {
			continue
		}
		if m := line.FindStringSubmatch(s); m != nil && m[1] == thread {
			b, err := hex.DecodeString(strings.ReplaceAll(m[2], " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			buf = append(buf, b...)
			if len(buf) >= want {
				out[len(out)-1][name] = buf[:want]
				name = ""
			}
		}
	}
	return out
}

func lastMap(ms []map[string][]byte) map[string][]byte {
	if len(ms) == 0 {
		return nil
	}
	return ms[len(ms)-1]
}

// initSPIs returns the SPI pairs of the IKE_SA_INIT responses of a capture
// that carry an SA payload (not the INVALID_KE/NO_PROPOSAL ones).
func initSPIs(t *testing.T, pcap string) [][2][]byte {
	t.Helper()
	ds, err := pcapfile.ReadUDP(pcap)
	if err != nil {
		t.Fatal(err)
	}
	var out [][2][]byte
	for _, d := range ds {
		p := d.Payload
		if len(p) >= 4 && p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0 {
			p = p[4:]
		}
		if len(p) < 28 || p[18] != 34 || p[19]&0x20 == 0 || p[16] != 33 {
			continue
		}
		out = append(out, [2][]byte{append([]byte(nil), p[:8]...), append([]byte(nil), p[8:16]...)})
	}
	return out
}

type genScenario struct {
	name        string
	about       string
	initIKE     []string
	respIKE     []string
	initESP     []string
	respESP     []string
	initPSK     string
	encap       bool
	dpd         string
	wantUp      bool
	tsMismatch  bool
	nat         bool // the cgw behind a SNAT router
	steps       func(ctx context.Context, t *testing.T, c *strongswan.Charon)
	encr, integ string // Wireshark names of the IKE SA's algorithms
}

func genConn(s genScenario, local, remote string, ike, esp []string, psk string, lts, rts string) strongswan.Config {
	return strongswan.Config{Connections: []strongswan.Conn{{
		Name: "v2", Version: 2, LocalAddrs: local, RemoteAddrs: remote,
		Proposals: ike, Encap: s.encap, ReauthTime: "0s", RekeyTime: "0s", PSK: psk,
		DPDDelay: s.dpd, KeyingTries: "1",
		Children: []strongswan.Child{{
			Name: "v2-net", LocalTS: []string{lts}, RemoteTS: []string{rts},
			ESPProposals: esp, LifeTime: "3600s", RekeyTime: "0s",
		}},
	}}}
}

// respTS is the responder's local traffic selector: 172.31.0.0/16 (the
// mirror of the initiator's remote one) unless the scenario wants
// TS_UNACCEPTABLE.
func respTS(s genScenario) string {
	if s.tsMismatch {
		return "192.168.0.0/16"
	}
	return "172.31.0.0/16"
}

// genLab is the scenario's topology: cgw and vgw on one link, or with
// s.nat a router namespace between them that SNATs the cgw (10.99.0.2) to
// 198.51.100.2 towards the vgw (203.0.113.10), the lab's AWS-like setup.
type genLab struct {
	lab              *netlab.Lab
	cgwNS, vgwNS     *netlab.NS
	cgwAddr, vgwAddr string // the addresses each charon binds
	cgwSeen          string // the cgw's address as the vgw sees it (and its IKE ID)
}

func genTopology(t *testing.T, s genScenario) genLab {
	g := genLab{cgwAddr: "10.99.0.2", vgwAddr: "10.99.0.1", cgwSeen: "10.99.0.2"}
	if !s.nat {
		g.lab, g.cgwNS, g.vgwNS = netlab.NewPair(t)
	} else {
		lab, err := netlab.New(t)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(err)
		g.lab = lab
		g.cgwNS, err = lab.AddNS("cgw")
		must(err)
		wan, err := lab.AddNS("wan")
		must(err)
		g.vgwNS, err = lab.AddNS("vgw")
		must(err)
		pfx := netip.MustParsePrefix
		must(lab.Link(g.cgwNS, "wan0", pfx("10.99.0.2/24"), wan, "cgw0", pfx("10.99.0.1/24")))
		must(lab.Link(wan, "vgw0", pfx("203.0.113.1/24"), g.vgwNS, "wan0", pfx("203.0.113.10/24")))
		must(g.cgwNS.AddRoute(pfx("203.0.113.0/24"), netip.MustParseAddr("10.99.0.1")))
		must(g.vgwNS.AddRoute(pfx("198.51.100.0/24"), netip.MustParseAddr("203.0.113.1")))
		must(wan.EnableForwarding())
		must(wan.SNAT("vgw0", pfx("10.99.0.0/24"), netip.MustParseAddr("198.51.100.2")))
		g.vgwAddr, g.cgwSeen = "203.0.113.10", "198.51.100.2"
	}
	// kernel-libipsec routes the remote subnet via a local address inside
	// the local traffic selector.
	if err := g.cgwNS.AddAddr("lo", netip.MustParsePrefix("10.10.1.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := g.vgwNS.AddAddr("lo", netip.MustParsePrefix("172.31.1.1/24")); err != nil {
		t.Fatal(err)
	}
	return g
}

func genRun(t *testing.T, s genScenario) {
	if err := strongswan.Available(nil); err != nil {
		t.Fatal(err)
	}
	g := genTopology(t, s)
	lab, cgwNS, vgwNS := g.lab, g.cgwNS, g.vgwNS
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pcap := filepath.Join(lab.LogDir(), "cap.pcap")
	dump, err := cgwNS.Start(ctx, "tshark", "-i", "wan0", "-F", "pcap", "-w", pcap, "-f", "udp port 500 or udp port 4500")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ { // tshark writes the pcap header once it captures
		if fi, err := os.Stat(pcap); err == nil && fi.Size() >= 24 {
			break
		}
		if i == 100 {
			t.Fatal("tshark did not start capturing in 20 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	vgw, err := strongswan.Start(ctx, vgwNS, strongswan.Options{KeyLog: true})
	if err != nil {
		t.Fatal(err)
	}
	cgw, err := strongswan.Start(ctx, cgwNS, strongswan.Options{KeyLog: true})
	if err != nil {
		t.Fatal(err)
	}
	const psk = "vpnlab-ikev2-capture-psk"
	initPSK := psk
	if s.initPSK != "" {
		initPSK = s.initPSK
	}
	vc := genConn(s, g.vgwAddr, g.cgwSeen, s.respIKE, s.respESP, psk, respTS(s), "10.10.0.0/16")
	cc := genConn(s, g.cgwAddr, g.vgwAddr, s.initIKE, s.initESP, initPSK, "10.10.0.0/16", "172.31.0.0/16")
	cc.Connections[0].LocalID = g.cgwSeen // AWS: a NATed customer gateway's ID is its public address
	if err := vgw.Load(ctx, vc); err != nil {
		t.Fatal(err)
	}
	if err := cgw.Load(ctx, cc); err != nil {
		t.Fatal(err)
	}
	out, err := cgw.Initiate(ctx, "v2-net", 10*time.Second)
	if s.wantUp && err != nil {
		t.Fatalf("initiate: %v\n%s\n%s", err, out, vgw.LogTail(40))
	}
	if !s.wantUp && err == nil {
		t.Fatalf("initiate succeeded, want a failure:\n%s", out)
	}
	var rekeyed []strongswan.IKESA
	if s.steps != nil {
		s.steps(ctx, t, cgw)
		sas, err := cgw.ListSAs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rekeyed = sas
	}
	if out, err := cgw.Terminate(ctx, "v2", 10*time.Second); err != nil && s.wantUp {
		t.Fatalf("terminate: %v\n%s", err, out)
	}
	time.Sleep(time.Second)
	_ = dump.Stop(5 * time.Second)
	_ = cgw.Stop()
	_ = vgw.Stop()

	keys := charonKeys(t, cgw.LogPath())
	spis := initSPIs(t, pcap)
	for _, sa := range rekeyed { // an IKE SA rekey: its SPIs come after the first pair
		i, _ := hex.DecodeString(sa.InitiatorSPI)
		r, _ := hex.DecodeString(sa.ResponderSPI)
		if len(spis) > 0 && hex.EncodeToString(spis[0][0]) != sa.InitiatorSPI {
			spis = append(spis, [2][]byte{i, r})
		}
	}
	if len(keys) != len(spis) {
		t.Fatalf("%d key sets in the charon log, %d IKE SAs", len(keys), len(spis))
	}
	var uat strings.Builder
	fmt.Fprintf(&uat, "# Wireshark ikev2_decryption_table for %s.pcap (the strongSwan save-keys format),\n# from the initiator's charon log; regenerate: see README.md. Throw-away lab keys.\n", s.name)
	for i, k := range keys {
		fmt.Fprintf(&uat, "%x,%x,%x,%x,\"%s\",%x,%x,\"%s\"\n", spis[i][0], spis[i][1], k["Sk_ei"], k["Sk_er"], s.encr, k["Sk_ai"], k["Sk_ar"], s.integ)
	}
	pcapBytes, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(genDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(genDir, s.name+".pcap"), pcapBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(genDir, s.name+".keys"), []byte(uat.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	genCheckTshark(t, s.name)
	t.Logf("%s: %d bytes of pcap, %d IKE SAs with keys", s.name, len(pcapBytes), len(keys))
}

// genCheckTshark decrypts the written capture with tshark and its keys and
// fails on any expert warning or error.
func genCheckTshark(t *testing.T, name string) {
	args := []string{"-n", "-r", filepath.Join(genDir, name+".pcap"), "-V"}
	b, _ := os.ReadFile(filepath.Join(genDir, name+".keys"))
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			args = append(args, "-o", "uat:"+keylog.TableIKEv2+":"+l)
		}
	}
	cmd := exec.Command("tshark", args...)
	cmd.Env = append(os.Environ(), "WIRESHARK_CONFIG_DIR="+t.TempDir(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	for _, bad := range []string{"Expert Info (Warning", "Expert Info (Error", "Malformed", "[incorrect"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("%s: tshark shows %q", name, bad)
		}
	}
}

func rekeyChild(ctx context.Context, t *testing.T, c *strongswan.Charon) {
	if out, err := c.Swanctl(ctx, "--rekey", "--child", "v2-net"); err != nil {
		t.Fatalf("rekey child: %v %s", err, out)
	}
	time.Sleep(time.Second)
}

func TestGenerateIKEv2Captures(t *testing.T) {
	only := os.Getenv("IKEV2_CAPTURE") // one scenario by name, empty = all
	for _, s := range []genScenario{
		{name: "cbc-rekey", about: "AES-CBC-256/HMAC-SHA2-256/MODP-2048, child rekey, IKE SA rekey, DPD, delete",
			initIKE: []string{"aes256-sha256-modp2048"}, respIKE: []string{"aes256-sha256-modp2048"},
			initESP: []string{"aes128-sha256"}, respESP: []string{"aes128-sha256"}, wantUp: true, dpd: "2s",
			encr: "AES-CBC-256 [RFC3602]", integ: "HMAC_SHA2_256_128 [RFC4868]",
			steps: func(ctx context.Context, t *testing.T, c *strongswan.Charon) {
				rekeyChild(ctx, t, c)
				if out, err := c.Swanctl(ctx, "--rekey", "--ike", "v2"); err != nil {
					t.Fatalf("rekey ike: %v %s", err, out)
				}
				time.Sleep(4 * time.Second) // a DPD (empty INFORMATIONAL) on the new IKE SA
			}},
		{name: "gcm-natt-invalidke", about: "AES-GCM-16-128/PRF-SHA384, INVALID_KE (MODP-2048 -> ECP-256), UDP encapsulation (faked NAT-D, port 4500)",
			initIKE: []string{"aes128gcm16-prfsha384-modp2048-ecp256"}, respIKE: []string{"aes128gcm16-prfsha384-ecp256"},
			initESP: []string{"aes256gcm16"}, respESP: []string{"aes256gcm16"}, encap: true, wantUp: true,
			encr: "AES-GCM-128 with 16 octet ICV [RFC5282]", integ: "NONE [RFC4306]"},
		{name: "psk-mismatch", about: "wrong PSK on the initiator: AUTHENTICATION_FAILED",
			initIKE: []string{"aes256-sha256-modp2048"}, respIKE: []string{"aes256-sha256-modp2048"},
			initESP: []string{"aes128-sha256"}, respESP: []string{"aes128-sha256"}, initPSK: "not-the-right-psk",
			encr: "AES-CBC-256 [RFC3602]", integ: "HMAC_SHA2_256_128 [RFC4868]"},
		{name: "no-proposal", about: "IKE proposals do not overlap: NO_PROPOSAL_CHOSEN in IKE_SA_INIT",
			initIKE: []string{"aes128-sha1-modp2048"}, respIKE: []string{"aes256-sha256-modp2048"},
			initESP: []string{"aes128-sha256"}, respESP: []string{"aes128-sha256"}},
		{name: "child-no-proposal", about: "ESP proposals do not overlap: IKE SA up, NO_PROPOSAL_CHOSEN for the CHILD_SA in IKE_AUTH",
			initIKE: []string{"aes256-sha256-modp2048"}, respIKE: []string{"aes256-sha256-modp2048"},
			initESP: []string{"aes128-sha1"}, respESP: []string{"aes256gcm16"},
			encr: "AES-CBC-256 [RFC3602]", integ: "HMAC_SHA2_256_128 [RFC4868]"},
		{name: "cbc-nat", about: "the cgw behind a real SNAT (10.99.0.2 -> 198.51.100.2): NAT-D, float to 4500, capture on the private side",
			initIKE: []string{"aes128-sha256-modp2048"}, respIKE: []string{"aes128-sha256-modp2048"},
			initESP: []string{"aes128-sha256"}, respESP: []string{"aes128-sha256"}, nat: true, wantUp: true,
			encr: "AES-CBC-128 [RFC3602]", integ: "HMAC_SHA2_256_128 [RFC4868]"},
		{name: "ts-unacceptable", about: "traffic selectors do not overlap: IKE SA up, TS_UNACCEPTABLE in IKE_AUTH",
			initIKE: []string{"aes256-sha256-modp2048"}, respIKE: []string{"aes256-sha256-modp2048"},
			initESP: []string{"aes128-sha256"}, respESP: []string{"aes128-sha256"}, tsMismatch: true,
			encr: "AES-CBC-256 [RFC3602]", integ: "HMAC_SHA2_256_128 [RFC4868]"},
	} {
		if only != "" && only != s.name {
			continue
		}
		t.Run(s.name, func(t *testing.T) { genRun(t, s) })
	}
}
