package scenarios

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Cond is one condition of a wait or assert step, parsed from a line such
// as "cgw tunnel1 phase2 up", "route 10.10.0.0/16 via tunnel2",
// "flow ping max_gap < 6s" or "vgw event notify-received tunnel1".
// docs/scenarios.md has the grammar.
type Cond struct {
	Text string
	Line int

	Gateway string // "cgw", "vgw" or "" (both for tunnel state, either otherwise)
	Kind    string // tunnel, route, flow, event, counter, log, process

	Tunnel string // tunnel: name; event: optional filter
	Name   string // flow name, counter name, event type
	Field  string // tunnel/flow field
	Op     string // ==, !=, <, <=, >, >=, contains, !contains
	Value  string

	Prefix  netip.Prefix      // route
	Via     []string          // route: decided active tunnels (or carrying ones), nil = absent
	Carried bool              // route: "carried by": Via are the tunnels that carry the packets now ([] = none)
	Details map[string]string // event: detail filters key=value
	Since   string            // event: count from the (latest) start of the step of this name
}

// Comparison operators.
var condOps = []string{"==", "!=", "<=", ">=", "<", ">", "contains", "!contains"}

// tunnelFields are the fields of "[GW] TUNNEL FIELD OP VALUE" and what
// they read from the gateway's status (docs/scenarios.md lists them).
var tunnelFields = map[string]string{
	"status":              "AWS-style tunnel status, UP or DOWN",
	"status_message":      "why the tunnel is DOWN",
	"phase1":              "phase 1 state: Established, Rekeying, Negotiating, Down",
	"phase2":              "phase 2 state",
	"proposal":            "chosen phase 1 proposal, e.g. aes256-sha256-modp2048",
	"ipsec_proposal":      "chosen phase 2 proposal of the newest SA pair",
	"protocol":            "esp or ah",
	"mode":                "tunnel or transport",
	"udp_encap":           "true when ESP is carried in UDP (NAT-T)",
	"nat":                 "true when NAT was detected",
	"exchange":            "main or aggressive",
	"ike_version":         "IKE version of the current IKE SA: ikev1 or ikev2",
	"role":                "initiator or responder",
	"bgp":                 "BGP session state, e.g. Established",
	"dpd":                 "DPD state: off, alive, probing, dead",
	"routes":              "accepted BGP route count",
	"data_in":             "bytes decrypted over every SA pair the tunnel had",
	"data_out":            "bytes encrypted over every SA pair the tunnel had",
	"packets_in":          "packets in on the current SA pairs",
	"packets_out":         "packets out on the current SA pairs",
	"user_packets_in":     "packets in on the current SA pairs, without those between the inside addresses (BGP)",
	"user_packets_out":    "packets out on the current SA pairs, without those between the inside addresses (BGP)",
	"user_data_in":        "bytes in on the current SA pairs, without those between the inside addresses (BGP)",
	"user_data_out":       "bytes out on the current SA pairs, without those between the inside addresses (BGP)",
	"control_packets_in":  "packets in on the current SA pairs between the inside addresses (BGP and the like)",
	"control_packets_out": "packets out on the current SA pairs between the inside addresses (BGP and the like)",
	"sas":                 "number of installed SA pairs",
	"phase1_established":  "phase 1 SAs established so far",
	"phase2_established":  "phase 2 SA pairs established so far",
	"retransmits":         "IKE retransmissions",
	"duplicates_answered": "duplicate IKE messages answered from the cache",
	"messages_in":         "IKE messages received",
	"messages_out":        "IKE messages sent",
	"notifies_sent":       "IKE notifies sent",
	"notifies_received":   "IKE notifies received",
	"last_error":          "the last error of the tunnel",
}

