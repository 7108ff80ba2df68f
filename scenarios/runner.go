package scenarios

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vpnlab/vpnlab/internal/traffic"
	"github.com/vpnlab/vpnlab/scenarios/report"
)

// RunOptions are how a scenario is run.
type RunOptions struct {
	OutDir   string    // output folder (created; existing files are replaced)
	Exe      string    // the vpnlab binary the gateways run as ("vpnlab gateway cgw ..."); default: this executable
	Progress io.Writer // live progress (nil: none)
	TTY      bool      // Progress is a terminal: one line updated in place
}

// ErrEnvironment wraps problems of the machine (not root, tool missing):
// nothing was started.
var ErrEnvironment = errors.New("environment")

// Run runs a validated scenario: builds the lab, runs the gateways and the
// steps, measures, and always cleans up (also on ctx cancellation and
// panics). The returned Run is the whole record, also written to
// o.OutDir; err is non-nil only when the run could not happen or was
// aborted (r.Error says the same); failed assertions are r.Passed false.
func Run(ctx context.Context, s *Scenario, o RunOptions) (r *report.Run, err error) {
	r = &report.Run{Scenario: s.Name, File: s.File, Description: s.Description, Vars: s.Effective,
		Gateways: []string{"cgw", "vgw"}, Tunnels: s.plan.tunnelNames(), Start: time.Now()}
	err = preflight()
	if err == nil {
		err = s.plan.foreignPreflight()
	}
	if err != nil {
		r.Error = err.Error()
		r.End = time.Now()
		return r, fmt.Errorf("%w: %v", ErrEnvironment, err)
	}
	if o.Exe == "" {
		if o.Exe, err = os.Executable(); err != nil {
			return r, err
		}
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return r, err
	}
	clearOutDir(o.OutDir)
	ru := &runner{s: s, o: o, r: r, metrics: newMetricsSampler()}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error (please report): %v\n%s", p, debug.Stack())
			r.Error = err.Error()
		}
		ru.cleanup()
		ru.finish()
	}()
	if err := ru.setup(ctx); err != nil {
		r.Error = err.Error()
		return r, err
	}
	ru.steps(ctx)
	if ctx.Err() != nil && r.Error == "" {
		r.Error = "interrupted"
		return r, errors.New("interrupted")
	}
	return r, nil
}

type runner struct {
	s  *Scenario
	o  RunOptions
	r  *report.Run
	w  *world
	l  *lab
	gw map[string]*gwProc

	runDir   string // short paths for unix sockets
	cancel   func() // stops event readers and progress
	bgDone   chan struct{}
	prog     *progress
	readerCh chan struct{}   // one value per event reader that ended
	metrics  *metricsSampler // metrics.go
}

// steps runs the timeline; after a failed step the rest are skipped.
func (ru *runner) steps(ctx context.Context) {
	s := ru.s
	ctx, cancel := context.WithTimeout(ctx, s.Timeout.D())
	defer cancel()
	failed := false
	lastAction := ru.r.Start
	for i := range s.Steps {
		st := &s.Steps[i]
		rs := report.Step{Index: i + 1, Name: st.Name, Action: describe(st), Line: st.Line}
		if failed || ctx.Err() != nil {
			rs.Status = "skipped"
			ru.r.Steps = append(ru.r.Steps, rs)
			continue
		}
		rs.Start = time.Now()
		ru.prog.step(i+1, len(s.Steps), cmp.Or(rs.Name, rs.Action))
		ru.w.runnerEvent("step-start", map[string]string{"step": strconv.Itoa(i + 1), "name": cmp.Or(rs.Name, rs.Action)})
		isAction := len(st.Wait.Items) == 0 && len(st.Assert.Items) == 0 && st.Sleep == 0
		sctx := ctx
		var scancel context.CancelFunc = func() {}
		if st.Timeout > 0 {
			sctx, scancel = context.WithTimeout(ctx, st.Timeout.D())
		} else if isAction {
			sctx, scancel = context.WithTimeout(ctx, 60*time.Second)
		}
		err := ru.step(sctx, ctx, st, &rs, lastAction)
		scancel()
		if isAction {
			lastAction = rs.Start
		}
		rs.End = time.Now()
		switch {
		case err != nil && rs.Status == "":
			rs.Status = "error"
			rs.Message = err.Error()
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
				rs.Message += fmt.Sprintf(" (the scenario's timeout of %v ran out)", s.Timeout.D())
			}
		case rs.Status == "":
			rs.Status = "pass"
		}
		if rs.Status != "pass" {
			failed = true
		}
		ru.w.runnerEvent("step-end", map[string]string{"step": strconv.Itoa(i + 1), "status": rs.Status})
		ru.prog.stepDone(rs)
		ru.r.Steps = append(ru.r.Steps, rs)
	}
}

