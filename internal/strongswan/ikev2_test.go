package strongswan

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

// ikev2Conn is one side of the IKEv2 self-test: PSK, the given IKE
// proposal, fragmentation on (charon.fragment_size is small, so IKE_AUTH is
// sent in RFC 7383 fragments of at most 200-byte IP datagrams).
func ikev2Conn(name, local, remote, ike, esp string) Conn {
	return Conn{
		Name: name, Version: 2, Fragmentation: "yes",
		LocalAddrs: local, RemoteAddrs: remote,
		Proposals: []string{ike}, Encap: true,
		ReauthTime: "0s", RekeyTime: "0s", PSK: selfTestPSK,
		Children: []Child{{
			Name: name + "-net", LocalTS: []string{"0.0.0.0/0"}, RemoteTS: []string{"0.0.0.0/0"},
			ESPProposals: []string{esp}, LifeTime: "3600s", RekeyTime: "0s",
		}},
	}
}

// TestSelfIKEv2 runs two charons with IKEv2: one IKE_SA with AES-CBC +
// HMAC-SHA2-256 and one with AES-GCM-16, both with fragmented IKE_AUTH, then
// deletes them. With V2WIRE_CAPTURE_DIR set it captures the exchange with
// tshark and leaves ikev2.pcap and the two charon logs (ike level 4: the
// keys) there; that is how ike/ikev2/wire/testdata/capture was made.
func TestSelfIKEv2(t *testing.T) {
	if err := Available(nil); err != nil {
		t.Skip(err)
	}
	lab, cgwNS, vgwNS := netlab.NewPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	capDir := os.Getenv("V2WIRE_CAPTURE_DIR")
	var dump *netlab.Proc
	pcap := filepath.Join(lab.LogDir(), "ikev2.pcap")
	if capDir != "" {
		if _, err := exec.LookPath("tshark"); err != nil {
			t.Fatal("V2WIRE_CAPTURE_DIR needs tshark")
		}
		var err error
		dump, err = cgwNS.Start(ctx, "tshark", "-i", "wan0", "-F", "pcap", "-w", pcap, "-f", "udp port 500 or udp port 4500")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
	}
	extra := "  fragment_size = 200\n"
	vgw, err := Start(ctx, vgwNS, Options{KeyLog: true, Extra: extra})
	skipIfNotInstalled(t, err)
	if err != nil {
		t.Fatal(err)
	}
	cgw, err := Start(ctx, cgwNS, Options{KeyLog: true, Extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- cgw charon.log (tail):\n%s", cgw.LogTail(60))
			t.Logf("--- vgw charon.log (tail):\n%s", vgw.LogTail(60))
		}
	})
	conns := func(l, r string) Config {
		return Config{Connections: []Conn{
			ikev2Conn("cbc", l, r, "aes256-sha256-modp2048", "aes128-sha256"),
			ikev2Conn("gcm", l, r, "aes128gcm16-prfsha384-ecp256", "aes256gcm16"),
		}}
	}
	if err := vgw.Load(ctx, conns("10.99.0.1", "10.99.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := cgw.Load(ctx, conns("10.99.0.2", "10.99.0.1")); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"cbc": "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
		"gcm": "AES_GCM_16-128/PRF_HMAC_SHA2_384/ECP_256",
	}
	for _, name := range []string{"cbc", "gcm"} {
		if out, err := cgw.Initiate(ctx, name+"-net", 15*time.Second); err != nil {
			t.Fatalf("initiate %s: %v\n%s", name, err, out)
		}
		ci, _, err := cgw.WaitEstablished(ctx, name, name+"-net", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ri, _, err := vgw.WaitEstablished(ctx, name, name+"-net", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if ci.Version != 2 || ri.Version != 2 || ci.Proposal() != want[name] || ri.Proposal() != want[name] {
			t.Errorf("%s: v%d %q / v%d %q, want IKEv2 %q", name, ci.Version, ci.Proposal(), ri.Version, ri.Proposal(), want[name])
		}
		if ci.InitiatorSPI != ri.InitiatorSPI || ci.ResponderSPI != ri.ResponderSPI {
			t.Errorf("%s: IKE SPIs differ", name)
		}
		if out, err := cgw.Terminate(ctx, name, 10*time.Second); err != nil {
			t.Fatalf("terminate %s: %v\n%s", name, err, out)
		}
	}
	log, _ := os.ReadFile(cgw.LogPath())
	if !strings.Contains(string(log), "splitting IKE message") {
		t.Errorf("no IKEv2 fragmentation in the cgw log")
	}
	if dump == nil {
		return
	}
	time.Sleep(time.Second)
	_ = dump.Stop(5 * time.Second)
	for src, dst := range map[string]string{pcap: "ikev2.pcap", cgw.LogPath(): "cgw-charon.log", vgw.LogPath(): "vgw-charon.log"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(capDir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
