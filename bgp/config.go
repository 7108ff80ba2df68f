package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
)

// Defaults, as in AWS's example configurations (hold 30 s, keepalive 10 s),
// AWS's route quota, and a ConnectRetry small enough for failover demos
// (GoBGP's own default of 120 s delays every reconnection by minutes).
const (
	DefaultListenPort   = 179
	DefaultHoldTime     = 30 * time.Second
	DefaultKeepalive    = 10 * time.Second
	DefaultConnectRetry = 3 * time.Second
	DefaultRouteLimit   = 100
	DefaultLimitRestart = 30 * time.Second
)

// Config is one gateway's BGP speaker.
type Config struct {
	ASN      uint32
	RouterID netip.Addr // IPv4; default: the first neighbor's IPv4 Local address
	// ListenAddresses default to the neighbors' Local addresses (never the
	// wildcard, so that several speakers can share a port on loopback).
	ListenAddresses []netip.Addr
	// ListenPort: 0 means 179; negative means no listener (connect only).
	ListenPort int
	// HoldTime, Keepalive and ConnectRetry are whole seconds; 0 means the
	// default.
	HoldTime, Keepalive, ConnectRetry time.Duration
	// Passive: never open a session's TCP connection, only accept the
	// neighbor's (GoBGP's PassiveMode). With one side passive the two
	// speakers cannot collide (RFC 4271 section 6.8), which GoBGP v3.37.0
	// does not resolve: each side keeps the connection that reached its
	// state machine first and closes the other, so two simultaneous opens
	// both fail and both sides sit out a 5 s idle hold. The vgw is passive
	// by default; the cgw always connects.
	Passive bool
	// ECMP activates all tunnels tying on AS_PATH length (Transit Gateway).
	ECMP bool
	// RouteLimit is the number of prefixes accepted per neighbor: 0 means
	// DefaultRouteLimit (AWS's 100), negative means no limit.
	RouteLimit int
	// LimitRestart is how long a neighbor that went over RouteLimit stays
	// down before the session may come back: 0 means DefaultLimitRestart,
	// negative means it stays down until EnableNeighbor.
	LimitRestart time.Duration
	// Advertise are the prefixes announced to every neighbor from the start.
	Advertise []netip.Prefix
	Log       logrus.FieldLogger
}

// Neighbor is the BGP session of one IPsec tunnel, between the tunnel's
// inside addresses.
type Neighbor struct {
	Tunnel   string
	Local    netip.Addr
	Peer     netip.Addr
	PeerASN  uint32
	PeerPort int // 0 means 179
	// MED is advertised to this neighbor on every path (0: none).
	MED uint32
	// Prepend is how many extra times our ASN is put in front of the
	// AS_PATH towards this neighbor.
	Prepend int
}

// maxPrepend bounds Prepend (GoBGP stores the repeat count in a byte; more
// than a handful is never useful).
const maxPrepend = 32

func (n *Neighbor) validate() error {
	switch {
	case n.Tunnel == "":
		return errors.New("neighbor without a tunnel name")
	case !n.Local.IsValid() || n.Local.IsUnspecified():
		return fmt.Errorf("neighbor %s: Local address %v is not a usable address", n.Tunnel, n.Local)
	case !n.Peer.IsValid() || n.Peer.IsUnspecified():
		return fmt.Errorf("neighbor %s: Peer address %v is not a usable address", n.Tunnel, n.Peer)
	case !n.Local.Is4() || !n.Peer.Is4():
		return fmt.Errorf("neighbor %s: Local %v / Peer %v: only IPv4 sessions are supported", n.Tunnel, n.Local, n.Peer)
	case n.Local == n.Peer:
		return fmt.Errorf("neighbor %s: Local and Peer are both %v", n.Tunnel, n.Local)
	case n.PeerASN == 0:
		return fmt.Errorf("neighbor %s: PeerASN 0", n.Tunnel)
	case n.PeerPort < 0 || n.PeerPort > 65535:
		return fmt.Errorf("neighbor %s: PeerPort %d out of range", n.Tunnel, n.PeerPort)
	}
	return validatePolicy(n.Tunnel, n.MED, n.Prepend)
}

func validatePolicy(tunnel string, _ uint32, prepend int) error {
	if prepend < 0 || prepend > maxPrepend {
		return fmt.Errorf("neighbor %s: Prepend %d not in 0..%d", tunnel, prepend, maxPrepend)
	}
	return nil
}

