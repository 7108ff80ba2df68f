package gateway

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vpnlab/vpnlab/datapath"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/routes"
)

// The decided route of a prefix (routes.Route: BGP, static, AWS's order)
// and the tunnel that carries the prefix's packets now are two things. The
// data path sends over the first tunnel of the decided route that has an
// outbound SA pair (all such tunnels with ECMP), so after DPD cleared
// tunnel1 the packets already leave through tunnel2 while the decision
// still says tunnel1 (for good with static routes, until the hold timer
// ends with BGP). This file follows the carrying tunnels: it reads them
// from the data path after every route decision and every SA pair change,
// publishes a "route" event of kind "carrying-moved" when they change, and
// adds them to GET /v1/routing ("carrying" per route).

// CarryingMoved is the route event kind for a change of the tunnels that
// carry a decided prefix now.
const CarryingMoved = "carrying-moved"

// carrying keeps the last carrying tunnels per decided prefix.
type carrying struct {
	refresh sync.Mutex // one read-compare-publish at a time, in order
	mu      sync.Mutex
	last    map[netip.Prefix][]string
}

// carryingOf derives, per decided prefix, the tunnels that carry it in the
// data path: the first tunnel of the route with an outbound SA pair, or
// every such tunnel of an ECMP route. An empty list: the prefix is decided
// but no tunnel of it has an SA pair (its packets are dropped). Prefixes
// the data path has no explicit route for (the tunnels' own inside /30s
// pinned over a decision) are left out.
func carryingOf(dp []datapath.RouteStatus, decided []routes.Route) map[netip.Prefix][]string {
	want := map[netip.Prefix]bool{}
	for _, r := range decided {
		if len(r.Tunnels) > 0 {
			want[r.Prefix] = true
		}
	}
	out := map[netip.Prefix][]string{}
	for _, r := range dp {
		if r.Source != "explicit" || !want[r.Prefix] {
			continue
		}
		act := r.Active
		if !r.ECMP && len(act) > 1 {
			act = act[:1]
		}
		out[r.Prefix] = slices.Clone(act)
	}
	return out
}

// carryingReason says why the carrying tunnels differ from the decided
// active ones (or that they agree).
func carryingReason(decided *routes.Route, to []string) string {
	if decided == nil {
		return ""
	}
	act := decided.ActiveTunnels()
	if slices.Equal(act, to) {
		return "the decided tunnels have SA pairs"
	}
	var without []string
	for _, t := range decided.Tunnels {
		if len(to) > 0 && t == to[0] {
			break
		}
		without = append(without, t)
	}
	if len(to) == 0 {
		return "no tunnel of the route has an SA pair (" + strings.Join(decided.Tunnels, ",") + ")"
	}
	return strings.Join(without, ",") + " has no SA pair; the data path uses the next tunnel of the route"
}

// update compares the data path's carrying tunnels with the last ones and
// returns the events for the prefixes whose carrying tunnels changed
// (sorted by prefix); a prefix no longer decided is carried by none.
func (c *carrying) update(now time.Time, dp []datapath.RouteStatus, decided []routes.Route) []status.Event {
	cur := carryingOf(dp, decided)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[netip.Prefix][]string{}
	}
	var evs []status.Event
	for p, to := range cur {
		from, had := c.last[p]
		if had && slices.Equal(from, to) {
			continue
		}
		var d *routes.Route
		for i := range decided {
			if decided[i].Prefix == p {
				d = &decided[i]
			}
		}
		evs = append(evs, status.Event{Time: now, Type: "route", Detail: map[string]string{
			"kind": CarryingMoved, "prefix": p.String(), "from": strings.Join(from, ","), "to": strings.Join(to, ","),
			"reason": carryingReason(d, to)}})
	}
	for p, from := range c.last {
		if _, ok := cur[p]; !ok {
			delete(c.last, p)
			if len(from) > 0 {
				evs = append(evs, status.Event{Time: now, Type: "route", Detail: map[string]string{
					"kind": CarryingMoved, "prefix": p.String(), "from": strings.Join(from, ","), "to": "",
					"reason": "the route was removed"}})
			}
		}
	}
	for p, to := range cur {
		c.last[p] = to
	}
	slices.SortFunc(evs, func(a, b status.Event) int { return strings.Compare(a.Detail["prefix"], b.Detail["prefix"]) })
	return evs
}

// refreshCarrying reads the data path and publishes the carrying changes
// of the decided routes.
func (r *routing) refreshCarrying(decided []routes.Route) {
	if r.dp == nil || r.eng == nil {
		return
	}
	r.carry.refresh.Lock()
	defer r.carry.refresh.Unlock()
	for _, ev := range r.carry.update(time.Now(), r.dp.Routes(), decided) {
		r.eng.Publish(ev)
	}
}

// carryingNow returns the carrying tunnels per decided prefix (nil without
// a data path), for the routing status.
func (r *routing) carryingNow(decided []routes.Route) map[netip.Prefix][]string {
	if r.dp == nil {
		return nil
	}
	return carryingOf(r.dp.Routes(), decided)
}

// routeView is a decided route with the tunnels that carry it now.
type routeView struct {
	routes.Route
	// Carrying lists the tunnels that carry the prefix's packets now (the
	// data path's choice: the decided tunnels without SA pairs skipped);
	// empty when none can. Absent without a data path.
	Carrying *[]string `json:"carrying,omitempty"`
}

func routeViews(decided []routes.Route, carry map[netip.Prefix][]string) []routeView {
	out := make([]routeView, 0, len(decided))
	for _, d := range decided {
		v := routeView{Route: d}
		if carry != nil {
			c, ok := carry[d.Prefix]
			if !ok {
				c = []string{}
			}
			v.Carrying = &c
		}
		out = append(out, v)
	}
	return out
}
