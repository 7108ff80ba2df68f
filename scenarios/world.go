package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/traffic"
	"github.com/vpnlab/vpnlab/scenarios/report"
)

// routingView is the part of GET /v1/routing the runner reads.
type routingView struct {
	Mode      string `json:"mode"`
	Neighbors []struct {
		Tunnel string `json:"tunnel"`
		State  string `json:"state"`
	} `json:"neighbors"`
	Routes []routeEntry `json:"routes"`
}

// routeEntry is one decided route of GET /v1/routing.
type routeEntry struct {
	Prefix  string   `json:"prefix"`
	Tunnels []string `json:"tunnels"`
	Active  int      `json:"active"`
	// Carrying: the tunnels that carry the prefix's packets now (the data
	// path's choice); nil when the gateway does not report it (a foreign
	// gateway).
	Carrying *[]string `json:"carrying"`
}

// carrying returns the tunnels that carry prefix now; known is false when
// the gateway has no decided route for it or does not report carrying.
func (v *routingView) carrying(prefix string) (tunnels []string, decided, known bool) {
	if v == nil {
		return nil, false, false
	}
	for _, r := range v.Routes {
		if r.Prefix == prefix && len(r.Tunnels) > 0 {
			if r.Carrying == nil {
				return nil, true, false
			}
			return *r.Carrying, true, true
		}
	}
	return nil, false, false
}

// active returns the decided active tunnels of prefix (nil: no route).
func (v *routingView) active(prefix string) []string {
	if v == nil {
		return nil
	}
	for _, r := range v.Routes {
		if r.Prefix == prefix && len(r.Tunnels) > 0 {
			n := max(r.Active, 1)
			return r.Tunnels[:min(n, len(r.Tunnels))]
		}
	}
	return nil
}

// world is what the runner knows: the events so far, the gateways' last
// status and routing, and the flows. Conditions are evaluated against it.
type world struct {
	start time.Time
	gws   map[string]*gwProc

	mu      sync.Mutex
	events  []report.Event
	status  map[string]*status.Snapshot
	routing map[string]*routingView
	flows   map[string]*flowState
	order   []string       // flow names in start order
	wan     wanCounterFunc // the WAN emulation's counters (wan.go)
}

type flowState struct {
	spec   FlowStep
	from   string
	to     string
	flow   *traffic.Flow
	result *traffic.Result // set when stopped
}

func newWorld(gws map[string]*gwProc) *world {
	return &world{start: time.Now(), gws: gws, status: map[string]*status.Snapshot{}, routing: map[string]*routingView{}, flows: map[string]*flowState{}}
}

// addEvent records an event (gateway events carry their own time).
func (w *world) addEvent(ev report.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// Keep time order: events of two gateways arrive interleaved.
	i := len(w.events)
	for i > 0 && w.events[i-1].Time.After(ev.Time) {
		i--
	}
	w.events = append(w.events, report.Event{})
	copy(w.events[i+1:], w.events[i:])
	w.events[i] = ev
}

func (w *world) runnerEvent(typ string, detail map[string]string) {
	w.addEvent(report.Event{Source: "runner", Type: typ, Detail: detail})
}

// refresh fetches every running gateway's status and routing.
func (w *world) refresh(ctx context.Context) {
	if ctx.Err() != nil {
		return // keep what was seen last: a dead context is not a stopped gateway
	}
	for name, g := range w.gws {
		var st *status.Snapshot
		var rv *routingView
		if g.foreign != nil {
			var evs []report.Event
			st, rv, evs = g.foreign.poll(ctx)
			for _, ev := range evs {
				w.addEvent(ev)
			}
		} else if g.running() {
			var ok bool
			st, rv, ok = queryGateway(ctx, g.client())
			w.store(name, st, rv, ok)
			continue
		}
		w.store(name, st, rv, true)
	}
}

// store records a gateway's state. A query that failed (ok false: the
// step's time ran out during the request, or the gateway was slow under
// load) is not an answer: what was seen last stays, instead of "no route".
func (w *world) store(name string, st *status.Snapshot, rv *routingView, ok bool) {
	if !ok {
		return
	}
	w.mu.Lock()
	w.status[name], w.routing[name] = st, rv
	w.mu.Unlock()
}

