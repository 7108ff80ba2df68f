package ike

import (
	"crypto"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
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
	vgw.e.Status() // returns once the loop runs, after the sockets are bound
	cgw = startGW(t, "cgw", cc, append([]Option{WithBinder(network)}, o.cgwOpts...)...)
	return cgw, vgw, network
}

// v2Header decodes the IKEv2 header of a datagram as the network carries
// it (with the non-ESP marker on the NAT-T port).
func v2Header(to netip.AddrPort, b []byte) (wire.Header, bool) {
	if to.Port() == DefaultPorts.NATT {
		if len(b) < 4 || string(b[:4]) != "\x00\x00\x00\x00" {
			return wire.Header{}, false
		}
		b = b[4:]
	}
	if !isIKEv2(b) {
		return wire.Header{}, false
	}
	h, err := wire.DecodeHeader(b)
	return h, err == nil
}

// waitError waits until the tunnel's last error contains want.
func waitError(t *testing.T, g *gw, want string) TunnelStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := g.tunnel(t)
		if strings.Contains(st.LastError, want) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("last error %q does not contain %q", st.LastError, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIKEv2Basic: IKE_SA_INIT and IKE_AUTH with the first child SA
// between a customer (IKEv2 only) and a vgw (both versions, IKEv2 first)
// with AWS's proposals: the pair's SPIs and keys cross, the status says
// IKEv2 with the SPIs, roles and the proposal AWS's rule picks, and the
// responder saw INITIAL_CONTACT.
func TestIKEv2Basic(t *testing.T) {
	cgw, vgw, network := newV2Pair(t, v2PairOpts{})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	up := vgw.waitEvent(t, "phase1-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	checkPairsMatch(t, cgw, vgw)
	cs, vs := cgw.tunnel(t), vgw.tunnel(t)
	if cs.IKEVersion != "ikev2" || vs.IKEVersion != "ikev2" {
		t.Fatalf("versions: cgw %q vgw %q", cs.IKEVersion, vs.IKEVersion)
	}
	if cs.ICookie != vs.ICookie || cs.RCookie != vs.RCookie || cs.ICookie == strings.Repeat("0", 16) || cs.RCookie == strings.Repeat("0", 16) {
		t.Fatalf("SPIs: cgw %s/%s vgw %s/%s", cs.ICookie, cs.RCookie, vs.ICookie, vs.RCookie)
	}
	if cs.Role != "initiator" || vs.Role != "responder" || cs.Exchange != "IKE_AUTH" {
		t.Fatalf("roles %s/%s exchange %s", cs.Role, vs.Role, cs.Exchange)
	}
	if cs.Proposal != "aes128-sha1-modp2048" || vs.Proposal != cs.Proposal || vs.SAs[0].Proposal != "esp-aes128-sha1" {
		t.Fatalf("proposals: cgw %q vgw %q child %q", cs.Proposal, vs.Proposal, vs.SAs[0].Proposal)
	}
	if cs.Phase1State != "Established" || vs.Phase2State != "Established" || cs.Status != "UP" || vs.Status != "UP" {
		t.Fatalf("states: cgw %s/%s %s vgw %s/%s %s", cs.Phase1State, cs.Phase2State, cs.Status, vs.Phase1State, vs.Phase2State, vs.Status)
	}
	if up.Detail["initial_contact"] != "true" || up.Detail["ike_version"] != "ikev2" {
		t.Fatalf("vgw phase1-up event %v", up.Detail)
	}
	p := cgw.dp.Pairs()[0]
	if p.Mode != childsa.ModeTunnel || p.UDPEncap || p.LocalTS.String() != "0.0.0.0/0" || p.Lifetime != time.Hour {
		t.Fatalf("cgw pair %+v", p)
	}
	if cs.NATDetected || cs.Floated || network.Dropped() != 0 {
		t.Fatalf("NAT %v floated %v dropped %d", cs.NATDetected, cs.Floated, network.Dropped())
	}
	if st := vgw.e.Status(); st.Counters.HalfOpen != 0 {
		t.Fatalf("half-open after establishment: %d", st.Counters.HalfOpen)
	}
	one, err := vgw.e.TunnelStatus("tunnel1")
	page := vgw.e.StatusPage(0, 1)
	if err != nil || one.IKEVersion != "ikev2" || one.ICookie != vs.ICookie || len(page.Tunnels) != 1 || page.Tunnels[0].IKEVersion != "ikev2" {
		t.Fatalf("TunnelStatus %+v (%v), StatusPage %+v", one, err, page)
	}
	if vs.Phase1Expires.IsZero() || vs.SAs[0].Expires.IsZero() {
		t.Fatal("lifetimes missing from the status")
	}
}

// TestIKEv2TransportMode: USE_TRANSPORT_MODE both ways, a transport pair.
func TestIKEv2TransportMode(t *testing.T) {
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) {
		ct.Phase2.Mode, vt.Phase2.Mode = childsa.ModeTransport, childsa.ModeTransport
	}})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	checkPairsMatch(t, cgw, vgw)
	if cgw.dp.Pairs()[0].Mode != childsa.ModeTransport || vgw.dp.Pairs()[0].Mode != childsa.ModeTransport {
		t.Fatal("pairs are not in transport mode")
	}
}

