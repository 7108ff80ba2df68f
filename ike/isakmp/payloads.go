package isakmp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Type and Body implement Payload. Body returns the payload body without the
// generic header; for an *SA decoded from the wire it returns Raw, the body
// exactly as received (RFC 2409 HASH_I/HASH_R cover SAi_b as sent). Callers
// that change a decoded SA must set Raw to nil before encoding it. Body
// returns nil if the payload cannot be encoded (EncodePayloads reports why).

func (*SA) Type() PayloadType        { return PayloadSA }
func (*KE) Type() PayloadType        { return PayloadKE }
func (*ID) Type() PayloadType        { return PayloadID }
func (*Cert) Type() PayloadType      { return PayloadCert }
func (*CertReq) Type() PayloadType   { return PayloadCertReq }
func (*Hash) Type() PayloadType      { return PayloadHash }
func (*Signature) Type() PayloadType { return PayloadSig }
func (*Nonce) Type() PayloadType     { return PayloadNonce }
func (*Notify) Type() PayloadType    { return PayloadNotify }
func (*Delete) Type() PayloadType    { return PayloadDelete }
func (*VendorID) Type() PayloadType  { return PayloadVendorID }
func (p *Unknown) Type() PayloadType {
	if p == nil {
		return PayloadNone
	}
	return p.PType
}

func (p *NATD) Type() PayloadType {
	if p != nil && p.Draft {
		return PayloadNATDDraft
	}
	return PayloadNATD
}

func (p *NATOA) Type() PayloadType {
	if p != nil && p.Draft {
		return PayloadNATOADraft
	}
	return PayloadNATOA
}

func (p *SA) Body() []byte        { return bodyOrNil(p) }
func (p *KE) Body() []byte        { return bodyOrNil(p) }
func (p *ID) Body() []byte        { return bodyOrNil(p) }
func (p *Cert) Body() []byte      { return bodyOrNil(p) }
func (p *CertReq) Body() []byte   { return bodyOrNil(p) }
func (p *Hash) Body() []byte      { return bodyOrNil(p) }
func (p *Signature) Body() []byte { return bodyOrNil(p) }
func (p *Nonce) Body() []byte     { return bodyOrNil(p) }
func (p *Notify) Body() []byte    { return bodyOrNil(p) }
func (p *Delete) Body() []byte    { return bodyOrNil(p) }
func (p *VendorID) Body() []byte  { return bodyOrNil(p) }
func (p *NATD) Body() []byte      { return bodyOrNil(p) }
func (p *NATOA) Body() []byte     { return bodyOrNil(p) }
func (p *Unknown) Body() []byte   { return bodyOrNil(p) }

func bodyOrNil(p Payload) []byte {
	b, err := encodeBody(p)
	if err != nil {
		return nil
	}
	return b
}

var errNilPayload = errors.New("nil payload")

// encodeBody returns the body of p without the generic header.
func encodeBody(p Payload) ([]byte, error) {
	switch p := p.(type) {
	case *SA:
		if p == nil {
			return nil, errNilPayload
		}
		if p.Raw != nil {
			return append([]byte(nil), p.Raw...), nil
		}
		return p.encode()
	case *KE:
		if p == nil {
			return nil, errNilPayload
		}
		return clone(p.Data), nil
	case *Nonce:
		if p == nil {
			return nil, errNilPayload
		}
		return clone(p.Data), nil
	case *Hash:
		if p == nil {
			return nil, errNilPayload
		}
		return clone(p.Data), nil
	case *Signature:
		if p == nil {
			return nil, errNilPayload
		}
		return clone(p.Data), nil
	case *VendorID:
		if p == nil {
			return nil, errNilPayload
		}
		return clone(p.Data), nil
	case *NATD:
		if p == nil {
			return nil, errNilPayload
		}
		return clone(p.Hash), nil
	case *Unknown:
		if p == nil {
			return nil, errNilPayload
		}
		return clone(p.Data), nil
	case *Cert:
		if p == nil {
			return nil, errNilPayload
		}
		return append([]byte{p.Encoding}, p.Data...), nil
	case *CertReq:
		if p == nil {
			return nil, errNilPayload
		}
		return append([]byte{p.CertType}, p.Data...), nil
	case *ID:
		if p == nil {
			return nil, errNilPayload
		}
		b := []byte{byte(p.IDType), p.ProtocolID, byte(p.Port >> 8), byte(p.Port)}
		return append(b, p.Data...), nil
	case *Notify:
		if p == nil {
			return nil, errNilPayload
		}
		return p.encodeBody()
	case *Delete:
		if p == nil {
			return nil, errNilPayload
		}
		return p.encodeBody()
	case *NATOA:
		if p == nil {
			return nil, errNilPayload
		}
		if err := checkNATOAAddr(p.IDType, len(p.Addr)); err != nil {
			return nil, err
		}
		return append([]byte{byte(p.IDType), 0, 0, 0}, p.Addr...), nil
	case nil:
		return nil, errNilPayload
	default:
		return nil, fmt.Errorf("unsupported payload implementation %T", p)
	}
}

