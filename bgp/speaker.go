package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/routes"
)

// ErrStopped is returned by calls on a stopped Speaker.
var ErrStopped = errors.New("bgp: speaker stopped")

// recentChanges is how many route changes Status keeps.
const recentChanges = 256

// Speaker is one gateway's BGP speaker and route decision.
type Speaker struct {
	cfg       Config
	log       logrus.FieldLogger
	neighbors []*neighbor
	byTunnel  map[string]*neighbor
	byPeer    map[string]*neighbor // by peer address, as GoBGP names peers
	table     *routes.Table

	// The loop goroutine runs every closure posted on inbox, in order, and
	// then publishes the table's changes.
	inbox    chan func()
	done     chan struct{} // closed by Stop
	loopDone chan struct{}

	server      *server.BgpServer // nil until Start, and in static mode
	cancelWatch context.CancelFunc
	stopOnce    sync.Once
	policyMu    sync.Mutex // serialises export-policy rebuilds

	mu         sync.Mutex // guards what follows
	started    bool
	stopped    bool
	routes     []routes.Route
	recent     []routes.Change
	changeN    map[routes.ChangeKind]uint64 // every change since New, by kind
	advertised map[netip.Prefix][]byte      // prefix -> GoBGP path UUID (nil until sent)
	onChange   []func([]routes.Route, []routes.Change)
	onSession  []func(SessionEvent)
}

// SessionEvent reports a neighbor's session state change.
type SessionEvent struct {
	Time   time.Time    `json:"time"`
	Tunnel string       `json:"tunnel"`
	Peer   netip.Addr   `json:"peer"`
	From   SessionState `json:"from"`
	To     SessionState `json:"to"`
	// LimitExceeded: the session went down because the neighbor sent more
	// prefixes than the route limit.
	LimitExceeded bool `json:"limit_exceeded,omitempty"`
}

// New checks the configuration and returns a Speaker. tunnelOrder is the
// final tie-break of route selection (nil: the neighbors' order) and must
// name every neighbor's tunnel; with no neighbors (static routing) it names
// the tunnels static routes may use. Call Stop to release it.
func New(cfg Config, neighbors []Neighbor, tunnelOrder []string) (*Speaker, error) {
	neighbors = slices.Clone(neighbors)
	cfg.Advertise = slices.Clone(cfg.Advertise)
	cfg.ListenAddresses = slices.Clone(cfg.ListenAddresses)
	order, err := cfg.checked(neighbors, tunnelOrder)
	if err != nil {
		return nil, err
	}
	table, err := routes.New(order, routes.Config{ECMP: cfg.ECMP, Limit: cfg.RouteLimit})
	if err != nil {
		return nil, fmt.Errorf("bgp: %w", err)
	}
	s := &Speaker{
		cfg:        cfg,
		log:        cfg.Log,
		byTunnel:   make(map[string]*neighbor),
		byPeer:     make(map[string]*neighbor),
		table:      table,
		inbox:      make(chan func(), 1024),
		done:       make(chan struct{}),
		loopDone:   make(chan struct{}),
		advertised: make(map[netip.Prefix][]byte),
	}
	for _, n := range neighbors {
		nb := &neighbor{n: n, state: Idle}
		s.neighbors = append(s.neighbors, nb)
		s.byTunnel[n.Tunnel] = nb
		s.byPeer[n.Peer.String()] = nb
	}
	for _, p := range cfg.Advertise {
		s.advertised[p.Masked()] = nil
	}
	go s.loop()
	return s, nil
}

// Start starts the BGP sessions (nothing to start in static mode). ctx
// bounds the start-up; cancelling it later stops the speaker.
func (s *Speaker) Start(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.stopped:
		s.mu.Unlock()
		return ErrStopped
	case s.started:
		s.mu.Unlock()
		return errors.New("bgp: speaker already started")
	}
	s.started = true
	s.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			s.Stop()
		case <-s.done:
		}
	}()
	if len(s.neighbors) == 0 {
		return nil
	}
	if err := s.startServer(ctx); err != nil {
		s.Stop()
		return err
	}
	return nil
}

