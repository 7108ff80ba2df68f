package isakmp

import (
	"encoding/binary"
	"fmt"
)

// AttrBasic returns a basic (TV) attribute.
func AttrBasic(t, v uint16) Attribute {
	return Attribute{Type: t, Basic: true, Value: v}
}

// AttrUint returns a basic attribute if v fits 16 bits, else a variable-length
// attribute with v as a minimal big-endian integer (at least 1 byte). E.g. a
// life duration of 28800 is basic, 86400 becomes 3 bytes 01 51 80. Peers must
// accept any length (strongSwan itself sends 4-byte values).
func AttrUint(t uint16, v uint64) Attribute {
	if v <= 0xffff {
		return AttrBasic(t, uint16(v))
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	i := 0
	for i < 7 && buf[i] == 0 {
		i++
	}
	return Attribute{Type: t, Data: append([]byte(nil), buf[i:]...)}
}

// Uint returns the attribute's value: the basic value, or a variable-length
// value of 1 to 8 bytes read as a big-endian integer.
func (a Attribute) Uint() (uint64, error) {
	if a.Basic {
		return uint64(a.Value), nil
	}
	if len(a.Data) == 0 || len(a.Data) > 8 {
		return 0, fmt.Errorf("isakmp: attribute %d: %d-byte value is not an integer of 1..8 bytes", a.Type, len(a.Data))
	}
	var v uint64
	for _, c := range a.Data {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// FindAttr returns the first attribute of type t.
func FindAttr(attrs []Attribute, t uint16) (Attribute, bool) {
	for _, a := range attrs {
		if a.Type == t {
			return a, true
		}
	}
	return Attribute{}, false
}

// sameKind maps the draft NAT-T payload types onto the RFC 3947 ones.
func sameKind(t PayloadType) PayloadType {
	switch t {
	case PayloadNATDDraft:
		return PayloadNATD
	case PayloadNATOADraft:
		return PayloadNATOA
	}
	return t
}

// Find returns the first payload of type t, or nil. NAT-D and NAT-OA match
// both their RFC 3947 (20, 21) and draft (130, 131) types.
func (m *Message) Find(t PayloadType) Payload {
	for _, p := range m.Payloads {
		if p != nil && sameKind(p.Type()) == sameKind(t) {
			return p
		}
	}
	return nil
}

// FindAll returns all payloads of type t in order (NAT-D/NAT-OA as in Find).
func (m *Message) FindAll(t PayloadType) []Payload {
	var out []Payload
	for _, p := range m.Payloads {
		if p != nil && sameKind(p.Type()) == sameKind(t) {
			out = append(out, p)
		}
	}
	return out
}

// FindIn is Find on a plain payload slice (e.g. a decrypted body).
func FindIn(ps []Payload, t PayloadType) Payload {
	return (&Message{Payloads: ps}).Find(t)
}

// FindAllIn is FindAll on a plain payload slice.
func FindAllIn(ps []Payload, t PayloadType) []Payload {
	return (&Message{Payloads: ps}).FindAll(t)
}

// Notifies returns the Notify payloads in order.
func (m *Message) Notifies() []*Notify {
	var out []*Notify
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n != nil {
			out = append(out, n)
		}
	}
	return out
}

// NATDs returns the NAT-D payloads (RFC or draft type) in order.
func (m *Message) NATDs() []*NATD {
	var out []*NATD
	for _, p := range m.Payloads {
		if n, ok := p.(*NATD); ok && n != nil {
			out = append(out, n)
		}
	}
	return out
}

// VendorIDs returns the Vendor ID payloads in order.
func (m *Message) VendorIDs() []*VendorID {
	var out []*VendorID
	for _, p := range m.Payloads {
		if v, ok := p.(*VendorID); ok && v != nil {
			out = append(out, v)
		}
	}
	return out
}
