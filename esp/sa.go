// Package esp implements the per-packet transforms of the IPsec data path:
// ESP (RFC 4303) with AES-CBC (RFC 3602), AES-GCM-16 (RFC 4106) and NULL
// encryption (RFC 2410) and HMAC-SHA1-96 / HMAC-SHA2 (RFC 2404, RFC 4868)
// integrity, AH for IPv4 (RFC 4302), the anti-replay window (RFC 4303
// section 3.4.3) and small IPv4 header helpers for tunnel and transport mode.
//
// Sockets, TUN devices and SA lookup by SPI are not part of this package.
//
// # Concurrency
//
// An SA is owned by one goroutine: AppendESP, OpenESP, ProtectAH and
// VerifyAH use per-SA scratch space, a reusable HMAC state and (inbound) the
// replay window without locking. Use one SA per goroutine or serialise
// calls. Counters (Stats), the outbound sequence number and
// SoftLimitReached are atomic and may be read from any goroutine.
//
// # Allocation
//
// After New, the per-packet functions allocate nothing provided dst has
// enough spare capacity (see Overhead).
package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"hash"
	"math"
	"sync/atomic"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// Direction says whether an SA protects (outbound) or verifies (inbound).
type Direction int

const (
	Outbound Direction = iota
	Inbound
)

func (d Direction) String() string {
	if d == Inbound {
		return "inbound"
	}
	return "outbound"
}

// Replay window limits (packets). AWS uses 1024.
const (
	DefaultReplayWindow = 1024
	MinReplayWindow     = 64
	MaxReplayWindow     = 2048
)

// DefaultSoftLimit is the outbound sequence number from which
// SoftLimitReached reports true: 2^32 - 2^20, leaving about a million
// packets for the IKE engine to rekey before the SA must stop sending.
const DefaultSoftLimit = math.MaxUint32 - 1<<20 + 1

// Config describes one SA.
type Config struct {
	SA        childsa.SA // SPI, protocol, algorithms and keys from quick mode
	Direction Direction
	Mode      childsa.Mode
	// ReplayWindow is the inbound anti-replay window in packets: a multiple
	// of 64 in 64..2048; 0 means DefaultReplayWindow. Ignored outbound.
	ReplayWindow int
	// SoftLimit (outbound) is the sequence number from which
	// SoftLimitReached is true; 0 means DefaultSoftLimit.
	SoftLimit uint32
	// LastSeq (outbound) is the sequence number already used; the first
	// packet carries LastSeq+1. 0 for a fresh SA. For tests and vectors.
	LastSeq uint32
	// AllowEncryptionOnly permits ESP with encryption but no integrity
	// (RFC 3602 test vectors). vpnlab never negotiates it: without
	// integrity neither the ICV nor the anti-replay service exists.
	AllowEncryptionOnly bool
	// IVFunc, if set, fills the explicit IV of each outbound ESP packet.
	// ONLY for known-answer tests: a repeated IV breaks AES-GCM completely
	// and predictable IVs weaken AES-CBC. nil selects the built-in
	// generators (CBC: AES under a random per-SA key of a random prefix and
	// the sequence number; GCM: the 64-bit sequence number).
	IVFunc func(seq uint32, iv []byte)
}

type encKind uint8

const (
	encNone encKind = iota // AH
	encNull
	encCBC
	encGCM
)

// SA is one direction of an ESP or AH security association. See the package
// documentation for concurrency rules.
type SA struct {
	spi       uint32
	proto     uint8
	dir       Direction
	mode      childsa.Mode
	enc       encKind
	blockSize int // padding alignment: 16 (CBC) or 4
	ivLen     int // 16 (CBC), 8 (GCM), 0
	icvLen    int
	ahLen     int // AH: whole AH header incl. ICV and padding

	block     cipher.Block
	aead      cipher.AEAD
	salt      [4]byte
	ivBlock   cipher.Block // CBC IV generator
	ivPrefix  [8]byte
	newMAC    func() hash.Hash // a fresh HMAC state under the SA's key (lanes); nil without integrity
	ivFunc    func(seq uint32, iv []byte)
	softLimit uint32

	seq    atomic.Uint64 // outbound: last sequence number used
	replay *replayWindow // inbound

	// The SA's own crypto state, used by AppendESP, OpenESP, ProtectAH and
	// VerifyAH (serialised by the caller); the lanes of parallel.go have
	// their own.
	cryptoState
	zero  [64]byte // zeros for AH ICV field
	lanes atomic.Pointer[[]*lane]

	stats stats
}

