package ike

import (
	"crypto"
	"strings"
	"testing"
)

// Roles of the hostile-peer battery. TestHostilePeerBattery runs every row
// with the cgw (customer profile) as initiator of main, aggressive and
// quick mode and the vgw (AWS profile) as responder, as with AWS, where an
// IKEv1 tunnel is always initiated by the customer gateway.
// TestHostilePeerBatteryVGWInitiates runs the same rows with the roles
// swapped (vpnlab's vgw can initiate: startup_action start, or an
// Initiate call), so that every mangled message is also seen by the other
// engine profile: the cgw now receives MM1, MM3, MM5, AM1, AM3, QM1 and
// QM3. Each row's expectation is the mirror of the cgw-initiator one (the
// engines' names exchanged in its name, counters and notifies) unless
// batWantVGWInit documents another reaction.

// TestHostilePeerBatteryVGWInitiates: every row with the vgw initiating.
func TestHostilePeerBatteryVGWInitiates(t *testing.T) {
	runBattery(t, batteryCases(true))
}

// batWantVGWInit: rows (by their mirrored name) whose reaction with the
// vgw initiating is not the mirror of the cgw-initiator one, and why.
var batWantVGWInit = map[string]batExpect{}

// newRoleHarness builds the two engines of a row. With the cgw initiating
// it is the fuzz targets' harness. With the vgw initiating, the vgw keeps
// AWS's proposals (every phase 1 and phase 2 combination, lowest value
// first) and offers them; the cgw's customer policy (AES128, SHA-256, DH
// 19) picks the one it accepts. Two orders change, because an initiator
// commits to one DH group before the responder chooses: aggressive mode's
// AM1 carries a KE of the first proposal's group, so the vgw lists its DH
// 19 proposals first (AWS's own first group, 2, is not the cgw's); and
// quick mode's QM1 carries the KE of the first proposal's PFS group, so
// with PFS the vgw lists its group 14 proposals first (the cgw's PFS
// group), without PFS its group-0 ones (as awsVGWPhase2 does).
func newRoleHarness(t testing.TB, o harnessOpts, vgwInit bool) *qmHarness {
	if !vgwInit {
		return newFuzzHarness(t, o)
	}
	vt := baseTunnel(harnessV, harnessC, Ports{})
	vt.Phase1.Proposals, vt.Phase1.Selection = awsVGWPhase1(), SelectLowestValue
	vt.Phase2.Proposals, vt.Phase2.Selection = awsVGWPhase2(), SelectLowestValue
	ct := baseTunnel(harnessC, harnessV, Ports{})
	ct.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 19}}
	if o.aggressive {
		vt.Phase1.Exchange, ct.Phase1.AllowAggressive = AggressiveMode, true
		vt.Phase1.Proposals = groupFirst(vt.Phase1.Proposals, 19)
	}
	if o.noPFS {
		ct.Phase2.Proposals[0].PFSGroup = 0
	} else {
		vt.Phase2.Proposals = pfsFirst(vt.Phase2.Proposals, ct.Phase2.Proposals[0].PFSGroup)
	}
	w := &harnessWire{}
	h := &qmHarness{wire: w, mid: 0x51a7e001}
	h.cgw, h.cdp = harnessEngine(t, ct, w)
	h.vgw, h.vdp = harnessEngine(t, vt, w)
	return h
}

// groupFirst moves the phase 1 proposals of DH group g to the front.
func groupFirst(ps []Phase1Proposal, g uint16) []Phase1Proposal {
	var first, rest []Phase1Proposal
	for _, p := range ps {
		if p.DHGroup == g {
			first = append(first, p)
		} else {
			rest = append(rest, p)
		}
	}
	return append(first, rest...)
}

// pfsFirst moves the phase 2 proposals of PFS group g to the front.
func pfsFirst(ps []Phase2Proposal, g uint16) []Phase2Proposal {
	var first, rest []Phase2Proposal
	for _, p := range ps {
		if p.PFSGroup == g {
			first = append(first, p)
		} else {
			rest = append(rest, p)
		}
	}
	return append(first, rest...)
}

// ini and resp are the engines of the row's initiator and responder.
func (r *batRelay) ini() *Engine {
	if r.vgwInit {
		return r.h.vgw
	}
	return r.h.cgw
}

func (r *batRelay) resp() *Engine {
	if r.vgwInit {
		return r.h.cgw
	}
	return r.h.vgw
}

// start begins phase 1 on the initiator (main or aggressive mode as its
// tunnel is configured), as its tunnel's initiate does.
func (r *batRelay) start() {
	t := r.ini().byName["tunnel1"]
	if t.cfg.Phase1.Exchange == AggressiveMode {
		t.startAggressiveMode()
		return
	}
	t.startMainMode()
}

// swapGateways exchanges "cgw" and "vgw" in a row's name, counter or
// notify.
var swapGateways = strings.NewReplacer("cgw", "vgw", "vgw", "cgw")

// mirrorCase turns a row written for the cgw as initiator into the row
// with the vgw initiating: its name, counters and notify with the
// engines' names exchanged, or the expectation of batWantVGWInit.
func mirrorCase(c batCase) batCase {
	c.vgwInit = true
	c.name = swapGateways.Replace(c.name)
	if w, ok := batWantVGWInit[c.name]; ok {
		c.want, c.counts, c.notify = w.want, w.counts, w.notify
		return c
	}
	counts := make([]string, len(c.counts))
	for i, k := range c.counts {
		counts[i] = swapGateways.Replace(k)
	}
	c.counts = counts
	c.notify = swapGateways.Replace(c.notify)
	return c
}
