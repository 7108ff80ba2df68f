package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Substructure headers inside an SA payload (section 3.3.1, 3.3.2).
const (
	proposalHdrLen  = 8
	transformHdrLen = 8
	lastProposal    = 0
	moreProposals   = 2
	lastTransform   = 0
	moreTransforms  = 3
)

// KeyLength returns a TV key-length attribute (bits).
func KeyLength(bits uint16) Attribute { return Attribute{Type: AttrKeyLength, TV: true, Value: bits} }

// KeyLength returns the transform's key length attribute, if any.
func (t Transform) KeyLength() (uint16, bool) {
	for _, a := range t.Attributes {
		if a.Type == AttrKeyLength && a.TV {
			return a.Value, true
		}
	}
	return 0, false
}

// Name is the transform's ID name, with the key length if present, e.g.
// "ENCR_AES_CBC-256".
func (t Transform) Name() string {
	n := TransformName(t.Type, t.ID)
	if k, ok := t.KeyLength(); ok {
		n += fmt.Sprintf("-%d", k)
	}
	return n
}

// Transform builders for the common cases.
// Encr with keyBits 0 has no key length attribute.
func Encr(id EncrID, keyBits uint16) Transform {
	if keyBits == 0 {
		return Transform{Type: TransformENCR, ID: uint16(id)}
	}
	return Transform{Type: TransformENCR, ID: uint16(id), Attributes: []Attribute{KeyLength(keyBits)}}
}
func PRF(id PRFID) Transform       { return Transform{Type: TransformPRF, ID: uint16(id)} }
func Integ(id IntegID) Transform   { return Transform{Type: TransformINTEG, ID: uint16(id)} }
func DH(g DHGroup) Transform       { return Transform{Type: TransformDH, ID: uint16(g)} }
func ESNTransform(e ESN) Transform { return Transform{Type: TransformESN, ID: uint16(e)} }

