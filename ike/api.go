package ike

import "github.com/vpnlab/vpnlab/ike/status"

// The engine's view of the sinks it reports keys and datagrams to, which
// live in package status: aliases for the engine's code and tests.
type (
	KeyLogger  = status.KeyLogger
	PacketSink = status.PacketSink
)
