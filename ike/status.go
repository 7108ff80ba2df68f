package ike

import "github.com/vpnlab/vpnlab/ike/status"

// The engine's view of what it reports, which lives in package status
// (shared by the IKE versions): aliases, so that the engine's code and
// tests keep their names. Code outside ike uses package status.
type (
	Event            = status.Event
	Status           = status.Snapshot
	TunnelStatus     = status.Tunnel
	SAStatus         = status.SA
	Counters         = status.Counters
	ExchangeCounters = status.ExchangeCounters
	ExchangeCount    = status.ExchangeCount
	EngineCounters   = status.EngineCounters
)

// ErrUnknownTunnel is returned (wrapped) by control calls naming a tunnel
// that is not configured (status.ErrUnknownTunnel).
var ErrUnknownTunnel = status.ErrUnknownTunnel
