package gwconfig

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/ike/policy"
)

// lifetime reads a lifetime that must be whole seconds in [min, max].
func (b *tunnelDecoder) lifetime(o *object, def, min, max time.Duration) time.Duration {
	v, set := o.duration("lifetime", def)
	if !set {
		return v
	}
	n := o.line("lifetime")
	switch {
	case v%time.Second != 0:
		b.d.errf(n, o.p("lifetime"), "%s is not a whole number of seconds", v)
	case v < min || v > max:
		b.d.errf(n, o.p("lifetime"), "%s is out of range (allowed: %s)", v, durRange(min, max))
		if b.vgw && !b.lab && v < min && v > 0 {
			b.d.errs[len(b.d.errs)-1].Msg += "; set lab_timers: true for shorter test timers"
		}
	default:
		return v
	}
	return def
}

// durRange says an allowed range of durations in seconds.
func durRange(min, max time.Duration) string {
	if max == time.Duration(math.MaxInt64) {
		return ">= " + secs(min)
	}
	return secs(min) + " to " + secs(max)
}

// secs formats d in seconds when it is whole seconds.
func secs(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return d.String()
}

// natKeepalive reads nat_keepalive: a positive duration, or 0 / off for
// none (NATKeepaliveOff).
func (b *tunnelDecoder) natKeepalive(o *object) time.Duration {
	if n, ok := o.scalar("nat_keepalive"); ok && strings.EqualFold(strings.TrimSpace(n.Value), "off") {
		return NATKeepaliveOff
	}
	v, set := o.duration("nat_keepalive", DefaultNATKeepalive)
	if set && v == 0 {
		return NATKeepaliveOff
	}
	return v
}

// rekey reads rekey_margin and rekey_fuzz: on a vgw within AWS's limits
// (margin at most half the phase 2 lifetime), on a cgw below both lifetimes.
func (b *tunnelDecoder) rekey(t *policy.Tunnel, o *object) {
	m, set := o.duration("rekey_margin", AWSRekeyMargin)
	n := o.line("rekey_margin")
	p2 := t.Phase2.Lifetime
	if b.vgw {
		min := AWSRekeyMarginMin
		if b.lab {
			min = time.Second
		}
		if set && (m < min || m > p2/2) {
			b.d.errf(n, o.p("rekey_margin"), "%s is out of range (allowed: %s to phase 2 lifetime / 2 = %s)", secs(m), secs(min), secs(p2/2))
			m = AWSRekeyMargin
		} else if !set && m > p2/2 {
			b.d.errf(n, o.p("rekey_margin"), "the default %s is more than phase 2 lifetime / 2 (%s): set a smaller rekey_margin", secs(m), secs(p2/2))
		}
		t.RekeyFuzz = int(o.integer("rekey_fuzz", AWSRekeyFuzz, 0, 100))
	} else {
		min := t.Phase2.Lifetime
		if t.Phase1.Lifetime < min {
			min = t.Phase1.Lifetime
		}
		if m >= min {
			what := "set a smaller rekey_margin"
			if set {
				what = ""
			}
			msg := fmt.Sprintf("%s must be less than the phase 1 and phase 2 lifetimes (%s)", secs(m), secs(min))
			if what != "" {
				msg = "the default " + msg + ": " + what
			}
			b.d.errf(n, o.p("rekey_margin"), "%s", msg)
		}
		t.RekeyFuzz = int(o.integer("rekey_fuzz", AWSRekeyFuzz, 0, 10000))
		if m < min && m+m*time.Duration(t.RekeyFuzz)/100 >= min {
			b.d.warnf(o.line("rekey_fuzz"), o.p("rekey_fuzz"), "rekey_margin plus %d%% fuzz can reach the lifetime (%s): a rekey may come too late", t.RekeyFuzz, secs(min))
		}
	}
	t.RekeyMargin = m
}

// dpd reads the dpd block: action, timeout and delay (AWS defaults on a
// vgw, strongSwan-like restart on a cgw).
func (b *tunnelDecoder) dpd(t *policy.Tunnel, o *object) {
	defAction := "clear"
	if !b.vgw {
		defAction = "restart"
	}
	switch o.enum("action", defAction, "clear", "restart", "none") {
	case "restart":
		t.DPDAction = policy.DPDRestart
	case "none":
		t.DPDAction = policy.DPDNone
	default:
		t.DPDAction = policy.DPDClear
	}
	v, set := o.duration("timeout", AWSDPDTimeout)
	t.DPDTimeout = v
	if set {
		n := o.line("timeout")
		switch {
		case b.vgw && !b.lab && v < AWSDPDTimeoutMin:
			b.d.errf(n, o.p("timeout"), "%s is out of range (allowed: >= 30 s; set lab_timers: true for shorter test timers)", v)
		case v == 0 && t.DPDAction != policy.DPDNone:
			b.d.errf(n, o.p("timeout"), "must be positive (or set action: none)")
		}
	}

	// The delay: 10 s, or a third of a timeout shorter than 30 s (as the
	// engine's own default), so that short lab timeouts need no delay.
	delay, dset := o.duration("delay", AWSDPDDelay)
	if !dset && v > 0 {
		delay = min(AWSDPDDelay, v/3)
	}
	t.DPDDelay = delay
	if !dset {
		return
	}
	n := o.line("delay")
	switch {
	case delay == 0:
		b.d.errf(n, o.p("delay"), "must be positive (to turn DPD off set action: none)")
	case v > 0 && delay >= v:
		b.d.errf(n, o.p("delay"), "%s must be less than dpd.timeout (%s)", delay, v)
	case b.vgw && !b.lab && delay != AWSDPDDelay:
		b.d.warnf(n, o.p("delay"), "AWS sends R-U-THERE after 10 s without traffic (its delay is not configurable)")
	}
}
