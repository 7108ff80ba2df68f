package control

import (
	"maps"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vpnlab/vpnlab/bgp"
	"github.com/vpnlab/vpnlab/ike/status"
)

// Prometheus metrics (docs/metrics.md). The Collector owns no state: every
// scrape reads the engine's Status() (tunnels, IKE counters, the data
// path's per-SA counters) and, on a gateway with routing, the BGP speaker's
// status, and turns them into metrics. Nothing is counted per packet here.

// BGPStatusBackend is implemented by a Backend whose gateway runs the BGP
// speaker (or static routes); the collector adds the routing metrics.
type BGPStatusBackend interface {
	// BGPStatus returns the speaker's status; ok is false without routing.
	BGPStatus() (st bgp.Status, ok bool)
}

// Metric name prefix.
const metricsNamespace = "vpnlab"

// Phase states (AWS wording), DPD and BGP states: each is a state set, one
// series per possible state with value 1 for the current one.
var (
	phaseStates = []string{"Established", "Rekeying", "Negotiating", "Down"}
	dpdStates   = []string{"off", "alive", "probing", "dead"}
	bgpStates   = []bgp.SessionState{bgp.Idle, bgp.Connect, bgp.Active, bgp.OpenSent, bgp.OpenConfirm, bgp.Established}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(metricsNamespace+"_"+name, help, labels, nil)
}

// Collector is a prometheus.Collector over a Backend.
type Collector struct {
	b Backend

	tunnelUp, tunnelChange, phase1, phase2, dpdState, saPairs *prometheus.Desc
	bytes, packets, drops, dpDrops                            *prometheus.Desc
	dpdProbes, dpdTimeouts, rekeys, collisions                *prometheus.Desc
	messages, exchanges, retransmits, notifies, duplicates    *prometheus.Desc
	ikeReceived, ikeDropped, halfOpen, halfOpenLimit, unauthN *prometheus.Desc
	bgpState, bgpAccepted, bgpAdvertised, bgpFlaps, bgpLimit  *prometheus.Desc
	routes, routesActive, routeChanges                        *prometheus.Desc
}

