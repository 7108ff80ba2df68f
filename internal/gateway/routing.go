package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/bgp"
	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/datapath"
	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/routes"
)

// routing connects the route decision (bgp.Speaker: BGP sessions over the
// tunnels' inside addresses, static routes, AWS's preference order) to the
// data path (which tunnel carries each prefix) and to the kernel (which
// prefixes enter the TUN device at all). Route and session changes become
// engine events, so the control API's event stream shows them in order
// with the IKE events.
type routing struct {
	cfg     *gwconfig.Config
	sp      *bgp.Speaker
	dp      *datapath.DataPath // nil without a data path
	eng     *ike.Engine
	log     logrus.FieldLogger
	inside  []datapath.Route // each tunnel's inside /30 stays on its tunnel
	outside []netip.Addr     // peers' outside addresses: never routed into the TUN

	mu     sync.Mutex
	kernel map[netip.Prefix]bool // prefixes we routed into the TUN device

	carry carrying // the tunnels that carry each decided prefix now (carrying.go)

	unsubscribe func()        // stops following the engine's events
	followDone  chan struct{} // closed when follow has returned
}

// routingWanted reports whether the configuration asks for route decisions
// (BGP, or static routes on some tunnel).
func routingWanted(c *gwconfig.Config) bool {
	if c.Routing.Mode == gwconfig.RoutingBGP {
		return true
	}
	for _, t := range c.Tunnels {
		if len(t.StaticRoutes) > 0 {
			return true
		}
	}
	return false
}

// newRouting builds the speaker from the configuration; Start runs it.
func newRouting(c *gwconfig.Config, dp *datapath.DataPath, log logrus.FieldLogger) (*routing, error) {
	r := &routing{cfg: c, dp: dp, log: log.WithField("component", "routing"), kernel: map[netip.Prefix]bool{}}
	var order []string
	var neighbors []bgp.Neighbor
	for i, t := range c.Tunnels {
		order = append(order, t.Name)
		r.outside = append(r.outside, c.IKE.Tunnels[i].RemoteAddr)
		if t.Inside.IsValid() {
			r.inside = append(r.inside, datapath.Route{Prefix: t.Inside, Tunnels: []string{t.Name}})
		}
		if c.Routing.Mode == gwconfig.RoutingBGP && t.PeerASN != 0 {
			neighbors = append(neighbors, bgp.Neighbor{Tunnel: t.Name, Local: t.LocalInside.Addr(), Peer: t.PeerInside,
				PeerASN: t.PeerASN, PeerPort: int(c.BGP.Port), MED: t.MED, Prepend: t.Prepend})
		}
	}
	bc := bgp.Config{ECMP: c.Routing.ECMP, RouteLimit: c.Routing.RouteLimit, Log: r.log}
	if b := c.BGP; b != nil && len(neighbors) > 0 {
		bc.ASN, bc.RouterID, bc.ListenPort = b.ASN, b.RouterID, int(b.Port)
		bc.HoldTime, bc.Keepalive, bc.ConnectRetry = b.HoldTime, b.Keepalive, b.ConnectRetry
		bc.Passive = b.Passive
		bc.Advertise = b.Advertise
	}
	sp, err := bgp.New(bc, neighbors, order)
	if err != nil {
		return nil, fmt.Errorf("bgp: %w", err)
	}
	r.sp = sp
	for _, t := range c.Tunnels {
		for _, p := range t.StaticRoutes {
			if err := sp.AddStatic(p, t.Name); err != nil {
				sp.Stop()
				return nil, fmt.Errorf("static route %s via %s: %w", p, t.Name, err)
			}
		}
	}
	if dp != nil {
		dp.SetRoutes(r.inside)
	}
	return r, nil
}

// start runs the speaker; eng receives the events.
func (r *routing) start(ctx context.Context, eng *ike.Engine) error {
	r.eng = eng
	r.sp.OnChange(func(rs []routes.Route, ch []routes.Change) {
		r.apply(rs, ch)
		r.refreshCarrying(rs)
	})
	r.sp.OnSession(r.onSession)
	evs, unsub := eng.Subscribe()
	r.unsubscribe, r.followDone = unsub, make(chan struct{})
	if err := r.sp.Start(ctx); err != nil {
		if errors.Is(err, syscall.EADDRNOTAVAIL) && r.dp == nil {
			return fmt.Errorf("bgp: %w: the BGP sessions run over the tunnels' inside addresses, which the data path's TUN device carries; add a data_path section (docs/config.md)", err)
		}
		unsub()
		close(r.followDone)
		return fmt.Errorf("bgp: %w", err)
	}
	// The routes decided before the engine was there (static routes) are
	// published as installed, so that events and pictures show them too.
	rs := r.sp.Routes()
	var initial []routes.Change
	for _, x := range rs {
		if len(x.Tunnels) > 0 {
			initial = append(initial, routes.Change{Time: time.Now(), Kind: routes.Installed, Prefix: x.Prefix,
				To: x.ActiveTunnels(), Reason: x.Reason})
		}
	}
	r.apply(rs, initial)
	r.refreshCarrying(rs)
	go r.follow(evs)
	return nil
}

