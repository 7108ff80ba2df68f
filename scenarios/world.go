package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
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

// tunnelField reads one field of a tunnel's status as text.
func tunnelField(t *status.Tunnel, field string) string {
	if t == nil {
		return "(gateway not running)"
	}
	if v, ok := sizeField(t, field); ok {
		return v
	}
	var newest *status.SA
	var pin, pout uint64
	var cpin, cpout, cbin, cbout, bin, bout uint64 // control share, bytes of the current pairs
	for i := range t.SAs {
		sa := &t.SAs[i]
		if newest == nil || sa.Established.After(newest.Established) {
			newest = sa
		}
		if c := sa.Counters; c != nil {
			pin += c.PacketsIn
			pout += c.PacketsOut
			cpin, cpout, cbin, cbout = cpin+c.ControlPacketsIn, cpout+c.ControlPacketsOut, cbin+c.ControlBytesIn, cbout+c.ControlBytesOut
			bin, bout = bin+c.BytesIn, bout+c.BytesOut
		}
	}
	sa := func(f func(*status.SA) string) string {
		if newest == nil {
			return "(no SA)"
		}
		return f(newest)
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	switch field {
	case "status":
		return t.Status
	case "status_message":
		return t.StatusMessage
	case "phase1":
		return t.Phase1State
	case "phase2":
		return t.Phase2State
	case "proposal":
		return t.Proposal
	case "ipsec_proposal":
		return sa(func(s *status.SA) string { return s.Proposal })
	case "protocol":
		return sa(func(s *status.SA) string { return s.Protocol })
	case "mode":
		return sa(func(s *status.SA) string { return s.Mode })
	case "udp_encap":
		return sa(func(s *status.SA) string { return strconv.FormatBool(s.UDPEncap) })
	case "nat":
		return strconv.FormatBool(t.NATDetected)
	case "exchange":
		return t.Exchange
	case "role":
		return t.Role
	case "bgp":
		return t.BGPState
	case "dpd":
		return t.DPDState
	case "routes":
		return strconv.Itoa(t.AcceptedRouteCount)
	case "data_in":
		return u(t.DataIn)
	case "data_out":
		return u(t.DataOut)
	case "packets_in":
		return u(pin)
	case "packets_out":
		return u(pout)
	case "user_packets_in": // the current pairs' packets less the link-local (BGP) ones
		return u(pin - min(cpin, pin))
	case "user_packets_out":
		return u(pout - min(cpout, pout))
	case "user_data_in":
		return u(bin - min(cbin, bin))
	case "user_data_out":
		return u(bout - min(cbout, bout))
	case "control_packets_in":
		return u(cpin)
	case "control_packets_out":
		return u(cpout)
	case "sas":
		return strconv.Itoa(len(t.SAs))
	case "phase1_established":
		return u(t.Counters.Phase1Established)
	case "phase2_established":
		return u(t.Counters.Phase2Established)
	case "retransmits":
		return u(t.Counters.Retransmits)
	case "duplicates_answered":
		return u(t.Counters.DuplicatesAnswered)
	case "messages_in":
		return u(t.Counters.MessagesIn)
	case "messages_out":
		return u(t.Counters.MessagesOut)
	case "notifies_sent":
		return u(t.Counters.NotifiesSent)
	case "notifies_received":
		return u(t.Counters.NotifiesReceived)
	case "last_error":
		return t.LastError
	}
	return "(unknown field)"
}

func engineCounter(st *status.Snapshot, name string) string {
	if st == nil {
		return "(gateway not running)"
	}
	c := st.Counters
	switch name {
	case "received":
		return strconv.FormatUint(c.Received, 10)
	case "malformed":
		return strconv.FormatUint(c.Malformed, 10)
	case "unknown_cookie":
		return strconv.FormatUint(c.UnknownCookie, 10)
	case "unknown_peer":
		return strconv.FormatUint(c.UnknownPeer, 10)
	case "half_open":
		return strconv.Itoa(c.HalfOpen)
	case "half_open_refused":
		return strconv.FormatUint(c.HalfOpenRefused, 10)
	}
	return "(unknown counter)"
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

func flowField(r traffic.Result, field string) string {
	if v, ok := delayField(r, field); ok {
		return v
	}
	switch field {
	case "sent":
		return strconv.FormatUint(r.Sent, 10)
	case "received":
		return strconv.FormatUint(r.Received, 10)
	case "lost":
		return strconv.FormatUint(r.Lost, 10)
	case "loss_pct":
		return strconv.FormatFloat(r.LossPct, 'f', 2, 64)
	case "reordered":
		return strconv.FormatUint(r.Reordered, 10)
	case "duplicates":
		return strconv.FormatUint(r.Duplicates, 10)
	case "max_gap":
		return r.MaxGap.Round(time.Millisecond).String()
	case "errors":
		return strconv.FormatUint(r.Errors, 10)
	}
	return "(unknown field)"
}

// eval evaluates c now. since bounds the events an event condition counts.
// It returns whether c holds and what was seen, for "expected X, seen Y".
func (w *world) eval(c *Cond, since time.Time) (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	gws := []string{"cgw", "vgw"}
	if c.Gateway != "" {
		gws = []string{c.Gateway}
	}
	switch c.Kind {
	case "tunnel":
		// Without a gateway, both must agree.
		ok := true
		var seen []string
		for _, g := range gws {
			v := tunnelField(w.tunnelStatus(g, c.Tunnel), c.Field)
			if !compare(v, c.Op, c.Value) {
				ok = false
			}
			seen = append(seen, fmt.Sprintf("%s %s", g, quoteIfEmpty(v)))
		}
		return ok, c.Tunnel + " " + c.Field + ": " + strings.Join(seen, ", ")
	case "route":
		if c.Carried {
			return w.evalCarried(c, gws)
		}
		// Via: one of the gateways (or the named one) routes it so.
		// Absent: none of them has a route for it.
		var seen []string
		match, absent := false, true
		for _, g := range gws {
			act := w.routing[g].active(c.Prefix.String())
			if act == nil {
				seen = append(seen, g+": no route")
				continue
			}
			absent = false
			if strings.Join(act, ",") == strings.Join(c.Via, ",") {
				match = true
			}
			seen = append(seen, g+": via "+strings.Join(act, ","))
		}
		if c.Via == nil {
			return absent, strings.Join(seen, "; ")
		}
		return match, strings.Join(seen, "; ")
	case "flow":
		fs := w.flows[c.Name]
		if fs == nil {
			return false, "flow not started"
		}
		if c.Field == "done" {
			select {
			case <-fs.flow.Done():
				return true, "finished"
			default:
				return false, "still sending"
			}
		}
		r, _ := w.flowResult(c.Name)
		v := flowField(r, c.Field)
		return compare(v, c.Op, c.Value), v
	case "event":
		n := 0
		var matched []report.Event
		if c.Since != "" {
			at, ok := w.stepStart(c.Since)
			if !ok {
				return compare("0", c.Op, c.Value), fmt.Sprintf("0 %s events (the step has not started)", c.eventDesc())
			}
			since = at
		}
		for _, ev := range w.events {
			if ev.Time.Before(since) || ev.Type != c.Name || ev.Source == "runner" {
				continue
			}
			if c.Gateway != "" && ev.Source != c.Gateway {
				continue
			}
			if c.Tunnel != "" && ev.Tunnel != c.Tunnel {
				continue
			}
			match := true
			for k, v := range c.Details {
				if !strings.EqualFold(ev.Detail[k], v) {
					match = false
				}
			}
			if match {
				n++
				matched = append(matched, ev)
			}
		}
		ok := compare(strconv.Itoa(n), c.Op, c.Value)
		seen := fmt.Sprintf("%d %s events", n, c.eventDesc())
		if !ok && n > 0 {
			seen += ": " + w.listEvents(matched)
		}
		return ok, seen
	case "wan":
		return evalWAN(c, w.wan)
	case "counter":
		v := engineCounter(w.status[c.Gateway], c.Name)
		return compare(v, c.Op, c.Value), v
	case "log":
		g := w.gws[c.Gateway]
		var all strings.Builder
		for _, l := range g.logFiles() {
			b, _ := os.ReadFile(l)
			all.Write(b)
		}
		has := strings.Contains(strings.ToLower(all.String()), strings.ToLower(c.Value))
		seen := "the log does not contain it"
		if has {
			seen = "the log contains it"
		}
		return has == (c.Op == "contains"), seen
	case "process":
		run := w.gws[c.Gateway].running()
		seen := map[bool]string{true: "running", false: "exited"}[run]
		return (c.Field == "running") == run, seen
	}
	return false, "(unknown condition)"
}

// evalCarried: one of the gateways (or the named one) carries the prefix's
// packets over exactly c.Via now (the data path's choice, which skips the
// decided tunnels without SA pairs). Caller holds w.mu.
func (w *world) evalCarried(c *Cond, gws []string) (bool, string) {
	var seen []string
	match := false
	for _, g := range gws {
		tun, decided, known := w.routing[g].carrying(c.Prefix.String())
		switch {
		case !decided:
			seen = append(seen, g+": no route")
		case !known:
			seen = append(seen, g+": carrying tunnels not reported")
		default:
			if strings.Join(tun, ",") == strings.Join(c.Via, ",") {
				match = true
			}
			by := strings.Join(tun, ",")
			if by == "" {
				by = "none"
			}
			seen = append(seen, g+": carried by "+by+" (decided via "+strings.Join(w.routing[g].active(c.Prefix.String()), ",")+")")
		}
	}
	return match, strings.Join(seen, "; ")
}

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
