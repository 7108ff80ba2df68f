package bgp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/routes"
)

// Loopback addresses: Linux routes all of 127/8 to lo, so every neighbor
// gets its own address (GoBGP tells incoming sessions apart by remote
// address only). The second octet comes from the process ID so that
// concurrent test processes do not collide.
var addrCounter atomic.Uint32

func nextAddr(t *testing.T) netip.Addr {
	t.Helper()
	n := addrCounter.Add(1)
	if n >= 250*250 {
		t.Fatal("out of test addresses")
	}
	return netip.AddrFrom4([4]byte{127, byte(20 + os.Getpid()%200), byte(1 + n/250), byte(1 + n%250)})
}

// freePort returns a TCP port that is free on addr.
func freePort(t *testing.T, addr netip.Addr) int {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a test's log; it is printed only when the test fails.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func testLogger(t *testing.T, name string) logrus.FieldLogger {
	buf := &syncBuffer{}
	l := logrus.New()
	l.SetOutput(buf)
	l.SetLevel(logrus.DebugLevel)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, buf.String())
		}
	})
	return l.WithField("gw", name)
}

// needServers skips a test that runs several GoBGP servers in one process
// under the race detector: GoBGP v3.37.0's StartBgp writes package globals
// (table.SelectionOptions, table.UseMultiplePaths) that every server reads,
// a race outside our code. TestWire covers our code under -race.
func needServers(t *testing.T) {
	if raceEnabled {
		t.Skip("several GoBGP servers in one process race on GoBGP's package globals; run without -race")
	}
}

// side is one speaker under construction.
type side struct {
	name string
	cfg  Config
	nbs  []Neighbor
	port int
}

func newSide(t *testing.T, name string, asn uint32, port int) *side {
	return &side{name: name, port: port, cfg: Config{
		ASN: asn, ListenPort: port,
		HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Second,
		Log: testLogger(t, name),
	}}
}

// link adds a neighbor pair for tunnel between a and b, on fresh addresses.
func link(t *testing.T, a, b *side, tunnel string) {
	la, lb := nextAddr(t), nextAddr(t)
	a.nbs = append(a.nbs, Neighbor{Tunnel: tunnel, Local: la, Peer: lb, PeerASN: b.cfg.ASN, PeerPort: b.port})
	b.nbs = append(b.nbs, Neighbor{Tunnel: tunnel, Local: lb, Peer: la, PeerASN: a.cfg.ASN, PeerPort: a.port})
}

// recorder keeps everything a speaker reported.
type recorder struct {
	mu       sync.Mutex
	changes  []routes.Change
	sessions []SessionEvent
}

func (r *recorder) find(match func(routes.Change) bool) *routes.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.changes {
		if match(r.changes[i]) {
			c := r.changes[i]
			return &c
		}
	}
	return nil
}

func (r *recorder) findSession(match func(SessionEvent) bool) *SessionEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.sessions {
		if match(r.sessions[i]) {
			e := r.sessions[i]
			return &e
		}
	}
	return nil
}

// start builds and starts the speaker of a side; it is stopped at cleanup.
func (sd *side) start(t *testing.T) (*Speaker, *recorder) {
	t.Helper()
	s, err := New(sd.cfg, sd.nbs, nil)
	if err != nil {
		t.Fatalf("%s: %v", sd.name, err)
	}
	rec := &recorder{}
	s.OnChange(func(_ []routes.Route, cs []routes.Change) {
		rec.mu.Lock()
		rec.changes = append(rec.changes, cs...)
		rec.mu.Unlock()
	})
	s.OnSession(func(e SessionEvent) {
		rec.mu.Lock()
		rec.sessions = append(rec.sessions, e)
		rec.mu.Unlock()
	})
	t.Cleanup(s.Stop)
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("%s: %v", sd.name, err)
	}
	return s, rec
}

// eventually polls cond until it returns "" or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %s: %s", timeout, what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const sessionTimeout = 15 * time.Second

func neighborStatus(s *Speaker, tunnel string) *NeighborStatus {
	for _, n := range s.Status().Neighbors {
		if n.Tunnel == tunnel {
			return &n
		}
	}
	return nil
}

func waitState(t *testing.T, s *Speaker, tunnel string, want func(SessionState) bool, what string) {
	t.Helper()
	eventually(t, sessionTimeout, tunnel+" "+what, func() string {
		n := neighborStatus(s, tunnel)
		if n == nil {
			return "no such neighbor"
		}
		if !want(n.State) {
			return "state " + string(n.State)
		}
		return ""
	})
}

func waitEstablished(t *testing.T, s *Speaker, tunnels ...string) {
	t.Helper()
	for _, tun := range tunnels {
		waitState(t, s, tun, func(st SessionState) bool { return st == Established }, "established")
	}
}

// routeOf returns the route for prefix, or nil.
func routeOf(s *Speaker, prefix netip.Prefix) *routes.Route {
	for _, r := range s.Routes() {
		if r.Prefix == prefix {
			return &r
		}
	}
	return nil
}

// waitRoute waits until prefix is routed over exactly tunnels (in order)
// with active leading tunnels; no tunnels means no route.
func waitRoute(t *testing.T, s *Speaker, prefix netip.Prefix, active int, tunnels ...string) *routes.Route {
	t.Helper()
	var got *routes.Route
	eventually(t, sessionTimeout, fmt.Sprintf("route %v over %v", prefix, tunnels), func() string {
		got = routeOf(s, prefix)
		switch {
		case got == nil && len(tunnels) == 0:
			return ""
		case got == nil:
			return "no route"
		case !slices.Equal(got.Tunnels, tunnels) || got.Active != active:
			return fmt.Sprintf("tunnels %v active %d (%s)", got.Tunnels, got.Active, got.Reason)
		}
		return ""
	})
	return got
}

func wantReason(t *testing.T, r *routes.Route, part string) {
	t.Helper()
	if r == nil || !strings.Contains(r.Reason, part) {
		t.Errorf("reason %q, want it to contain %q", r.Reason, part)
	}
}
