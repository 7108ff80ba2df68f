package routes

import (
	"fmt"
	"net/netip"
	"slices"
)

// Decide recomputes the routes of every prefix that changed since the last
// call and returns all routes, sorted by prefix, with the changes recorded
// since the last call (path changes first, then route changes).
func (t *Table) Decide() ([]Route, []Change) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	changes := t.pending
	t.pending = nil

	dirty := make([]netip.Prefix, 0, len(t.dirty))
	for prefix := range t.dirty {
		dirty = append(dirty, prefix)
	}
	slices.SortFunc(dirty, comparePrefix)
	clear(t.dirty)

	for _, prefix := range dirty {
		old := t.decided[prefix]
		r := t.decideLocked(prefix)
		switch {
		case r == nil && old == nil:
		case r == nil:
			delete(t.decided, prefix)
			changes = append(changes, Change{Time: now, Kind: Removed, Prefix: prefix, From: old.ActiveTunnels()})
		case old == nil:
			r.Since = now
			t.decided[prefix] = r
			changes = append(changes, Change{Time: now, Kind: Installed, Prefix: prefix, To: r.ActiveTunnels(), Reason: r.Reason})
		default:
			r.Since = old.Since
			if !slices.Equal(old.ActiveTunnels(), r.ActiveTunnels()) {
				r.Since = now
				changes = append(changes, Change{Time: now, Kind: BestMoved, Prefix: prefix,
					From: old.ActiveTunnels(), To: r.ActiveTunnels(), Reason: r.Reason})
			}
			t.decided[prefix] = r
		}
	}
	if len(dirty) > 0 || t.sorted == nil {
		t.sorted = make([]Route, 0, len(t.decided))
		for _, r := range t.decided {
			t.sorted = append(t.sorted, *r)
		}
		slices.SortFunc(t.sorted, func(a, b Route) int { return comparePrefix(a.Prefix, b.Prefix) })
	}
	return cloneRoutes(t.sorted), changes
}

// Routes returns the result of the last Decide.
func (t *Table) Routes() []Route {
	t.mu.Lock()
	defer t.mu.Unlock()
	return cloneRoutes(t.sorted)
}

func cloneRoutes(rs []Route) []Route {
	out := make([]Route, len(rs))
	for i, r := range rs {
		r.Tunnels = slices.Clone(r.Tunnels)
		r.Paths = slices.Clone(r.Paths)
		for j := range r.Paths {
			r.Paths[j].ASPath = slices.Clone(r.Paths[j].ASPath)
		}
		out[i] = r
	}
	return out
}

// decideLocked ranks the tunnels that have prefix; nil when none has it.
func (t *Table) decideLocked(prefix netip.Prefix) *Route {
	byKey := t.paths[prefix]
	if len(byKey) == 0 {
		return nil
	}
	// One candidate per tunnel: its static route if it has one, else its
	// BGP path.
	best := make(map[string]*Path, len(byKey))
	for k, p := range byKey {
		if cur, ok := best[k.tunnel]; !ok || p.Source.rank() < cur.Source.rank() {
			best[k.tunnel] = p
		}
	}
	left := make([]*Path, 0, len(best))
	for _, p := range best {
		left = append(left, p)
	}
	slices.SortFunc(left, func(a, b *Path) int { return t.order[a.Tunnel] - t.order[b.Tunnel] })

	ranked := make([]*Path, 0, len(left))
	for len(left) > 0 {
		i := pickBest(left)
		ranked = append(ranked, left[i])
		left = slices.Delete(left, i, i+1)
	}

	r := &Route{Prefix: prefix, Active: 1}
	for _, p := range ranked {
		r.Tunnels = append(r.Tunnels, p.Tunnel)
		c := *p
		c.ASPath = slices.Clone(p.ASPath)
		r.Paths = append(r.Paths, c)
	}
	first := ranked[0]
	if t.cfg.ECMP && first.Source == BGP {
		n := 1
		for n < len(ranked) && ranked[n].Source == BGP && len(ranked[n].ASPath) == len(first.ASPath) {
			n++
		}
		r.Active = n
		r.ECMP = n > 1
	}
	r.Reason = reason(ranked, r.Active)
	return r
}

// pickBest returns the index of the preferred path among candidates sorted
// in tunnel order, by elimination: source, AS_PATH length, MED within the
// same neighbor AS, then the first survivor.
func pickBest(cands []*Path) int {
	alive := make([]bool, len(cands))
	minRank, minLen := 2, -1
	for _, p := range cands {
		minRank = min(minRank, p.Source.rank())
	}
	for i, p := range cands {
		alive[i] = p.Source.rank() == minRank
		if alive[i] && (minLen < 0 || len(p.ASPath) < minLen) {
			minLen = len(p.ASPath)
		}
	}
	for i, p := range cands {
		alive[i] = alive[i] && len(p.ASPath) == minLen
	}
	if minRank == Static.rank() {
		return slices.Index(alive, true)
	}
	// MED: drop a path if another survivor from the same neighbor AS has a
	// lower MED. Compute against the survivors of the previous step only.
	prev := slices.Clone(alive)
	for i, p := range cands {
		if !prev[i] {
			continue
		}
		for j, q := range cands {
			if prev[j] && q.neighborAS() == p.neighborAS() && q.med() < p.med() {
				alive[i] = false
				break
			}
		}
	}
	return slices.Index(alive, true)
}

// reason explains, in words, why the first ranked path (or the ECMP set)
// won.
func reason(ranked []*Path, active int) string {
	first := ranked[0]
	switch {
	case active > 1:
		return fmt.Sprintf("ECMP over %d tunnels with AS_PATH length %d", active, len(first.ASPath))
	case len(ranked) == 1 && first.Source == Static:
		return "static route"
	case len(ranked) == 1:
		return "only path"
	}
	second := ranked[1]
	switch {
	case first.Source != second.Source:
		return "static route preferred over BGP"
	case first.Source == Static:
		return "tunnel order tie-break between static routes"
	case len(first.ASPath) != len(second.ASPath):
		return fmt.Sprintf("shorter AS_PATH (%d < %d)", len(first.ASPath), len(second.ASPath))
	case first.neighborAS() != second.neighborAS():
		return "tunnel order tie-break (different neighbor AS, MED not compared)"
	case first.med() != second.med():
		return fmt.Sprintf("lower MED (%d < %d)", first.med(), second.med())
	}
	return "tunnel order tie-break (equal AS_PATH length and MED)"
}
