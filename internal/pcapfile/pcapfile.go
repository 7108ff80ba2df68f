// Package pcapfile reads and writes classic libpcap files of UDP datagrams
// over IPv4, for the wire codecs' tests (IKEv1 and IKEv2 captures, tshark
// cross-checks) without a pcap dependency. Reading handles Ethernet and raw
// IP link types and reassembles IPv4 fragments; everything else is
// skipped.
package pcapfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
)

// Datagram is one UDP datagram.
type Datagram struct {
	Frame   int // 1-based number of the record that completed it
	Src     netip.AddrPort
	Dst     netip.AddrPort
	Payload []byte
}

const (
	linkEthernet = 1
	linkRaw      = 101
)

// WriteUDP writes each payload as an Ethernet/IPv4/UDP frame from src to
// dst (the UDP checksum is 0: none, RFC 768), one second apart.
func WriteUDP(path string, src, dst netip.AddrPort, payloads [][]byte) error {
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		return errors.New("pcapfile: IPv4 addresses only")
	}
	var f bytes.Buffer
	le := binary.LittleEndian
	f.Write(le.AppendUint32(nil, 0xa1b2c3d4))
	f.Write(le.AppendUint16(nil, 2))
	f.Write(le.AppendUint16(nil, 4))
	f.Write(make([]byte, 8))             // thiszone, sigfigs
	f.Write(le.AppendUint32(nil, 65535)) // snaplen
	f.Write(le.AppendUint32(nil, linkEthernet))
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	for i, m := range payloads {
		if len(m) > 65535-28 {
			return fmt.Errorf("pcapfile: payload %d of %d bytes too long", i, len(m))
		}
		p := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00}
		ip := []byte{0x45, 0, 0, 0, 0, byte(i), 0x40, 0, 64, 17, 0, 0}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(m)))
		ip = append(append(ip, s4[:]...), d4[:]...)
		binary.BigEndian.PutUint16(ip[10:], ^checksum(ip))
		p = append(p, ip...)
		udp := binary.BigEndian.AppendUint16(nil, src.Port())
		udp = binary.BigEndian.AppendUint16(udp, dst.Port())
		udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(m)))
		p = append(append(append(p, udp...), 0, 0), m...)
		rec := le.AppendUint32(nil, uint32(1795258539+i))
		rec = le.AppendUint32(rec, 0)
		rec = le.AppendUint32(rec, uint32(len(p)))
		rec = le.AppendUint32(rec, uint32(len(p)))
		f.Write(rec)
		f.Write(p)
	}
	return os.WriteFile(path, f.Bytes(), 0o644)
}

func checksum(b []byte) uint16 {
	var sum uint32
	for j := 0; j+1 < len(b); j += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[j:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// ReadUDP returns the UDP datagrams over IPv4 of a classic pcap file, in
// the order their last IP fragment appears.
func ReadUDP(path string) ([]Datagram, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 24 {
		return nil, errors.New("pcapfile: short file")
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, errors.New("pcapfile: not a classic pcap file")
	}
	link := bo.Uint32(b[20:])
	if link != linkEthernet && link != linkRaw {
		return nil, fmt.Errorf("pcapfile: link type %d not supported", link)
	}
	var out []Datagram
	frags := map[[10]byte][]fragment{}
	pos := 24
	for n := 1; pos+16 <= len(b); n++ {
		incl := int(bo.Uint32(b[pos+8:]))
		if pos+16+incl > len(b) {
			return nil, fmt.Errorf("pcapfile: record %d truncated", n)
		}
		pkt := b[pos+16 : pos+16+incl]
		pos += 16 + incl
		if link == linkEthernet {
			if len(pkt) < 14 || binary.BigEndian.Uint16(pkt[12:]) != 0x0800 {
				continue
			}
			pkt = pkt[14:]
		}
		if d, ok := ipv4(pkt, n, frags); ok {
			out = append(out, d)
		}
	}
	return out, nil
}

type fragment struct {
	off  int
	more bool
	data []byte
}

// ipv4 parses one IPv4 packet; fragments are kept in frags until the
// datagram is whole.
func ipv4(pkt []byte, n int, frags map[[10]byte][]fragment) (Datagram, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != 17 {
		return Datagram{}, false
	}
	ihl, total := int(pkt[0]&0xf)*4, int(binary.BigEndian.Uint16(pkt[2:]))
	if ihl < 20 || total < ihl || total > len(pkt) {
		return Datagram{}, false
	}
	src, _ := netip.AddrFromSlice(pkt[12:16])
	dst, _ := netip.AddrFromSlice(pkt[16:20])
	ff := binary.BigEndian.Uint16(pkt[6:])
	body := pkt[ihl:total]
	if ff&0x3fff != 0 { // MF or a fragment offset
		var key [10]byte
		copy(key[:2], pkt[4:6])
		copy(key[2:], pkt[12:20])
		frags[key] = append(frags[key], fragment{off: int(ff&0x1fff) * 8, more: ff&0x2000 != 0, data: body})
		whole, ok := reassemble(frags[key])
		if !ok {
			return Datagram{}, false
		}
		delete(frags, key)
		body = whole
	}
	if len(body) < 8 {
		return Datagram{}, false
	}
	ulen := int(binary.BigEndian.Uint16(body[4:]))
	if ulen < 8 || ulen > len(body) {
		return Datagram{}, false
	}
	return Datagram{Frame: n,
		Src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(body)),
		Dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[2:])),
		Payload: append([]byte(nil), body[8:ulen]...)}, true
}

func reassemble(fs []fragment) ([]byte, bool) {
	s := append([]fragment(nil), fs...)
	sort.Slice(s, func(i, j int) bool { return s[i].off < s[j].off })
	var out []byte
	for _, f := range s {
		if f.off != len(out) {
			return nil, false
		}
		out = append(out, f.data...)
		if !f.more {
			return out, true
		}
	}
	return nil, false
}
