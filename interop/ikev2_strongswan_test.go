package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// IKEv2 (RFC 7296) against strongSwan: charon (swanctl, version = 2,
// kernel-libipsec) as initiator and as responder against our vgw and cgw
// processes configured with ike_versions: [ikev2], directly and behind the
// wan router's SNAT, with AES-CBC + HMAC-SHA2 and AES-GCM-16 in the IKE SA
// and the CHILD_SA; every case carries ping and TCP both ways through
// kernel-libipsec and our data path.

// v2Suite is one IKE + ESP algorithm choice, in both notations.
type v2Suite struct {
	name string
	// ours is the phase 1 proposal in our config syntax (policy.Phase1Proposal's
	// String: strongSwan's notation); charon gets the same string.
	ours string
	// wantIKE is charon's chosen IKE proposal (IKESA.Proposal).
	wantIKE string
	// ourESP is our phase 2 proposal, swESP charon's esp_proposals.
	ourESP, swESP string
	// wantESP is charon's chosen ESP proposal (ChildSA.Proposal): the
	// first CHILD_SA comes with IKE_AUTH, which carries no KE payload, so
	// no PFS group is negotiated for it (RFC 7296 section 1.2).
	wantESP string
	// wantOurESP is the proposal our status reports for that CHILD_SA.
	wantOurESP string
}

var v2Suites = []v2Suite{
	{
		name: "cbc", ours: "aes256-sha256-modp2048",
		wantIKE: "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
		ourESP:  "esp-aes128-sha256-modp2048", swESP: "aes128-sha256-modp2048",
		wantESP: "AES_CBC-128/HMAC_SHA2_256_128", wantOurESP: "esp-aes128-sha256",
	},
	{
		name: "gcm", ours: "aes256gcm16-prfsha384-ecp384",
		wantIKE: "AES_GCM_16-256/PRF_HMAC_SHA2_384/ECP_384",
		ourESP:  "esp-aes256gcm16-ecp384", swESP: "aes256gcm16-ecp384",
		wantESP: "AES_GCM_16-256", wantOurESP: "esp-aes256gcm16",
	},
}

// v2Tunnel is the tunnel part of our gateway's configuration for s.
func (s v2Suite) v2Tunnel(extra string) string {
	return fmt.Sprintf("    ike_versions: [ikev2]\n    phase1: {proposals: [%s]}\n    phase2: {proposals: [%s]}\n%s", s.ours, s.ourESP, extra)
}

// v2Conn is charon's IKEv2 connection for s (addresses and TS filled in by
// the caller).
func (s v2Suite) v2Conn(psk string) strongswan.Conn {
	return strongswan.Conn{
		Name: strongswanConn, Version: 2, Proposals: []string{s.ours}, Encap: true, PSK: psk,
		DPDDelay: "10s", DPDTimeout: "30s", ReauthTime: "0s", RekeyTime: "0s", KeyingTries: "1",
		Children: []strongswan.Child{{Name: strongswanCSA, ESPProposals: []string{s.swESP},
			LifeTime: "3600s", RekeyTime: "0s", DPDAction: "clear"}},
	}
}

// checkV2StrongSwan checks what charon negotiated.
func checkV2StrongSwan(t *testing.T, s v2Suite, sa strongswan.IKESA, child strongswan.ChildSA, initiator bool) {
	t.Helper()
	t.Logf("strongSwan:%s", strongswan.Summary([]strongswan.IKESA{sa}))
	if sa.Version != 2 {
		t.Errorf("charon: IKE version %d, want 2", sa.Version)
	}
	if sa.Initiator != initiator {
		t.Errorf("charon: initiator=%v, want %v", sa.Initiator, initiator)
	}
	if got := sa.Proposal(); got != s.wantIKE {
		t.Errorf("charon: IKE proposal %q, want %q", got, s.wantIKE)
	}
	if got := child.Proposal(); got != s.wantESP {
		t.Errorf("charon: ESP proposal %q, want %q", got, s.wantESP)
	}
	if child.Mode != "TUNNEL" || child.Protocol != "ESP" || !child.Encap {
		t.Errorf("charon: CHILD_SA mode %s protocol %s encap %v, want TUNNEL ESP encap (kernel-libipsec forces NAT-T)", child.Mode, child.Protocol, child.Encap)
	}
	if sa.LocalPort != 4500 || sa.RemotePort != 4500 {
		t.Errorf("charon: IKE_SA ports %d -> %d, want 4500 -> 4500 (floated after IKE_SA_INIT's NAT detection)", sa.LocalPort, sa.RemotePort)
	}
}

