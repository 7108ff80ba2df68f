package scenarios

import (
	"context"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/bird"
	"github.com/vpnlab/vpnlab/internal/strongswan"
	"github.com/vpnlab/vpnlab/scenarios/report"
)

// A foreign customer gateway's state comes from its own tools: `swanctl
// --list-sas` of each tunnel's charon and BIRD's `show protocols` and `show
// route`, polled (at most every foreignPoll). The runner turns it into the
// cgw's status and routing (as a vpnlab gateway's control API would give
// them, for the fields strongSwan reports: foreignFields) and, by comparing
// two polls, into events marked foreign (detail foreign=strongswan|bird).

const foreignPoll = 300 * time.Millisecond

// foreignState is one poll's result.
type foreignState struct {
	at      time.Time
	status  *status.Snapshot
	routing *routingView
}

// foreignTunnelKey is what the events compare between two polls.
type foreignTunnelKey struct {
	phase1, bgp, status string
	ikeSPIs             string               // the current IKE_SA's
	children            map[string]status.SA // by inbound SPI
}

// poll returns the gateway's state, polling the daemons unless the last
// poll is recent, and the events since the last poll.
func (f *foreignCGW) poll(ctx context.Context) (*status.Snapshot, *routingView, []report.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last != nil && time.Since(f.last.at) < foreignPoll {
		return f.last.status, f.last.routing, nil
	}
	if len(f.charons) == 0 {
		f.last, f.prev = nil, nil
		return nil, nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var protos []bird.Protocol
	var routes []bird.Route
	var frrSessions map[string]string
	var protosErr, routesErr error
	if f.bird != nil {
		protos, protosErr = f.bird.Protocols(ctx)
		routes, routesErr = f.bird.Routes(ctx, "")
	}
	if f.frr != nil {
		frrSessions = f.frr.sessions(ctx)
	}
	st := &status.Snapshot{}
	keys := map[string]foreignTunnelKey{}
	for _, tn := range f.tunnels {
		c := f.charons[tn]
		sas, err := c.ListSAs(ctx)
		prev := f.lastTunnel(tn)
		ts := foreignTunnelStatus(tn, sas, err)
		if err != nil && prev != nil {
			// A query that failed (swanctl timed out on a loaded
			// machine) says nothing about the tunnel: keep what the last
			// poll saw rather than report it down.
			ts = *prev
			ts.LastError = "swanctl --list-sas failed, state of the last poll: " + err.Error()
		}
		switch f.bgp {
		case "bird":
			ts.BGPState = "Idle"
			if p, ok := bird.FindProtocol(protos, birdProtocol(tn)); ok {
				ts.BGPState = bgpWord(p)
			} else if protosErr != nil && prev != nil {
				ts.BGPState = prev.BGPState // birdc failed: as last seen
			}
		case "frr":
			ts.BGPState = frrState(frrSessions[f.vgwInside[tn].String()])
		}
		ts.Status, ts.StatusMessage = "DOWN", "IPSEC IS DOWN"
		switch {
		case ts.Phase2State == "Established" && (f.bgp == "none" || ts.BGPState == "Established"):
			ts.Status, ts.StatusMessage = "UP", ""
		case ts.Phase2State == "Established":
			ts.StatusMessage = "IPSEC IS UP, BGP IS " + strings.ToUpper(ts.BGPState)
		}
		st.Tunnels = append(st.Tunnels, ts)
		k := foreignTunnelKey{phase1: ts.Phase1State, bgp: ts.BGPState, status: ts.Status, ikeSPIs: ts.ICookie + "/" + ts.RCookie, children: map[string]status.SA{}}
		for _, sa := range ts.SAs {
			k.children[sa.InboundSPI] = sa
		}
		keys[tn] = k
	}
	var rv *routingView
	if f.bird != nil {
		rv = birdRouting(routes)
		if routesErr != nil && f.last != nil {
			rv = f.last.routing // birdc failed: as last seen
		}
	}
	if f.frr != nil {
		peers := map[string]string{}
		for tn, a := range f.vgwInside {
			peers[a.String()] = tn
		}
		rv = f.frr.routing(ctx, peers)
	}
	evs := foreignEvents(f.prev, keys, f.tunnels, f.bgp)
	f.prev = keys
	f.last = &foreignState{at: time.Now(), status: st, routing: rv}
	return st, rv, evs
}

// lastTunnel is the tunnel's status from the last poll, or nil.
func (f *foreignCGW) lastTunnel(tn string) *status.Tunnel {
	if f.last == nil || f.last.status == nil {
		return nil
	}
	for i := range f.last.status.Tunnels {
		if f.last.status.Tunnels[i].Name == tn {
			return &f.last.status.Tunnels[i]
		}
	}
	return nil
}

// foreignTunnelStatus is a tunnel's status from its charon's IKE_SAs (the
// connection is named as the tunnel).
func foreignTunnelStatus(tn string, sas []strongswan.IKESA, err error) status.Tunnel {
	ts := status.Tunnel{Name: tn, Phase1State: "Down", Phase2State: "Down", DPDState: "off", SAs: []status.SA{}}
	if err != nil {
		ts.LastError = err.Error()
	}
	var cur *strongswan.IKESA
	for i := range sas {
		s := &sas[i]
		if s.Name != tn {
			continue
		}
		if cur == nil || rank(s.State) > rank(cur.State) || (rank(s.State) == rank(cur.State) && s.UniqueID > cur.UniqueID) {
			cur = s
		}
		for _, ch := range s.Children {
			if ch.State != "INSTALLED" && ch.State != "REKEYING" {
				continue
			}
			ts.SAs = append(ts.SAs, foreignSA(ch))
			ts.DataIn += ch.BytesIn
			ts.DataOut += ch.BytesOut
		}
	}
	sort.Slice(ts.SAs, func(i, j int) bool { return ts.SAs[i].Established.Before(ts.SAs[j].Established) })
	if len(ts.SAs) > 0 {
		ts.Phase2State = "Established"
	}
	if cur == nil {
		return ts
	}
	switch cur.State {
	case "ESTABLISHED":
		ts.Phase1State = "Established"
		ts.Proposal = cur.Proposal()
	case "CONNECTING", "CREATED":
		ts.Phase1State = "Negotiating"
	case "REKEYING", "REKEYED":
		ts.Phase1State = "Rekeying"
	}
	ts.Role = map[bool]string{true: "initiator", false: "responder"}[cur.Initiator]
	ts.ICookie, ts.RCookie = cur.InitiatorSPI, cur.ResponderSPI
	ts.NATDetected = cur.Raw["nat-local"] == "yes" || (cur.NATRemote && !cur.NATFake)
	return ts
}

func rank(state string) int {
	switch state {
	case "ESTABLISHED":
		return 3
	case "REKEYING", "REKEYED":
		return 2
	case "CONNECTING", "CREATED":
		return 1
	}
	return 0
}

func foreignSA(ch strongswan.ChildSA) status.SA {
	est := time.Now()
	if s, err := strconv.Atoi(ch.Raw["install-time"]); err == nil {
		est = est.Add(-time.Duration(s) * time.Second)
	}
	return status.SA{
		Protocol: strings.ToLower(ch.Protocol), Mode: strings.ToLower(ch.Mode), UDPEncap: ch.Encap,
		InboundSPI: ch.SPIIn, OutboundSPI: ch.SPIOut, Proposal: ch.Proposal(),
		LocalTS: strings.Join(ch.LocalTS, ","), RemoteTS: strings.Join(ch.RemoteTS, ","), Established: est,
		Counters: &childsa.Counters{PacketsIn: ch.PacketsIn, BytesIn: ch.BytesIn, PacketsOut: ch.PacketsOut, BytesOut: ch.BytesOut},
	}
}

var birdNameRE = regexp.MustCompile(`[^A-Za-z0-9_]`)

// birdProtocol is the BGP protocol vpnlab export names a tunnel's session.
func birdProtocol(tunnel string) string { return "aws_" + birdNameRE.ReplaceAllString(tunnel, "_") }

// bgpWord is a BIRD BGP protocol's state in the words of the BGP FSM
// (Established, Active, Connect, OpenSent, OpenConfirm, Idle).
func bgpWord(p bird.Protocol) string {
	if p.Established() {
		return "Established"
	}
	if f := strings.Fields(p.Info); len(f) > 0 && p.State != "down" {
		return f[0]
	}
	return "Idle"
}

// birdRouting is the routing view of BIRD's table: the BGP paths by
// prefix, the best one first.
func birdRouting(routes []bird.Route) *routingView {
	rv := &routingView{Mode: "bgp"}
	idx := map[string]int{}
	for _, r := range routes {
		tn, ok := strings.CutPrefix(r.Protocol, "aws_")
		if !ok {
			continue
		}
		i, seen := idx[r.Prefix]
		if !seen {
			i = len(rv.Routes)
			idx[r.Prefix] = i
			rv.Routes = append(rv.Routes, routeEntry{Prefix: r.Prefix, Active: 1})
		}
		e := &rv.Routes[i]
		if r.Primary {
			e.Tunnels = append([]string{tn}, e.Tunnels...)
		} else {
			e.Tunnels = append(e.Tunnels, tn)
		}
	}
	return rv
}

// foreignEvents compares two polls.
func foreignEvents(prev, now map[string]foreignTunnelKey, tunnels []string, speaker string) []report.Event {
	var evs []report.Event
	at := time.Now()
	add := func(tn, typ, src string, d map[string]string) {
		d["foreign"] = src
		evs = append(evs, report.Event{Time: at, Source: "cgw", Tunnel: tn, Type: typ, Detail: d})
	}
	for _, tn := range tunnels {
		p, n := prev[tn], now[tn]
		if p.phase1 == "" {
			p.phase1, p.status = "Down", "DOWN"
		}
		if p.phase1 == "Established" && n.phase1 == "Established" && p.ikeSPIs != n.ikeSPIs {
			// a new IKE_SA (a rekey or reauthentication) took over
			add(tn, "phase1-up", "strongswan", map[string]string{"from": p.phase1, "spis": n.ikeSPIs, "replaces": p.ikeSPIs})
		}
		if p.phase1 != n.phase1 {
			switch {
			case n.phase1 == "Established":
				add(tn, "phase1-up", "strongswan", map[string]string{"from": p.phase1, "spis": n.ikeSPIs})
			case p.phase1 == "Established" || n.phase1 == "Down":
				add(tn, "phase1-down", "strongswan", map[string]string{"state": n.phase1})
			}
		}
		for spi, sa := range n.children {
			if _, ok := p.children[spi]; !ok {
				add(tn, "phase2-up", "strongswan", map[string]string{"spi_in": sa.InboundSPI, "spi_out": sa.OutboundSPI, "proposal": sa.Proposal, "ts": sa.LocalTS + " === " + sa.RemoteTS})
			}
		}
		for spi := range p.children {
			if _, ok := n.children[spi]; !ok {
				add(tn, "phase2-down", "strongswan", map[string]string{"spi_in": spi})
			}
		}
		if n.bgp != "" && p.bgp != n.bgp && !(p.bgp == "" && n.bgp == "Idle") {
			add(tn, "bgp-state", speaker, map[string]string{"from": cmpOr(p.bgp, "Idle"), "state": n.bgp})
		}
		if p.status != n.status {
			add(tn, "tunnel-status", "strongswan", map[string]string{"status": n.status})
		}
	}
	return evs
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
