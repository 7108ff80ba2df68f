package ike

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// INFORMATIONAL, the IKE SA rekey and the responder's answers to hostile
// requests, between two engines on one in-memory network.

// onLoop runs fn on the gateway's engine loop and waits for it.
func onLoop(g *gw, fn func(t *tunnel)) {
	done := make(chan struct{})
	g.e.post(func() {
		defer close(done)
		fn(g.e.tunnels[0])
	})
	<-done
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIKEv2IKERekeyKeepsChildren: either end rekeys the IKE SA under
// traffic: new SPIs at both ends, one IKE SA each, the child SA pair
// untouched and no packet lost; then a child SA rekey runs on the new IKE
// SA (its keys and message IDs work).
func TestIKEv2IKERekeyKeepsChildren(t *testing.T) {
	for _, who := range []string{"cgw", "vgw"} {
		t.Run(who, func(t *testing.T) {
			cgw, vgw, _ := v2Up(t, v2PairOpts{})
			pairs := inboundSPIs(cgw, vgw)
			before := cgw.tunnel(t)
			f := startV2Flow(cgw, vgw, time.Millisecond, 3*time.Millisecond)
			g := map[string]*gw{"cgw": cgw, "vgw": vgw}[who]
			if err := g.e.Rekey("tunnel1", 1); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "IKE SA rekeyed at both ends", 10*time.Second, func() bool {
				cs, vs := cgw.tunnel(t), vgw.tunnel(t)
				return cs.ICookie != before.ICookie && cs.ICookie == vs.ICookie && cs.RCookie == vs.RCookie &&
					v2SACount(cgw) == 1 && v2SACount(vgw) == 1
			})
			if now := inboundSPIs(cgw, vgw); len(now) != len(pairs) || !sameKeys(now, pairs) {
				t.Fatalf("the child SAs changed with the IKE SA rekey: %v, before %v", now, pairs)
			}
			cs := cgw.tunnel(t)
			if (who == "cgw") != (cs.Role == "initiator") {
				t.Errorf("cgw's role in the new IKE SA is %s; the rekey's initiator (%s) is the new original initiator", cs.Role, who)
			}
			for _, x := range []*gw{cgw, vgw} {
				if n := x.tunnel(t).Counters.Phase1Rekeys; n != 1 {
					t.Errorf("phase1_rekeys %d, want 1", n)
				}
			}
			if err := vgw.e.Rekey("tunnel1", 2); err != nil {
				t.Fatal(err)
			}
			waitRekeyed(t, pairs, 10*time.Second, cgw, vgw)
			f.end()
			checkPairsMatch(t, cgw, vgw)
			if f.lost.Load() != 0 {
				t.Fatalf("%d of %d packets lost", f.lost.Load(), f.sent.Load())
			}
		})
	}
}

