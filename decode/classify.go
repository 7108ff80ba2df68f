package decode

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// IP protocol numbers and ports of IKE and IPsec.
const (
	protoUDP  = 17
	protoESP  = 50
	protoAH   = 51
	portIKE   = 500
	portNATT  = 4500
	udpHeader = 8
)

// kind is what a datagram carries.
type kind int

const (
	kindOther     kind = iota
	kindIKE            // ISAKMP on 500, or on 4500 after the non-ESP marker
	kindKeepalive      // RFC 3948 NAT-keepalive (one 0xff byte)
	kindESP            // raw protocol 50 or ESP in UDP 4500
	kindAH             // raw protocol 51
	kindDamaged        // claims to be one of the above but is malformed
)

// packet is a classified datagram.
type packet struct {
	d        Datagram
	kind     kind
	src, dst netip.AddrPort // UDP ports; port 0 for raw ESP/AH
	data     []byte         // ISAKMP message, ESP (from the SPI) or AH header on
	marker   bool           // IKE after a non-ESP marker (port 4500)
	why      string         // kindOther / kindDamaged: a short reason
}

// classify decides what an IPv4 datagram carries (RFC 3948 section 2.2:
// on port 4500 a zero 4-byte non-ESP marker precedes IKE, a single 0xff
// byte is a keepalive, anything else is ESP starting with its SPI).
func classify(d Datagram) packet {
	p := packet{d: d, src: netip.AddrPortFrom(d.Src, 0), dst: netip.AddrPortFrom(d.Dst, 0)}
	switch d.Proto {
	case protoESP:
		p.kind, p.data = kindESP, d.Payload
		if len(d.Payload) < 8 {
			p.kind, p.why = kindDamaged, "ESP shorter than SPI and sequence number"
		}
		return p
	case protoAH:
		p.kind, p.data = kindAH, d.Payload
		if len(d.Payload) < 12 {
			p.kind, p.why = kindDamaged, "AH shorter than its fixed header"
		}
		return p
	case protoUDP:
	default:
		p.why = "IP protocol " + itoa(int(d.Proto))
		return p
	}
	b := d.Payload
	if len(b) < udpHeader {
		p.kind, p.why = kindDamaged, "truncated UDP header"
		return p
	}
	sport, dport := binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
	ulen := int(binary.BigEndian.Uint16(b[4:6]))
	p.src, p.dst = netip.AddrPortFrom(d.Src, sport), netip.AddrPortFrom(d.Dst, dport)
	body := b[udpHeader:]
	if ulen >= udpHeader && ulen <= len(b) {
		body = b[udpHeader:ulen]
	}
	isPort := func(port uint16) bool { return sport == port || dport == port }
	switch {
	case isPort(portNATT):
		switch {
		case len(body) == 1 && body[0] == 0xff:
			p.kind = kindKeepalive
		case len(body) >= 4 && binary.BigEndian.Uint32(body) == 0:
			p.kind, p.data, p.marker = kindIKE, body[4:], true
		case len(body) >= 8:
			p.kind, p.data = kindESP, body
		default:
			p.kind, p.why = kindDamaged, "UDP 4500 datagram of "+itoa(len(body))+" bytes is neither IKE, keepalive nor ESP"
		}
	case isPort(portIKE):
		p.kind, p.data = kindIKE, body
	default:
		p.why = "UDP port " + itoa(int(sport)) + "->" + itoa(int(dport))
	}
	return p
}

func itoa(n int) string { return strconv.Itoa(n) }
