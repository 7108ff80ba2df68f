package ike

import (
	"encoding/binary"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Mangling verbs of the hostile-peer battery: each returns the relay's
// mangle function for the named message (first copy only unless said).

type mangleFn = func(r *batRelay, name string, copy int, p harnessPacket) []harnessPacket

// onFirst applies f to the first copy of msg and passes everything else.
func onFirst(msg string, f func(r *batRelay, p harnessPacket) []harnessPacket) mangleFn {
	return func(r *batRelay, name string, copy int, p harnessPacket) []harnessPacket {
		if name != msg || copy != 1 {
			return []harnessPacket{p}
		}
		return f(r, p)
	}
}

// rewrite applies f to a copy of the IKE bytes of the first copy of msg.
func rewrite(msg string, f func(b []byte) []byte) mangleFn {
	return onFirst(msg, func(_ *batRelay, p harnessPacket) []harnessPacket {
		q := p
		q.b = withIKE(p, f(append([]byte(nil), ikeBytes(p)...)))
		return []harnessPacket{q}
	})
}

// withIKE puts IKE bytes back into a datagram (non-ESP marker on 4500).
func withIKE(p harnessPacket, b []byte) []byte {
	if p.dst.Port() == 4500 {
		return append([]byte{0, 0, 0, 0}, b...)
	}
	return b
}

func dropFirst(msg string) mangleFn {
	return onFirst(msg, func(*batRelay, harnessPacket) []harnessPacket { return nil })
}

// dropCopies drops the numbered copy of each message named (e.g. QM3's
// first and QM2's second).
func dropCopies(which map[string]int) mangleFn {
	return func(r *batRelay, name string, copy int, p harnessPacket) []harnessPacket {
		if n, ok := which[name]; ok && n == copy {
			return nil
		}
		return []harnessPacket{p}
	}
}

// lateAtTimeout holds the first copy of msg until the timer of its
// request's retransmission has fired (posted to the initiator's inbox) and
// delivers it before that post runs: the answer arrives as the initiator
// gives up waiting. The initiator's later messages get a timeout of 1 s,
// so that a retransmission in the rest of the row can only be that post's.
func lateAtTimeout(msg string) mangleFn {
	return onFirst(msg, func(r *batRelay, p harnessPacket) []harnessPacket {
		// The first retransmission falls due (after 25 ms) and its timer
		// posts before the answer is delivered.
		r.advanceTo(r.clock.now().Add(60 * time.Millisecond))
		r.fireDue()
		r.ini().cfg.RetransmitTimeout = time.Second
		return []harnessPacket{p}
	})
}

func duplicate(msg string) mangleFn {
	return onFirst(msg, func(_ *batRelay, p harnessPacket) []harnessPacket { return []harnessPacket{p, p} })
}

// replayLater delivers msg and keeps a copy for flushHeld (a forward replay:
// the old message arrives after the exchange moved on).
func replayLater(msg string) mangleFn {
	return onFirst(msg, func(r *batRelay, p harnessPacket) []harnessPacket {
		r.held = append(r.held, p)
		return []harnessPacket{p}
	})
}

// replayBefore delivers msg and then the last copy of earlier (a backward
// replay: an older message of the same sender arrives after a newer one).
func replayBefore(msg, earlier string) mangleFn {
	var saved *harnessPacket
	return func(r *batRelay, name string, copy int, p harnessPacket) []harnessPacket {
		if name == earlier {
			q := p
			saved = &q
		}
		if name == msg && copy == 1 && saved != nil {
			return []harnessPacket{p, *saved}
		}
		return []harnessPacket{p}
	}
}

// reorder holds the first copy of msg and delivers it after the second
// (the retransmission arrives before the original).
func reorder(msg string) mangleFn {
	var first *harnessPacket
	return func(r *batRelay, name string, copy int, p harnessPacket) []harnessPacket {
		if name != msg {
			return []harnessPacket{p}
		}
		switch copy {
		case 1:
			q := p
			first = &q
			return nil
		case 2:
			if first != nil {
				return []harnessPacket{p, *first}
			}
		}
		return []harnessPacket{p}
	}
}

// corruptBody flips a bit in the last byte of the message (for an
// encrypted one: its last cipher block, so the payloads decrypt to garbage).
func corruptBody(msg string) mangleFn {
	return rewrite(msg, func(b []byte) []byte { b[len(b)-1] ^= 0x40; return b })
}

// header field rewrites.
func setFlags(msg string, f byte) mangleFn {
	return rewrite(msg, func(b []byte) []byte { b[19] |= f; return b })
}

func setVersion(msg string, v byte) mangleFn {
	return rewrite(msg, func(b []byte) []byte { b[17] = v; return b })
}

func zeroICookie(msg string) mangleFn {
	return rewrite(msg, func(b []byte) []byte { copy(b[0:8], make([]byte, 8)); return b })
}

func otherRCookie(msg string) mangleFn {
	return rewrite(msg, func(b []byte) []byte { b[15] ^= 0x5a; b[8] |= 1; return b })
}

func wrongMsgID(msg string) mangleFn {
	return rewrite(msg, func(b []byte) []byte { b[23] ^= 0x01; b[20] |= 0x10; return b })
}

func lengthDelta(msg string, d int) mangleFn {
	return rewrite(msg, func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[24:], uint32(len(b)+d))
		return b
	})
}

