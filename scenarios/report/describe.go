package report

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// DescribeEvent says in words what an event means, e.g. "phase 2 up
// (esp-aes128gcm16, SPIs in ef5ebbd9 out ad8c3188)", "DPD: peer dead",
// "BGP Established", "route 172.31.0.0/16: tunnel1 -> tunnel2". It does not
// repeat the time, the source or the tunnel.
func DescribeEvent(e Event) string {
	s := describeEvent(e)
	switch e.Detail["foreign"] {
	case "strongswan":
		s += " [strongSwan]"
	case "bird":
		s += " [BIRD]"
	case "frr":
		s += " [FRR]"
	}
	return s
}

// describeEvent is DescribeEvent without the mark of a foreign gateway's
// events (polled from strongSwan or BIRD by the runner).
func describeEvent(e Event) string {
	d := e.Detail
	get := func(k string) string { return d[k] }
	switch e.Type {
	case "phase1-state":
		return "phase 1 " + orDash(get("state"))
	case "phase2-state":
		return "phase 2 " + orDash(get("state"))
	case "phase1-up":
		return "phase 1 up" + paren(join(", ", get("exchange"), get("role"), get("proposal"), ifTrue(get("nat_detected"), "NAT")))
	case "phase1-down":
		return "phase 1 down" + paren(get("reason"))
	case "phase2-up":
		spis := ""
		if get("spi_in") != "" || get("spi_out") != "" {
			spis = "SPIs in " + orDash(get("spi_in")) + " out " + orDash(get("spi_out"))
		}
		return "phase 2 up" + paren(join(", ", get("proposal"), spis))
	case "phase2-down":
		spi := ""
		if s := get("spi_in"); s != "" {
			spi = "SPI in " + s
		}
		return "phase 2 down" + paren(join(": ", spi, get("reason")))
	case "phase2-failed":
		return "phase 2 failed" + colon(get("reason"))
	case "phase2-superseded":
		return "one SA pair per tunnel: " + orDash(get("deleted_ts")) + " replaced by " + orDash(get("kept_ts")) + paren(prefixed("deleted SPI in ", get("deleted_spi_in")))
	case "tunnel-status":
		return "tunnel " + orDash(get("status")) + colon(get("message"))
	case "dpd-state":
		switch get("state") {
		case "dead":
			return "DPD: peer dead" + paren(join(", ", prefixed("silent ", get("silent_for")), prefixed("action ", get("action"))))
		case "alive":
			return "DPD: peer alive" + paren(prefixed("proof: ", get("proof")))
		default:
			return "DPD: " + orDash(get("state"))
		}
	case "nat-detected":
		var who []string
		if get("local_behind_nat") == "true" {
			who = append(who, "we are behind a NAT")
		}
		if get("remote_behind_nat") == "true" {
			who = append(who, "the peer is behind a NAT")
		}
		return "NAT detected" + paren(strings.Join(who, ", "))
	case "peer-moved":
		return "peer moved " + orDash(get("from")) + " -> " + orDash(get("to")) + paren(prefixed("via ", get("via")))
	case "bgp-state":
		s := "BGP " + orDash(get("state"))
		if from := get("from"); from != "" && from != get("state") {
			s += " (was " + from + ")"
		}
		if get("limit_exceeded") == "true" {
			s += ": route limit exceeded"
		}
		return s
	case "route":
		return describeRoute(e)
	case "notify-sent":
		return "notify sent: " + orDash(get("notify"))
	case "notify-received":
		return "notify received: " + orDash(get("notify"))
	case "delete-received":
		return "DELETE received" + paren(join(" ", get("protocol"), prefixed("SPI ", get("spi"))))
	case "error":
		return "error: " + orDash(get("message"))
	case "step-start", "step-end":
		s := "step " + strings.TrimPrefix(e.Type, "step-")
		if n := get("step"); n != "" {
			s += " " + n
		}
		return s + detailRest(d, "step")
	case "impair", "restore":
		s := e.Type
		if t := target(e); t != "" {
			s += " " + t
		}
		w := firstOf(d, "what", "fault", "impairment", "spec", "kind")
		if p := d["percent"]; p != "" && p != "0" {
			w = join(" ", w, strings.TrimSuffix(p, "%")+"%")
		}
		if w != "" {
			s += ": " + w
		}
		return s + detailRest(d, "what", "fault", "percent", "impairment", "spec", "kind", "tunnel", "target", "gateway")
	case "flow-start", "flow-stop":
		return strings.Replace(e.Type, "-", " ", 1) + prefixed(" ", get("flow")) + detailRest(d, "flow")
	case "gateway-start", "gateway-stop", "gateway-kill":
		verb := map[string]string{"gateway-start": "start", "gateway-stop": "stop", "gateway-kill": "kill"}[e.Type]
		return verb + " " + orDash(gatewayOf(e)) + detailRest(d, "gateway")
	}
	return e.Type + detailRest(d)
}

