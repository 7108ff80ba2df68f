package exchange

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// Cookie defaults: ask for cookies from 10 half-open IKE SAs on, a new
// secret every 2 minutes.
const (
	DefaultCookieThreshold = 10
	DefaultCookiePeriod    = 2 * time.Minute
	cookieLen              = 4 + sha256.Size
	maxCookieLen           = 64 // section 3.10.1: COOKIE data is 1 to 64 octets
)

// CookieConfig configures a Cookies. Zero fields take the defaults; Rand
// and Now are for tests.
type CookieConfig struct {
	// Threshold: cookies are demanded while at least this many IKE SAs
	// are half-open (IKE_SA_INIT answered, IKE_AUTH not yet done); a
	// negative value demands them always.
	Threshold int
	Period    time.Duration // how long a secret is current
	Rand      io.Reader
	Now       func() time.Time
}

// Cookies is a responder's stateless cookie mechanism (section 2.6):
// Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>), here
// a 4-byte version and SHA-256. The secret changes every Period; a cookie
// made with the previous secret is still accepted, so that a cookie
// handed out just before a change works. Safe for concurrent use.
type Cookies struct {
	mu         sync.Mutex
	cfg        CookieConfig
	cur, prev  cookieSecret
	rotateNext time.Time
}

type cookieSecret struct {
	version uint32
	key     [32]byte
	ok      bool
}

// NewCookies returns a Cookies with a fresh secret.
func NewCookies(cfg CookieConfig) (*Cookies, error) {
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultCookieThreshold
	}
	if cfg.Period <= 0 {
		cfg.Period = DefaultCookiePeriod
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Cookies{cfg: cfg}
	if err := c.rotate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Required reports whether a request must carry a valid cookie now.
func (c *Cookies) Required(halfOpen int) bool {
	return c.cfg.Threshold < 0 || halfOpen >= c.cfg.Threshold
}

// rotate makes a new current secret; the caller holds mu (or owns c).
func (c *Cookies) rotate() error {
	next := cookieSecret{version: c.cur.version + 1, ok: true}
	if _, err := io.ReadFull(c.cfg.Rand, next.key[:]); err != nil {
		return fmt.Errorf("ikev2 cookies: new secret: %w", err)
	}
	c.prev, c.cur = c.cur, next
	c.rotateNext = c.cfg.Now().Add(c.cfg.Period)
	return nil
}

// tick rotates the secret when its period is over.
func (c *Cookies) tick() error {
	if c.cfg.Now().Before(c.rotateNext) {
		return nil
	}
	return c.rotate()
}

// Make returns the cookie for an IKE_SA_INIT request with nonce ni from
// address ipi with SPIi spii.
func (c *Cookies) Make(ni []byte, ipi netip.Addr, spii [8]byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.tick(); err != nil {
		return nil, err
	}
	return c.make(&c.cur, ni, ipi, spii), nil
}

func (c *Cookies) make(s *cookieSecret, ni []byte, ipi netip.Addr, spii [8]byte) []byte {
	h := sha256.New()
	h.Write(ni)
	h.Write(ipi.Unmap().AsSlice())
	h.Write(spii[:])
	h.Write(s.key[:])
	return h.Sum(binary.BigEndian.AppendUint32(make([]byte, 0, cookieLen), s.version))
}

// Valid reports whether cookie was made by Make for these values with the
// current or the previous secret.
func (c *Cookies) Valid(cookie, ni []byte, ipi netip.Addr, spii [8]byte) bool {
	if len(cookie) != cookieLen {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tick() != nil {
		return false
	}
	v := binary.BigEndian.Uint32(cookie)
	for _, s := range []*cookieSecret{&c.cur, &c.prev} {
		if s.ok && s.version == v {
			return hmac.Equal(cookie, c.make(s, ni, ipi, spii))
		}
	}
	return false
}

// Check is the responder's cookie decision for an IKE_SA_INIT request
// from ipi with SPIi spii and payloads req, while halfOpen IKE SAs are
// half-open. It returns nil when the request may be processed (no cookie
// needed, or a valid one), or the COOKIE notify to answer it with (and
// nothing else, no state kept). The cookie need not be the first payload
// here (the initiator puts it first, section 2.6). A request without a
// nonce is hashed with an empty one; the engine's own checks refuse it.
func (c *Cookies) Check(spii [8]byte, ipi netip.Addr, req []wire.Payload, halfOpen int) (*wire.Notify, error) {
	if !c.Required(halfOpen) {
		return nil, nil
	}
	var ni []byte
	for _, p := range req {
		if n, ok := p.(*wire.Nonce); ok && n != nil {
			ni = n.Data
			break
		}
	}
	if n := wire.FindNotify(req, wire.NotifyCookie); n != nil && c.Valid(n.Data, ni, ipi, spii) {
		return nil, nil
	}
	cookie, err := c.Make(ni, ipi, spii)
	if err != nil {
		return nil, err
	}
	return &wire.Notify{NotifyType: wire.NotifyCookie, Data: cookie}, nil
}
