package interop

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// TestPhase1CollisionWithStrongSwan: our cgw (startup action start) and
// charon on the AWS side start IKEv1 main mode at the same time. An nft
// table in the cgw's namespace drops every IKE datagram both ways for the
// first 1.5 s, so both first messages are lost and both sides are still
// negotiating their own main mode when the retransmissions get through:
// an ISAKMP SA comes up from each side. Whatever each side then deletes,
// both must end with the same established ISAKMP SA (else DPD and quick
// modes run over an SA the peer no longer has) and a working IPsec SA.
// The SA we delete must be gone on charon's side too: a DELETE sent
// right after our MM6 was handled by charon before the MM6 (on another
// thread), could not be decrypted, and left charon with an SA we no
// longer had. Our side's collision rule (ike/phase1collision.go) is
// otherwise tested only between two vpnlab engines.
func TestPhase1CollisionWithStrongSwan(t *testing.T) {
	requirements(t)
	bin := buildGateway(t, "cgw")
	tp := topologies[0]
	e := newEnv(t, tp)
	psk := newPSK(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := e.startCharon(ctx, e.vgw, strongswan.Conn{
		Name: strongswanConn, LocalAddrs: tp.vgwAddr.String(), RemoteAddrs: tp.cgwID.String(),
		LocalID: tp.vgwAddr.String(), RemoteID: tp.cgwID.String(), Proposals: []string{ikeProposal},
		DPDDelay: "10s", DPDTimeout: "30s", ReauthTime: "0s", RekeyTime: "0s", KeyingTries: "1", PSK: psk,
		Children: []strongswan.Child{{Name: strongswanCSA, LocalTS: []string{"0.0.0.0/0"}, RemoteTS: []string{"0.0.0.0/0"},
			ESPProposals: []string{espProposal}, DPDAction: "clear", LifeTime: "3600s", RekeyTime: "0s"}},
	})
	if err := e.cgw.Nft("table inet collide {\n" +
		"  chain in { type filter hook input priority filter; policy accept; udp dport 500 counter drop; }\n" +
		"  chain out { type filter hook output priority filter; policy accept; udp dport 500 counter drop; }\n}\n"); err != nil {
		t.Fatal(err)
	}
	dir := e.lab.LogDir()
	cfg := fmt.Sprintf(`log: {format: json, level: debug}
control: {listen: "unix:%s"}
tunnels:
  - name: %s
    local_address: %s
    remote_address: %s
    psk_env: %s
    startup_action: start
    local_ts: 0.0.0.0/0
    remote_ts: 0.0.0.0/0
    phase1:
      proposals: [%s]
    phase2:
      proposals: [%s]
`, filepath.Join(dir, "cgw.sock"), tunnelName, tp.cgwLocal, tp.vgwAddr, pskEnv, ikeProposal, ourP2Proposal)
	g := e.startGateway(bin, "cgw", cfg, psk, e.cgw)
	go c.Initiate(ctx, strongswanCSA, 30*time.Second) //nolint:errcheck // the outcome is checked below
	time.Sleep(1500 * time.Millisecond)
	if out, err := e.cgw.Run(ctx, "nft", "list", "table", "inet", "collide"); err == nil {
		t.Logf("dropped while blocked:\n%s", out)
	}
	if _, err := e.cgw.Run(ctx, "nft", "delete", "table", "inet", "collide"); err != nil {
		t.Fatal(err)
	}
	e.waitUp(ctx, c, g)
	// Both main modes must have finished (charon retransmits its first
	// message after 4 s) and the losers' DELETEs been handled.
	time.Sleep(8 * time.Second)
	tu, err := control.Dial(g.control).Tunnel(ctx, tunnelName)
	if err != nil {
		t.Fatal(err)
	}
	sas, err := c.ListSAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var theirs []string
	match, established := false, 0
	for _, s := range sas {
		if s.State == "ESTABLISHED" {
			established++
		}
		theirs = append(theirs, fmt.Sprintf("%s %s/%s initiator=%v children=%d", s.State, s.InitiatorSPI, s.ResponderSPI, s.Initiator, len(s.Children)))
		if s.State == "ESTABLISHED" && strings.EqualFold(s.InitiatorSPI, tu.ICookie) && strings.EqualFold(s.ResponderSPI, tu.RCookie) {
			match = true
		}
	}
	t.Logf("ours: phase 1 %s, cookies %s/%s, collisions %d, phase 1 established %d; charon: %s",
		tu.Phase1State, tu.ICookie, tu.RCookie, tu.Counters.Phase1Collisions, tu.Counters.Exchanges.Main.Completed, strings.Join(theirs, "; "))
	if tu.Counters.Exchanges.Main.Completed < 2 {
		t.Fatalf("only %d main mode(s) completed on our side: the setup did not make both sides negotiate at once", tu.Counters.Exchanges.Main.Completed)
	}
	if tu.Phase1State != "Established" || !match {
		t.Fatalf("after both main modes: our ISAKMP SA %s/%s (%s) is not one charon has established", tu.ICookie, tu.RCookie, tu.Phase1State)
	}
	// The SA we deleted must be gone on charon's side too: our DELETE
	// reached it after it had processed our last main mode message.
	if established != 1 {
		t.Errorf("charon has %d established IKE_SAs, want 1 (the one we kept)", established)
	}
	_, child, err := c.WaitEstablished(ctx, strongswanConn, strongswanCSA, upTimeout)
	if err != nil {
		t.Fatal(err)
	}
	checkOurSide(t, g, child)
}
