package gateway

import (
	"context"
	"crypto"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/ike/impair"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// awsEngine runs an engine whose log is the aws format of profile p.
type awsEngine struct {
	e    *ike.Engine
	logs *lockedBuffer
	stop func() // ends Run and waits for it
	// remote is the peer's address, for a test's network filter.
	remote string
}

func startAWSEngine(t *testing.T, p gwconfig.Profile, tc policy.Tunnel, ports policy.Ports, opts ...ike.Option) *awsEngine {
	t.Helper()
	cfg := policy.Config{Ports: ports, Tunnels: []policy.Tunnel{tc}, RetransmitTimeout: 300 * time.Millisecond, RetransmitBase: 1.5, RetransmitTries: 3}
	gc := &gwconfig.Config{Profile: p, IKE: cfg, Tunnels: []gwconfig.Tunnel{{Name: tc.Name, Connection: "vpn-0123456789abcdef0"}}}
	buf := &lockedBuffer{}
	logger, err := NewLogger("aws", "debug", buf)
	if err != nil {
		t.Fatal(err)
	}
	states := newAWSTunnelStates(gc)
	logger.SetFormatter(awsFormatter{states: states})
	e, err := ike.NewEngine(cfg, append([]ike.Option{ike.WithLogger(logger.WithField("gw", p.String()))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	evs, unsub := e.Subscribe()
	states.attach(evs)
	go states.follow()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(func() {
		stop()
		unsub()
		if t.Failed() {
			t.Logf("---- %s log ----\n%s", p, buf.String())
		}
	})
	return &awsEngine{e: e, logs: buf, stop: stop}
}

// waitRecord waits for an aws record of tunnel1 whose VpnLogDetail starts
// with detail and returns it.
func (a *awsEngine) waitRecord(t *testing.T, detail string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(a.logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			if d, _ := rec["VpnLogDetail"].(string); strings.HasPrefix(d, detail) && rec["Tunnel"] == "tunnel1" {
				return rec
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no aws record with VpnLogDetail %q", detail)
	return nil
}

const (
	awsTestPSK   = "aws.messages_test_psk1"
	awsTestWrong = "aws.messages_wrong_psk"
)

// awsTestPair returns the vgw's and the cgw's tunnel configurations over a
// fresh loopback pair.
func awsTestPair() (vgw, cgw policy.Tunnel, ports policy.Ports) {
	x, y := byte(rand.IntN(250)+1), byte(rand.IntN(250)+1)
	a, b := netip.AddrFrom4([4]byte{127, x, y, 1}), netip.AddrFrom4([4]byte{127, x, y, 2})
	p := uint16(20000 + rand.IntN(20000))
	ports = policy.Ports{IKE: p, NATT: p + 1}
	mk := func(local, remote netip.Addr) policy.Tunnel {
		return policy.Tunnel{
			Name: "tunnel1", LocalAddr: local, RemoteAddr: remote, RemotePorts: ports, PSK: policy.Secret(awsTestPSK),
			Phase1:   policy.Phase1{Proposals: []policy.Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA1, DHGroup: 14}}, Lifetime: time.Hour},
			Phase2:   policy.Phase2{Proposals: []policy.Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA1, PFSGroup: 14}}, Lifetime: time.Hour},
			DPDDelay: 200 * time.Millisecond, DPDTimeout: time.Second, DPDAction: policy.DPDClear,
		}
	}
	cgw = mk(a, b)
	cgw.StartupAction = policy.StartupStart
	return mk(b, a), cgw, ports
}

// TestAWSMessagesFromEngines provokes every IKEv1 message AWS documents
// (AWSUG log-contents.md) with real engines and checks that the vgw's aws
// log carries it in VpnLogDetail, with the documented fields.
func TestAWSMessagesFromEngines(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(vgw, cgw *policy.Tunnel)
		act  func(t *testing.T, vgw, cgw *awsEngine)
		want string
	}{
		{"wrong PSK", func(_, c *policy.Tunnel) { c.PSK = policy.Secret(awsTestWrong) }, nil, awsInvalidPSK},
		{"phase 1 proposal", func(_, c *policy.Tunnel) {
			c.Phase1.Proposals = []policy.Phase1Proposal{{EncKeyBits: 192, Hash: crypto.SHA1, DHGroup: 5}}
		}, nil, awsNoProposalP1},
		{"phase 2 proposal", func(_, c *policy.Tunnel) {
			c.Phase2.Proposals = []policy.Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 192, Integrity: isakmp.AuthHMACSHA1}}
		}, nil, awsNoProposalP2},
		{"DELETE phase 2", nil, terminateCGW, awsDeletePhase2},
		{"DELETE IKE_SA", nil, terminateCGW, awsDeleteIKESA},
		{"DPD", nil, silenceCGW, awsPeerDead},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			vt, ct, ports := awsTestPair()
			if c.mod != nil {
				c.mod(&vt, &ct)
			}
			vgw := startAWSEngine(t, gwconfig.VGW, vt, ports)
			time.Sleep(20 * time.Millisecond)
			cgw := startAWSEngine(t, gwconfig.CGW, ct, ports)
			if c.act != nil {
				// Each record shows the states as they were when it was
				// logged, not as an event follower last saw them.
				if r := vgw.waitRecord(t, "phase 1 established"); r["TunnelIKEPhase1State"] != "Established" {
					t.Errorf("phase 1 established logged with TunnelIKEPhase1State %v", r["TunnelIKEPhase1State"])
				}
				if r := vgw.waitRecord(t, "phase 2 established"); r["TunnelIKEPhase2State"] != "Established" {
					t.Errorf("phase 2 established logged with TunnelIKEPhase2State %v", r["TunnelIKEPhase2State"])
				}
				c.act(t, vgw, cgw)
			}
			rec := vgw.waitRecord(t, c.want)
			for _, f := range []string{"VpnLogCreationTimestamp", "VpnConnectionId", "TunnelOutsideIPAddress", "TunnelDPDEnabled",
				"TunnelCGWNATTDetectionStatus", "TunnelIKEPhase1State", "TunnelIKEPhase2State", "VpnLogDetail", "VpnlabDetail"} {
				if _, ok := rec[f]; !ok {
					t.Errorf("record lacks %s: %v", f, rec)
				}
			}
			if rec["VpnConnectionId"] != "vpn-0123456789abcdef0" || rec["TunnelOutsideIPAddress"] != vt.LocalAddr.String() || rec["TunnelDPDEnabled"] != true {
				t.Errorf("record fields %v", rec)
			}
			if c.want == awsDeletePhase2 {
				if d := rec["VpnLogDetail"].(string); len(strings.TrimPrefix(d, awsDeletePhase2)) != 8 {
					t.Errorf("DELETE record without an 8-digit SPI: %q", d)
				}
			}
			for _, g := range []*awsEngine{vgw, cgw} {
				if l := g.logs.String(); strings.Contains(l, awsTestPSK) || strings.Contains(l, awsTestWrong) {
					t.Fatal("a pre-shared key appears in the log")
				}
			}
			// The customer side keeps the engine's wording.
			if strings.Contains(cgw.logs.String(), "AWS tunnel") {
				t.Errorf("cgw log uses AWS's wording:\n%s", cgw.logs.String())
			}
		})
	}
}

// terminateCGW deletes the cgw's SAs with DELETE messages.
func terminateCGW(t *testing.T, _, cgw *awsEngine) {
	if err := cgw.e.Terminate("tunnel1"); err != nil {
		t.Fatal(err)
	}
}

// silenceCGW stops the cgw without DELETE (impairment no-delete), so the
// vgw's DPD declares it dead.
func silenceCGW(t *testing.T, _, cgw *awsEngine) {
	imp, err := impair.Parse("no-delete")
	if err != nil {
		t.Fatal(err)
	}
	if err := cgw.e.Impair(imp); err != nil {
		t.Fatal(err)
	}
	cgw.stop()
}