// encodeBody encodes a Notify payload's body (RFC 2408 section 3.14).
func (p *Notify) encodeBody() ([]byte, error) {
	if len(p.SPI) > 0xff {
		return nil, fmt.Errorf("SPI of %d bytes too long", len(p.SPI))
	}
	b := binary.BigEndian.AppendUint32(nil, p.DOI)
	b = append(b, p.ProtocolID, byte(len(p.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(p.NotifyType))
	b = append(b, p.SPI...)
	return append(b, p.Data...), nil
}

// encodeBody encodes a Delete payload's body (RFC 2408 section 3.15).
func (p *Delete) encodeBody() ([]byte, error) {
	if len(p.SPIs) > 0xffff {
		return nil, fmt.Errorf("%d SPIs, at most 65535", len(p.SPIs))
	}
	if p.SPISize == 0 && len(p.SPIs) > 0 {
		return nil, errors.New("SPI size 0 with SPIs")
	}
	b := binary.BigEndian.AppendUint32(nil, p.DOI)
	b = append(b, p.ProtocolID, p.SPISize)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.SPIs)))
	for i, s := range p.SPIs {
		if len(s) != int(p.SPISize) {
			return nil, fmt.Errorf("SPI %d has %d bytes, SPI size is %d", i, len(s), p.SPISize)
		}
		b = append(b, s...)
	}
	return b, nil
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

// nilIfEmpty makes decoded empty SPIs and notification data nil.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func checkNATOAAddr(t IDType, n int) error {
	switch {
	case t == IDIPv4Addr && n == 4, t == IDIPv6Addr && n == 16:
		return nil
	case t == IDIPv4Addr || t == IDIPv6Addr:
		return fmt.Errorf("%s address of %d bytes", t, n)
	default:
		return fmt.Errorf("ID type %s not allowed in NAT-OA (RFC 3947 5.2)", t)
	}
}

// encode builds the SA body from the fields (RFC 2408 3.4-3.6): DOI,
// situation, then the proposals, each with its transforms.
func (p *SA) encode() ([]byte, error) {
	b := binary.BigEndian.AppendUint32(nil, p.DOI)
	b = binary.BigEndian.AppendUint32(b, p.Situation)
	for i := range p.Proposals {
		pr := &p.Proposals[i]
		if len(pr.SPI) > 0xff {
			return nil, fmt.Errorf("proposal %d: SPI of %d bytes too long", i, len(pr.SPI))
		}
		if len(pr.Transforms) > 0xff {
			return nil, fmt.Errorf("proposal %d: %d transforms, at most 255", i, len(pr.Transforms))
		}
		var body []byte
		body = append(body, pr.Number, pr.ProtocolID, byte(len(pr.SPI)), byte(len(pr.Transforms)))
		body = append(body, pr.SPI...)
		for j := range pr.Transforms {
			tr := &pr.Transforms[j]
			tb := []byte{tr.Number, tr.ID, 0, 0}
			var err error
			tb, err = AppendAttributes(tb, tr.Attributes)
			if err != nil {
				return nil, fmt.Errorf("proposal %d transform %d: %w", i, j, err)
			}
			if len(tb)+4 > 0xffff {
				return nil, fmt.Errorf("proposal %d transform %d: %w", i, j, ErrPayloadTooLong)
			}
			next := PayloadTransform
			if j == len(pr.Transforms)-1 {
				next = PayloadNone
			}
			body = appendGeneric(body, next, len(tb))
			body = append(body, tb...)
		}
		if len(body)+4 > 0xffff {
			return nil, fmt.Errorf("proposal %d: %w", i, ErrPayloadTooLong)
		}
		next := PayloadProposal
		if i == len(p.Proposals)-1 {
			next = PayloadNone
		}
		b = appendGeneric(b, next, len(body))
		b = append(b, body...)
	}
	return b, nil
}

