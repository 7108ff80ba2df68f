package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vpnlab/vpnlab/ike"
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
	Routes []struct {
		Prefix  string   `json:"prefix"`
		Tunnels []string `json:"tunnels"`
		Active  int      `json:"active"`
	} `json:"routes"`
}

// active returns the tunnels that carry prefix (nil: no route).
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
	status  map[string]*ike.Status
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
	return &world{start: time.Now(), gws: gws, status: map[string]*ike.Status{}, routing: map[string]*routingView{}, flows: map[string]*flowState{}}
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
		var st *ike.Status
		var rv *routingView
		if g.foreign != nil {
			var evs []report.Event
			st, rv, evs = g.foreign.poll(ctx)
			for _, ev := range evs {
				w.addEvent(ev)
			}
		} else if g.running() {
			c := g.client()
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			if s, err := c.Status(cctx); err == nil {
				st = &s
			}
			if b, err := c.Raw(cctx, "GET", "/v1/routing"); err == nil {
				var v routingView
				if json.Unmarshal(b, &v) == nil {
					rv = &v
				}
			}
			cancel()
		}
		w.mu.Lock()
		w.status[name], w.routing[name] = st, rv
		w.mu.Unlock()
	}
}

func (w *world) tunnelStatus(gw, tunnel string) *ike.TunnelStatus {
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
func tunnelField(t *ike.TunnelStatus, field string) string {
	if t == nil {
		return "(gateway not running)"
	}
	if v, ok := sizeField(t, field); ok {
		return v
	}
	var newest *ike.SAStatus
	var pin, pout uint64
	for i := range t.SAs {
		sa := &t.SAs[i]
		if newest == nil || sa.Established.After(newest.Established) {
			newest = sa
		}
		if sa.Counters != nil {
			pin += sa.Counters.PacketsIn
			pout += sa.Counters.PacketsOut
		}
	}
	sa := func(f func(*ike.SAStatus) string) string {
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
		return sa(func(s *ike.SAStatus) string { return s.Proposal })
	case "protocol":
		return sa(func(s *ike.SAStatus) string { return s.Protocol })
	case "mode":
		return sa(func(s *ike.SAStatus) string { return s.Mode })
	case "udp_encap":
		return sa(func(s *ike.SAStatus) string { return strconv.FormatBool(s.UDPEncap) })
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

func engineCounter(st *ike.Status, name string) string {
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
			}
		}
		return compare(strconv.Itoa(n), c.Op, c.Value), fmt.Sprintf("%d %s events", n, c.eventDesc())
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
