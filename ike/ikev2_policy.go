package ike

import (
	"crypto"
	"fmt"
	"slices"

	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// A tunnel's policy (ike/policy, the same for both versions) in IKEv2's
// terms: the SA payloads an initiator offers and the exchange.Policy a
// responder selects with.
//
// IKEv2 proposals carry several transforms of each type (section 3.3.6),
// so the policy's list of transform sets is offered as at most two
// proposals, one with AES-CBC and HMACs, one with AES-GCM-16 (RFC 5282:
// an AEAD cipher takes no integrity transform), each with the union of
// the sets' transforms in the order they first appear. For AWS's lists,
// which are cross products, this offers exactly the same sets in 2
// proposals instead of 192 (one per combination), a much smaller IKE_SA_INIT.

// hashInteg maps the policy's hash to the IKEv2 integrity transform.
func hashInteg(h crypto.Hash) (wire.IntegID, bool) {
	switch h {
	case crypto.SHA1:
		return wire.IntegHMACSHA196, true
	case crypto.SHA256:
		return wire.IntegHMACSHA2256128, true
	case crypto.SHA384:
		return wire.IntegHMACSHA2384192, true
	case crypto.SHA512:
		return wire.IntegHMACSHA2512256, true
	}
	return 0, false
}

// hashPRF maps the policy's hash to the IKEv2 prf.
func hashPRF(h crypto.Hash) (wire.PRFID, bool) {
	switch h {
	case crypto.SHA1:
		return wire.PRFHMACSHA1, true
	case crypto.SHA256:
		return wire.PRFHMACSHA2256, true
	case crypto.SHA384:
		return wire.PRFHMACSHA2384, true
	case crypto.SHA512:
		return wire.PRFHMACSHA2512, true
	}
	return 0, false
}

// v1IntegToV2 maps an IPsec integrity algorithm of the policy (the IKEv1
// attribute value the data path takes) to the IKEv2 transform, and back.
func v1IntegToV2(v uint16) (wire.IntegID, bool) {
	switch v {
	case isakmp.AuthHMACSHA1:
		return wire.IntegHMACSHA196, true
	case isakmp.AuthHMACSHA2256:
		return wire.IntegHMACSHA2256128, true
	case isakmp.AuthHMACSHA2384:
		return wire.IntegHMACSHA2384192, true
	case isakmp.AuthHMACSHA2512:
		return wire.IntegHMACSHA2512256, true
	}
	return 0, false
}

func v2IntegToV1(id uint16) uint16 {
	switch wire.IntegID(id) {
	case wire.IntegHMACSHA196:
		return isakmp.AuthHMACSHA1
	case wire.IntegHMACSHA2256128:
		return isakmp.AuthHMACSHA2256
	case wire.IntegHMACSHA2384192:
		return isakmp.AuthHMACSHA2384
	case wire.IntegHMACSHA2512256:
		return isakmp.AuthHMACSHA2512
	}
	return 0
}

func addOnce[T comparable](s []T, v T) []T {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// ikePolicy is what a responder accepts for the IKE SA.
func ikePolicy(ps []Phase1Proposal) (*exchange.Policy, error) {
	pol := &exchange.Policy{Protocol: wire.ProtoIKE}
	for _, p := range ps {
		encr := exchange.Encr{ID: wire.EncrAESCBC, KeyBits: uint16(p.EncKeyBits)}
		if p.GCM {
			encr.ID = wire.EncrAESGCM16
		}
		prf, ok := hashPRF(p.Hash)
		if !ok {
			return nil, fmt.Errorf("proposal %s: no IKEv2 prf for this hash", p)
		}
		pol.Encr = addOnce(pol.Encr, encr)
		pol.PRF = addOnce(pol.PRF, prf)
		if !p.GCM {
			integ, _ := hashInteg(p.Hash)
			pol.Integ = addOnce(pol.Integ, integ)
		}
		pol.DH = addOnce(pol.DH, wire.DHGroup(p.DHGroup))
	}
	if err := pol.Check(); err != nil {
		return nil, err
	}
	return pol, nil
}

// ikeOffer is the initiator's SA payload for IKE_SA_INIT; the first
// proposal's group is the one its KE payload uses.
func ikeOffer(ps []Phase1Proposal) (*wire.SA, wire.DHGroup) {
	var cbc, gcm *wire.Proposal
	var order []*wire.Proposal
	for _, p := range ps {
		slot := &cbc
		if p.GCM {
			slot = &gcm
		}
		if *slot == nil {
			*slot = &wire.Proposal{Protocol: wire.ProtoIKE}
			order = append(order, *slot)
		}
		pr := *slot
		encr := wire.Encr(wire.EncrAESCBC, uint16(p.EncKeyBits))
		if p.GCM {
			encr = wire.Encr(wire.EncrAESGCM16, uint16(p.EncKeyBits))
		}
		prf, _ := hashPRF(p.Hash)
		add := []wire.Transform{encr, wire.PRF(prf), wire.DH(wire.DHGroup(p.DHGroup))}
		if !p.GCM {
			integ, _ := hashInteg(p.Hash)
			add = append(add, wire.Integ(integ))
		}
		for _, tr := range add {
			if !hasTransform(pr.Transforms, tr) {
				pr.Transforms = append(pr.Transforms, tr)
			}
		}
	}
	sa := &wire.SA{}
	for i, pr := range order {
		pr.Number = uint8(i + 1)
		sortTransforms(pr)
		sa.Proposals = append(sa.Proposals, *pr)
	}
	return sa, wire.DHGroup(ps[0].DHGroup)
}

func hasTransform(ts []wire.Transform, t wire.Transform) bool {
	for _, x := range ts {
		if x.Type != t.Type || x.ID != t.ID {
			continue
		}
		a, _ := x.KeyLength()
		b, _ := t.KeyLength()
		if a == b {
			return true
		}
	}
	return false
}

// sortTransforms puts the transforms in type order (ENCR, PRF, INTEG, DH,
// ESN), keeping the order within each type (the preference).
func sortTransforms(p *wire.Proposal) {
	slices.SortStableFunc(p.Transforms, func(a, b wire.Transform) int { return int(a.Type) - int(b.Type) })
}

// childPolicy is what a responder accepts for child SAs (ESP).
func childPolicy(ps []Phase2Proposal) (*exchange.Policy, error) {
	pol := &exchange.Policy{Protocol: wire.ProtoESP, ESN: []wire.ESN{wire.ESNNo}}
	for _, p := range ps {
		if p.Protocol != isakmp.ProtoESP {
			return nil, fmt.Errorf("proposal %s: IKEv2 child SAs are ESP only here (AH is not implemented for IKEv2)", p)
		}
		switch p.Encryption {
		case isakmp.ESPAESCBC:
			pol.Encr = addOnce(pol.Encr, exchange.Encr{ID: wire.EncrAESCBC, KeyBits: uint16(p.EncKeyBits)})
			integ, ok := v1IntegToV2(p.Integrity)
			if !ok {
				return nil, fmt.Errorf("proposal %s: integrity %d has no IKEv2 transform", p, p.Integrity)
			}
			pol.Integ = addOnce(pol.Integ, integ)
		case isakmp.ESPAESGCM16:
			pol.Encr = addOnce(pol.Encr, exchange.Encr{ID: wire.EncrAESGCM16, KeyBits: uint16(p.EncKeyBits)})
		default:
			return nil, fmt.Errorf("proposal %s: ESP transform %d is not supported with IKEv2", p, p.Encryption)
		}
		pol.DH = addOnce(pol.DH, wire.DHGroup(p.PFSGroup))
	}
	if err := pol.Check(); err != nil {
		return nil, err
	}
	return pol, nil
}

// childOffer is the initiator's SA payload for a child SA with our SPI.
// The first child SA (IKE_AUTH) is keyed without a Diffie-Hellman
// exchange: withDH false leaves the PFS groups out (section 1.2).
func childOffer(ps []Phase2Proposal, spi uint32, withDH bool) *wire.SA {
	var cbc, gcm *wire.Proposal
	var order []*wire.Proposal
	for _, p := range ps {
		slot := &cbc
		if p.Encryption == isakmp.ESPAESGCM16 {
			slot = &gcm
		}
		if *slot == nil {
			*slot = &wire.Proposal{Protocol: wire.ProtoESP, SPI: spiBytes(spi)}
			order = append(order, *slot)
		}
		pr := *slot
		add := []wire.Transform{wire.Encr(wire.EncrID(p.Encryption), uint16(p.EncKeyBits))}
		if integ, ok := v1IntegToV2(p.Integrity); ok && p.Encryption != isakmp.ESPAESGCM16 {
			add = append(add, wire.Integ(integ))
		}
		if withDH {
			add = append(add, wire.DH(wire.DHGroup(p.PFSGroup)))
		}
		add = append(add, wire.ESNTransform(wire.ESNNo))
		for _, tr := range add {
			if !hasTransform(pr.Transforms, tr) {
				pr.Transforms = append(pr.Transforms, tr)
			}
		}
	}
	sa := &wire.SA{}
	for i, pr := range order {
		pr.Number = uint8(i + 1)
		sortTransforms(pr)
		sa.Proposals = append(sa.Proposals, *pr)
	}
	return sa
}

// v2Rule maps the policy's selection to the exchange's rule.
func v2Rule(s Selection) exchange.Rule {
	if s == SelectLowestValue {
		return exchange.LowestValue
	}
	return exchange.FirstAcceptable
}

// checkV2Policy reports a tunnel whose policy IKEv2 cannot negotiate; it
// runs only for tunnels that allow IKEv2.
func checkV2Policy(tc *TunnelConfig) error {
	if _, err := ikePolicy(tc.Phase1.Proposals); err != nil {
		return fmt.Errorf("IKEv2 phase 1: %w", err)
	}
	if _, err := childPolicy(tc.Phase2.Proposals); err != nil {
		return fmt.Errorf("IKEv2 phase 2: %w", err)
	}
	return nil
}