// AppendAttributes appends the wire form of attrs (RFC 2408 3.3) to b.
func AppendAttributes(b []byte, attrs []Attribute) ([]byte, error) {
	for _, a := range attrs {
		if a.Type&0x8000 != 0 {
			return nil, fmt.Errorf("attribute type %#x has the AF bit set (use Basic)", a.Type)
		}
		if a.Basic {
			b = binary.BigEndian.AppendUint16(b, a.Type|0x8000)
			b = binary.BigEndian.AppendUint16(b, a.Value)
			continue
		}
		if len(a.Data) > 0xffff {
			return nil, fmt.Errorf("attribute %d: %d bytes of data, at most 65535", a.Type, len(a.Data))
		}
		b = binary.BigEndian.AppendUint16(b, a.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Data)))
		b = append(b, a.Data...)
	}
	return b, nil
}

// decodeBody decodes the body b of a payload of type t whose generic header
// starts at absolute offset off.
func decodeBody(t PayloadType, b []byte, off int) (Payload, error) {
	body := off + 4 // absolute offset of b[0]
	need := func(n int, what string) error {
		if len(b) < n {
			return decodeErr(t, off, "body of %d bytes is shorter than the %d-byte %s", len(b), n, what)
		}
		return nil
	}
	switch t {
	case PayloadSA:
		return decodeSA(b, off)
	case PayloadKE:
		return &KE{Data: b}, nil
	case PayloadNonce:
		return &Nonce{Data: b}, nil
	case PayloadHash:
		return &Hash{Data: b}, nil
	case PayloadSig:
		return &Signature{Data: b}, nil
	case PayloadVendorID:
		return &VendorID{Data: b}, nil
	case PayloadNATD, PayloadNATDDraft:
		return &NATD{Hash: b, Draft: t == PayloadNATDDraft}, nil
	case PayloadCert:
		if err := need(1, "certificate encoding"); err != nil {
			return nil, err
		}
		return &Cert{Encoding: b[0], Data: b[1:]}, nil
	case PayloadCertReq:
		if err := need(1, "certificate type"); err != nil {
			return nil, err
		}
		return &CertReq{CertType: b[0], Data: b[1:]}, nil
	case PayloadID:
		if err := need(4, "ID fixed part"); err != nil {
			return nil, err
		}
		id := &ID{IDType: IDType(b[0]), ProtocolID: b[1], Port: binary.BigEndian.Uint16(b[2:4]), Data: b[4:]}
		if want := idDataLen(id.IDType); want >= 0 && len(id.Data) != want {
			return nil, decodeErr(t, body+4, "%s data of %d bytes, want %d", id.IDType, len(id.Data), want)
		}
		return id, nil
	case PayloadNotify:
		if err := need(8, "notification fixed part"); err != nil {
			return nil, err
		}
		n := &Notify{DOI: binary.BigEndian.Uint32(b), ProtocolID: b[4], NotifyType: NotifyType(binary.BigEndian.Uint16(b[6:8]))}
		spi := int(b[5])
		if spi > len(b)-8 {
			return nil, decodeErr(t, body+5, "SPI size %d exceeds payload (%d left)", spi, len(b)-8)
		}
		n.SPI = nilIfEmpty(b[8 : 8+spi])
		n.Data = nilIfEmpty(b[8+spi:])
		return n, nil
	case PayloadDelete:
		if err := need(8, "delete fixed part"); err != nil {
			return nil, err
		}
		d := &Delete{DOI: binary.BigEndian.Uint32(b), ProtocolID: b[4], SPISize: b[5]}
		n := int(binary.BigEndian.Uint16(b[6:8]))
		size := int(d.SPISize)
		if size == 0 && n > 0 {
			return nil, decodeErr(t, body+5, "SPI size 0 with %d SPIs", n)
		}
		if n*size != len(b)-8 {
			return nil, decodeErr(t, body+6, "%d SPIs of %d bytes need %d bytes, payload has %d", n, size, n*size, len(b)-8)
		}
		d.SPIs = make([][]byte, n)
		for i := range d.SPIs {
			d.SPIs[i] = b[8+i*size : 8+(i+1)*size]
		}
		return d, nil
	case PayloadNATOA, PayloadNATOADraft:
		if err := need(4, "NAT-OA fixed part"); err != nil {
			return nil, err
		}
		oa := &NATOA{IDType: IDType(b[0]), Addr: b[4:], Draft: t == PayloadNATOADraft}
		if err := checkNATOAAddr(oa.IDType, len(oa.Addr)); err != nil {
			return nil, decodeErr(t, body, "%v", err)
		}
		return oa, nil
	case PayloadProposal, PayloadTransform:
		return nil, decodeErr(t, off, "%s payload outside an SA payload", t)
	default:
		return &Unknown{PType: t, Data: b}, nil
	}
}

