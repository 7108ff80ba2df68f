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
}

// newBatRelay builds the two engines with retransmission timeouts short
// enough for a case to see retries and give-ups in well under a second;
// vgwInit picks the initiator.
func newBatRelay(t testing.TB, o harnessOpts, vgwInit bool) *batRelay {
	h := newRoleHarness(t, o, vgwInit)
	r := &batRelay{h: h, names: map[[32]byte]string{}, counts: map[string]int{}, copies: map[string]int{},
		sas: map[*ikeSA]bool{}, events: map[string][]Event{}, vgwInit: vgwInit}
	for name, e := range map[string]*Engine{"cgw": h.cgw, "vgw": h.vgw} {
		e.cfg.RetransmitTimeout, e.cfg.RetransmitBase, e.cfg.RetransmitTries = 25*time.Millisecond, 1.5, 3
		ch, stop := e.Subscribe()
		r.stops = append(r.stops, stop)
		name := name
		go func() {
			for ev := range ch {
				r.addEvent(name, ev)
			}
		}()
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
	did := false
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
	return did
}

// run drives the engines until done reports true or d passes; quiet
// periods sleep a little for the timers.
func (r *batRelay) run(d time.Duration, done func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !r.step() {
			if done != nil && done() {
				return true
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
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
