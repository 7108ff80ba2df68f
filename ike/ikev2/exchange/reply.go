package exchange

import (
	"fmt"

	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// CheckReply is the initiator's check of the responder's SA payload
// against the one it sent (sections 2.7, 3.3.1): exactly one proposal,
// with the number and protocol of one of ours and an SPI of the same size;
// exactly one transform of each type that proposal had, each one of those
// we offered in it (ID and attributes); a type may be left out only where
// we offered nothing but NONE for it. It returns the negotiated transforms.
// A response is never answered: on an error the engine abandons the
// negotiation (and deletes a child SA that IKE_AUTH created).
func CheckReply(offer, reply *wire.SA) (*Choice, error) {
	if offer == nil || reply == nil || len(reply.Proposals) != 1 {
		return nil, fmt.Errorf("ikev2: the responder's SA payload must carry exactly one proposal")
	}
	r := &reply.Proposals[0]
	var o *wire.Proposal
	for i := range offer.Proposals {
		if offer.Proposals[i].Number == r.Number {
			o = &offer.Proposals[i]
			break
		}
	}
	switch {
	case o == nil:
		return nil, fmt.Errorf("ikev2: the responder accepted proposal %d, which we did not send", r.Number)
	case o.Protocol != r.Protocol || len(o.SPI) != len(r.SPI):
		return nil, fmt.Errorf("ikev2: accepted proposal %d is %s with a %d-byte SPI, we offered %s with %d", r.Number, r.Protocol, len(r.SPI), o.Protocol, len(o.SPI))
	}
	c := &Choice{Number: r.Number, Protocol: r.Protocol, PeerSPI: append([]byte(nil), r.SPI...), Transforms: r.Transforms}
	seen := map[wire.TransformType]bool{}
	for _, t := range r.Transforms {
		if seen[t.Type] {
			return nil, fmt.Errorf("ikev2: accepted proposal %d has two %s transforms", r.Number, t.Type)
		}
		seen[t.Type] = true
		if !offered(o, t) {
			return nil, fmt.Errorf("ikev2: accepted proposal %d has %s, which we did not offer in it", r.Number, t.Name())
		}
		if err := c.set(t); err != nil {
			return nil, err
		}
	}
	for _, t := range o.Transforms {
		if !seen[t.Type] && !onlyNone(o, t.Type) {
			return nil, fmt.Errorf("ikev2: accepted proposal %d has no %s transform", r.Number, t.Type)
		}
	}
	if !seen[wire.TransformENCR] {
		return nil, fmt.Errorf("ikev2: accepted proposal %d has no encryption", r.Number)
	}
	if c.Encr.AEAD != (c.Integ.ID == uint16(wire.IntegNone)) {
		return nil, fmt.Errorf("ikev2: accepted proposal %d pairs %s with integrity %s", r.Number, c.Encr.Name, c.Integ.Name)
	}
	return c, nil
}

// set records one accepted transform in c.
func (c *Choice) set(t wire.Transform) error {
	var err error
	switch t.Type {
	case wire.TransformENCR:
		bits, _ := t.KeyLength()
		c.Encr, err = keymat.EncryptionByID(t.ID, int(bits))
	case wire.TransformINTEG:
		c.Integ, err = keymat.IntegrityByID(t.ID)
	case wire.TransformPRF:
		c.PRF, err = keymat.PRFByID(t.ID)
	case wire.TransformDH:
		c.DH = wire.DHGroup(t.ID)
	case wire.TransformESN:
		c.ESN = wire.ESN(t.ID)
	}
	return err
}

func offered(p *wire.Proposal, t wire.Transform) bool {
	for _, o := range p.Transforms {
		if o.Type == t.Type && o.ID == t.ID && sameAttrs(o.Attributes, t.Attributes) {
			return true
		}
	}
	return false
}

func sameAttrs(a, b []wire.Attribute) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].TV != b[i].TV || a[i].Value != b[i].Value || string(a[i].Data) != string(b[i].Data) {
			return false
		}
	}
	return true
}

// onlyNone: every transform of type ty in p is NONE (ID 0) of INTEG or DH.
func onlyNone(p *wire.Proposal, ty wire.TransformType) bool {
	if ty != wire.TransformINTEG && ty != wire.TransformDH {
		return false
	}
	for _, t := range p.Transforms {
		if t.Type == ty && t.ID != 0 {
			return false
		}
	}
	return true
}