// truncate cuts the datagram short (the length field still says the whole).
func truncate(msg string, n int) mangleFn {
	return rewrite(msg, func(b []byte) []byte { return b[:len(b)-n] })
}

// editPayloads decodes a plaintext message, lets f change its payloads and
// encodes it again.
func editPayloads(msg string, f func(ps []isakmp.Payload) []isakmp.Payload) mangleFn {
	return rewrite(msg, func(b []byte) []byte {
		m, err := isakmp.Decode(b)
		if err != nil || m.Header.Flags&isakmp.FlagEncryption != 0 {
			return b
		}
		m.Payloads = f(m.Payloads)
		out, err := m.Encode()
		if err != nil {
			return b
		}
		return out
	})
}

// setKE replaces the KE data; setNonce the nonce data.
func setKE(msg string, data func(old []byte) []byte) mangleFn {
	return editPayloads(msg, func(ps []isakmp.Payload) []isakmp.Payload {
		for _, p := range ps {
			if ke, ok := p.(*isakmp.KE); ok {
				ke.Data = data(ke.Data)
			}
		}
		return ps
	})
}

func setNonceLen(msg string, n int) mangleFn {
	return editPayloads(msg, func(ps []isakmp.Payload) []isakmp.Payload {
		for _, p := range ps {
			if no, ok := p.(*isakmp.Nonce); ok {
				no.Data = make([]byte, n)
				for i := range no.Data {
					no.Data[i] = byte(i + 1)
				}
			}
		}
		return ps
	})
}

// unknownPayload appends a payload of an unassigned type (RFC 2408 3.1:
// 17-127 reserved) to a plaintext message, with the RESERVED byte of its
// generic header set to 0x80 if critical (IKEv2's critical bit; RFC 2408
// 3.2 says RESERVED is 0).
func unknownPayload(msg string, critical bool) mangleFn {
	return rewrite(msg, func(b []byte) []byte {
		hdr, err := isakmp.DecodeHeader(b)
		if err != nil || hdr.Flags&isakmp.FlagEncryption != 0 {
			return b
		}
		body := b[isakmp.HeaderLen:hdr.Length]
		next, off, last := byte(hdr.NextPayload), 0, -1
		for next != 0 && off+4 <= len(body) {
			last = off
			next = body[off]
			off += int(binary.BigEndian.Uint16(body[off+2:]))
		}
		if last < 0 {
			return b
		}
		body[last] = 100
		res := byte(0)
		if critical {
			res = 0x80
		}
		out := append(append([]byte(nil), b[:hdr.Length]...), 0, res, 0, 8, 1, 2, 3, 4)
		binary.BigEndian.PutUint32(out[24:], uint32(len(out)))
		return out
	})
}

// both combines mangles (applied in order on the same datagram).
func both(fs ...mangleFn) mangleFn {
	return func(r *batRelay, name string, copy int, p harnessPacket) []harnessPacket {
		ps := []harnessPacket{p}
		for _, f := range fs {
			var next []harnessPacket
			for _, q := range ps {
				next = append(next, f(r, name, copy, q)...)
			}
			ps = next
		}
		return ps
	}
}