func sameKeys(a, b map[uint32]bool) bool {
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// TestIKEv2TerminateTellsPeer: Terminate sends the IKE SA's DELETE; the
// peer drops the IKE SA and its child SAs at once.
func TestIKEv2TerminateTellsPeer(t *testing.T) {
	cgw, vgw, _ := v2Up(t, v2PairOpts{})
	if err := cgw.e.Terminate("tunnel1"); err != nil {
		t.Fatal(err)
	}
	ev := vgw.waitEvent(t, "phase1-down", 5*time.Second)
	if ev.Detail["reason"] != "deleted by the peer" {
		t.Fatalf("vgw phase1-down reason %q", ev.Detail["reason"])
	}
	waitFor(t, "vgw without pairs", 5*time.Second, func() bool { return len(vgw.dp.Pairs()) == 0 })
	if st := vgw.tunnel(t); st.Phase2State != "Down" || st.Phase1State != "Down" {
		t.Fatalf("vgw states %s/%s after the peer's DELETE", st.Phase1State, st.Phase2State)
	}
}

// TestIKEv2ChildDeleteBothWays: a pair deleted on one end (its lifetime,
// say) is deleted at the other through an INFORMATIONAL DELETE, whose
// response names the other end's SPI.
func TestIKEv2ChildDeleteBothWays(t *testing.T) {
	cgw, vgw, _ := v2Up(t, v2PairOpts{})
	onLoop(cgw, func(t *tunnel) { t.deleteChild(t.children[0], "lifetime expired", true) })
	waitFor(t, "vgw deletes the pair", 5*time.Second, func() bool { return len(vgw.dp.Pairs()) == 0 })
	if st := vgw.tunnel(t); st.Phase2State != "Down" || st.Phase1State != "Established" {
		t.Fatalf("vgw states %s/%s, want the IKE SA up without a pair", st.Phase1State, st.Phase2State)
	}
	// A new child SA over the same IKE SA (CREATE_CHILD_SA, not a rekey).
	if err := vgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new pair", 5*time.Second, func() bool { return len(cgw.dp.Pairs()) == 1 && len(vgw.dp.Pairs()) == 1 })
	checkPairsMatch(t, cgw, vgw)
}

// TestIKEv2HostileRequests: the responder's answers to requests a hostile
// or confused peer sends, applied on the vgw's loop to its established IKE
// SA: bounded, answered with the notify the RFC names, never a panic.
func TestIKEv2HostileRequests(t *testing.T) {
	cgw, vgw, _ := v2Up(t, v2PairOpts{})
	var live ChildSAPair
	for _, p := range cgw.dp.Pairs() {
		live = p
	}
	offer := func(rekeys uint32) []wire.Payload {
		o := &v2ChildOffer{spiIn: 0x7000 + rekeys%0x1000, nonce: bytes.Repeat([]byte{9}, 32), rekeys: rekeys,
			sa:  childOffer(awsVGWPhase2()[:1], 0x7000+rekeys%0x1000, true),
			tsi: &wire.TS{Selectors: exchange.AWSSelectors()}, tsr: &wire.TS{Responder: true, Selectors: exchange.AWSSelectors()}}
		return o.payloads()
	}
	notifyOf := func(ps []wire.Payload) wire.NotifyType {
		if n := v2ErrorNotify(ps); n != nil {
			return n.NotifyType
		}
		return 0
	}
	onLoop(vgw, func(tn *tunnel) {
		sa := tn.v2
		if got := notifyOf(sa.answerChildV2(offer(0xdeadbeef), v2RekeyChild)); got != wire.NotifyChildSANotFound {
			t.Errorf("rekey of an unknown SPI: %v, want CHILD_SA_NOT_FOUND", got)
		}
		// The peer rekeys the live pair (REKEY_SA = the cgw's inbound SPI).
		if got := notifyOf(sa.answerChildV2(offer(live.Inbound.SPI), v2RekeyChild)); got != 0 {
			t.Errorf("first rekey of the pair refused: %v", got)
		}
		// ... and again without deleting the old one: a loop.
		if got := notifyOf(sa.answerChildV2(offer(live.Inbound.SPI), v2RekeyChild)); got != wire.NotifyTemporaryFailure {
			t.Errorf("second rekey of the same pair: %v, want TEMPORARY_FAILURE", got)
		}
		// New child SAs until the bound.
		for i := 0; ; i++ {
			got := notifyOf(sa.answerChildV2(offer(0), v2NewChild))
			if got == wire.NotifyNoAdditionalSAs {
				if len(tn.children) != v2MaxChildren {
					t.Errorf("NO_ADDITIONAL_SAS with %d pairs, bound %d", len(tn.children), v2MaxChildren)
				}
				break
			}
			if got != 0 || i > v2MaxChildren {
				t.Fatalf("new child SA %d: %v", i, got)
			}
		}
		// A DELETE of 10,000 unknown SPIs: at most v2MaxDeleteSPIs looked at.
		d := &wire.Delete{Protocol: wire.ProtoESP, SPISize: 4}
		for i := range 10000 {
			d.SPIs = append(d.SPIs, binary.BigEndian.AppendUint32(nil, uint32(0x10000000+i)))
		}
		out, delIKE := sa.answerInformational([]wire.Payload{d, &wire.Notify{NotifyType: wire.NotifyInvalidSPI}})
		if len(out) != 0 || delIKE {
			t.Errorf("DELETE of unknown SPIs answered %v (delete IKE %v)", out, delIKE)
		}
		// An IKE SA rekey while a CREATE_CHILD_SA of ours is out.
		sa.x().cur = &v2Request{child: true}
		if got := notifyOf(sa.answerIKERekey([]wire.Payload{})); got != wire.NotifyTemporaryFailure {
			t.Errorf("IKE SA rekey during our CREATE_CHILD_SA: %v, want TEMPORARY_FAILURE", got)
		}
		sa.x().cur = nil
		if got := notifyOf(sa.answerIKERekey([]wire.Payload{&wire.Nonce{Data: make([]byte, 32)}})); got != wire.NotifyInvalidSyntax {
			t.Errorf("IKE SA rekey without SA and KE: %v, want INVALID_SYNTAX", got)
		}
	})
	if n := vgw.e.Status().Counters.Drops[dropV2DeleteUnknown]; n != 1 {
		t.Errorf("unknown-SPI DELETE counted %d times, want 1", n)
	}
	checkNoPanics(t, "vgw", vgw.e, false)
}

// TestIKEv2CreateChildBeforeAuth: a CREATE_CHILD_SA request sealed with
// the IKE SA's keys before IKE_AUTH completed (the IKE_AUTH request is
// lost) is dropped and counted, and changes nothing (section 2.21).
func TestIKEv2CreateChildBeforeAuth(t *testing.T) {
	cgw, vgw, nw := newV2Pair(t, v2PairOpts{})
	nw.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
		h, err := wire.DecodeHeader(b)
		return err != nil || h.Exchange != wire.ExchangeIKEAuth || h.Response()
	})
	waitFor(t, "cgw sends IKE_AUTH", 5*time.Second, func() bool {
		st := ""
		onLoop(cgw, func(tn *tunnel) {
			if tn.v2 != nil {
				st = tn.v2.state.String()
			}
		})
		return st == v2AuthSent.String()
	})
	onLoop(cgw, func(tn *tunnel) {
		sa := tn.v2
		ps := []wire.Payload{&wire.Notify{NotifyType: wire.NotifyRekeySA, Protocol: wire.ProtoESP, SPI: []byte{0, 0, 1, 0}}}
		msg, err := sa.seal(wire.ExchangeCreateChildSA, 1, false, ps)
		if err != nil {
			t.Error(err)
			return
		}
		sa.sendV2(msg, "hostile CREATE_CHILD_SA")
	})
	waitFor(t, "vgw drops it", 5*time.Second, func() bool { return vgw.e.Status().Counters.Drops[dropV2UnexpectedState] > 0 })
	if len(vgw.dp.Pairs()) != 0 {
		t.Fatal("the vgw installed a pair before IKE_AUTH")
	}
	checkNoPanics(t, "vgw", vgw.e, false)
}

// TestIKEv2ChildSANotFound: the vgw lost the pair without a word; the
// cgw's rekey of it is answered CHILD_SA_NOT_FOUND, and the cgw deletes
// its side silently and creates a new child SA (RFC 7296 2.25).
func TestIKEv2ChildSANotFound(t *testing.T) {
	cgw, vgw, _ := v2Up(t, v2PairOpts{})
	old := inboundSPIs(cgw, vgw)
	onLoop(vgw, func(tn *tunnel) { tn.deleteChild(tn.children[0], "test: lost without a DELETE", false) })
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	waitRekeyed(t, old, 10*time.Second, cgw, vgw)
	checkPairsMatch(t, cgw, vgw)
	if !strings.Contains(cgw.logs.String(), "CHILD_SA_NOT_FOUND") {
		t.Fatal("the cgw's log does not mention CHILD_SA_NOT_FOUND")
	}
}
