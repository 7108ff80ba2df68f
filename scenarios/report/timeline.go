package report

import (
	"slices"
	"time"
)

// This file derives what the picture shows from the events: the state of
// each gateway's tunnels over time, the tunnels that carry each routed
// prefix, and the runner's markers.

// Tunnel states, from best to worst.
const (
	stateUp          = "up"
	stateUpNoBGP     = "up-nobgp"
	stateNegotiating = "negotiating"
	stateDown        = "down"
	stateDead        = "dead"
	stateDeadRetry   = "dead-renegotiating"
	stateStopped     = "stopped"
	stateUnknown     = "unknown"
)

// stateStyle is how a tunnel state is drawn and named in the legend.
type stateStyle struct {
	key, label, fill, text string
}

var stateStyles = []stateStyle{
	{stateUp, "up", "#2e9d4f", "#ffffff"},
	{stateUpNoBGP, "IPsec up, BGP not Established", "#a5d6a7", "#1b3a1f"},
	{stateNegotiating, "negotiating", "#f5b935", "#3d2c00"},
	{stateDown, "down", "#ef9a9a", "#4a0d0d"},
	{stateDead, "DPD: peer dead", "#b71c1c", "#ffffff"},
	{stateDeadRetry, "DPD: peer dead, renegotiating", "#e65100", "#ffffff"},
	{stateStopped, "gateway stopped", "#555a60", "#ffffff"},
	{stateUnknown, "no data", "#eceff1", "#607d8b"},
}

func styleOf(state string) stateStyle {
	for _, s := range stateStyles {
		if s.key == state {
			return s
		}
	}
	return stateStyles[len(stateStyles)-1]
}

// segment is a stretch of time in one state (a tunnel state, or for a route
// band the tunnels that carry the prefix).
type segment struct {
	from, to time.Time
	state    string   // tunnel band: a state constant
	tunnels  []string // route band: the active tunnels, none = no route
	unknown  bool     // carrying band: before the first carrying event
	why      string   // what started it
}

type tunnelBand struct {
	gateway, tunnel string
	segs            []segment
}

type routeBand struct {
	gateway, prefix string
	carried         bool // the tunnels carrying the packets, not the decided route
	segs            []segment
}

// marker is a runner event drawn as a vertical line.
type marker struct {
	at           time.Time
	kind, label  string
	title, color string
}

// timeRange is the span the picture covers: from the run's start (or the
// first time recorded) to its end (or the last time recorded); ok is false
// when nothing with a time was recorded (a run that aborted at setup).
func timeRange(r *Run) (start, end time.Time, ok bool) {
	var all []time.Time
	add := func(ts ...time.Time) {
		for _, t := range ts {
			if !t.IsZero() {
				all = append(all, t)
			}
		}
	}
	for _, e := range r.Events {
		add(e.Time)
	}
	for _, s := range r.Steps {
		add(s.Start, s.End)
	}
	for _, f := range r.Flows {
		add(f.Start, f.End, f.MaxGapFrom, f.MaxGapTo)
		for _, b := range f.Series {
			add(b.Start)
		}
	}
	if len(all) == 0 {
		return time.Time{}, time.Time{}, false
	}
	start, end = r.Start, r.End
	if start.IsZero() {
		start = slices.MinFunc(all, func(a, b time.Time) int { return a.Compare(b) })
	}
	if end.IsZero() || !end.After(start) {
		end = start
		for _, t := range all {
			if t.After(end) {
				end = t
			}
		}
	}
	if !end.After(start) {
		end = start.Add(time.Second)
	}
	return start, end, true
}

// gatewaysOf lists r.Gateways, then any other event source except the runner.
func gatewaysOf(r *Run) []string {
	gws := slices.Clone(r.Gateways)
	for _, e := range r.Events {
		if e.Source != "" && e.Source != "runner" && !slices.Contains(gws, e.Source) {
			gws = append(gws, e.Source)
		}
	}
	return gws
}

// tunnelsOf lists r.Tunnels, then any other tunnel a gateway event names.
func tunnelsOf(r *Run) []string {
	tns := slices.Clone(r.Tunnels)
	var extra []string
	for _, e := range r.Events {
		if e.Source != "runner" && e.Tunnel != "" && !slices.Contains(tns, e.Tunnel) && !slices.Contains(extra, e.Tunnel) {
			extra = append(extra, e.Tunnel)
		}
	}
	slices.Sort(extra)
	return append(tns, extra...)
}

// tunnelState follows one gateway's view of one tunnel through its events.
type tunnelState struct {
	known, stopped bool
	p1, p2         string
	statusSeen     bool // tunnel-status events are authoritative for IPsec up
	ipsecUp        bool
	pairs          int
	dead           bool
	usesBGP        bool
	bgp            string
}

