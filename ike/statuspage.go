package ike

import "fmt"

// Status in pages: a gateway with 10,000 tunnels answers a status request
// without building (and holding the loop for) all of them. A page is the
// tunnels [Offset, Offset+limit) in configuration order; the engine-wide
// counters come with every page. TunnelStatus looks one tunnel up by name,
// so that the control API's per-tunnel calls cost one tunnel, not all.

// StatusPage is one page of the status.
type StatusPage struct {
	Status
	// Total is the number of configured tunnels, Offset the index of the
	// first tunnel of the page; NextOffset is where the next page starts
	// (0 on the last page).
	Total      int `json:"total"`
	Offset     int `json:"offset"`
	NextOffset int `json:"next_offset,omitempty"`
}

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
	p.Status = e.statusRange(min(offset, p.Total), end)
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
	err := e.call(func() {
		for _, t := range e.tunnels[lo:hi] {
			st.Tunnels = append(st.Tunnels, t.status())
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
				sa := &st.Tunnels[i].SAs[j]
				if c, ok := dc.SACounters(sa.protocol, sa.inboundSPI); ok {
					sa.Counters = &c
					st.Tunnels[i].addLive(c)
				}
			}
		}
	}
	return st
}
