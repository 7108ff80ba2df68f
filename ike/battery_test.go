package ike

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// The hostile-peer battery's relay (cases: battery_cases_test.go). Two
// engines of the fuzz harness (fuzz_harness_test.go) whose loops the test
// drives: the relay takes every datagram off the wire, names it (MM1..MM6,
// AM1..AM3, QM1..QM3 by the order of distinct messages of its exchange and
// direction; INFO-C / INFO-V), lets the case mangle it (drop, duplicate,
// rewrite, hold back) and delivers the result; timers of the engines (short
// retransmission timeouts) post to their inboxes, which the relay runs. It
// records every ISAKMP SA the engines registered, so that it can check
// after the run that a deleted SA left no timer running, and the notifies
// each engine sent (its events).

// batRelay drives one case.
type batRelay struct {
	h      *qmHarness
	names  map[[32]byte]string
	counts map[string]int
	copies map[string]int
	mangle func(r *batRelay, name string, copy int, p harnessPacket) []harnessPacket
	held   []harnessPacket // delivered by flushHeld (forward replays, reorders)
	sas    map[*ikeSA]bool // every SA either engine registered
	events map[string][]Event
	log    []string // names of the datagrams as delivered, mangled ones with a *
	stops  []func()
	// vgwInit: the vgw initiates phase 1 and quick mode, the cgw responds
	// (battery_roles_test.go); otherwise the cgw initiates.
	vgwInit bool
	// The engines' timers and clock are simulated (fakeclock_test.go):
	// run advances the time to the next due timer whenever nothing else
	// is left to do, so a row's retransmissions, give-ups and timeouts
	// happen in the same order however slow or loaded the machine is.
	clock  *simTime
	timers [2]*fakeTimers // cgw, vgw
	// subs are the engines' event subscriptions, drained by step on the
	// test's goroutine (the engines emit there too), so every event of a
	// row is in events when the row ends.
	subs []batSub
}

type batSub struct {
	name string
	ch   <-chan Event
}

// drainEvents moves what the engines emitted into events.
func (r *batRelay) drainEvents() {
	for _, s := range r.subs {
		for more := true; more; {
			select {
			case ev, ok := <-s.ch:
				if !ok {
					more = false
					break
				}
				r.addEvent(s.name, ev)
			default:
				more = false
			}
		}
	}
}

// newBatRelay builds the two engines on a simulated clock with
// retransmission timeouts short enough for a case to see retries and
// give-ups in well under a simulated second; vgwInit picks the initiator.
func newBatRelay(t testing.TB, o harnessOpts, vgwInit bool) *batRelay {
	h := newRoleHarness(t, o, vgwInit)
	r := &batRelay{h: h, names: map[[32]byte]string{}, counts: map[string]int{}, copies: map[string]int{},
		sas: map[*ikeSA]bool{}, events: map[string][]Event{}, vgwInit: vgwInit}
	r.clock = newSimTime(time.Now())
	t.Cleanup(r.clock.install())
	r.timers = [2]*fakeTimers{{clock: r.clock}, {clock: r.clock}}
	h.cgw.clock, h.vgw.clock = r.timers[0], r.timers[1]
	t.Cleanup(func() {
		r.timers[0].stopAll()
		r.timers[1].stopAll()
	})
	for name, e := range map[string]*Engine{"cgw": h.cgw, "vgw": h.vgw} {
		e.cfg.RetransmitTimeout, e.cfg.RetransmitBase, e.cfg.RetransmitTries = 25*time.Millisecond, 1.5, 3
		ch, stop := e.Subscribe()
		r.stops = append(r.stops, stop)
		r.subs = append(r.subs, batSub{name, ch})
	}
	return r
}

var batEventsMu = make(chan struct{}, 1)

func (r *batRelay) addEvent(name string, ev Event) {
	batEventsMu <- struct{}{}
	r.events[name] = append(r.events[name], ev)
	<-batEventsMu
}

