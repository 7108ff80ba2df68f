package childsa

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"
)

// DataPath is the narrow interface between an IKE engine and whatever
// carries the traffic. The ESP/AH data path (package datapath) implements
// it; ike.MemoryDataPath records calls for tests.
type DataPath interface {
	// AllocateSPI returns a fresh, unused inbound SPI (>= 256).
	AllocateSPI(protocol uint8) (uint32, error)
	// Install adds both SAs; outbound traffic of the tunnel moves to the new
	// pair (make-before-break: older pairs keep decrypting until deleted).
	Install(pair Pair) error
	// Delete removes the pair whose inbound SPI is given.
	Delete(protocol uint8, inboundSPI uint32) error
	// LastInbound reports when the SA with this inbound SPI last
	// authenticated a packet (zero if never), for make-before-break and DPD.
	LastInbound(protocol uint8, inboundSPI uint32) time.Time
}

// Counters are the data path's counters of one IPsec SA pair.
type Counters struct {
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
// engine adds the counters to its status (per SA pair, and data-path-wide
// drops that belong to no SA, such as an unknown SPI).
type DataPathCounters interface {
	SACounters(protocol uint8, inboundSPI uint32) (Counters, bool)
	Drops() map[string]uint64
}

// NATTDataPath is implemented by data paths that carry ESP in UDP (RFC
// 3948). The engine hands each bound NAT-T socket to ServeNATT, which reads
// it until the socket is closed: ESP datagrams stay in the data path, NAT
// keepalives are dropped, and IKE messages (non-ESP marker removed) go to
// the engine (the ike callback), which copies what it keeps. The data path
// sends its ESP-in-UDP datagrams on the same socket, so NAT mappings are
// shared with IKE.
type NATTDataPath interface {
	ServeNATT(conn *net.UDPConn, local netip.AddrPort, ike func(from netip.AddrPort, msg []byte))
}

// Limit is a lifetime event of the data path: the byte lifetime's soft
// limit (rekey now) or hard limit (the SA no longer carries traffic), or
// the outbound sequence number approaching 2^32.
type Limit struct {
	Protocol   uint8
	InboundSPI uint32
	Hard       bool
	Reason     string // e.g. "byte lifetime 90% used", "sequence number space"
}

// LimitSource is implemented by data paths that enforce byte lifetimes and
// sequence number limits; the engine installs its handler before it runs.
type LimitSource interface {
	OnLimit(func(Limit))
}

// StagedDataPath is implemented by data paths that can install the two
// halves of a pair at different times, so that a phase 2 rekey loses no
// packet (ike/qmstaging.go): InstallInbound adds the pair's inbound SA (the
// new SPI verifies and decrypts at once) while the tunnel keeps sending
// on its older pair; ActivateOutbound later moves the tunnel's outbound
// traffic to that pair. Delete removes a staged pair as any other. A data
// path without it gets Install, and its outbound moves at once.
type StagedDataPath interface {
	InstallInbound(pair Pair) error
	ActivateOutbound(protocol uint8, inboundSPI uint32) error
}

// PeerMover is implemented by data paths that follow NAT rebinding: they
// report a verified ESP-in-UDP packet from a new mapping (OnPeerMoved) and
// accept the engine's own finding from IKE (UpdatePeer).
type PeerMover interface {
	OnPeerMoved(func(tunnel string, from, to netip.AddrPort))
	UpdatePeer(tunnel string, to netip.AddrPort)
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
