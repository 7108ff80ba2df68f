package scenarios

import (
	"cmp"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vpnlab/vpnlab/ike/impair"
)

// stepActions are the actions a step can have, exactly one each.
const stepActions = "start, stop, kill, restart, impair, restore, wan, flow, stop_flow, ike_impair, flood, rekey, initiate, terminate, bgp, wait, sleep, assert"

// stepChecker checks the steps in order: what exists so far (flows
// started, step names) is what later steps may refer to.
type stepChecker struct {
	p     *plan
	el    *errList
	flows map[string]bool // flows started up to this step
	named map[string]bool // step names up to this step
	names []string        // the same, quoted, in order
}

// validateSteps checks every step: one action, existing references,
// parsable conditions.
func validateSteps(s *Scenario, p *plan, el *errList) {
	if len(s.Steps) == 0 {
		el.add(0, "steps: a scenario needs at least one step (e.g. - wait: tunnel1 phase2 up)")
	}
	c := &stepChecker{p: p, el: el, flows: map[string]bool{}, named: map[string]bool{}}
	for i := range s.Steps {
		st := &s.Steps[i]
		if st.Name != "" && !c.named[st.Name] {
			c.named[st.Name] = true
			c.names = append(c.names, strconv.Quote(st.Name))
		}
		acts := stepActionsOf(st)
		what := fmt.Sprintf("steps[%d]", i)
		if len(acts) != 1 {
			el.add(st.Line, "%s: a step has exactly one action, this one has %d (%s); actions: %s", what, len(acts), orNone(acts), stepActions)
			continue
		}
		c.check(st, acts[0], what+" ("+acts[0]+")")
	}
}

// stepActionsOf lists the actions set in st.
func stepActionsOf(st *Step) []string {
	var acts []string
	for _, a := range []struct {
		name string
		set  bool
	}{
		{"start", st.Start != ""}, {"stop", st.Stop != ""}, {"kill", st.Kill != ""}, {"restart", st.Restart != ""},
		{"impair", st.Impair != nil}, {"restore", st.Restore != ""}, {"wan", st.WAN != nil}, {"flow", st.Flow != nil},
		{"stop_flow", len(st.StopFlow.Items) > 0}, {"ike_impair", st.IKEImpair != nil}, {"flood", st.Flood != nil},
		{"rekey", st.Rekey != nil}, {"initiate", st.Initiate != nil}, {"terminate", st.Terminate != nil},
		{"bgp", st.BGP != nil}, {"wait", len(st.Wait.Items) > 0}, {"sleep", st.Sleep > 0}, {"assert", len(st.Assert.Items) > 0},
	} {
		if a.set {
			acts = append(acts, a.name)
		}
	}
	return acts
}

// check checks the one action act of st (what names it in errors).
func (c *stepChecker) check(st *Step, act, what string) {
	switch act {
	case "start", "stop", "kill", "restart":
		c.gateway(st.Line, what, st.Start+st.Stop+st.Kill+st.Restart)
	case "impair":
		c.impair(st, what)
	case "restore":
		c.tunnel(st.Line, what, st.Restore, true)
	case "wan":
		c.p.validateWAN(c.el, what, st.WAN)
	case "flow":
		c.flow(st, what)
	case "stop_flow":
		for j, n := range st.StopFlow.Items {
			if !c.flows[n] {
				c.el.add(st.StopFlow.Lines[j], "%s: no flow %q started before this step", what, n)
			}
		}
	case "ike_impair":
		c.ikeImpair(st, what)
	case "flood":
		c.tunnel(st.Line, what, st.Flood.Tunnel, false)
		if st.Flood.Count <= 0 || st.Flood.Count > 100000 || st.Flood.Rate < 0 {
			c.el.add(st.Line, "%s: count must be 1-100000 and rate >= 0", what)
		}
	case "rekey", "initiate", "terminate":
		c.tunnelAction(st, act, what)
	case "bgp":
		c.bgp(st, what)
	case "wait", "assert":
		c.conditions(st, act, what)
	}
}

// gateway checks a reference to a gateway.
func (c *stepChecker) gateway(line int, what, g string) {
	if g != "cgw" && g != "vgw" {
		c.el.add(line, "%s: gateway %q is not allowed (allowed: cgw, vgw)", what, g)
	}
}

// tunnel checks a reference to a tunnel ("all" too if allowAll).
func (c *stepChecker) tunnel(line int, what, t string, allowAll bool) {
	if c.p.tunnel(t) == nil && !(allowAll && t == "all") {
		extra := ""
		if allowAll {
			extra = ", all"
		}
		c.el.add(line, "%s: no tunnel %q (tunnels: %s%s)", what, t, strings.Join(c.p.tunnelNames(), ", "), extra)
	}
}

// node checks a reference to a host or a gateway.
func (c *stepChecker) node(line int, what, n string) {
	if c.p.host(n) == nil && n != "cgw" && n != "vgw" {
		var l []string
		for _, h := range c.p.hosts {
			l = append(l, h.Name)
		}
		c.el.add(line, "%s: no host or gateway %q (hosts: %s; gateways: cgw, vgw)", what, n, strings.Join(l, ", "))
	}
}