// notifiesSent lists the notify types an engine announced (notify-sent).
func (r *batRelay) notifiesSent(name string) []string {
	r.drainEvents()
	batEventsMu <- struct{}{}
	defer func() { <-batEventsMu }()
	var out []string
	for _, ev := range r.events[name] {
		if ev.Type == "notify-sent" {
			out = append(out, ev.Detail["notify"])
		}
	}
	return out
}

// name returns the battery name of a datagram.
func (r *batRelay) name(p harnessPacket) string {
	raw := ikeBytes(p)
	d := sha256.Sum256(raw)
	if n, ok := r.names[d]; ok {
		return n
	}
	hdr, err := isakmp.DecodeHeader(raw)
	if err != nil {
		return "garbage"
	}
	from := "C"
	if p.dst.Addr() == harnessC {
		from = "V"
	}
	var ex string
	switch hdr.Exchange {
	case isakmp.ExchangeIdentityProtection:
		ex = "MM"
	case isakmp.ExchangeAggressive:
		ex = "AM"
	case isakmp.ExchangeQuickMode:
		ex = "QM"
	default:
		n := "INFO-" + from
		r.names[d] = n
		return n
	}
	key := fmt.Sprintf("%s%s%08x", from, ex, hdr.MessageID)
	r.counts[key]++
	c := r.counts[key]
	n := fmt.Sprintf("%s%d", ex, 2*c-1) // the initiator's messages are odd
	if (from == "V") != r.vgwInit {
		n = fmt.Sprintf("%s%d", ex, 2*c)
	}
	r.names[d] = n
	return n
}

// step delivers what is on the wire and runs what the timers posted. It
// reports whether anything happened.
func (r *batRelay) step() bool {
	did := r.fireDue()
	batch := r.h.wire.pkts
	r.h.wire.pkts = nil
	for _, p := range batch {
		did = true
		n := r.name(p)
		r.copies[n]++
		out := []harnessPacket{p}
		if r.mangle != nil {
			out = r.mangle(r, n, r.copies[n], p)
		}
		for _, q := range out {
			tag := n
			if string(q.b) != string(p.b) {
				tag += "*"
			}
			r.log = append(r.log, tag)
			r.h.deliver(q)
		}
	}
	for _, e := range []*Engine{r.h.cgw, r.h.vgw} {
		for more := true; more; {
			select {
			case fn := <-e.inbox:
				fn()
				did = true
			default:
				more = false
			}
		}
		for _, sa := range e.sas {
			r.sas[sa] = true
		}
	}
	r.drainEvents()
	return did
}

// fireDue runs the functions of the timers due on the simulated clock
// (each posts to its engine's inbox, which step drains).
func (r *batRelay) fireDue() bool {
	did := false
	for _, ft := range r.timers {
		for _, fn := range ft.fireDue() {
			fn()
			did = true
		}
	}
	return did
}

// nextDue is the earliest due time of either engine's timers.
func (r *batRelay) nextDue() (time.Time, bool) {
	var at time.Time
	ok := false
	for _, ft := range r.timers {
		if t, has := ft.nextDue(); has && (!ok || t.Before(at)) {
			at, ok = t, true
		}
	}
	return at, ok
}

// advanceTo moves the simulated clock forward to t (never back).
func (r *batRelay) advanceTo(t time.Time) {
	if d := t.Sub(r.clock.now()); d > 0 {
		r.clock.advance(d)
	}
}

// run drives the engines until done reports true or d of simulated time
// passes: whenever nothing is left to deliver or run, the clock jumps to
// the next due timer. A minute of real time bounds a row that never
// settles.
func (r *batRelay) run(d time.Duration, done func() bool) bool {
	deadline := r.clock.now().Add(d)
	for limit := time.Now().Add(time.Minute); time.Now().Before(limit); {
		if r.step() {
			continue
		}
		if done != nil && done() {
			return true
		}
		next, ok := r.nextDue()
		if !ok || next.After(deadline) {
			break
		}
		r.advanceTo(next)
	}
	r.advanceTo(deadline)
	return done != nil && done()
}

