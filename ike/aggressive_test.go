package ike

import (
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// aggressivePair is an impaired pair (no impairments) in aggressive mode;
// clear makes the cgw send AM3 unencrypted.
func aggressivePair(t *testing.T, clear bool) (cgw, vgw *igw) {
	t.Helper()
	cgw, vgw = newImpairedPair(t, nil, nil, func(ct, vt *TunnelConfig) {
		ct.Phase1.Exchange, vt.Phase1.AllowAggressive = AggressiveMode, true
		ct.StartupAction = StartupAdd
	})
	cgw.e.am3InClear = clear // before the first exchange: the loop reads it later
	if err := cgw.e.Initiate("tunnel1"); err != nil {
		t.Fatal(err)
	}
	up(t, cgw, vgw)
	return cgw, vgw
}

// afterPhase1 exercises every exchange whose IV derives from the last phase
// 1 block: quick mode from either side, then a DELETE.
func afterPhase1(t *testing.T, cgw, vgw *igw) {
	t.Helper()
	for _, g := range []*igw{cgw, vgw} {
		n := len(g.evs.all("phase2-up"))
		if err := g.e.Rekey("tunnel1", 2); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(g.evs.all("phase2-up")) == n {
			if time.Now().After(deadline) {
				t.Fatal("a quick mode after aggressive mode did not complete")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := cgw.e.Terminate("tunnel1"); err != nil {
		t.Fatal(err)
	}
	vgw.evs.wait(t, "phase1-down", nil, 5*time.Second)
}

// TestAggressiveModeAM3Encrypted: our initiator sends AM3 encrypted (RFC
// 2408 section 4.7, as strongSwan and Libreswan do; Libreswan accepts no
// other form) and both sides derive the same IVs from its last block.
func TestAggressiveModeAM3Encrypted(t *testing.T) {
	t.Parallel()
	cgw, vgw := aggressivePair(t, false)
	ams := cgw.wire.ikeMsgs(cgw.addr, isakmp.ExchangeAggressive)
	if len(ams) != 2 {
		t.Fatalf("cgw sent %d aggressive mode messages, want 2", len(ams))
	}
	for i, want := range []bool{false, true} {
		h, err := isakmp.DecodeHeader(ams[i].b)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.Flags&isakmp.FlagEncryption != 0; got != want {
			t.Fatalf("AM%d encrypted %v, want %v", 2*i+1, got, want)
		}
	}
	afterPhase1(t, cgw, vgw)
}

// TestAggressiveModeClearAM3Accepted: a peer that sends AM3 in the clear
// (RFC 2409's drawing) is still understood: without an encrypted phase 1
// message the IV seed is the phase 1 IV, as strongSwan derives it.
func TestAggressiveModeClearAM3Accepted(t *testing.T) {
	t.Parallel()
	cgw, vgw := aggressivePair(t, true)
	ams := cgw.wire.ikeMsgs(cgw.addr, isakmp.ExchangeAggressive)
	if len(ams) != 2 || !hasPayload(ams[1].b, isakmp.PayloadHash) {
		t.Fatalf("cgw sent %d aggressive mode messages, the second not a plaintext HASH", len(ams))
	}
	afterPhase1(t, cgw, vgw)
}
