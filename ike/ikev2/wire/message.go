package wire

import (
	"encoding/binary"
	"fmt"
)

// DecodeHeader parses the 28-byte IKE header (section 3.1). It checks that
// b holds a header, that the major version is 2 (a *VersionError if not),
// and that Length is at least 28 and at most len(b). The minor version and
// the reserved flag bits are accepted as received.
func DecodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, decodeErr(PayloadNone, 0, "%d bytes is shorter than the %d-byte header", len(b), HeaderLen)
	}
	copy(h.SPIi[:], b[0:8])
	copy(h.SPIr[:], b[8:16])
	h.NextPayload = PayloadType(b[16])
	h.Version = b[17]
	h.Exchange = ExchangeType(b[18])
	h.Flags = b[19]
	h.MessageID = binary.BigEndian.Uint32(b[20:24])
	h.Length = binary.BigEndian.Uint32(b[24:28])
	if h.Version>>4 != 2 {
		return h, &VersionError{Version: h.Version}
	}
	if h.Length < HeaderLen {
		return h, decodeErr(PayloadNone, 24, "header length %d is less than %d", h.Length, HeaderLen)
	}
	if uint64(h.Length) > uint64(len(b)) {
		return h, decodeErr(PayloadNone, 24, "header length %d exceeds the %d bytes received", h.Length, len(b))
	}
	return h, nil
}

// AppendHeader appends the 28 header bytes as they are in h.
func AppendHeader(b []byte, h *Header) []byte {
	b = append(b, h.SPIi[:]...)
	b = append(b, h.SPIr[:]...)
	b = append(b, byte(h.NextPayload), h.Version, byte(h.Exchange), h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}

// Encode returns the message: header and payload chain. It sets
// Header.Version to 0x20 if zero, the next-payload fields and
// Header.Length. An *Encrypted or *EncryptedFragment must be the last
// payload; its own NextPayload (the first inner payload) is written.
func (m *Message) Encode() ([]byte, error) {
	if m.Header.Version == 0 {
		m.Header.Version = Version
	}
	b := make([]byte, HeaderLen, HeaderLen+encodedSize(m.Payloads))
	first, b, err := AppendPayloads(b, m.Payloads)
	if err != nil {
		return nil, err
	}
	if uint64(len(b)) > 0xffffffff {
		return nil, fmt.Errorf("ikev2: message of %d bytes too long", len(b))
	}
	m.Header.NextPayload = first
	m.Header.Length = uint32(len(b))
	AppendHeader(b[:0], &m.Header)
	return b, nil
}

// Decode parses a whole message. The returned message does not alias b.
// Bytes after Header.Length (none in a UDP datagram) are ignored. The chain
// must end exactly at Length; an SK or SKF payload must be the last one
// and is returned still sealed.
func Decode(b []byte) (*Message, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return nil, err
	}
	ps, err := decodeChain(h.NextPayload, b[HeaderLen:h.Length], HeaderLen, true)
	if err != nil {
		return nil, err
	}
	return &Message{Header: h, Payloads: ps}, nil
}

// DecodePayloads decodes a decrypted inner chain that starts with type
// first (padding already removed: the chain must end exactly at len(b)).
// offset is added to the offsets in errors (the position of the body in the
// message). The result does not alias b. SK and SKF are not allowed inside.
func DecodePayloads(first PayloadType, b []byte, offset int) ([]Payload, error) {
	return decodeChain(first, b, offset, false)
}