// checked validates the configuration, fills in defaults and returns the
// tunnel order (tunnelOrder, or the neighbors' order when empty).
func (c *Config) checked(neighbors []Neighbor, tunnelOrder []string) ([]string, error) {
	// Static routes alone need no ASN (no session is run).
	if c.ASN == 0 && len(neighbors) > 0 {
		return nil, errors.New("bgp: ASN 0")
	}
	if c.ListenPort > 65535 {
		return nil, fmt.Errorf("bgp: ListenPort %d out of range", c.ListenPort)
	}
	if c.ListenPort == 0 {
		c.ListenPort = DefaultListenPort
	}
	if err := c.checkTimers(); err != nil {
		return nil, err
	}
	if c.RouteLimit == 0 {
		c.RouteLimit = DefaultRouteLimit
	}
	if c.RouteLimit < 0 {
		c.RouteLimit = 0 // no limit, in routes.Config terms
	}
	if c.LimitRestart == 0 {
		c.LimitRestart = DefaultLimitRestart
	}
	for _, p := range c.Advertise {
		if err := checkPrefix(p); err != nil {
			return nil, err
		}
	}
	if c.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		c.Log = l
	}

	tunnels, err := c.checkNeighbors(neighbors)
	if err != nil {
		return nil, err
	}
	if len(neighbors) > 0 {
		if !c.RouterID.IsValid() {
			return nil, errors.New("bgp: no RouterID and no IPv4 Local address to take it from")
		}
		if !c.RouterID.Is4() {
			return nil, fmt.Errorf("bgp: RouterID %v is not an IPv4 address", c.RouterID)
		}
	}
	if len(c.ListenAddresses) == 0 {
		for _, n := range neighbors {
			if !slices.Contains(c.ListenAddresses, n.Local) {
				c.ListenAddresses = append(c.ListenAddresses, n.Local)
			}
		}
	}
	for _, a := range c.ListenAddresses {
		if !a.IsValid() {
			return nil, errors.New("bgp: invalid listen address")
		}
	}

	if len(tunnelOrder) == 0 {
		for _, n := range neighbors {
			tunnelOrder = append(tunnelOrder, n.Tunnel)
		}
	}
	for t := range tunnels {
		if !slices.Contains(tunnelOrder, t) {
			return nil, fmt.Errorf("bgp: neighbor tunnel %s missing from the tunnel order %v", t, tunnelOrder)
		}
	}
	return slices.Clone(tunnelOrder), nil
}

// checkTimers fills in the default hold time, keepalive and connect retry
// and checks them: whole seconds, hold time at least 3 s (RFC 4271 section
// 4.2) and above the keepalive.
func (c *Config) checkTimers() error {
	for _, t := range []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"HoldTime", &c.HoldTime, DefaultHoldTime},
		{"Keepalive", &c.Keepalive, DefaultKeepalive},
		{"ConnectRetry", &c.ConnectRetry, DefaultConnectRetry},
	} {
		if *t.d == 0 {
			*t.d = t.def
		}
		if *t.d < time.Second || *t.d%time.Second != 0 {
			return fmt.Errorf("bgp: %s %v is not a positive whole number of seconds", t.name, *t.d)
		}
	}
	if c.HoldTime < 3*time.Second {
		return fmt.Errorf("bgp: HoldTime %v below the 3 s minimum of RFC 4271", c.HoldTime)
	}
	if c.Keepalive >= c.HoldTime {
		return fmt.Errorf("bgp: Keepalive %v not below HoldTime %v", c.Keepalive, c.HoldTime)
	}
	return nil
}

// checkNeighbors checks each neighbor and that tunnels and peer addresses
// are unique, takes the router ID from the first IPv4 local address if
// none is set, and returns the set of tunnels.
func (c *Config) checkNeighbors(neighbors []Neighbor) (map[string]bool, error) {
	tunnels := make(map[string]bool)
	peers := make(map[netip.Addr]string)
	for i := range neighbors {
		n := &neighbors[i]
		if err := n.validate(); err != nil {
			return nil, fmt.Errorf("bgp: %w", err)
		}
		if tunnels[n.Tunnel] {
			return nil, fmt.Errorf("bgp: duplicate neighbor for tunnel %s", n.Tunnel)
		}
		tunnels[n.Tunnel] = true
		if other, dup := peers[n.Peer]; dup {
			return nil, fmt.Errorf("bgp: neighbors %s and %s have the same Peer %v (GoBGP tells sessions apart by peer address)", other, n.Tunnel, n.Peer)
		}
		peers[n.Peer] = n.Tunnel
		if !c.RouterID.IsValid() && n.Local.Is4() {
			c.RouterID = n.Local
		}
	}
	return tunnels, nil
}

// checkPrefix accepts the prefixes the speaker can carry: IPv4 unicast.
func checkPrefix(p netip.Prefix) error {
	if !p.IsValid() {
		return errors.New("bgp: invalid prefix")
	}
	if !p.Addr().Is4() {
		return fmt.Errorf("bgp: prefix %v: only IPv4 prefixes are carried", p)
	}
	return nil
}
