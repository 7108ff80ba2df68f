package ike

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
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
	Tunnel   string
	Inbound  ChildSA
	Outbound ChildSA
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

// StagedDataPath is implemented by data paths that can install the two
// halves of a pair at different times, so that a phase 2 rekey loses no
// packet (qmstaging.go): InstallInbound adds the pair's inbound SA (the
// new SPI verifies and decrypts at once) while the tunnel keeps sending
// on its older pair; ActivateOutbound later moves the tunnel's outbound
// traffic to that pair. Delete removes a staged pair as any other. A data
// path without it gets Install, and its outbound moves at once.
type StagedDataPath interface {
	InstallInbound(pair ChildSAPair) error
	ActivateOutbound(protocol uint8, inboundSPI uint32) error
}

// SACounters are the data path's counters of one IPsec SA pair.
type SACounters struct {
	PacketsIn   uint64            `json:"packets_in"`
	BytesIn     uint64            `json:"bytes_in"`
	PacketsOut  uint64            `json:"packets_out"`
	BytesOut    uint64            `json:"bytes_out"`
	Drops       map[string]uint64 `json:"drops"` // by reason: icv, replay, padding, selector, malformed, no-sa, expired
	LastInbound time.Time         `json:"last_inbound,omitzero"`
	// Sizes on the way in (data path tunnel options): TCP SYNs whose MSS
	// was clamped, inside packets fragmented before encryption, ICMP
	// fragmentation-needed sent back for packets with DF too big for the
	// tunnel.
	MSSClamped         uint64 `json:"mss_clamped,omitempty"`
	FragBeforeEncrypt  uint64 `json:"frag_before_encrypt,omitempty"`
	ICMPFragNeededSent uint64 `json:"icmp_frag_needed_sent,omitempty"`
	// Control*: the share of the above between two link-local addresses
	// (the tunnel's inside /30: BGP and the like), so that user traffic is
	// the rest.
	ControlPacketsIn  uint64 `json:"control_packets_in"`
	ControlBytesIn    uint64 `json:"control_bytes_in"`
	ControlPacketsOut uint64 `json:"control_packets_out"`
	ControlBytesOut   uint64 `json:"control_bytes_out"`
}

// DataPathCounters is implemented by data paths that count traffic. The
// engine adds the counters to its Status (per SA pair, and data-path-wide
// drops that belong to no SA, such as an unknown SPI).
type DataPathCounters interface {
	SACounters(protocol uint8, inboundSPI uint32) (SACounters, bool)
	Drops() map[string]uint64
}

// NATTDataPath is implemented by data paths that carry ESP in UDP (RFC
// 3948). The engine hands each bound NAT-T socket to ServeNATT, which reads
// it until the socket is closed: ESP datagrams stay in the data path, NAT
// keepalives are dropped, and IKE messages (non-ESP marker removed) go to
// ike, which copies what it keeps. The data path sends its ESP-in-UDP
// datagrams on the same socket, so NAT mappings are shared with IKE.
type NATTDataPath interface {
	ServeNATT(conn *net.UDPConn, local netip.AddrPort, ike func(from netip.AddrPort, msg []byte))
}

// SALimit is a lifetime event of the data path: the byte lifetime's soft
// limit (rekey now) or hard limit (the SA no longer carries traffic), or
// the outbound sequence number approaching 2^32.
type SALimit struct {
	Protocol   uint8
	InboundSPI uint32
	Hard       bool
	Reason     string // e.g. "byte lifetime 90% used", "sequence number space"
}

// SALimitSource is implemented by data paths that enforce byte lifetimes
// and sequence number limits; the engine installs its handler before Run.
type SALimitSource interface {
	OnLimit(func(SALimit))
}

// RandomSPI returns a random SPI >= 256 (RFC 4303 section 2.1 reserves
// 1-255) for which inUse reports false: the allocator behind every
// DataPath's AllocateSPI. The caller holds whatever lock guards inUse.
func RandomSPI(inUse func(spi uint32) bool) (uint32, error) {
	for range 100 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		spi := binary.BigEndian.Uint32(b[:])
		if spi >= 256 && !inUse(spi) {
			return spi, nil
		}
	}
	return 0, errors.New("no free SPI")
}