// AppendPayloads appends the chain: every payload with its generic header,
// next-payload fields chained. It returns the type of the first payload.
func AppendPayloads(b []byte, ps []Payload) (PayloadType, []byte, error) {
	for i, p := range ps {
		if p == nil {
			return 0, nil, fmt.Errorf("ikev2: payload %d is nil", i)
		}
		t := p.Type()
		if t == PayloadNone {
			return 0, nil, fmt.Errorf("ikev2: payload %d has type 0", i)
		}
		sealed := t == PayloadSK || t == PayloadSKF
		if sealed && i != len(ps)-1 {
			return 0, nil, fmt.Errorf("ikev2: %s payload %d is not the last payload", t, i)
		}
		var next PayloadType
		switch {
		case i+1 < len(ps):
			next = ps[i+1].Type()
		case sealed:
			next = innerFirst(p)
		}
		start := len(b)
		b = append(b, byte(next), 0, 0, 0)
		var err error
		if b, err = p.appendBody(b); err != nil {
			return 0, nil, fmt.Errorf("ikev2: %s payload %d: %w", t, i, err)
		}
		n := len(b) - start
		if n > 0xffff {
			return 0, nil, fmt.Errorf("ikev2: %s payload %d: %w", t, i, ErrPayloadTooLong)
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	}
	if len(ps) == 0 {
		return PayloadNone, b, nil
	}
	return ps[0].Type(), b, nil
}

func innerFirst(p Payload) PayloadType {
	switch p := p.(type) {
	case *Encrypted:
		return p.NextPayload
	case *EncryptedFragment:
		return p.NextPayload
	}
	return PayloadNone
}

// encodedSize is a capacity hint.
func encodedSize(ps []Payload) int {
	n := 0
	for _, p := range ps {
		n += GenericLen + 64
		switch p := p.(type) {
		case *KE:
			if p != nil {
				n += len(p.Data)
			}
		case *Encrypted:
			if p != nil {
				n += len(p.Data)
			}
		case *EncryptedFragment:
			if p != nil {
				n += len(p.Data)
			}
		}
	}
	return n
}

// decodeChain decodes the chain in b; off is the absolute offset of b[0].
// The chain must end exactly at len(b). outer: a message's chain (SK/SKF
// allowed as the last payload); otherwise a decrypted chain (no SK/SKF).
//
// The reserved bits of the generic header are not checked (section 3.2:
// ignored on receipt); the critical bit matters only for unknown types.
func decodeChain(first PayloadType, b []byte, off int, outer bool) ([]Payload, error) {
	var ps []Payload
	next, pos := first, 0
	for next != PayloadNone {
		if len(ps) >= MaxPayloads {
			return nil, decodeErr(next, off+pos, "more than %d payloads", MaxPayloads)
		}
		left := len(b) - pos
		if left < GenericLen {
			return nil, decodeErr(next, off+pos, "truncated generic header (%d bytes left)", left)
		}
		np, critical := PayloadType(b[pos]), b[pos+1]&0x80 != 0
		plen := int(binary.BigEndian.Uint16(b[pos+2:]))
		if plen < GenericLen {
			return nil, decodeErr(next, off+pos, "payload length %d is less than 4", plen)
		}
		if plen > left {
			return nil, decodeErr(next, off+pos, "payload length %d exceeds the %d bytes left", plen, left)
		}
		body := b[pos+GenericLen : pos+plen]
		if !next.known() {
			if critical {
				return nil, &UnsupportedCriticalError{Type: next, Offset: off + pos}
			}
			ps = append(ps, &Unknown{PType: next, Data: clone(body)})
			pos, next = pos+plen, np
			continue
		}
		if next == PayloadSK || next == PayloadSKF {
			if !outer {
				return nil, decodeErr(next, off+pos, "%s inside an encrypted payload", next)
			}
			p, err := decodeSealed(next, np, body, off+pos)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
			pos += plen
			if pos != len(b) {
				return nil, decodeErr(next, off+pos-plen, "%s is not the last payload (%d bytes follow)", next, len(b)-pos)
			}
			return ps, nil
		}
		p, err := decodeBody(next, body, off+pos)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
		pos, next = pos+plen, np
	}
	if pos != len(b) {
		return nil, decodeErr(PayloadNone, off+pos, "%d bytes after the last payload", len(b)-pos)
	}
	return ps, nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
