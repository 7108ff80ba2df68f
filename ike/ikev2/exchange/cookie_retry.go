package exchange

import (
	"fmt"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// DefaultCookieRetries bounds how often an initiator resends IKE_SA_INIT
// with a new cookie.
const DefaultCookieRetries = 3

// CookieRetry is the initiator's side of section 2.6: a response that
// carries a COOKIE notify is answered by resending the IKE_SA_INIT request
// with that COOKIE as the first payload and all other payloads unchanged,
// at most Max times (0: DefaultCookieRetries) per IKE SA.
type CookieRetry struct {
	Max int
	n   int
}

// Cookie returns the cookie of an IKE_SA_INIT response, or nil if it has
// none. A COOKIE notify with no data or more than 64 bytes (section
// 3.10.1) is an error.
func Cookie(resp []wire.Payload) ([]byte, error) {
	n := wire.FindNotify(resp, wire.NotifyCookie)
	if n == nil {
		return nil, nil
	}
	if len(n.Data) == 0 || len(n.Data) > maxCookieLen {
		return nil, fmt.Errorf("ikev2: COOKIE of %d bytes, want 1 to %d", len(n.Data), maxCookieLen)
	}
	return n.Data, nil
}

// Resend returns the payloads of the request to resend after the response
// resp: the responder's COOKIE first, then req's payloads unchanged except
// an earlier COOKIE, which is dropped. It fails when resp carries no valid
// cookie or the bound is reached.
func (r *CookieRetry) Resend(req, resp []wire.Payload) ([]wire.Payload, error) {
	cookie, err := Cookie(resp)
	if err != nil {
		return nil, err
	}
	if cookie == nil {
		return nil, fmt.Errorf("ikev2: response without a COOKIE notify")
	}
	max := r.Max
	if max <= 0 {
		max = DefaultCookieRetries
	}
	if r.n >= max {
		return nil, fmt.Errorf("ikev2: responder asked for a cookie %d times, giving up", r.n+1)
	}
	r.n++
	return WithCookie(req, cookie), nil
}

// WithCookie returns ps with a COOKIE notify carrying cookie as the first
// payload and any other COOKIE notify removed; the payloads are shared,
// not copied. The engine also uses it for an INVALID_KE_PAYLOAD retry of a
// request that carried a cookie (section 2.6).
func WithCookie(ps []wire.Payload, cookie []byte) []wire.Payload {
	out := make([]wire.Payload, 0, len(ps)+1)
	out = append(out, &wire.Notify{NotifyType: wire.NotifyCookie, Data: append([]byte(nil), cookie...)})
	for _, p := range ps {
		if n, ok := p.(*wire.Notify); ok && n != nil && n.NotifyType == wire.NotifyCookie {
			continue
		}
		out = append(out, p)
	}
	return out
}
