package scenarios

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/scenarios/report"
)

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
		return w.evalTunnel(c, gws)
	case "route":
		if c.Carried {
			return w.evalCarried(c, gws)
		}
		return w.evalRoute(c, gws)
	case "flow":
		return w.evalFlow(c)
	case "event":
		return w.evalEvent(c, since)
	case "wan":
		return evalWAN(c, w.wan)
	case "counter":
		v := engineCounter(w.status[c.Gateway], c.Name)
		return compare(v, c.Op, c.Value), v
	case "log":
		return w.evalLog(c)
	case "process":
		run := w.gws[c.Gateway].running()
		seen := map[bool]string{true: "running", false: "exited"}[run]
		return (c.Field == "running") == run, seen
	}
	return false, "(unknown condition)"
}

// evalTunnel compares a tunnel field on gws: without a gateway, both must
// agree.
func (w *world) evalTunnel(c *Cond, gws []string) (bool, string) {
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
}

// evalRoute checks the decided route of a prefix. Via: one of the gateways
// (or the named one) routes it so. Absent: none of them has a route for it.
func (w *world) evalRoute(c *Cond, gws []string) (bool, string) {
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
}

// evalFlow checks whether a flow is done, or compares a field of its result.
func (w *world) evalFlow(c *Cond) (bool, string) {
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
}

// evalEvent counts the gateways' events of c's type (and gateway, tunnel,
// details) since since, or since the start of the step c names.
func (w *world) evalEvent(c *Cond, since time.Time) (bool, string) {
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
}

// evalLog checks whether the gateway's logs contain c.Value (any case).
func (w *world) evalLog(c *Cond) (bool, string) {
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
}

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
