package exchange

import (
	"fmt"
	"strings"

	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// A pick is one acceptable transform of an offered proposal: the
// transform as offered and its rank in the policy (0 = lowest value).
type pick struct {
	t    wire.Transform
	rank int
}

// allowedTypes are the transform types of section 3.3.3's table per
// protocol; any other type makes the proposal unacceptable (section 3.3.6).
func allowedType(proto wire.ProtocolID, t wire.TransformType) bool {
	switch t {
	case wire.TransformENCR, wire.TransformINTEG, wire.TransformDH:
		return true
	case wire.TransformPRF:
		return proto == wire.ProtoIKE
	case wire.TransformESN:
		return proto == wire.ProtoESP
	}
	return false
}

// needsKeyLength: the AES ciphers have a variable key length and so need
// the Key Length attribute (RFC 7296 section 3.3.5; RFC 3602, RFC 5282
// section 8).
func needsKeyLength(id wire.EncrID) bool {
	switch id {
	case wire.EncrAESCBC, wire.EncrAESGCM8, wire.EncrAESGCM12, wire.EncrAESGCM16:
		return true
	}
	return false
}

// encrRank returns the rank of an offered encryption transform in the
// policy, or -1 with the reason. A transform with an attribute we do not
// understand (anything but one TV Key Length) is unacceptable (section
// 3.3.6), so is an AES one without the key length.
func encrRank(t wire.Transform, pol *Policy) (int, keymat.Encryption, string) {
	id := wire.EncrID(t.ID)
	var bits uint16
	for _, a := range t.Attributes {
		if a.Type != wire.AttrKeyLength || !a.TV || bits != 0 {
			return -1, keymat.Encryption{}, fmt.Sprintf("%s with an attribute of type %d we do not understand", t.Name(), a.Type)
		}
		bits = a.Value
	}
	if needsKeyLength(id) && bits == 0 {
		return -1, keymat.Encryption{}, fmt.Sprintf("%s without a key length", id)
	}
	r := rank(pol.Encr, Encr{ID: id, KeyBits: bits})
	if r < 0 {
		return -1, keymat.Encryption{}, t.Name() + " not accepted"
	}
	k, err := keymat.EncryptionByID(t.ID, int(bits))
	if err != nil {
		return -1, k, t.Name() + " not supported"
	}
	return r, k, ""
}

// plainRank returns the rank of a PRF, INTEG, DH or ESN transform, or -1.
// These take no attributes (section 3.3.5: the key length is the only
// attribute RFC 7296 defines, and only for variable-length ciphers).
func plainRank(t wire.Transform, pol *Policy) (int, string) {
	if len(t.Attributes) > 0 {
		return -1, fmt.Sprintf("%s with %d attributes", t.Name(), len(t.Attributes))
	}
	r := -1
	switch t.Type {
	case wire.TransformPRF:
		r = rank(pol.PRF, wire.PRFID(t.ID))
	case wire.TransformINTEG:
		r = rank(pol.Integ, wire.IntegID(t.ID))
	case wire.TransformDH:
		r = rank(pol.DH, wire.DHGroup(t.ID))
	case wire.TransformESN:
		r = rank(pol.ESN, wire.ESN(t.ID))
	}
	if r < 0 {
		return -1, t.Name() + " not accepted"
	}
	return r, ""
}

// best returns the pick the rule takes among the acceptable ones (in the
// offered order): the first, or the lowest rank (earliest on a tie).
func best(ps []pick, rule Rule) (pick, bool) {
	if len(ps) == 0 {
		return pick{}, false
	}
	b := ps[0]
	if rule == LowestValue {
		for _, p := range ps[1:] {
			if p.rank < b.rank {
				b = p
			}
		}
	}
	return b, true
}

// namesOf lists offered transforms for a reason, at most 8.
func namesOf(ts []wire.Transform) string {
	var names []string
	for i, t := range ts {
		if i == 8 {
			names = append(names, fmt.Sprintf("and %d more", len(ts)-8))
			break
		}
		names = append(names, t.Name())
	}
	return strings.Join(names, ", ")
}