// flowFields are the fields of "flow NAME FIELD OP VALUE".
var flowFields = map[string]string{
	"sent":       "probes sent",
	"received":   "probes received",
	"lost":       "probes sent and never received",
	"loss_pct":   "lost / sent in %",
	"reordered":  "probes received after a later one",
	"duplicates": "probes received more than once",
	"max_gap":    "longest outage (see internal/traffic)",
	"outage":     "same as max_gap",
	"errors":     "send errors (e.g. no route)",
}

// counterFields are engine-wide counters: "GW counter NAME OP VALUE".
var counterFields = map[string]string{
	"received":          "IKE messages received",
	"malformed":         "malformed IKE messages dropped",
	"unknown_cookie":    "messages for unknown SAs",
	"unknown_peer":      "messages from unknown peers",
	"half_open":         "half-open phase 1 SAs now",
	"half_open_refused": "first messages refused by the half-open limit",
}

// parseCond parses one condition. wait is true for wait steps (where a
// comparison-free phrase like "flow ping done" is also allowed).
func parseCond(text string, line int, wait bool) (*Cond, error) {
	toks, err := tokens(text)
	if err != nil {
		return nil, err
	}
	c := &Cond{Text: text, Line: line}
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty condition")
	}
	// "dpd timeout tunnel1" = "event dpd-state tunnel1 state=dead"
	if len(toks) == 3 && toks[0] == "dpd" && toks[1] == "timeout" {
		c.Kind, c.Name, c.Tunnel = "event", "dpd-state", toks[2]
		c.Details = map[string]string{"state": "dead"}
		c.Op, c.Value = ">=", "1"
		return c, nil
	}
	if toks[0] == "cgw" || toks[0] == "vgw" {
		c.Gateway, toks = toks[0], toks[1:]
		if len(toks) == 0 {
			return nil, fmt.Errorf("%s: what about it? (e.g. %s tunnel1 phase2 up, %s running)", c.Gateway, c.Gateway, c.Gateway)
		}
	}
	switch toks[0] {
	case "flow":
		return c, c.parseFlow(toks[1:], wait)
	case "route":
		return c, c.parseRoute(toks[1:])
	case "wan":
		return c, c.parseWAN(toks[1:])
	case "event":
		return c, c.parseEvent(toks[1:])
	case "counter":
		c.Kind = "counter"
		if c.Gateway == "" {
			return nil, fmt.Errorf("counter: name the gateway (cgw counter ... or vgw counter ...)")
		}
		if len(toks) != 4 || counterFields[toks[1]] == "" {
			return nil, fmt.Errorf("expected GW counter NAME OP VALUE with NAME one of %s", keys(counterFields))
		}
		c.Name = toks[1]
		return c, c.setOp(toks[2], toks[3])
	case "log":
		c.Kind = "log"
		if c.Gateway == "" {
			return nil, fmt.Errorf("log: name the gateway (cgw log contains \"...\")")
		}
		if len(toks) != 3 || (toks[1] != "contains" && toks[1] != "!contains") {
			return nil, fmt.Errorf(`expected GW log contains "TEXT" or GW log !contains "TEXT"`)
		}
		c.Op, c.Value = toks[1], toks[2]
		return c, nil
	case "running", "exited":
		if c.Gateway == "" || len(toks) != 1 {
			return nil, fmt.Errorf("expected cgw %s or vgw %s", toks[0], toks[0])
		}
		c.Kind, c.Field = "process", toks[0]
		return c, nil
	}
	return c, c.parseTunnel(toks)
}

func (c *Cond) parseFlow(t []string, wait bool) error {
	c.Kind = "flow"
	if len(t) == 2 && t[1] == "done" && wait {
		c.Name, c.Field = t[0], "done"
		return nil
	}
	if len(t) != 4 {
		return fmt.Errorf("expected flow NAME FIELD OP VALUE (FIELD one of %s)%s", keys(flowFields), map[bool]string{true: " or flow NAME done", false: ""}[wait])
	}
	c.Name, c.Field = t[0], t[1]
	if flowFields[c.Field] == "" {
		return fmt.Errorf("flow %s: unknown field %q (allowed: %s)", c.Name, c.Field, keys(flowFields))
	}
	if c.Field == "outage" {
		c.Field = "max_gap"
	}
	return c.setOp(t[2], t[3])
}

