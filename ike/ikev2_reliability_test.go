package ike

import (
	"crypto"
	"crypto/rand"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/ike/sock"
)

// v2Traffic counts IKEv2 messages on an in-memory network by direction,
// exchange and kind, and drops those drop selects.
type v2Traffic struct {
	mu     sync.Mutex
	seen   map[string]int
	cookie int // IKE_SA_INIT responses with a COOKIE notify
	invKE  int // IKE_SA_INIT responses with INVALID_KE_PAYLOAD
}

func v2Key(from netip.AddrPort, h wire.Header) string {
	k := from.Addr().String() + " " + h.Exchange.String()
	if h.Response() {
		return k + " response"
	}
	return k + " request"
}

// watch installs the filter: drop(key, n) sees the n-th message (from 1)
// of its key and returns true to lose it.
func (v *v2Traffic) watch(n *sock.Network, drop func(key string, n int) bool) {
	v.seen = map[string]int{}
	n.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
		h, ok := v2Header(to, b)
		if !ok {
			return true
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		k := v2Key(from, h)
		v.seen[k]++
		if h.Exchange == wire.ExchangeIKESAInit && h.Response() {
			if m, err := wire.Decode(b[len(b)-int(h.Length):]); err == nil {
				if wire.FindNotify(m.Payloads, wire.NotifyCookie) != nil {
					v.cookie++
				}
				if wire.FindNotify(m.Payloads, wire.NotifyInvalidKEPayload) != nil {
					v.invKE++
				}
			}
		}
		return drop == nil || !drop(k, v.seen[k])
	})
}

func (v *v2Traffic) count(k string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seen[k]
}

// TestIKEv2InvalidKERetry: the customer's KE is of group 14, the vgw
// accepts only group 19 (which the customer also offers): INVALID_KE_PAYLOAD
// names 19 and the customer retries with it.
func TestIKEv2InvalidKERetry(t *testing.T) {
	network := sock.NewNetwork()
	var tr v2Traffic
	tr.watch(network, nil)
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{network: network, mod: func(ct, vt *TunnelConfig) {
		ct.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 14}, {EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 19}}
		vt.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 19}}
	}})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	checkPairsMatch(t, cgw, vgw)
	if p := cgw.tunnel(t).Proposal; p != "aes128-sha256-ecp256" {
		t.Fatalf("proposal %q", p)
	}
	if tr.invKE != 1 || tr.count(v2C.String()+" IKE_SA_INIT request") != 2 {
		t.Fatalf("INVALID_KE_PAYLOAD %d, IKE_SA_INIT requests %d; want 1, 2", tr.invKE, tr.count(v2C.String()+" IKE_SA_INIT request"))
	}
}

// TestIKEv2CookiesUnderLoad: a second customer leaves an IKE SA half-open
// at the vgw (its IKE_AUTH is lost); with the cookie threshold at one
// half-open SA, the first customer's IKE_SA_INIT is answered with a COOKIE,
// it resends the request with it and the tunnel comes up.
func TestIKEv2CookiesUnderLoad(t *testing.T) {
	c2 := netip.MustParseAddr("192.0.2.3")
	network := sock.NewNetwork()
	var tr v2Traffic
	tr.watch(network, func(k string, n int) bool { return k == c2.String()+" IKE_AUTH request" })
	ct, vt := v2Tunnels()
	vt2 := vt
	vt2.Name, vt2.RemoteAddr = "tunnel2", c2
	ct2 := ct
	ct2.LocalAddr, ct2.LocalID = c2, c2
	vc := Config{Tunnels: []TunnelConfig{vt, vt2}}
	fastRetransmit(&vc)
	vgw := startGW(t, "vgw", vc, WithBinder(network), WithIKEv2CookieThreshold(1))
	vgw.e.Status() // returns once the loop runs, after the sockets are bound
	cc2 := Config{Tunnels: []TunnelConfig{ct2}}
	fastRetransmit(&cc2)
	startGW(t, "cgw2", cc2, WithBinder(network))
	for deadline := time.Now().Add(5 * time.Second); vgw.e.Status().Counters.HalfOpen != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second customer's IKE SA is not half-open")
		}
	}
	cc := Config{Tunnels: []TunnelConfig{ct}}
	fastRetransmit(&cc)
	cgw := startGW(t, "cgw", cc, WithBinder(network))
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	if tr.cookie == 0 || tr.count(v2C.String()+" IKE_SA_INIT request") != 2 {
		t.Fatalf("COOKIE responses %d, IKE_SA_INIT requests %d", tr.cookie, tr.count(v2C.String()+" IKE_SA_INIT request"))
	}
	if vgw.e.Status().Counters.Drops[dropV2CookieDemanded] == 0 {
		t.Fatal("cookie demands not counted")
	}
}