// follow passes on what the IKE layer learns about the BGP neighbors: a
// phase 1 with INITIAL-CONTACT while the engine held nothing else of the
// peer (event detail peer_restarted) means the gateway at the other end
// restarted, so the tunnel's BGP session is stale and is started over at
// once instead of after the hold timer, GoBGP's idle holds and refused
// reconnections (bgp/restart.go). INITIAL-CONTACT alone is not enough: a
// live strongSwan sends it on a reauthentication that collides with our
// rekey, and resetting its live session lost traffic (strongswan-rekey).
func (r *routing) follow(evs <-chan status.Event) {
	defer close(r.followDone)
	for ev := range evs {
		if ev.Type == "phase2-up" || ev.Type == "phase2-down" {
			r.refreshCarrying(r.sp.Routes())
			continue
		}
		if ev.Type != "phase1-up" || ev.Detail["peer_restarted"] != "true" {
			continue
		}
		if !r.hasNeighbor(ev.Tunnel) {
			continue
		}
		if err := r.sp.PeerRestarted(ev.Tunnel, "INITIAL-CONTACT from the peer"); err != nil && !errors.Is(err, bgp.ErrStopped) {
			r.log.WithError(err).WithField("tunnel", ev.Tunnel).Warn("bgp: could not start the session over after the peer restarted")
		}
	}
}

// hasNeighbor reports whether tunnel has a BGP session.
func (r *routing) hasNeighbor(tunnel string) bool {
	for _, t := range r.cfg.Tunnels {
		if t.Name == tunnel {
			return t.PeerASN != 0
		}
	}
	return false
}

// stop ends the speaker and removes the kernel routes it added.
func (r *routing) stop() {
	if r.unsubscribe != nil {
		r.unsubscribe()
		<-r.followDone
	}
	r.sp.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range r.kernel {
		_ = r.kernelRoute(p, false)
	}
	r.kernel = map[netip.Prefix]bool{}
}

// dataPathRoutes turns the decided routes into the data path's: each
// tunnel's inside /30 first and pinned to its tunnel (a learned or static
// route on exactly that prefix must not move the tunnel's own BGP session
// elsewhere), then every decided prefix with its tunnels, only the active
// ones for an ECMP set. want lists the prefixes to route into the kernel.
func dataPathRoutes(inside []datapath.Route, rs []routes.Route) (dr []datapath.Route, want map[netip.Prefix]bool) {
	want = map[netip.Prefix]bool{}
	pinned := map[netip.Prefix]bool{}
	dr = append(dr, inside...)
	for _, x := range inside {
		pinned[x.Prefix] = true
	}
	for _, x := range rs {
		if len(x.Tunnels) == 0 || pinned[x.Prefix] {
			continue
		}
		t := x.Tunnels
		ecmp := x.ECMP && x.Active > 1 && x.Active <= len(t)
		if ecmp {
			t = t[:x.Active]
		}
		dr = append(dr, datapath.Route{Prefix: x.Prefix, Tunnels: append([]string(nil), t...), ECMP: ecmp})
		want[x.Prefix] = true
	}
	return dr, want
}

// apply pushes the decided routes into the data path and the kernel, and
// publishes the changes.
func (r *routing) apply(rs []routes.Route, changes []routes.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dr, want := dataPathRoutes(r.inside, rs)
	if r.dp != nil {
		r.dp.SetRoutes(dr)
		for p := range want {
			if !r.kernel[p] {
				if err := r.kernelRoute(p, true); err != nil {
					r.log.WithError(err).WithField("prefix", p.String()).Warn("route not installed in the kernel")
					continue
				}
				r.kernel[p] = true
			}
		}
		for p := range r.kernel {
			if !want[p] {
				if err := r.kernelRoute(p, false); err != nil {
					r.log.WithError(err).WithField("prefix", p.String()).Warn("kernel route not removed")
				}
				delete(r.kernel, p)
			}
		}
	}
	if r.eng == nil {
		return
	}
	for _, c := range changes {
		d := map[string]string{"kind": string(c.Kind), "prefix": c.Prefix.String()}
		if len(c.From) > 0 || len(c.To) > 0 {
			d["from"], d["to"] = strings.Join(c.From, ","), strings.Join(c.To, ",")
		}
		if c.Reason != "" {
			d["reason"] = c.Reason
		}
		if c.Source != 0 {
			d["source"] = fmt.Sprint(c.Source)
		}
		r.eng.Publish(status.Event{Time: c.Time, Tunnel: c.Tunnel, Type: "route", Detail: d})
	}
}