func (p *SA) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	if len(p.Proposals) == 0 {
		return nil, errors.New("SA without proposals")
	}
	// A Proposal.Number of 0 is written as its position (1, 2, ...).
	for i, pr := range p.Proposals {
		if len(pr.Transforms) > 0xff || len(pr.SPI) > 0xff {
			return nil, fmt.Errorf("proposal %d: %d transforms, SPI of %d bytes", i, len(pr.Transforms), len(pr.SPI))
		}
		start := len(b)
		more := byte(moreProposals)
		if i == len(p.Proposals)-1 {
			more = lastProposal
		}
		num := pr.Number
		if num == 0 {
			num = uint8(i + 1)
		}
		b = append(b, more, 0, 0, 0, num, byte(pr.Protocol), byte(len(pr.SPI)), byte(len(pr.Transforms)))
		b = append(b, pr.SPI...)
		for j, t := range pr.Transforms {
			ts := len(b)
			more := byte(moreTransforms)
			if j == len(pr.Transforms)-1 {
				more = lastTransform
			}
			b = append(b, more, 0, 0, 0, byte(t.Type), 0)
			b = binary.BigEndian.AppendUint16(b, t.ID)
			for _, a := range t.Attributes {
				if a.Type > 0x7fff {
					return nil, fmt.Errorf("proposal %d transform %d: attribute type %d above 32767", i, j, a.Type)
				}
				if a.TV {
					b = binary.BigEndian.AppendUint16(b, 0x8000|a.Type)
					b = binary.BigEndian.AppendUint16(b, a.Value)
					continue
				}
				if len(a.Data) > 0xffff {
					return nil, fmt.Errorf("proposal %d transform %d: attribute of %d bytes", i, j, len(a.Data))
				}
				b = binary.BigEndian.AppendUint16(b, a.Type)
				b = binary.BigEndian.AppendUint16(b, uint16(len(a.Data)))
				b = append(b, a.Data...)
			}
			if len(b)-ts > 0xffff {
				return nil, fmt.Errorf("proposal %d transform %d: %w", i, j, ErrPayloadTooLong)
			}
			binary.BigEndian.PutUint16(b[ts+2:], uint16(len(b)-ts))
		}
		if len(b)-start > 0xffff {
			return nil, fmt.Errorf("proposal %d: %w", i, ErrPayloadTooLong)
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	return b, nil
}

// decodeSA decodes the proposals of an SA payload; off is the offset of
// the payload's generic header. Section 3.3.1: the "last substruc" octet
// is 2 on all proposals but the last (0), proposal numbers start at 1 and
// increase by one.
func decodeSA(body []byte, off int) (Payload, error) {
	sa := &SA{}
	pos := 0
	base := off + GenericLen
	for {
		if len(sa.Proposals) >= MaxProposals {
			return nil, decodeErr(PayloadSA, base+pos, "more than %d proposals", MaxProposals)
		}
		left := len(body) - pos
		if left < proposalHdrLen {
			return nil, decodeErr(PayloadSA, base+pos, "truncated proposal header (%d bytes left)", left)
		}
		more, plen := body[pos], int(binary.BigEndian.Uint16(body[pos+2:]))
		if more != lastProposal && more != moreProposals {
			return nil, decodeErr(PayloadSA, base+pos, "proposal's last-substructure octet is %d, want 0 or 2", more)
		}
		if plen < proposalHdrLen || plen > left {
			return nil, decodeErr(PayloadSA, base+pos, "proposal length %d with %d bytes left", plen, left)
		}
		pr, err := decodeProposal(body[pos:pos+plen], base+pos)
		if err != nil {
			return nil, err
		}
		// A lone proposal may be a responder's accepted one, which keeps
		// the number it had in the request (section 3.3.1): any but 0.
		lone := len(sa.Proposals) == 0 && more == lastProposal
		if lone && pr.Number == 0 || !lone && int(pr.Number) != len(sa.Proposals)+1 {
			return nil, decodeErr(PayloadSA, base+pos, "proposal number %d, want %d", pr.Number, len(sa.Proposals)+1)
		}
		sa.Proposals = append(sa.Proposals, pr)
		pos += plen
		if more == lastProposal {
			break
		}
	}
	if pos != len(body) {
		return nil, decodeErr(PayloadSA, base+pos, "%d bytes after the last proposal", len(body)-pos)
	}
	return sa, nil
}

func decodeProposal(b []byte, off int) (Proposal, error) {
	pr := Proposal{Number: b[4], Protocol: ProtocolID(b[5])}
	spiSize, num := int(b[6]), int(b[7])
	if proposalHdrLen+spiSize > len(b) {
		return pr, decodeErr(PayloadSA, off, "SPI size %d exceeds the proposal", spiSize)
	}
	pr.SPI = clone(b[proposalHdrLen : proposalHdrLen+spiSize])
	pos := proposalHdrLen + spiSize
	for i := 0; i < num; i++ {
		left := len(b) - pos
		if left < transformHdrLen {
			return pr, decodeErr(PayloadSA, off+pos, "transform %d of %d: truncated header (%d bytes left)", i+1, num, left)
		}
		more, tlen := b[pos], int(binary.BigEndian.Uint16(b[pos+2:]))
		if want := byte(moreTransforms); i == num-1 && more != lastTransform || i < num-1 && more != want {
			return pr, decodeErr(PayloadSA, off+pos, "transform %d of %d: last-substructure octet %d", i+1, num, more)
		}
		if tlen < transformHdrLen || tlen > left {
			return pr, decodeErr(PayloadSA, off+pos, "transform length %d with %d bytes left", tlen, left)
		}
		t, err := decodeTransform(b[pos:pos+tlen], off+pos)
		if err != nil {
			return pr, err
		}
		pr.Transforms = append(pr.Transforms, t)
		pos += tlen
	}
	if pos != len(b) {
		return pr, decodeErr(PayloadSA, off+pos, "%d bytes after the last transform of proposal %d", len(b)-pos, pr.Number)
	}
	return pr, nil
}

func decodeTransform(b []byte, off int) (Transform, error) {
	t := Transform{Type: TransformType(b[4]), ID: binary.BigEndian.Uint16(b[6:])}
	pos := transformHdrLen
	for pos < len(b) {
		if len(t.Attributes) >= MaxAttributes {
			return t, decodeErr(PayloadSA, off+pos, "more than %d attributes", MaxAttributes)
		}
		if len(b)-pos < 4 {
			return t, decodeErr(PayloadSA, off+pos, "truncated attribute (%d bytes left)", len(b)-pos)
		}
		at, v := binary.BigEndian.Uint16(b[pos:]), binary.BigEndian.Uint16(b[pos+2:])
		if at&0x8000 != 0 {
			t.Attributes = append(t.Attributes, Attribute{Type: at & 0x7fff, TV: true, Value: v})
			pos += 4
			continue
		}
		if int(v) > len(b)-pos-4 {
			return t, decodeErr(PayloadSA, off+pos, "attribute length %d exceeds the %d bytes left", v, len(b)-pos-4)
		}
		t.Attributes = append(t.Attributes, Attribute{Type: at, Data: clone(b[pos+4 : pos+4+int(v)])})
		pos += 4 + int(v)
	}
	return t, nil
}
