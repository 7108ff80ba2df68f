package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

func (*SA) Type() PayloadType                { return PayloadSA }
func (*KE) Type() PayloadType                { return PayloadKE }
func (*Cert) Type() PayloadType              { return PayloadCert }
func (*CertReq) Type() PayloadType           { return PayloadCertReq }
func (*Auth) Type() PayloadType              { return PayloadAuth }
func (*Nonce) Type() PayloadType             { return PayloadNonce }
func (*Notify) Type() PayloadType            { return PayloadNotify }
func (*Delete) Type() PayloadType            { return PayloadDelete }
func (*VendorID) Type() PayloadType          { return PayloadVendorID }
func (*Encrypted) Type() PayloadType         { return PayloadSK }
func (*EncryptedFragment) Type() PayloadType { return PayloadSKF }
func (*Config) Type() PayloadType            { return PayloadCP }
func (*EAP) Type() PayloadType               { return PayloadEAP }

func (p *ID) Type() PayloadType {
	if p != nil && p.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

func (p *TS) Type() PayloadType {
	if p != nil && p.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

func (p *Unknown) Type() PayloadType {
	if p == nil {
		return PayloadNone
	}
	return p.PType
}

var errNil = errors.New("nil payload")

func (p *KE) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	b = binary.BigEndian.AppendUint16(b, uint16(p.Group))
	return append(append(b, 0, 0), p.Data...), nil
}

func (p *ID) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	return append(append(b, byte(p.IDType), 0, 0, 0), p.Data...), nil
}

func (p *Cert) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	return append(append(b, byte(p.Encoding)), p.Data...), nil
}

func (p *CertReq) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	return append(append(b, byte(p.Encoding)), p.Data...), nil
}

func (p *Auth) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	return append(append(b, byte(p.Method), 0, 0, 0), p.Data...), nil
}

func (p *Nonce) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	if err := checkNonce(len(p.Data)); err != nil {
		return nil, err
	}
	return append(b, p.Data...), nil
}

func checkNonce(n int) error {
	if n < 16 || n > 256 {
		return fmt.Errorf("nonce of %d bytes, want 16 to 256 (section 3.9)", n)
	}
	return nil
}

func (p *Notify) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	if len(p.SPI) > 0xff {
		return nil, fmt.Errorf("SPI of %d bytes too long", len(p.SPI))
	}
	b = append(b, byte(p.Protocol), byte(len(p.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(p.NotifyType))
	return append(append(b, p.SPI...), p.Data...), nil
}

func (p *Delete) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	if len(p.SPIs) > 0xffff {
		return nil, fmt.Errorf("%d SPIs, at most 65535", len(p.SPIs))
	}
	if p.SPISize == 0 && len(p.SPIs) > 0 {
		return nil, errors.New("SPI size 0 with SPIs")
	}
	b = append(b, byte(p.Protocol), p.SPISize)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.SPIs)))
	for i, s := range p.SPIs {
		if len(s) != int(p.SPISize) {
			return nil, fmt.Errorf("SPI %d has %d bytes, SPI size is %d", i, len(s), p.SPISize)
		}
		b = append(b, s...)
	}
	return b, nil
}

func (p *VendorID) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	return append(b, p.Data...), nil
}

func (p *EAP) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	return append(b, p.Data...), nil
}

func (p *Unknown) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	if p.PType.known() || p.PType == PayloadNone {
		return nil, fmt.Errorf("Unknown payload with the known type %s", p.PType)
	}
	return append(b, p.Data...), nil
}

func (p *Encrypted) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	return append(b, p.Data...), nil
}

func (p *EncryptedFragment) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	b = binary.BigEndian.AppendUint16(b, p.Number)
	b = binary.BigEndian.AppendUint16(b, p.Total)
	return append(b, p.Data...), nil
}

