package ike

// The engine is the IKEv1 control plane of one gateway process.
//
// Flow of a message (see docs/ARCHITECTURE.md):
//
//  1. socket goroutine (routineReceive): one per bound UDP socket (500 and
//     4500 per local address). It strips the non-ESP marker on 4500, drops
//     keepalives and ESP (the data path owns those later), and posts the
//     datagram to the engine loop.
//  2. engine loop (routineLoop): the single owner of all engine state. It
//     decodes the header, finds the ISAKMP SA by cookies (or creates one as
//     responder for a first message), and hands the message to the exchange
//     that owns it: main mode, aggressive mode, quick mode or informational.
//  3. the exchange decrypts, checks, builds and sends the reply, and on
//     completion hands negotiated SAs to the DataPath and emits events.
//
// Timers (retransmission, half-open expiry, rekey, lifetime expiry) are
// time.AfterFunc callbacks that post a closure to the loop, so every piece of
// state is touched only by the loop goroutine.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/ike/sock"
)

// Defaults for Config fields left zero.
const (
	DefaultRetransmitTimeout = 4 * time.Second // strongSwan's retransmit_timeout
	DefaultRetransmitBase    = 1.8
	DefaultRetransmitTries   = 5
	DefaultMaxHalfOpen       = 1024
	// halfOpenTimeout is how long a responder keeps an unfinished phase 1.
	halfOpenTimeout = 30 * time.Second
	// restartDelay is the pause before a startup-action-start tunnel tries
	// phase 1 again after a failure.
	restartDelay = 5 * time.Second
)

// Engine runs the IKEv1 control plane for a set of tunnels.
type Engine struct {
	cfg    Config
	log    logrus.FieldLogger
	dp     DataPath
	klog   KeyLogger
	sink   PacketSink
	mark   uint32      // SO_MARK of the UDP sockets (0: none)
	binder sock.Binder // nil: kernel UDP sockets (sock.UDP)

	inbox chan func()
	done  chan struct{}

	// Owned by the loop goroutine.
	tunnels []*tunnel
	byName  map[string]*tunnel
	sas     map[[8]byte]*ikeSA // by initiator cookie
	// sas2: IKEv2 SAs by our own SPI; v2init: responder SAs by the peer
	// address and SPIi, for a retransmitted IKE_SA_INIT (ikev2_sa.go).
	sas2   map[[8]byte]*ikev2SA
	v2init map[v2InitKey]*ikev2SA
	// cookies: the IKEv2 responder's stateless cookies (section 2.6),
	// demanded from cookieThreshold half-open SAs on (ikev2_sa_init.go).
	cookies         *exchange.Cookies
	cookieThreshold int
	// fragmentSize: the largest IP datagram of an unfragmented IKEv2
	// message (0: DefaultIKEv2FragmentSize; ikev2_fragment.go).
	fragmentSize int
	// noFragmentSupport: do not announce IKEV2_FRAGMENTATION_SUPPORTED
	// (tests play a peer without RFC 7383).
	noFragmentSupport bool
	sockets           map[netip.AddrPort]*socket
	halfOpen          int
	// halfOpenBy counts half-open SAs per peer address; halfOpenMax and
	// halfOpenPeerMax are the bounds (halfopen.go).
	halfOpenBy      map[netip.Addr]int
	halfOpenMax     int
	halfOpenPeerMax map[netip.Addr]int
	// startQueue: startup-action-start tunnels not yet initiated (startup.go).
	startQueue []*tunnel
	counters   EngineCounters
	// am3InClear makes an aggressive mode initiator send AM3 unencrypted,
	// as RFC 2409's drawing shows it: only tests set it, to play a peer
	// that does (aggressive.go).
	am3InClear bool
	impairs    []Impairment // impair.go
	clock      timerSource  // nil: the runtime's timers (clock.go)
	dhKeys     dhKeySource  // nil: fresh keys from crypto/rand (dhkeys.go)

	subsMu  sync.Mutex
	subs    map[int]chan Event
	nextSub int
	dropped atomic.Uint64
}

