package exchange

import (
	"fmt"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// CheckNarrowed is the initiator's check of the responder's TSi/TSr
// (section 2.9: the responder may narrow, never widen): every answered
// selector is valid and lies inside one selector we offered on that side.
// An empty answer is an error too (the responder says TS_UNACCEPTABLE
// instead).
func CheckNarrowed(offerI, offerR, gotI, gotR *wire.TS) error {
	for _, side := range []struct {
		name       string
		offer, got *wire.TS
	}{{"TSi", offerI, gotI}, {"TSr", offerR, gotR}} {
		if side.offer == nil || side.got == nil || len(side.got.Selectors) == 0 {
			return fmt.Errorf("ikev2: the responder's %s is missing or empty", side.name)
		}
		for _, s := range side.got.Selectors {
			if !valid(s) || !coveredByAny(s, side.offer.Selectors) {
				return fmt.Errorf("ikev2: the responder's %s selector %s is not inside what we proposed", side.name, s)
			}
		}
	}
	return nil
}

func coveredByAny(s wire.Selector, ss []wire.Selector) bool {
	for _, x := range ss {
		if valid(x) && contains(x, s) {
			return true
		}
	}
	return false
}