// TestIKEv2LostMessages: the first copy of each of the four messages is
// lost: the initiator retransmits each request, the responder answers a
// retransmitted request from its cache, the tunnel comes up.
func TestIKEv2LostMessages(t *testing.T) {
	network := sock.NewNetwork()
	var tr v2Traffic
	tr.watch(network, func(k string, n int) bool { return n == 1 })
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{network: network})
	cgw.waitEvent(t, "phase2-up", 15*time.Second)
	vgw.waitEvent(t, "phase2-up", 15*time.Second)
	checkPairsMatch(t, cgw, vgw)
	cs, vs := cgw.tunnel(t), vgw.tunnel(t)
	if cs.Counters.Retransmits != 4 || vs.Counters.DuplicatesAnswered != 2 || vs.Counters.Retransmits != 0 {
		t.Fatalf("cgw retransmits %d (want 4), vgw cached answers %d (want 2), vgw retransmits %d (want 0)",
			cs.Counters.Retransmits, vs.Counters.DuplicatesAnswered, vs.Counters.Retransmits)
	}
}

// TestIKEv2GiveUp: nothing reaches the vgw: the customer retransmits
// IKE_SA_INIT RetransmitTries times, then the tunnel is down with the
// reason.
func TestIKEv2GiveUp(t *testing.T) {
	network := sock.NewNetwork()
	var tr v2Traffic
	tr.watch(network, func(k string, n int) bool { return k == v2C.String()+" IKE_SA_INIT request" })
	cgw, _, _ := newV2Pair(t, v2PairOpts{network: network})
	ev := cgw.waitEvent(t, "phase1-down", 10*time.Second)
	if ev.Detail["reason"] != "IKEv2: no answer to IKE_SA_INIT after 3 retransmissions" {
		t.Fatalf("reason %q", ev.Detail["reason"])
	}
	cs := cgw.tunnel(t)
	if cs.Phase1State != "Down" || cs.LastError != ev.Detail["reason"] || cs.Counters.Retransmits != 3 || tr.count(v2C.String()+" IKE_SA_INIT request") != 4 {
		t.Fatalf("state %s error %q retransmits %d sent %d", cs.Phase1State, cs.LastError, cs.Counters.Retransmits, tr.count(v2C.String()+" IKE_SA_INIT request"))
	}
}

// TestIKEv2GiveUpAuth: IKE_AUTH requests are lost: the customer gives up
// IKE_AUTH with the reason.
func TestIKEv2GiveUpAuth(t *testing.T) {
	network := sock.NewNetwork()
	var tr v2Traffic
	tr.watch(network, func(k string, n int) bool { return k == v2C.String()+" IKE_AUTH request" })
	cgw, _, _ := newV2Pair(t, v2PairOpts{network: network})
	ev := cgw.waitEvent(t, "phase1-down", 10*time.Second)
	if ev.Detail["reason"] != "IKEv2: no answer to IKE_AUTH after 3 retransmissions" {
		t.Fatalf("reason %q", ev.Detail["reason"])
	}
}

