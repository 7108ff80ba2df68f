package bgp

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/routes"
)

// blackhole relays TCP connections from the cgw's side (it listens on from)
// to the vgw's listener (it dials to from the address src, which is the vgw's
// neighbor address), and can go silent as a killed gateway behind an IPsec
// tunnel does: silence stops relaying without closing the vgw's side of the
// existing connections, so the vgw's session stays Established with nobody
// behind it, and the vgw learns nothing until its hold timer expires.
type blackhole struct {
	t   *testing.T
	l   net.Listener
	src netip.Addr
	to  string

	mu    sync.Mutex
	pairs []*relayed
}

// relayed is one relayed connection: cgw is the cgw's side, vgw the vgw's.
type relayed struct {
	cgw, vgw net.Conn
	silenced bool // the cgw died: its side is closed, the vgw's is left alone
}

func newBlackhole(t *testing.T, from netip.AddrPort, src netip.Addr, to netip.AddrPort) *blackhole {
	l, err := net.Listen("tcp", from.String())
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{t: t, l: l, src: src, to: to.String()}
	t.Cleanup(func() {
		l.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.pairs {
			p.cgw.Close()
			p.vgw.Close()
		}
	})
	go b.accept()
	return b
}

func (b *blackhole) accept() {
	for {
		c, err := b.l.Accept()
		if err != nil {
			return
		}
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: b.src.AsSlice()}, Timeout: 2 * time.Second}
		v, err := d.Dial("tcp", b.to)
		if err != nil {
			c.Close()
			continue
		}
		p := &relayed{cgw: c, vgw: v}
		b.mu.Lock()
		b.pairs = append(b.pairs, p)
		b.mu.Unlock()
		go b.copy(p, v, c)
		go b.copy(p, c, v)
	}
}

// copy relays one direction; its end closes both sides, unless the cgw
// died (a dead gateway sends no FIN).
func (b *blackhole) copy(p *relayed, dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !p.silenced {
		p.cgw.Close()
		p.vgw.Close()
	}
}

// silence cuts every relayed connection on the cgw's side only.
func (b *blackhole) silence() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.pairs {
		p.silenced = true
		p.cgw.Close()
	}
}

// TestPeerRestarted: the customer gateway dies silently and a new one comes
// up. Told that the peer restarted (what the gateway does on IKE
// INITIAL-CONTACT), the passive vgw drops its stale session at once and
// accepts the new cgw's first connection: the session is back within a few
// seconds. Without that, the vgw keeps the stale session until its hold
// timer (9 s) expires, refuses the new cgw's connections meanwhile and
// after it (GoBGP's 5 s idle hold), and the new cgw sits out its own idle
// hold after every refusal: measured 14.2-14.7 s.
func TestPeerRestarted(t *testing.T) {
	needServers(t)
	t.Parallel()
	vgwAddr, cgwAddr := nextAddr(t), nextAddr(t)
	relayIn, relayOut := nextAddr(t), nextAddr(t)
	vgwPort := freePort(t, vgwAddr)
	relayPort := freePort(t, relayIn)

	vgwSide := newSide(t, "vgw", 64512, vgwPort)
	vgwSide.cfg.Passive = true
	vgwSide.cfg.ListenAddresses = []netip.Addr{vgwAddr}
	vgwSide.cfg.Advertise = []netip.Prefix{vpcCIDR}
	vgwSide.nbs = []Neighbor{{Tunnel: "tunnel1", Local: vgwAddr, Peer: relayOut, PeerASN: 65000}}
	cgwSide := newSide(t, "cgw", 65000, -1) // connects only
	cgwSide.cfg.Advertise = []netip.Prefix{siteNet1}
	cgwSide.nbs = []Neighbor{{Tunnel: "tunnel1", Local: cgwAddr, Peer: relayIn, PeerASN: 64512, PeerPort: relayPort}}
	relay := newBlackhole(t, netip.AddrPortFrom(relayIn, uint16(relayPort)), relayOut, netip.AddrPortFrom(vgwAddr, uint16(vgwPort)))

	vgw, vgwRec := vgwSide.start(t)
	cgw, _ := cgwSide.start(t)
	waitEstablished(t, vgw, "tunnel1")
	waitEstablished(t, cgw, "tunnel1")
	waitRoute(t, vgw, siteNet1, 1, "tunnel1")

	// The cgw dies: no NOTIFICATION, no FIN reaches the vgw.
	relay.silence()
	cgw.Stop()
	if n := neighborStatus(vgw, "tunnel1"); n.State != Established {
		t.Fatalf("vgw session %s right after the silent death; the test needs it stale (Established)", n.State)
	}

	// A new cgw, and the IKE layer's news that the peer restarted.
	restarted := time.Now()
	cgw2, _ := cgwSide.start(t)
	if err := vgw.PeerRestarted("tunnel1", "test: the peer restarted"); err != nil {
		t.Fatal(err)
	}
	// Functional bound, not a speed measurement: GoBGP's first connection
	// attempt comes 1-2 s after the start; without PeerRestarted the
	// session is back only after 14-15 s (hold timer 9 s, then idle holds).
	const bound = 6 * time.Second
	eventually(t, bound, "session with the restarted cgw", func() string {
		if n := neighborStatus(vgw, "tunnel1"); n.State != Established {
			return "vgw " + string(n.State)
		}
		if n := neighborStatus(cgw2, "tunnel1"); n.State != Established {
			return "new cgw " + string(n.State)
		}
		return ""
	})
	t.Logf("session back %v after the restart", time.Since(restarted).Round(10*time.Millisecond))
	waitRoute(t, vgw, siteNet1, 1, "tunnel1")
	waitRoute(t, cgw2, vpcCIDR, 1, "tunnel1")

	// The stale session's end was reported, and its routes withdrawn.
	if e := vgwRec.findSession(func(e SessionEvent) bool { return e.From == Established && e.To == Idle }); e == nil {
		t.Error("no session event for the stale session's end")
	}
	if c := vgwRec.find(func(c routes.Change) bool { return c.Kind == routes.Withdrawn && c.Prefix == siteNet1 }); c == nil {
		t.Error("the stale session's route was not withdrawn")
	}

	// Nothing to drop while the session is merely waiting, and a disabled
	// neighbor stays down.
	if err := vgw.DisableNeighbor("tunnel1", "test"); err != nil {
		t.Fatal(err)
	}
	waitState(t, vgw, "tunnel1", func(s SessionState) bool { return s != Established }, "down")
	if err := vgw.PeerRestarted("tunnel1", "test"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // the new cgw retries within 2 s
	if n := neighborStatus(vgw, "tunnel1"); n.State == Established || n.AdminState != "down" {
		t.Errorf("disabled neighbor after PeerRestarted: %s, admin %s", n.State, n.AdminState)
	}
	if err := vgw.PeerRestarted("tunnel9", "test"); err == nil {
		t.Error("PeerRestarted of an unknown tunnel: no error")
	}
	vgw.Stop()
	if err := vgw.PeerRestarted("tunnel1", "test"); !errors.Is(err, ErrStopped) {
		t.Errorf("PeerRestarted after Stop: %v, want ErrStopped", err)
	}
}
