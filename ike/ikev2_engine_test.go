package ike

import (
	"crypto"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/ike/sock"
)

// v2Pair starts a vgw (responder, AWS's proposals and lowest-value
// selection) and a cgw (initiator) on one in-memory network, both allowing
// IKEv2 (IKEv2 first), with mod applied to their tunnels and options.
type v2PairOpts struct {
	mod     func(ct, vt *TunnelConfig)
	vgwOpts []Option
	cgwOpts []Option
	network *sock.Network
	noStart bool
}

var (
	v2C = netip.MustParseAddr("192.0.2.1")
	v2V = netip.MustParseAddr("192.0.2.2")
)

func v2Tunnels() (ct, vt TunnelConfig) {
	vt, ct = baseTunnel(v2V, v2C, DefaultPorts), baseTunnel(v2C, v2V, DefaultPorts)
	vt.Phase1.Proposals, vt.Phase1.Selection = awsVGWPhase1V2(), SelectLowestValue
	vt.Phase2.Proposals, vt.Phase2.Selection = awsVGWPhase2(), SelectLowestValue
	vt.IKEVersions = []policy.Version{policy.IKEv2, policy.IKEv1}
	ct.IKEVersions = []policy.Version{policy.IKEv2}
	ct.StartupAction = StartupStart
	return ct, vt
}

// awsVGWPhase1V2 is AWS's IKEv2 phase 1 list: the CBC cross product and
// AES-GCM-16 with each prf and group.
func awsVGWPhase1V2() []Phase1Proposal {
	out := awsVGWPhase1()
	for _, p := range awsVGWPhase1() {
		p.GCM = true
		out = append(out, p)
	}
	return out
}

func fastRetransmit(cfg *Config) {
	cfg.RetransmitTimeout = 200 * time.Millisecond
	cfg.RetransmitBase = 1.5
	cfg.RetransmitTries = 3
}

func newV2Pair(t *testing.T, o v2PairOpts) (cgw, vgw *gw, network *sock.Network) {
	t.Helper()
	ct, vt := v2Tunnels()
	if o.mod != nil {
		o.mod(&ct, &vt)
	}
	network = o.network
	if network == nil {
		network = sock.NewNetwork()
	}
	vc, cc := Config{Tunnels: []TunnelConfig{vt}}, Config{Tunnels: []TunnelConfig{ct}}
	fastRetransmit(&vc)
	fastRetransmit(&cc)
	vgw = startGW(t, "vgw", vc, append([]Option{WithBinder(network)}, o.vgwOpts...)...)
	waitBound(t, network, netip.AddrPortFrom(vt.LocalAddr, DefaultPorts.NATT))
	cgw = startGW(t, "cgw", cc, append([]Option{WithBinder(network)}, o.cgwOpts...)...)
	return cgw, vgw, network
}

func TestIKEv2Basic(t *testing.T) {
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	checkPairsMatch(t, cgw, vgw)
	cs, vs := cgw.tunnel(t), vgw.tunnel(t)
	if cs.IKEVersion != "ikev2" || vs.IKEVersion != "ikev2" {
		t.Fatalf("versions: cgw %q vgw %q", cs.IKEVersion, vs.IKEVersion)
	}
	if cs.ICookie != vs.ICookie || cs.RCookie != vs.RCookie || cs.Role != "initiator" || vs.Role != "responder" {
		t.Fatalf("SPIs or roles differ: cgw %+v vgw %+v", cs, vs)
	}
	_ = crypto.SHA1
	_ = isakmp.ProtoESP
	_ = strings.Contains
}
