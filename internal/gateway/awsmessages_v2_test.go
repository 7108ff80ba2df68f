package gateway

import (
	"crypto"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/ike/sock"
)

// TestAWSMessagesFromEnginesIKEv2 provokes the IKEv2 failures with real
// engines on an in-memory network (vgw: both versions, IKEv2 first, as AWS
// by default; cgw: IKEv2) and checks that the vgw's aws log carries AWS's
// IKEv2 message (AWSUG log-contents.md, "IKEv2 Error Messages") where AWS
// documents one, the engine's wording (and no VpnlabDetail) where it does
// not, with the tunnel's fields either way.
func TestAWSMessagesFromEnginesIKEv2(t *testing.T) {
	ts := func(v, c *policy.Tunnel) {
		v.Phase2.LocalTS, v.Phase2.RemoteTS = netip.MustParsePrefix("172.31.0.0/16"), netip.MustParsePrefix("10.10.0.0/16")
		c.Phase2.LocalTS, c.Phase2.RemoteTS = netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("172.31.0.0/16")
	}
	childProposal := func(_, c *policy.Tunnel) {
		c.Phase2.Proposals = []policy.Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 256, Integrity: isakmp.AuthHMACSHA1, PFSGroup: 14}}
	}
	vgwStarts := func(v, c *policy.Tunnel) {
		v.StartupAction, c.StartupAction = policy.StartupStart, policy.Tunnel{}.StartupAction
	}
	both := func(fs ...func(v, c *policy.Tunnel)) func(v, c *policy.Tunnel) {
		return func(v, c *policy.Tunnel) {
			for _, f := range fs {
				f(v, c)
			}
		}
	}
	cgwAddr := "<cgw>" // replaced by the cgw's address
	for _, c := range []struct {
		name    string
		mod     func(vgw, cgw *policy.Tunnel)
		act     func(t *testing.T, network *sock.Network, vgw, cgw *awsEngine)
		noCGW   bool
		want    []string // VpnLogDetail prefixes, in any order
		engine  bool     // want is the engine's wording: no VpnlabDetail
		pattern string   // whole VpnLogDetail of want[0], if set
	}{
		{name: "wrong PSK", mod: func(_, c *policy.Tunnel) { c.PSK = policy.Secret(awsTestWrong) },
			want: []string{awsV2AuthFailed, awsV2PSKMismatch + cgwAddr}},
		{name: "IKE SA proposal", mod: func(_, c *policy.Tunnel) {
			c.Phase1.Proposals = []policy.Phase1Proposal{{EncKeyBits: 256, Hash: crypto.SHA1, DHGroup: 14}}
		}, want: []string{awsNoProposalP1}},
		{name: "child proposal, cgw initiates", mod: childProposal, want: []string{awsNoProposalP2}},
		{name: "child proposal, vgw initiates", mod: both(childProposal, vgwStarts), want: []string{awsV2ChildFailed}},
		{name: "TS_UNACCEPTABLE, vgw initiates", mod: both(ts, vgwStarts), want: []string{awsV2TSUnaccept}},
		{name: "TS_UNACCEPTABLE, cgw initiates", mod: ts, want: []string{awsV2ChildFailed}},
		{name: "DELETE IKE_SA", act: func(t *testing.T, _ *sock.Network, _, cgw *awsEngine) { terminateCGW(t, nil, cgw) }, want: []string{awsDeleteIKESA}},
		{name: "liveness timeout", act: func(t *testing.T, network *sock.Network, vgw, cgw *awsEngine) {
			network.SetFilter(func(from, _ netip.AddrPort, _ []byte) bool { return from.Addr().String() != vgw.remote })
		}, want: []string{"AWS tunnel DPD timed out after "}, pattern: `^AWS tunnel DPD timed out after [1-9][0-9]* retransmits$`},
		{name: "no answer", mod: vgwStarts, noCGW: true, want: []string{awsV2HalfOpen + cgwAddr}},
		{name: "INVALID_KE", mod: func(v, c *policy.Tunnel) {
			c.Phase1.Proposals = []policy.Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA1, DHGroup: 14}, {EncKeyBits: 128, Hash: crypto.SHA1, DHGroup: 19}}
			v.Phase1.Proposals = []policy.Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA1, DHGroup: 19}}
		}, want: []string{"IKE_SA_INIT: KE of another group than the chosen proposal's: answering INVALID_KE_PAYLOAD"}, engine: true},
		{name: "version mismatch", mod: func(v, c *policy.Tunnel) {
			v.IKEVersions, c.IKEVersions = []policy.Version{policy.IKEv2}, []policy.Version{policy.IKEv1}
		}, want: []string{"peer started IKEv1 but tunnel allows only ikev2"}, engine: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			vt, ct, ports := awsTestPair()
			vt.IKEVersions, ct.IKEVersions = []policy.Version{policy.IKEv2, policy.IKEv1}, []policy.Version{policy.IKEv2}
			if c.mod != nil {
				c.mod(&vt, &ct)
			}
			network := sock.NewNetwork()
			vgw := startAWSEngine(t, gwconfig.VGW, vt, ports, ike.WithBinder(network))
			vgw.remote = ct.LocalAddr.String()
			vgw.e.Status() // bound
			var cgw *awsEngine
			if !c.noCGW {
				cgw = startAWSEngine(t, gwconfig.CGW, ct, ports, ike.WithBinder(network))
			}
			if c.act != nil {
				vgw.waitRecord(t, "IKE SA established (IKEv2)")
				c.act(t, network, vgw, cgw)
			}
			for i, w := range c.want {
				w = strings.ReplaceAll(w, cgwAddr, ct.LocalAddr.String())
				rec := vgw.waitRecord(t, w)
				for _, f := range []string{"VpnLogCreationTimestamp", "VpnConnectionId", "TunnelOutsideIPAddress", "TunnelDPDEnabled",
					"TunnelCGWNATTDetectionStatus", "TunnelIKEPhase1State", "TunnelIKEPhase2State", "VpnLogDetail"} {
					if _, ok := rec[f]; !ok {
						t.Errorf("record lacks %s: %v", f, rec)
					}
				}
				if _, ok := rec["VpnlabDetail"]; ok == c.engine {
					t.Errorf("VpnlabDetail present %v, want %v: %v", ok, !c.engine, rec)
				}
				if rec["VpnConnectionId"] != "vpn-0123456789abcdef0" || rec["TunnelOutsideIPAddress"] != vt.LocalAddr.String() {
					t.Errorf("record fields %v", rec)
				}
				if d := rec["VpnLogDetail"].(string); i == 0 && c.pattern != "" && !regexp.MustCompile(c.pattern).MatchString(d) {
					t.Errorf("VpnLogDetail %q does not match %s", d, c.pattern)
				} else if !c.engine && c.pattern == "" && d != w {
					t.Errorf("VpnLogDetail %q, want exactly %q", d, w)
				}
			}
			for _, g := range []*awsEngine{vgw, cgw} {
				if g == nil {
					continue
				}
				if l := g.logs.String(); strings.Contains(l, awsTestPSK) || strings.Contains(l, awsTestWrong) {
					t.Fatal("a pre-shared key appears in the log")
				}
			}
			if cgw != nil && strings.Contains(cgw.logs.String(), "AWS tunnel") {
				t.Errorf("cgw log uses AWS's wording:\n%s", cgw.logs.String())
			}
		})
	}
}

