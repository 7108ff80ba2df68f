package routes

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	pA = netip.MustParsePrefix("10.1.0.0/16")
	pB = netip.MustParsePrefix("10.2.0.0/16")
	pC = netip.MustParsePrefix("192.168.0.0/24")
)

func bgp(prefix netip.Prefix, tunnel string, asPath ...uint32) Path {
	return Path{Prefix: prefix, Tunnel: tunnel, Source: BGP, ASPath: asPath}
}

func withMED(p Path, med uint32) Path {
	p.MED, p.HasMED = med, true
	return p
}

func static(prefix netip.Prefix, tunnel string) Path {
	return Path{Prefix: prefix, Tunnel: tunnel, Source: Static}
}

// fakeClock advances one second per reading.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

func newTable(t *testing.T, cfg Config, tunnels ...string) *Table {
	t.Helper()
	if len(tunnels) == 0 {
		tunnels = []string{"tunnel1", "tunnel2", "tunnel3"}
	}
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg.Now = clock.now
	tbl, err := New(tunnels, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func mustAdd(t *testing.T, tbl *Table, paths ...Path) {
	t.Helper()
	for _, p := range paths {
		if err := tbl.Add(p); err != nil {
			t.Fatalf("Add(%v): %v", p, err)
		}
	}
}

func find(routes []Route, prefix netip.Prefix) *Route {
	for i := range routes {
		if routes[i].Prefix == prefix {
			return &routes[i]
		}
	}
	return nil
}

// TestSelection checks the preference order on one prefix.
func TestSelection(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		paths      []Path
		wantOrder  []string
		wantActive int
		wantReason string
	}{
		{
			name:       "tie-break by tunnel order",
			paths:      []Path{bgp(pA, "tunnel2", 65000), bgp(pA, "tunnel1", 65000)},
			wantOrder:  []string{"tunnel1", "tunnel2"},
			wantReason: "tunnel order tie-break",
		},
		{
			name:       "tie-break with equal MEDs",
			paths:      []Path{withMED(bgp(pA, "tunnel2", 65000), 100), withMED(bgp(pA, "tunnel1", 65000), 100)},
			wantOrder:  []string{"tunnel1", "tunnel2"},
			wantReason: "tunnel order tie-break",
		},
		{
			name:       "prepend on tunnel1 moves to tunnel2",
			paths:      []Path{bgp(pA, "tunnel1", 65000, 65000, 65000), bgp(pA, "tunnel2", 65000)},
			wantOrder:  []string{"tunnel2", "tunnel1"},
			wantReason: "shorter AS_PATH (1 < 3)",
		},
		{
			name:       "shorter AS_PATH beats lower MED",
			paths:      []Path{withMED(bgp(pA, "tunnel1", 65000, 65000), 0), withMED(bgp(pA, "tunnel2", 65000), 500)},
			wantOrder:  []string{"tunnel2", "tunnel1"},
			wantReason: "shorter AS_PATH",
		},
		{
			name:       "lower MED wins",
			paths:      []Path{withMED(bgp(pA, "tunnel1", 65000), 200), withMED(bgp(pA, "tunnel2", 65000), 100)},
			wantOrder:  []string{"tunnel2", "tunnel1"},
			wantReason: "lower MED (100 < 200)",
		},
		{
			name:       "missing MED counts as 0",
			paths:      []Path{withMED(bgp(pA, "tunnel1", 65000), 100), bgp(pA, "tunnel2", 65000)},
			wantOrder:  []string{"tunnel2", "tunnel1"},
			wantReason: "lower MED (0 < 100)",
		},
		{
			name:       "MED not compared across neighbor AS",
			paths:      []Path{withMED(bgp(pA, "tunnel1", 65001), 200), withMED(bgp(pA, "tunnel2", 65002), 100)},
			wantOrder:  []string{"tunnel1", "tunnel2"},
			wantReason: "different neighbor AS",
		},
		{
			name: "NeighborAS overrides the AS_PATH's first AS",
			paths: []Path{
				withMED(Path{Prefix: pA, Tunnel: "tunnel1", Source: BGP, ASPath: []uint32{65001}, NeighborAS: 7}, 200),
				withMED(Path{Prefix: pA, Tunnel: "tunnel2", Source: BGP, ASPath: []uint32{65002}, NeighborAS: 7}, 100),
			},
			wantOrder:  []string{"tunnel2", "tunnel1"},
			wantReason: "lower MED",
		},
		{
			// tunnel1 loses to tunnel3 on MED (same AS); tunnel2 is only
			// comparable by order; then tunnel3 still beats tunnel1.
			name: "MED elimination within neighbor AS, RFC 4271 style",
			paths: []Path{
				withMED(bgp(pA, "tunnel1", 65001), 50),
				withMED(bgp(pA, "tunnel2", 65002), 10),
				withMED(bgp(pA, "tunnel3", 65001), 5),
			},
			wantOrder:  []string{"tunnel2", "tunnel3", "tunnel1"},
			wantReason: "different neighbor AS",
		},
		{
			name:       "static beats BGP",
			paths:      []Path{bgp(pA, "tunnel1"), static(pA, "tunnel2")},
			wantOrder:  []string{"tunnel2", "tunnel1"},
			wantReason: "static route preferred over BGP",
		},
		{
			name:       "static and BGP on one tunnel list it once",
			paths:      []Path{bgp(pA, "tunnel1", 65000), static(pA, "tunnel1"), bgp(pA, "tunnel2", 65000)},
			wantOrder:  []string{"tunnel1", "tunnel2"},
			wantReason: "static route preferred over BGP",
		},
		{
			name:       "static routes tie-break by order",
			paths:      []Path{static(pA, "tunnel3"), static(pA, "tunnel2")},
			wantOrder:  []string{"tunnel2", "tunnel3"},
			wantReason: "tunnel order tie-break between static routes",
		},
		{
			name:       "single path",
			paths:      []Path{bgp(pA, "tunnel3", 65000)},
			wantOrder:  []string{"tunnel3"},
			wantReason: "only path",
		},
		{
			name: "ECMP: equal AS_PATH length is active together, MED ignored",
			cfg:  Config{ECMP: true},
			paths: []Path{
				withMED(bgp(pA, "tunnel1", 65000), 300),
				withMED(bgp(pA, "tunnel2", 65000), 100),
				bgp(pA, "tunnel3", 65000, 65000),
			},
			wantOrder:  []string{"tunnel2", "tunnel1", "tunnel3"},
			wantActive: 2,
			wantReason: "ECMP over 2 tunnels with AS_PATH length 1",
		},
		{
			name:       "ECMP: prepend takes a tunnel out of the set",
			cfg:        Config{ECMP: true},
			paths:      []Path{bgp(pA, "tunnel1", 65000, 65000), bgp(pA, "tunnel2", 65000)},
			wantOrder:  []string{"tunnel2", "tunnel1"},
			wantReason: "shorter AS_PATH",
		},
		{
			name:       "ECMP: static routes are never ECMP",
			cfg:        Config{ECMP: true},
			paths:      []Path{static(pA, "tunnel1"), static(pA, "tunnel2")},
			wantOrder:  []string{"tunnel1", "tunnel2"},
			wantReason: "tie-break between static routes",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := newTable(t, tc.cfg)
			mustAdd(t, tbl, tc.paths...)
			routes, _ := tbl.Decide()
			if len(routes) != 1 {
				t.Fatalf("got %d routes, want 1", len(routes))
			}
			r := routes[0]
			if !slices.Equal(r.Tunnels, tc.wantOrder) {
				t.Errorf("tunnels = %v, want %v", r.Tunnels, tc.wantOrder)
			}
			wantActive := max(tc.wantActive, 1)
			if r.Active != wantActive || r.ECMP != (wantActive > 1) {
				t.Errorf("active = %d ecmp = %v, want %d", r.Active, r.ECMP, wantActive)
			}
			if !strings.Contains(r.Reason, tc.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", r.Reason, tc.wantReason)
			}
			for i, p := range r.Paths {
				if p.Tunnel != r.Tunnels[i] {
					t.Errorf("paths[%d] is %s, tunnels[%d] is %s", i, p.Tunnel, i, r.Tunnels[i])
				}
			}
		})
	}
}