// Option configures an Engine.
type Option func(*Engine)

// WithLogger sets the logger (default: logrus standard logger).
func WithLogger(l logrus.FieldLogger) Option { return func(e *Engine) { e.log = l } }

// WithDataPath sets where negotiated SAs go (default: a MemoryDataPath).
func WithDataPath(dp DataPath) Option { return func(e *Engine) { e.dp = dp } }

// WithKeyLogger enables key export.
func WithKeyLogger(k KeyLogger) Option { return func(e *Engine) { e.klog = k } }

// NewEngine validates cfg and returns an engine that has not bound sockets yet.
func NewEngine(cfg Config, opts ...Option) (*Engine, error) {
	if cfg.Ports.IKE == 0 {
		cfg.Ports.IKE = DefaultPorts.IKE
	}
	if cfg.Ports.NATT == 0 {
		cfg.Ports.NATT = DefaultPorts.NATT
	}
	if cfg.RetransmitTimeout <= 0 {
		cfg.RetransmitTimeout = DefaultRetransmitTimeout
	}
	if cfg.RetransmitBase < 1 {
		cfg.RetransmitBase = DefaultRetransmitBase
	}
	if cfg.RetransmitTries <= 0 {
		cfg.RetransmitTries = DefaultRetransmitTries
	}
	if cfg.MaxHalfOpen <= 0 {
		cfg.MaxHalfOpen = DefaultMaxHalfOpen
	}
	e := &Engine{
		cfg:     cfg,
		log:     logrus.StandardLogger(),
		inbox:   make(chan func(), 1024),
		done:    make(chan struct{}),
		byName:  map[string]*tunnel{},
		sas:     map[[8]byte]*ikeSA{},
		sockets: map[netip.AddrPort]*socket{},
		subs:    map[int]chan Event{},
	}
	for _, o := range opts {
		o(e)
	}
	if e.dp == nil {
		e.dp = NewMemoryDataPath()
	}
	for i := range cfg.Tunnels {
		tc := &e.cfg.Tunnels[i]
		if err := validateTunnel(tc); err != nil {
			return nil, fmt.Errorf("tunnel %q: %w", tc.Name, err)
		}
		if _, dup := e.byName[tc.Name]; dup {
			return nil, fmt.Errorf("tunnel %q: name used twice", tc.Name)
		}
		t := newTunnel(e, tc)
		e.tunnels = append(e.tunnels, t)
		e.byName[tc.Name] = t
	}
	e.halfOpenLimits()
	for _, imp := range cfg.Impairments {
		if err := e.checkImpairment(imp); err != nil {
			return nil, err
		}
		e.addImpairment(imp, "configuration")
	}
	return e, nil
}

