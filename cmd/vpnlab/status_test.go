package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
)

var statusNow = time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC)

func sampleStatus() status.Snapshot {
	now := statusNow
	return status.Snapshot{
		Tunnels: []status.Tunnel{{
			Name: "tunnel1", LocalAddr: "198.51.100.2", RemoteAddr: "203.0.113.10",
			Phase1State: "Established", Phase2State: "Established", Status: "UP", LastStatusChange: now.Add(-4 * time.Minute),
			Role: "initiator", Exchange: "main", Proposal: "aes256-sha256-modp2048",
			ICookie: "069cf174ba04d16c", RCookie: "983f817f4484825f", LocalBehindNAT: true, Floated: true,
			Phase1Expires: now.Add(7*time.Hour + 56*time.Minute), BGPState: "Established", AcceptedRouteCount: 2, DPDState: "alive",
			DataIn: 4642892, DataOut: 40262185, PacketsIn: 8616, PacketsOut: 29813, Drops: map[string]uint64{"replay": 2, "icv": 0},
			SAs: []status.SA{{
				Protocol: "esp", Mode: "tunnel", UDPEncap: true, InboundSPI: "ef5ebbd9", OutboundSPI: "ad8c3188",
				Proposal: "esp-aes128-sha256-modp2048", LocalTS: "10.10.0.0/16", RemoteTS: "172.31.0.0/16",
				Established: now.Add(-4 * time.Minute), RekeyAt: now.Add(47 * time.Minute), Expires: now.Add(56 * time.Minute),
				Counters: &childsa.Counters{PacketsIn: 8616, BytesIn: 4642892, PacketsOut: 29813, BytesOut: 40262185,
					Drops: map[string]uint64{"replay": 2}, LastInbound: now.Add(-2 * time.Second)},
			}},
			Counters: status.Counters{MessagesIn: 7, MessagesOut: 8, Phase2Rekeys: 1, DPDProbes: 3},
		}, {
			Name: "tunnel2", LocalAddr: "198.51.100.2", RemoteAddr: "203.0.113.20", Phase1State: "Down", Phase2State: "Down",
			Status: "DOWN", StatusMessage: "Peer is not responsive - Declaring peer dead", LastError: "Peer is not responsive - Declaring peer dead",
			DPDState: "off", Counters: status.Counters{DPDTimeouts: 1},
		}},
		DataPathDrops: map[string]uint64{"no-sa": 4, "no-route": 0},
	}
}

// TestStatusTable: the swanctl-like listing shows, per tunnel, the states,
// the ISAKMP SA with version, role, proposal and lifetime left, and each
// IPsec SA with SPIs, proposal, counters and rekey time.
func TestStatusTable(t *testing.T) {
	var b bytes.Buffer
	writeSAs(&b, sampleStatus(), statusNow)
	out := b.String()
	for _, want := range []string{
		"tunnel1: UP, phase 1 Established, phase 2 Established, BGP Established (2 routes accepted), since 4m0s ago\n",
		"  local 198.51.100.2  remote 203.0.113.10  local side behind NAT, IKE on the NAT-T port  DPD alive\n",
		"  IKE SA: IKEv1 main mode, initiator, 069cf174ba04d16c_i 983f817f4484825f_r, aes256-sha256-modp2048, expires in 7h56m0s\n",
		"  IPsec SA: ESP TUNNEL-in-UDP, esp-aes128-sha256-modp2048, established 4m0s ago, rekey in 47m0s, expires in 56m0s\n",
		"    in  ef5ebbd9      4642892 bytes      8616 packets, last 2s ago\n",
		"    out ad8c3188     40262185 bytes     29813 packets\n",
		"    10.10.0.0/16 === 172.31.0.0/16\n",
		"    drops: replay 2\n",
		"  traffic: in 4642892 bytes 8616 packets, out 40262185 bytes 29813 packets (every SA of the tunnel)\n",
		"  IKE: 7 messages in, 8 out, 0 retransmitted; rekeys: phase 1 0, phase 2 1; DPD: 3 probes, 0 timeouts\n",
		"tunnel2: DOWN, phase 1 Down, phase 2 Down\n",
		"  status: Peer is not responsive - Declaring peer dead\n",
		"  local 198.51.100.2  remote 203.0.113.20  no NAT  DPD off\n",
		"data path drops outside any SA: no-sa 4\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "icv 0") || strings.Contains(out, "no-route") {
		t.Errorf("zero drop counts listed:\n%s", out)
	}
}