// TestTieBreakStable: the insertion order never changes the decision.
func TestTieBreakStable(t *testing.T) {
	paths := []Path{bgp(pA, "tunnel1", 65000), bgp(pA, "tunnel2", 65000), bgp(pA, "tunnel3", 65000)}
	for _, perm := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {2, 0, 1}} {
		tbl := newTable(t, Config{})
		for _, i := range perm {
			mustAdd(t, tbl, paths[i])
		}
		routes, _ := tbl.Decide()
		if got := routes[0].Tunnels; !slices.Equal(got, []string{"tunnel1", "tunnel2", "tunnel3"}) {
			t.Errorf("insertion order %v: tunnels = %v", perm, got)
		}
	}
}

type wantChange struct {
	kind     ChangeKind
	prefix   netip.Prefix
	tunnel   string
	from, to []string
}

func checkChanges(t *testing.T, got []Change, want []wantChange) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d changes %v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Kind != w.kind || g.Prefix != w.prefix || g.Tunnel != w.tunnel ||
			!slices.Equal(g.From, w.from) || !slices.Equal(g.To, w.to) {
			t.Errorf("change %d = %v, want %+v", i, g, w)
		}
		if g.Time.IsZero() {
			t.Errorf("change %d has no time", i)
		}
	}
}

