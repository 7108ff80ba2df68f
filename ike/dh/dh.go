// Package dh implements the IKE Diffie-Hellman groups used by IKEv1
// (RFC 2409) site-to-site VPNs:
//
//   - group 2: 1024-bit MODP, RFC 2409 section 6.2
//   - groups 5, 14, 15, 16, 17, 18: 1536..8192-bit MODP, RFC 3526 sections 2-7
//   - groups 19, 20, 21: 256/384/521-bit random ECP (NIST P-256/384/521),
//     RFC 5903 (KE data and shared secret encoding per RFC 5903 section 7),
//     implemented with crypto/ecdh
//   - groups 22, 23, 24: MODP with prime-order subgroup, RFC 5114
//     sections 2.1-2.3 (the generator is not 2 and peer values are checked
//     for subgroup membership)
//
// Group 1 (768-bit) is deliberately not supported.
//
// MODP arithmetic uses math/big. big.Int.Exp is not constant time; this is
// acceptable for a test harness but is documented here for clarity.
package dh

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Group is one IKE Diffie-Hellman group.
type Group interface {
	// ID is the IANA / IKEv1 group description number (RFC 2409 appendix A).
	ID() uint16
	// Name is a short lower-case name such as "modp2048" or "ecp256".
	Name() string
	// PublicLen is the length of the KE payload data: the prime length in
	// bytes for MODP groups, 2*coordinate length (x|y) for ECP groups
	// (RFC 5903 section 7).
	PublicLen() int
	// Generate creates a fresh key pair, reading randomness from rand
	// (normally crypto/rand.Reader).
	Generate(rand io.Reader) (Key, error)
	// KeyFromPrivate builds a key pair from a fixed big-endian private value
	// (the exponent for MODP, the scalar for ECP). It is deterministic and
	// meant for test vectors.
	KeyFromPrivate(priv []byte) (Key, error)
}

// Key is a Diffie-Hellman key pair of one group.
type Key interface {
	// Public returns the KE payload data, exactly PublicLen bytes (MODP values
	// are left-padded with zeros; ECP is x|y without the 0x04 prefix).
	Public() []byte
	// SharedSecret validates the peer's KE data and returns g^xy: for MODP
	// left-padded to the prime length, for ECP the x coordinate only
	// (RFC 5903 section 7), fixed length.
	SharedSecret(peer []byte) ([]byte, error)
}

// ErrInvalidPublic is wrapped by the errors SharedSecret returns for a peer
// value that fails validation.
var ErrInvalidPublic = errors.New("dh: invalid peer public value")

// ErrInvalidPrivate is wrapped by the errors KeyFromPrivate returns for an
// out-of-range private value.
var ErrInvalidPrivate = errors.New("dh: invalid private value")

var registry = map[uint16]Group{}

func register(g Group) {
	if _, dup := registry[g.ID()]; dup {
		panic(fmt.Sprintf("dh: group %d registered twice", g.ID()))
	}
	registry[g.ID()] = g
}

func init() {
	for i := range modpParams {
		register(newMODP(&modpParams[i]))
	}
	for _, g := range ecpGroups() {
		register(g)
	}
}

// ByID returns the group with IKE group number id.
func ByID(id uint16) (Group, error) {
	if g, ok := registry[id]; ok {
		return g, nil
	}
	ids := IDs()
	s := make([]string, len(ids))
	for i, v := range ids {
		s[i] = fmt.Sprint(v)
	}
	return nil, fmt.Errorf("dh: unsupported Diffie-Hellman group %d (supported groups: %s)", id, strings.Join(s, ", "))
}

// IDs returns the supported group numbers in ascending order.
func IDs() []uint16 {
	ids := make([]uint16, 0, len(registry))
	for id := range registry {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Name returns the group's name, or "unknown-<id>" for an unsupported id.
func Name(id uint16) string {
	if g, ok := registry[id]; ok {
		return g.Name()
	}
	return fmt.Sprintf("unknown-%d", id)
}

// leftPad returns b left-padded with zeros to n bytes. b must not be longer
// than n.
func leftPad(b []byte, n int) []byte {
	if len(b) == n {
		return b
	}
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	return out
}