// TestStatusTableIKEv2: an IKEv2 SA is listed as IKEv2 with its SPIs (not
// as an IKEv1 mode); while it negotiates, the exchange it is in.
func TestStatusTableIKEv2(t *testing.T) {
	st := sampleStatus()
	st.Tunnels[0].IKEVersion, st.Tunnels[0].Exchange, st.Tunnels[0].Role = "ikev2", "IKE_AUTH", "responder"
	st.Tunnels[1].IKEVersion, st.Tunnels[1].Exchange, st.Tunnels[1].Role = "ikev2", "IKE_SA_INIT", "initiator"
	st.Tunnels[1].ICookie, st.Tunnels[1].RCookie, st.Tunnels[1].Phase1State = "1122334455667788", "0000000000000000", "Negotiating"
	var b bytes.Buffer
	writeSAs(&b, st, statusNow)
	out := b.String()
	for _, want := range []string{
		"  IKE SA: IKEv2, responder, 069cf174ba04d16c_i 983f817f4484825f_r, aes256-sha256-modp2048, expires in 7h56m0s\n",
		"  IKE SA: IKEv2 IKE_SA_INIT, initiator, 1122334455667788_i 0000000000000000_r\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "IKEv1") {
		t.Errorf("an IKEv2 SA listed as IKEv1:\n%s", out)
	}
}

type statusBackend struct{ st status.Snapshot }

func (s statusBackend) Status() status.Snapshot { return s.st }
func (s statusBackend) Subscribe() (<-chan status.Event, func()) {
	return make(chan status.Event), func() {}
}
func (s statusBackend) Initiate(string) error   { return nil }
func (s statusBackend) Terminate(string) error  { return nil }
func (s statusBackend) Rekey(string, int) error { return nil }

// TestStatusCommand runs vpnlab status against a control API: the listing,
// --json with the control API's object, and a clear error without --control.
func TestStatusCommand(t *testing.T) {
	srv := httptest.NewServer(control.NewServer(statusBackend{sampleStatus()}, nil))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	code, out, errOut := runCLI("status", "--control", addr)
	if code != 0 || !strings.Contains(out, "tunnel1: UP, phase 1 Established") || !strings.Contains(out, "    in  ef5ebbd9") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCLI("status", "--control", addr, "--json")
	var st status.Snapshot
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st.Tunnels) != 2 || st.Tunnels[0].SAs[0].InboundSPI != "ef5ebbd9" {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}
	code, _, errOut = runCLI("status")
	if code != 2 || !strings.Contains(errOut, "--control is required") {
		t.Fatalf("without --control: exit %d %q", code, errOut)
	}
	code, out, _ = runCLI("status", "--control", addr, "--wait-established", "200ms")
	if code != 1 || !strings.Contains(out, "tunnel2: DOWN") {
		t.Fatalf("--wait-established with a tunnel down: exit %d\n%s", code, out)
	}
}

// TestCompletion: cobra's completion command produces a bash script that
// completes vpnlab's subcommands.
func TestCompletion(t *testing.T) {
	code, out, errOut := runCLI("completion", "bash")
	if code != 0 || !strings.Contains(out, "__start_vpnlab") {
		t.Fatalf("exit %d %q\n%.300s", code, errOut, out)
	}
	code, out, _ = runCLI("__complete", "st")
	if code != 0 || !strings.Contains(out, "status") {
		t.Fatalf("completing 'st': exit %d\n%s", code, out)
	}
}
