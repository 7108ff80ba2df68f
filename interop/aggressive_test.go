package interop

// Aggressive mode against strongSwan, both ways. After phase 1 the quick
// mode, DPD and DELETE are all encrypted with IVs derived from the last
// phase 1 CBC block (RFC 2409 appendix B), i.e. from the encrypted AM3: the
// peer must decrypt our QM1, R-U-THERE(-ACK) and DELETE, and we theirs.

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// Our DPD in these tests: a probe after 1 s of silence, dead after 5 s.
const (
	aggDPDDelay   = time.Second
	aggDPDTimeout = 5 * time.Second
)

// TestCGWAggressiveToStrongSwan: our cgw initiates aggressive mode to a
// charon responder (which never probes itself), then quick mode; our
// R-U-THEREs must be answered for longer than the DPD timeout, and our
// DELETE must end charon's IKE_SA.
func TestCGWAggressiveToStrongSwan(t *testing.T) {
	requirements(t)
	bin := buildGateway(t, "cgw")
	for _, tp := range topologies {
		t.Run(tp.name, func(t *testing.T) {
			e := newEnv(t, tp)
			psk := newPSK(t)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			c := e.startCharonWith(ctx, e.vgw, strongswan.Options{LogLevel: 1, Extra: strongswan.AggressivePSKResponder}, strongswan.Conn{
				Name:        strongswanConn,
				LocalAddrs:  tp.vgwAddr.String(),
				RemoteAddrs: tp.cgwID.String(),
				LocalID:     tp.vgwAddr.String(),
				RemoteID:    tp.cgwID.String(),
				Proposals:   []string{ikeProposal},
				Aggressive:  true,
				DPDDelay:    "0s", // charon sends no R-U-THERE: only our probes keep the tunnel alive
				ReauthTime:  "0s",
				RekeyTime:   "0s",
				PSK:         psk,
				Children: []strongswan.Child{{
					Name: strongswanCSA, LocalTS: []string{"0.0.0.0/0"}, RemoteTS: []string{"0.0.0.0/0"},
					ESPProposals: []string{espProposal}, LifeTime: "3600s", RekeyTime: "0s",
				}},
			})
			dir := e.lab.LogDir()
			localID := ""
			if tp.cgwID != tp.cgwLocal {
				localID = fmt.Sprintf("    local_id: %s\n", tp.cgwID)
			}
			cfg := fmt.Sprintf(`log: {format: json, level: debug}
control: {listen: "unix:%s"}
tunnels:
  - name: %s
    local_address: %s
%s    remote_address: %s
    psk_env: %s
    startup_action: start
    ike_mode: aggressive
    local_ts: 0.0.0.0/0
    remote_ts: 0.0.0.0/0
    dpd: {delay: %s, timeout: %s, action: clear}
    phase1:
      proposals: [%s]
    phase2:
      proposals: [%s]
`, filepath.Join(dir, "cgw.sock"), tunnelName, tp.cgwLocal, localID, tp.vgwAddr, pskEnv, aggDPDDelay, aggDPDTimeout, ikeProposal, ourP2Proposal)
			start := time.Now()
			g := e.startGateway(bin, "cgw", cfg, psk, e.cgw)
			sa, child := e.waitUp(ctx, c, g) // charon decrypted our QM1 and QM3
			t.Logf("up after %v (from cgw start)", time.Since(start).Round(time.Millisecond))
			// QM1 must not overtake AM3 (ike.am3Settle).
			if l := c.LogTail(400); strings.Contains(l, "phase 1 is incomplete") {
				t.Errorf("charon took our QM1 before AM3 and ignored it:\n%s", l)
			}
			checkStrongSwanSAs(t, sa, child, false)
			checkOurSide(t, g, child)
			checkAM3Encrypted(t, e, tp.cgwID.String())
			checkAlive(t, g, "charon answered our R-U-THEREs")

			// Our DELETE must reach charon: its IKE_SA goes away.
			if err := control.Dial(g.control).Terminate(ctx, tunnelName); err != nil {
				t.Fatal(err)
			}
			waitCharonGone(ctx, t, c)
		})
	}
}

