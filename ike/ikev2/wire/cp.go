package wire

import (
	"encoding/binary"
	"fmt"
)

func (p *Config) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	b = append(b, byte(p.CfgType), 0, 0, 0)
	for i, a := range p.Attributes {
		if a.Type > 0x7fff || len(a.Value) > 0xffff {
			return nil, fmt.Errorf("attribute %d: type %d with %d bytes", i, a.Type, len(a.Value))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(a.Type))
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b, nil
}

// decodeConfig decodes a CP payload (section 3.15). The reserved bit of an
// attribute type is ignored.
func decodeConfig(body []byte, off int) (Payload, error) {
	if len(body) < 4 {
		return nil, decodeErr(PayloadCP, off, "body of %d bytes, at least 4 needed", len(body))
	}
	c := &Config{CfgType: CfgType(body[0])}
	pos, base := 4, off+GenericLen
	for pos < len(body) {
		if len(c.Attributes) >= MaxPayloads {
			return nil, decodeErr(PayloadCP, base+pos, "more than %d attributes", MaxPayloads)
		}
		if len(body)-pos < 4 {
			return nil, decodeErr(PayloadCP, base+pos, "truncated attribute (%d bytes left)", len(body)-pos)
		}
		at, n := binary.BigEndian.Uint16(body[pos:])&0x7fff, int(binary.BigEndian.Uint16(body[pos+2:]))
		if n > len(body)-pos-4 {
			return nil, decodeErr(PayloadCP, base+pos, "attribute length %d exceeds the %d bytes left", n, len(body)-pos-4)
		}
		c.Attributes = append(c.Attributes, CfgAttribute{Type: CfgAttrType(at), Value: clone(body[pos+4 : pos+4+n])})
		pos += 4 + n
	}
	return c, nil
}
