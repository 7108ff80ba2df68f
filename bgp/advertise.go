package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/vpnlab/vpnlab/routes"
)

// What the speaker puts in: prefixes it originates (BGP) and static routes
// (routes.Table only, never advertised).

// Advertise announces a prefix to every neighbor.
func (s *Speaker) Advertise(prefix netip.Prefix) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	prefix = prefix.Masked()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if uuid := s.advertised[prefix]; uuid != nil || !s.started || s.server == nil {
		if _, ok := s.advertised[prefix]; !ok {
			s.advertised[prefix] = nil
		}
		return nil
	}
	path, err := localPath(prefix)
	if err != nil {
		return fmt.Errorf("bgp: %v: %w", prefix, err)
	}
	resp, err := s.server.AddPath(context.Background(), &api.AddPathRequest{Path: path})
	if err != nil {
		return fmt.Errorf("bgp: advertising %v: %w", prefix, err)
	}
	s.advertised[prefix] = resp.Uuid
	s.log.WithField("prefix", prefix).Info("bgp: advertising")
	return nil
}

// Withdraw stops announcing a prefix.
func (s *Speaker) Withdraw(prefix netip.Prefix) error {
	prefix = prefix.Masked()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	uuid, ok := s.advertised[prefix]
	if !ok {
		return fmt.Errorf("bgp: %v is not advertised", prefix)
	}
	delete(s.advertised, prefix)
	if uuid == nil {
		return nil
	}
	if err := s.server.DeletePath(context.Background(), &api.DeletePathRequest{Family: ipv4Unicast, Uuid: uuid}); err != nil {
		return fmt.Errorf("bgp: withdrawing %v: %w", prefix, err)
	}
	s.log.WithField("prefix", prefix).Info("bgp: withdrawn")
	return nil
}

// AddStatic adds a static route for prefix through each of the tunnels. It
// is preferred over BGP for the same prefix. Must not be called from an
// OnChange or OnSession callback.
func (s *Speaker) AddStatic(prefix netip.Prefix, tunnels ...string) error {
	if !prefix.IsValid() {
		return errors.New("bgp: invalid static prefix")
	}
	if len(tunnels) == 0 {
		return fmt.Errorf("bgp: static route %v without a tunnel", prefix)
	}
	known := s.table.Tunnels()
	for _, t := range tunnels {
		if !slices.Contains(known, t) {
			return fmt.Errorf("bgp: static route %v: unknown tunnel %q", prefix, t)
		}
	}
	return s.call(func() error {
		for _, t := range tunnels {
			if err := s.table.Add(routes.Path{Prefix: prefix, Tunnel: t, Source: routes.Static}); err != nil {
				return fmt.Errorf("bgp: %w", err)
			}
		}
		return nil
	})
}

// RemoveStatic removes static routes for prefix through the tunnels (all
// tunnels if none are named). Must not be called from a callback.
func (s *Speaker) RemoveStatic(prefix netip.Prefix, tunnels ...string) error {
	if len(tunnels) == 0 {
		tunnels = s.table.Tunnels()
	}
	return s.call(func() error {
		found := false
		for _, t := range tunnels {
			if s.table.Withdraw(prefix, t, routes.Static) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("bgp: no static route for %v", prefix)
		}
		return nil
	})
}