// TestIKEv2TransportModeRefused: a responder configured for transport
// mode refuses a child SA the initiator wants in tunnel mode; the IKE SA
// stays up (RFC 7296 section 2.21.2) and both sides say why.
func TestIKEv2TransportModeRefused(t *testing.T) {
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) { vt.Phase2.Mode = childsa.ModeTransport }})
	waitError(t, vgw, "tunnel is configured for transport mode")
	cs := waitError(t, cgw, "NO_PROPOSAL_CHOSEN")
	if cs.Phase1State != "Established" || cs.Phase2State != "Down" || len(cgw.dp.Pairs()) != 0 {
		t.Fatalf("cgw %s/%s with %d pairs", cs.Phase1State, cs.Phase2State, len(cgw.dp.Pairs()))
	}
}

// TestIKEv2Algorithms: every AWS IKE SA algorithm and DH group, with the
// initiator alternating between the customer and the vgw (AWS's startup
// action start): each encryption (AES-128/256-CBC, AES-128/256-GCM-16)
// with each prf/integrity hash over group 14, and each group with
// AES-128/SHA2-256. The status names the proposal the initiator asked for.
func TestIKEv2Algorithms(t *testing.T) {
	type alg struct {
		bits int
		gcm  bool
		h    crypto.Hash
		g    uint16
	}
	var cases []alg
	for _, gcm := range []bool{false, true} {
		for _, bits := range []int{128, 256} {
			for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
				cases = append(cases, alg{bits, gcm, h, 14})
			}
		}
	}
	for _, g := range []uint16{2, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24} {
		cases = append(cases, alg{128, false, crypto.SHA256, g})
	}
	for i, c := range cases {
		p := Phase1Proposal{EncKeyBits: c.bits, Hash: c.h, DHGroup: c.g, GCM: c.gcm}
		vgwInitiates := i%2 == 1
		name := p.String()
		if vgwInitiates {
			name += "/vgw-initiates"
		}
		t.Run(name, func(t *testing.T) {
			cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) {
				ct.Phase1.Proposals = []Phase1Proposal{p}
				if vgwInitiates {
					ct.StartupAction, vt.StartupAction = StartupAdd, StartupStart
					vt.Phase1.Proposals, vt.Phase1.Selection = []Phase1Proposal{p}, SelectInitiatorOrder
					vt.IKEVersions = []policy.Version{policy.IKEv2} // only GCM in phase 1: IKEv1 cannot have it
					ct.Phase1.Proposals = awsVGWPhase1V2()
				}
			}})
			cgw.waitEvent(t, "phase2-up", 20*time.Second)
			vgw.waitEvent(t, "phase2-up", 20*time.Second)
			checkPairsMatch(t, cgw, vgw)
			cs, vs := cgw.tunnel(t), vgw.tunnel(t)
			if cs.Proposal != p.String() || vs.Proposal != p.String() {
				t.Fatalf("proposal: cgw %q vgw %q, want %q", cs.Proposal, vs.Proposal, p)
			}
			wantRole := "initiator"
			if vgwInitiates {
				wantRole = "responder"
			}
			if cs.Role != wantRole {
				t.Fatalf("cgw role %s, want %s", cs.Role, wantRole)
			}
		})
	}
}