// step runs one step. Failures of waits and asserts set rs.Status "fail"
// with the expected and seen values; other problems are returned.
func (ru *runner) step(ctx, parent context.Context, st *Step, rs *report.Step, lastAction time.Time) error {
	w := ru.w
	switch {
	case st.Start != "":
		w.runnerEvent("gateway-start", map[string]string{"gateway": st.Start})
		return ru.gw[st.Start].start(ctx)
	case st.Stop != "":
		w.runnerEvent("gateway-stop", map[string]string{"gateway": st.Stop})
		return ru.gw[st.Stop].stop(false)
	case st.Kill != "":
		w.runnerEvent("gateway-kill", map[string]string{"gateway": st.Kill})
		return ru.gw[st.Kill].stop(true)
	case st.Restart != "":
		w.runnerEvent("gateway-stop", map[string]string{"gateway": st.Restart})
		if err := ru.gw[st.Restart].stop(false); err != nil {
			return err
		}
		w.runnerEvent("gateway-start", map[string]string{"gateway": st.Restart})
		return ru.gw[st.Restart].start(ctx)
	case st.Impair != nil:
		im := st.Impair
		w.runnerEvent("impair", map[string]string{"tunnel": im.Tunnel, "fault": im.Fault, "percent": fmt.Sprint(im.Percent)})
		return ru.l.impair(im.Tunnel, im.Fault, im.Percent)
	case st.Restore != "":
		w.runnerEvent("restore", map[string]string{"tunnel": st.Restore})
		return ru.l.restore(st.Restore)
	case st.WAN != nil:
		w.runnerEvent("wan", map[string]string{"tunnel": st.WAN.Tunnel, "set": describeWAN(st.WAN)})
		return ru.l.wanStep(st.WAN)
	case st.Flow != nil:
		return ru.startFlow(ctx, st.Flow)
	case len(st.StopFlow.Items) > 0:
		ru.stopFlows(st.StopFlow.Items)
		return nil
	case st.IKEImpair != nil:
		w.runnerEvent("ike-impair", map[string]string{"gateway": st.IKEImpair.Gateway, "spec": strings.Join(st.IKEImpair.Spec.Items, ", ")})
		c := ru.gw[st.IKEImpair.Gateway].client()
		for _, spec := range st.IKEImpair.Spec.Items {
			if err := c.Impair(ctx, spec); err != nil {
				return fmt.Errorf("%s: impair %s: %v", st.IKEImpair.Gateway, spec, err)
			}
		}
		return nil
	case st.Flood != nil:
		return ru.flood(ctx, st.Flood, rs)
	case st.Rekey != nil:
		w.runnerEvent("rekey", map[string]string{"gateway": st.Rekey.Gateway, "tunnel": st.Rekey.Tunnel, "phase": strconv.Itoa(st.Rekey.Phase)})
		if f := ru.gw[st.Rekey.Gateway].foreign; f != nil {
			return f.swanctl(ctx, "rekey", st.Rekey.Tunnel, st.Rekey.Phase)
		}
		return ru.gw[st.Rekey.Gateway].client().Rekey(ctx, st.Rekey.Tunnel, st.Rekey.Phase)
	case st.Initiate != nil:
		w.runnerEvent("initiate", map[string]string{"gateway": st.Initiate.Gateway, "tunnel": st.Initiate.Tunnel})
		if f := ru.gw[st.Initiate.Gateway].foreign; f != nil {
			return f.swanctl(ctx, "initiate", st.Initiate.Tunnel, 0)
		}
		return ru.gw[st.Initiate.Gateway].client().Initiate(ctx, st.Initiate.Tunnel)
	case st.Terminate != nil:
		w.runnerEvent("terminate", map[string]string{"gateway": st.Terminate.Gateway, "tunnel": st.Terminate.Tunnel})
		if f := ru.gw[st.Terminate.Gateway].foreign; f != nil {
			return f.swanctl(ctx, "terminate", st.Terminate.Tunnel, 0)
		}
		return ru.gw[st.Terminate.Gateway].client().Terminate(ctx, st.Terminate.Tunnel)
	case st.BGP != nil:
		w.runnerEvent("bgp", map[string]string{"gateway": st.BGP.Gateway, "what": strings.TrimPrefix(rs.Action, "bgp "+st.BGP.Gateway+": ")})
		return ru.bgp(ctx, st.BGP)
	case st.Sleep > 0:
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(st.Sleep.D()):
			return nil
		}
	case len(st.Wait.Items) > 0:
		return ru.wait(ctx, parent, st, rs, lastAction)
	case len(st.Assert.Items) > 0:
		w.refresh(ctx)
		eventSettle(ctx, st.asserts)
		for _, c := range st.asserts {
			ok, seen := w.eval(c, ru.r.Start)
			rs.Asserts = append(rs.Asserts, report.Assert{Expr: c.Text, Line: c.Line, Passed: ok, Expected: c.Expected(), Seen: seen})
			if !ok {
				rs.Status = "fail"
				msg := fmt.Sprintf("line %d: %s: expected %s, seen %s", c.Line, c.Text, c.Expected(), seen)
				if rs.Message != "" {
					rs.Message += "\n"
				}
				rs.Message += msg
			}
		}
		return nil
	}
	return fmt.Errorf("nothing to do")
}