func (c *stepChecker) impair(st *Step, what string) {
	im := st.Impair
	c.tunnel(st.Line, what, im.Tunnel, true)
	if !contains(impairFaults, im.Fault) {
		c.el.add(st.Line, "%s: fault %q is not allowed (allowed: %s)", what, im.Fault, strings.Join(impairFaults, ", "))
	}
	if im.Fault == "loss" && (im.Percent <= 0 || im.Percent > 100) {
		c.el.add(st.Line, "%s: loss needs percent in (0, 100]", what)
	}
	if im.Fault != "loss" && im.Percent != 0 {
		c.el.add(st.Line, "%s: percent applies to fault loss only", what)
	}
	if im.Fault == "flush-nat" && !c.p.nat {
		c.el.add(st.Line, "%s: flush-nat needs topology.wan.nat: masquerade (there is no NAT to flush)", what)
	}
}

func (c *stepChecker) flow(st *Step, what string) {
	f := st.Flow
	if f.Name == "" || c.flows[f.Name] {
		c.el.add(st.Line, "%s: every flow needs a unique name (%q)", what, f.Name)
	}
	c.flows[f.Name] = true
	if f.Proto == "" {
		f.Proto = "icmp"
	}
	if !contains(flowProtocols, f.Proto) {
		c.el.add(st.Line, "%s: proto %q is not allowed (allowed: icmp, udp, tcp)", what, f.Proto)
	}
	c.node(st.Line, what+" from", f.From)
	c.node(st.Line, what+" to", f.To)
	if f.Dst != "" {
		if a, err := netip.ParseAddr(f.Dst); err != nil || !a.Is4() {
			c.el.add(st.Line, "%s: dst %q is not an IPv4 address", what, f.Dst)
		}
	}
	if f.Rate < 0 || f.Rate > 10000 || (f.Size != 0 && (f.Size < 24 || f.Size > 1400)) || f.Count < 0 || f.Port < 0 || f.Port > 65535 {
		c.el.add(st.Line, "%s: rate must be 0-10000/s, size 24-1400 bytes (a probe carries a 24-byte header), count >= 0, port 0-65535", what)
	}
}

func (c *stepChecker) ikeImpair(st *Step, what string) {
	c.gateway(st.Line, what, st.IKEImpair.Gateway)
	if len(st.IKEImpair.Spec.Items) == 0 {
		c.el.add(st.Line, "%s: spec is required (e.g. drop:main:3; none clears)", what)
	}
	for j, sp := range st.IKEImpair.Spec.Items {
		imp, err := impair.Parse(sp)
		if err != nil {
			c.el.add(st.IKEImpair.Spec.Lines[j], "%s: %v", what, err)
		} else if imp.Tunnel != "" && c.p.tunnel(imp.Tunnel) == nil {
			c.el.add(st.IKEImpair.Spec.Lines[j], "%s: %q: no tunnel %q (tunnels: %s)", what, sp, imp.Tunnel, strings.Join(c.p.tunnelNames(), ", "))
		}
	}
}

// tunnelAction checks rekey, initiate and terminate.
func (c *stepChecker) tunnelAction(st *Step, act, what string) {
	ta := st.Rekey
	if act == "initiate" {
		ta = st.Initiate
	} else if act == "terminate" {
		ta = st.Terminate
	}
	c.gateway(st.Line, what, ta.Gateway)
	c.tunnel(st.Line, what, ta.Tunnel, false)
	if act == "rekey" && ta.Phase != 1 && ta.Phase != 2 {
		c.el.add(st.Line, "%s: phase must be 1 or 2", what)
	}
	if act != "rekey" && ta.Phase != 0 {
		c.el.add(st.Line, "%s: phase applies to rekey only", what)
	}
}

func (c *stepChecker) bgp(st *Step, what string) {
	b := st.BGP
	c.gateway(st.Line, what, b.Gateway)
	for _, l := range [][]string{b.Advertise.Items, b.Withdraw.Items} {
		for _, pf := range l {
			if x, err := netip.ParsePrefix(pf); err != nil || x != x.Masked() {
				c.el.add(st.Line, "%s: %q is not a network prefix like 10.20.0.0/16", what, pf)
			}
		}
	}
	policy := b.Prepend != nil || b.MED != nil
	if policy {
		c.tunnel(st.Line, what, b.Tunnel, false)
		if b.Prepend != nil && (*b.Prepend < 0 || *b.Prepend > 10) {
			c.el.add(st.Line, "%s: prepend must be 0-10", what)
		}
		if b.MED != nil && *b.MED < 0 {
			c.el.add(st.Line, "%s: med must be >= 0", what)
		}
	} else if b.Tunnel != "" {
		c.el.add(st.Line, "%s: tunnel goes with prepend or med", what)
	}
	if !policy && len(b.Advertise.Items)+len(b.Withdraw.Items) == 0 {
		c.el.add(st.Line, "%s: nothing to do (advertise, withdraw, or tunnel with prepend/med)", what)
	}
}

// conditions parses the conditions of a wait or assert step and checks
// what they refer to.
func (c *stepChecker) conditions(st *Step, act, what string) {
	list := st.Wait
	if act == "assert" {
		list = st.Assert
	}
	for j, text := range list.Items {
		cond, err := parseCond(text, list.Lines[j], act == "wait")
		if err != nil {
			c.el.add(list.Lines[j], "%s: %v", what, err)
			continue
		}
		checkCondRefs(cond, c.p, c.flows, c.el, what)
		if cond.Since != "" && !c.named[cond.Since] {
			c.el.add(list.Lines[j], "%s: %q: no step named %q at or before this step (named so far: %s)", what, cond.Text, cond.Since, cmp.Or(strings.Join(c.names, ", "), "none"))
		}
		if act == "wait" {
			st.waits = append(st.waits, cond)
		} else {
			st.asserts = append(st.asserts, cond)
		}
	}
	if act == "wait" && st.Timeout == 0 {
		st.Timeout = Duration(30e9)
	}
}
