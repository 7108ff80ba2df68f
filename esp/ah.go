package esp

import (
	"crypto/hmac"
	"encoding/binary"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// optionsError is returned for IPv4 packets with options, which this AH
// implementation does not support (all options would have to be classified
// mutable or immutable, RFC 4302 appendix A.1). It counts and matches
// (errors.Is) as DropMalformed.
type optionsError struct{}

func (optionsError) Error() string {
	return "esp: AH: IPv4 header options are not supported"
}
func (optionsError) Is(target error) bool { return target == DropMalformed }

// ErrIPv4Options: AH was given an IPv4 packet with header options.
var ErrIPv4Options error = optionsError{}

// parseIPv4 checks that pkt is a whole unfragmented IPv4 packet without
// options whose total length equals len(pkt).
func parseIPv4(pkt []byte) error {
	if len(pkt) < IPv4HeaderLen || pkt[0]>>4 != 4 {
		return DropMalformed
	}
	if pkt[0]&0x0f != 5 {
		if pkt[0]&0x0f < 5 {
			return DropMalformed
		}
		return ErrIPv4Options
	}
	if int(binary.BigEndian.Uint16(pkt[2:4])) != len(pkt) {
		return DropMalformed
	}
	if binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 { // MF or fragment offset
		return DropMalformed
	}
	return nil
}

// macIPv4AH feeds the AH ICV input to the HMAC: the IPv4 header with the
// mutable fields (TOS, flags+fragment offset, TTL, checksum) zeroed, the AH
// header with the ICV field zeroed, then the payload (RFC 4302 3.3.3.1).
func (sa *SA) macIPv4AH(hdr, ah, payload []byte) []byte {
	h := sa.scratch[64:84]
	copy(h, hdr[:IPv4HeaderLen])
	h[1] = 0
	h[6], h[7], h[8] = 0, 0, 0
	h[10], h[11] = 0, 0
	sa.mac.Reset()
	sa.mac.Write(h)
	sa.mac.Write(ah[:12])
	sa.mac.Write(sa.zero[:sa.ahLen-12])
	sa.mac.Write(payload)
	return sa.macSum()
}

// ProtectAH inserts an AH header after the IPv4 header of ipPacket and
// appends the result to dst. In transport mode ipPacket is the original
// packet; in tunnel mode it is the outer header (see PutOuterIPv4, protocol
// 4 or 41) followed by the inner packet. Packets with IPv4 options
// (ErrIPv4Options) or fragments are refused. With
// cap(dst)-len(dst) >= len(ipPacket)+Overhead() nothing is allocated.
func (sa *SA) ProtectAH(dst, ipPacket []byte) ([]byte, error) {
	if sa.dir != Outbound {
		return dst, ErrWrongDirection
	}
	if sa.proto != isakmp.ProtoAH {
		return dst, ErrWrongProtocol
	}
	if err := parseIPv4(ipPacket); err != nil {
		return dst, err
	}
	nh := ipPacket[9]
	if sa.mode == childsa.ModeTunnel && nh != ProtoIPv4 && nh != ProtoIPv6 {
		return dst, DropMalformed
	}
	if len(ipPacket)+sa.ahLen > 0xffff {
		return dst, DropMalformed
	}
	seq, err := sa.nextSeq()
	if err != nil {
		return dst, err
	}
	payload := ipPacket[IPv4HeaderLen:]
	out, p := grow(dst, len(ipPacket)+sa.ahLen)
	hdr := p[:IPv4HeaderLen]
	copy(hdr, ipPacket[:IPv4HeaderLen])
	hdr[9] = ProtoAH
	binary.BigEndian.PutUint16(hdr[2:4], uint16(len(p)))
	ah := p[IPv4HeaderLen : IPv4HeaderLen+sa.ahLen]
	ah[0] = nh
	ah[1] = byte(sa.ahLen/4 - 2)
	ah[2], ah[3] = 0, 0
	binary.BigEndian.PutUint32(ah[4:8], sa.spi)
	binary.BigEndian.PutUint32(ah[8:12], seq)
	clear(ah[12:])
	copy(p[IPv4HeaderLen+sa.ahLen:], payload)
	copy(ah[12:], sa.macIPv4AH(hdr, ah, payload))
	hdr[10], hdr[11] = 0, 0
	binary.BigEndian.PutUint16(hdr[10:12], Checksum(hdr))
	sa.ok(len(payload))
	return out, nil
}

// VerifyAH checks an IPv4 packet carrying AH and appends to dst, in
// transport mode, the packet without AH (protocol and total length
// restored, checksum recomputed) and, in tunnel mode, the inner packet. It
// returns the extended slice and the AH next header. The header checksum of
// ipPacket is not checked (the ICV covers the immutable fields). Failures
// return dst unchanged and a counted DropReason (ErrIPv4Options for
// options, counted as DropMalformed).
func (sa *SA) VerifyAH(dst, ipPacket []byte) ([]byte, byte, error) {
	if sa.dir != Inbound {
		return dst, 0, ErrWrongDirection
	}
	if sa.proto != isakmp.ProtoAH {
		return dst, 0, ErrWrongProtocol
	}
	if err := parseIPv4(ipPacket); err != nil {
		sa.drop(DropMalformed)
		return dst, 0, err
	}
	if ipPacket[9] != ProtoAH || len(ipPacket) < IPv4HeaderLen+sa.ahLen {
		return dst, 0, sa.drop(DropMalformed)
	}
	hdr := ipPacket[:IPv4HeaderLen]
	ah := ipPacket[IPv4HeaderLen : IPv4HeaderLen+sa.ahLen]
	payload := ipPacket[IPv4HeaderLen+sa.ahLen:]
	nh := ah[0]
	if (int(ah[1])+2)*4 != sa.ahLen {
		return dst, 0, sa.drop(DropMalformed)
	}
	if sa.mode == childsa.ModeTunnel && nh != ProtoIPv4 && nh != ProtoIPv6 {
		return dst, 0, sa.drop(DropMalformed)
	}
	if binary.BigEndian.Uint32(ah[4:8]) != sa.spi {
		return dst, 0, sa.drop(DropNoSA)
	}
	seq := binary.BigEndian.Uint32(ah[8:12])
	if !hmac.Equal(sa.macIPv4AH(hdr, ah, payload), ah[12:12+sa.icvLen]) {
		return dst, 0, sa.drop(DropICV)
	}
	// Replay is judged only for authentic packets (as in OpenESP).
	if !sa.replay.check(seq) {
		return dst, 0, sa.drop(DropReplay)
	}
	sa.replay.update(seq)
	sa.ok(len(payload))
	if sa.mode == childsa.ModeTunnel {
		return append(dst, payload...), nh, nil
	}
	out, p := grow(dst, IPv4HeaderLen+len(payload))
	copy(p, hdr)
	copy(p[IPv4HeaderLen:], payload)
	RewriteIPv4(p[:IPv4HeaderLen], nh, len(p))
	return out, nh, nil
}