// TestAWSMessageV2Records maps the IKEv2 records the engine test does not
// provoke (ike/ikev2_create_child_sa.go's and ikev2_rekey.go's refusals of
// a CREATE_CHILD_SA, the responder's half-open timeout, a rekey collision)
// and checks that IKEv1 records keep IKEv1's messages.
func TestAWSMessageV2Records(t *testing.T) {
	v2 := func(msg string, kv ...string) *logrus.Entry {
		d := logrus.Fields{"tunnel": "tunnel1", "ike_version": "ikev2"}
		for i := 0; i+1 < len(kv); i += 2 {
			d[kv[i]] = kv[i+1]
		}
		return &logrus.Entry{Message: msg, Data: d}
	}
	for _, c := range []struct {
		e    *logrus.Entry
		want string
	}{
		{v2("refusing the peer's request: ikev2: NO_PROPOSAL_CHOSEN: none of 1 proposals acceptable", "notify", "NO_PROPOSAL_CHOSEN", "exchange", "CREATE_CHILD_SA"), awsNoProposalP2},
		{v2("refusing the peer's request: ikev2: NO_PROPOSAL_CHOSEN: none of 1 proposals acceptable", "notify", "NO_PROPOSAL_CHOSEN", "exchange", "IKE SA rekey"), awsNoProposalP1},
		{v2("refusing the peer's request: the IKE SA is being deleted", "notify", "TEMPORARY_FAILURE", "exchange", "CREATE_CHILD_SA"), ""},
		{v2("IKE_AUTH did not come in time: dropping the half-open IKEv2 SA", "peer", "198.51.100.7:4500"), awsV2HalfOpen + "198.51.100.7"},
		{v2("no answer: giving up", "message", "CREATE_CHILD_SA request (child SA rekey)", "peer", "198.51.100.7:500"), ""},
		{v2("child SA rekey collision (both ends rekeyed): the exchange with the lowest nonce made the redundant pair (RFC 7296 2.8.1)"), awsV2ChildRedundant},
		{v2("IKE SA negotiation failed", "reason", "IKEv2: the peer refused our authentication (AUTHENTICATION_FAILED): pre-shared key or identity mismatch"), ""},
		{&logrus.Entry{Message: "Peer is not responsive - Declaring peer dead", Data: logrus.Fields{"tunnel": "tunnel1"}}, awsPeerDead},
		{&logrus.Entry{Message: "tunnel error", Data: logrus.Fields{"tunnel": "tunnel1", "error": "no phase 2 proposal matched"}}, ""},
	} {
		if got := awsMessage(c.e, "198.51.100.2"); got != c.want {
			t.Errorf("%q %v: %q, want %q", c.e.Message, c.e.Data, got, c.want)
		}
	}
}