func (c *Cond) parseRoute(t []string) error {
	c.Kind = "route"
	if len(t) < 2 {
		return fmt.Errorf("expected route PREFIX via TUNNEL[,TUNNEL] or route PREFIX absent")
	}
	p, err := netip.ParsePrefix(t[0])
	if err != nil || p != p.Masked() {
		return fmt.Errorf("route: %q is not a network prefix like 172.31.0.0/16", t[0])
	}
	c.Prefix = p
	switch {
	case len(t) == 2 && t[1] == "absent":
		return nil
	case len(t) == 3 && t[1] == "via":
		c.Via = strings.Split(t[2], ",")
		return nil
	case len(t) == 4 && t[1] == "carried" && t[2] == "by":
		c.Carried, c.Via = true, strings.Split(t[3], ",")
		if t[3] == "none" {
			c.Via = []string{}
		}
		return nil
	}
	return fmt.Errorf("expected route PREFIX via TUNNEL[,TUNNEL], route PREFIX carried by TUNNEL[,TUNNEL]|none or route PREFIX absent")
}

func (c *Cond) parseEvent(t []string) error {
	c.Kind, c.Op, c.Value = "event", ">=", "1"
	if len(t) == 0 {
		return fmt.Errorf("expected event TYPE [TUNNEL] [key=value ...] [since STEP] [count OP N]")
	}
	c.Name, t = t[0], t[1:]
	for len(t) > 0 {
		switch {
		case t[0] == "count":
			if len(t) != 3 {
				return fmt.Errorf("event: expected count OP N at the end")
			}
			if err := c.setOp(t[1], t[2]); err != nil {
				return err
			}
			if _, err := strconv.Atoi(c.Value); err != nil {
				return fmt.Errorf("event: count needs a whole number, not %q", c.Value)
			}
			return nil
		case t[0] == "since":
			if len(t) < 2 || t[1] == "count" {
				return fmt.Errorf(`event: since needs a step's name (since "STEP NAME")`)
			}
			c.Since, t = t[1], t[2:]
			continue
		case strings.Contains(t[0], "="):
			k, v, _ := strings.Cut(t[0], "=")
			if c.Details == nil {
				c.Details = map[string]string{}
			}
			c.Details[k] = v
		case c.Tunnel == "":
			c.Tunnel = t[0]
		default:
			return fmt.Errorf("event: unexpected %q (expected key=value, since STEP or count OP N)", t[0])
		}
		t = t[1:]
	}
	return nil
}

// tunnel phrases: "tunnel1 phase2 up", "tunnel1 up", "tunnel1 bgp
// established", "tunnel1 dpd dead", "tunnel1 nat detected", or the general
// "tunnel1 FIELD OP VALUE".
func (c *Cond) parseTunnel(t []string) error {
	c.Kind = "tunnel"
	c.Tunnel = t[0]
	t = t[1:]
	set := func(field, op, value string) error { c.Field, c.Op, c.Value = field, op, value; return nil }
	switch {
	case len(t) == 1 && (t[0] == "up" || t[0] == "down"):
		return set("status", "==", strings.ToUpper(t[0]))
	case len(t) == 2 && (t[0] == "phase1" || t[0] == "phase2") && t[1] == "up":
		return set(t[0], "==", "Established")
	case len(t) == 2 && (t[0] == "phase1" || t[0] == "phase2") && t[1] == "down":
		return set(t[0], "==", "Down")
	case len(t) == 2 && t[0] == "bgp":
		return set("bgp", "==", t[1])
	case len(t) == 2 && t[0] == "dpd":
		return set("dpd", "==", t[1])
	case len(t) == 2 && t[0] == "nat" && t[1] == "detected":
		return set("nat", "==", "true")
	case len(t) == 3:
		if tunnelFields[t[0]] == "" {
			return fmt.Errorf("%s: unknown field %q (allowed: %s)", c.Tunnel, t[0], keys(tunnelFields))
		}
		c.Field = t[0]
		return c.setOp(t[1], t[2])
	}
	return fmt.Errorf("not a condition: %q; expected e.g. \"tunnel1 phase2 up\", \"tunnel1 up\", \"tunnel1 bgp established\", "+
		"\"tunnel1 dpd dead\", \"tunnel1 FIELD OP VALUE\", \"route PREFIX via TUNNEL\", \"flow NAME FIELD OP VALUE\", "+
		"\"event TYPE [TUNNEL]\", \"GW counter NAME OP VALUE\", \"GW log contains TEXT\"", c.Text)
}