func describeRoute(e Event) string {
	d := e.Detail
	p := orDash(d["prefix"])
	from, to := list(d["from"]), list(d["to"])
	var s string
	switch d["kind"] {
	case "installed":
		s = "route " + p + ": installed on " + orDash(strings.Join(to, "+"))
	case "removed":
		s = "route " + p + ": removed" + paren(prefixed("was on ", strings.Join(from, "+")))
	case "best-moved":
		s = "route " + p + ": " + orDash(strings.Join(from, "+")) + " -> " + orDash(strings.Join(to, "+"))
	case "learned", "updated", "withdrawn":
		s = "route " + p + " " + d["kind"] + prefixed(" on ", e.Tunnel)
	case "limit-exceeded":
		s = "route limit exceeded" + prefixed(" on ", e.Tunnel)
		if d["reason"] != "" {
			return s + ": " + d["reason"]
		}
		return s
	default:
		s = "route " + p + " " + orDash(d["kind"])
	}
	return s + paren(d["reason"])
}

// Interesting reports whether an event belongs in a short list of what
// happened: tunnels, DPD, BGP sessions reaching or leaving Established,
// route decisions, errors and impairments; not every state transition,
// DPD probe, path learned or step boundary.
func Interesting(e Event) bool {
	switch e.Type {
	case "phase1-state", "phase2-state", "step-start", "step-end", "flow-start", "flow-stop":
		return false
	case "dpd-state":
		return e.Detail["state"] == "dead" || e.Detail["state"] == "alive"
	case "bgp-state":
		return e.Detail["state"] == "Established" || e.Detail["from"] == "Established" || e.Detail["limit_exceeded"] == "true"
	case "route":
		k := e.Detail["kind"]
		return k != "learned" && k != "updated"
	case "notify-sent", "notify-received":
		n := e.Detail["notify"]
		return n != "R-U-THERE" && n != "R-U-THERE-ACK"
	}
	return true
}

// interestingEvents splits time-ordered events into those to list and a
// count of the rest: Interesting ones, less a "tunnel UP" that only repeats
// the phase 2 up just before it (a "tunnel DOWN" stays: after a phase 2
// down it says that no SA pair is left, unlike a rekey's).
func interestingEvents(events []Event) (shown []Event, omitted int) {
	for i, e := range events {
		if !Interesting(e) || (e.Type == "tunnel-status" && e.Detail["status"] == "UP" && afterPhase2Up(events[:i], e)) {
			omitted++
			continue
		}
		shown = append(shown, e)
	}
	return shown, omitted
}

// afterPhase2Up reports whether the same gateway's phase2-up for the same
// tunnel came at most 100 ms before e.
func afterPhase2Up(before []Event, e Event) bool {
	for i := len(before) - 1; i >= 0; i-- {
		b := before[i]
		if e.Time.Sub(b.Time) > 100*time.Millisecond {
			return false
		}
		if b.Source == e.Source && b.Tunnel == e.Tunnel && b.Type == "phase2-up" {
			return true
		}
	}
	return false
}

// sortedEvents returns the events in time order (stable), without changing r.
func sortedEvents(r *Run) []Event {
	ev := slices.Clone(r.Events)
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].Time.Before(ev[j].Time) })
	return ev
}

// offset formats t relative to the run's start as "+12.345s".
func offset(r *Run, t time.Time) string {
	if t.IsZero() || r.Start.IsZero() {
		return "-"
	}
	d := t.Sub(r.Start)
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%.3fs", sign, d.Seconds())
}

// offsetSeconds is t-Start in seconds (0 for an unknown time).
func offsetSeconds(r *Run, t time.Time) float64 {
	if t.IsZero() || r.Start.IsZero() {
		return 0
	}
	return math.Round(t.Sub(r.Start).Seconds()*1e9) / 1e9
}

// human formats a duration for people: "850ms", "4.01s", "12.3s", "2m05s".
func human(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + human(-d)
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Round(time.Millisecond)/time.Millisecond)
	case d < 10*time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d < 2*time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	default:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", d/time.Minute, (d%time.Minute)/time.Second)
	}
}

// spoken formats a duration for a label in the picture: "4.0 s", "350 ms".
func spoken(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond)/time.Millisecond)
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// eventTunnel is the tunnel an event is about: its Tunnel, or for a runner
// event the tunnel in its detail; "-" if none.
func eventTunnel(e Event) string {
	if e.Tunnel == "" && e.Source == "runner" {
		return orDash(e.Detail["tunnel"])
	}
	return orDash(e.Tunnel)
}

// target is what an impair or restore applies to: a tunnel ("all" for every
// tunnel) or a gateway.
func target(e Event) string {
	if e.Tunnel != "" {
		return e.Tunnel
	}
	return firstOf(e.Detail, "tunnel", "target", "gateway")
}

// gatewayOf is the gateway a runner event is about.
func gatewayOf(e Event) string {
	return firstOf(e.Detail, "gateway", "target", "name")
}

func firstOf(d map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := d[k]; v != "" {
			return v
		}
	}
	return ""
}

// detailRest formats the detail keys not in skip as " (k=v, ...)".
func detailRest(d map[string]string, skip ...string) string {
	var kv []string
	for k, v := range d {
		if !slices.Contains(skip, k) {
			kv = append(kv, k+"="+v)
		}
	}
	sort.Strings(kv)
	return paren(strings.Join(kv, ", "))
}

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func join(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, sep)
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func colon(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func ifTrue(v, s string) string {
	if v == "true" {
		return s
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
