package datapath

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
)

// stagePairs returns the two sides of a second pair on tunnel1 (a's
// inbound SPI inA, b's inB), as install builds them.
func stagePairs(s suite, inA, inB uint32) (pa, pb childsa.Pair) {
	ca, cb := s.child(inA), s.child(inB)
	pa = childsa.Pair{Tunnel: "tunnel1", Inbound: ca, Outbound: cb, Mode: childsa.ModeTunnel, UDPEncap: true,
		Local: outsideA, Remote: outsideB, LocalTS: netA, RemoteTS: netB, Lifetime: time.Hour}
	pb = childsa.Pair{Tunnel: "tunnel1", Inbound: cb, Outbound: ca, Mode: childsa.ModeTunnel, UDPEncap: true,
		Local: outsideB, Remote: outsideA, LocalTS: netB, RemoteTS: netA, Lifetime: time.Hour}
	return pa, pb
}

// TestStagedInstall (childsa.StagedDataPath): a pair installed inbound only
// verifies and delivers packets at once but sends nothing; the tunnel
// keeps sending on its older pair until ActivateOutbound, and a staged
// pair never takes over when the sending pair is deleted. Deleting a
// staged pair frees its SPI.
func TestStagedInstall(t *testing.T) {
	a, b := newGWs(t)
	s := gcmSuite()
	install(t, a, b, s, childsa.ModeTunnel, true, 0x1000, 0x2000)
	recA, recB := &recorder{}, &recorder{}
	a.wire.SetFilter(recA.filter)
	b.wire.SetFilter(recB.filter)
	pa, pb := stagePairs(s, 0x3000, 0x4000)
	if err := a.dp.InstallInbound(pa); err != nil {
		t.Fatal(err)
	}
	if err := b.dp.InstallInbound(pb); err != nil {
		t.Fatal(err)
	}
	sendsOn := func(from, to *gw, rec *recorder, src, dst netip.Addr, want uint32) {
		t.Helper()
		got := through(from, to, udpPacket(src, dst, 10, 0))
		if got == nil {
			t.Fatalf("no delivery (want SPI %x)", want)
		}
		if spi := binary.BigEndian.Uint32(rec.last()); spi != want {
			t.Fatalf("sent with SPI %x, want %x", spi, want)
		}
	}
	// Both staged: both still send on the first pair.
	sendsOn(a, b, recA, hostA, hostB, 0x2000)
	sendsOn(b, a, recB, hostB, hostA, 0x1000)
	// a moves (the initiator after the grace period): b's staged inbound
	// SA accepts it before b has moved.
	if err := a.dp.ActivateOutbound(protoESP, 0x3000); err != nil {
		t.Fatal(err)
	}
	sendsOn(a, b, recA, hostA, hostB, 0x4000)
	if b.dp.LastInbound(protoESP, 0x4000).IsZero() {
		t.Fatal("the staged inbound SA did not record the packet it accepted")
	}
	sendsOn(b, a, recB, hostB, hostA, 0x1000)
	// b's sending pair goes while its new one is still staged: the staged
	// pair does not take over by itself.
	if err := b.dp.Delete(protoESP, 0x2000); err != nil {
		t.Fatal(err)
	}
	if got := through(b, a, udpPacket(hostB, hostA, 10, 0)); got != nil {
		t.Fatal("a staged pair sent before ActivateOutbound")
	}
	if err := b.dp.ActivateOutbound(protoESP, 0x4000); err != nil {
		t.Fatal(err)
	}
	sendsOn(b, a, recB, hostB, hostA, 0x3000)
	if err := b.dp.ActivateOutbound(protoESP, 0x9999); err == nil {
		t.Fatal("ActivateOutbound of an unknown SPI succeeded")
	}
	// A staged pair that is deleted (quick mode failed) frees its SPI.
	pa2, _ := stagePairs(s, 0x5000, 0x6000)
	if err := a.dp.InstallInbound(pa2); err != nil {
		t.Fatal(err)
	}
	if err := a.dp.Delete(protoESP, 0x5000); err != nil {
		t.Fatal(err)
	}
	a.dp.mu.Lock()
	held := a.dp.spis[spiKey(protoESP, 0x5000)]
	a.dp.mu.Unlock()
	if held || !a.dp.LastInbound(protoESP, 0x5000).IsZero() {
		t.Fatal("the deleted staged pair's SPI is still held")
	}
	if _, ok := a.dp.SACounters(protoESP, 0x5000); ok {
		t.Fatal("the deleted staged pair is still in the SA database")
	}
	sendsOn(a, b, recA, hostA, hostB, 0x4000)
}
