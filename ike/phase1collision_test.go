package ike

import (
	"testing"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// TestPhase1CollisionBothKeepTheSameSA: both sides start main mode at once
// (AWS's startup action start against a customer that initiates too), the
// messages crossing in lockstep or with one side a round behind. Each side
// establishes the SA it answers before the one it initiated; with "the
// newer replaces the older" alone each deleted the other's SA and the
// crossing DELETEs left both sides without any ISAKMP SA and no quick
// mode. Now both delete the same one (lower cookies), keep the other and
// negotiate phase 2 over it. Repeated, so that either side's SA is the
// survivor in some runs.
func TestPhase1CollisionBothKeepTheSameSA(t *testing.T) {
	for _, lag := range []int{0, 1, 2, 3, 4} { // from 5 on the vgw has the cgw's SA up before it starts
		survivors := map[bool]int{}
		for run := 0; run < 16; run++ {
			h := newFuzzHarness(t, harnessOpts{noPFS: true})
			h.cgw.byName["tunnel1"].initiate("test")
			for range lag { // the vgw starts lag rounds later
				h.pump(1)
			}
			h.vgw.byName["tunnel1"].initiate("test")
			h.pump(20)
			ct, vt := h.cgw.byName["tunnel1"], h.vgw.byName["tunnel1"]
			for name, tu := range map[string]*tunnel{"cgw": ct, "vgw": vt} {
				up := 0
				for _, sa := range tu.ikeSAs {
					if sa.state == stateEstablished {
						up++
					}
				}
				if tu.sa == nil || tu.sa.state != stateEstablished || up != 1 {
					h.close()
					t.Fatalf("lag %d run %d: %s has %d established ISAKMP SAs (current %v), want exactly one", lag, run, name, up, tu.sa != nil)
				}
				if n := len(tu.children); n != 1 {
					h.close()
					t.Fatalf("lag %d run %d: %s has %d IPsec SA pairs, want 1", lag, run, name, n)
				}
				if tu.counters.Phase1Rekeys != 0 {
					t.Errorf("lag %d run %d: %s counted %d phase 1 rekeys for a collision", lag, run, name, tu.counters.Phase1Rekeys)
				}
			}
			if ci, vo := ct.children[0].pair.Inbound.SPI, vt.children[0].pair.Outbound.SPI; ci != vo {
				h.close()
				t.Fatalf("lag %d run %d: the sides' IPsec SAs do not match: cgw inbound %08x, vgw outbound %08x", lag, run, ci, vo)
			}
			if ct.sa.iCookie != vt.sa.iCookie || ct.sa.rCookie != vt.sa.rCookie {
				h.close()
				t.Fatalf("lag %d run %d: the sides kept different ISAKMP SAs", lag, run)
			}
			if lag == 0 && (ct.counters.Phase1Collisions != 1 || vt.counters.Phase1Collisions != 1) {
				t.Errorf("lag 0 run %d: collisions counted cgw %d, vgw %d; want 1 each", run, ct.counters.Phase1Collisions, vt.counters.Phase1Collisions)
			}
			survivors[ct.sa.initiator]++
			h.close()
		}
		t.Logf("lag %d: the cgw's own SA survived %d times, the vgw's %d times", lag, survivors[true], survivors[false])
	}
}

// TestPhase1CollisionInitialContactIgnored: the vgw's MM5 carries
// INITIAL-CONTACT (it had nothing with the customer when it sent it) but
// is delayed until the customer already has its own main mode's SA up and
// a quick mode done over it. That is a collision, not a restarted peer:
// the customer must not wipe the SAs it just negotiated with the same
// peer (it did, silently, while the vgw kept its copies: the two sides
// then held different IPsec SAs).
func TestPhase1CollisionInitialContactIgnored(t *testing.T) {
	for run := 0; run < 16; run++ {
		h := newFuzzHarness(t, harnessOpts{noPFS: true})
		h.cgw.byName["tunnel1"].initiate("test")
		h.vgw.byName["tunnel1"].initiate("test")
		vgwSA := h.vgw.byName["tunnel1"].sa // the vgw's own main mode
		fromVGW := 0
		held := h.pumpHold(10, func(p harnessPacket, m isakmp.Header) bool {
			if p.src.Addr() != harnessV || m.ICookie != vgwSA.iCookie {
				return false
			}
			fromVGW++
			return fromVGW == 3 // MM1, MM3, MM5
		})
		if held == nil {
			h.close()
			t.Fatal("the vgw's MM5 was not sent")
		}
		h.pump(20) // the cgw's SA comes up on both sides, with its quick mode
		ct, vt := h.cgw.byName["tunnel1"], h.vgw.byName["tunnel1"]
		if len(ct.children) != 1 {
			h.close()
			t.Fatalf("run %d: before the delayed MM5 the cgw has %d IPsec SA pairs, want 1", run, len(ct.children))
		}
		h.deliver(*held)
		h.pump(20)
		for name, tu := range map[string]*tunnel{"cgw": ct, "vgw": vt} {
			if n := len(tu.children); n != 1 {
				h.close()
				t.Fatalf("run %d: %s has %d IPsec SA pairs after the delayed MM5, want 1", run, name, n)
			}
			if tu.sa == nil || tu.sa.state != stateEstablished {
				h.close()
				t.Fatalf("run %d: %s has no established ISAKMP SA", run, name)
			}
		}
		if ci, vo := ct.children[0].pair.Inbound.SPI, vt.children[0].pair.Outbound.SPI; ci != vo {
			h.close()
			t.Fatalf("run %d: the sides' IPsec SAs do not match: cgw inbound %08x, vgw outbound %08x", run, ci, vo)
		}
		if ct.sa.iCookie != vt.sa.iCookie {
			h.close()
			t.Fatalf("run %d: the sides kept different ISAKMP SAs", run)
		}
		h.close()
	}
}

// TestPhase1CollisionLaterInitialContactIgnored: a peer that sends
// INITIAL-CONTACT in an informational after main mode (as strongSwan does
// for IKEv1) on the SA that survived a collision does not wipe the IPsec
// SAs negotiated with it just now.
func TestPhase1CollisionLaterInitialContactIgnored(t *testing.T) {
	h := newFuzzHarness(t, harnessOpts{noPFS: true})
	defer h.close()
	h.cgw.byName["tunnel1"].initiate("test")
	h.vgw.byName["tunnel1"].initiate("test")
	h.pump(20)
	ct := h.cgw.byName["tunnel1"]
	if ct.counters.Phase1Collisions != 1 || len(ct.children) != 1 {
		t.Fatalf("setup: collisions %d, pairs %d; want 1 and 1", ct.counters.Phase1Collisions, len(ct.children))
	}
	// Notify INITIAL-CONTACT: DOI IPsec, protocol ISAKMP, SPI = the
	// cookie pair (sendInfo puts the SA's in place of infoCookies).
	n := []byte{0, 0, 0, 28, 0, 0, 0, 1, 1, 16, 0x60, 0x02}
	n = append(n, infoCookies[:]...)
	h.sendInfo(toCGW, byte(isakmp.PayloadNotify), n)
	h.pump(5)
	if len(ct.children) != 1 || ct.sa == nil {
		t.Fatalf("after INITIAL-CONTACT on the surviving SA: %d pairs, ISAKMP SA %v; want 1 and kept", len(ct.children), ct.sa != nil)
	}
}
