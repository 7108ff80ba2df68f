package exchange

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestCookies: the responder's cookie is bound to Ni, IPi and SPIi,
// survives one secret change and not two, and is demanded from the
// threshold on.
func TestCookies(t *testing.T) {
	clk := &fakeClock{time.Unix(1_700_000_000, 0)}
	c, err := NewCookies(CookieConfig{Threshold: 3, Period: time.Minute, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	ni, ip, spi := bytes.Repeat([]byte{7}, 32), netip.MustParseAddr("192.0.2.1"), [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	ck, err := c.Make(ni, ip, spi)
	if err != nil || len(ck) != 36 || len(ck) > maxCookieLen {
		t.Fatalf("cookie %x %v", ck, err)
	}
	if !c.Valid(ck, ni, ip, spi) {
		t.Fatal("own cookie invalid")
	}
	if !c.Valid(ck, ni, netip.MustParseAddr("::ffff:192.0.2.1"), spi) {
		t.Error("the IPv4-mapped form of IPi gives another cookie")
	}
	flip := func(b []byte, i int) []byte { b = append([]byte(nil), b...); b[i] ^= 1; return b }
	for name, ok := range map[string]bool{
		"other Ni":     c.Valid(ck, flip(ni, 31), ip, spi),
		"other IPi":    c.Valid(ck, ni, netip.MustParseAddr("192.0.2.2"), spi),
		"other SPIi":   c.Valid(ck, ni, ip, [8]byte{1}),
		"hash flipped": c.Valid(flip(ck, 20), ni, ip, spi),
		"version":      c.Valid(flip(ck, 3), ni, ip, spi),
		"truncated":    c.Valid(ck[:35], ni, ip, spi),
		"empty":        c.Valid(nil, ni, ip, spi),
		"huge":         c.Valid(make([]byte, 4096), ni, ip, spi),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
	clk.t = clk.t.Add(time.Minute) // one rotation: still valid
	if !c.Valid(ck, ni, ip, spi) {
		t.Error("cookie of the previous secret refused")
	}
	ck2, _ := c.Make(ni, ip, spi)
	if bytes.Equal(ck, ck2) {
		t.Error("a new secret gives the same cookie")
	}
	clk.t = clk.t.Add(time.Minute) // two rotations: gone
	if c.Valid(ck, ni, ip, spi) {
		t.Error("cookie two secrets old accepted")
	}
	if !c.Valid(ck2, ni, ip, spi) {
		t.Error("cookie of the previous secret refused after the second rotation")
	}
	for half, want := range map[int]bool{0: false, 2: false, 3: true, 100: true} {
		if c.Required(half) != want {
			t.Errorf("Required(%d) = %v", half, !want)
		}
	}
	always, _ := NewCookies(CookieConfig{Threshold: -1})
	if !always.Required(0) {
		t.Error("Threshold -1 does not demand cookies")
	}
	if _, err := NewCookies(CookieConfig{Rand: bytes.NewReader(nil)}); err == nil {
		t.Error("a failing random source gives a secret")
	}
}

// TestCookieExchange: responder and initiator sides together: below the
// threshold nothing is asked; above it the request without a cookie is
// answered with one, the resend with the cookie first is accepted, and a
// forged or stale one is answered with a fresh cookie.
func TestCookieExchange(t *testing.T) {
	clk := &fakeClock{time.Unix(1_700_000_000, 0)}
	c, _ := NewCookies(CookieConfig{Threshold: 5, Period: time.Minute, Now: clk.now})
	ip, spi := netip.MustParseAddr("198.51.100.7"), [8]byte{9, 9, 9}
	req := []wire.Payload{&wire.SA{Proposals: []wire.Proposal{ike(cbc128, sha1, prf1, dh14)}}, &wire.KE{Group: 14, Data: make([]byte, 256)},
		&wire.Nonce{Data: bytes.Repeat([]byte{3}, 32)}, &wire.Notify{NotifyType: wire.NotifyNATDetectionSourceIP, Data: make([]byte, 20)}}
	if n, err := c.Check(spi, ip, req, 4); n != nil || err != nil {
		t.Fatalf("below the threshold: %v %v", n, err)
	}
	demand, err := c.Check(spi, ip, req, 5)
	if err != nil || demand == nil || demand.NotifyType != wire.NotifyCookie {
		t.Fatalf("at the threshold: %v %v", demand, err)
	}
	var r CookieRetry
	resend, err := r.Resend(req, []wire.Payload{demand})
	if err != nil {
		t.Fatal(err)
	}
	if len(resend) != len(req)+1 || resend[0].(*wire.Notify).NotifyType != wire.NotifyCookie {
		t.Fatalf("resend %v", resend)
	}
	for i := range req {
		if resend[i+1] != req[i] {
			t.Errorf("payload %d changed in the resend", i)
		}
	}
	if n, _ := c.Check(spi, ip, resend, 50); n != nil {
		t.Error("valid cookie refused")
	}
	if n, _ := c.Check([8]byte{1}, ip, resend, 50); n == nil {
		t.Error("cookie accepted for another SPIi")
	}
	forged := WithCookie(req, bytes.Repeat([]byte{1}, 36))
	if n, _ := c.Check(spi, ip, forged, 50); n == nil || bytes.Equal(n.Data, forged[0].(*wire.Notify).Data) {
		t.Error("forged cookie not answered with a fresh one")
	}
	// A second cookie demand replaces the first, never two COOKIEs.
	if _, err := r.Resend(resend, []wire.Payload{&wire.Notify{NotifyType: wire.NotifyInvalidKEPayload, Data: []byte{0, 14}}}); err == nil {
		t.Error("a response without COOKIE gave a resend")
	}
	again, err := r.Resend(resend, []wire.Payload{&wire.Notify{NotifyType: wire.NotifyCookie, Data: []byte{42}}})
	if err != nil || len(again) != len(resend) || !bytes.Equal(again[0].(*wire.Notify).Data, []byte{42}) {
		t.Fatalf("second resend %v %v", again, err)
	}
	if n := wire.FindNotify(again[1:], wire.NotifyCookie); n != nil {
		t.Error("old COOKIE kept")
	}
}

// TestCookieRetryBounds: bad COOKIE data and the resend bound.
func TestCookieRetryBounds(t *testing.T) {
	req := []wire.Payload{&wire.Nonce{Data: make([]byte, 16)}}
	cookie := func(n int) []wire.Payload {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyCookie, Data: make([]byte, n)}}
	}
	for _, n := range []int{0, 65, 4000} {
		if _, err := (&CookieRetry{}).Resend(req, cookie(n)); err == nil {
			t.Errorf("COOKIE of %d bytes accepted", n)
		}
	}
	r := &CookieRetry{Max: 2}
	for i := 0; i < 2; i++ {
		if _, err := r.Resend(req, cookie(64)); err != nil {
			t.Fatalf("resend %d: %v", i+1, err)
		}
	}
	if _, err := r.Resend(req, cookie(1)); err == nil || !strings.Contains(err.Error(), "giving up") {
		t.Errorf("third resend: %v", err)
	}
	var def CookieRetry
	for i := 0; i < DefaultCookieRetries; i++ {
		_, _ = def.Resend(req, cookie(8))
	}
	if _, err := def.Resend(req, cookie(8)); err == nil {
		t.Error("default bound not applied")
	}
	if c, err := Cookie(nil); c != nil || err != nil {
		t.Errorf("no COOKIE: %v %v", c, err)
	}
}
