package exchange

import (
	"fmt"
	"strings"

	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// Options of one selection.
type Options struct {
	Rule Rule
	// KEGroup is the group of the KE payload that came with the SA
	// payload (DHNone: no KE payload). A proposal that offers it, when the
	// policy accepts it, gets it as its DH transform whatever the rule:
	// taking another group would cost an INVALID_KE_PAYLOAD round trip
	// (sections 1.2, 1.3). Without a KE payload an ESP proposal that
	// offers NONE gets no PFS.
	KEGroup wire.DHGroup
	// IKERekey: the SA payload of a CREATE_CHILD_SA that rekeys the IKE
	// SA, whose proposals carry the initiator's new 8-byte SPI (section
	// 3.3.1); in IKE_SA_INIT the SPI is empty.
	IKERekey bool
	// IgnoreDH: the first child SA, negotiated in IKE_AUTH, is keyed
	// without a Diffie-Hellman exchange, so DH transforms in its
	// proposals are dropped before selection and not in the reply
	// (section 1.2).
	IgnoreDH bool
}

// Choice is the accepted proposal.
type Choice struct {
	Number   uint8
	Protocol wire.ProtocolID
	PeerSPI  []byte // the initiator's SPI of the proposal (empty in IKE_SA_INIT)
	Encr     keymat.Encryption
	Integ    keymat.Integrity // ID 0 ("none") with an AEAD cipher
	PRF      keymat.PRF       // IKE only
	DH       wire.DHGroup     // DHNone: no (new) Diffie-Hellman exchange
	ESN      wire.ESN         // ESP only
	// Transforms are the chosen transforms as offered, one per type the
	// proposal had, the types in the proposal's order.
	Transforms []wire.Transform
	key        [5]int         // policy ranks for LowestValue
	integ      wire.Transform // the chosen non-NONE integrity transform
}

// Suite is the IKE SA's transform set for keymat.DeriveIKE.
func (c *Choice) Suite() keymat.Suite {
	return keymat.Suite{PRF: c.PRF, Encr: c.Encr, Integ: c.Integ}
}

// String is e.g. "ENCR_AES_CBC-256/AUTH_HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048".
func (c *Choice) String() string {
	names := make([]string, len(c.Transforms))
	for i, t := range c.Transforms {
		names[i] = t.Name()
	}
	return strings.Join(names, "/")
}

// Reply returns the responder's SA payload: the accepted proposal with its
// number, exactly one transform of each type the proposal had (section
// 2.7), and spi, the responder's own SPI (empty in IKE_SA_INIT, 8 bytes
// for an IKE SA rekey, 4 for ESP).
func (c *Choice) Reply(spi []byte) *wire.SA {
	ts := make([]wire.Transform, len(c.Transforms))
	for i, t := range c.Transforms {
		t.Attributes = append([]wire.Attribute(nil), t.Attributes...)
		ts[i] = t
	}
	return &wire.SA{Proposals: []wire.Proposal{{
		Number: c.Number, Protocol: c.Protocol, SPI: append([]byte(nil), spi...), Transforms: ts,
	}}}
}

// Select is the responder's choice of one proposal of the initiator's SA
// payload under the policy (sections 2.7, 3.3). Proposals whose numbers do
// not start at 1 and increase by one, or an SA payload without proposals,
// are a malformed message: INVALID_SYNTAX. A proposal that is unacceptable
// (another protocol, a wrong SPI size, a transform type that does not
// belong to the protocol, a missing mandatory type, no acceptable
// transform of a type) is skipped with its reason; when none is left the
// *Error says NO_PROPOSAL_CHOSEN and lists the reasons.
func Select(sa *wire.SA, pol *Policy, opt Options) (*Choice, error) {
	if err := pol.Check(); err != nil {
		return nil, err
	}
	if sa == nil || len(sa.Proposals) == 0 {
		return nil, refuse(wire.NotifyInvalidSyntax, "SA payload without proposals")
	}
	if len(sa.Proposals) > wire.MaxProposals {
		return nil, refuse(wire.NotifyInvalidSyntax, "%d proposals, at most %d", len(sa.Proposals), wire.MaxProposals)
	}
	for i, p := range sa.Proposals {
		if int(p.Number) != i+1 {
			return nil, refuse(wire.NotifyInvalidSyntax, "proposal %d has number %d (section 3.3.1: 1, 2, ... in order)", i+1, p.Number)
		}
	}
	var chosen *Choice
	var reasons []string
	for i := range sa.Proposals {
		c, why := evaluate(&sa.Proposals[i], pol, opt)
		if c == nil {
			reasons = append(reasons, fmt.Sprintf("proposal %d: %s", i+1, why))
			continue
		}
		if chosen == nil || opt.Rule == LowestValue && less(c.key, chosen.key) {
			chosen = c
		}
		if opt.Rule == FirstAcceptable {
			break
		}
	}
	if chosen == nil {
		e := refuse(wire.NotifyNoProposalChosen, "none of %d proposals acceptable", len(sa.Proposals))
		e.Details = reasons
		return nil, e
	}
	return chosen, nil
}

func less(a, b [5]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// spiOK checks the proposal's SPI size (section 3.3.1) and value.
func spiOK(p *wire.Proposal, pol *Policy, opt Options) string {
	want := 0
	switch {
	case pol.Protocol == wire.ProtoESP:
		want = 4
	case opt.IKERekey:
		want = 8
	}
	if len(p.SPI) != want {
		return fmt.Sprintf("SPI of %d bytes, want %d", len(p.SPI), want)
	}
	if want == 4 && p.SPI[0] == 0 && p.SPI[1] == 0 && p.SPI[2] == 0 {
		return fmt.Sprintf("reserved ESP SPI %x (RFC 4303: 0-255)", p.SPI)
	}
	if want == 8 && allZero(p.SPI) {
		return "IKE SPI of zeros"
	}
	return ""
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