// v2FirstRequest builds an IKE_SA_INIT request with a fresh SPIi and a
// group 14 KE, as a customer would send it.
func v2FirstRequest(t *testing.T) []byte {
	t.Helper()
	offer, g := ikeOffer([]Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA1, DHGroup: 14}})
	grp, _ := dh.ByID(uint16(g))
	k, err := grp.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m := &wire.Message{
		Header:   wire.Header{SPIi: randomCookie(), Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagInitiator},
		Payloads: []wire.Payload{offer, &wire.KE{Group: g, Data: k.Public()}, &wire.Nonce{Data: randomBytes(32)}},
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIKEv2HalfOpenBound: IKE_SA_INIT requests with new SPIs from one
// peer address hold at most the per-peer bound of half-open SAs (shared
// with IKEv1); the rest are refused and counted.
func TestIKEv2HalfOpenBound(t *testing.T) {
	_, vt := v2Tunnels()
	network := sock.NewNetwork()
	vgw := startGW(t, "vgw", Config{Tunnels: []TunnelConfig{vt}}, WithBinder(network))
	vgw.e.Status() // returns once the loop runs, after the sockets are bound
	conn, err := network.Open(netip.AddrPortFrom(v2C, 500))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var answers atomic.Int32
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				return
			}
			answers.Add(1)
		}
	}()
	for range 10 {
		if err := conn.WriteTo(v2FirstRequest(t), netip.AddrPortFrom(v2V, 500)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := vgw.e.Status().Counters
		if c.HalfOpen == halfOpenPerTunnel && c.HalfOpenRefused == 10-halfOpenPerTunnel && answers.Load() == halfOpenPerTunnel {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("half-open %d refused %d answers %d", c.HalfOpen, c.HalfOpenRefused, answers.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIKEv2NATFloat: through the relaying NAT (engine_test.go) both sides
// detect the NAT, the initiator floats to 4500 for IKE_AUTH and the pair
// is UDP-encapsulated; with every customer datagram duplicated on the way,
// the duplicates are answered from the cache or dropped and the tunnel
// still comes up once; the customer, behind the NAT, sends NAT-keepalives.
func TestIKEv2NATFloat(t *testing.T) {
	for _, dup := range []bool{false, true} {
		name := "plain"
		if dup {
			name = "duplicated"
		}
		t.Run(name, func(t *testing.T) {
			var keepalives atomic.Int32
			count := func(dir string, n int, b []byte) bool {
				if dir == "c2v" && len(b) == 1 && b[0] == 0xff {
					keepalives.Add(1)
				}
				return false
			}
			cgw, vgw := newRelayedPairMod(t, count, dup, func(ct, vt *TunnelConfig) {
				ct.IKEVersions = []policy.Version{policy.IKEv2}
				vt.IKEVersions = []policy.Version{policy.IKEv2}
				ct.NATKeepalive = 50 * time.Millisecond
			})
			cgw.waitEvent(t, "phase2-up", 10*time.Second)
			vgw.waitEvent(t, "phase2-up", 10*time.Second)
			checkPairsMatch(t, cgw, vgw)
			cs, vs := cgw.tunnel(t), vgw.tunnel(t)
			if !cs.NATDetected || !vs.NATDetected || !cs.Floated || !vs.Floated || cs.IKEVersion != "ikev2" {
				t.Fatalf("NAT-T not in use: cgw %+v vgw %+v", cs, vs)
			}
			p := vgw.dp.Pairs()[0]
			if !p.UDPEncap || p.Remote.Port() == 0 || cgw.dp.Pairs()[0].Remote.Port() != cgw.e.cfg.Ports.NATT {
				t.Fatalf("SA not UDP-encapsulated: %+v", p)
			}
			if dup && vs.Counters.DuplicatesAnswered == 0 {
				t.Fatal("no duplicate answered from the cache")
			}
			if cs.Counters.Phase1Established != 1 || vs.Counters.Phase1Established != 1 {
				t.Fatalf("IKE SAs established: cgw %d vgw %d", cs.Counters.Phase1Established, vs.Counters.Phase1Established)
			}
			// The customer is behind the relay's NAT: NAT-keepalives.
			for deadline := time.Now().Add(3 * time.Second); keepalives.Load() < 2; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d NAT-keepalives from the customer", keepalives.Load())
				}
			}
		})
	}
}

// TestIKEv2SimultaneousInitiation: both sides start IKE_SA_INIT at once
// (both startup action start): each negotiation completes and the pairs
// of both sides cross.
func TestIKEv2SimultaneousInitiation(t *testing.T) {
	network := sock.NewNetwork()
	ct, vt := v2Tunnels()
	vt.StartupAction = StartupStart
	vc, cc := Config{Tunnels: []TunnelConfig{vt}}, Config{Tunnels: []TunnelConfig{ct}}
	fastRetransmit(&vc)
	fastRetransmit(&cc)
	vgw := startGW(t, "vgw", vc, WithBinder(network))
	cgw := startGW(t, "cgw", cc, WithBinder(network))
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	time.Sleep(300 * time.Millisecond) // let the other negotiation finish too
	cp, vp := cgw.dp.Pairs(), vgw.dp.Pairs()
	if len(cp) == 0 || len(cp) != len(vp) {
		t.Fatalf("pairs: cgw %d vgw %d", len(cp), len(vp))
	}
	for _, c := range cp {
		found := false
		for _, v := range vp {
			if c.Inbound.SPI == v.Outbound.SPI && c.Outbound.SPI == v.Inbound.SPI && string(c.Inbound.EncKey) == string(v.Outbound.EncKey) {
				found = true
			}
		}
		if !found {
			t.Fatalf("cgw pair %08x/%08x has no counterpart at the vgw", c.Inbound.SPI, c.Outbound.SPI)
		}
	}
	if cs, vs := cgw.tunnel(t), vgw.tunnel(t); cs.Status != "UP" || vs.Status != "UP" {
		t.Fatalf("status cgw %s vgw %s", cs.Status, vs.Status)
	}
}

// TestIKEv2HalfOpenTimeout: an IKE_SA_INIT answered without IKE_AUTH
// following holds a half-open slot for halfOpenTimeout, then the SA goes
// and the tunnel says why (simulated time, the engine's loop run by hand).
func TestIKEv2HalfOpenTimeout(t *testing.T) {
	sim := newSimTime(time.Now())
	_, vt := handshakeTunnels(14)
	vt.IKEVersions = []policy.Version{policy.IKEv2}
	e, _ := harnessEngine(t, vt, &harnessWire{})
	ft := &fakeTimers{clock: sim}
	defer ft.stopAll()
	e.clock = ft
	s := e.sockets[netip.AddrPortFrom(harnessV, DefaultPorts.IKE)]
	e.handleDatagram(s, netip.AddrPortFrom(harnessC, DefaultPorts.IKE), v2FirstRequest(t))
	tun := e.byName["tunnel1"]
	if e.halfOpen != 1 || len(e.sas2) != 1 || tun.phase1State != "Negotiating" {
		t.Fatalf("half-open %d, SAs %d, state %s", e.halfOpen, len(e.sas2), tun.phase1State)
	}
	sim.advance(halfOpenTimeout - time.Second)
	for _, fn := range ft.fireDue() {
		fn()
	}
	for len(e.inbox) > 0 {
		(<-e.inbox)()
	}
	if e.halfOpen != 1 {
		t.Fatal("the half-open SA went before its time")
	}
	sim.advance(2 * time.Second)
	for _, fn := range ft.fireDue() {
		fn()
	}
	for len(e.inbox) > 0 {
		(<-e.inbox)()
	}
	if e.halfOpen != 0 || len(e.sas2) != 0 || len(e.v2init) != 0 || tun.phase1State != "Down" ||
		tun.lastError != "IKEv2: IKE_AUTH did not come in time (responder)" {
		t.Fatalf("after the timeout: half-open %d, SAs %d, state %s, error %q", e.halfOpen, len(e.sas2), tun.phase1State, tun.lastError)
	}
}
