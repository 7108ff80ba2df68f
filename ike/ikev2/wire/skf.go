package wire

import (
	"errors"
	"fmt"
)

// Bounds of RFC 7383 reassembly (section 2.6 asks for limits on the number
// of fragments and the memory a message may take).
const (
	DefaultMaxFragments = 32
	DefaultMaxBytes     = 64 << 10
)

// SealFragment returns one SKF message (RFC 7383 section 2.5): h with the
// piece of the inner chain that is fragment number of total; first is the
// first inner payload's type (fragment 1 only; 0 in the others).
func (s *Suite) SealFragment(h Header, first PayloadType, piece []byte, number, total uint16, opt *SealOptions) ([]byte, error) {
	if number == 0 || number > total {
		return nil, fmt.Errorf("ikev2: fragment %d of %d", number, total)
	}
	if number != 1 && first != PayloadNone {
		return nil, fmt.Errorf("ikev2: fragment %d with next payload %s; only fragment 1 names the first inner payload", number, first)
	}
	return s.seal(h, first, piece, &frag{number, total}, opt)
}

// Split encodes inner and returns it as SKF messages of at most maxLen
// bytes each (the IKE message, without IP and UDP headers: RFC 7383
// section 2.5.1 derives it from the path MTU). All fragments carry h's
// SPIs, exchange, flags and message ID.
func (s *Suite) Split(h Header, inner []Payload, maxLen int) ([][]byte, error) {
	first, plain, err := AppendPayloads(nil, inner)
	if err != nil {
		return nil, err
	}
	room := maxLen - HeaderLen - GenericLen - 4 - s.ivLen - s.icvLen
	room -= room % s.bs
	chunk := room - 1 // the pad-length octet
	if chunk < 1 {
		return nil, fmt.Errorf("ikev2: %d bytes leave no room for fragment content", maxLen)
	}
	n := (len(plain) + chunk - 1) / chunk
	if n == 0 {
		n = 1
	}
	if n > 0xffff {
		return nil, fmt.Errorf("ikev2: %d bytes in fragments of %d would need %d fragments", len(plain), chunk, n)
	}
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		piece := plain[i*chunk : min(len(plain), (i+1)*chunk)]
		f := PayloadNone
		if i == 0 {
			f = first
		}
		b, err := s.SealFragment(h, f, piece, uint16(i+1), uint16(n), nil)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// ErrStaleFragment is returned by Reassembler.Add for a fragment of an
// older fragmentation of the message (a smaller Total Fragments, RFC 7383
// section 2.6.2): it is dropped.
var ErrStaleFragment = errors.New("ikev2: fragment with a smaller total than the fragments collected")

// Reassembler collects the opened SKF fragments of one message (one
// message ID of one IKE SA) and returns the inner payloads when all have
// arrived. The zero value uses the default bounds.
type Reassembler struct {
	MaxFragments int // Total Fragments above this is refused
	MaxBytes     int // the reassembled chain above this is refused

	msgID uint32
	total uint16
	first PayloadType
	parts [][]byte
	have  int
	size  int
}

// Add adds one opened fragment. It returns true when the message is
// complete. Duplicates are ignored. A fragment with a larger Total than the
// collected ones discards them and starts over (section 2.6.2); one with a
// smaller Total is ErrStaleFragment.
func (r *Reassembler) Add(o *Opened) (bool, error) {
	maxF, maxB := r.MaxFragments, r.MaxBytes
	if maxF <= 0 {
		maxF = DefaultMaxFragments
	}
	if maxB <= 0 {
		maxB = DefaultMaxBytes
	}
	if o.Total == 0 {
		return false, errors.New("ikev2: not a fragment")
	}
	if int(o.Total) > maxF {
		return false, fmt.Errorf("ikev2: %d fragments, at most %d accepted", o.Total, maxF)
	}
	if r.parts != nil && o.Header.MessageID != r.msgID {
		return false, fmt.Errorf("ikev2: fragment of message %d, collecting message %d", o.Header.MessageID, r.msgID)
	}
	switch {
	case r.parts != nil && o.Total < r.total:
		return false, ErrStaleFragment
	case r.parts == nil || o.Total > r.total:
		r.msgID, r.total, r.first = o.Header.MessageID, o.Total, PayloadNone
		r.parts, r.have, r.size = make([][]byte, o.Total), 0, 0
	}
	i := int(o.Number) - 1
	if i < 0 || i >= len(r.parts) {
		return false, fmt.Errorf("ikev2: fragment number %d of %d", o.Number, o.Total)
	}
	if r.parts[i] != nil {
		return r.have == len(r.parts), nil
	}
	if r.size+len(o.Plain) > maxB {
		return false, fmt.Errorf("ikev2: reassembled message would exceed %d bytes", maxB)
	}
	if o.Number == 1 {
		if o.First == PayloadNone {
			return false, errors.New("ikev2: fragment 1 names no first inner payload")
		}
		r.first = o.First
	}
	r.parts[i] = append([]byte{}, o.Plain...)
	r.have++
	r.size += len(o.Plain)
	return r.have == len(r.parts), nil
}

// Complete reports whether every fragment has arrived.
func (r *Reassembler) Complete() bool { return r.parts != nil && r.have == len(r.parts) }

// Chain returns the reassembled inner chain and its first payload type.
func (r *Reassembler) Chain() (PayloadType, []byte, error) {
	if !r.Complete() {
		return 0, nil, fmt.Errorf("ikev2: %d of %d fragments", r.have, r.total)
	}
	b := make([]byte, 0, r.size)
	for _, p := range r.parts {
		b = append(b, p...)
	}
	return r.first, b, nil
}

// Payloads decodes the reassembled inner chain.
func (r *Reassembler) Payloads() ([]Payload, error) {
	first, b, err := r.Chain()
	if err != nil {
		return nil, err
	}
	return DecodePayloads(first, b, HeaderLen)
}