// TestChangesAndMoves walks one table through a sequence of events and
// checks the changes each Decide reports.
func TestChangesAndMoves(t *testing.T) {
	t1, t2 := []string{"tunnel1"}, []string{"tunnel2"}
	type step struct {
		name  string
		do    func(t *testing.T, tbl *Table)
		want  []wantChange
		order map[netip.Prefix][]string // expected tunnels per prefix; nil entry = no route
	}
	steps := []step{
		{
			name: "learn the same prefix on both tunnels",
			do: func(t *testing.T, tbl *Table) {
				mustAdd(t, tbl, bgp(pA, "tunnel2", 65000), bgp(pA, "tunnel1", 65000))
			},
			want: []wantChange{
				{kind: Learned, prefix: pA, tunnel: "tunnel2"},
				{kind: Learned, prefix: pA, tunnel: "tunnel1"},
				{kind: Installed, prefix: pA, to: t1},
			},
			order: map[netip.Prefix][]string{pA: {"tunnel1", "tunnel2"}},
		},
		{
			name: "re-adding identical attributes is no change",
			do: func(t *testing.T, tbl *Table) {
				mustAdd(t, tbl, bgp(pA, "tunnel1", 65000))
			},
			want:  nil,
			order: map[netip.Prefix][]string{pA: {"tunnel1", "tunnel2"}},
		},
		{
			name: "prepend on tunnel1 moves the best",
			do: func(t *testing.T, tbl *Table) {
				mustAdd(t, tbl, bgp(pA, "tunnel1", 65000, 65000))
			},
			want: []wantChange{
				{kind: Updated, prefix: pA, tunnel: "tunnel1"},
				{kind: BestMoved, prefix: pA, from: t1, to: t2},
			},
			order: map[netip.Prefix][]string{pA: {"tunnel2", "tunnel1"}},
		},
		{
			name: "withdraw tunnel2 moves it back",
			do: func(t *testing.T, tbl *Table) {
				if !tbl.Withdraw(pA, "tunnel2", BGP) {
					t.Fatal("withdraw found nothing")
				}
				if tbl.Withdraw(pA, "tunnel2", BGP) {
					t.Fatal("second withdraw found something")
				}
			},
			want: []wantChange{
				{kind: Withdrawn, prefix: pA, tunnel: "tunnel2"},
				{kind: BestMoved, prefix: pA, from: t2, to: t1},
			},
			order: map[netip.Prefix][]string{pA: {"tunnel1"}},
		},
		{
			name: "withdraw the last path removes the route",
			do: func(t *testing.T, tbl *Table) {
				tbl.Withdraw(netip.MustParsePrefix("10.1.2.3/16"), "tunnel1", BGP) // normalised
			},
			want: []wantChange{
				{kind: Withdrawn, prefix: pA, tunnel: "tunnel1"},
				{kind: Removed, prefix: pA, from: t1},
			},
			order: map[netip.Prefix][]string{pA: nil},
		},
		{
			name: "learn and withdraw between two decisions reports both, no route change",
			do: func(t *testing.T, tbl *Table) {
				mustAdd(t, tbl, bgp(pB, "tunnel1", 65000))
				tbl.Withdraw(pB, "tunnel1", BGP)
			},
			want: []wantChange{
				{kind: Learned, prefix: pB, tunnel: "tunnel1"},
				{kind: Withdrawn, prefix: pB, tunnel: "tunnel1"},
			},
			order: map[netip.Prefix][]string{pB: nil},
		},
	}
	tbl := newTable(t, Config{})
	for _, s := range steps {
		s.do(t, tbl)
		routes, changes := tbl.Decide()
		t.Run(s.name, func(t *testing.T) {
			checkChanges(t, changes, s.want)
			for prefix, want := range s.order {
				r := find(routes, prefix)
				switch {
				case want == nil && r != nil:
					t.Errorf("%s: route %v, want none", prefix, r.Tunnels)
				case want != nil && r == nil:
					t.Errorf("%s: no route, want %v", prefix, want)
				case want != nil && !slices.Equal(r.Tunnels, want):
					t.Errorf("%s: tunnels %v, want %v", prefix, r.Tunnels, want)
				}
			}
		})
	}
}

