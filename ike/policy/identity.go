package policy

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// IdentityType is the kind of an IKE identity (RFC 7296 section 3.5).
type IdentityType uint8

const (
	// IdentityNone is an unset identity.
	IdentityNone IdentityType = iota
	// IdentityAddr is ID_IPV4_ADDR (or ID_IPV6_ADDR): Addr.
	IdentityAddr
	// IdentityFQDN is ID_FQDN: Name, a domain name.
	IdentityFQDN
	// IdentityKeyID is ID_KEY_ID: KeyID, opaque octets.
	IdentityKeyID
)

func (t IdentityType) String() string {
	switch t {
	case IdentityAddr:
		return "address"
	case IdentityFQDN:
		return "fqdn"
	case IdentityKeyID:
		return "keyid"
	}
	return "none"
}

// Identity is an IKE identity of type address, FQDN or KEY_ID. The zero
// value is unset.
type Identity struct {
	Type  IdentityType
	Addr  netip.Addr // IdentityAddr
	Name  string     // IdentityFQDN
	KeyID []byte     // IdentityKeyID
}

// IsSet reports whether the identity has a type.
func (i Identity) IsSet() bool { return i.Type != IdentityNone }

// String is the identity in strongSwan's notation: 192.0.2.1,
// vpn.example.com, @#6b6579 (KEY_ID); "" when unset.
func (i Identity) String() string {
	switch i.Type {
	case IdentityAddr:
		return i.Addr.String()
	case IdentityFQDN:
		return i.Name
	case IdentityKeyID:
		return "@#" + hex.EncodeToString(i.KeyID)
	}
	return ""
}

// Equal reports whether both identities have the same type and value
// (an FQDN compares case-insensitively, as DNS names do).
func (i Identity) Equal(o Identity) bool {
	if i.Type != o.Type {
		return false
	}
	switch i.Type {
	case IdentityAddr:
		return i.Addr == o.Addr
	case IdentityFQDN:
		return strings.EqualFold(i.Name, o.Name)
	case IdentityKeyID:
		return string(i.KeyID) == string(o.KeyID)
	}
	return true
}

// fqdnRE is a domain name: labels of letters, digits, '-' and '_', separated
// by dots, with an optional final dot.
var fqdnRE = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?$`)

// maxKeyID bounds a KEY_ID (an ID payload is at most 65535 octets; an
// identity that large is a configuration mistake).
const maxKeyID = 1024

// Validate reports whether the identity is well formed: a valid address,
// a domain name of at most 255 characters, a KEY_ID of 1..1024 octets.
func (i Identity) Validate() error {
	switch i.Type {
	case IdentityNone:
		return nil
	case IdentityAddr:
		if !i.Addr.IsValid() {
			return errors.New("address identity without an address")
		}
	case IdentityFQDN:
		if len(i.Name) > 255 || !fqdnRE.MatchString(i.Name) {
			return fmt.Errorf("%q is not a domain name", i.Name)
		}
	case IdentityKeyID:
		if len(i.KeyID) == 0 || len(i.KeyID) > maxKeyID {
			return fmt.Errorf("KEY_ID of %d octets: use 1 to %d", len(i.KeyID), maxKeyID)
		}
	default:
		return fmt.Errorf("unknown identity type %d", i.Type)
	}
	return nil
}

// ParseIdentity reads an identity: an IP address, a domain name (with or
// without strongSwan's leading @), or a KEY_ID as keyid:HEX or
// strongSwan's @#HEX. Other strongSwan forms (e-mail addresses, DNs) are
// refused.
func ParseIdentity(s string) (Identity, error) {
	if s == "" {
		return Identity{}, errors.New("empty identity")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return Identity{}, fmt.Errorf("%q: an identity address has no zone", s)
		}
		return Identity{Type: IdentityAddr, Addr: a.Unmap()}, nil
	}
	var hx string
	switch {
	case strings.HasPrefix(s, "@#"):
		hx = s[2:]
	case len(s) > 6 && strings.EqualFold(s[:6], "keyid:"):
		hx = s[6:]
	default:
		name := strings.TrimPrefix(s, "@")
		id := Identity{Type: IdentityFQDN, Name: name}
		if err := id.Validate(); err != nil {
			return Identity{}, fmt.Errorf("%q is neither an IP address, a domain name, keyid:HEX nor @#HEX", s)
		}
		return id, nil
	}
	k, err := hex.DecodeString(hx)
	if err != nil || len(k) == 0 {
		return Identity{}, fmt.Errorf("%q: a KEY_ID is an even number of hex digits", s)
	}
	id := Identity{Type: IdentityKeyID, KeyID: k}
	return id, id.Validate()
}
