package datapath

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
)

// Packets between the inside /30's link-local addresses (BGP) are counted
// apart from user traffic, both ways, so that "no user traffic on a
// tunnel" can be proved while BGP keepalives cross it.
func TestControlTrafficCountedApart(t *testing.T) {
	a, b := newGWs(t)
	s := suites()[0]
	any4 := netip.MustParsePrefix("0.0.0.0/0")
	inA, inB := s.child(0x1000), s.child(0x2000)
	pa := childsa.Pair{Tunnel: "tunnel1", Inbound: inA, Outbound: inB, Mode: childsa.ModeTunnel,
		Local: outsideA, Remote: outsideB, LocalTS: any4, RemoteTS: any4, Lifetime: time.Hour}
	pb := childsa.Pair{Tunnel: "tunnel1", Inbound: inB, Outbound: inA, Mode: childsa.ModeTunnel,
		Local: outsideB, Remote: outsideA, LocalTS: any4, RemoteTS: any4, Lifetime: time.Hour}
	if err := a.dp.Install(pa); err != nil {
		t.Fatal(err)
	}
	if err := b.dp.Install(pb); err != nil {
		t.Fatal(err)
	}
	cgwInside, vgwInside := netip.MustParseAddr("169.254.10.2"), netip.MustParseAddr("169.254.10.1")
	send := func(from, to *gw, src, dst netip.Addr, n int) {
		t.Helper()
		if through(from, to, udpPacket(src, dst, n, 0)) == nil {
			t.Fatalf("%s -> %s not delivered", src, dst)
		}
	}
	for range 3 {
		send(a, b, hostA, hostB, 100) // user traffic
	}
	send(a, b, cgwInside, vgwInside, 19) // BGP-sized keepalives
	send(a, b, cgwInside, vgwInside, 19)
	send(b, a, vgwInside, cgwInside, 19)
	send(b, a, hostB, hostA, 50)
	send(a, b, hostA, vgwInside, 10) // a host to an inside address: not control

	c, ok := a.dp.SACounters(s.proto, 0x1000)
	if !ok {
		t.Fatal("no counters")
	}
	if c.PacketsOut != 6 || c.ControlPacketsOut != 2 || c.ControlBytesOut != 2*(28+19) ||
		c.PacketsIn != 2 || c.ControlPacketsIn != 1 || c.ControlBytesIn != 28+19 {
		t.Fatalf("counters %+v", c)
	}
	if got := testing.AllocsPerRun(100, func() { a.dp.table.Load().senders[0].ctl.outbound(cgwInside, vgwInside, 47) }); got != 0 {
		t.Fatalf("counting control traffic allocates %v", got)
	}
}