func (c *Cond) setOp(op, value string) error {
	for _, o := range condOps {
		if o == op {
			c.Op, c.Value = op, value
			if (op == "<" || op == "<=" || op == ">" || op == ">=") && !isNumberOrDuration(value) {
				return fmt.Errorf("%s needs a number or a duration, not %q", op, value)
			}
			return nil
		}
	}
	return fmt.Errorf("unknown operator %q (allowed: %s)", op, strings.Join(condOps, " "))
}

func isNumberOrDuration(v string) bool {
	if _, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64); err == nil {
		return true
	}
	_, err := time.ParseDuration(v)
	return err == nil
}

// compare applies op to a seen value and the expected one: durations and
// numbers numerically, anything else as case-insensitive strings.
func compare(seen, op, want string) bool {
	switch op {
	case "contains":
		return strings.Contains(strings.ToLower(seen), strings.ToLower(want))
	case "!contains":
		return !strings.Contains(strings.ToLower(seen), strings.ToLower(want))
	}
	a, aok := number(seen)
	b, bok := number(want)
	if aok && bok {
		switch op {
		case "==":
			return a == b
		case "!=":
			return a != b
		case "<":
			return a < b
		case "<=":
			return a <= b
		case ">":
			return a > b
		case ">=":
			return a >= b
		}
	}
	switch op {
	case "==":
		return strings.EqualFold(seen, want)
	case "!=":
		return !strings.EqualFold(seen, want)
	}
	return false
}

// number reads a number, a percentage or a duration (as seconds).
func number(s string) (float64, bool) {
	if f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64); err == nil {
		return f, true
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d.Seconds(), true
	}
	return 0, false
}

// tokens splits on blanks; "double quoted" parts are one token.
func tokens(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			in, have = !in, true
		case !in && (r == ' ' || r == '\t'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if in {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if have {
		out = append(out, cur.String())
	}
	return out, nil
}

// Expected describes what the condition wants, for "expected X, seen Y".
func (c *Cond) Expected() string {
	switch c.Kind {
	case "route":
		switch {
		case c.Carried && len(c.Via) == 0:
			return c.Prefix.String() + " carried by none"
		case c.Carried:
			return c.Prefix.String() + " carried by " + strings.Join(c.Via, ",")
		case c.Via == nil:
			return "no route for " + c.Prefix.String()
		}
		return c.Prefix.String() + " via " + strings.Join(c.Via, ",")
	case "process":
		return c.Gateway + " " + c.Field
	case "flow":
		if c.Field == "done" {
			return "flow " + c.Name + " finished sending"
		}
	case "event":
		return fmt.Sprintf("%s events count %s %s", c.eventDesc(), c.Op, c.Value)
	}
	return strings.TrimSpace(c.Field + " " + c.Op + " " + c.Value)
}

func (c *Cond) eventDesc() string {
	d := c.Name
	if c.Tunnel != "" {
		d += " on " + c.Tunnel
	}
	for _, k := range sortedKeys(c.Details) {
		d += " " + k + "=" + c.Details[k]
	}
	if c.Since != "" {
		d += " since step " + strconv.Quote(c.Since)
	}
	return d
}
