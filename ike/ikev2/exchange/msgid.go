package exchange

import (
	"crypto/sha256"
	"errors"
	"fmt"
)

// Message IDs (sections 2.1-2.3) with a window of 1, the size every IKE SA
// starts with and the only one we announce (we send no SET_WINDOW_SIZE):
// one request of ours may be outstanding, and of the peer's we accept only
// the next one, or the last one again (a retransmission, answered from the
// cache). Each side counts its own requests from 0 (IKE_SA_INIT); IDs never
// wrap (section 2.2: the SA must be rekeyed or closed first). The engine
// calls these after a message passed its integrity check, never before
// (section 2.21: an unauthenticated message changes no state); for
// IKE_SA_INIT there is no check to pass.

// ErrWindowFull is returned by Requests.Next while a request is
// outstanding; ErrIDsExhausted when the 32-bit space is used up.
var (
	ErrWindowFull   = errors.New("ikev2: a request is outstanding (window size 1)")
	ErrIDsExhausted = errors.New("ikev2: message IDs exhausted, rekey or close the IKE SA")
)

// Requests numbers the requests we send.
type Requests struct {
	next        uint64
	outstanding bool
}

// Next returns the ID for a new request and marks it outstanding.
func (r *Requests) Next() (uint32, error) {
	switch {
	case r.outstanding:
		return 0, ErrWindowFull
	case r.next > 0xffffffff:
		return 0, ErrIDsExhausted
	}
	r.outstanding = true
	r.next++
	return uint32(r.next - 1), nil
}

// Outstanding returns the ID of the request awaiting its response.
func (r *Requests) Outstanding() (uint32, bool) {
	return uint32(r.next - 1), r.outstanding
}

// Response reports whether a response with id answers the outstanding
// request; if so the window moves on. Anything else (a late duplicate
// response, an ID never sent) is to be dropped.
func (r *Requests) Response(id uint32) bool {
	if !r.outstanding || uint64(id) != r.next-1 {
		return false
	}
	r.outstanding = false
	return true
}

// RestartInit rewinds to message ID 0 after an IKE_SA_INIT response asked
// for a cookie or another KE group: the new IKE_SA_INIT request is again
// message ID 0 (sections 1.2, 2.6). It fails once any later exchange used
// an ID.
func (r *Requests) RestartInit() error {
	if r.next > 1 || r.outstanding {
		return fmt.Errorf("ikev2: IKE_SA_INIT restart after message ID %d", r.next-1)
	}
	r.next = 0
	return nil
}

// Verdict is what the responder does with a request.
type Verdict int

const (
	Process    Verdict = iota // the next request: process it, then call Answered
	Retransmit                // the last request again: send the cached response
	Drop                      // outside the window, or busy: drop it (count it)
)

func (v Verdict) String() string {
	return [...]string{"process", "retransmit", "drop"}[v]
}

// Responses tracks the peer's requests and caches our last response.
type Responses struct {
	expected uint64
	busy     bool
	last     *answered
}

type answered struct {
	id   uint32
	sum  [sha256.Size]byte
	resp [][]byte // the datagrams (several with RFC 7383 fragments)
}

// Receive classifies a request with message ID id whose bytes are req (the
// whole datagram as received; for a fragmented request the engine passes
// the same fragment each time, e.g. fragment 1). It returns the cached
// datagrams for a retransmission and a reason for a drop.
func (r *Responses) Receive(id uint32, req []byte) (Verdict, [][]byte, string) {
	switch {
	case uint64(id) == r.expected && r.busy:
		return Drop, nil, fmt.Sprintf("request %d is being processed", id)
	case uint64(id) == r.expected:
		r.busy = true
		return Process, nil, ""
	case r.last != nil && id == r.last.id:
		if sha256.Sum256(req) != r.last.sum {
			return Drop, nil, fmt.Sprintf("request %d differs from the one answered", id)
		}
		return Retransmit, r.last.resp, ""
	case r.expected > 0xffffffff:
		return Drop, nil, "message IDs exhausted"
	}
	return Drop, nil, fmt.Sprintf("message ID %d outside the window (expecting %d)", id, r.expected)
}

// Answered records our response to the request being processed (id, req
// as given to Receive) and moves the window on. resp is kept, not copied.
func (r *Responses) Answered(id uint32, req []byte, resp [][]byte) error {
	if !r.busy || uint64(id) != r.expected {
		return fmt.Errorf("ikev2: answered request %d, but %d is not being processed", id, id)
	}
	r.last = &answered{id: id, sum: sha256.Sum256(req), resp: resp}
	r.busy = false
	r.expected++
	return nil
}

// Abandon gives up processing the current request without an answer (it
// turned out to be unacceptable before any response was made); the same
// ID is expected again.
func (r *Responses) Abandon() { r.busy = false }

// Expected is the message ID of the next request.
func (r *Responses) Expected() uint32 { return uint32(r.expected) }