func (s *tunnelState) apply(e Event) {
	if e.Source == "runner" {
		switch e.Type {
		case "gateway-start":
			*s = tunnelState{known: true, usesBGP: s.usesBGP, statusSeen: s.statusSeen}
		case "gateway-stop", "gateway-kill":
			*s = tunnelState{known: true, stopped: true, usesBGP: s.usesBGP, statusSeen: s.statusSeen}
		}
		return
	}
	s.known, s.stopped = true, false
	d := e.Detail
	switch e.Type {
	case "phase1-state":
		s.p1 = d["state"]
	case "phase2-state":
		s.p2 = d["state"]
	case "phase1-up":
		s.p1, s.dead = "Established", false
	case "phase1-down":
		s.p1 = "Down"
	case "phase2-up":
		s.pairs++
		s.p2, s.dead = "Established", false
		if !s.statusSeen {
			s.ipsecUp = true
		}
	case "phase2-down":
		if s.pairs > 0 {
			s.pairs--
		}
		if !s.statusSeen {
			s.ipsecUp = s.pairs > 0
		}
	case "tunnel-status":
		s.statusSeen = true
		s.ipsecUp = d["status"] == "UP"
		if s.ipsecUp {
			s.dead = false
		}
	case "dpd-state":
		switch d["state"] {
		case "dead":
			s.dead = true
		case "alive":
			s.dead = false
		}
	case "bgp-state":
		s.bgp = d["state"]
	}
}

func (s *tunnelState) state() string {
	switch {
	case !s.known:
		return stateUnknown
	case s.stopped:
		return stateStopped
	case s.dead && (s.p1 == "Negotiating" || s.p2 == "Negotiating"):
		// after the verdict with action restart (or a peer that starts
		// over): the tunnel is being negotiated again
		return stateDeadRetry
	case s.dead:
		return stateDead
	case s.ipsecUp && s.usesBGP && s.bgp != "Established":
		return stateUpNoBGP
	case s.ipsecUp:
		return stateUp
	case s.p1 == "Negotiating" || s.p1 == "Rekeying" || s.p2 == "Negotiating" || s.p2 == "Rekeying":
		return stateNegotiating
	}
	return stateDown
}

// tunnelBands derives one band per gateway and tunnel.
func tunnelBands(r *Run, events []Event, start, end time.Time) []tunnelBand {
	var bands []tunnelBand
	for _, gw := range gatewaysOf(r) {
		for _, tn := range tunnelsOf(r) {
			mine := func(e Event) bool {
				if e.Source == "runner" {
					return (e.Type == "gateway-start" || e.Type == "gateway-stop" || e.Type == "gateway-kill") && gatewayOf(e) == gw
				}
				return e.Source == gw && e.Tunnel == tn
			}
			var st tunnelState
			seen := false
			for _, e := range events {
				if mine(e) && e.Source != "runner" {
					seen = true
					if e.Type == "bgp-state" {
						st.usesBGP = true
					}
					if e.Type == "tunnel-status" {
						st.statusSeen = true
					}
				}
			}
			if !seen && !slices.Contains(r.Tunnels, tn) {
				continue // another gateway's tunnel
			}
			var segs []segment
			cur := segment{from: start, state: st.state()}
			for _, e := range events {
				if !mine(e) {
					continue
				}
				st.apply(e)
				now := st.state()
				if now == cur.state {
					continue
				}
				at := clampTime(e.Time, start, end)
				switch {
				case at.After(cur.from):
					cur.to = at
					segs = append(segs, cur)
					cur = segment{from: at, state: now, why: DescribeEvent(e)}
				case len(segs) > 0 && segs[len(segs)-1].state == now:
					// A state that lasted no time (several events at
					// one instant): the one before goes on.
					cur = segs[len(segs)-1]
					segs = segs[:len(segs)-1]
				default:
					cur = segment{from: at, state: now, why: DescribeEvent(e)}
				}
			}
			cur.to = end
			if cur.to.After(cur.from) || len(segs) == 0 {
				segs = append(segs, cur)
			}
			bands = append(bands, tunnelBand{gateway: gw, tunnel: tn, segs: segs})
		}
	}
	return bands
}

// routeBands derives per gateway and prefix a band of the decided route
// (installed, best-moved, removed: BGP's or the static choice) and, right
// below it, a band of the tunnels that carried the prefix's packets
// (carrying-moved: the data path's choice, which skips decided tunnels
// without SA pairs). The two differ e.g. from a DPD verdict until the BGP
// hold timer ends, and for good with static routes.
func routeBands(r *Run, events []Event, start, end time.Time) []routeBand {
	decided := routeBandsOf(r, events, start, end, false)
	carried := routeBandsOf(r, events, start, end, true)
	var out []routeBand
	used := make([]bool, len(carried))
	for _, d := range decided {
		out = append(out, d)
		for i, c := range carried {
			if !used[i] && c.gateway == d.gateway && c.prefix == d.prefix {
				out = append(out, c)
				used[i] = true
			}
		}
	}
	for i, c := range carried {
		if !used[i] {
			out = append(out, c)
		}
	}
	return out
}

