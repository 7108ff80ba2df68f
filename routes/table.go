package routes

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// ErrLimitExceeded is returned by Add when a tunnel goes over Config.Limit or
// is still shut after doing so.
var ErrLimitExceeded = errors.New("routes: BGP route limit exceeded")

// Config tunes a Table.
type Config struct {
	// ECMP activates every BGP path that ties with the best on AS_PATH
	// length (Transit Gateway). Off: one active tunnel (virtual private
	// gateway).
	ECMP bool
	// Limit is the number of BGP prefixes accepted per tunnel; 0 = no limit.
	Limit int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// key identifies one path.
type key struct {
	tunnel string
	source Source
}

// Table holds the candidate paths per prefix and per tunnel and decides.
type Table struct {
	mu    sync.Mutex
	cfg   Config
	order map[string]int // tunnel -> position in the constructor's order
	names []string

	paths   map[netip.Prefix]map[key]*Path
	count   map[string]int  // tunnel -> number of BGP prefixes
	tripped map[string]bool // tunnel -> over the limit until WithdrawTunnel

	dirty   map[netip.Prefix]struct{}
	decided map[netip.Prefix]*Route
	sorted  []Route // last Decide's result, sorted by prefix
	pending []Change
}

// New returns an empty table for the given tunnels, in preference order for
// the final tie-break.
func New(tunnels []string, cfg Config) (*Table, error) {
	t := &Table{
		cfg:     cfg,
		order:   make(map[string]int, len(tunnels)),
		names:   slices.Clone(tunnels),
		paths:   make(map[netip.Prefix]map[key]*Path),
		count:   make(map[string]int),
		tripped: make(map[string]bool),
		dirty:   make(map[netip.Prefix]struct{}),
		decided: make(map[netip.Prefix]*Route),
	}
	if t.cfg.Now == nil {
		t.cfg.Now = time.Now
	}
	if cfg.Limit < 0 {
		return nil, fmt.Errorf("routes: negative limit %d", cfg.Limit)
	}
	for i, name := range tunnels {
		if name == "" {
			return nil, fmt.Errorf("routes: tunnel %d has no name", i+1)
		}
		if _, dup := t.order[name]; dup {
			return nil, fmt.Errorf("routes: tunnel %q listed twice", name)
		}
		t.order[name] = i
	}
	return t, nil
}

// Tunnels returns the tunnel names in preference order.
func (t *Table) Tunnels() []string { return slices.Clone(t.names) }

// Add adds a path or replaces the one with the same prefix, tunnel and source.
// The prefix is normalised to its masked form.
func (t *Table) Add(p Path) error {
	if !p.Prefix.IsValid() {
		return errors.New("routes: invalid prefix")
	}
	p.Prefix = p.Prefix.Masked()
	if p.Source != Static && p.Source != BGP {
		return fmt.Errorf("routes: %s: invalid source %d", p.Prefix, int(p.Source))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.order[p.Tunnel]; !ok {
		return fmt.Errorf("routes: %s: unknown tunnel %q", p.Prefix, p.Tunnel)
	}
	now := t.cfg.Now()
	if p.Learned.IsZero() {
		p.Learned = now
	}
	p.ASPath = slices.Clone(p.ASPath)
	k := key{p.Tunnel, p.Source}
	byKey := t.paths[p.Prefix]
	old := byKey[k]
	if p.Source == BGP && old == nil {
		if t.tripped[p.Tunnel] {
			return ErrLimitExceeded
		}
		if t.cfg.Limit > 0 && t.count[p.Tunnel] >= t.cfg.Limit {
			t.exceedLocked(p.Tunnel, fmt.Sprintf("prefix %s would be number %d, limit %d", p.Prefix, t.count[p.Tunnel]+1, t.cfg.Limit))
			return ErrLimitExceeded
		}
	}
	if old != nil && old.sameAttrs(&p) {
		return nil
	}
	if byKey == nil {
		byKey = make(map[key]*Path)
		t.paths[p.Prefix] = byKey
	}
	byKey[k] = &p
	kind := Updated
	if old == nil {
		kind = Learned
		if p.Source == BGP {
			t.count[p.Tunnel]++
		}
	}
	t.record(Change{Time: now, Kind: kind, Prefix: p.Prefix, Tunnel: p.Tunnel, Source: p.Source})
	t.dirty[p.Prefix] = struct{}{}
	return nil
}

// Withdraw removes the path of a tunnel and source for a prefix and reports
// whether there was one.
func (t *Table) Withdraw(prefix netip.Prefix, tunnel string, source Source) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.withdrawLocked(prefix.Masked(), key{tunnel, source}, t.cfg.Now())
}

func (t *Table) withdrawLocked(prefix netip.Prefix, k key, now time.Time) bool {
	byKey := t.paths[prefix]
	if _, ok := byKey[k]; !ok {
		return false
	}
	delete(byKey, k)
	if len(byKey) == 0 {
		delete(t.paths, prefix)
	}
	if k.source == BGP {
		t.count[k.tunnel]--
	}
	t.record(Change{Time: now, Kind: Withdrawn, Prefix: prefix, Tunnel: k.tunnel, Source: k.source})
	t.dirty[prefix] = struct{}{}
	return true
}

// WithdrawTunnel removes every BGP path of a tunnel (its session went down)
// and returns how many. Static routes stay: they are configuration. It also
// ends a LimitExceeded shutdown, since the next session starts afresh.
func (t *Table) WithdrawTunnel(tunnel string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.tripped, tunnel)
	return t.dropBGPLocked(tunnel)
}

func (t *Table) dropBGPLocked(tunnel string) int {
	now := t.cfg.Now()
	k := key{tunnel, BGP}
	var prefixes []netip.Prefix
	for prefix, byKey := range t.paths {
		if _, ok := byKey[k]; ok {
			prefixes = append(prefixes, prefix)
		}
	}
	slices.SortFunc(prefixes, comparePrefix)
	for _, prefix := range prefixes {
		t.withdrawLocked(prefix, k, now)
	}
	return len(prefixes)
}

// ExceedLimit records that a tunnel went over the route limit (detected here
// by Add, or by the BGP speaker), drops all of its BGP paths and refuses new
// ones until WithdrawTunnel. It returns how many paths were dropped.
func (t *Table) ExceedLimit(tunnel, detail string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.exceedLocked(tunnel, detail)
}

func (t *Table) exceedLocked(tunnel, detail string) int {
	t.tripped[tunnel] = true
	t.record(Change{Time: t.cfg.Now(), Kind: LimitExceeded, Tunnel: tunnel, Source: BGP, Reason: detail})
	return t.dropBGPLocked(tunnel)
}

// Count returns how many BGP prefixes a tunnel has in the table (AWS's
// acceptedRouteCount).
func (t *Table) Count(tunnel string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count[tunnel]
}

// Exceeded reports whether a tunnel is shut after going over the limit.
func (t *Table) Exceeded(tunnel string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tripped[tunnel]
}

// TunnelPaths returns a tunnel's paths of one source, sorted by prefix.
func (t *Table) TunnelPaths(tunnel string, source Source) []Path {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Path
	for _, byKey := range t.paths {
		if p, ok := byKey[key{tunnel, source}]; ok {
			c := *p
			c.ASPath = slices.Clone(p.ASPath)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Path) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out
}

func (t *Table) record(c Change) { t.pending = append(t.pending, c) }

// comparePrefix sorts by address, then by prefix length (shorter first).
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