// flushHeld delivers the datagrams a case held back.
func (r *batRelay) flushHeld() {
	held := r.held
	r.held = nil
	for _, p := range held {
		r.log = append(r.log, r.name(p)+"(held)")
		r.h.deliver(p)
	}
}

// up reports whether both engines have phase 1 established and a pair.
func (r *batRelay) up() bool {
	for _, e := range []*Engine{r.h.cgw, r.h.vgw} {
		tn := e.byName["tunnel1"]
		if tn.sa == nil || tn.sa.state != stateEstablished || len(tn.children) == 0 {
			return false
		}
	}
	return true
}

// checkNoLeak: the invariants of checkEngine on both engines, and every
// ISAKMP SA that is no longer registered has no timer running (its
// half-open, rekey and expiry timers, its outbox and its quick modes'
// outboxes): Stop returning true means the timer was still pending.
func (r *batRelay) checkNoLeak(t *testing.T) {
	t.Helper()
	r.h.checkEngines(t)
	if leaks := deletedSATimers(r.sas); len(leaks) > 0 {
		t.Errorf("deleted ISAKMP SAs left timers running: %s", strings.Join(leaks, "; "))
	}
}

// deletedSATimers lists the timers still pending on SAs of sas that are no
// longer registered (a leak: their engine cannot reach them any more). Stop
// returning true means the timer was pending; it is stopped by the check.
func deletedSATimers(sas map[*ikeSA]bool) []string {
	var out []string
	for sa := range sas {
		if sa.e.sas[sa.iCookie] == sa {
			continue
		}
		for what, tm := range map[string]*time.Timer{"half-open": sa.timers.halfOpen, "rekey": sa.timers.rekey,
			"expire": sa.timers.expire, "retransmit": sa.out.timer} {
			if tm != nil && tm.Stop() {
				out = append(out, fmt.Sprintf("%v SA: %s", sa.state, what))
			}
		}
		for mid, qm := range sa.quick {
			if qm.out.timer != nil && qm.out.timer.Stop() {
				out = append(out, fmt.Sprintf("%v SA: quick mode %08x retransmit", sa.state, mid))
			}
			if qm.forget != nil && qm.forget.Stop() {
				out = append(out, fmt.Sprintf("%v SA: quick mode %08x forget", sa.state, mid))
			}
		}
	}
	return out
}

// close stops the engines and checks that the relay's goroutines ended.
func (r *batRelay) close(t *testing.T, before int) {
	for _, s := range r.stops {
		s()
	}
	r.h.close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the case, %d before", n, before)
	}
}

// counterValues flattens both engines' counters into name -> value, e.g.
// "vgw.malformed", "vgw.drops.quick-mode-stale", "cgw.tunnel.notifies_sent".
func (r *batRelay) counterValues() map[string]uint64 {
	out := map[string]uint64{}
	for name, e := range map[string]*Engine{"cgw": r.h.cgw, "vgw": r.h.vgw} {
		c := e.counters
		for k, v := range map[string]uint64{"malformed": c.Malformed, "unknown_cookie": c.UnknownCookie,
			"zero_cookie": c.ZeroCookie, "cookie_mismatch": c.CookieMismatch, "unauthenticated_notifies": c.UnauthenticatedNotifies,
			"unknown_peer": c.UnknownPeer, "half_open_refused": c.HalfOpenRefused} {
			out[name+"."+k] = v
		}
		for k, v := range c.Drops {
			out[name+".drops."+k] = v
		}
		tc := e.byName["tunnel1"].counters
		for k, v := range map[string]uint64{"retransmits": tc.Retransmits, "duplicates_answered": tc.DuplicatesAnswered,
			"notifies_sent": tc.NotifiesSent, "notifies_received": tc.NotifiesReceived} {
			out[name+".tunnel."+k] = v
		}
	}
	return out
}
