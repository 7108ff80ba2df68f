package ike

import (
	"net/netip"
	"time"
)

// ChildSA is one direction of a negotiated IPsec SA, as the data path needs it.
type ChildSA struct {
	SPI        uint32
	Protocol   uint8  // isakmp.ProtoESP or isakmp.ProtoAH
	Encryption uint8  // ESP transform ID (isakmp.ESPAESCBC, ESPAESGCM16, ESPNull), 0 for AH
	EncKey     []byte // for GCM: key followed by the 4-byte salt (RFC 4106 section 8.1)
	Integrity  uint16 // isakmp.AuthHMACSHA1...; 0 for GCM
	IntegKey   []byte
}

// ChildSAPair is what quick mode hands to the data path: the inbound and the
// outbound SA of one negotiation, with everything both share.
type ChildSAPair struct {
	Tunnel       string
	Inbound      ChildSA
	Outbound     ChildSA
	Mode         Mode
	UDPEncap     bool           // ESP in UDP (RFC 3948)
	Local        netip.AddrPort // outer addresses (port is 4500 with UDPEncap)
	Remote       netip.AddrPort
	LocalTS      netip.Prefix
	RemoteTS     netip.Prefix
	Lifetime     time.Duration
	LifetimeKB   uint64
	ReplayWindow int
}

// DataPath is the narrow interface between quick mode and whatever carries the
// traffic. The ESP/AH data path implements it; MemoryDataPath records calls
// for tests.
type DataPath interface {
	// AllocateSPI returns a fresh, unused inbound SPI (>= 256).
	AllocateSPI(protocol uint8) (uint32, error)
	// Install adds both SAs; outbound traffic of the tunnel moves to the new
	// pair (make-before-break: older pairs keep decrypting until deleted).
	Install(pair ChildSAPair) error
	// Delete removes the pair whose inbound SPI is given.
	Delete(protocol uint8, inboundSPI uint32) error
	// LastInbound reports when the SA with this inbound SPI last
	// authenticated a packet (zero if never), for make-before-break and DPD.
	LastInbound(protocol uint8, inboundSPI uint32) time.Time
}
