package bgp

import (
	"context"
	"errors"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/routes"
)

// Learning from GoBGP.
//
// One WatchEvent registration delivers, in GoBGP's order, peer state changes
// and the adj-RIB-in updates of every neighbor (filter ADJIN: each neighbor's
// paths as received, not only GoBGP's best). Its callback only posts the
// event to the loop, which feeds routes.Table: a path is added or withdrawn
// under the neighbor's tunnel, and everything a neighbor taught us is
// withdrawn when its session leaves Established. GoBGP enforces the route
// limit itself (PrefixLimits): it drops the session before reporting the
// path that went over, with its admin state PFX_CT, which is how the loop
// tells a limit reset from any other.

// neighbor is a Neighbor with its session state.
type neighbor struct {
	mu         sync.Mutex // guards n.MED, n.Prepend and the fields below
	n          Neighbor
	state      SessionState
	admin      api.PeerState_AdminState
	lastChange time.Time
	upSince    time.Time
	flaps      int // times the session left Established
	limitHits  int
	restart    *time.Timer
}

func (nb *neighbor) snapshot() Neighbor {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	return nb.n
}

func (nb *neighbor) setPolicy(med uint32, prepend int) {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	nb.n.MED, nb.n.Prepend = med, prepend
}

// enabled records that the session may come up again (GoBGP reports admin
// state only with session state changes).
func (nb *neighbor) enabled() {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	nb.admin = api.PeerState_UP
}

func (nb *neighbor) stopRestart() {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	if nb.restart != nil {
		nb.restart.Stop()
		nb.restart = nil
	}
}

// setState records a state change and returns the previous state.
func (nb *neighbor) setState(to SessionState, admin api.PeerState_AdminState, now time.Time) (from SessionState, changed bool) {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	from = nb.state
	nb.admin = admin
	if from == to {
		return from, false
	}
	nb.state, nb.lastChange = to, now
	switch {
	case to == Established:
		nb.upSince = now
	case from == Established:
		nb.upSince = time.Time{}
		nb.flaps++
	}
	return from, true
}

// handleWatch runs on the loop for every GoBGP event.
func (s *Speaker) handleWatch(r *api.WatchEventResponse) {
	switch ev := r.Event.(type) {
	case *api.WatchEventResponse_Peer:
		s.handlePeer(ev.Peer)
	case *api.WatchEventResponse_Table:
		s.handlePaths(ev.Table.GetPaths())
	}
}

func (s *Speaker) handlePeer(ev *api.WatchEventResponse_PeerEvent) {
	if ev.GetType() != api.WatchEventResponse_PeerEvent_STATE {
		return
	}
	st := ev.GetPeer().GetState()
	nb := s.byPeer[st.GetNeighborAddress()]
	if nb == nil {
		return
	}
	s.sessionChanged(nb, sessionState(st.GetSessionState()), st.GetAdminState())
}

// sessionChanged records a neighbor's new session state (on the loop): logs
// it, withdraws what the neighbor taught us when it leaves Established and
// tells the OnSession subscribers.
func (s *Speaker) sessionChanged(nb *neighbor, to SessionState, admin api.PeerState_AdminState) {
	now := time.Now()
	from, changed := nb.setState(to, admin, now)
	if !changed {
		return
	}
	limit := from == Established && admin == api.PeerState_PFX_CT
	fields := logrus.Fields{"tunnel": nb.n.Tunnel, "peer": nb.n.Peer.String(), "from": string(from), "to": string(to)}
	if from == Established || to == Established {
		s.log.WithFields(fields).Info("bgp: session " + string(to))
	} else {
		s.log.WithFields(fields).Debug("bgp: session " + string(to))
	}
	if from == Established && to != Established {
		if limit {
			s.limitExceeded(nb)
		}
		s.table.WithdrawTunnel(nb.n.Tunnel)
	}
	s.mu.Lock()
	subs := append([]func(SessionEvent){}, s.onSession...)
	s.mu.Unlock()
	e := SessionEvent{Time: now, Tunnel: nb.n.Tunnel, Peer: nb.n.Peer, From: from, To: to, LimitExceeded: limit}
	for _, fn := range subs {
		fn(e)
	}
}

// limitExceeded records a limit reset and, unless configured otherwise, lets
// the session come back after LimitRestart (GoBGP keeps it down until told).
func (s *Speaker) limitExceeded(nb *neighbor) {
	s.table.ExceedLimit(nb.n.Tunnel, s.limitDetail(nb.n))
	nb.mu.Lock()
	defer nb.mu.Unlock()
	nb.limitHits++
	if s.cfg.LimitRestart < 0 {
		return
	}
	if nb.restart != nil {
		nb.restart.Stop()
	}
	addr := nb.n.Peer.String()
	nb.restart = time.AfterFunc(s.cfg.LimitRestart, func() {
		s.post(func() {
			nb.stopRestart()
			if !s.running() {
				return
			}
			if err := s.server.EnablePeer(context.Background(), &api.EnablePeerRequest{Address: addr}); err != nil {
				s.log.WithError(err).WithField("tunnel", nb.n.Tunnel).Warn("bgp: re-enabling neighbor after limit reset")
				return
			}
			nb.enabled()
		})
	})
}

func (s *Speaker) handlePaths(paths []*api.Path) {
	now := time.Now()
	for _, p := range paths {
		nb := s.byPeer[p.GetNeighborIp()]
		if nb == nil {
			continue
		}
		path, ok, err := learnedPath(p, nb.n.Tunnel, now)
		if err != nil {
			s.log.WithError(err).WithField("tunnel", nb.n.Tunnel).Warn("bgp: ignoring a path")
			continue
		}
		if !ok {
			continue
		}
		if p.IsWithdraw {
			s.table.Withdraw(path.Prefix, nb.n.Tunnel, routes.BGP)
			continue
		}
		err = s.table.Add(path)
		if errors.Is(err, routes.ErrLimitExceeded) {
			// GoBGP enforces the same limit first, so this is a safety
			// net: reset the session ourselves.
			s.log.WithField("tunnel", nb.n.Tunnel).Warn("bgp: route table over the limit, resetting the session")
			if s.running() {
				_ = s.server.ResetPeer(context.Background(), &api.ResetPeerRequest{
					Address: nb.n.Peer.String(), Communication: "route limit exceeded",
				})
			}
			return
		}
		if err != nil {
			s.log.WithError(err).WithField("tunnel", nb.n.Tunnel).Warn("bgp: ignoring a path")
		}
	}
}