// TestTunnelDown: a session going down withdraws all of its BGP paths; static
// routes stay.
func TestTunnelDown(t *testing.T) {
	tbl := newTable(t, Config{})
	mustAdd(t, tbl,
		bgp(pA, "tunnel1", 65000), bgp(pA, "tunnel2", 65000),
		bgp(pB, "tunnel1", 65000), bgp(pB, "tunnel2", 65000, 65000),
		bgp(pC, "tunnel1", 65000), static(pC, "tunnel1"))
	tbl.Decide()
	sinceA := find(tbl.Routes(), pA).Since

	if n := tbl.WithdrawTunnel("tunnel1"); n != 3 {
		t.Fatalf("WithdrawTunnel = %d, want 3", n)
	}
	routes, changes := tbl.Decide()
	checkChanges(t, changes, []wantChange{
		{kind: Withdrawn, prefix: pA, tunnel: "tunnel1"},
		{kind: Withdrawn, prefix: pB, tunnel: "tunnel1"},
		{kind: Withdrawn, prefix: pC, tunnel: "tunnel1"},
		{kind: BestMoved, prefix: pA, from: []string{"tunnel1"}, to: []string{"tunnel2"}},
		{kind: BestMoved, prefix: pB, from: []string{"tunnel1"}, to: []string{"tunnel2"}},
	})
	if r := find(routes, pC); r == nil || !slices.Equal(r.Tunnels, []string{"tunnel1"}) || r.Paths[0].Source != Static {
		t.Errorf("static route lost: %+v", r)
	}
	if r := find(routes, pA); !r.Since.After(sinceA) {
		t.Errorf("Since not advanced on a move: %v then %v", sinceA, r.Since)
	}
	if got := tbl.Count("tunnel1"); got != 0 {
		t.Errorf("Count(tunnel1) = %d", got)
	}
	if got := tbl.Count("tunnel2"); got != 2 {
		t.Errorf("Count(tunnel2) = %d", got)
	}
}

