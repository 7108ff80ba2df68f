package scenarios

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/scenarios/report"
)

// progress shows the run live: on a terminal one line rewritten in place
// ("[ 12.3s] 4/9 wait ... | cgw t1 UP t2 DOWN | vgw ... | ping 120/118"),
// otherwise plain lines for steps and notable events.
type progress struct {
	w       io.Writer
	tty     bool
	world   *world
	tunnels []string

	mu      sync.Mutex
	cur     string // current step
	lastLen int
	done    bool
	dpd     map[string]string // last DPD verdict per gateway/tunnel

	inCleanup atomic.Bool // the run's cleanup has begun
}

func newProgress(w io.Writer, tty bool, wd *world, tunnels []string) *progress {
	return &progress{w: w, tty: tty, world: wd, tunnels: tunnels}
}

func (p *progress) elapsed() string {
	return fmt.Sprintf("[%5.1fs]", time.Since(p.world.start).Seconds())
}

// line prints a plain line (on a terminal: above the live line).
func (p *progress) line(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lastLen))
		p.lastLen = 0
	}
	fmt.Fprintf(p.w, "%s %s\n", p.elapsed(), fmt.Sprintf(format, args...))
}

func (p *progress) step(i, n int, name string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.cur = fmt.Sprintf("%d/%d %s", i, n, name)
	p.mu.Unlock()
	p.line("step %d/%d: %s", i, n, name)
}

func (p *progress) stepDone(rs report.Step) {
	if p == nil {
		return
	}
	d := rs.End.Sub(rs.Start).Round(time.Millisecond)
	switch rs.Status {
	case "pass":
		p.line("  ok (%v)", d)
	default:
		p.line("  %s (%v): %s", strings.ToUpper(rs.Status), d, strings.ReplaceAll(rs.Message, "\n", "\n           "))
	}
}

// event prints a line for the events a person follows (report.Interesting
// decides: tunnels, DPD verdicts, BGP sessions, route moves, errors).
func (p *progress) event(gw string, ev status.Event) {
	if p == nil {
		return
	}
	e := report.Event{Time: ev.Time, Source: gw, Tunnel: ev.Tunnel, Type: ev.Type, Detail: ev.Detail}
	if !report.Interesting(e) || (p.inCleanup.Load() && ev.Type != "error") {
		return
	}
	if ev.Type == "dpd-state" {
		// "alive" only matters after "dead".
		p.mu.Lock()
		if p.dpd == nil {
			p.dpd = map[string]string{}
		}
		k := gw + "/" + ev.Tunnel
		prev := p.dpd[k]
		p.dpd[k] = ev.Detail["state"]
		p.mu.Unlock()
		if ev.Detail["state"] == "alive" && prev != "dead" {
			return
		}
	}
	t := ev.Tunnel
	if t == "" {
		t = "-"
	}
	p.line("  %s %s: %s", gw, t, report.DescribeEvent(e))
}

// draw rewrites the live line (terminals only).
func (p *progress) draw() {
	if p == nil || p.w == nil || !p.tty {
		return
	}
	var flows []string
	p.world.mu.Lock()
	for _, n := range p.world.order {
		fs := p.world.flows[n]
		var r = fs.result
		if r == nil {
			s := fs.flow.Snapshot()
			r = &s
		}
		flows = append(flows, fmt.Sprintf("%s %d/%d", n, r.Received, r.Sent))
	}
	p.world.mu.Unlock()
	parts := []string{p.elapsed() + " " + p.cur, p.world.tunnelLine("cgw", p.tunnels), p.world.tunnelLine("vgw", p.tunnels)}
	parts = append(parts, flows...)
	s := strings.Join(parts, " | ")
	if len(s) > 160 {
		s = s[:160]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	pad := ""
	if p.lastLen > len(s) {
		pad = strings.Repeat(" ", p.lastLen-len(s))
	}
	fmt.Fprintf(p.w, "\r%s%s", s, pad)
	p.lastLen = len(s)
}

// cleaning marks the start of the cleanup: the gateways' events from then
// on (the teardown) are not printed, errors excepted.
func (p *progress) cleaning() {
	if p != nil {
		p.inCleanup.Store(true)
	}
}

func (p *progress) finish() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.lastLen > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lastLen))
	}
	p.done = true
}