func validateTunnel(tc *TunnelConfig) error {
	if tc.Name == "" {
		return errors.New("name is empty")
	}
	if !tc.LocalAddr.IsValid() || !tc.RemoteAddr.IsValid() {
		return errors.New("local and remote address are required")
	}
	if tc.LocalAddr.Is4() != tc.RemoteAddr.Is4() {
		return errors.New("local and remote address must be the same IP version")
	}
	if len(tc.PSK) == 0 {
		return errors.New("pre-shared key is empty")
	}
	if len(tc.Phase1.Proposals) == 0 {
		return errors.New("phase 1 has no proposals")
	}
	for _, p := range tc.Phase1.Proposals {
		if err := checkPhase1(p); err != nil {
			return fmt.Errorf("phase 1 proposal: %w", err)
		}
	}
	if len(v1Proposals(tc.Phase1.Proposals)) == 0 && tc.Allows(policy.IKEv1) {
		return errors.New("phase 1 has only AES-GCM proposals, which IKEv1 cannot negotiate (AES-GCM in phase 1 is IKEv2 only)")
	}
	if len(tc.Phase2.Proposals) == 0 {
		return errors.New("phase 2 has no proposals")
	}
	for _, p := range tc.Phase2.Proposals {
		if err := checkPhase2(p); err != nil {
			return fmt.Errorf("phase 2 proposal: %w", err)
		}
	}
	if tc.Phase1.Lifetime <= 0 {
		tc.Phase1.Lifetime = 28800 * time.Second
	}
	if tc.Phase2.Lifetime <= 0 {
		tc.Phase2.Lifetime = 3600 * time.Second
	}
	if tc.RekeyMargin < 0 || tc.RekeyMargin >= tc.Phase2.Lifetime {
		return fmt.Errorf("rekey margin %v must be below the phase 2 lifetime %v", tc.RekeyMargin, tc.Phase2.Lifetime)
	}
	if tc.RekeyFuzz < 0 || tc.RekeyFuzz > 100 {
		return fmt.Errorf("rekey fuzz %d%% is outside 0..100", tc.RekeyFuzz)
	}
	if !tc.LocalID.IsValid() {
		tc.LocalID = tc.LocalAddr
	}
	if !tc.Phase2.LocalTS.IsValid() {
		tc.Phase2.LocalTS = netip.MustParsePrefix("0.0.0.0/0")
	}
	if !tc.Phase2.RemoteTS.IsValid() {
		tc.Phase2.RemoteTS = netip.MustParsePrefix("0.0.0.0/0")
	}
	if tc.RemotePorts.IKE == 0 {
		tc.RemotePorts.IKE = DefaultPorts.IKE
	}
	if tc.RemotePorts.NATT == 0 {
		tc.RemotePorts.NATT = DefaultPorts.NATT
	}
	if tc.Phase2.ReplayWindow == 0 {
		tc.Phase2.ReplayWindow = 1024
	}
	if tc.Allows(policy.IKEv2) {
		if err := checkV2Policy(tc); err != nil { // ikev2_policy.go
			return err
		}
	}
	return nil
}

// post runs fn on the engine loop. It never blocks after the engine stopped.
func (e *Engine) post(fn func()) {
	select {
	case e.inbox <- fn:
	case <-e.done:
	}
}

// call runs fn on the loop and waits for it.
func (e *Engine) call(fn func()) error {
	finished := make(chan struct{})
	select {
	case e.inbox <- func() { defer close(finished); fn() }:
	case <-e.done:
		return errors.New("engine is not running")
	}
	select {
	case <-finished:
		return nil
	case <-e.done:
		return errors.New("engine is not running")
	}
}

// afterFunc schedules fn on the loop after d.
func (e *Engine) afterFunc(d time.Duration, fn func()) *time.Timer {
	if e.clock != nil {
		return e.clock.AfterFunc(d, func() { e.post(fn) })
	}
	return time.AfterFunc(d, func() { e.post(fn) })
}

// Run binds the sockets, starts tunnels whose startup action is start, and
// serves until ctx is cancelled. It returns an error if a socket cannot be
// bound.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.bind(); err != nil {
		e.closeSockets()
		close(e.done) // control calls fail instead of waiting for a loop that never runs
		return err
	}
	if ls, ok := e.dp.(SALimitSource); ok {
		ls.OnLimit(func(l SALimit) { e.post(func() { e.handleSALimit(l) }) })
	}
	if pm, ok := e.dp.(PeerMover); ok {
		pm.OnPeerMoved(func(tunnel string, from, to netip.AddrPort) {
			e.post(func() {
				if t := e.byName[tunnel]; t != nil {
					t.peerMoved(from, to, "ESP")
				}
			})
		})
	}
	var wg sync.WaitGroup
	for _, s := range e.sockets {
		wg.Add(1)
		go func(s *socket) { defer wg.Done(); e.routineReceive(s) }(s)
	}
	e.log.WithField("tunnels", len(e.tunnels)).Info("IKE engine started")
	// Tunnels with startup action start are initiated by the loop itself,
	// a batch at a time between inbox items (startup.go): posting one
	// closure per tunnel here would block on a full inbox before the loop
	// runs, with more tunnels than the inbox holds.
	for _, t := range e.tunnels {
		if t.cfg.StartupAction == StartupStart {
			e.startQueue = append(e.startQueue, t)
		}
	}
	e.routineLoop(ctx)
	e.shutdown()
	close(e.done)
	e.closeSockets()
	wg.Wait()
	e.log.Info("IKE engine stopped")
	return nil
}