// TestStrongSwanAggressiveToVGW: charon initiates aggressive mode to our
// vgw (allow_aggressive: true) and probes every second: we must decrypt its
// encrypted AM3, its quick mode and its R-U-THEREs, and its DELETE must end
// our tunnel.
func TestStrongSwanAggressiveToVGW(t *testing.T) {
	requirements(t)
	bin := buildGateway(t, "vgw")
	for _, tp := range topologies {
		t.Run(tp.name, func(t *testing.T) {
			e := newEnv(t, tp)
			psk := newPSK(t)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			dir := e.lab.LogDir()
			cfg := fmt.Sprintf(`log: {format: json, level: debug}
control: {listen: "unix:%s"}
tunnels:
  - name: %s
    local_address: %s
    remote_address: %s
    psk_env: %s
    allow_aggressive: true
    local_ts: 0.0.0.0/0
    remote_ts: 0.0.0.0/0
`, filepath.Join(dir, "vgw.sock"), tunnelName, tp.vgwAddr, tp.cgwID, pskEnv)
			g := e.startGateway(bin, "vgw", cfg, psk, e.vgw)
			c := e.startCharon(ctx, e.cgw, strongswan.Conn{
				Name:        strongswanConn,
				LocalAddrs:  tp.cgwLocal.String(),
				RemoteAddrs: tp.vgwAddr.String(),
				LocalID:     tp.cgwID.String(),
				RemoteID:    tp.vgwAddr.String(),
				Proposals:   []string{ikeProposal},
				Aggressive:  true,
				Encap:       true,
				DPDDelay:    "1s",
				DPDTimeout:  "5s",
				ReauthTime:  "0s",
				RekeyTime:   "0s",
				KeyingTries: "1",
				PSK:         psk,
				Children: []strongswan.Child{{
					Name: strongswanCSA, LocalTS: []string{"0.0.0.0/0"}, RemoteTS: []string{"0.0.0.0/0"},
					ESPProposals: []string{espProposal}, DPDAction: "clear", LifeTime: "3600s", RekeyTime: "0s",
				}},
			})
			start := time.Now()
			go c.Initiate(ctx, strongswanCSA, upTimeout) //nolint:errcheck // waitUp reports the outcome
			sa, child := e.waitUp(ctx, c, g)
			t.Logf("up after %v", time.Since(start).Round(time.Millisecond))
			checkStrongSwanSAs(t, sa, child, true)
			checkOurSide(t, g, child)
			checkAM3Encrypted(t, e, tp.cgwID.String()) // what charon sends, and we read
			// charon probes every second and clears after 5 s without an ACK.
			time.Sleep(aggDPDTimeout + 2*time.Second)
			if _, _, err := c.WaitEstablished(ctx, strongswanConn, strongswanCSA, time.Second); err != nil {
				t.Fatalf("charon's SA did not survive its own DPD (our R-U-THERE-ACKs unreadable?): %v", err)
			}
			if !strings.Contains(g.proc.Tail(2000), "R-U-THERE received, answering R-U-THERE-ACK") {
				t.Error("our vgw's log shows no R-U-THERE from charon")
			}
			// charon's DELETE must end our tunnel.
			if out, err := c.Terminate(ctx, strongswanConn, 5*time.Second); err != nil {
				t.Fatalf("swanctl --terminate: %v\n%s", err, out)
			}
			waitOurDown(t, g)
		})
	}
}

// checkAlive waits past our DPD timeout and checks that the tunnel is still
// up with DPD alive: only authenticated answers from the peer keep it so.
func checkAlive(t *testing.T, g *gateway, why string) {
	t.Helper()
	time.Sleep(aggDPDTimeout + 2*time.Second)
	// A dead verdict would have cleared the tunnel (action clear). DPD may
	// be "probing" at any instant (an R-U-THERE in flight every second on
	// an idle tunnel), so wait a little for the acknowledgement.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	deadline := time.Now().Add(3 * time.Second)
	for {
		tu, err := control.Dial(g.control).Tunnel(ctx, tunnelName)
		if err != nil {
			t.Fatal(err)
		}
		if tu.Phase1State == "Established" && tu.DPDState == "alive" && len(tu.SAs) > 0 {
			return
		}
		if tu.Phase1State != "Established" || len(tu.SAs) == 0 || time.Now().After(deadline) {
			t.Fatalf("after %v: phase 1 %s, DPD %s, %d SAs; want Established, alive, 1 (%s)", aggDPDTimeout+2*time.Second,
				tu.Phase1State, tu.DPDState, len(tu.SAs), why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitCharonGone waits until charon has no IKE_SA of our connection.
func waitCharonGone(ctx context.Context, t *testing.T, c *strongswan.Charon) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		sas, err := c.ListSAs(ctx)
		gone := err == nil
		for _, s := range sas {
			gone = gone && s.Name != strongswanConn
		}
		if gone {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("charon still has the IKE_SA 5 s after our DELETE (err %v): %s", err, strongswan.Summary(sas))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitOurDown waits until our tunnel has no ISAKMP SA and no IPsec SA.
func waitOurDown(t *testing.T, g *gateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl := control.Dial(g.control)
	var last status.Tunnel
	for {
		if tu, err := cl.Tunnel(ctx, tunnelName); err == nil {
			last = tu
			if tu.Phase1State == "Down" && len(tu.SAs) == 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("our %s still up 5 s after charon's DELETE: phase 1 %s, %d SAs", g.name, last.Phase1State, len(last.SAs))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkAM3Encrypted reads the capture of the vgw's outside interface with
// tshark: the initiator (from) sent two aggressive mode messages, AM1 in
// the clear and AM3 with the encryption flag (RFC 2408 section 4.7).
func checkAM3Encrypted(t *testing.T, e *env, from string) {
	t.Helper()
	if e.capture == "" {
		t.Fatal("no capture of the outside interface (dumpcap and tshark are required)")
	}
	var flags []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		flags = aggressiveFlags(t, e.capture, from)
		if len(flags) >= 2 || time.Now().After(deadline) { // dumpcap writes in its own time
			break
		}
	}
	if len(flags) != 2 {
		t.Fatalf("%d aggressive mode messages from %s in the capture, want 2 (AM1, AM3): flags %v", len(flags), from, flags)
	}
	if flags[0] != "0x00" || flags[1] != "0x01" {
		t.Fatalf("aggressive mode flags from %s: AM1 %s, AM3 %s; want 0x00 and 0x01 (AM3 encrypted)", from, flags[0], flags[1])
	}
	t.Logf("capture: AM1 from %s flags %s, AM3 flags %s (encrypted)", from, flags[0], flags[1])
}

// aggressiveFlags returns the ISAKMP flags of the aggressive mode messages
// from an address in a capture (4500 decoded as UDP-encapsulated IKE).
func aggressiveFlags(t *testing.T, pcap, from string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tshark", "-n", "-r", pcap, "-d", "udp.port==4500,udpencap",
		"-Y", "isakmp.exchangetype == 4 && ip.src == "+from, "-T", "fields", "-e", "isakmp.flags")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// dumpcap is still writing: tshark may end with "cut short in the
	// middle of a packet" (exit 2) after printing every whole packet.
	if err != nil && !strings.Contains(stderr.String(), "cut short") {
		t.Fatalf("tshark: %v: %s", err, stderr.String())
	}
	return strings.Fields(string(out))
}
