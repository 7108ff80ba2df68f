package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// SelectorFromPrefix returns the selector covering prefix, any protocol and
// port.
func SelectorFromPrefix(p netip.Prefix) Selector {
	p = p.Masked()
	start := p.Addr()
	b := start.AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	end, _ := netip.AddrFromSlice(b)
	t := TSIPv4Range
	if start.Is6() {
		t = TSIPv6Range
	}
	return Selector{Type: t, StartPort: 0, EndPort: 0xffff, Start: start, End: end}
}

// Prefixes returns the shortest list of prefixes that covers the
// selector's address range exactly.
func (s Selector) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	a, end := s.Start, s.End
	if !a.IsValid() || !end.IsValid() || a.BitLen() != end.BitLen() || end.Less(a) {
		return nil
	}
	for {
		bits := a.BitLen()
		// the largest aligned block that starts at a and ends at or before end
		for bits > 0 {
			p := netip.PrefixFrom(a, bits-1).Masked()
			if p.Addr() != a || lastAddr(p).Compare(end) > 0 {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(a, bits)
		out = append(out, p)
		last := lastAddr(p)
		if last == end || len(out) > 256 {
			return out
		}
		a = last.Next()
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= p.Bits() {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (s Selector) addrLen() (int, error) {
	switch s.Type {
	case TSIPv4Range:
		return 4, nil
	case TSIPv6Range:
		return 16, nil
	}
	return 0, fmt.Errorf("traffic selector type %d", s.Type)
}

func (p *TS) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	if len(p.Selectors) == 0 || len(p.Selectors) > 0xff {
		return nil, fmt.Errorf("%d traffic selectors, want 1 to 255", len(p.Selectors))
	}
	b = append(b, byte(len(p.Selectors)), 0, 0, 0)
	for i, s := range p.Selectors {
		n, err := s.addrLen()
		if err != nil {
			return nil, fmt.Errorf("selector %d: %w", i, err)
		}
		if s.Start.BitLen() != 8*n || s.End.BitLen() != 8*n {
			return nil, fmt.Errorf("selector %d: %s addresses %v-%v", i, s.Type, s.Start, s.End)
		}
		b = append(b, byte(s.Type), s.Protocol)
		b = binary.BigEndian.AppendUint16(b, uint16(8+2*n))
		b = binary.BigEndian.AppendUint16(b, s.StartPort)
		b = binary.BigEndian.AppendUint16(b, s.EndPort)
		b = append(b, s.Start.AsSlice()...)
		b = append(b, s.End.AsSlice()...)
	}
	return b, nil
}

var errNoSelectors = errors.New("no traffic selectors")

// decodeTS decodes TSi/TSr (section 3.13). Every selector must be of a
// known type with its exact length (section 3.13.1: 16 bytes for IPv4, 40
// for IPv6); start > end ranges are kept (an engine narrows or refuses).
func decodeTS(t PayloadType, body []byte, off int) (Payload, error) {
	if len(body) < 4 {
		return nil, decodeErr(t, off, "body of %d bytes, at least 4 needed", len(body))
	}
	num := int(body[0])
	if num == 0 {
		return nil, decodeErr(t, off, "%v", errNoSelectors)
	}
	ts := &TS{Responder: t == PayloadTSr}
	pos := 4
	base := off + GenericLen
	for i := 0; i < num; i++ {
		left := len(body) - pos
		if left < 8 {
			return nil, decodeErr(t, base+pos, "selector %d of %d: truncated (%d bytes left)", i+1, num, left)
		}
		s := Selector{Type: TSType(body[pos]), Protocol: body[pos+1]}
		slen := int(binary.BigEndian.Uint16(body[pos+2:]))
		n, err := s.addrLen()
		if err != nil {
			return nil, decodeErr(t, base+pos, "selector %d: unknown type %d", i+1, body[pos])
		}
		if slen != 8+2*n || slen > left {
			return nil, decodeErr(t, base+pos, "selector %d: length %d for %s with %d bytes left", i+1, slen, s.Type, left)
		}
		s.StartPort = binary.BigEndian.Uint16(body[pos+4:])
		s.EndPort = binary.BigEndian.Uint16(body[pos+6:])
		s.Start, _ = netip.AddrFromSlice(body[pos+8 : pos+8+n])
		s.End, _ = netip.AddrFromSlice(body[pos+8+n : pos+slen])
		ts.Selectors = append(ts.Selectors, s)
		pos += slen
	}
	if pos != len(body) {
		return nil, decodeErr(t, base+pos, "%d bytes after the last selector", len(body)-pos)
	}
	return ts, nil
}

// String is e.g. "10.0.0.0-10.0.255.255 proto 0 ports 0-65535".
func (s Selector) String() string {
	return fmt.Sprintf("%v-%v proto %d ports %d-%d", s.Start, s.End, s.Protocol, s.StartPort, s.EndPort)
}