// NewCollector returns the collector of b's metrics.
func NewCollector(b Backend) *Collector {
	t := "tunnel"
	return &Collector{
		b:             b,
		tunnelUp:      desc("tunnel_up", "1 while the tunnel is UP as AWS's TunnelState counts it: an IPsec SA pair installed and, with BGP, the session Established.", t),
		tunnelChange:  desc("tunnel_last_status_change_timestamp_seconds", "When IKE, IPsec or BGP state of the tunnel last changed (AWS lastStatusChange), Unix time.", t),
		phase1:        desc("tunnel_phase1_state", "IKE phase 1 state (AWS TunnelIKEPhase1State): 1 for the current state.", t, "state"),
		phase2:        desc("tunnel_phase2_state", "IKE phase 2 state (AWS TunnelIKEPhase2State): 1 for the current state.", t, "state"),
		dpdState:      desc("tunnel_dpd_state", "Dead peer detection (RFC 3706) state: 1 for the current state.", t, "state"),
		saPairs:       desc("tunnel_ipsec_sa_pairs", "IPsec SA pairs installed on the tunnel (2 during a make-before-break rekey).", t),
		bytes:         desc("ipsec_bytes_total", "Payload bytes over every IPsec SA the tunnel has had: in after decryption, out before encryption (AWS TunnelDataIn/TunnelDataOut).", t, "direction"),
		packets:       desc("ipsec_packets_total", "Packets accepted inbound and protected outbound over every IPsec SA the tunnel has had.", t, "direction"),
		drops:         desc("ipsec_drops_total", "Packets of the tunnel's IPsec SAs the data path dropped, by reason (replay: duplicate or left of the anti-replay window).", t, "reason"),
		dpDrops:       desc("datapath_drops_total", "Data-path drops that belong to no SA (unknown SPI, no route, malformed, not IP, TUN write error), by reason.", "reason"),
		dpdProbes:     desc("dpd_probes_total", "DPD R-U-THERE messages sent.", t),
		dpdTimeouts:   desc("dpd_timeouts_total", "Times the peer was declared dead by DPD.", t),
		rekeys:        desc("ike_rekeys_total", "Completed rekeys (either side started them), by phase: 1 ISAKMP SA, 2 IPsec SA pair.", t, "phase"),
		collisions:    desc("ike_phase1_collisions_total", "IKEv1 ISAKMP SAs negotiated at once from both sides: the one with the lower cookies was deleted (on both sides the same one).", t),
		messages:      desc("ike_messages_total", "IKE messages of the tunnel by exchange: sent (every datagram, retransmissions included) and received (before decryption and checks).", t, "exchange", "direction"),
		exchanges:     desc("ike_exchanges_total", "IKE negotiations by exchange and result: completed (phase 1 established, IPsec SA pair installed; IKEv2: IKE_SA_INIT done, IKE SA established) or failed.", t, "exchange", "result"),
		retransmits:   desc("ike_retransmissions_total", "IKE messages retransmitted after no answer came in time, by exchange.", t, "exchange"),
		notifies:      desc("ike_notifies_total", "ISAKMP Notify payloads sent and received.", t, "direction"),
		duplicates:    desc("ike_duplicates_answered_total", "Retransmitted requests of the peer answered again with the cached reply.", t),
		ikeReceived:   desc("ike_datagrams_received_total", "IKE datagrams received on every socket, before decoding."),
		ikeDropped:    desc("ike_datagrams_dropped_total", "IKE datagrams dropped before they reached a tunnel, by reason.", "reason"),
		halfOpen:      desc("ike_half_open_sas", "Responder ISAKMP SAs whose phase 1 has not completed."),
		halfOpenLimit: desc("ike_half_open_sas_limit", "The engine-wide bound on half-open responder ISAKMP SAs in force."),
		unauthN:       desc("ike_unauthenticated_notifies_total", "Plaintext (unauthenticated) error notifies that did not end a negotiation at once."),
		bgpState:      desc("bgp_session_state", "The tunnel's BGP session state (RFC 4271): 1 for the current state.", t, "state"),
		bgpAccepted:   desc("bgp_accepted_routes", "Prefixes accepted from the tunnel's BGP neighbor (AWS acceptedRouteCount).", t),
		bgpAdvertised: desc("bgp_advertised_routes", "Prefixes advertised to the tunnel's BGP neighbor.", t),
		bgpFlaps:      desc("bgp_session_flaps_total", "Times the tunnel's BGP session left Established.", t),
		bgpLimit:      desc("bgp_route_limit_exceeded_total", "Times the neighbor sent more prefixes than the route limit (session reset).", t),
		routes:        desc("routes", "Prefixes in the route table (BGP and static)."),
		routesActive:  desc("routes_active", "Prefixes whose traffic the tunnel carries now (active in the route decision).", t),
		routeChanges:  desc("route_changes_total", "Route table changes, by kind (learned, updated, withdrawn, installed, removed, best-moved, limit-exceeded).", "kind"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.tunnelUp, c.tunnelChange, c.phase1, c.phase2, c.dpdState, c.saPairs,
		c.bytes, c.packets, c.drops, c.dpDrops, c.dpdProbes, c.dpdTimeouts, c.rekeys, c.collisions,
		c.messages, c.exchanges, c.retransmits, c.notifies, c.duplicates,
		c.ikeReceived, c.ikeDropped, c.halfOpen, c.halfOpenLimit, c.unauthN,
		c.bgpState, c.bgpAccepted, c.bgpAdvertised, c.bgpFlaps, c.bgpLimit,
		c.routes, c.routesActive, c.routeChanges,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Status() (and one BGP
// status) per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Status()
	for i := range st.Tunnels {
		c.collectTunnel(ch, &st.Tunnels[i])
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, reason := range sortedKeys(st.DataPathDrops) {
		counter(c.dpDrops, st.DataPathDrops[reason], reason)
	}
	ec := st.Counters
	counter(c.ikeReceived, ec.Received)
	counter(c.ikeDropped, ec.Malformed, "malformed")
	counter(c.ikeDropped, ec.UnknownCookie, "unknown-cookie")
	counter(c.ikeDropped, ec.UnknownPeer, "unknown-peer")
	// HalfOpenRefused counts both bounds; the reasons stay disjoint.
	counter(c.ikeDropped, ec.HalfOpenRefused-min(ec.HalfOpenPeerRefused, ec.HalfOpenRefused), "half-open-limit")
	counter(c.ikeDropped, ec.HalfOpenPeerRefused, "half-open-peer-limit")
	counter(c.ikeDropped, ec.ZeroCookie, "zero-cookie")
	counter(c.ikeDropped, ec.CookieMismatch, "cookie-mismatch")
	counter(c.unauthN, ec.UnauthenticatedNotifies)
	ch <- prometheus.MustNewConstMetric(c.halfOpen, prometheus.GaugeValue, float64(ec.HalfOpen))
	ch <- prometheus.MustNewConstMetric(c.halfOpenLimit, prometheus.GaugeValue, float64(ec.HalfOpenLimit))
	if rb, ok := c.b.(BGPStatusBackend); ok {
		if bs, ok := rb.BGPStatus(); ok {
			c.collectRouting(ch, &bs)
		}
	}
}

func (c *Collector) collectTunnel(ch chan<- prometheus.Metric, t *status.Tunnel) {
	n := t.Name
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{n}, labels...)...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{n}, labels...)...)
	}
	gauge(c.tunnelUp, b2f(t.Status == "UP"))
	if !t.LastStatusChange.IsZero() {
		gauge(c.tunnelChange, float64(t.LastStatusChange.UnixNano())/1e9)
	}
	for _, s := range phaseStates {
		gauge(c.phase1, b2f(t.Phase1State == s), s)
		gauge(c.phase2, b2f(t.Phase2State == s), s)
	}
	for _, s := range dpdStates {
		gauge(c.dpdState, b2f(t.DPDState == s), s)
	}
	gauge(c.saPairs, float64(len(t.SAs)))
	counter(c.bytes, t.DataIn, "in")
	counter(c.bytes, t.DataOut, "out")
	counter(c.packets, t.PacketsIn, "in")
	counter(c.packets, t.PacketsOut, "out")
	for _, reason := range sortedKeys(t.Drops) {
		counter(c.drops, t.Drops[reason], reason)
	}
	k := t.Counters
	counter(c.dpdProbes, k.DPDProbes)
	counter(c.dpdTimeouts, k.DPDTimeouts)
	counter(c.rekeys, k.Phase1Rekeys, "1")
	counter(c.rekeys, k.Phase2Rekeys, "2")
	counter(c.collisions, k.Phase1Collisions)
	for _, x := range []struct {
		name    string
		c       status.ExchangeCount
		outcome bool // negotiations with a result (ike_exchanges_total)
	}{{"main", k.Exchanges.Main, true}, {"aggressive", k.Exchanges.Aggressive, true}, {"quick", k.Exchanges.Quick, true},
		{"informational", k.Exchanges.Informational, false},
		{"ike_sa_init", k.Exchanges.IKESAInit, true}, {"ike_auth", k.Exchanges.IKEAuth, true},
		{"create_child_sa", k.Exchanges.CreateChildSA, false}, {"informational_v2", k.Exchanges.InformationalV2, false}} {
		counter(c.messages, x.c.Sent, x.name, "sent")
		counter(c.messages, x.c.Received, x.name, "received")
		counter(c.retransmits, x.c.Retransmits, x.name)
		if x.outcome {
			counter(c.exchanges, x.c.Completed, x.name, "completed")
			counter(c.exchanges, x.c.Failed, x.name, "failed")
		}
	}
	counter(c.notifies, k.NotifiesSent, "sent")
	counter(c.notifies, k.NotifiesReceived, "received")
	counter(c.duplicates, k.DuplicatesAnswered)
}

