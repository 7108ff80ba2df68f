package ike

import (
	"context"
	"crypto"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// TestIKEv2CharonRekeys: CREATE_CHILD_SA and INFORMATIONAL against a real
// strongSwan charon (kernel-libipsec) in namespaces: we rekey the child SA
// (with PFS), charon rekeys it, we rekey the IKE SA, charon rekeys it. After
// each step both ends hold exactly one IKE SA with the same SPIs and one
// child SA whose SPIs cross, i.e. the replaced SAs were deleted on both
// ends through INFORMATIONAL DELETEs.
func TestIKEv2CharonRekeys(t *testing.T) {
	if err := netlab.Usable(); err != nil {
		t.Skipf("needs network namespaces: %v", err)
	}
	if err := strongswan.Available(nil); err != nil {
		t.Skipf("needs strongSwan: %v", err)
	}
	_, cgwNS, vgwNS := netlab.NewPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ch, err := strongswan.Start(ctx, cgwNS, strongswan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log:\n%s", ch.LogTail(120))
		}
	})
	const psk = "Interop.0123456789abcdef"
	conn := strongswan.Conn{Name: "t", Version: 2, LocalAddrs: "10.99.0.2", RemoteAddrs: "10.99.0.1",
		Proposals: []string{"aes256-sha256-modp2048"}, Encap: true, ReauthTime: "0s", RekeyTime: "0s", PSK: psk,
		Children: []strongswan.Child{{Name: "t-net", LocalTS: []string{"0.0.0.0/0"}, RemoteTS: []string{"0.0.0.0/0"},
			ESPProposals: []string{"aes128-sha256-modp2048"}, LifeTime: "3600s", RekeyTime: "0s"}}}
	if err := ch.Load(ctx, strongswan.Config{Connections: []strongswan.Conn{conn}}); err != nil {
		t.Fatal(err)
	}
	vt := baseTunnel(netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2"), DefaultPorts)
	vt.PSK = Secret(psk)
	vt.IKEVersions = []policy.Version{policy.IKEv2}
	vt.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 256, Hash: crypto.SHA256, DHGroup: 14}}
	vt.Phase2.Proposals = []Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA2256, PFSGroup: 14}}
	vt.StartupAction = StartupStart
	g := startGW(t, "vgw", Config{Tunnels: []TunnelConfig{vt}}, WithBinder(nsBinder{vgwNS}))
	g.waitEvent(t, "phase2-up", 20*time.Second)
	agree := func(step string) {
		t.Helper()
		var why string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if why = charonAgrees(ctx, ch, g); why == "" {
				return
			}
		}
		t.Fatalf("%s: %s", step, why)
	}
	agree("established")
	steps := []struct {
		name string
		do   func() error
	}{
		{"we rekey the child SA", func() error { return g.e.Rekey("tunnel1", 2) }},
		{"charon rekeys the child SA", func() error { _, err := ch.Swanctl(ctx, "--rekey", "--child", "t-net"); return err }},
		{"we rekey the IKE SA", func() error { return g.e.Rekey("tunnel1", 1) }},
		{"charon rekeys the IKE SA", func() error { _, err := ch.Swanctl(ctx, "--rekey", "--ike", "t"); return err }},
	}
	for _, s := range steps {
		before := g.tunnel(t)
		pairs := inboundSPIs(g)
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if strings.Contains(s.name, "child") {
			waitFor(t, s.name, 20*time.Second, func() bool {
				now := inboundSPIs(g)
				return len(now) == 1 && !sameKeys(now, pairs)
			})
		} else {
			waitFor(t, s.name, 20*time.Second, func() bool {
				st := g.tunnel(t)
				return st.ICookie != before.ICookie && v2SACount(g) == 1
			})
		}
		agree(s.name)
		t.Logf("%s: done", s.name)
	}
	log, _ := os.ReadFile(ch.LogPath())
	for _, l := range strings.Split(string(log), "\n") {
		for _, bad := range []string{"INVALID_SYNTAX", "TEMPORARY_FAILURE", "CHILD_SA_NOT_FOUND", "NO_PROPOSAL_CHOSEN", "INVALID_KE_PAYLOAD", "failed", "unknown", "retransmit"} {
			if strings.Contains(l, bad) {
				t.Errorf("charon's log: %s", l)
			}
		}
	}
	if testing.Verbose() {
		t.Logf("charon log:\n%s", ch.LogTail(200))
	}
	st := g.tunnel(t)
	if st.Counters.Phase2Rekeys != 2 || st.Counters.Phase1Rekeys != 2 {
		t.Fatalf("rekeys counted: child %d, IKE %d; want 2 each", st.Counters.Phase2Rekeys, st.Counters.Phase1Rekeys)
	}
}

// charonAgrees says what differs between charon's SAs and ours ("" when
// both hold one IKE SA with the same SPIs and one child SA whose SPIs
// cross).
func charonAgrees(ctx context.Context, ch *strongswan.Charon, g *gw) string {
	sas, err := ch.ListSAs(ctx)
	if err != nil {
		return err.Error()
	}
	var ike []strongswan.IKESA
	for _, sa := range sas {
		if sa.State == "ESTABLISHED" {
			ike = append(ike, sa)
		}
	}
	pairs := g.dp.Pairs()
	if len(ike) != 1 || len(pairs) != 1 {
		return fmt.Sprintf("charon has %d IKE SAs, we have %d pairs", len(ike), len(pairs))
	}
	st := g.e.Status().Tunnels[0]
	hex := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, ":", "")) }
	if hex(ike[0].InitiatorSPI) != st.ICookie || hex(ike[0].ResponderSPI) != st.RCookie {
		return fmt.Sprintf("IKE SPIs: charon %s/%s, ours %s/%s", ike[0].InitiatorSPI, ike[0].ResponderSPI, st.ICookie, st.RCookie)
	}
	var installed []strongswan.ChildSA
	for _, c := range ike[0].Children {
		if c.State == "INSTALLED" {
			installed = append(installed, c)
		}
	}
	if len(installed) != 1 || len(ike[0].Children) != 1 {
		return fmt.Sprintf("charon has %d child SAs (%d installed)", len(ike[0].Children), len(installed))
	}
	c := installed[0]
	if hex(c.SPIIn) != fmt.Sprintf("%08x", pairs[0].Outbound.SPI) || hex(c.SPIOut) != fmt.Sprintf("%08x", pairs[0].Inbound.SPI) {
		return fmt.Sprintf("child SPIs: charon in %s out %s, ours in %08x out %08x", c.SPIIn, c.SPIOut, pairs[0].Inbound.SPI, pairs[0].Outbound.SPI)
	}
	return ""
}
