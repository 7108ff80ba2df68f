package ike

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// The hostile-peer battery (docs/hostile-input.md, "Hostile-peer
// battery"): every message of main, aggressive and quick mode, in the role
// that sends it, mangled on the relay of battery_test.go; informational
// messages and spoofed ones injected. Each case asserts the outcome (the
// tunnel comes up after the peer's retransmission, or the negotiation
// fails), the counters that must move, the notifies sent, and that nothing
// leaked (half-open SAs, quick modes, SPIs, pairs, timers of deleted SAs,
// goroutines).

// batCase is one row.
type batCase struct {
	name   string
	o      harnessOpts
	mangle mangleFn
	setup  func(r *batRelay) // before phase 1 starts (impairments)
	after  func(r *batRelay) // once the first run settled (replays, spoofs)
	want   string            // "up", or "down": phase 1 or phase 2 did not come up on both sides
	counts []string          // counters that must have moved, "" for none checked
	notify string            // "vgw:PAYLOAD-MALFORMED": a notify one side must have sent
	check  func(t *testing.T, r *batRelay)
	// vgwInit: the row runs with the vgw as initiator (battery_roles_test.go).
	vgwInit bool
}

// Verbs applied to every message of an exchange, with the outcome a
// mangled first copy leads to where the table does not say otherwise.
var batVerbs = []struct {
	verb string
	f    func(msg string) mangleFn
}{
	{"drop", dropFirst},
	{"duplicate", duplicate},
	{"reorder", reorder},
	{"replay-forward", replayLater},
	{"corrupt-body", corruptBody},
	{"bogus-flags", func(m string) mangleFn { return setFlags(m, 0xf8) }},
	{"major-version", func(m string) mangleFn { return setVersion(m, 0x20) }},
	{"minor-version", func(m string) mangleFn { return setVersion(m, 0x11) }},
	{"zero-icookie", zeroICookie},
	{"other-rcookie", otherRCookie},
	{"wrong-msgid", wrongMsgID},
	{"length-short", func(m string) mangleFn { return lengthDelta(m, -4) }},
	{"length-long", func(m string) mangleFn { return lengthDelta(m, 64) }},
	{"truncated", func(m string) mangleFn { return truncate(m, 8) }},
}

// batExchanges lists the messages of each exchange.
var batExchanges = []struct {
	o    harnessOpts
	msgs []string
}{
	{harnessOpts{noPFS: false}, []string{"MM1", "MM2", "MM3", "MM4", "MM5", "MM6", "QM1", "QM2", "QM3"}},
	{harnessOpts{aggressive: true, noPFS: true}, []string{"AM1", "AM2", "AM3"}},
}

// runBatCase runs one row and returns what it saw.
func runBatCase(t *testing.T, c batCase) (outcome string, delta map[string]uint64, notifies []string, r *batRelay) {
	r = newBatRelay(t, c.o, c.vgwInit)
	before := r.counterValues()
	r.mangle = c.mangle
	if c.setup != nil {
		c.setup(r)
	}
	r.ini().byName["tunnel1"].wantUp = true
	r.start()
	budget := 3 * time.Second
	if c.want == "down" && c.after == nil {
		budget = 700 * time.Millisecond // retransmissions give up after some 200 ms
	}
	r.run(budget, r.up)
	if c.after != nil {
		c.after(r)
		r.run(300*time.Millisecond, nil)
	} else if len(r.held) > 0 {
		r.flushHeld()
		r.run(100*time.Millisecond, nil)
	}
	outcome = "down"
	if r.up() {
		outcome = "up"
	}
	delta = map[string]uint64{}
	for k, v := range r.counterValues() {
		if v > before[k] {
			delta[k] = v - before[k]
		}
	}
	notifies = append(prefixed("cgw", r.notifiesSent("cgw")), prefixed("vgw", r.notifiesSent("vgw"))...)
	return outcome, delta, notifies, r
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + ":" + s
	}
	return out
}

// TestHostilePeerBattery runs every row with the cgw as initiator (the vgw
// as responder, as with AWS); VPNLAB_BATTERY_PRINT=1 prints what each row
// saw (to write the table of docs/hostile-input.md).
func TestHostilePeerBattery(t *testing.T) {
	runBattery(t, batteryCases(false))
}

// runBattery runs the rows one after the other (the goroutine check
// counts the process's goroutines).
func runBattery(t *testing.T, cases []batCase) {
	start := time.Now()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := runtime.NumGoroutine()
			outcome, delta, notifies, r := runBatCase(t, c)
			if os.Getenv("VPNLAB_BATTERY_PRINT") != "" {
				keys := make([]string, 0, len(delta))
				for k := range delta {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				fmt.Printf("%-36s %-4s %v %v\n    %s\n", c.name, outcome, keys, notifies, strings.Join(r.log, " "))
			}
			if outcome != c.want {
				t.Errorf("outcome %s, want %s (relay: %s)", outcome, c.want, strings.Join(r.log, " "))
			}
			for _, k := range c.counts {
				if delta[k] == 0 {
					t.Errorf("counter %s did not move (moved: %v)", k, delta)
				}
			}
			if c.notify != "" && !contains(notifies, c.notify) {
				t.Errorf("notify %s not sent (sent: %v)", c.notify, notifies)
			}
			if c.check != nil {
				c.check(t, r)
			}
			r.checkNoLeak(t)
			r.close(t, g)
		})
	}
	t.Logf("%d cases in %v", len(cases), time.Since(start))
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// sender returns the engine that sends msg: INFO-C / INFO-V by name, the
// odd messages of an exchange the initiator, the even ones the responder.
func sender(r *batRelay, msg string) *Engine {
	switch {
	case strings.HasPrefix(msg, "INFO-V"):
		return r.h.vgw
	case strings.HasPrefix(msg, "INFO-C"):
		return r.h.cgw
	case (msg[len(msg)-1]-'0')%2 == 0:
		return r.resp()
	}
	return r.ini()
}

// impair sets an impairment on the engine that sends msg.
func impair(msg string, imp Impairment) func(r *batRelay) {
	return func(r *batRelay) { sender(r, msg).impairs = append(sender(r, msg).impairs, imp) }
}

// isakmpExchange names the impairment exchange of a message.
func impairExchange(msg string) ImpairExchange {
	switch msg[:2] {
	case "MM":
		return ImpairMain
	case "AM":
		return ImpairAggressive
	}
	return ImpairQuick
}
