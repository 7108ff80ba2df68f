package ike

import (
	"fmt"

	"github.com/vpnlab/vpnlab/ike/status"
)

// Status in pages: a gateway with 10,000 tunnels answers a status request
// without building (and holding the loop for) all of them. A page is the
// tunnels [Offset, Offset+limit) in configuration order; the engine-wide
// counters come with every page. TunnelStatus looks one tunnel up by name,
// so that the control API's per-tunnel calls cost one tunnel, not all.

// StatusPage is one page of the status (status.Page).
type StatusPage = status.Page

// StatusPage returns at most limit tunnels from offset on (limit <= 0: all
// from offset). An offset past the end gives an empty page.
func (e *Engine) StatusPage(offset, limit int) StatusPage {
	offset = max(offset, 0)
	p := StatusPage{Offset: offset, Total: len(e.tunnels)}
	end := p.Total
	if limit > 0 && offset+limit < end {
		end = offset + limit
		p.NextOffset = end
	}
	p.Snapshot = e.statusRange(min(offset, p.Total), end)
	return p
}

// TunnelStatus returns one tunnel's status; an unknown name gives an error
// that matches ErrUnknownTunnel.
func (e *Engine) TunnelStatus(name string) (TunnelStatus, error) {
	t := e.byName[name] // set up by NewEngine, read-only afterwards
	if t == nil {
		return TunnelStatus{}, fmt.Errorf("%w %q", ErrUnknownTunnel, name)
	}
	for i, x := range e.tunnels {
		if x == t {
			st := e.statusRange(i, i+1)
			return st.Tunnels[0], nil
		}
	}
	return TunnelStatus{}, fmt.Errorf("%w %q", ErrUnknownTunnel, name)
}

// statusRange is the status of tunnels [lo, hi), built on the loop, with
// the data path's counters added outside it. A stopped engine reports its
// tunnels Down.
func (e *Engine) statusRange(lo, hi int) Status {
	var st Status
	st.Tunnels = make([]TunnelStatus, 0, hi-lo)
	var pairs [][]ChildSAPair // per tunnel, in the order of its SAs in the status
	err := e.call(func() {
		for _, t := range e.tunnels[lo:hi] {
			st.Tunnels = append(st.Tunnels, t.status())
			ps := make([]ChildSAPair, 0, len(t.children))
			for _, c := range t.children {
				ps = append(ps, c.pair)
			}
			pairs = append(pairs, ps)
		}
		st.Counters = e.countersSnapshot()
		st.Counters.HalfOpenLimit = e.halfOpenMax
	})
	if err != nil {
		st.Tunnels = st.Tunnels[:0]
		for _, t := range e.tunnels[lo:hi] {
			st.Tunnels = append(st.Tunnels, TunnelStatus{Name: t.cfg.Name, Phase1State: "Down", Phase2State: "Down"})
		}
		return st
	}
	if dc, ok := e.dp.(DataPathCounters); ok {
		st.DataPathDrops = dc.Drops()
		for i := range st.Tunnels {
			for j := range st.Tunnels[i].SAs {
				sa, in := &st.Tunnels[i].SAs[j], pairs[i][j].Inbound
				if c, ok := dc.SACounters(in.Protocol, in.SPI); ok {
					sa.Counters = &c
					st.Tunnels[i].AddLive(c)
				}
			}
		}
	}
	return st
}
