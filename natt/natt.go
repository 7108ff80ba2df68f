// Package natt holds NAT traversal's data-path helpers (RFC 3948): the
// Internet checksum arithmetic needed after a UDP-encapsulated transport-mode
// ESP packet has been decapsulated, when the IPv4 header the receiver
// rebuilds carries other addresses than those the sender put into its TCP or
// UDP pseudo-header.
//
// Everything here is a pure function over byte slices and addresses: no
// state, no allocations, safe for concurrent use.
//
// Arithmetic: the Internet checksum is the ones' complement of the ones'
// complement sum of 16-bit big-endian words (RFC 1071). Sums are accumulated
// in 64 bits and folded at the end (the end-around carry); an incremental
// update follows RFC 1624 equation 3, HC' = ~(~HC + ~m + m'), with every
// negation limited to 16 bits.
package natt

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers of the transports whose checksum covers a
// pseudo-header.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// Fix reports what FixTransport did to a segment.
type Fix uint8

const (
	// FixNone: nothing to do or nothing possible (not TCP or UDP, segment
	// too short, not IPv4, or the addresses did not change).
	FixNone Fix = iota
	// FixZeroUDP: a UDP datagram sent without checksum (0) stays without.
	FixZeroUDP
	// FixIncremental: the checksum was updated for the address change
	// (RFC 3948 section 3.1.2, procedure 1, with RFC 1624 arithmetic).
	FixIncremental
	// FixRecomputed: the original addresses were unknown, the checksum was
	// computed again over the whole segment (RFC 3948 section 3.1.2,
	// procedure 2).
	FixRecomputed
)

func (f Fix) String() string {
	switch f {
	case FixNone:
		return "none"
	case FixZeroUDP:
		return "zero-udp"
	case FixIncremental:
		return "incremental"
	case FixRecomputed:
		return "recomputed"
	}
	return "unknown"
}

// ChecksumOffset returns the offset of the checksum field in a TCP or UDP
// header, or -1 for other protocols.
func ChecksumOffset(proto uint8) int {
	switch proto {
	case ProtoTCP:
		return 16
	case ProtoUDP:
		return 6
	}
	return -1
}

