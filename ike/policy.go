package ike

import "github.com/vpnlab/vpnlab/ike/policy"

// The engine's view of the tunnel configuration, which lives in package
// policy (shared by the IKE versions): aliases, so that the engine's code
// and tests keep their short names. Code outside ike uses package policy.
type (
	Secret         = policy.Secret
	Selection      = policy.Selection
	Phase1Proposal = policy.Phase1Proposal
	Phase2Proposal = policy.Phase2Proposal
	ExchangeMode   = policy.ExchangeMode
	StartupAction  = policy.StartupAction
	DPDAction      = policy.DPDAction
	Phase1Policy   = policy.Phase1
	Phase2Policy   = policy.Phase2
	TunnelConfig   = policy.Tunnel
	Ports          = policy.Ports
)

// The constants of those types, under the engine's names.
const (
	SelectInitiatorOrder = policy.SelectInitiatorOrder
	SelectLowestValue    = policy.SelectLowestValue
	MainMode             = policy.MainMode
	AggressiveMode       = policy.AggressiveMode
	StartupAdd           = policy.StartupAdd
	StartupStart         = policy.StartupStart
	DPDClear             = policy.DPDClear
	DPDRestart           = policy.DPDRestart
	DPDNone              = policy.DPDNone
	DefaultNATKeepalive  = policy.DefaultNATKeepalive
)

// DefaultPorts are the standard ports (policy.DefaultPorts).
var DefaultPorts = policy.DefaultPorts

// Config is the engine's configuration (policy.Config).
type Config = policy.Config