// routeBandsOf derives the decided bands or (carried) the carrying bands.
func routeBandsOf(r *Run, events []Event, start, end time.Time, carried bool) []routeBand {
	var bands []routeBand
	index := map[[2]string]int{}
	for _, gw := range gatewaysOf(r) {
		for _, e := range events {
			if e.Source != gw || e.Type != "route" || e.Detail["prefix"] == "" {
				continue
			}
			kind := e.Detail["kind"]
			if carried != (kind == "carrying-moved") || (!carried && kind != "installed" && kind != "best-moved" && kind != "removed") {
				continue
			}
			key := [2]string{gw, e.Detail["prefix"]}
			i, ok := index[key]
			if !ok {
				i = len(bands)
				index[key] = i
				first := segment{from: start, unknown: carried}
				if kind != "installed" && !carried {
					first.tunnels = list(e.Detail["from"])
					first.why = "active before the first route event"
				}
				bands = append(bands, routeBand{gateway: gw, prefix: key[1], carried: carried, segs: []segment{first}})
			}
			b := &bands[i]
			var to []string
			if kind != "removed" {
				to = list(e.Detail["to"])
			}
			cur := &b.segs[len(b.segs)-1]
			if slices.Equal(cur.tunnels, to) && !cur.unknown {
				continue
			}
			at := clampTime(e.Time, start, end)
			seg := segment{from: at, tunnels: to, why: DescribeEvent(e)}
			switch {
			case at.After(cur.from):
				cur.to = at
				b.segs = append(b.segs, seg)
			case len(b.segs) > 1 && slices.Equal(b.segs[len(b.segs)-2].tunnels, to) && !b.segs[len(b.segs)-2].unknown:
				b.segs = b.segs[:len(b.segs)-1] // the one before goes on
			default:
				*cur = seg
			}
		}
	}
	for i := range bands {
		bands[i].segs[len(bands[i].segs)-1].to = end
	}
	return bands
}

// markers are the runner's events worth a vertical line: impairments,
// restores, gateway starts, stops and kills (steps and flows have their own
// lanes).
func markers(events []Event) []marker {
	var ms []marker
	for _, e := range events {
		if e.Source != "runner" {
			continue
		}
		m := marker{at: e.Time, kind: e.Type, title: DescribeEvent(e)}
		switch e.Type {
		case "step-start", "step-end", "flow-start", "flow-stop":
			continue
		case "impair":
			m.label, m.color = "impair "+target(e)+": "+e.Detail["fault"], "#d62728"
			if e.Detail["fault"] == "flush-nat" {
				m.label = "flush NAT"
			}
		case "rekey":
			m.label, m.color = "rekey "+gatewayOf(e)+" "+e.Detail["tunnel"]+" phase "+e.Detail["phase"], "#00838f"
		case "initiate", "terminate":
			m.label, m.color = e.Type+" "+gatewayOf(e)+" "+e.Detail["tunnel"], "#5d4037"
		case "ike-impair":
			m.label, m.color = "ike_impair "+gatewayOf(e)+": "+e.Detail["spec"], "#ad1457"
		case "bgp":
			m.label, m.color = "bgp "+gatewayOf(e)+": "+e.Detail["what"], "#283593"
		case "restore":
			m.label, m.color = "restore "+target(e), "#2e7d32"
		case "gateway-kill":
			m.label, m.color = "kill "+gatewayOf(e), "#000000"
		case "gateway-stop":
			m.label, m.color = "stop "+gatewayOf(e), "#37474f"
		case "gateway-start":
			m.label, m.color = "start "+gatewayOf(e), "#1565c0"
		default:
			m.label, m.color = e.Type, "#6a1b9a"
		}
		ms = append(ms, m)
	}
	return ms
}

func clampTime(t, lo, hi time.Time) time.Time {
	if t.Before(lo) {
		return lo
	}
	if t.After(hi) {
		return hi
	}
	return t
}

// tunnelColor is the colour of a tunnel in the route bands.
func tunnelColor(tunnels []string, name string) string {
	palette := []string{"#1f6fd1", "#8e44ad", "#00897b", "#c2185b", "#6d4c41", "#5c6bc0", "#827717", "#0097a7"}
	i := slices.Index(tunnels, name)
	if i < 0 {
		h := 0
		for _, c := range name {
			h = h*31 + int(c)
		}
		if h < 0 {
			h = -h
		}
		i = len(tunnels) + h
	}
	return palette[i%len(palette)]
}
