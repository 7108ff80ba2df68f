package bgp

import (
	"context"
	"fmt"

	api "github.com/osrg/gobgp/v3/api"
)

// A neighbor that restarted.
//
// When the gateway at the other end of a tunnel dies without a word and
// comes back, our session with it is stale: its TCP connection is gone on
// the other side, but nothing tells us so until one of our keepalives gets
// through the new IPsec SAs and is answered with a RST, or the hold timer
// expires. Meanwhile GoBGP v3.37.0 closes every connection the restarted
// neighbor opens (RFC 4271 section 6.8: a connection that collides with an
// Established one is the one closed), and after the stale session's loss it
// sits out a fixed 5 s idle hold during which it closes them too; each
// closed attempt costs the neighbor its own 5 s idle hold plus 1-2 s before
// it dials again. Both speakers connecting actively made that a dance of
// refusals: 7-28 s before BGP was back after a customer gateway restart,
// although IPsec was back within a second.
//
// The IKE layer knows earlier: the restarted gateway's first phase 1 carries
// INITIAL-CONTACT (RFC 2407 section 4.6.3.3: the sender kept nothing from
// before). PeerRestarted, called then, replaces the neighbor's GoBGP peer
// (DeletePeer, AddPeer with the same settings): the stale session is closed
// with a NOTIFICATION Cease, what it taught us is withdrawn, and the new
// peer starts with no idle hold, so it is ready (Active) before the
// neighbor's first connection arrives through the new SAs. GoBGP's
// ResetPeer would leave the neighbor in its idle hold (IdleHoldTimeAfterReset
// is at least 1 s: 0 means GoBGP's default of 30 s).
//
// A session that survived would also be reset, but none does: INITIAL-
// CONTACT comes from a gateway that restarted or whose DPD cleared every SA
// of the tunnel, and AWS's smallest DPD timeout (30 s) is not shorter than
// the hold time (30 s), so the session was gone by then as well.

// PeerRestarted tells the speaker that the gateway at the other end of
// tunnel kept nothing of its earlier sessions (IKE INITIAL-CONTACT). Unless
// the session is merely waiting for the neighbor (Active), it is dropped and
// started over at once. A neighbor that is administratively down (disabled,
// or over the route limit) stays down. reason is logged.
func (s *Speaker) PeerRestarted(tunnel, reason string) error {
	nb := s.byTunnel[tunnel]
	if nb == nil {
		return fmt.Errorf("bgp: no neighbor for tunnel %s", tunnel)
	}
	return s.call(func() error {
		if !s.running() {
			return ErrStopped
		}
		nb.mu.Lock()
		state, admin := nb.state, nb.admin
		nb.mu.Unlock()
		log := s.log.WithField("tunnel", tunnel).WithField("reason", reason).WithField("state", string(state))
		if admin != api.PeerState_UP || state == Active {
			log.Debug("bgp: neighbor restarted; nothing stale to drop")
			return nil
		}
		log.Info("bgp: neighbor restarted; starting the session over")
		// Hold policyMu: a concurrent SetNeighborPolicy must not soft-reset
		// a peer that is being replaced.
		s.policyMu.Lock()
		defer s.policyMu.Unlock()
		ctx := context.Background()
		addr := nb.n.Peer.String()
		if err := s.server.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
			return fmt.Errorf("bgp: neighbor %s: removing the stale session: %w", tunnel, err)
		}
		// GoBGP reports nothing more about the deleted peer.
		s.sessionChanged(nb, Idle, api.PeerState_UP)
		if err := s.server.AddPeer(ctx, &api.AddPeerRequest{Peer: s.peerConfig(nb.snapshot())}); err != nil {
			return fmt.Errorf("bgp: neighbor %s: starting the session over: %w", tunnel, err)
		}
		return nil
	})
}