// eventReadLag is how long the runner's readers of the gateways' event
// files may lag behind the gateways (followEvents reads every 50 ms).
const eventReadLag = 120 * time.Millisecond

// eventSettle gives the event readers time to catch up before an assert
// counts events: a wait that just saw a route move through the routing API
// may come a few milliseconds after the gateway wrote the event, before the
// runner read it.
func eventSettle(ctx context.Context, conds []*Cond) {
	for _, c := range conds {
		if c.Kind == "event" {
			select {
			case <-ctx.Done():
			case <-time.After(eventReadLag):
			}
			return
		}
	}
}

// wait polls until every condition holds or the step's timeout ends; then
// it says, per condition that did not hold, what it saw last.
func (ru *runner) wait(ctx, parent context.Context, st *Step, rs *report.Step, since time.Time) error {
	w := ru.w
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		w.refresh(ctx)
		all := true
		var seen []string
		for _, c := range st.waits {
			ok, s := w.eval(c, since)
			if !ok {
				all = false
				seen = append(seen, fmt.Sprintf("line %d: %s: expected %s, seen %s", c.Line, c.Text, c.Expected(), s))
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			rs.Status = "fail"
			why := fmt.Sprintf("not reached within %v", st.Timeout.D())
			if parent.Err() != nil {
				why = "not reached before the run ended (" + context.Cause(parent).Error() + ")"
			}
			rs.Message = why + ":\n" + strings.Join(seen, "\n")
			return nil
		case <-t.C:
		}
	}
}

