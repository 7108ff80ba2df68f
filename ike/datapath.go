package ike

import "github.com/vpnlab/vpnlab/childsa"

// The engine's view of the child SA contract, which lives in package
// childsa (shared by the IKE versions and the data path): aliases, so that
// the engine's code and tests keep their names. Code outside ike uses
// package childsa.
type (
	Mode             = childsa.Mode
	ChildSA          = childsa.SA
	ChildSAPair      = childsa.Pair
	DataPath         = childsa.DataPath
	SACounters       = childsa.Counters
	DataPathCounters = childsa.DataPathCounters
	NATTDataPath     = childsa.NATTDataPath
	SALimit          = childsa.Limit
	SALimitSource    = childsa.LimitSource
	PeerMover        = childsa.PeerMover
	StagedDataPath   = childsa.StagedDataPath
)

// The encapsulation modes, under the engine's names.
const (
	ModeTunnel    = childsa.ModeTunnel
	ModeTransport = childsa.ModeTransport
)