func (r *routing) onSession(ev bgp.SessionEvent) {
	if r.eng == nil {
		return
	}
	d := map[string]string{"from": string(ev.From), "state": string(ev.To), "peer": ev.Peer.String()}
	if ev.LimitExceeded {
		d["limit_exceeded"] = "true"
	}
	r.eng.Publish(status.Event{Time: ev.Time, Tunnel: ev.Tunnel, Type: "bgp-state", Detail: d})
}

// kernelRoute routes prefix into the TUN device (or removes the route). A
// prefix that contains a peer's outside address is not routed: it would
// carry IKE and ESP into the tunnel itself.
func (r *routing) kernelRoute(p netip.Prefix, add bool) error {
	for _, a := range r.outside {
		if p.Contains(a) {
			if add {
				return fmt.Errorf("%s contains the peer's outside address %s: the data path carries it, but the kernel routes it elsewhere (add narrower routes)", p, a)
			}
			return nil
		}
	}
	if add {
		return datapath.AddRoute(r.cfg.DataPath.TUN, p)
	}
	return datapath.DelRoute(r.cfg.DataPath.TUN, p)
}

// backend is what the control API drives: the engine plus routing. It
// merges the BGP session state into each tunnel's AWS-style status.
type backend struct {
	*ike.Engine
	r *routing
}

var (
	_ control.RoutingBackend   = backend{}
	_ control.BGPStatusBackend = backend{}
	_ control.StatusPager      = backend{}
)

func (b backend) Status() status.Snapshot {
	st := b.Engine.Status()
	b.addBGP(st.Tunnels)
	return st
}

// StatusPage and TunnelStatus are the engine's (control.StatusPager, a
// page or one tunnel instead of all) with the BGP state added as Status
// adds it.
func (b backend) StatusPage(offset, limit int) ike.StatusPage {
	p := b.Engine.StatusPage(offset, limit)
	b.addBGP(p.Tunnels)
	return p
}

func (b backend) TunnelStatus(name string) (ike.TunnelStatus, error) {
	t, err := b.Engine.TunnelStatus(name)
	if err == nil {
		ts := []ike.TunnelStatus{t}
		b.addBGP(ts)
		t = ts[0]
	}
	return t, err
}

// addBGP adds each tunnel's BGP session state and narrows its AWS status.
func (b backend) addBGP(tunnels []ike.TunnelStatus) {
	if b.r == nil {
		return
	}
	nbs := map[string]bgp.NeighborStatus{}
	for _, n := range b.r.sp.Status().Neighbors {
		nbs[n.Tunnel] = n
	}
	for i := range tunnels {
		tu := &tunnels[i]
		n, ok := nbs[tu.Name]
		if !ok {
			continue
		}
		tu.BGPState, tu.AcceptedRouteCount = string(n.State), n.AcceptedRouteCount
		// AWS TunnelState with BGP: UP only while the BGP session is
		// established; lastStatusChange follows IKE, IPsec and BGP changes.
		if tu.Status == "UP" && n.State != bgp.Established {
			tu.Status, tu.StatusMessage = "DOWN", "IPSEC IS UP, BGP IS "+strings.ToUpper(string(n.State))
		}
		if n.LastChange.After(tu.LastStatusChange) {
			tu.LastStatusChange = n.LastChange
		}
	}
}

func (b backend) RoutingStatus() any {
	if b.r == nil {
		return nil
	}
	type view struct {
		Mode string `json:"mode"`
		bgp.Status
		Routes []routeView `json:"routes"` // the decided routes with the carrying tunnels
	}
	st := b.r.sp.Status()
	return view{Mode: string(b.r.cfg.Routing.Mode), Status: st, Routes: routeViews(st.Routes, b.r.carryingNow(st.Routes))}
}

// BGPStatus gives the metrics collector the speaker's status.
func (b backend) BGPStatus() (bgp.Status, bool) {
	if b.r == nil {
		return bgp.Status{}, false
	}
	return b.r.sp.Status(), true
}

func (b backend) Advertise(p netip.Prefix) error {
	if b.r == nil {
		return control.ErrNoRouting
	}
	return b.r.sp.Advertise(p)
}

func (b backend) Withdraw(p netip.Prefix) error {
	if b.r == nil {
		return control.ErrNoRouting
	}
	return b.r.sp.Withdraw(p)
}

func (b backend) SetNeighborPolicy(tunnel string, med uint32, prepend int) error {
	if b.r == nil {
		return control.ErrNoRouting
	}
	known := false
	for _, t := range b.r.cfg.Tunnels {
		known = known || t.Name == tunnel
	}
	if !known {
		return fmt.Errorf("%w %q", status.ErrUnknownTunnel, tunnel)
	}
	return b.r.sp.SetNeighborPolicy(tunnel, med, prepend)
}