func (c *Collector) collectRouting(ch chan<- prometheus.Metric, bs *bgp.Status) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, nb := range bs.Neighbors {
		for _, s := range bgpStates {
			gauge(c.bgpState, b2f(nb.State == s), nb.Tunnel, string(s))
		}
		gauge(c.bgpAccepted, float64(nb.AcceptedRouteCount), nb.Tunnel)
		gauge(c.bgpAdvertised, float64(len(nb.Advertised)), nb.Tunnel)
		counter(c.bgpFlaps, uint64(max(nb.Flaps, 0)), nb.Tunnel)
		counter(c.bgpLimit, uint64(max(nb.LimitExceeded, 0)), nb.Tunnel)
	}
	gauge(c.routes, float64(len(bs.Routes)))
	active := map[string]int{}
	for _, nb := range bs.Neighbors {
		active[nb.Tunnel] = 0
	}
	for i := range bs.Routes {
		for _, t := range bs.Routes[i].ActiveTunnels() {
			active[t]++
		}
	}
	for _, t := range sortedKeys(active) {
		gauge(c.routesActive, float64(active[t]), t)
	}
	for _, k := range sortedKeys(bs.ChangeCounts) {
		counter(c.routeChanges, bs.ChangeCounts[k], string(k))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// MetricsHandler serves b's metrics, plus the Go runtime's and the
// process's, in the Prometheus text format (or OpenMetrics when asked).
// Each handler has its own registry: nothing global.
func MetricsHandler(b Backend, log interface{ Println(...any) }) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(b), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := promhttp.HandlerOpts{EnableOpenMetrics: true}
	if log != nil {
		opts.ErrorLog = log
	}
	return promhttp.HandlerFor(reg, opts)
}

// sortedKeys returns m's keys in order, so a scrape lists series stably.
func sortedKeys[K ~string, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}
