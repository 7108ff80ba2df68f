package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigErrors(t *testing.T) {
	a := netip.MustParseAddr
	good := func() (Config, []Neighbor) {
		return Config{ASN: 64512}, []Neighbor{
			{Tunnel: "tunnel1", Local: a("169.254.10.1"), Peer: a("169.254.10.2"), PeerASN: 65000},
			{Tunnel: "tunnel2", Local: a("169.254.11.1"), Peer: a("169.254.11.2"), PeerASN: 65000},
		}
	}
	tests := []struct {
		name   string
		change func(*Config, []Neighbor) []Neighbor
		order  []string
		want   string
	}{
		{"ASN 0", func(c *Config, n []Neighbor) []Neighbor { c.ASN = 0; return n }, nil, "ASN 0"},
		{"duplicate neighbor", func(c *Config, n []Neighbor) []Neighbor { n[1].Tunnel = "tunnel1"; return n }, nil, "duplicate neighbor for tunnel tunnel1"},
		{"same peer twice", func(c *Config, n []Neighbor) []Neighbor { n[1].Peer = n[0].Peer; return n }, nil, "same Peer"},
		{"Local missing", func(c *Config, n []Neighbor) []Neighbor { n[0].Local = netip.Addr{}; return n }, nil, "Local address invalid IP is not a usable address"},
		{"Local unspecified", func(c *Config, n []Neighbor) []Neighbor { n[0].Local = a("0.0.0.0"); return n }, nil, "not a usable address"},
		{"IPv6 session", func(c *Config, n []Neighbor) []Neighbor { n[0].Local, n[0].Peer = a("fd00::1"), a("fd00::2"); return n }, nil, "only IPv4 sessions"},
		{"Local is Peer", func(c *Config, n []Neighbor) []Neighbor { n[0].Peer = n[0].Local; return n }, nil, "both"},
		{"no tunnel name", func(c *Config, n []Neighbor) []Neighbor { n[0].Tunnel = ""; return n }, nil, "without a tunnel name"},
		{"PeerASN 0", func(c *Config, n []Neighbor) []Neighbor { n[0].PeerASN = 0; return n }, nil, "PeerASN 0"},
		{"bad port", func(c *Config, n []Neighbor) []Neighbor { n[0].PeerPort = 70000; return n }, nil, "PeerPort"},
		{"prepend", func(c *Config, n []Neighbor) []Neighbor { n[0].Prepend = -1; return n }, nil, "Prepend"},
		{"fractional hold time", func(c *Config, n []Neighbor) []Neighbor { c.HoldTime = 1500 * time.Millisecond; return n }, nil, "whole number of seconds"},
		{"hold time below 3 s", func(c *Config, n []Neighbor) []Neighbor {
			c.HoldTime, c.Keepalive = 2*time.Second, time.Second
			return n
		}, nil, "3 s minimum"},
		{"keepalive not below hold", func(c *Config, n []Neighbor) []Neighbor { c.Keepalive = 30 * time.Second; return n }, nil, "not below HoldTime"},
		{"IPv6 advertisement", func(c *Config, n []Neighbor) []Neighbor {
			c.Advertise = []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}
			return n
		}, nil, "only IPv4 prefixes"},
		{"IPv6 router ID", func(c *Config, n []Neighbor) []Neighbor { c.RouterID = a("fd00::1"); return n }, nil, "not an IPv4 address"},
		{"tunnel order misses a neighbor", func(c *Config, n []Neighbor) []Neighbor { return n }, []string{"tunnel1"}, "missing from the tunnel order"},
		{"tunnel order lists a tunnel twice", func(c *Config, n []Neighbor) []Neighbor { return n }, []string{"tunnel1", "tunnel2", "tunnel1"}, "listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, n := good()
			n = tc.change(&c, n)
			s, err := New(c, n, tc.order)
			if err == nil {
				s.Stop()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	local := netip.MustParseAddr("169.254.10.1")
	cfg := Config{ASN: 64512}
	order, err := cfg.checked([]Neighbor{{Tunnel: "t1", Local: local, Peer: netip.MustParseAddr("169.254.10.2"), PeerASN: 65000}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListenPort != 179 || cfg.HoldTime != 30*time.Second || cfg.Keepalive != 10*time.Second ||
		cfg.ConnectRetry != 3*time.Second || cfg.RouteLimit != 100 || cfg.LimitRestart != 30*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
	if cfg.RouterID != local || len(cfg.ListenAddresses) != 1 || cfg.ListenAddresses[0] != local {
		t.Errorf("router ID %v, listen %v: want the neighbor's Local", cfg.RouterID, cfg.ListenAddresses)
	}
	if len(order) != 1 || order[0] != "t1" {
		t.Errorf("order %v", order)
	}
	unlimited := Config{ASN: 1, RouteLimit: -1}
	if _, err := unlimited.checked(nil, []string{"t1"}); err != nil || unlimited.RouteLimit != 0 {
		t.Errorf("RouteLimit -1: %v, %d", err, unlimited.RouteLimit)
	}
}
