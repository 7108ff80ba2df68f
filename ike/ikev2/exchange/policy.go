package exchange

import (
	"errors"
	"fmt"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// Encr is an encryption transform with its key length in bits.
type Encr struct {
	ID      wire.EncrID
	KeyBits uint16
}

func (e Encr) String() string { return fmt.Sprintf("%s-%d", e.ID, e.KeyBits) }

// Policy is what a responder accepts for one kind of SA. Each list is in
// the local order of preference: the first entry is the "lowest configured
// value" of the LowestValue rule.
type Policy struct {
	Protocol wire.ProtocolID // wire.ProtoIKE or wire.ProtoESP
	Encr     []Encr
	// Integ is taken with the non-AEAD ciphers; an AEAD cipher takes no
	// integrity transform or INTEG NONE (RFC 5282 section 8).
	Integ []wire.IntegID
	PRF   []wire.PRFID // IKE only
	// DH: mandatory for the IKE SA. For ESP the groups of PFS; DHNone in
	// the list accepts a child SA without PFS.
	DH  []wire.DHGroup
	ESN []wire.ESN // ESP only
}

// Rule says which acceptable proposal (and transform) a responder takes.
type Rule int

const (
	// FirstAcceptable takes the first proposal of the initiator's list
	// that the policy accepts and, in it, the first acceptable transform
	// of each type (the initiator's preference, RFC 7296 section 2.7).
	FirstAcceptable Rule = iota
	// LowestValue takes, among all acceptable proposals, the one whose
	// transforms come first in the policy's lists (compared by
	// encryption, integrity, prf, DH, ESN), whatever the initiator's
	// order; ties go to the initiator's earlier proposal. AWS: it
	// "evaluates CGW proposals starting with the lowest configured value
	// from the list, regardless of the CGW's proposal order"
	// (shared/anchors.md 1.1, AWSUG VPNTunnels.md).
	LowestValue
)

func (r Rule) String() string {
	if r == LowestValue {
		return "lowest-value"
	}
	return "first-acceptable"
}

// Check reports a policy that could never be negotiated or that names an
// algorithm the keymat or dh packages cannot run.
func (p *Policy) Check() error {
	switch p.Protocol {
	case wire.ProtoIKE:
		if len(p.PRF) == 0 || len(p.DH) == 0 {
			return errors.New("ikev2 policy: an IKE policy needs PRFs and DH groups")
		}
		if len(p.ESN) > 0 {
			return errors.New("ikev2 policy: ESN is not negotiated for the IKE SA")
		}
	case wire.ProtoESP:
		if len(p.PRF) > 0 {
			return errors.New("ikev2 policy: a PRF is not negotiated for ESP")
		}
		if len(p.ESN) == 0 || len(p.DH) == 0 {
			return errors.New("ikev2 policy: an ESP policy needs ESN values and DH groups (DHNone: no PFS)")
		}
	default:
		return fmt.Errorf("ikev2 policy: protocol %s (supported: IKE, ESP)", p.Protocol)
	}
	if len(p.Encr) == 0 {
		return errors.New("ikev2 policy: no encryption")
	}
	aead := false
	for _, e := range p.Encr {
		k, err := keymat.EncryptionByID(uint16(e.ID), int(e.KeyBits))
		if err != nil {
			return err
		}
		aead = aead || k.AEAD
		if !k.AEAD && len(p.Integ) == 0 {
			return fmt.Errorf("ikev2 policy: %s needs an integrity algorithm", e)
		}
	}
	for _, i := range p.Integ {
		if _, err := keymat.IntegrityByID(uint16(i)); err != nil || i == wire.IntegNone {
			return fmt.Errorf("ikev2 policy: integrity %s not supported", i)
		}
	}
	for _, f := range p.PRF {
		if _, err := keymat.PRFByID(uint16(f)); err != nil {
			return err
		}
	}
	for _, g := range p.DH {
		if g == wire.DHNone && p.Protocol == wire.ProtoESP {
			continue
		}
		if _, err := dh.ByID(uint16(g)); err != nil {
			return fmt.Errorf("ikev2 policy: %w", err)
		}
	}
	for _, e := range p.ESN {
		if e != wire.ESNNo && e != wire.ESNYes {
			return fmt.Errorf("ikev2 policy: ESN value %d", e)
		}
	}
	return nil
}

// rank returns the position of v in list, or -1.
func rank[T comparable](list []T, v T) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}