// TestRouteLimit: the first prefix over the limit shuts the tunnel's BGP
// paths out until its session restarts.
func TestRouteLimit(t *testing.T) {
	tbl := newTable(t, Config{Limit: 2})
	mustAdd(t, tbl, bgp(pA, "tunnel1", 65000), bgp(pB, "tunnel1", 65000), bgp(pA, "tunnel2", 65000))
	tbl.Decide()

	// Updating a prefix already counted is fine at the limit.
	mustAdd(t, tbl, withMED(bgp(pA, "tunnel1", 65000), 5))
	// Static routes do not count.
	mustAdd(t, tbl, static(pC, "tunnel1"))

	err := tbl.Add(bgp(pC, "tunnel1", 65000))
	if !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("third prefix: err = %v, want ErrLimitExceeded", err)
	}
	if !tbl.Exceeded("tunnel1") {
		t.Error("tunnel1 not marked exceeded")
	}
	routes, changes := tbl.Decide()
	var limit *Change
	for i := range changes {
		if changes[i].Kind == LimitExceeded {
			limit = &changes[i]
		}
	}
	if limit == nil || limit.Tunnel != "tunnel1" || !strings.Contains(limit.Reason, "limit 2") {
		t.Fatalf("no LimitExceeded change for tunnel1: %v", changes)
	}
	if r := find(routes, pA); !slices.Equal(r.Tunnels, []string{"tunnel2"}) {
		t.Errorf("pA tunnels = %v, want only tunnel2", r.Tunnels)
	}
	if r := find(routes, pB); r != nil {
		t.Errorf("pB still routed: %v", r.Tunnels)
	}
	if r := find(routes, pC); r == nil || r.Paths[0].Source != Static {
		t.Errorf("static pC lost: %+v", r)
	}
	if err := tbl.Add(bgp(pB, "tunnel1", 65000)); !errors.Is(err, ErrLimitExceeded) {
		t.Errorf("add while shut: err = %v", err)
	}
	if err := tbl.Add(bgp(pB, "tunnel2", 65000)); err != nil {
		t.Errorf("other tunnel refused: %v", err)
	}

	// The session restarts: accepted again, counted from zero.
	tbl.WithdrawTunnel("tunnel1")
	if tbl.Exceeded("tunnel1") {
		t.Error("still exceeded after WithdrawTunnel")
	}
	mustAdd(t, tbl, bgp(pA, "tunnel1", 65000), bgp(pB, "tunnel1", 65000))
	if got := tbl.Count("tunnel1"); got != 2 {
		t.Errorf("Count = %d, want 2", got)
	}
}

// TestExceedLimitFromSpeaker: the BGP speaker may detect the limit first.
func TestExceedLimitFromSpeaker(t *testing.T) {
	tbl := newTable(t, Config{Limit: 100})
	mustAdd(t, tbl, bgp(pA, "tunnel1", 65000), bgp(pB, "tunnel1", 65000))
	tbl.Decide()
	if n := tbl.ExceedLimit("tunnel1", "peer sent more than 100 prefixes"); n != 2 {
		t.Fatalf("ExceedLimit dropped %d, want 2", n)
	}
	routes, changes := tbl.Decide()
	if len(routes) != 0 {
		t.Errorf("routes left: %v", routes)
	}
	if changes[0].Kind != LimitExceeded || changes[0].Reason != "peer sent more than 100 prefixes" {
		t.Errorf("first change = %v", changes[0])
	}
}

func TestErrors(t *testing.T) {
	if _, err := New([]string{"a", "a"}, Config{}); err == nil {
		t.Error("duplicate tunnel accepted")
	}
	if _, err := New([]string{""}, Config{}); err == nil {
		t.Error("empty tunnel name accepted")
	}
	if _, err := New([]string{"a"}, Config{Limit: -1}); err == nil {
		t.Error("negative limit accepted")
	}
	tbl := newTable(t, Config{})
	for _, p := range []Path{
		bgp(pA, "nope", 65000),
		{Tunnel: "tunnel1", Source: BGP},
		{Prefix: pA, Tunnel: "tunnel1"},
	} {
		if err := tbl.Add(p); err == nil {
			t.Errorf("Add(%+v) accepted", p)
		}
	}
}

func TestSortedAndIsolated(t *testing.T) {
	tbl := newTable(t, Config{})
	p6 := netip.MustParsePrefix("2001:db8::/32")
	wide := netip.MustParsePrefix("10.0.0.0/8")
	mustAdd(t, tbl, bgp(pC, "tunnel1"), bgp(p6, "tunnel1"), bgp(pB, "tunnel1"), bgp(pA, "tunnel1"), bgp(wide, "tunnel1"),
		bgp(netip.MustParsePrefix("10.1.0.0/24"), "tunnel1"))
	routes, _ := tbl.Decide()
	var got []string
	for _, r := range routes {
		got = append(got, r.Prefix.String())
	}
	want := []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.0.0/24", "10.2.0.0/16", "192.168.0.0/24", "2001:db8::/32"}
	if !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
	// The caller's copy is its own.
	routes[0].Tunnels[0] = "mangled"
	if tbl.Routes()[0].Tunnels[0] != "tunnel1" {
		t.Error("Routes shares memory with the caller")
	}
}
