package esp

import (
	"crypto/hmac"
	"encoding/binary"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// IP protocol numbers used as ESP/AH next header.
const (
	ProtoIPv4   = 4
	ProtoIPv6   = 41
	ProtoESP    = 50
	ProtoAH     = 51
	NextHdrNone = 59 // dummy packet (RFC 4303 section 2.6)
)

// ESPLen returns the length of the ESP packet (SPI through ICV) that
// AppendESP produces for a payload of n bytes.
func (sa *SA) ESPLen(n int) int {
	return 8 + sa.ivLen + sa.paddedLen(n) + sa.icvLen
}

// paddedLen is payload + padding + pad length + next header.
func (sa *SA) paddedLen(n int) int {
	bs := sa.blockSize
	return (n + 2 + bs - 1) / bs * bs
}

// AppendESP appends the ESP packet (SPI, sequence number, IV, encrypted
// payload and trailer, ICV) protecting payload to dst and returns the
// extended slice. nextHeader is 4 (IPv4) or 41 (IPv6) in tunnel mode and the
// transport protocol in transport mode. Padding is the RFC 4303 section 2.4
// default 1, 2, 3, ... up to the cipher block size (16 for AES-CBC, 4
// otherwise). payload must not overlap dst's spare capacity. With
// cap(dst)-len(dst) >= ESPLen(len(payload)) nothing is allocated.
//
// It returns ErrSeqExhausted once sequence number 2^32-1 has been used.
func (sa *SA) AppendESP(dst, payload []byte, nextHeader byte) ([]byte, error) {
	out, job, err := sa.PrepareESP(dst, payload, nextHeader)
	if err != nil {
		return out, err
	}
	sa.seal(&sa.cryptoState, job.pkt, job.seq)
	return out, nil
}

// PrepareESP is the first, serial half of AppendESP: it takes the next
// sequence number, appends the ESP packet with the payload and trailer
// still in clear (IV and ICV not yet written) to dst, and counts it. The
// returned PendingESP completes it (Seal, see parallel.go); until then the
// packet must not be sent. Calls of PrepareESP on one SA are serialised by
// the caller, so that packets leave in sequence number order when they are
// sent in the order of preparation.
func (sa *SA) PrepareESP(dst, payload []byte, nextHeader byte) ([]byte, PendingESP, error) {
	if sa.dir != Outbound {
		return dst, PendingESP{}, ErrWrongDirection
	}
	if sa.proto != isakmp.ProtoESP {
		return dst, PendingESP{}, ErrWrongProtocol
	}
	seq, err := sa.nextSeq()
	if err != nil {
		return dst, PendingESP{}, err
	}
	padded := sa.paddedLen(len(payload))
	hdrLen := 8 + sa.ivLen
	out, p := grow(dst, hdrLen+padded+sa.icvLen)
	binary.BigEndian.PutUint32(p[0:4], sa.spi)
	binary.BigEndian.PutUint32(p[4:8], seq)
	body := p[hdrLen : hdrLen+padded]
	copy(body, payload)
	padLen := padded - len(payload) - 2
	for i := 0; i < padLen; i++ {
		body[len(payload)+i] = byte(i + 1)
	}
	body[padded-2] = byte(padLen)
	body[padded-1] = nextHeader
	sa.ok(len(payload))
	return out, PendingESP{sa: sa, pkt: p, seq: seq}, nil
}

// cbcIV writes the IV of packet seq: AES under the SA's IV key of its
// random prefix and the sequence number (unpredictable, never repeated).
func (sa *SA) cbcIV(cs *cryptoState, seq uint32, iv []byte) {
	if sa.ivFunc != nil {
		sa.ivFunc(seq, iv)
		return
	}
	ctr := cs.scratch[64:80]
	copy(ctr, sa.ivPrefix[:])
	binary.BigEndian.PutUint64(ctr[8:], uint64(seq))
	sa.ivBlock.Encrypt(iv, ctr)
}

// seal writes the IV, encrypts and writes the ICV of a packet that
// PrepareESP laid out in p, with the crypto state cs.
func (sa *SA) seal(cs *cryptoState, p []byte, seq uint32) {
	hdrLen := 8 + sa.ivLen
	padded := len(p) - hdrLen - sa.icvLen
	iv := p[8:hdrLen]
	body := p[hdrLen : hdrLen+padded]
	switch sa.enc {
	case encCBC:
		sa.cbcIV(cs, seq, iv)
		cs.cbcEnc.SetIV(iv)
		cs.cbcEnc.CryptBlocks(body, body)
	case encGCM:
		if sa.ivFunc != nil {
			sa.ivFunc(seq, iv)
		} else {
			binary.BigEndian.PutUint64(iv, uint64(seq))
		}
		nonce := cs.scratch[64:76]
		copy(nonce, sa.salt[:])
		copy(nonce[4:], iv)
		sa.aead.Seal(body[:0], nonce, body, p[:8])
		return
	}
	if cs.mac != nil {
		cs.mac.Reset()
		cs.mac.Write(p[:hdrLen+padded])
		copy(p[hdrLen+padded:], cs.macSum(sa.icvLen))
	}
}

// OpenESP verifies and decrypts an ESP packet (SPI through ICV, no IP or
// UDP header) and appends the payload to dst. It returns the extended
// slice and the next header (4/41 in tunnel mode, the transport protocol in
// transport mode, 59 for a dummy packet the caller should discard). dst
// must not overlap packet. With cap(dst)-len(dst) >= len(packet) nothing is
// allocated.
//
// Order of checks: length and alignment, SPI, ICV in constant time (GCM:
// tag), then anti-replay check and window update, decryption, padding. The
// replay check comes after the ICV on purpose (the project's rule): a forged
// or corrupted packet is always counted as an ICV drop, and only authentic
// packets are ever judged by the window. RFC 4303 section 3.4.3 also allows
// checking first to save the HMAC on duplicates. Failures return dst unchanged and a DropReason, also counted in
// the SA's Stats.
func (sa *SA) OpenESP(dst, packet []byte) ([]byte, byte, error) {
	out, seq, err := sa.decrypt(&sa.cryptoState, dst, packet)
	if err != nil {
		return dst, 0, err
	}
	n, nh, err := sa.AcceptESP(seq, out[len(dst):])
	if err != nil {
		return dst, 0, err
	}
	return out[:len(dst)+n], nh, nil
}

// decrypt is the first half of OpenESP: checks, ICV, decryption into dst's
// spare capacity (returned extended by the padded plaintext). It does not
// touch the replay window. Failures are counted.
func (sa *SA) decrypt(cs *cryptoState, dst, packet []byte) ([]byte, uint32, error) {
	if sa.dir != Inbound {
		return dst, 0, ErrWrongDirection
	}
	if sa.proto != isakmp.ProtoESP {
		return dst, 0, ErrWrongProtocol
	}
	hdrLen := 8 + sa.ivLen
	bodyLen := len(packet) - hdrLen - sa.icvLen
	if bodyLen < 2 || bodyLen%sa.blockSize != 0 {
		return dst, 0, sa.drop(DropMalformed)
	}
	if binary.BigEndian.Uint32(packet[0:4]) != sa.spi {
		return dst, 0, sa.drop(DropNoSA)
	}
	seq := binary.BigEndian.Uint32(packet[4:8])
	iv := packet[8:hdrLen]
	body := packet[hdrLen : hdrLen+bodyLen]
	var out, pt []byte
	switch sa.enc {
	case encGCM:
		nonce := cs.scratch[64:76]
		copy(nonce, sa.salt[:])
		copy(nonce[4:], iv)
		var err error
		out, _ = grow(dst, bodyLen) // capacity for Open
		out, err = sa.aead.Open(out[:len(dst)], nonce, packet[hdrLen:], packet[:8])
		if err != nil {
			return dst, 0, sa.drop(DropICV)
		}
	default:
		if cs.mac != nil {
			cs.mac.Reset()
			cs.mac.Write(packet[:hdrLen+bodyLen])
			if !hmac.Equal(cs.macSum(sa.icvLen), packet[hdrLen+bodyLen:]) {
				return dst, 0, sa.drop(DropICV)
			}
		}
		out, pt = grow(dst, bodyLen)
		if sa.enc == encCBC {
			cs.cbcDec.SetIV(iv)
			cs.cbcDec.CryptBlocks(pt, body)
		} else {
			copy(pt, body)
		}
	}
	return out, seq, nil
}

// AcceptESP is the second half of OpenESP, for a packet whose ICV has been
// verified and whose padded plaintext pt (payload, padding, pad length,
// next header) was decrypted: it judges seq by the anti-replay window and
// moves the window, then checks the padding and counts the packet. It
// returns the payload length and the next header. Calls on one SA must be
// serialised (the window is not locked); they may come in any order of
// sequence numbers (parallel decryption finishing out of order): the
// window accepts every sequence number once while it is inside it.
func (sa *SA) AcceptESP(seq uint32, pt []byte) (int, byte, error) {
	if sa.dir != Inbound || sa.replay == nil {
		return 0, 0, ErrWrongDirection
	}
	bodyLen := len(pt)
	if bodyLen < 2 {
		return 0, 0, sa.drop(DropMalformed)
	}
	// Authentic (or, encryption-only, at least decrypted): judge by the
	// window, then move it.
	if !sa.replay.check(seq) {
		return 0, 0, sa.drop(DropReplay)
	}
	sa.replay.update(seq)
	padLen := int(pt[bodyLen-2])
	nh := pt[bodyLen-1]
	if padLen > bodyLen-2 {
		return 0, 0, sa.drop(DropPadding)
	}
	n := bodyLen - 2 - padLen
	for i := 0; i < padLen; i++ {
		if pt[n+i] != byte(i+1) {
			return 0, 0, sa.drop(DropPadding)
		}
	}
	sa.ok(n)
	return n, nh, nil
}
