package isakmp

import (
	"errors"
	"fmt"
)

// MaxPayloads bounds the number of payloads decoded from one chain (a whole
// message or a decrypted body). Real IKEv1 messages carry well under 20.
const MaxPayloads = 64

// MaxProposals and MaxTransforms bound the nesting inside one SA payload. The
// wire format already limits them (8-bit counts, 16-bit lengths); the bounds
// only keep hostile inputs cheap.
const (
	MaxProposals  = 64
	MaxTransforms = 255
)

// DecodeError reports malformed input. Payload is the top-level payload in
// which the problem was found (PayloadNone for the header or the chain
// itself); Offset is the absolute byte offset, counted from the start of the
// ISAKMP header, of the element that is malformed (the payload, or for errors
// inside an SA the proposal, transform or attribute).
type DecodeError struct {
	Payload PayloadType
	Offset  int
	Reason  string
}

func (e *DecodeError) Error() string {
	if e.Payload == PayloadNone {
		return fmt.Sprintf("isakmp: message at offset %d: %s", e.Offset, e.Reason)
	}
	return fmt.Sprintf("isakmp: %s payload at offset %d: %s", e.Payload, e.Offset, e.Reason)
}

func decodeErr(p PayloadType, off int, format string, args ...any) *DecodeError {
	return &DecodeError{Payload: p, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// ErrPayloadTooLong is returned by the encoders when a payload body does not
// fit the 16-bit payload length.
var ErrPayloadTooLong = errors.New("isakmp: payload longer than 65535 bytes")
