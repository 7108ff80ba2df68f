package report

import (
	"fmt"
	"slices"
	"time"
)

// t0 is the start of the synthetic runs.
var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// at is t0 plus sec seconds.
func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// failoverRun is a realistic run of a failover scenario: both tunnels come
// up with BGP, tunnel1 is blackholed at +5 s, DPD declares the peer dead at
// +8 s on the cgw (+8.6 s on the vgw), the routes move to tunnel2, the ping
// flow has a 4 s gap (+5 s .. +9 s) and the assertion "max_gap < 3s" fails;
// tunnel1 is restored at +15 s and the routes move back at +19 s.
func failoverRun() *Run {
	r := &Run{
		Scenario:    "failover-dpd",
		File:        "scenarios/failover-dpd.yaml",
		Description: "blackhole tunnel1 and measure the outage until traffic uses tunnel2",
		Vars:        map[string]string{"dpd_timeout": "3s", "rate": "10"},
		Start:       t0,
		End:         at(20),
		Passed:      false,
		Gateways:    []string{"cgw", "vgw"},
		Tunnels:     []string{"tunnel1", "tunnel2"},
	}
	ev := func(sec float64, src, tunnel, typ string, kv ...string) {
		d := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			d[kv[i]] = kv[i+1]
		}
		if len(d) == 0 {
			d = nil
		}
		r.Events = append(r.Events, Event{Time: at(sec), Source: src, Tunnel: tunnel, Type: typ, Detail: d})
	}
	ev(0, "runner", "", "gateway-start", "gateway", "vgw")
	ev(0.05, "runner", "", "gateway-start", "gateway", "cgw")
	ev(0, "runner", "", "step-start", "step", "1")
	spi := 0xc0de0000
	for i, tn := range r.Tunnels {
		off := float64(i) * 0.02
		for _, gw := range r.Gateways {
			role := "initiator"
			if gw == "vgw" {
				role = "responder"
			}
			spi++
			ev(0.2+off, gw, tn, "phase1-state", "state", "Negotiating")
			ev(0.4+off, gw, tn, "phase1-state", "state", "Established")
			ev(0.4+off, gw, tn, "phase1-up", "role", role, "proposal", "aes256-sha256-modp2048", "exchange", "main", "nat_detected", "false")
			ev(0.4+off, gw, tn, "phase2-state", "state", "Negotiating")
			ev(0.5+off, gw, tn, "phase2-state", "state", "Established")
			ev(0.5+off, gw, tn, "phase2-up", "proposal", "esp-aes128gcm16", "spi_in", fmt.Sprintf("%08x", spi), "spi_out", fmt.Sprintf("%08x", spi+0x100))
			ev(0.5+off, gw, tn, "tunnel-status", "status", "UP")
			ev(0.6+off, gw, tn, "bgp-state", "from", "Idle", "state", "Connect")
			ev(0.7+off, gw, tn, "bgp-state", "from", "Connect", "state", "OpenSent")
			ev(0.8+off, gw, tn, "bgp-state", "from", "OpenSent", "state", "OpenConfirm")
			ev(0.9+off, gw, tn, "bgp-state", "from", "OpenConfirm", "state", "Established")
			ev(1.0+off, gw, tn, "route", "kind", "learned", "prefix", map[string]string{"cgw": "172.31.0.0/16", "vgw": "10.10.0.0/16"}[gw])
		}
	}
	ev(1.0, "cgw", "", "route", "kind", "installed", "prefix", "172.31.0.0/16", "to", "tunnel1", "reason", "tunnel order")
	ev(1.0, "vgw", "", "route", "kind", "installed", "prefix", "10.10.0.0/16", "to", "tunnel1", "reason", "tunnel order")
	for _, gw := range r.Gateways {
		ev(1.0, gw, "", "route", "kind", "carrying-moved", "prefix", map[string]string{"cgw": "172.31.0.0/16", "vgw": "10.10.0.0/16"}[gw], "to", "tunnel1", "reason", "the decided tunnels have SA pairs")
	}
	ev(1.0, "runner", "", "step-end", "step", "1")
	ev(1.0, "runner", "", "flow-start", "flow", "ping")
	ev(5.0, "runner", "", "impair", "tunnel", "tunnel1", "fault", "blackhole", "percent", "0") // as the runner has it
	for _, gw := range r.Gateways {
		d := 0.0
		if gw == "vgw" {
			d = 0.6
		}
		ev(6.0+d, gw, "tunnel1", "dpd-state", "state", "probing")
		ev(6.0+d, gw, "tunnel1", "notify-sent", "notify", "R-U-THERE")
		action := map[string]string{"cgw": "restart", "vgw": "clear"}[gw]
		ev(8.0+d, gw, "tunnel1", "dpd-state", "state", "dead", "message", "Peer is not responsive - Declaring peer dead", "action", action, "silent_for", "3s")
		ev(8.0+d, gw, "tunnel1", "phase2-down", "reason", "DPD: peer dead", "spi_in", "c0de0001")
		ev(8.0+d, gw, "", "route", "kind", "carrying-moved", "prefix", map[string]string{"cgw": "172.31.0.0/16", "vgw": "10.10.0.0/16"}[gw], "from", "tunnel1", "to", "tunnel2",
			"reason", "tunnel1 has no SA pair; the data path uses the next tunnel of the route")
		ev(8.0+d, gw, "tunnel1", "phase2-state", "state", "Down")
		ev(8.0+d, gw, "tunnel1", "tunnel-status", "status", "DOWN")
		ev(8.0+d, gw, "tunnel1", "phase1-down", "reason", "DPD: peer dead")
		if action == "restart" { // clear: the vgw waits for the peer
			ev(8.0+d, gw, "tunnel1", "phase1-state", "state", "Negotiating")
		}
		ev(8.1+d, gw, "tunnel1", "bgp-state", "from", "Established", "state", "Idle")
		ev(8.1+d, gw, "tunnel1", "route", "kind", "withdrawn", "prefix", map[string]string{"cgw": "172.31.0.0/16", "vgw": "10.10.0.0/16"}[gw])
		ev(8.1+d, gw, "", "route", "kind", "best-moved", "prefix", map[string]string{"cgw": "172.31.0.0/16", "vgw": "10.10.0.0/16"}[gw],
			"from", "tunnel1", "to", "tunnel2", "reason", "only path")
	}
	ev(15.0, "runner", "", "restore", "tunnel", "tunnel1")
	ev(15.0, "runner", "", "flow-stop", "flow", "ping")
	for _, gw := range r.Gateways {
		ev(15.5, gw, "tunnel1", "phase1-up", "role", "initiator", "proposal", "aes256-sha256-modp2048", "exchange", "main")
		ev(15.5, gw, "tunnel1", "phase1-state", "state", "Established")
		ev(15.6, gw, "tunnel1", "phase2-up", "proposal", "esp-aes128gcm16", "spi_in", "c0de0101", "spi_out", "c0de0201")
		ev(15.6, gw, "tunnel1", "tunnel-status", "status", "UP")

		ev(15.6, gw, "tunnel1", "dpd-state", "state", "alive", "proof", "ESP")
		ev(18.9, gw, "tunnel1", "bgp-state", "from", "OpenConfirm", "state", "Established")
		ev(19.0, gw, "", "route", "kind", "best-moved", "prefix", map[string]string{"cgw": "172.31.0.0/16", "vgw": "10.10.0.0/16"}[gw],
			"from", "tunnel2", "to", "tunnel1", "reason", "tunnel order")
		ev(19.0, gw, "", "route", "kind", "carrying-moved", "prefix", map[string]string{"cgw": "172.31.0.0/16", "vgw": "10.10.0.0/16"}[gw], "from", "tunnel2", "to", "tunnel1",
			"reason", "the decided tunnels have SA pairs")
	}

	r.Steps = []Step{
		{Index: 1, Name: "tunnels up", Action: "wait cgw tunnel1 phase2 up", Line: 8, Start: at(0), End: at(1), Status: StatusPass},
		{Index: 2, Name: "start ping", Action: "flow ping: icmp host-a -> host-b 10/s", Line: 11, Start: at(1), End: at(1.01), Status: StatusPass},
		{Index: 3, Name: "blackhole tunnel1", Action: "impair tunnel1: blackhole", Line: 14, Start: at(5), End: at(5.01), Status: StatusPass},
		{Index: 4, Name: "failover", Action: "wait cgw route 172.31.0.0/16 via tunnel2", Line: 17, Start: at(5.01), End: at(8.1), Status: StatusPass},
		{Index: 5, Name: "check outage", Action: "assert flow ping", Line: 20, Start: at(15), End: at(15), Status: StatusFail,
			Message: "expected max_gap < 3s, seen 4.0s",
			Asserts: []Assert{
				{Expr: "flow ping max_gap < 3s", Line: 21, Passed: false, Expected: "< 3s", Seen: "4.0s"},
				{Expr: "flow ping loss < 50%", Line: 22, Passed: true, Expected: "< 50%", Seen: "28.6%"},
			}},
		{Index: 6, Name: "restore tunnel1", Action: "restore tunnel1", Line: 24, Start: at(15), End: at(15.01), Status: StatusPass},
		{Index: 7, Name: "routes back", Action: "wait cgw route 172.31.0.0/16 via tunnel1", Line: 26, Start: at(15.01), End: at(19), Status: StatusPass},
		{Index: 8, Name: "soak", Action: "sleep 60s", Line: 29, Status: StatusSkipped, Message: "skipped: --quick"},
	}
	f := Flow{Name: "ping", Proto: "icmp", From: "host-a", To: "host-b", Start: at(1), End: at(15),
		MaxGap: 4 * time.Second, MaxGapFrom: at(5), MaxGapTo: at(9)}
	for s := 1; s < 15; s++ {
		b := Bucket{Start: at(float64(s)), Sent: 10, Received: 10}
		if s >= 5 && s < 9 {
			b.Received = 0
		}
		f.Series = append(f.Series, b)
		f.Sent += b.Sent
		f.Received += b.Received
	}
	f.Lost = f.Sent - f.Received
	f.LossPct = 100 * float64(f.Lost) / float64(f.Sent)
	r.Flows = []Flow{f}
	slices.SortStableFunc(r.Events, func(a, b Event) int { return a.Time.Compare(b.Time) })
	r.Artifacts = []Artifact{
		{Name: "cgw.log", Path: "cgw.log", What: "cgw log"},
		{Name: "outside.pcap", Path: "captures/outside.pcap", What: "capture of the outside"},
	}
	return r
}

// abortedRun is a run that failed at setup: no steps, no events, no end.
func abortedRun() *Run {
	return &Run{
		Scenario: "failover-dpd",
		File:     "scenarios/failover-dpd.yaml",
		Start:    t0,
		Error:    "setup: ip netns add vl-cgw: operation not permitted (run as root)",
		Gateways: []string{"cgw", "vgw"},
		Tunnels:  []string{"tunnel1", "tunnel2"},
	}
}
