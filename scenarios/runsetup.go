package scenarios

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
	"github.com/vpnlab/vpnlab/scenarios/report"
)

// setup writes the configurations, builds the lab and starts nothing but
// the capture and the event readers; the gateways start in the first step
// unless the scenario starts them itself.
func (ru *runner) setup(ctx context.Context) error {
	s, p := ru.s, ru.s.plan
	dir, err := os.MkdirTemp("", "vpnlab-run-")
	if err != nil {
		return err
	}
	ru.runDir = dir
	ru.gw = map[string]*gwProc{}
	for _, name := range []string{"vgw", "cgw"} {
		pg := p.gateways[name]
		if pg.kind == "strongswan" {
			if err := ru.setupForeignCGW(name, pg); err != nil {
				return err
			}
			continue
		}
		if err := ru.setupGateway(name, pg); err != nil {
			return err
		}
	}
	ru.w = newWorld(ru.gw)
	ru.w.start = ru.r.Start
	if err := ru.setupLab(); err != nil {
		return err
	}
	if p.capture {
		if err := ru.l.startCapture(filepath.Join(ru.o.OutDir, "wan.pcap")); err != nil {
			return err
		}
	}
	ru.startBackground()
	// Gateways start first unless the scenario's first step starts one.
	if len(s.Steps) == 0 || s.Steps[0].Start == "" {
		for _, name := range []string{"vgw", "cgw"} {
			ru.w.runnerEvent("gateway-start", map[string]string{"gateway": name})
			if err := ru.gw[name].start(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// setupForeignCGW prepares a strongSwan customer gateway: its
// configuration exported from the vgw's (set up before it).
func (ru *runner) setupForeignCGW(name string, pg *planGateway) error {
	s, p, dir := ru.s, ru.s.plan, ru.runDir
	f := &foreignCGW{dir: filepath.Join(dir, "cgw"), short: dir, out: ru.o.OutDir, bgp: pg.bgp,
		tunnels: p.tunnelNames(), inside: map[string]netip.Prefix{}, charons: map[string]*strongswan.Charon{}}
	f.vgwInside, f.awsNets = map[string]netip.Addr{}, p.hostNets("aws")
	for _, t := range p.tunnels {
		f.inside[t.Name] = netip.PrefixFrom(t.Inside.Addr().Next().Next(), 30)
		f.vgwInside[t.Name] = t.Inside.Addr().Next()
	}
	vg := ru.gw["vgw"]
	if err := p.exportForeign(pg, vg.files.Config, vg.env, f.dir, ru.o.OutDir); err != nil {
		return fmt.Errorf("%s:%d: the strongSwan customer gateway's configuration: %v", s.File, pg.kindLine, err)
	}
	ru.gw[name] = &gwProc{name: name, binary: "strongswan", foreign: f,
		files: gatewayFiles{Events: filepath.Join(dir, "cgw-events.ndjson")}}
	return nil
}

// setupGateway writes a vpnlab gateway's configuration into the output
// folder and checks it as the gateway would.
func (ru *runner) setupGateway(name string, pg *planGateway) error {
	s, p, dir := ru.s, ru.s.plan, ru.runDir
	f := gatewayFiles{
		Config:  filepath.Join(ru.o.OutDir, name+".yaml"),
		Control: filepath.Join(dir, name+".sock"),
		KeyLog:  filepath.Join(ru.o.OutDir, name+"-keys.log"),
		Events:  filepath.Join(ru.o.OutDir, name+"-events.ndjson"),
	}
	for _, old := range []string{f.KeyLog, f.Events} {
		os.Remove(old)
	}
	data, env, err := p.buildConfig(pg, f)
	if err != nil {
		return fmt.Errorf("%s:%d: gateway %s: %v", s.File, pg.line, name, err)
	}
	if err := os.WriteFile(f.Config, data, 0o644); err != nil {
		return err
	}
	if _, err := checkConfig(pg.Binary, data, env, f.Config); err != nil {
		return fmt.Errorf("%s:%d: the %s configuration the scenario makes (written to %s) is invalid:\n%v", s.File, pg.line, name, f.Config, err)
	}
	ru.gw[name] = &gwProc{name: name, binary: pg.Binary, exe: ru.o.Exe, env: env, files: f}
	return nil
}

// setupLab opens the lab and builds its namespaces and links.
func (ru *runner) setupLab() error {
	p := ru.s.plan
	lb, err := netlab.Open(ru.o.OutDir, nil)
	if err != nil {
		return err
	}
	// The run directory (control sockets) goes too when `vpnlab clean`
	// cleans up after a killed run.
	if err := lb.OwnDir(ru.runDir); err != nil {
		lb.Close()
		return err
	}
	ru.l = &lab{Lab: lb, p: p, hosts: map[string]*netlab.NS{}, impaired: map[string][]string{}}
	ru.w.runnerEvent("lab", map[string]string{"id": lb.ID(), "namespaces": lb.ID() + "-*"})
	if err := buildLab(ru.l); err != nil {
		return fmt.Errorf("building the lab: %v", err)
	}
	ru.gw["cgw"].ns, ru.gw["vgw"].ns = ru.l.cgw, ru.l.vgw
	ru.w.wan = ru.l.wanCounters
	if f := ru.gw["cgw"].foreign; f != nil {
		f.ns = ru.l.cgw
	}
	return nil
}

// startBackground starts the readers of the gateways' event files and the
// ticker that refreshes the world, samples metrics and draws progress;
// ru.cancel stops them.
func (ru *runner) startBackground() {
	bg, cancel := context.WithCancel(context.Background())
	ru.cancel = cancel
	ru.bgDone = make(chan struct{})
	ru.readerCh = make(chan struct{}, 2)
	// The progress exists before the readers that report to it start.
	ru.prog = newProgress(ru.o.Progress, ru.o.TTY, ru.w, ru.r.Tunnels)
	for name, g := range ru.gw {
		name := name
		go func() {
			followEvents(bg, g.files.Events, func(ev status.Event) {
				ru.w.addEvent(report.Event{Time: ev.Time, Source: name, Tunnel: ev.Tunnel, Type: ev.Type, Detail: ev.Detail})
				ru.prog.event(name, ev)
			})
			ru.readerCh <- struct{}{}
		}()
	}
	go func() {
		defer close(ru.bgDone)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				ru.w.refresh(bg)
				ru.metrics.sample(bg, ru.gw)
				ru.prog.draw()
			}
		}
	}()
}