// queryGateway asks a running gateway for its status and routing; ok is
// false when a request failed (a gateway without routing answers 404 for
// its routing: rv nil, ok true).
func queryGateway(ctx context.Context, c *control.Client) (st *status.Snapshot, rv *routingView, ok bool) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := c.Status(cctx)
	if err != nil {
		return nil, nil, false
	}
	b, err := c.Raw(cctx, "GET", "/v1/routing")
	if err != nil {
		if ae := (*control.APIError)(nil); errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound {
			return &s, nil, true
		}
		return nil, nil, false
	}
	var v routingView
	if json.Unmarshal(b, &v) != nil {
		return nil, nil, false
	}
	return &s, &v, true
}

func (w *world) tunnelStatus(gw, tunnel string) *status.Tunnel {
	st := w.status[gw]
	if st == nil {
		return nil
	}
	for i := range st.Tunnels {
		if st.Tunnels[i].Name == tunnel {
			return &st.Tunnels[i]
		}
	}
	return nil
}

// flowResult is a flow's final result, or its live snapshot.
func (w *world) flowResult(name string) (traffic.Result, bool) {
	fs := w.flows[name]
	if fs == nil {
		return traffic.Result{}, false
	}
	if fs.result != nil {
		return *fs.result, true
	}
	return fs.flow.Snapshot(), true
}

// evalCarried: one of the gateways (or the named one) carries the prefix's
// packets over exactly c.Via now (the data path's choice, which skips the
// decided tunnels without SA pairs). Caller holds w.mu.

// stepStart is when the latest step named name started. Caller holds w.mu.
func (w *world) stepStart(name string) (time.Time, bool) {
	for i := len(w.events) - 1; i >= 0; i-- {
		ev := w.events[i]
		if ev.Source == "runner" && ev.Type == "step-start" && ev.Detail["name"] == name {
			return ev.Time, true
		}
	}
	return time.Time{}, false
}

// listEvents describes events for a failed count: time since the run's
// start, gateway, tunnel and the details that tell them apart (from, to,
// reason, state, ...), at most 10 of them.
func (w *world) listEvents(evs []report.Event) string {
	const most = 10
	var l []string
	for i, ev := range evs {
		if i == most {
			l = append(l, fmt.Sprintf("... %d more", len(evs)-most))
			break
		}
		d := fmt.Sprintf("[%.1fs %s", ev.Time.Sub(w.start).Seconds(), ev.Source)
		if ev.Tunnel != "" {
			d += " " + ev.Tunnel
		}
		for _, k := range []string{"kind", "prefix", "state", "from", "to", "reason", "status", "notify"} {
			if v, ok := ev.Detail[k]; ok && v != "" {
				d += " " + k + "=" + v
			}
		}
		l = append(l, d+"]")
	}
	return strings.Join(l, " ")
}

func quoteIfEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// tunnelLine is the compact state for the progress line: "t1 UP t2 DOWN".
func (w *world) tunnelLine(gw string, tunnels []string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status[gw] == nil {
		return gw + " -"
	}
	var parts []string
	for _, t := range tunnels {
		ts := w.tunnelStatus(gw, t)
		s := "?"
		if ts != nil {
			s = ts.Status
			if s == "DOWN" && ts.Phase1State != "" && ts.Phase1State != "Down" {
				s = "P1:" + ts.Phase1State
			}
		}
		parts = append(parts, shortTunnel(t)+" "+s)
	}
	return gw + " " + strings.Join(parts, " ")
}

func shortTunnel(t string) string {
	if strings.HasPrefix(t, "tunnel") {
		return "t" + t[len("tunnel"):]
	}
	return t
}

func (w *world) eventsCopy() []report.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := append([]report.Event(nil), w.events...)
	sort.SliceStable(l, func(i, j int) bool { return l[i].Time.Before(l[j].Time) })
	return l
}