// idDataLen is the identification data length fixed by the ID type, or -1.
func idDataLen(t IDType) int {
	switch t {
	case IDIPv4Addr:
		return 4
	case IDIPv4AddrSubnet, IDIPv4AddrRange:
		return 8
	case IDIPv6Addr:
		return 16
	case IDIPv6AddrSubnet, IDIPv6AddrRange:
		return 32
	}
	return -1
}

// decodeSA parses an SA body (RFC 2408 3.4, RFC 2407 4.6.1) with its
// proposals (3.5) and transforms (3.6). off is the SA's generic header.
func decodeSA(b []byte, off int) (*SA, error) {
	const t = PayloadSA
	base := off + 4
	if len(b) < 8 {
		return nil, decodeErr(t, off, "body of %d bytes is shorter than DOI and situation (8)", len(b))
	}
	sa := &SA{DOI: binary.BigEndian.Uint32(b), Situation: binary.BigEndian.Uint32(b[4:]), Raw: b}
	if sa.DOI == DOIIPsec && sa.Situation&^SituationIdentityOnly != 0 {
		// SIT_SECRECY / SIT_INTEGRITY add labeled-domain fields (RFC 2407 4.6.1).
		return nil, decodeErr(t, base+4, "situation %#x not supported (only SIT_IDENTITY_ONLY)", sa.Situation)
	}
	pos := 8
	if pos == len(b) {
		return nil, decodeErr(t, base+pos, "SA without proposals")
	}
	for pos < len(b) {
		if len(sa.Proposals) >= MaxProposals {
			return nil, decodeErr(t, base+pos, "more than %d proposals", MaxProposals)
		}
		left := len(b) - pos
		if left < 8 {
			return nil, decodeErr(t, base+pos, "truncated proposal header (%d bytes left)", left)
		}
		np := PayloadType(b[pos])
		plen := int(binary.BigEndian.Uint16(b[pos+2:]))
		if plen < 8 {
			return nil, decodeErr(t, base+pos, "proposal length %d is less than 8", plen)
		}
		if plen > left {
			return nil, decodeErr(t, base+pos, "proposal length %d exceeds payload (%d left)", plen, left)
		}
		pr, err := decodeProposal(b[pos+4:pos+plen], base+pos)
		if err != nil {
			return nil, err
		}
		sa.Proposals = append(sa.Proposals, pr)
		pos += plen
		switch np {
		case PayloadNone:
			if pos != len(b) {
				return nil, decodeErr(t, base+pos, "%d bytes after the last proposal", len(b)-pos)
			}
		case PayloadProposal:
			if pos == len(b) {
				return nil, decodeErr(t, base+pos-plen, "proposal announces another proposal but the SA ends")
			}
		default:
			return nil, decodeErr(t, base+pos-plen, "next payload %d inside SA, want 2 or 0", np)
		}
	}
	return sa, nil
}

