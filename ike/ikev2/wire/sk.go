package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Keys are one direction's keys of an IKE SA (SK_ei/SK_ai for messages the
// initiator sends, SK_er/SK_ar for the responder's), as ike/ikev2/keymat
// derives them. For AES-GCM-16, EncrKey is the AES key followed by the
// 4-byte salt (RFC 5282 section 7.1) and Integ is IntegNone.
type Keys struct {
	Encr     EncrID
	Integ    IntegID
	EncrKey  []byte
	IntegKey []byte
}

// Suite seals and opens the SK and SKF payloads of one direction. It is
// safe for concurrent use only if Rand is (crypto/rand is).
type Suite struct {
	block  cipher.Block // CBC
	aead   cipher.AEAD  // GCM
	salt   [4]byte
	mac    func() hash.Hash
	macKey []byte
	ivLen  int
	bs     int // block size for padding
	icvLen int
	// Rand supplies IVs; nil means crypto/rand.
	Rand io.Reader
}

// NewSuite checks the keys against the algorithms: AES-CBC with a 16, 24
// or 32-byte key and one of the four HMACs with its full key length
// (RFC 4868: 20, 32, 48, 64 bytes), or AES-GCM-16 with a 20, 28 or 36-byte
// key+salt and no integrity algorithm.
func NewSuite(k Keys) (*Suite, error) {
	switch k.Encr {
	case EncrAESCBC:
		mac, keyLen, icv, err := integAlg(k.Integ)
		if err != nil {
			return nil, err
		}
		if len(k.IntegKey) != keyLen {
			return nil, fmt.Errorf("ikev2: %s key of %d bytes, want %d", k.Integ, len(k.IntegKey), keyLen)
		}
		block, err := aes.NewCipher(k.EncrKey)
		if err != nil {
			return nil, fmt.Errorf("ikev2: %s: %w", k.Encr, err)
		}
		return &Suite{block: block, mac: mac, macKey: append([]byte(nil), k.IntegKey...), ivLen: aes.BlockSize, bs: aes.BlockSize, icvLen: icv}, nil
	case EncrAESGCM16:
		if k.Integ != IntegNone || len(k.IntegKey) != 0 {
			return nil, fmt.Errorf("ikev2: %s takes no integrity algorithm (RFC 5282), got %s", k.Encr, k.Integ)
		}
		n := len(k.EncrKey) - 4
		if n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("ikev2: %s key+salt of %d bytes, want 20, 28 or 36", k.Encr, len(k.EncrKey))
		}
		block, err := aes.NewCipher(k.EncrKey[:n])
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s := &Suite{aead: aead, ivLen: 8, bs: 1, icvLen: 16}
		copy(s.salt[:], k.EncrKey[n:])
		return s, nil
	}
	return nil, fmt.Errorf("ikev2: encryption algorithm %s not supported", k.Encr)
}

func integAlg(id IntegID) (func() hash.Hash, int, int, error) {
	switch id {
	case IntegHMACSHA196:
		return sha1.New, 20, 12, nil
	case IntegHMACSHA2256128:
		return sha256.New, 32, 16, nil
	case IntegHMACSHA2384192:
		return sha512.New384, 48, 24, nil
	case IntegHMACSHA2512256:
		return sha512.New, 64, 32, nil
	}
	return nil, 0, 0, fmt.Errorf("ikev2: integrity algorithm %s not supported", id)
}

// IVLen, ICVLen and BlockSize describe the sealed layout.
func (s *Suite) IVLen() int     { return s.ivLen }
func (s *Suite) ICVLen() int    { return s.icvLen }
func (s *Suite) BlockSize() int { return s.bs }

// SealOptions fixes what is otherwise chosen: the IV (random) and the
// padding (the least that aligns, zero bytes). Section 3.14: the padding
// may have any content and length up to 255 as long as the ciphertext is
// aligned. Tests use it to rebuild captured messages byte for byte.
type SealOptions struct {
	IV      []byte
	Padding []byte
}

// Seal returns the whole message: h (Length and NextPayload set here), and
// an SK payload that carries inner, encrypted and authenticated.
func (s *Suite) Seal(h Header, inner []Payload, opt *SealOptions) ([]byte, error) {
	first, plain, err := AppendPayloads(nil, inner)
	if err != nil {
		return nil, err
	}
	return s.seal(h, first, plain, nil, opt)
}

// frag is nil for SK, else the Fragment Number and Total Fragments of SKF.
type frag struct{ number, total uint16 }

