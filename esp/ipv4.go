package esp

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// IPv4HeaderLen is the length of an IPv4 header without options.
const IPv4HeaderLen = 20

// Checksum returns the Internet checksum (RFC 1071) of b.
func Checksum(b []byte) uint16 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// RewriteIPv4 sets the protocol and total length of the IPv4 header hdr
// (hdr[:IHL*4]) and recomputes its checksum: transport mode, where the
// header of the original packet becomes the header of the ESP/AH packet.
func RewriteIPv4(hdr []byte, proto uint8, totalLen int) error {
	if len(hdr) < IPv4HeaderLen || hdr[0]>>4 != 4 {
		return errors.New("esp: not an IPv4 header")
	}
	ihl := int(hdr[0]&0x0f) * 4
	if ihl < IPv4HeaderLen || ihl > len(hdr) {
		return errors.New("esp: bad IPv4 header length")
	}
	if totalLen > 0xffff {
		return errors.New("esp: IPv4 packet longer than 65535 bytes")
	}
	hdr[9] = proto
	binary.BigEndian.PutUint16(hdr[2:4], uint16(totalLen))
	hdr[10], hdr[11] = 0, 0
	binary.BigEndian.PutUint16(hdr[10:12], Checksum(hdr[:ihl]))
	return nil
}

// PutOuterIPv4 writes the 20-byte outer IPv4 header of a tunnel-mode packet
// into hdr[:20]. totalLen is the length of the whole outer packet; inner is
// the inner packet (IPv4 or IPv6), from which it copies:
//   - DSCP (RFC 4301 section 5.1.2.1),
//   - ECN unchanged, CE included: RFC 6040 section 4.1 normal mode ("an
//     encapsulator MUST copy the ECN field"; RFC 6040 removed the reset of
//     CE to ECT(0) that RFC 4301 made),
//   - DF for an IPv4 inner packet (RFC 4301 section 8.1; 0 for IPv6).
//
// TTL is 64, flags other than DF and fragment offset 0, no options.
func PutOuterIPv4(hdr []byte, src, dst netip.Addr, id uint16, proto uint8, totalLen int, inner []byte) error {
	if len(hdr) < IPv4HeaderLen {
		return errors.New("esp: outer header buffer shorter than 20 bytes")
	}
	if !src.Is4() || !dst.Is4() {
		return errors.New("esp: outer addresses must be IPv4")
	}
	if totalLen < IPv4HeaderLen || totalLen > 0xffff {
		return errors.New("esp: bad outer IPv4 total length")
	}
	var tos, flags byte
	switch {
	case len(inner) >= IPv4HeaderLen && inner[0]>>4 == 4:
		tos = inner[1]
		flags = inner[6] & 0x40 // DF
	case len(inner) >= 40 && inner[0]>>4 == 6:
		tos = inner[0]<<4 | inner[1]>>4 // traffic class
	default:
		return errors.New("esp: inner packet is neither IPv4 nor IPv6")
	}
	h := hdr[:IPv4HeaderLen]
	h[0] = 0x45
	h[1] = tos
	binary.BigEndian.PutUint16(h[2:4], uint16(totalLen))
	binary.BigEndian.PutUint16(h[4:6], id)
	h[6], h[7] = flags, 0
	h[8] = 64
	h[9] = proto
	h[10], h[11] = 0, 0
	s, d := src.As4(), dst.As4()
	copy(h[12:16], s[:])
	copy(h[16:20], d[:])
	binary.BigEndian.PutUint16(h[10:12], Checksum(h))
	return nil
}

// ECN codepoints.
const (
	ecnNotECT = 0
	ecnECT1   = 1
	ecnECT0   = 2
	ecnCE     = 3
)

// DecapECN applies RFC 6040 section 4.2 (decapsulation) to an IPv4 inner
// packet given the outer header's TOS byte, updating the inner ECN field and
// checksum in place. It reports false if the packet must be dropped (outer
// CE, inner Not-ECT). IPv6 inner packets are updated the same way (no
// checksum).
func DecapECN(outerTOS byte, inner []byte) bool {
	outer := outerTOS & 3
	var in byte
	v6 := len(inner) >= 40 && inner[0]>>4 == 6
	switch {
	case v6:
		in = (inner[1] >> 4) & 3
	case len(inner) >= IPv4HeaderLen && inner[0]>>4 == 4:
		in = inner[1] & 3
	default:
		return true
	}
	res := in
	switch {
	case outer == ecnCE && in == ecnNotECT:
		return false
	case outer == ecnCE:
		res = ecnCE
	case outer == ecnECT1 && in == ecnECT0:
		res = ecnECT1
	}
	if res == in {
		return true
	}
	if v6 {
		inner[1] = inner[1]&^0x30 | res<<4
		return true
	}
	inner[1] = inner[1]&^3 | res
	ihl := int(inner[0]&0x0f) * 4
	if ihl >= IPv4HeaderLen && ihl <= len(inner) {
		inner[10], inner[11] = 0, 0
		binary.BigEndian.PutUint16(inner[10:12], Checksum(inner[:ihl]))
	}
	return true
}