// routineLoop is the single owner of the engine state. While tunnels wait
// to be started it gives queued work (messages, control calls, timers)
// precedence and starts the next batch whenever the inbox is empty.
func (e *Engine) routineLoop(ctx context.Context) {
	for {
		if len(e.startQueue) > 0 {
			select {
			case <-ctx.Done():
				return
			case fn := <-e.inbox:
				e.runGuarded(fn) // recover.go
			default:
				e.runGuarded(e.startNextBatch)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case fn := <-e.inbox:
			e.runGuarded(fn) // recover.go
		}
	}
}

// shutdown deletes every SA and tells peers, best effort, before the loop ends.
func (e *Engine) shutdown() {
	for _, t := range e.tunnels {
		t.terminate("engine stopping")
	}
}

// Status returns a snapshot of every tunnel (statuspage.go).
func (e *Engine) Status() Status { return e.statusRange(0, len(e.tunnels)) }

// Publish adds an event from outside the engine (BGP, routes) to the
// engine's event stream, so that subscribers see one ordered stream.
func (e *Engine) Publish(ev Event) { e.emit(ev) }

// Subscribe returns a channel of events and a function that ends the
// subscription. Slow subscribers lose events (counted), never block the engine.
func (e *Engine) Subscribe() (<-chan Event, func()) {
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	id := e.nextSub
	e.nextSub++
	ch := make(chan Event, 256)
	e.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			e.subsMu.Lock()
			delete(e.subs, id)
			e.subsMu.Unlock()
			close(ch)
		})
	}
}

func (e *Engine) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	for _, ch := range e.subs {
		select {
		case ch <- ev:
		default:
			e.dropped.Add(1)
		}
	}
}

func (e *Engine) tunnelByName(name string) (*tunnel, error) {
	t := e.byName[name]
	if t == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownTunnel, name)
	}
	return t, nil
}

// Initiate starts phase 1 (if needed) and phase 2 of a tunnel.
func (e *Engine) Initiate(name string) error {
	var err error
	if cerr := e.call(func() {
		var t *tunnel
		if t, err = e.tunnelByName(name); err == nil {
			t.initiate("control request")
		}
	}); cerr != nil {
		return cerr
	}
	return err
}

// Terminate deletes a tunnel's IPsec SAs and ISAKMP SA, notifying the peer.
func (e *Engine) Terminate(name string) error {
	var err error
	if cerr := e.call(func() {
		var t *tunnel
		if t, err = e.tunnelByName(name); err == nil {
			e.unqueueStart(t)
			t.terminate("control request")
		}
	}); cerr != nil {
		return cerr
	}
	return err
}

// Rekey rekeys phase 1 or phase 2 of a tunnel now.
func (e *Engine) Rekey(name string, phase int) error {
	if phase != 1 && phase != 2 {
		return fmt.Errorf("phase must be 1 or 2, not %d", phase)
	}
	var err error
	if cerr := e.call(func() {
		var t *tunnel
		if t, err = e.tunnelByName(name); err != nil {
			return
		}
		err = t.rekey(phase, "control request")
	}); cerr != nil {
		return cerr
	}
	return err
}

func randomCookie() (c [8]byte) {
	if _, err := rand.Read(c[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return c
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// isNATT reports whether a local socket is a NAT-T (4500) socket.
func (e *Engine) isNATTPort(p uint16) bool { return p == e.cfg.Ports.NATT }