// checkV2Ours waits until our gateway reports the IKEv2 tunnel with the SA
// pair that mirrors charon's CHILD_SA and checks it against charon's view.
func checkV2Ours(t *testing.T, g *gateway, s v2Suite, sa strongswan.IKESA, child strongswan.ChildSA, role string) status.Tunnel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl := control.Dial(g.control)
	var last status.Tunnel
	var lastErr error
	for {
		tu, err := cl.Tunnel(ctx, tunnelName)
		lastErr = err
		if err == nil {
			last = tu
			for _, ours := range tu.SAs {
				if !strings.EqualFold(ours.InboundSPI, child.SPIOut) || !strings.EqualFold(ours.OutboundSPI, child.SPIIn) {
					continue
				}
				t.Logf("our %s: %s %s phase1 %s proposal %s SPIs %s/%s, SA %s in %s out %s", g.name, tu.IKEVersion, tu.Role,
					tu.Phase1State, tu.Proposal, tu.ICookie, tu.RCookie, ours.Proposal, ours.InboundSPI, ours.OutboundSPI)
				for _, c := range []struct{ what, got, want string }{
					{"ike_version", tu.IKEVersion, "ikev2"},
					{"phase1_state", tu.Phase1State, "Established"},
					{"role", tu.Role, role},
					{"IKE proposal", strings.ToLower(tu.Proposal), s.ours},
					{"ESP proposal", strings.ToLower(ours.Proposal), s.wantOurESP},
					{"SPIi", strings.ToLower(tu.ICookie), strings.ToLower(sa.InitiatorSPI)},
					{"SPIr", strings.ToLower(tu.RCookie), strings.ToLower(sa.ResponderSPI)},
					{"mode", ours.Mode, "tunnel"},
				} {
					if c.got != c.want {
						t.Errorf("our %s: %s %q, want %q", g.name, c.what, c.got, c.want)
					}
				}
				if !ours.UDPEncap || !tu.Floated {
					t.Errorf("our %s: udp_encap %v floated %v, want both (charon fakes NAT-D)", g.name, ours.UDPEncap, tu.Floated)
				}
				return tu
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("our %s: no SA matching charon's SPIs (in %s out %s) within 5 s: %+v (error %v)", g.name, child.SPIOut, child.SPIIn, last, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// v2Traffic carries ping and TCP both ways between the hosts and checks
// our SA counters (traffic both ways, no drops of authentic packets).
func v2Traffic(t *testing.T, g *gateway, onprem, vpc *netlab.NS) {
	t.Helper()
	pingUntil(t, onprem, vpcHost)
	pingUntil(t, vpc, onpremHost)
	tcpTransfer(t, onprem, vpc, vpcHost, transferBytes)
	tcpTransfer(t, vpc, onprem, onpremHost, transferBytes)
	checkCounters(t, g)
}

// TestIKEv2StrongSwanInitiatesToVGW: charon in the cgw namespace initiates
// IKE_SA_INIT + IKE_AUTH to our vgw (responder, ike_versions [ikev2]),
// directly and from behind the SNAT, with AES-CBC + SHA2 and with AES-GCM;
// traffic both ways.
func TestIKEv2StrongSwanInitiatesToVGW(t *testing.T) {
	requirements(t)
	bin := buildGateway(t, "vgw")
	for _, tp := range topologies {
		for _, s := range v2Suites {
			t.Run(tp.name+"/"+s.name, func(t *testing.T) {
				e := newEnv(t, tp)
				onprem, vpc := e.addHosts()
				psk := newPSK(t)
				ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
				defer cancel()
				dir := e.lab.LogDir()
				g := e.startGateway(bin, "vgw", ourConfig(dir, "vgw", tp.vgwAddr, tp.vgwAddr, tp.cgwID, vpcNet, onpremNet, false, s.v2Tunnel("")), psk, e.vgw)
				conn := s.v2Conn(psk)
				conn.LocalAddrs, conn.RemoteAddrs = tp.cgwLocal.String(), tp.vgwAddr.String()
				conn.LocalID, conn.RemoteID = tp.cgwID.String(), tp.vgwAddr.String()
				conn.Children[0].LocalTS, conn.Children[0].RemoteTS = []string{onpremNet.String()}, []string{vpcNet.String()}
				c := e.startCharonWith(ctx, e.cgw, strongswan.Options{LogLevel: 1, KeyLog: true}, conn)
				start := time.Now()
				go c.Initiate(ctx, strongswanCSA, upTimeout) //nolint:errcheck // waitUp reports the outcome
				sa, child := e.waitUp(ctx, c, g)
				t.Logf("up after %v", time.Since(start).Round(time.Millisecond))
				checkV2StrongSwan(t, s, sa, child, true)
				if sa.LocalID != tp.cgwID.String() || sa.RemoteID != tp.vgwAddr.String() {
					t.Errorf("charon: identities %s -> %s, want %s -> %s", sa.LocalID, sa.RemoteID, tp.cgwID, tp.vgwAddr)
				}
				tu := checkV2Ours(t, g, s, sa, child, "responder")
				if tp.nat && (!tu.RemoteBehindNAT || tu.RemoteAddr != tp.cgwID.String()) {
					t.Errorf("our vgw: remote %s behind NAT %v, want %s behind NAT", tu.RemoteAddr, tu.RemoteBehindNAT, tp.cgwID)
				}
				v2Traffic(t, g, onprem, vpc)
			})
		}
	}
}

// TestIKEv2CGWInitiatesToStrongSwan: our cgw (startup_action start,
// ike_versions [ikev2]) initiates to charon in the vgw namespace, set up
// like an AWS endpoint (responder), directly and from behind the SNAT.
func TestIKEv2CGWInitiatesToStrongSwan(t *testing.T) {
	requirements(t)
	bin := buildGateway(t, "cgw")
	for _, tp := range topologies {
		for _, s := range v2Suites {
			t.Run(tp.name+"/"+s.name, func(t *testing.T) {
				e := newEnv(t, tp)
				onprem, vpc := e.addHosts()
				psk := newPSK(t)
				ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
				defer cancel()
				conn := s.v2Conn(psk)
				conn.LocalAddrs, conn.RemoteAddrs = tp.vgwAddr.String(), tp.cgwID.String()
				conn.LocalID, conn.RemoteID = tp.vgwAddr.String(), tp.cgwID.String()
				conn.Children[0].LocalTS, conn.Children[0].RemoteTS = []string{vpcNet.String()}, []string{onpremNet.String()}
				c := e.startCharonWith(ctx, e.vgw, strongswan.Options{LogLevel: 1, KeyLog: true}, conn)
				dir := e.lab.LogDir()
				start := time.Now()
				g := e.startGateway(bin, "cgw", ourConfig(dir, "cgw", tp.cgwLocal, tp.cgwID, tp.vgwAddr, onpremNet, vpcNet, true, s.v2Tunnel("")), psk, e.cgw)
				sa, child := e.waitUp(ctx, c, g)
				t.Logf("up after %v (from the cgw's start)", time.Since(start).Round(time.Millisecond))
				checkV2StrongSwan(t, s, sa, child, false)
				if sa.LocalID != tp.vgwAddr.String() || sa.RemoteID != tp.cgwID.String() {
					t.Errorf("charon: identities %s -> %s, want %s -> %s", sa.LocalID, sa.RemoteID, tp.vgwAddr, tp.cgwID)
				}
				tu := checkV2Ours(t, g, s, sa, child, "initiator")
				if tu.LocalBehindNAT != tp.nat {
					t.Errorf("our cgw: local_behind_nat %v, want %v", tu.LocalBehindNAT, tp.nat)
				}
				v2Traffic(t, g, onprem, vpc)
			})
		}
	}
}

// TestIKEv2VGWInitiatesToStrongSwan: AWS's startup action start, which AWS
// allows with IKEv2 only: our vgw initiates to charon in the cgw namespace
// (responder). Direct topology only: an AWS endpoint cannot reach a
// customer gateway behind a NAT that has no mapping yet.
func TestIKEv2VGWInitiatesToStrongSwan(t *testing.T) {
	requirements(t)
	bin := buildGateway(t, "vgw")
	tp := topologies[0]
	for _, s := range v2Suites {
		t.Run(s.name, func(t *testing.T) {
			e := newEnv(t, tp)
			onprem, vpc := e.addHosts()
			psk := newPSK(t)
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			conn := s.v2Conn(psk)
			conn.LocalAddrs, conn.RemoteAddrs = tp.cgwLocal.String(), tp.vgwAddr.String()
			conn.LocalID, conn.RemoteID = tp.cgwID.String(), tp.vgwAddr.String()
			conn.Children[0].LocalTS, conn.Children[0].RemoteTS = []string{onpremNet.String()}, []string{vpcNet.String()}
			c := e.startCharonWith(ctx, e.cgw, strongswan.Options{LogLevel: 1, KeyLog: true}, conn)
			dir := e.lab.LogDir()
			g := e.startGateway(bin, "vgw", ourConfig(dir, "vgw", tp.vgwAddr, tp.vgwAddr, tp.cgwID, vpcNet, onpremNet, true, s.v2Tunnel("")), psk, e.vgw)
			sa, child := e.waitUp(ctx, c, g)
			checkV2StrongSwan(t, s, sa, child, false)
			checkV2Ours(t, g, s, sa, child, "initiator")
			v2Traffic(t, g, onprem, vpc)
		})
	}
}
