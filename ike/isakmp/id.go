package isakmp

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"unicode/utf8"
)

// IDFromAddr returns an ID_IPV4_ADDR or ID_IPV6_ADDR payload for a (an
// IPv4-mapped IPv6 address is treated as IPv4), protocol 0, port 0. It returns
// nil for an invalid address.
func IDFromAddr(a netip.Addr) *ID {
	if !a.IsValid() {
		return nil
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return &ID{IDType: IDIPv4Addr, Data: b[:]}
	}
	b := a.As16()
	return &ID{IDType: IDIPv6Addr, Data: b[:]}
}

// IDFromPrefix returns an address ID for a host prefix (/32, /128) and an
// ID_IPV4_ADDR_SUBNET / ID_IPV6_ADDR_SUBNET (address and mask) otherwise.
// Host bits are cleared. An IPv4-mapped IPv6 prefix (::ffff:a.b.c.d/96+n)
// gives the IPv4 form. It returns nil for an invalid prefix (and for a mapped
// prefix shorter than /96).
func IDFromPrefix(p netip.Prefix) *ID {
	if !p.IsValid() {
		return nil
	}
	a := p.Addr()
	n := p.Bits()
	if a.Is4In6() {
		if n < 96 {
			return nil
		}
		a, n = a.Unmap(), n-96
	}
	if n == a.BitLen() {
		return IDFromAddr(a)
	}
	p = netip.PrefixFrom(a, n).Masked()
	mask := make([]byte, a.BitLen()/8)
	for i := 0; i < n; i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	t := IDIPv4AddrSubnet
	if a.Is6() {
		t = IDIPv6AddrSubnet
	}
	return &ID{IDType: t, Data: append(p.Addr().AsSlice(), mask...)}
}

// maskBits returns the prefix length of a contiguous mask, or -1.
func maskBits(m []byte) int {
	n := 0
	for i, c := range m {
		if c == 0xff {
			n += 8
			continue
		}
		l := bits.LeadingZeros8(^c)
		if c<<l != 0 {
			return -1
		}
		for _, r := range m[i+1:] {
			if r != 0 {
				return -1
			}
		}
		return n + l
	}
	return n
}

// Prefix returns the traffic selector of an address ID: a host prefix for
// ID_IPV*_ADDR, the prefix for ID_IPV*_ADDR_SUBNET (error if the mask is not
// contiguous; host bits set in the address are cleared), and for
// ID_IPV*_ADDR_RANGE the prefix that covers exactly the range (error
// otherwise). Other ID types give an error.
func (id *ID) Prefix() (netip.Prefix, error) {
	if id == nil {
		return netip.Prefix{}, fmt.Errorf("isakmp: nil ID")
	}
	want := idDataLen(id.IDType)
	if want < 0 {
		return netip.Prefix{}, fmt.Errorf("isakmp: %s is not an address ID", id.IDType)
	}
	if len(id.Data) != want {
		return netip.Prefix{}, fmt.Errorf("isakmp: %s with %d bytes of data, want %d", id.IDType, len(id.Data), want)
	}
	switch id.IDType {
	case IDIPv4Addr, IDIPv6Addr:
		a, _ := netip.AddrFromSlice(id.Data)
		return netip.PrefixFrom(a, a.BitLen()), nil
	case IDIPv4AddrSubnet, IDIPv6AddrSubnet:
		h := len(id.Data) / 2
		a, _ := netip.AddrFromSlice(id.Data[:h])
		n := maskBits(id.Data[h:])
		if n < 0 {
			return netip.Prefix{}, fmt.Errorf("isakmp: %s mask %s is not contiguous", id.IDType, hex.EncodeToString(id.Data[h:]))
		}
		return netip.PrefixFrom(a, n).Masked(), nil
	default: // ranges
		h := len(id.Data) / 2
		lo, _ := netip.AddrFromSlice(id.Data[:h])
		hi, _ := netip.AddrFromSlice(id.Data[h:])
		for n := lo.BitLen(); n >= 0; n-- {
			p := netip.PrefixFrom(lo, n)
			if p.Masked().Addr() != lo {
				continue
			}
			if lastAddr(p) == hi {
				return p, nil
			}
			if lastAddr(p).Compare(hi) > 0 {
				break
			}
		}
		return netip.Prefix{}, fmt.Errorf("isakmp: %s %s-%s is not a single prefix", id.IDType, lo, hi)
	}
}

// lastAddr is the highest address in a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// String returns e.g. "ID_IPV4_ADDR 198.51.100.2", "ID_IPV4_ADDR_SUBNET
// 10.0.0.0/16", "ID_FQDN vpn.example.com", KEY_ID in hex, with " proto N
// port N" appended when they are not zero.
func (id *ID) String() string {
	if id == nil {
		return "ID <nil>"
	}
	s := id.IDType.String() + " " + id.dataString()
	if id.ProtocolID != 0 || id.Port != 0 {
		s += fmt.Sprintf(" proto %d port %d", id.ProtocolID, id.Port)
	}
	return s
}

func (id *ID) dataString() string {
	if want := idDataLen(id.IDType); want >= 0 && len(id.Data) != want {
		return fmt.Sprintf("<%d bytes: %x>", len(id.Data), id.Data)
	}
	switch id.IDType {
	case IDIPv4Addr, IDIPv6Addr:
		a, _ := netip.AddrFromSlice(id.Data)
		return a.String()
	case IDIPv4AddrSubnet, IDIPv6AddrSubnet:
		h := len(id.Data) / 2
		a, _ := netip.AddrFromSlice(id.Data[:h])
		if n := maskBits(id.Data[h:]); n >= 0 {
			return a.String() + "/" + strconv.Itoa(n)
		}
		m, _ := netip.AddrFromSlice(id.Data[h:])
		return a.String() + "/" + m.String()
	case IDIPv4AddrRange, IDIPv6AddrRange:
		h := len(id.Data) / 2
		lo, _ := netip.AddrFromSlice(id.Data[:h])
		hi, _ := netip.AddrFromSlice(id.Data[h:])
		return lo.String() + "-" + hi.String()
	case IDFQDN, IDUserFQDN:
		return printable(id.Data)
	case IDDERASN1DN:
		var rdn pkix.RDNSequence
		if rest, err := asn1.Unmarshal(id.Data, &rdn); err == nil && len(rest) == 0 {
			return rdn.String()
		}
		return hex.EncodeToString(id.Data)
	default:
		return hex.EncodeToString(id.Data)
	}
}

// printable returns b as text if it is printable UTF-8, else quoted.
func printable(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) || r == ' ' {
			return strconv.Quote(s)
		}
	}
	return s
}