// decodeBody decodes the body of a known payload type other than SK/SKF;
// off is the absolute offset of its generic header.
func decodeBody(t PayloadType, body []byte, off int) (Payload, error) {
	need := func(n int) error {
		if len(body) < n {
			return decodeErr(t, off, "body of %d bytes, at least %d needed", len(body), n)
		}
		return nil
	}
	switch t {
	case PayloadSA:
		return decodeSA(body, off)
	case PayloadTSi, PayloadTSr:
		return decodeTS(t, body, off)
	case PayloadCP:
		return decodeConfig(body, off)
	case PayloadKE:
		if err := need(4); err != nil {
			return nil, err
		}
		return &KE{Group: DHGroup(binary.BigEndian.Uint16(body)), Data: clone(body[4:])}, nil
	case PayloadIDi, PayloadIDr:
		if err := need(4); err != nil {
			return nil, err
		}
		return &ID{Responder: t == PayloadIDr, IDType: IDType(body[0]), Data: clone(body[4:])}, nil
	case PayloadCert, PayloadCertReq:
		if err := need(1); err != nil {
			return nil, err
		}
		if t == PayloadCert {
			return &Cert{Encoding: CertEncoding(body[0]), Data: clone(body[1:])}, nil
		}
		return &CertReq{Encoding: CertEncoding(body[0]), Data: clone(body[1:])}, nil
	case PayloadAuth:
		if err := need(4); err != nil {
			return nil, err
		}
		return &Auth{Method: AuthMethod(body[0]), Data: clone(body[4:])}, nil
	case PayloadNonce:
		if err := checkNonce(len(body)); err != nil {
			return nil, decodeErr(t, off, "%v", err)
		}
		return &Nonce{Data: clone(body)}, nil
	case PayloadNotify:
		return decodeNotify(body, off)
	case PayloadDelete:
		return decodeDelete(body, off)
	case PayloadVendorID:
		return &VendorID{Data: clone(body)}, nil
	case PayloadEAP:
		if err := need(4); err != nil { // Code, Identifier, Length (RFC 3748)
			return nil, err
		}
		return &EAP{Data: clone(body)}, nil
	}
	return nil, decodeErr(t, off, "no decoder for payload type %d", uint8(t))
}

func decodeNotify(body []byte, off int) (Payload, error) {
	if len(body) < 4 {
		return nil, decodeErr(PayloadNotify, off, "body of %d bytes, at least 4 needed", len(body))
	}
	n := int(body[1])
	if 4+n > len(body) {
		return nil, decodeErr(PayloadNotify, off, "SPI size %d exceeds the %d bytes left", n, len(body)-4)
	}
	return &Notify{Protocol: ProtocolID(body[0]), NotifyType: NotifyType(binary.BigEndian.Uint16(body[2:])),
		SPI: clone(body[4 : 4+n]), Data: clone(body[4+n:])}, nil
}

func decodeDelete(body []byte, off int) (Payload, error) {
	if len(body) < 4 {
		return nil, decodeErr(PayloadDelete, off, "body of %d bytes, at least 4 needed", len(body))
	}
	size, num := int(body[1]), int(binary.BigEndian.Uint16(body[2:]))
	if size == 0 && num != 0 {
		return nil, decodeErr(PayloadDelete, off, "SPI size 0 with %d SPIs", num)
	}
	// Section 3.11: the SPI size is 0 for IKE (the SPIs are in the header)
	// and 4 for AH and ESP.
	switch proto := ProtocolID(body[0]); {
	case proto == ProtoIKE && size != 0, (proto == ProtoAH || proto == ProtoESP) && size != 4:
		return nil, decodeErr(PayloadDelete, off, "SPI size %d for %s", size, proto)
	}
	if 4+size*num != len(body) {
		return nil, decodeErr(PayloadDelete, off, "%d SPIs of %d bytes do not fill the %d bytes left", num, size, len(body)-4)
	}
	d := &Delete{Protocol: ProtocolID(body[0]), SPISize: uint8(size)}
	for i := 0; i < num; i++ {
		d.SPIs = append(d.SPIs, clone(body[4+i*size:4+(i+1)*size]))
	}
	return d, nil
}

// decodeSealed decodes an SK or SKF payload (still encrypted). np is the
// generic header's Next Payload: the first inner payload's type.
func decodeSealed(t, np PayloadType, body []byte, off int) (Payload, error) {
	if t == PayloadSK {
		if len(body) == 0 {
			return nil, decodeErr(t, off, "empty encrypted payload")
		}
		return &Encrypted{NextPayload: np, Data: clone(body)}, nil
	}
	if len(body) < 5 {
		return nil, decodeErr(t, off, "body of %d bytes, at least 5 needed", len(body))
	}
	f := &EncryptedFragment{NextPayload: np, Number: binary.BigEndian.Uint16(body), Total: binary.BigEndian.Uint16(body[2:]), Data: clone(body[4:])}
	if f.Number == 0 || f.Total == 0 || f.Number > f.Total {
		return nil, decodeErr(t, off, "fragment number %d of %d", f.Number, f.Total)
	}
	if f.Number != 1 && np != PayloadNone {
		return nil, decodeErr(t, off, "fragment %d has next payload %s, only fragment 1 may", f.Number, np)
	}
	return f, nil
}
