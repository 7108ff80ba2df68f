package ike

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestSecondPairWithOtherSelectorsSupersedesTheFirst: a peer that negotiates
// a second quick mode with other traffic selectors on the same tunnel (a
// strongSwan "bgp" child next to a "net" child) leaves one pair on each
// side: the newest. The older one is deleted and the peer told; the log,
// the status and an event say why.
func TestSecondPairWithOtherSelectorsSupersedesTheFirst(t *testing.T) {
	t.Parallel()
	cgw, vgw := newPair(t, pairOpts{})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	first := vgw.dp.Pairs()[0]
	bgpLocal, bgpRemote := netip.MustParsePrefix("169.254.10.2/32"), netip.MustParsePrefix("169.254.10.1/32")
	// The customer side now asks for a second child with narrower selectors.
	if err := cgw.e.call(func() {
		tu := cgw.e.tunnels[0]
		tu.cfg.Phase2.LocalTS, tu.cfg.Phase2.RemoteTS = bgpLocal, bgpRemote
		tu.startQuickMode(nil)
	}); err != nil {
		t.Fatal(err)
	}
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	ev := vgw.waitEvent(t, "phase2-superseded", 5*time.Second)
	if ev.Detail["deleted_ts"] != first.LocalTS.String()+" === "+first.RemoteTS.String() || ev.Detail["kept_ts"] != "169.254.10.1/32 === 169.254.10.2/32" {
		t.Fatalf("superseded event %v", ev.Detail)
	}
	cgw.waitEvent(t, "phase2-down", 5*time.Second) // told by the vgw's DELETE
	deadline := time.Now().Add(5 * time.Second)
	for len(vgw.dp.Pairs()) != 1 || len(cgw.dp.Pairs()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("installed pairs: vgw %d, cgw %d; want 1 each (one SA pair per tunnel)", len(vgw.dp.Pairs()), len(cgw.dp.Pairs()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkPairsMatch(t, cgw, vgw)
	if p := vgw.dp.Pairs()[0]; p.LocalTS != bgpRemote || p.RemoteTS != bgpLocal || p.Inbound.SPI == first.Inbound.SPI {
		t.Fatalf("vgw kept %s === %s (spi %08x); want the newest pair", p.LocalTS, p.RemoteTS, p.Inbound.SPI)
	}
	vs := vgw.tunnel(t)
	if vs.Counters.Phase2Superseded != 1 || !strings.Contains(vs.LastError, "one SA pair per tunnel") || len(vs.SAs) != 1 {
		t.Fatalf("vgw status: superseded %d, last_error %q, %d SAs", vs.Counters.Phase2Superseded, vs.LastError, len(vs.SAs))
	}
	if !strings.Contains(vgw.logs.String(), "AWS allows one SA pair per tunnel") {
		t.Fatal("the vgw log does not explain the deletion")
	}
	// A rekey (same selectors) is not a second pair: make-before-break.
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	if n := len(vgw.dp.Pairs()); n != 2 {
		t.Fatalf("during a rekey the vgw has %d pairs, want 2 (make-before-break)", n)
	}
	if vs := vgw.tunnel(t); vs.Counters.Phase2Superseded != 1 {
		t.Fatalf("a rekey counted as superseded: %d", vs.Counters.Phase2Superseded)
	}
}