// cbcMode is the BlockMode of crypto/cipher's CBC with an IV setter
// (implemented by the standard library; crypto/tls relies on it).
type cbcMode interface {
	cipher.BlockMode
	SetIV([]byte)
}

// Errors of New and the outbound functions. Inbound failures are DropReason
// values (which implement error).
var (
	// ErrSeqExhausted: the outbound SA sent sequence number 2^32-1 and
	// must not cycle (RFC 4303 section 3.3.3); a new SA is needed.
	ErrSeqExhausted = errors.New("esp: outbound sequence number space exhausted (2^32-1 sent); rekey required")
	// ErrWrongDirection: an outbound function was called on an inbound SA
	// or vice versa.
	ErrWrongDirection = errors.New("esp: SA used in the wrong direction")
	// ErrWrongProtocol: an ESP function on an AH SA or vice versa.
	ErrWrongProtocol = errors.New("esp: SA used with the wrong protocol (ESP vs AH)")
)

// New builds an SA, precomputing the cipher and HMAC state.
func New(cfg Config) (*SA, error) {
	c := cfg.SA
	sa := &SA{spi: c.SPI, proto: c.Protocol, dir: cfg.Direction, mode: cfg.Mode, ivFunc: cfg.IVFunc, softLimit: cfg.SoftLimit}
	if sa.softLimit == 0 {
		sa.softLimit = DefaultSoftLimit
	}
	if cfg.Direction != Outbound && cfg.Direction != Inbound {
		return nil, fmt.Errorf("esp: invalid direction %d", cfg.Direction)
	}
	if cfg.Mode != childsa.ModeTunnel && cfg.Mode != childsa.ModeTransport {
		return nil, fmt.Errorf("esp: invalid mode %d", cfg.Mode)
	}
	if c.SPI < 256 {
		return nil, fmt.Errorf("esp: SPI %d is reserved (must be >= 256)", c.SPI)
	}
	if c.Integrity != 0 {
		alg, err := keymat.IntegrityByIKE(c.Integrity)
		if err != nil {
			return nil, err
		}
		if len(c.IntegKey) != alg.KeyLen {
			return nil, fmt.Errorf("esp: %s needs a %d-byte key, got %d", alg.Name, alg.KeyLen, len(c.IntegKey))
		}
		key := append([]byte(nil), c.IntegKey...)
		sa.newMAC = func() hash.Hash { return hmac.New(alg.Hash.New, key) }
		sa.mac = sa.newMAC()
		sa.icvLen = alg.ICVLen
	}
	switch c.Protocol {
	case isakmp.ProtoAH:
		if c.Encryption != 0 || len(c.EncKey) != 0 {
			return nil, errors.New("esp: AH SA with an encryption algorithm")
		}
		if sa.mac == nil {
			return nil, errors.New("esp: AH SA without an integrity algorithm")
		}
		sa.ahLen = 12 + (sa.icvLen+3)&^3 // IPv4: multiple of 4 bytes (RFC 4302 3.3.3.2.1)
	case isakmp.ProtoESP:
		if err := sa.initESP(cfg); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("esp: unsupported protocol %d (want %d=AH or %d=ESP)", c.Protocol, isakmp.ProtoAH, isakmp.ProtoESP)
	}
	if cfg.Direction == Inbound {
		w := cfg.ReplayWindow
		if w == 0 {
			w = DefaultReplayWindow
		}
		r, err := newReplayWindow(w)
		if err != nil {
			return nil, err
		}
		sa.replay = r
	} else {
		sa.seq.Store(uint64(cfg.LastSeq))
	}
	return sa, nil
}

