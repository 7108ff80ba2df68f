// Package childsa is the contract between an IKE engine (IKEv1 quick mode
// today, IKEv2 CREATE_CHILD_SA next) and the data path that carries the
// traffic: the negotiated IPsec SAs ("child SAs" in RFC 7296's words), the
// DataPath interface they are installed through, and the optional extras a
// data path may offer (counters, byte lifetimes, NAT-T sockets, NAT
// rebinding). It imports no engine: esp and datapath depend on it, not on
// the IKE engines.
package childsa

import (
	"net/netip"
	"time"
)

// Mode is the IPsec encapsulation mode.
type Mode int

// The encapsulation modes (RFC 4301 section 4.1).
const (
	ModeTunnel Mode = iota
	ModeTransport
)

func (m Mode) String() string {
	if m == ModeTransport {
		return "transport"
	}
	return "tunnel"
}

// SA is one direction of a negotiated IPsec SA, as the data path needs it.
type SA struct {
	SPI        uint32
	Protocol   uint8  // isakmp.ProtoESP or isakmp.ProtoAH
	Encryption uint8  // ESP transform ID (isakmp.ESPAESCBC, ESPAESGCM16, ESPNull), 0 for AH
	EncKey     []byte // for GCM: key followed by the 4-byte salt (RFC 4106 section 8.1)
	Integrity  uint16 // isakmp.AuthHMACSHA1...; 0 for GCM
	IntegKey   []byte
}

// Pair is what a negotiation hands to the data path: the inbound and the
// outbound SA of one negotiation, with everything both share.
type Pair struct {
	Tunnel   string
	Inbound  SA
	Outbound SA
	Mode     Mode
	UDPEncap bool           // ESP in UDP (RFC 3948)
	Local    netip.AddrPort // outer addresses (port is 4500 with UDPEncap)
	Remote   netip.AddrPort
	LocalTS  netip.Prefix
	RemoteTS netip.Prefix
	// NAT-OA (RFC 3947 section 5.2), transport mode in UDP only: the
	// addresses the peer put into its TCP/UDP pseudo-headers, from the
	// peer's NAT-OA payloads: OriginalRemote is the peer's own (pre-NAT)
	// address, OriginalLocal our address as the peer knows it. Invalid when
	// not exchanged. The receiver uses them to fix TCP/UDP checksums after
	// decapsulation (RFC 3948 section 3.1.2).
	OriginalLocal  netip.Addr
	OriginalRemote netip.Addr
	Lifetime       time.Duration
	LifetimeKB     uint64
	ReplayWindow   int
}