// TestIKEv2ChildAlgorithms: each AWS ESP encryption and integrity for the
// first child SA (the keys' lengths are checked by checkPairsMatch).
func TestIKEv2ChildAlgorithms(t *testing.T) {
	var props []Phase2Proposal
	for _, bits := range []int{128, 256} {
		for _, in := range []uint16{isakmp.AuthHMACSHA1, isakmp.AuthHMACSHA2256, isakmp.AuthHMACSHA2384, isakmp.AuthHMACSHA2512} {
			props = append(props, Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: bits, Integrity: in, PFSGroup: 14})
		}
		props = append(props, Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKeyBits: bits, PFSGroup: 14})
	}
	for _, p := range props {
		t.Run(p.String(), func(t *testing.T) {
			cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) { ct.Phase2.Proposals = []Phase2Proposal{p} }})
			cgw.waitEvent(t, "phase2-up", 10*time.Second)
			vgw.waitEvent(t, "phase2-up", 10*time.Second)
			checkPairsMatch(t, cgw, vgw)
			want := p
			want.PFSGroup = 0 // the first child SA is keyed without a DH exchange
			if got := vgw.tunnel(t).SAs[0].Proposal; got != want.String() {
				t.Fatalf("child proposal %q, want %q", got, want)
			}
		})
	}
}

// TestRunBindFailureEndsControlCalls: when Run cannot bind its sockets it
// returns the error and control calls (Status, Initiate) return at once
// instead of waiting for a loop that never runs (before, Status hung
// forever, which hung the tests' cleanup after a lost bind race).
func TestRunBindFailureEndsControlCalls(t *testing.T) {
	network := sock.NewNetwork()
	ct, _ := v2Tunnels()
	taken, err := network.Open(netip.AddrPortFrom(ct.LocalAddr, DefaultPorts.IKE))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	e, err := NewEngine(Config{Tunnels: []TunnelConfig{ct}}, WithBinder(network), WithLogger(newDiscardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(t.Context()); err == nil {
		t.Fatal("Run bound an address that is taken")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Status()
		if err := e.Initiate("tunnel1"); err == nil {
			t.Error("Initiate on an engine that never ran succeeded")
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("control calls wait forever after Run failed")
	}
}

// TestIKEv2AWSListOffered: the vgw initiates with AWS's whole IKEv2 list
// (96 CBC and 96 GCM transform sets, offered as two proposals with the
// transforms' union) and the customer accepts only one set, from the end
// of the list; the child SA likewise.
func TestIKEv2AWSListOffered(t *testing.T) {
	network := sock.NewNetwork()
	var proposals atomic.Int32
	network.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
		if h, ok := v2Header(to, b); ok && h.Exchange == wire.ExchangeIKESAInit && !h.Response() {
			if m, err := wire.Decode(b); err == nil && findSA(m.Payloads) != nil {
				proposals.Store(int32(len(findSA(m.Payloads).Proposals)))
			}
		}
		return true
	})
	want := Phase1Proposal{EncKeyBits: 256, Hash: crypto.SHA512, DHGroup: 24, GCM: true}
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{network: network, mod: func(ct, vt *TunnelConfig) {
		ct.StartupAction, vt.StartupAction = StartupAdd, StartupStart
		ct.Phase1.Proposals = []Phase1Proposal{want}
		ct.Phase2.Proposals = []Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 256, Integrity: isakmp.AuthHMACSHA2512}}
	}})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	checkPairsMatch(t, cgw, vgw)
	if vs := vgw.tunnel(t); vs.Proposal != want.String() || vs.SAs[0].Proposal != "esp-aes256-sha512" || vs.Role != "initiator" {
		t.Fatalf("vgw: %s %q / %q", vs.Role, vs.Proposal, vs.SAs[0].Proposal)
	}
	if n := proposals.Load(); n != 2 {
		t.Fatalf("IKE_SA_INIT offered %d proposals, want 2", n)
	}
}