func (s *Suite) seal(h Header, first PayloadType, plain []byte, f *frag, opt *SealOptions) ([]byte, error) {
	var iv, pad []byte
	if opt != nil {
		iv, pad = opt.IV, opt.Padding
	}
	padLen := (s.bs - (len(plain)+1)%s.bs) % s.bs
	if pad != nil {
		padLen = len(pad)
	}
	ctLen := len(plain) + padLen + 1
	if padLen > 255 || ctLen%s.bs != 0 {
		return nil, fmt.Errorf("ikev2: %d bytes of padding do not align %d bytes to %d", padLen, len(plain)+1, s.bs)
	}
	if iv != nil && len(iv) != s.ivLen {
		return nil, fmt.Errorf("ikev2: IV of %d bytes, want %d", len(iv), s.ivLen)
	}
	hdr := GenericLen
	h.NextPayload = PayloadSK
	if f != nil {
		hdr += 4
		h.NextPayload = PayloadSKF
	}
	plen := hdr + s.ivLen + ctLen + s.icvLen
	if plen > 0xffff {
		return nil, ErrPayloadTooLong
	}
	if h.Version == 0 {
		h.Version = Version
	}
	h.Length = uint32(HeaderLen + plen)
	b := make([]byte, 0, h.Length)
	b = AppendHeader(b, &h)
	b = append(b, byte(first), 0)
	b = binary.BigEndian.AppendUint16(b, uint16(plen))
	if f != nil {
		b = binary.BigEndian.AppendUint16(b, f.number)
		b = binary.BigEndian.AppendUint16(b, f.total)
	}
	aadEnd := len(b)
	if iv != nil {
		b = append(b, iv...)
	} else {
		b = b[:aadEnd+s.ivLen]
		r := s.Rand
		if r == nil {
			r = rand.Reader
		}
		if _, err := io.ReadFull(r, b[aadEnd:]); err != nil {
			return nil, fmt.Errorf("ikev2: IV: %w", err)
		}
	}
	ivb := b[aadEnd : aadEnd+s.ivLen]
	pt := make([]byte, 0, ctLen)
	pt = append(append(pt, plain...), pad...)
	pt = append(pt, make([]byte, len(plain)+padLen-len(pt))...) // zero padding when pad is nil
	pt = append(pt, byte(padLen))
	if s.aead != nil {
		var nonce [12]byte
		copy(nonce[:4], s.salt[:])
		copy(nonce[4:], ivb)
		return s.aead.Seal(b, nonce[:], pt, b[:aadEnd]), nil
	}
	cipher.NewCBCEncrypter(s.block, ivb).CryptBlocks(pt, pt)
	b = append(b, pt...)
	m := hmac.New(s.mac, s.macKey)
	m.Write(b)
	return m.Sum(b)[:len(b)+s.icvLen], nil
}

// Opened is a decrypted SK or SKF message.
type Opened struct {
	Header Header
	// Clear are the payloads before SK/SKF (normally none).
	Clear []Payload
	// First is the type of the first inner payload (0 in SKF fragments
	// after the first).
	First PayloadType
	// Plain is the decrypted inner chain (or, for SKF, this fragment's
	// piece of it) without padding.
	Plain []byte
	// IV and Padding are as received.
	IV, Padding []byte
	// Number and Total are the SKF fragment's numbers; 0 for SK.
	Number, Total uint16
	// offset of the ciphertext in the message, for errors.
	offset int
}

// Payloads decodes the inner chain of an SK message.
func (o *Opened) Payloads() ([]Payload, error) {
	if o.Total != 0 {
		return nil, errors.New("ikev2: a fragment's content is decoded after reassembly")
	}
	return decodeChain(o.First, o.Plain, o.offset, false)
}

// Open decodes a message whose last payload is SK or SKF, verifies its
// integrity (before decrypting, section 3.14) and decrypts it. An ICV that
// does not verify is ErrAuthentication; malformed input a *DecodeError.
func (s *Suite) Open(b []byte) (*Opened, error) {
	m, err := Decode(b)
	if err != nil {
		return nil, err
	}
	ps := m.Payloads
	o := &Opened{Header: m.Header}
	var data []byte
	var last PayloadType
	switch p := lastPayload(ps).(type) {
	case *Encrypted:
		o.First, data, last = p.NextPayload, p.Data, PayloadSK
	case *EncryptedFragment:
		o.First, data, last = p.NextPayload, p.Data, PayloadSKF
		o.Number, o.Total = p.Number, p.Total
	default:
		return nil, decodeErr(PayloadNone, HeaderLen, "no encrypted payload (SK or SKF) in the message")
	}
	o.Clear = ps[:len(ps)-1]
	msg := b[:m.Header.Length]
	ivStart := len(msg) - len(data)
	ctLen := len(data) - s.ivLen - s.icvLen
	if ctLen < 1 || ctLen%s.bs != 0 {
		return nil, decodeErr(last, ivStart, "%d bytes of encrypted data do not hold a %d-byte IV, whole %d-byte blocks and a %d-byte ICV", len(data), s.ivLen, s.bs, s.icvLen)
	}
	o.IV = append([]byte(nil), data[:s.ivLen]...)
	ct := data[s.ivLen : s.ivLen+ctLen]
	o.offset = ivStart + s.ivLen
	var pt []byte
	if s.aead != nil {
		var nonce [12]byte
		copy(nonce[:4], s.salt[:])
		copy(nonce[4:], o.IV)
		pt, err = s.aead.Open(nil, nonce[:], data[s.ivLen:], msg[:ivStart])
		if err != nil {
			return nil, ErrAuthentication
		}
	} else {
		m := hmac.New(s.mac, s.macKey)
		m.Write(msg[:len(msg)-s.icvLen])
		if !hmac.Equal(m.Sum(nil)[:s.icvLen], msg[len(msg)-s.icvLen:]) {
			return nil, ErrAuthentication
		}
		pt = make([]byte, ctLen)
		cipher.NewCBCDecrypter(s.block, o.IV).CryptBlocks(pt, ct)
	}
	padLen := int(pt[len(pt)-1])
	if padLen+1 > len(pt) {
		return nil, decodeErr(last, o.offset, "pad length %d exceeds the %d decrypted bytes", padLen, len(pt)-1)
	}
	o.Plain = pt[:len(pt)-1-padLen]
	o.Padding = pt[len(pt)-1-padLen : len(pt)-1]
	return o, nil
}

func lastPayload(ps []Payload) Payload {
	if len(ps) == 0 {
		return nil
	}
	return ps[len(ps)-1]
}
