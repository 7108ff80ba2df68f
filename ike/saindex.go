package ike

import "slices"

// Each tunnel lists its own ISAKMP SAs (current, rekeying, half-open: a
// handful), beside the engine's map by cookie, so that what a tunnel does
// with "its SAs" (INITIAL-CONTACT, a second SA, DPD clear, terminate, a NAT
// move) costs its own SAs, not a walk over every SA of the engine: with
// 10,000 tunnels those walks made each phase 1 establishment O(tunnels)
// and a mass reconnect quadratic (a quarter of its CPU time).

// addSA registers a new ISAKMP SA by its initiator cookie and with its
// tunnel.
func (e *Engine) addSA(sa *ikeSA) {
	e.sas[sa.iCookie] = sa
	if sa.t != nil {
		sa.t.ikeSAs = append(sa.t.ikeSAs, sa)
	}
}

// removeSA forgets a deleted ISAKMP SA.
func (e *Engine) removeSA(sa *ikeSA) {
	if e.sas[sa.iCookie] == sa {
		delete(e.sas, sa.iCookie)
	}
	if t := sa.t; t != nil {
		if i := slices.Index(t.ikeSAs, sa); i >= 0 {
			t.ikeSAs = slices.Delete(t.ikeSAs, i, i+1)
		}
	}
}

// ownSAs returns a copy of the tunnel's ISAKMP SAs, safe to walk while
// deleting them.
func (t *tunnel) ownSAs() []*ikeSA { return slices.Clone(t.ikeSAs) }
