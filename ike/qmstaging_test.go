package ike

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Staged installation at a phase 2 rekey (qmstaging.go), between two
// in-process engines with MemoryDataPath: the cgw initiates the rekey, the
// vgw responds.

// stagingPair brings a cgw/vgw pair up and returns them with the pair the
// cgw sends on.
func stagingPair(t *testing.T) (cgw, vgw *igw, old ChildSAPair) {
	t.Helper()
	cgw, vgw = newImpairedPair(t, nil, nil, nil)
	up(t, cgw, vgw)
	old, ok := cgw.dp.Sender("tunnel1")
	if !ok {
		t.Fatal("the cgw sends on no pair after phase 2 came up")
	}
	return cgw, vgw, old
}

// waitNewPair waits until g's data path holds a pair other than old and
// returns it (the cgw: QM2 processed).
func waitNewPair(t *testing.T, g *igw, old ChildSAPair, d time.Duration) ChildSAPair {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, p := range g.dp.Pairs() {
			if p.Inbound.SPI != old.Inbound.SPI {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no new pair within %v", g.addr, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func findPair(g *igw, inboundSPI uint32) (ChildSAPair, bool) {
	for _, p := range g.dp.Pairs() {
		if p.Inbound.SPI == inboundSPI {
			return p, true
		}
	}
	return ChildSAPair{}, false
}

// sameSA reports whether two directions carry the same SA: a packet the
// sender protects with out verifies and decrypts with in.
func sameSA(out, in ChildSA) bool {
	return out.SPI == in.SPI && out.Protocol == in.Protocol && out.Encryption == in.Encryption &&
		out.Integrity == in.Integrity && string(out.EncKey) == string(in.EncKey) && string(out.IntegKey) == string(in.IntegKey)
}

// TestRekeyResponderAcceptsBeforeQM3: QM3 of the rekey never reaches the
// vgw (drop-all), yet the vgw already holds the inbound SA the cgw's new
// outbound SA sends to, with the same keys: the cgw's first packet on the
// new pair is accepted. The vgw still sends on the old pair (no QM3, no
// proof that the cgw has the new one). Before staging the vgw installed
// nothing before QM3 and dropped those packets as an unknown SPI.
func TestRekeyResponderAcceptsBeforeQM3(t *testing.T) {
	t.Parallel()
	cgw, vgw, old := stagingPair(t)
	if err := cgw.e.Impair(mustImpair(t, "drop-all:quick:3")); err != nil {
		t.Fatal(err)
	}
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	nw := waitNewPair(t, cgw, old, 10*time.Second)
	cgw.evs.wait(t, "impaired", impairedEvent("quick", 3), 5*time.Second)
	in, ok := findPair(vgw, nw.Outbound.SPI)
	if !ok {
		t.Fatalf("the vgw has no inbound SA %08x for the cgw's new outbound SA before QM3: the cgw's packets on the new pair would be dropped", nw.Outbound.SPI)
	}
	if !sameSA(nw.Outbound, in.Inbound) {
		t.Fatal("the vgw's staged inbound SA differs from the cgw's new outbound SA (SPI, algorithms or keys)")
	}
	if !vgw.dp.Staged(in.Inbound.Protocol, in.Inbound.SPI) {
		t.Fatal("the vgw's new pair is complete without QM3")
	}
	if s, _ := vgw.dp.Sender("tunnel1"); s.Inbound.SPI == in.Inbound.SPI {
		t.Fatal("the vgw sends on the new pair without QM3")
	}
	if n := vgw.tunnel(t, "tunnel1").Counters.Phase2Established; n != 1 {
		t.Fatalf("vgw phase2_established %d without QM3, want 1", n)
	}
}

// TestRekeyInitiatorKeepsOldOutbound: after QM2 the cgw holds the new pair
// but keeps sending on the old one; with no traffic from the vgw on the
// new pair it moves after the grace period, with traffic at once.
func TestRekeyInitiatorKeepsOldOutbound(t *testing.T) {
	t.Parallel()
	for _, traffic := range []bool{false, true} {
		name := "grace"
		if traffic {
			name = "peer-sends"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cgw, vgw, old := stagingPair(t)
			if err := cgw.e.Rekey("tunnel1", 2); err != nil {
				t.Fatal(err)
			}
			nw := waitNewPair(t, cgw, old, 10*time.Second)
			seen := time.Now()
			if s, _ := cgw.dp.Sender("tunnel1"); s.Inbound.SPI != old.Inbound.SPI {
				t.Fatalf("the cgw sends on %08x right after QM2, want the old pair %08x until the vgw uses the new one", s.Inbound.SPI, old.Inbound.SPI)
			}
			// The vgw completes on QM3 and then sends on the new pair.
			deadline := time.Now().Add(5 * time.Second)
			for {
				if s, _ := vgw.dp.Sender("tunnel1"); s.Outbound.SPI == nw.Inbound.SPI {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the vgw did not move to the new pair after QM3")
				}
				time.Sleep(2 * time.Millisecond)
			}
			if traffic {
				cgw.dp.MarkInbound(nw.Inbound.Protocol, nw.Inbound.SPI)
			}
			deadline = time.Now().Add(outboundGrace + 5*time.Second)
			for {
				if s, _ := cgw.dp.Sender("tunnel1"); s.Inbound.SPI == nw.Inbound.SPI {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the cgw never moved its outbound traffic to the new pair")
				}
				time.Sleep(2 * time.Millisecond)
			}
			moved := time.Since(seen)
			why := "grace period over"
			if traffic {
				why = "the peer sends on the new pair"
			}
			if !strings.Contains(cgw.logs.String(), why) {
				t.Fatalf("the cgw moved after %v, but its log does not say %q", moved, why)
			}
			if !traffic && moved > outboundGrace+3*time.Second {
				t.Fatalf("the cgw moved %v after QM2, grace is %v", moved, outboundGrace)
			}
		})
	}
}

// TestRekeyOldPairNotDeletedBeforeOutboundMoved: the vgw sees traffic on
// the new pair and deletes the old one while the cgw still waits (staged):
// the cgw moves its outbound traffic to the new pair before the old one
// goes, so it is never left without a pair to send on.
func TestRekeyOldPairNotDeletedBeforeOutboundMoved(t *testing.T) {
	t.Parallel()
	cgw, vgw, old := stagingPair(t)
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	nw := waitNewPair(t, cgw, old, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if s, _ := vgw.dp.Sender("tunnel1"); s.Outbound.SPI == nw.Inbound.SPI {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the vgw did not move to the new pair after QM3")
		}
		time.Sleep(2 * time.Millisecond)
	}
	vgw.dp.MarkInbound(nw.Outbound.Protocol, nw.Outbound.SPI) // the vgw's new inbound SA
	cgw.evs.wait(t, "phase2-down", detail("spi_in", spiHex(old.Inbound.SPI)), 5*time.Second)
	if s, ok := cgw.dp.Sender("tunnel1"); !ok || s.Inbound.SPI != nw.Inbound.SPI {
		t.Fatalf("after the old pair was deleted the cgw sends on %08x (%v), want the new pair %08x", s.Inbound.SPI, ok, nw.Inbound.SPI)
	}
	if !strings.Contains(cgw.logs.String(), "the pair it replaces is being deleted") {
		t.Fatal("the cgw's log does not say why the outbound moved")
	}
}

// TestRekeyStagedSPIFreedWithoutQM3: QM3 never arrives; while the vgw
// waits it holds the staged inbound SA, and when its quick mode gives up
// the SA and its SPI are gone (no leak), the old pair still sends.
func TestRekeyStagedSPIFreedWithoutQM3(t *testing.T) {
	t.Parallel()
	cgw, vgw, old := stagingPair(t)
	if err := cgw.e.Impair(mustImpair(t, "drop-all:quick:3")); err != nil {
		t.Fatal(err)
	}
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	nw := waitNewPair(t, cgw, old, 10*time.Second)
	staged := nw.Outbound.SPI // the vgw's new inbound SPI
	if _, ok := findPair(vgw, staged); !ok || !vgw.dp.Staged(nw.Outbound.Protocol, staged) {
		t.Fatalf("the vgw holds no staged inbound SA %08x while it waits for QM3", staged)
	}
	vgw.evs.wait(t, "phase2-failed", detail("reason", "timed out"), 15*time.Second)
	if _, ok := findPair(vgw, staged); ok {
		t.Fatalf("the vgw still holds the staged SA %08x after its quick mode gave up", staged)
	}
	if vgw.dp.Allocated(nw.Outbound.Protocol, staged) {
		t.Fatalf("SPI %08x still allocated on the vgw after its quick mode gave up", staged)
	}
	if n := len(vgw.dp.Pairs()); n != 1 {
		t.Fatalf("the vgw holds %d pairs, want the old one only", n)
	}
	if s, ok := vgw.dp.Sender("tunnel1"); !ok || s.Inbound.SPI == staged {
		t.Fatalf("the vgw sends on %08x (%v), want the old pair", s.Inbound.SPI, ok)
	}
}

func spiHex(spi uint32) string { return fmt.Sprintf("%08x", spi) }

// plainDP is a data path without StagedDataPath: Install only.
type plainDP struct{ m *MemoryDataPath }

func (p plainDP) AllocateSPI(proto uint8) (uint32, error)       { return p.m.AllocateSPI(proto) }
func (p plainDP) Install(pair ChildSAPair) error                { return p.m.Install(pair) }
func (p plainDP) Delete(proto uint8, spi uint32) error          { return p.m.Delete(proto, spi) }
func (p plainDP) LastInbound(proto uint8, spi uint32) time.Time { return p.m.LastInbound(proto, spi) }

// TestRekeyWithoutStagedDataPath: data paths without StagedDataPath get
// the whole pair as before: the initiator's outbound moves on QM2, the
// responder installs only on QM3.
func TestRekeyWithoutStagedDataPath(t *testing.T) {
	t.Parallel()
	c, v, ports := loopPair()
	vt := baseTunnel(v, c, ports)
	ct := baseTunnel(c, v, ports)
	ct.StartupAction = StartupStart
	mk := func(tc TunnelConfig) Config {
		return Config{Tunnels: []TunnelConfig{tc}, Ports: ports, RetransmitTimeout: 300 * time.Millisecond, RetransmitBase: 1.5, RetransmitTries: 3}
	}
	vm, cm := NewMemoryDataPath(), NewMemoryDataPath()
	vgw := startIGWWith(t, "vgw", mk(vt), vm, plainDP{vm})
	time.Sleep(20 * time.Millisecond)
	cgw := startIGWWith(t, "cgw", mk(ct), cm, plainDP{cm})
	up(t, cgw, vgw)
	old, _ := cgw.dp.Sender("tunnel1")
	if err := cgw.e.Impair(mustImpair(t, "drop-all:quick:3")); err != nil {
		t.Fatal(err)
	}
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	nw := waitNewPair(t, cgw, old, 10*time.Second)
	if s, _ := cgw.dp.Sender("tunnel1"); s.Inbound.SPI != nw.Inbound.SPI {
		t.Fatalf("without staging the cgw should send on the new pair at once, sends on %08x", s.Inbound.SPI)
	}
	cgw.evs.wait(t, "impaired", impairedEvent("quick", 3), 5*time.Second)
	if _, ok := findPair(vgw, nw.Outbound.SPI); ok {
		t.Fatal("without staging the vgw installed the pair before QM3")
	}
	vgw.evs.wait(t, "phase2-failed", detail("reason", "timed out"), 15*time.Second)
	if vgw.dp.Allocated(nw.Outbound.Protocol, nw.Outbound.SPI) {
		t.Fatal("the vgw's SPI is still allocated after its quick mode gave up")
	}
}