// decodeProposal parses a proposal body b (after its generic header at off).
func decodeProposal(b []byte, off int) (Proposal, error) {
	const t = PayloadSA
	base := off + 4
	pr := Proposal{Number: b[0], ProtocolID: b[1]}
	spi := int(b[2])
	n := int(b[3])
	if spi > len(b)-4 {
		return pr, decodeErr(t, base+2, "SPI size %d exceeds proposal (%d left)", spi, len(b)-4)
	}
	pr.SPI = nilIfEmpty(b[4 : 4+spi])
	pos := 4 + spi
	if n == 0 {
		return pr, decodeErr(t, base+3, "proposal without transforms")
	}
	for pos < len(b) {
		if len(pr.Transforms) >= n {
			return pr, decodeErr(t, base+pos, "proposal declares %d transforms but has more", n)
		}
		left := len(b) - pos
		if left < 8 {
			return pr, decodeErr(t, base+pos, "truncated transform header (%d bytes left)", left)
		}
		np := PayloadType(b[pos])
		tlen := int(binary.BigEndian.Uint16(b[pos+2:]))
		if tlen < 8 {
			return pr, decodeErr(t, base+pos, "transform length %d is less than 8", tlen)
		}
		if tlen > left {
			return pr, decodeErr(t, base+pos, "transform length %d exceeds proposal (%d left)", tlen, left)
		}
		tb := b[pos+4 : pos+tlen]
		tr := Transform{Number: tb[0], ID: tb[1]}
		attrs, err := decodeAttributes(tb[4:], base+pos+8)
		if err != nil {
			return pr, err
		}
		tr.Attributes = attrs
		pr.Transforms = append(pr.Transforms, tr)
		pos += tlen
		switch np {
		case PayloadNone:
			if pos != len(b) {
				return pr, decodeErr(t, base+pos, "%d bytes after the last transform", len(b)-pos)
			}
		case PayloadTransform:
			if pos == len(b) {
				return pr, decodeErr(t, base+pos-tlen, "transform announces another transform but the proposal ends")
			}
		default:
			return pr, decodeErr(t, base+pos-tlen, "next payload %d inside proposal, want 3 or 0", np)
		}
	}
	if len(pr.Transforms) != n {
		return pr, decodeErr(t, base+3, "proposal declares %d transforms, found %d", n, len(pr.Transforms))
	}
	return pr, nil
}

// decodeAttributes parses data attributes filling b exactly; off is the
// absolute offset of b[0]. Errors are reported in the SA payload.
func decodeAttributes(b []byte, off int) ([]Attribute, error) {
	var attrs []Attribute
	pos := 0
	for pos < len(b) {
		left := len(b) - pos
		if left < 4 {
			return nil, decodeErr(PayloadSA, off+pos, "truncated attribute (%d bytes left in transform)", left)
		}
		typ := binary.BigEndian.Uint16(b[pos:])
		v := binary.BigEndian.Uint16(b[pos+2:])
		if typ&0x8000 != 0 {
			attrs = append(attrs, Attribute{Type: typ &^ 0x8000, Basic: true, Value: v})
			pos += 4
			continue
		}
		if int(v) > left-4 {
			return nil, decodeErr(PayloadSA, off+pos, "attribute %d length %d exceeds transform (%d left)", typ, v, left-4)
		}
		attrs = append(attrs, Attribute{Type: typ, Data: b[pos+4 : pos+4+int(v)]})
		pos += 4 + int(v)
	}
	return attrs, nil
}

// DecodeAttributes parses a sequence of data attributes that fills b exactly
// (e.g. the attribute list of a transform). Offsets in errors are relative to
// b.
func DecodeAttributes(b []byte) ([]Attribute, error) {
	return decodeAttributes(b, 0)
}