func (ru *runner) startFlow(ctx context.Context, f *FlowStep) error {
	srcNS, _ := ru.l.nodeNS(f.From)
	dstNS, dst := ru.l.nodeNS(f.To)
	if f.Dst != "" {
		dst = netip.MustParseAddr(f.Dst)
	}
	spec := traffic.Spec{Name: f.Name, Proto: f.Proto, SrcNS: srcNS.Name(), DstNS: dstNS.Name(), Dst: dst,
		Port: uint16(f.Port), Rate: f.Rate, Size: f.Size, Count: f.Count, Duration: f.Duration.D()}
	fl, err := traffic.Start(context.Background(), spec)
	if err != nil {
		return fmt.Errorf("flow %s: %v", f.Name, err)
	}
	ru.w.mu.Lock()
	ru.w.flows[f.Name] = &flowState{spec: *f, from: f.From, to: f.To, flow: fl}
	ru.w.order = append(ru.w.order, f.Name)
	ru.w.mu.Unlock()
	ru.w.runnerEvent("flow-start", map[string]string{"flow": f.Name, "proto": f.Proto, "from": f.From, "to": f.To + " " + dst.String()})
	return nil
}

// stopFlows stops flows in parallel (each waits a grace period for late
// packets).
func (ru *runner) stopFlows(names []string) {
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ru.stopFlow(n)
		}()
	}
	wg.Wait()
}

// stopFlow stops a flow and keeps its final result (idempotent).
func (ru *runner) stopFlow(name string) {
	ru.w.mu.Lock()
	fs := ru.w.flows[name]
	ru.w.mu.Unlock()
	if fs == nil || fs.result != nil {
		return
	}
	res := fs.flow.Stop(time.Second)
	ru.w.mu.Lock()
	fs.result = &res
	ru.w.mu.Unlock()
	ru.w.runnerEvent("flow-stop", map[string]string{"flow": name, "sent": fmt.Sprint(res.Sent), "lost": fmt.Sprint(res.Lost)})
}

func (ru *runner) bgp(ctx context.Context, b *BGPStep) error {
	c := ru.gw[b.Gateway].client()
	for _, a := range b.Advertise.Items {
		if err := c.Advertise(ctx, netip.MustParsePrefix(a)); err != nil {
			return fmt.Errorf("%s: advertise %s: %v", b.Gateway, a, err)
		}
	}
	for _, a := range b.Withdraw.Items {
		if err := c.Withdraw(ctx, netip.MustParsePrefix(a)); err != nil {
			return fmt.Errorf("%s: withdraw %s: %v", b.Gateway, a, err)
		}
	}
	if b.Prepend != nil || b.MED != nil {
		// Read the current policy so that setting one keeps the other.
		var v struct {
			Neighbors []struct {
				Tunnel  string `json:"tunnel"`
				MED     uint32 `json:"med"`
				Prepend int    `json:"prepend"`
			} `json:"neighbors"`
		}
		if err := c.Routing(ctx, &v); err != nil {
			return fmt.Errorf("%s: %v", b.Gateway, err)
		}
		med, prepend := uint32(0), 0
		for _, n := range v.Neighbors {
			if n.Tunnel == b.Tunnel {
				med, prepend = n.MED, n.Prepend
			}
		}
		if b.MED != nil {
			med = uint32(*b.MED)
		}
		if b.Prepend != nil {
			prepend = *b.Prepend
		}
		if err := c.SetNeighborPolicy(ctx, b.Tunnel, med, prepend); err != nil {
			return fmt.Errorf("%s: %v", b.Gateway, err)
		}
	}
	return nil
}

