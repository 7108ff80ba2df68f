package esp

import "sync/atomic"

// DropReason is why an inbound packet was dropped. It implements error, so
// the inbound functions return it directly (compare with ==, errors.Is or a
// type switch); returning it allocates nothing.
type DropReason uint8

const (
	// DropMalformed: too short, misaligned, bad header fields, IPv4
	// options or fragments with AH, bad trailer.
	DropMalformed DropReason = iota + 1
	// DropNoSA: no SA for the SPI. The SA lookup (not this package) counts
	// it; an SA counts it itself when handed a packet with a different SPI.
	DropNoSA
	// DropICV: integrity check (HMAC or GCM tag) failed.
	DropICV
	// DropReplay: duplicate sequence number, or left of the window.
	DropReplay
	// DropPadding: authentic packet whose padding is not 1, 2, 3, ...
	// (RFC 4303 section 2.4).
	DropPadding

	numDrops
)

var dropNames = [numDrops]string{"", "malformed", "no-sa", "icv", "replay", "padding"}

// String returns the reason's short name (e.g. "icv").
func (r DropReason) String() string {
	if r == 0 || r >= numDrops {
		return "unknown"
	}
	return dropNames[r]
}

// Error implements error.
func (r DropReason) Error() string { return "esp: packet dropped: " + r.String() }

// Stats are an SA's counters.
type Stats struct {
	Packets uint64 // packets protected (outbound) or accepted (inbound)
	Bytes   uint64 // payload bytes of those packets
	Drops   map[DropReason]uint64
}

type stats struct {
	packets, bytes atomic.Uint64
	drops          [numDrops]atomic.Uint64
}

func (sa *SA) ok(n int) {
	sa.stats.packets.Add(1)
	sa.stats.bytes.Add(uint64(n))
}

// drop counts r and returns it as the error.
func (sa *SA) drop(r DropReason) DropReason {
	sa.stats.drops[r].Add(1)
	return r
}

// Drops returns the number of packets dropped for reason r.
func (sa *SA) Drops(r DropReason) uint64 {
	if r == 0 || r >= numDrops {
		return 0
	}
	return sa.stats.drops[r].Load()
}

// Stats returns a snapshot of the counters (allocates; not for the hot
// path). Drops lists every reason, zeros included.
func (sa *SA) Stats() Stats {
	s := Stats{Packets: sa.stats.packets.Load(), Bytes: sa.stats.bytes.Load(), Drops: map[DropReason]uint64{}}
	for r := DropMalformed; r < numDrops; r++ {
		s.Drops[r] = sa.stats.drops[r].Load()
	}
	return s
}

// Counts returns the packets and payload bytes protected (outbound) or
// accepted (inbound) so far, without allocating: for byte lifetimes on the
// packet path.
func (sa *SA) Counts() (packets, bytes uint64) {
	return sa.stats.packets.Load(), sa.stats.bytes.Load()
}
