package exchange

import (
	"encoding/binary"
	"fmt"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// CheckKE is the responder's check of the KE payload against the DH group
// of the chosen proposal (sections 1.2, 1.3, 3.4). A KE payload of another
// group, or none when the proposal has a group, is refused with
// INVALID_KE_PAYLOAD naming the chosen group, so that the initiator can
// retry with it; KE data of the wrong length for the group, or a KE
// payload when the chosen proposal has no DH group, is INVALID_SYNTAX.
func CheckKE(chosen wire.DHGroup, ke *wire.KE) error {
	if chosen == wire.DHNone {
		if ke != nil {
			return refuse(wire.NotifyInvalidSyntax, "KE payload of group %s but the chosen proposal has no DH group", ke.Group)
		}
		return nil
	}
	if ke == nil {
		return invalidKE(chosen, "no KE payload")
	}
	if ke.Group != chosen {
		return invalidKE(chosen, fmt.Sprintf("KE payload of group %s", ke.Group))
	}
	g, err := dh.ByID(uint16(chosen))
	if err != nil {
		return refuse(wire.NotifyNoProposalChosen, "chosen group %s: %v", chosen, err)
	}
	if len(ke.Data) != g.PublicLen() {
		return refuse(wire.NotifyInvalidSyntax, "KE data of %d bytes for %s, want %d (section 3.4)", len(ke.Data), chosen, g.PublicLen())
	}
	return nil
}

func invalidKE(want wire.DHGroup, why string) *Error {
	e := refuse(wire.NotifyInvalidKEPayload, "%s, the chosen proposal has %s", why, want)
	e.Data = binary.BigEndian.AppendUint16(nil, uint16(want))
	return e
}

// DefaultKERetries bounds the initiator's INVALID_KE_PAYLOAD retries.
const DefaultKERetries = 3

// KERetry is the initiator's reaction to INVALID_KE_PAYLOAD (sections 1.2,
// 1.3): it retries with the group the responder asks for only if that
// group is in its own proposals, never with a group it already sent, and
// at most Max times (0: DefaultKERetries). The retried request carries the
// same proposals (section 1.2: the rejection was unauthenticated) and a KE
// payload of the new group.
type KERetry struct {
	Offered []wire.DHGroup // the DH groups of our proposals (OfferedGroups)
	Max     int
	sent    []wire.DHGroup
}

// Retry returns the group to retry with after our KE payload of group sent
// was answered with n, or an error that ends the negotiation.
func (r *KERetry) Retry(sent wire.DHGroup, n *wire.Notify) (wire.DHGroup, error) {
	if n == nil {
		return 0, fmt.Errorf("ikev2: no INVALID_KE_PAYLOAD notify")
	}
	want, err := n.Group()
	if err != nil {
		return 0, err
	}
	if rank(r.sent, sent) < 0 {
		r.sent = append(r.sent, sent)
	}
	max := r.Max
	if max <= 0 {
		max = DefaultKERetries
	}
	switch {
	case rank(r.Offered, want) < 0 || want == wire.DHNone:
		return 0, fmt.Errorf("ikev2: responder asks for DH group %s, which we did not propose", want)
	case rank(r.sent, want) >= 0:
		return 0, fmt.Errorf("ikev2: responder asks for DH group %s, which we already sent", want)
	case len(r.sent) > max:
		return 0, fmt.Errorf("ikev2: responder refused our KE payload %d times, giving up", len(r.sent))
	}
	return want, nil
}

// Tries is the number of KE payloads refused so far.
func (r *KERetry) Tries() int { return len(r.sent) }

// OfferedGroups returns the DH groups of an SA payload, each once, in
// order (DHNone left out).
func OfferedGroups(sa *wire.SA) []wire.DHGroup {
	var gs []wire.DHGroup
	if sa == nil {
		return nil
	}
	for _, p := range sa.Proposals {
		for _, t := range p.Transforms {
			g := wire.DHGroup(t.ID)
			if t.Type == wire.TransformDH && g != wire.DHNone && rank(gs, g) < 0 {
				gs = append(gs, g)
			}
		}
	}
	return gs
}