func (sa *SA) initESP(cfg Config) error {
	c := cfg.SA
	switch c.Encryption {
	case isakmp.ESPNull:
		if len(c.EncKey) != 0 {
			return errors.New("esp: NULL encryption with a key")
		}
		if sa.mac == nil {
			return errors.New("esp: NULL encryption without integrity")
		}
		sa.enc, sa.blockSize = encNull, 4
	case isakmp.ESPAESCBC:
		switch len(c.EncKey) {
		case 16, 24, 32:
		default:
			return fmt.Errorf("esp: AES-CBC key must be 16, 24 or 32 bytes, got %d", len(c.EncKey))
		}
		if sa.mac == nil && !cfg.AllowEncryptionOnly {
			return errors.New("esp: AES-CBC without integrity (encryption-only ESP) is not allowed")
		}
		b, err := aes.NewCipher(c.EncKey)
		if err != nil {
			return err
		}
		enc, dec, ok := newCBCModes(b)
		if !ok {
			return errors.New("esp: crypto/cipher CBC lacks SetIV")
		}
		var ivKey [16]byte
		if _, err := rand.Read(ivKey[:]); err != nil {
			return err
		}
		if _, err := rand.Read(sa.ivPrefix[:]); err != nil {
			return err
		}
		ivb, err := aes.NewCipher(ivKey[:])
		if err != nil {
			return err
		}
		sa.enc, sa.blockSize, sa.ivLen = encCBC, aes.BlockSize, aes.BlockSize
		sa.block, sa.cbcEnc, sa.cbcDec, sa.ivBlock = b, enc, dec, ivb
	case isakmp.ESPAESGCM16:
		switch len(c.EncKey) {
		case 20, 28, 36:
		default:
			return fmt.Errorf("esp: AES-GCM KEYMAT must be a 16, 24 or 32-byte key plus a 4-byte salt, got %d bytes", len(c.EncKey))
		}
		if sa.mac != nil {
			return errors.New("esp: AES-GCM with a separate integrity algorithm")
		}
		n := len(c.EncKey) - 4
		b, err := aes.NewCipher(c.EncKey[:n])
		if err != nil {
			return err
		}
		a, err := cipher.NewGCM(b)
		if err != nil {
			return err
		}
		copy(sa.salt[:], c.EncKey[n:])
		sa.enc, sa.blockSize, sa.ivLen, sa.icvLen = encGCM, 4, 8, a.Overhead()
		sa.block, sa.aead = b, a
	default:
		return fmt.Errorf("esp: unsupported ESP transform %d (supported: %d=NULL, %d=AES-CBC, %d=AES-GCM-16)",
			c.Encryption, isakmp.ESPNull, isakmp.ESPAESCBC, isakmp.ESPAESGCM16)
	}
	return nil
}

// SPI returns the SA's SPI.
func (sa *SA) SPI() uint32 { return sa.spi }

// Protocol returns isakmp.ProtoESP or isakmp.ProtoAH.
func (sa *SA) Protocol() uint8 { return sa.proto }

// Mode returns the SA's encapsulation mode.
func (sa *SA) Mode() childsa.Mode { return sa.mode }

// Direction returns the SA's direction.
func (sa *SA) Direction() Direction { return sa.dir }

// Overhead returns the maximum number of bytes ESP adds to a payload
// (header, IV, maximum minimal padding, trailer, ICV), or the AH header
// length for AH.
func (sa *SA) Overhead() int {
	if sa.proto == isakmp.ProtoAH {
		return sa.ahLen
	}
	return 8 + sa.ivLen + sa.blockSize - 1 + 2 + sa.icvLen
}

// LastSeq returns the last outbound sequence number used (0 before the
// first packet).
func (sa *SA) LastSeq() uint32 {
	s := sa.seq.Load()
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

// SoftLimitReached reports whether the outbound sequence number reached the
// soft limit, so the IKE engine should rekey now.
func (sa *SA) SoftLimitReached() bool { return sa.seq.Load() >= uint64(sa.softLimit) }

// nextSeq allocates the next outbound sequence number.
func (sa *SA) nextSeq() (uint32, error) {
	s := sa.seq.Add(1)
	if s > math.MaxUint32 {
		sa.seq.Store(math.MaxUint32 + 1) // stay exhausted, never wrap
		return 0, ErrSeqExhausted
	}
	return uint32(s), nil
}

// cryptoState is what one goroutine needs to protect or verify packets of an
// SA: the stateful parts of the transforms and scratch space.
type cryptoState struct {
	mac     hash.Hash // nil without integrity
	cbcEnc  cbcMode
	cbcDec  cbcMode
	scratch [128]byte // HMAC output, nonces, IVs, AH header copies
}

// macSum finishes the HMAC into scratch and returns the truncated ICV.
func (sa *SA) macSum() []byte { return sa.cryptoState.macSum(sa.icvLen) }

func (cs *cryptoState) macSum(icvLen int) []byte {
	return cs.mac.Sum(cs.scratch[:0])[:icvLen]
}

// grow extends b by n bytes, returning the extended slice and the new tail.
// It allocates only if cap(b) is too small.
func grow(b []byte, n int) (whole, tail []byte) {
	if total := len(b) + n; cap(b) >= total {
		whole = b[:total]
	} else {
		whole = make([]byte, total, total+total/4)
		copy(whole, b)
	}
	return whole, whole[len(b):]
}
