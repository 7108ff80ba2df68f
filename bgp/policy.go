package bgp

import (
	"context"
	"fmt"

	api "github.com/osrg/gobgp/v3/api"
)

// Outgoing MED and AS_PATH prepending per neighbor.
//
// GoBGP keeps per-peer policies for route-server clients only; ordinary eBGP
// peers share the global export policy. Its neighbor-set condition, though,
// matches the peer a path is being exported to, so one global export policy
// with one statement per neighbor (condition: that neighbor's address;
// actions: replace MED, prepend our ASN) gives each neighbor its own
// attributes. GoBGP applies the export policy after it has put our ASN in
// front for eBGP, so Prepend n yields our ASN n+1 times.
//
// A change rebuilds the whole policy (SetPolicies keeps the existing
// assignment) and then soft-resets that neighbor outwards, which re-sends
// every path through the new policy.

const exportPolicyName = "vpnlab-export"

func neighborSetName(tunnel string) string { return "vpnlab-nbr-" + tunnel }

// policies builds the defined sets and the export policy for the current
// neighbor settings.
func (s *Speaker) policies() *api.SetPoliciesRequest {
	req := &api.SetPoliciesRequest{}
	policy := &api.Policy{Name: exportPolicyName}
	for _, nb := range s.neighbors {
		n := nb.snapshot()
		req.DefinedSets = append(req.DefinedSets, &api.DefinedSet{
			DefinedType: api.DefinedType_NEIGHBOR,
			Name:        neighborSetName(n.Tunnel),
			List:        []string{n.Peer.String() + "/32"},
		})
		actions := &api.Actions{}
		if n.MED != 0 {
			actions.Med = &api.MedAction{Type: api.MedAction_REPLACE, Value: int64(n.MED)}
		}
		if n.Prepend > 0 {
			actions.AsPrepend = &api.AsPrependAction{Asn: s.cfg.ASN, Repeat: uint32(n.Prepend)}
		}
		policy.Statements = append(policy.Statements, &api.Statement{
			Name: "vpnlab-out-" + n.Tunnel,
			Conditions: &api.Conditions{NeighborSet: &api.MatchSet{
				Type: api.MatchSet_ANY, Name: neighborSetName(n.Tunnel),
			}},
			Actions: actions,
		})
	}
	req.Policies = []*api.Policy{policy}
	return req
}

// installPolicies sets the export policy up when the speaker starts.
func (s *Speaker) installPolicies(ctx context.Context) error {
	if err := s.server.SetPolicies(ctx, s.policies()); err != nil {
		return fmt.Errorf("bgp: export policy: %w", err)
	}
	err := s.server.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name:          "global",
		Direction:     api.PolicyDirection_EXPORT,
		Policies:      []*api.Policy{{Name: exportPolicyName}},
		DefaultAction: api.RouteAction_ACCEPT,
	}})
	if err != nil {
		return fmt.Errorf("bgp: export policy assignment: %w", err)
	}
	return nil
}

// SetNeighborPolicy changes the MED advertised to a tunnel's neighbor (0:
// none) and how many times our ASN is prepended towards it, and re-sends our
// paths to that neighbor with the new attributes.
func (s *Speaker) SetNeighborPolicy(tunnel string, med uint32, prepend int) error {
	nb := s.byTunnel[tunnel]
	if nb == nil {
		return fmt.Errorf("bgp: no neighbor for tunnel %s", tunnel)
	}
	if err := validatePolicy(tunnel, med, prepend); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	nb.setPolicy(med, prepend)
	if !s.running() {
		return nil
	}
	ctx := context.Background()
	if err := s.server.SetPolicies(ctx, s.policies()); err != nil {
		return fmt.Errorf("bgp: export policy: %w", err)
	}
	err := s.server.ResetPeer(ctx, &api.ResetPeerRequest{
		Address: nb.n.Peer.String(), Soft: true, Direction: api.ResetPeerRequest_OUT,
	})
	if err != nil {
		return fmt.Errorf("bgp: re-sending paths to %s: %w", tunnel, err)
	}
	s.log.WithFields(map[string]any{"tunnel": tunnel, "med": med, "prepend": prepend}).Info("bgp: neighbor export policy changed")
	return nil
}