// cleanup stops everything the run started: flows, gateways, capture,
// event readers, the lab (namespaces and with them every nft rule).
func (ru *runner) cleanup() {
	if ru.w != nil {
		// What the gateways report from here on (withdrawals, sessions
		// closing, DELETEs) is the teardown, not the scenario's story.
		ru.prog.cleaning()
		ru.w.runnerEvent("cleanup", nil)
	}
	if ru.w != nil {
		ru.w.mu.Lock()
		names := append([]string(nil), ru.w.order...)
		ru.w.mu.Unlock()
		ru.stopFlows(names)
	}
	for _, name := range []string{"cgw", "vgw"} {
		if g := ru.gw[name]; g != nil && g.running() {
			_ = g.stop(false)
			ru.w.runnerEvent("gateway-stop", map[string]string{"gateway": name})
		}
	}
	if ru.l != nil {
		if ru.l.capStop != nil {
			if n, err := ru.l.capStop(); err != nil {
				ru.r.Error = strings.TrimSpace(ru.r.Error + "\ncapture: " + err.Error())
			} else {
				ru.r.Artifacts = append(ru.r.Artifacts, report.Artifact{Name: "wan.pcap", Path: "wan.pcap", What: fmt.Sprintf("WAN capture (link to the AWS side), %d packets", n)})
			}
		}
	}
	if ru.cancel != nil {
		ru.cancel()
		for range ru.gw {
			<-ru.readerCh
		}
		<-ru.bgDone
	}
	if ru.l != nil {
		if err := ru.l.Close(); err != nil {
			ru.r.Error = strings.TrimSpace(ru.r.Error + "\ncleanup: " + err.Error())
		}
	}
	if g := ru.gw["cgw"]; g != nil && g.foreign != nil {
		g.foreign.finish()
	}
	if ru.runDir != "" {
		os.RemoveAll(ru.runDir)
	}
	if ru.prog != nil {
		ru.prog.finish()
	}
}

// finish completes the record and writes the output folder.
func (ru *runner) finish() {
	r := ru.r
	r.End = time.Now()
	r.Metrics = ru.metrics.result()
	if ru.w != nil {
		r.Events = ru.w.eventsCopy()
		for _, n := range ru.w.order {
			fs := ru.w.flows[n]
			if fs.result == nil {
				continue
			}
			res := fs.result
			var series []report.Bucket
			for _, b := range res.Series {
				series = append(series, report.Bucket{Start: b.Start, Sent: b.Sent, Received: b.Received})
			}
			r.Flows = append(r.Flows, report.Flow{Name: n, Proto: res.Proto, From: fs.from, To: fs.to + " " + res.Dst.String(),
				Start: res.Start, End: res.End, Sent: res.Sent, Received: res.Received, Lost: res.Lost,
				Reordered: res.Reordered, Duplicates: res.Duplicates, LossPct: res.LossPct, MaxGap: res.MaxGap,
				MaxGapFrom: res.MaxGapFrom, MaxGapTo: res.MaxGapTo, Series: series})
		}
	}
	r.Passed = r.Error == "" && len(r.Steps) > 0
	for _, st := range r.Steps {
		if st.Status != "pass" {
			r.Passed = false
		}
	}
	out := ru.o.OutDir
	if ru.gw != nil {
		for _, name := range []string{"cgw", "vgw"} {
			g := ru.gw[name]
			if g.foreign != nil {
				r.Artifacts = append(r.Artifacts, g.foreign.artifacts(out)...)
				continue
			}
			r.Artifacts = append(r.Artifacts, report.Artifact{Name: name + ".yaml", Path: name + ".yaml", What: name + " configuration (generated)"})
			for i, l := range g.logs {
				rel, _ := filepath.Rel(out, l)
				r.Artifacts = append(r.Artifacts, report.Artifact{Name: filepath.Base(l), Path: rel, What: fmt.Sprintf("%s log (start %d)", name, i+1)})
			}
			if _, err := os.Stat(g.files.Events); err == nil {
				r.Artifacts = append(r.Artifacts, report.Artifact{Name: name + "-events.ndjson", Path: name + "-events.ndjson", What: name + " events as JSON lines"})
			}
		}
		ru.writeKeys()
	}
	if err := report.WriteFiles(out, r); err != nil {
		r.Error = strings.TrimSpace(r.Error + "\n" + err.Error())
	}
}