// sum adds the 16-bit big-endian words of b to acc (an odd last byte is
// padded with a zero byte, RFC 1071 section 4.1). The result is unfolded.
func sum(b []byte, acc uint64) uint64 {
	for len(b) >= 8 {
		acc += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold reduces an accumulated sum to 16 bits with end-around carry. The
// result of a non-zero sum is never 0 (ones' complement "-0" is 0xffff).
func fold(acc uint64) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// Sum returns the folded ones' complement sum of b (not complemented):
// Sum(b) is 0xffff exactly when a block that contains its own checksum
// verifies.
func Sum(b []byte) uint16 { return fold(sum(b, 0)) }

// addr4 sums the two words of an IPv4 address.
func addr4(a [4]byte) uint64 {
	return (uint64(a[0])<<8 | uint64(a[1])) + (uint64(a[2])<<8 | uint64(a[3]))
}

// negAddr4 sums the 16-bit complements of the two words of an IPv4
// address (RFC 1624's ~m).
func negAddr4(a [4]byte) uint64 {
	return uint64(^(uint16(a[0])<<8 | uint16(a[1]))) + uint64(^(uint16(a[2])<<8 | uint16(a[3])))
}

// PseudoHeaderSum returns the folded ones' complement sum (not
// complemented) of the IPv4 pseudo-header of RFC 793 section 3.1 / RFC 768:
// source, destination, zero, protocol, TCP or UDP length. This is the value
// Linux leaves in the checksum field of a packet whose checksum is
// offloaded (CHECKSUM_PARTIAL). ok is false unless both addresses are IPv4.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) (s uint16, ok bool) {
	if !src.Is4() || !dst.Is4() {
		return 0, false
	}
	return fold(pseudo4(src, dst, proto, length)), true
}

func pseudo4(src, dst netip.Addr, proto uint8, length int) uint64 {
	return addr4(src.As4()) + addr4(dst.As4()) + uint64(proto) + uint64(uint16(length))
}

// transportLen returns how many bytes of seg the checksum covers: the UDP
// length field when it is sane, else the whole segment.
func transportLen(proto uint8, seg []byte) int {
	if proto == ProtoUDP && len(seg) >= 8 {
		if n := int(binary.BigEndian.Uint16(seg[4:6])); n >= 8 && n <= len(seg) {
			return n
		}
	}
	return len(seg)
}

// Checksum computes the TCP or UDP checksum of seg (the header and
// payload, whatever its checksum field holds) for the IPv4 pseudo-header
// of src and dst: the value to store in the checksum field. For UDP a
// computed 0 is returned as 0xffff (RFC 768: 0 means "no checksum"). ok is
// false for other protocols, non-IPv4 addresses or a segment too short to
// hold the checksum field.
func Checksum(src, dst netip.Addr, proto uint8, seg []byte) (c uint16, ok bool) {
	off := ChecksumOffset(proto)
	if off < 0 || len(seg) < off+2 || !src.Is4() || !dst.Is4() {
		return 0, false
	}
	n := transportLen(proto, seg)
	acc := pseudo4(src, dst, proto, n)
	acc = sum(seg[:off], acc)
	acc = sum(seg[off+2:n], acc) // the checksum field counts as zero (n >= off+2: TCP len >= 18, UDP n >= 8)
	c = ^fold(acc)
	if c == 0 && proto == ProtoUDP {
		c = 0xffff
	}
	return c, true
}

// Verify reports whether seg's TCP or UDP checksum is right for the IPv4
// pseudo-header of src and dst. A UDP datagram without checksum (0)
// verifies.
func Verify(src, dst netip.Addr, proto uint8, seg []byte) bool {
	off := ChecksumOffset(proto)
	if off < 0 || len(seg) < off+2 || !src.Is4() || !dst.Is4() {
		return false
	}
	if proto == ProtoUDP && seg[6] == 0 && seg[7] == 0 {
		return true
	}
	n := transportLen(proto, seg)
	return fold(sum(seg[:n], pseudo4(src, dst, proto, n))) == 0xffff
}

// Update returns the checksum check of a TCP or UDP segment after its
// pseudo-header's addresses changed from oldSrc/oldDst to newSrc/newDst,
// by RFC 1624 equation 3 (the segment itself is not needed). All four
// addresses must be IPv4 (otherwise check is returned unchanged). Note RFC
// 1624 erratum 4782: with no change at all and check 0 the result would be
// 0xffff, so callers skip unchanged addresses (FixTransport does).
func Update(check uint16, oldSrc, oldDst, newSrc, newDst netip.Addr) uint16 {
	if !oldSrc.Is4() || !oldDst.Is4() || !newSrc.Is4() || !newDst.Is4() {
		return check
	}
	acc := uint64(^check)
	acc += negAddr4(oldSrc.As4()) + negAddr4(oldDst.As4())
	acc += addr4(newSrc.As4()) + addr4(newDst.As4())
	return ^fold(acc)
}

// UpdateWord returns checksum check after one 16-bit word of the
// checksummed data changed from old to new (RFC 1624 equation 3).
func UpdateWord(check, old, new uint16) uint16 {
	return ^fold(uint64(^check) + uint64(^old) + uint64(new))
}

// FixTransport applies RFC 3948 section 3.1.2 to seg, the TCP or UDP
// segment of a decapsulated transport-mode packet whose rebuilt IPv4 header
// carries src and dst, and returns what it did. The checksum field is
// changed in place; nothing else is.
//
// RFC 3948 section 3.1.2 (Transport Mode Decapsulation NAT Procedure)
// leaves no "do nothing" choice:
//
//	Depending on local policy, one of the following MUST be done:
//	1. If the protocol header after the ESP header is a TCP/UDP header
//	   and the peer's real source and destination IP address have been
//	   received according to [RFC3947], incrementally recompute the
//	   TCP/UDP checksum: [subtract the received source and destination
//	   addresses, add the real ones obtained from the NAT-OA]
//	2. If the protocol header after the ESP header is a TCP/UDP header,
//	   recompute the checksum field in the TCP/UDP header.
//	3. If the protocol header after the ESP header is a UDP header, set
//	   the checksum field to zero in the UDP header. [For TCP, a flag
//	   telling the stack not to verify MAY be used.]
//
// origSrc and origDst are the real addresses: what the sender put into its
// pseudo-header, learnt from its NAT-OA payloads (RFC 3947 section 5.2):
// the sender's own original address and our address as the sender saw it.
// If both are valid, procedure 1; otherwise procedure 2 (the NAT-OA are
// not known: recomputing is the only one of the three that keeps a
// meaningful checksum). Procedure 3 is not used. A UDP checksum of 0 (the
// sender sent none) stays 0. Procedure 2 makes any segment verify; the RFC
// allows it because ESP has already authenticated the payload.
func FixTransport(seg []byte, proto uint8, src, dst, origSrc, origDst netip.Addr) Fix {
	off := ChecksumOffset(proto)
	if off < 0 || len(seg) < off+2 || !src.Is4() || !dst.Is4() {
		return FixNone
	}
	if proto == ProtoUDP && seg[6] == 0 && seg[7] == 0 {
		return FixZeroUDP
	}
	field := seg[off : off+2]
	if origSrc.Is4() && origDst.Is4() {
		if origSrc == src && origDst == dst {
			return FixNone
		}
		// The sender summed origSrc/origDst, we sum src/dst: m -> m' in
		// RFC 1624's terms. On the checksum field (the complement of the
		// sum) this adds the real addresses and subtracts the received
		// ones, which is how RFC 3948 words procedure 1.
		c := Update(binary.BigEndian.Uint16(field), origSrc, origDst, src, dst)
		if c == 0 && proto == ProtoUDP {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(field, c)
		return FixIncremental
	}
	c, ok := Checksum(src, dst, proto, seg)
	if !ok {
		return FixNone
	}
	binary.BigEndian.PutUint16(field, c)
	return FixRecomputed
}
