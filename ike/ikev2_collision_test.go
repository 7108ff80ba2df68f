package ike

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// TestV2CollisionBothEndsAgree: two ends that rekeyed the same SA resolve
// the collision from the same four nonces, each from its own point of
// view: both keep the same SA (named by the exchange that created it),
// exactly one end deletes the redundant SA (the one that initiated it)
// and the other end deletes the SA both replaced.
func TestV2CollisionBothEndsAgree(t *testing.T) {
	for i := range 2000 {
		nonce := func() []byte {
			n := make([]byte, 16+i%17)
			if _, err := rand.Read(n); err != nil {
				t.Fatal(err)
			}
			if i%5 == 0 {
				n[0] = 0 // shared leading bytes
			}
			return n
		}
		exA := exchange.Nonces{Ni: nonce(), Nr: nonce()} // A initiated, B answered
		exB := exchange.Nonces{Ni: nonce(), Nr: nonce()}
		var atA, atB v2Collision[string]
		atA.addOurs("A", exA)
		atA.addTheirs("B", exB)
		atB.addTheirs("A", exA) // order of completion does not matter
		atB.addOurs("B", exB)
		oa, err := atA.resolve()
		if err != nil {
			t.Fatal(err)
		}
		ob, err := atB.resolve()
		if err != nil {
			t.Fatal(err)
		}
		if oa.survivor != ob.survivor || oa.loser != ob.loser || oa.survivor == oa.loser {
			t.Fatalf("A keeps %s, B keeps %s", oa.survivor, ob.survivor)
		}
		if oa.weDeleteLoser() == ob.weDeleteLoser() || oa.weDeleteOld() == ob.weDeleteOld() {
			t.Fatalf("both or neither end delete: A %+v, B %+v", oa, ob)
		}
		if oa.weDeleteLoser() != (oa.loser == "A") {
			t.Fatalf("A deletes the loser %s though it did not create it", oa.loser)
		}
		// The loser holds the lowest nonce.
		low := func(n exchange.Nonces) string { return min(string(n.Ni), string(n.Nr)) }
		lo := map[string]string{"A": low(exA), "B": low(exB)}
		if lo[oa.loser] > lo[oa.survivor] {
			t.Fatalf("the loser %s does not hold the lowest nonce", oa.loser)
		}
	}
}

// TestV2CollisionIncomplete: no verdict before both exchanges completed
// or with equal nonces.
func TestV2CollisionIncomplete(t *testing.T) {
	var c v2Collision[int]
	n := exchange.Nonces{Ni: bytes.Repeat([]byte{1}, 16), Nr: bytes.Repeat([]byte{2}, 16)}
	c.addOurs(1, n)
	if _, err := c.resolve(); err == nil || c.complete() {
		t.Fatal("a collision resolved with one exchange")
	}
	c.addTheirs(2, n)
	if _, err := c.resolve(); err == nil {
		t.Fatal("a collision resolved with the same lowest nonce in both exchanges")
	}
}

// TestV2Verdicts: the notifies of sections 2.25 for rekey requests.
func TestV2Verdicts(t *testing.T) {
	for _, tc := range []struct {
		tg   v2RekeyTarget
		want wire.NotifyType
	}{
		{v2RekeyTarget{}, wire.NotifyChildSANotFound},
		{v2RekeyTarget{found: true, closing: true, children: 1}, wire.NotifyTemporaryFailure},
		{v2RekeyTarget{found: true, replaced: true, children: 2}, wire.NotifyTemporaryFailure},
		{v2RekeyTarget{found: true, children: v2MaxChildren}, wire.NotifyTemporaryFailure},
		{v2RekeyTarget{found: true, children: 1}, 0},
	} {
		e := v2RekeyVerdict(0x1234, tc.tg)
		if (e == nil) != (tc.want == 0) || e != nil && e.Notify != tc.want {
			t.Errorf("%+v: %v, want %v", tc.tg, e, tc.want)
		}
	}
	if e := v2NewChildVerdict(v2MaxChildren); e == nil || e.Notify != wire.NotifyNoAdditionalSAs {
		t.Errorf("a child SA beyond the bound: %v", e)
	}
	if v2NewChildVerdict(1) != nil {
		t.Error("a second child SA refused")
	}
	for _, c := range [][3]bool{{false, false, false}, {true, true, false}, {true, false, true}} {
		if e := v2IKERekeyVerdict(c[0], c[1], c[2]); e == nil || e.Notify != wire.NotifyTemporaryFailure {
			t.Errorf("IKE rekey %v: %v", c, e)
		}
	}
	if v2IKERekeyVerdict(true, false, false) != nil {
		t.Error("an IKE rekey of an idle established SA refused")
	}
}