func (s *Speaker) startServer(ctx context.Context) error {
	// Hold policyMu so that SetNeighborPolicy waits for the whole set-up.
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	srv := server.NewBgpServer(server.LoggerOption(&logAdapter{log: s.log, tunnelOf: s.tunnelOf}))
	go srv.Serve()
	s.mu.Lock()
	s.server = srv
	s.mu.Unlock()

	listen := make([]string, len(s.cfg.ListenAddresses))
	for i, a := range s.cfg.ListenAddresses {
		listen[i] = a.String()
	}
	port := int32(s.cfg.ListenPort)
	if port < 0 {
		port = -1
	}
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: s.cfg.ASN, RouterId: s.cfg.RouterID.String(), ListenPort: port, ListenAddresses: listen,
	}})
	if err != nil {
		return fmt.Errorf("bgp: starting GoBGP: %w", err)
	}

	watchCtx, cancel := context.WithCancel(context.Background())
	s.cancelWatch = cancel
	err = srv.WatchEvent(watchCtx, &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_ADJIN, Init: true},
		}},
	}, func(r *api.WatchEventResponse) { s.post(func() { s.handleWatch(r) }) })
	if err != nil {
		return fmt.Errorf("bgp: watching GoBGP: %w", err)
	}

	if err := s.installPolicies(ctx); err != nil {
		return err
	}
	for _, nb := range s.neighbors {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.peerConfig(nb.n)}); err != nil {
			return fmt.Errorf("bgp: neighbor %s: %w", nb.n.Tunnel, err)
		}
	}
	s.mu.Lock()
	prefixes := make([]netip.Prefix, 0, len(s.advertised))
	for p := range s.advertised {
		prefixes = append(prefixes, p)
	}
	s.mu.Unlock()
	for _, p := range prefixes {
		if err := s.Advertise(p); err != nil {
			return err
		}
	}
	return nil
}

// peerConfig is GoBGP's view of a neighbor.
func (s *Speaker) peerConfig(n Neighbor) *api.Peer {
	seconds := func(d time.Duration) uint64 { return uint64(d / time.Second) }
	port := n.PeerPort
	if port == 0 {
		port = DefaultListenPort
	}
	afi := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: ipv4Unicast, Enabled: true}}
	if s.cfg.RouteLimit > 0 {
		afi.PrefixLimits = &api.PrefixLimit{Family: ipv4Unicast, MaxPrefixes: uint32(s.cfg.RouteLimit)}
	}
	return &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Peer.String(), PeerAsn: n.PeerASN, Description: n.Tunnel},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          seconds(s.cfg.HoldTime),
			KeepaliveInterval: seconds(s.cfg.Keepalive),
			ConnectRetry:      seconds(s.cfg.ConnectRetry),
		}},
		Transport: &api.Transport{LocalAddress: n.Local.String(), RemotePort: uint32(port), PassiveMode: s.cfg.Passive},
		AfiSafis:  []*api.AfiSafi{afi},
	}
}

// Stop closes every session (NOTIFICATION Cease), withdraws what they taught
// us, reports that last change and ends the speaker. Not from a callback.
func (s *Speaker) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		srv := s.server
		s.mu.Unlock()
		if srv != nil {
			srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		}
		if s.cancelWatch != nil { // nil when GoBGP failed to start
			s.cancelWatch()
		}
		s.post(func() {
			for _, nb := range s.neighbors {
				nb.stopRestart()
				s.table.WithdrawTunnel(nb.n.Tunnel)
			}
		})
		close(s.done)
		<-s.loopDone
	})
}

func (s *Speaker) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started && !s.stopped && s.server != nil
}

func (s *Speaker) tunnelOf(addr string) string {
	if nb := s.byPeer[addr]; nb != nil {
		return nb.n.Tunnel
	}
	return ""
}

// DisableNeighbor closes a tunnel's session (NOTIFICATION Cease,
// administrative shutdown) and keeps it down until EnableNeighbor.
func (s *Speaker) DisableNeighbor(tunnel, reason string) error {
	nb := s.byTunnel[tunnel]
	if nb == nil {
		return fmt.Errorf("bgp: no neighbor for tunnel %s", tunnel)
	}
	if !s.running() {
		return errors.New("bgp: speaker not running")
	}
	return s.server.DisablePeer(context.Background(), &api.DisablePeerRequest{Address: nb.n.Peer.String(), Communication: reason})
}

// EnableNeighbor lets a disabled (or over-limit) tunnel's session come back.
func (s *Speaker) EnableNeighbor(tunnel string) error {
	nb := s.byTunnel[tunnel]
	if nb == nil {
		return fmt.Errorf("bgp: no neighbor for tunnel %s", tunnel)
	}
	if !s.running() {
		return errors.New("bgp: speaker not running")
	}
	nb.stopRestart()
	if err := s.server.EnablePeer(context.Background(), &api.EnablePeerRequest{Address: nb.n.Peer.String()}); err != nil {
		return err
	}
	nb.enabled()
	return nil
}
