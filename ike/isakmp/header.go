package isakmp

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// DecodeHeader parses the 28-byte ISAKMP header (RFC 2408 section 3.1). It
// checks that b holds at least a header, that the major version is 1 and that
// Length is at least 28 and not larger than len(b). The minor version and
// unknown flag bits are accepted as received.
func DecodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, decodeErr(PayloadNone, 0, "%d bytes is shorter than the %d-byte header", len(b), HeaderLen)
	}
	copy(h.ICookie[:], b[0:8])
	copy(h.RCookie[:], b[8:16])
	h.NextPayload = PayloadType(b[16])
	h.Version = b[17]
	h.Exchange = ExchangeType(b[18])
	h.Flags = b[19]
	h.MessageID = binary.BigEndian.Uint32(b[20:24])
	h.Length = binary.BigEndian.Uint32(b[24:28])
	if h.Version>>4 != 1 {
		return h, decodeErr(PayloadNone, 17, "major version %d, want 1", h.Version>>4)
	}
	if h.Length < HeaderLen {
		return h, decodeErr(PayloadNone, 24, "header length %d is less than %d", h.Length, HeaderLen)
	}
	if uint64(h.Length) > uint64(len(b)) {
		return h, decodeErr(PayloadNone, 24, "header length %d exceeds the %d bytes received", h.Length, len(b))
	}
	return h, nil
}

func (h *Header) put(dst []byte) {
	copy(dst[0:8], h.ICookie[:])
	copy(dst[8:16], h.RCookie[:])
	dst[16] = byte(h.NextPayload)
	dst[17] = h.Version
	dst[18] = byte(h.Exchange)
	dst[19] = h.Flags
	binary.BigEndian.PutUint32(dst[20:24], h.MessageID)
	binary.BigEndian.PutUint32(dst[24:28], h.Length)
}

// Encode returns the header followed by the payload chain. It sets
// Header.Version to 0x10 if it is zero, the next-payload fields of the header
// and of every generic payload header, and Header.Length. If Payloads is empty
// and Body is not nil (an encrypted body built by the caller), it emits the
// header and Body and keeps Header.NextPayload as the caller set it. If both
// are empty the message is a bare header with next payload 0.
func (m *Message) Encode() ([]byte, error) {
	if m.Header.Version == 0 {
		m.Header.Version = Version
	}
	var body []byte
	if len(m.Payloads) == 0 && m.Body != nil {
		body = m.Body
	} else {
		first, b, err := EncodePayloads(m.Payloads)
		if err != nil {
			return nil, err
		}
		m.Header.NextPayload = first
		body = b
	}
	total := HeaderLen + len(body)
	if uint64(total) > 0xffffffff {
		return nil, fmt.Errorf("isakmp: message of %d bytes too long", total)
	}
	m.Header.Length = uint32(total)
	out := make([]byte, total)
	m.Header.put(out)
	copy(out[HeaderLen:], body)
	return out, nil
}

// Decode parses a whole message. The input is copied; the returned message
// does not alias b. Bytes after Header.Length (e.g. UDP padding) are ignored.
// If FlagEncryption is set, Decode returns the header and Body (bytes
// 28..Length) and no payloads. Otherwise it decodes the payload chain
// strictly: bytes after the last payload but within Length are an error.
func Decode(b []byte) (*Message, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return nil, err
	}
	b = bytes.Clone(b[:h.Length])
	m := &Message{Header: h}
	if h.Flags&FlagEncryption != 0 {
		m.Body = b[HeaderLen:]
		return m, nil
	}
	ps, err := decodeChain(h.NextPayload, b[HeaderLen:], HeaderLen, true)
	if err != nil {
		return nil, err
	}
	m.Payloads = ps
	return m, nil
}

// DecodePayloads decodes a payload chain that starts with type first from b,
// typically a decrypted body. Bytes after the last payload are allowed
// (encryption padding). offset is added to every offset in errors (pass 28
// for a body that followed the header). The input is copied.
func DecodePayloads(first PayloadType, b []byte, offset int) ([]Payload, error) {
	return decodeChain(first, bytes.Clone(b), offset, false)
}

// EncodePayloads encodes a payload chain: every payload with its generic
// header, next-payload fields chained, the last one 0. It returns the type of
// the first payload (PayloadNone for an empty chain). This is the input for
// encryption and for the quick-mode HASH ("all payloads after HASH including
// headers").
func EncodePayloads(ps []Payload) (first PayloadType, b []byte, err error) {
	for i, p := range ps {
		if p == nil {
			return 0, nil, fmt.Errorf("isakmp: payload %d is nil", i)
		}
		t := p.Type()
		if t == PayloadNone || t == PayloadProposal || t == PayloadTransform {
			return 0, nil, fmt.Errorf("isakmp: payload %d: type %s cannot appear in a payload chain", i, t)
		}
		body, err := encodeBody(p)
		if err != nil {
			return 0, nil, fmt.Errorf("isakmp: %s payload %d: %w", t, i, err)
		}
		if len(body) > 0xffff-4 {
			return 0, nil, fmt.Errorf("isakmp: %s payload %d: %w", t, i, ErrPayloadTooLong)
		}
		var next PayloadType
		if i+1 < len(ps) && ps[i+1] != nil {
			next = ps[i+1].Type()
		}
		b = appendGeneric(b, next, len(body))
		b = append(b, body...)
	}
	if len(ps) > 0 {
		first = ps[0].Type()
	}
	return first, b, nil
}

func appendGeneric(b []byte, next PayloadType, bodyLen int) []byte {
	return append(b, byte(next), 0, byte((bodyLen+4)>>8), byte(bodyLen+4))
}

// decodeChain decodes the payload chain in b. off is the absolute offset of
// b[0]. When strict is set the chain must end exactly at len(b).
//
// The RESERVED octet of the generic header (RFC 2408 section 3.2 says it MUST
// be 0) is not checked, like strongSwan; reserved fields inside payloads are
// ignored as well. A re-encoded message therefore writes zeros there.
func decodeChain(first PayloadType, b []byte, off int, strict bool) ([]Payload, error) {
	var ps []Payload
	next := first
	pos := 0
	for next != PayloadNone {
		if len(ps) >= MaxPayloads {
			return nil, decodeErr(next, off+pos, "more than %d payloads", MaxPayloads)
		}
		left := len(b) - pos
		if left < 4 {
			return nil, decodeErr(next, off+pos, "truncated generic header (%d bytes left)", left)
		}
		np := PayloadType(b[pos])
		plen := int(binary.BigEndian.Uint16(b[pos+2:]))
		if plen < 4 {
			return nil, decodeErr(next, off+pos, "payload length %d is less than 4", plen)
		}
		if plen > left {
			return nil, decodeErr(next, off+pos, "payload length %d exceeds the %d bytes left", plen, left)
		}
		p, err := decodeBody(next, b[pos+4:pos+plen], off+pos)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
		pos += plen
		next = np
	}
	if strict && pos != len(b) {
		return nil, decodeErr(PayloadNone, off+pos, "%d bytes after the last payload", len(b)-pos)
	}
	return ps, nil
}
