package wire

import (
	"errors"
	"fmt"
)

// Bounds that keep hostile input cheap. The wire format limits the rest
// (8-bit counts, 16-bit payload lengths).
const (
	MaxPayloads   = 64  // payloads in one chain (message or decrypted body)
	MaxProposals  = 255 // proposals in one SA payload: the 1-octet Proposal Num counts them (RFC 7296 3.3.1)
	MaxTransforms = 255 // transforms in one proposal
	MaxAttributes = 16  // attributes in one transform
)

// DecodeError reports malformed input. Payload is the payload in which the
// problem was found (PayloadNone for the header or the chain itself);
// Offset is the absolute byte offset, from the start of the IKE header, of
// the malformed element (the payload, or inside an SA the proposal,
// transform or attribute, inside TS the selector). An engine answers it with
// INVALID_SYNTAX where RFC 7296 says so.
type DecodeError struct {
	Payload PayloadType
	Offset  int
	Reason  string
}

func (e *DecodeError) Error() string {
	if e.Payload == PayloadNone {
		return fmt.Sprintf("ikev2: message at offset %d: %s", e.Offset, e.Reason)
	}
	return fmt.Sprintf("ikev2: %s payload at offset %d: %s", e.Payload, e.Offset, e.Reason)
}

func decodeErr(p PayloadType, off int, format string, args ...any) *DecodeError {
	return &DecodeError{Payload: p, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// UnsupportedCriticalError is returned when a payload of an unknown type has
// the critical bit set (RFC 7296 section 2.5): the whole message is
// rejected and, for a request, the engine answers UNSUPPORTED_CRITICAL_PAYLOAD
// with Type as the notification data (UnsupportedCritical(Type)).
type UnsupportedCriticalError struct {
	Type   PayloadType
	Offset int
}

func (e *UnsupportedCriticalError) Error() string {
	return fmt.Sprintf("ikev2: unsupported critical payload type %d at offset %d", uint8(e.Type), e.Offset)
}

// VersionError is returned for a major version other than 2 (section
// 2.5/3.1): an engine may answer INVALID_MAJOR_VERSION.
type VersionError struct {
	Version uint8
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("ikev2: major version %d, want 2", e.Version>>4)
}

// ErrPayloadTooLong is returned by encoders when a payload does not fit
// the 16-bit payload length.
var ErrPayloadTooLong = errors.New("ikev2: payload longer than 65535 bytes")

// ErrAuthentication is returned by Open when the ICV (or the GCM tag) does
// not verify.
var ErrAuthentication = errors.New("ikev2: integrity check failed")
