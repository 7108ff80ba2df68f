package exchange

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// offer is one proposal's acceptable transforms, by type.
type offer struct {
	encr, integ, prf, dh, esn []pick
	keys                      []keymat.Encryption // parallel to encr
	present                   map[wire.TransformType]bool
	integNone                 *wire.Transform // INTEG NONE as offered
	rejected                  []string
}

// sortOffer files every transform of p; it fails on a type the protocol does
// not have (section 3.3.6: such a proposal is unacceptable).
func sortOffer(p *wire.Proposal, pol *Policy, opt Options) (*offer, string) {
	o := &offer{present: map[wire.TransformType]bool{}}
	for _, t := range p.Transforms {
		if !allowedType(pol.Protocol, t.Type) {
			return nil, fmt.Sprintf("transform type %s is not used with %s (section 3.3.3)", t.Type, pol.Protocol)
		}
		if t.Type == wire.TransformDH && opt.IgnoreDH && pol.Protocol == wire.ProtoESP {
			continue
		}
		o.present[t.Type] = true
		if t.Type == wire.TransformENCR {
			r, k, why := encrRank(t, pol)
			if r < 0 {
				o.rejected = append(o.rejected, why)
				continue
			}
			o.encr, o.keys = append(o.encr, pick{t, r}), append(o.keys, k)
			continue
		}
		if t.Type == wire.TransformINTEG && t.ID == uint16(wire.IntegNone) && len(t.Attributes) == 0 {
			tt := t
			o.integNone = &tt
			continue
		}
		r, why := plainRank(t, pol)
		if r < 0 {
			o.rejected = append(o.rejected, why)
			continue
		}
		switch t.Type {
		case wire.TransformINTEG:
			o.integ = append(o.integ, pick{t, r})
		case wire.TransformPRF:
			o.prf = append(o.prf, pick{t, r})
		case wire.TransformDH:
			o.dh = append(o.dh, pick{t, r})
		case wire.TransformESN:
			o.esn = append(o.esn, pick{t, r})
		}
	}
	return o, ""
}

// evaluate returns what the policy takes of one proposal, or why nothing.
func evaluate(p *wire.Proposal, pol *Policy, opt Options) (*Choice, string) {
	if p.Protocol != pol.Protocol {
		return nil, fmt.Sprintf("protocol %s, want %s", p.Protocol, pol.Protocol)
	}
	if why := spiOK(p, pol, opt); why != "" {
		return nil, why
	}
	if len(p.Transforms) == 0 {
		return nil, "no transforms"
	}
	o, why := sortOffer(p, pol, opt)
	if o == nil {
		return nil, why
	}
	mandatory := []wire.TransformType{wire.TransformENCR, wire.TransformPRF, wire.TransformDH}
	if pol.Protocol == wire.ProtoESP {
		mandatory = []wire.TransformType{wire.TransformENCR, wire.TransformESN}
	}
	for _, t := range mandatory {
		if !o.present[t] {
			return nil, fmt.Sprintf("no %s transform (mandatory for %s, section 3.3.3)", t, pol.Protocol)
		}
	}
	c := &Choice{Number: p.Number, Protocol: p.Protocol, PeerSPI: append([]byte(nil), p.SPI...)}
	if why := o.chooseCipher(c, opt.Rule); why != "" {
		return nil, o.explain(why)
	}
	if pol.Protocol == wire.ProtoIKE {
		f, ok := best(o.prf, opt.Rule)
		if !ok {
			return nil, o.explain("no acceptable PRF")
		}
		c.PRF, _ = keymat.PRFByID(f.t.ID)
		c.key[2] = f.rank
		c.Transforms = append(c.Transforms, f.t)
	}
	c.Transforms = append(c.Transforms, c.integTransform(o)...)
	if why := o.chooseDH(c, pol, opt); why != "" {
		return nil, o.explain(why)
	}
	if pol.Protocol == wire.ProtoESP {
		e, ok := best(o.esn, opt.Rule)
		if !ok {
			return nil, o.explain("no acceptable ESN value")
		}
		c.ESN, c.key[4] = wire.ESN(e.t.ID), e.rank
		c.Transforms = append(c.Transforms, e.t)
	}
	// The reply lists the types in the order the proposal had them.
	first := map[wire.TransformType]int{}
	for i, t := range p.Transforms {
		if _, ok := first[t.Type]; !ok {
			first[t.Type] = i
		}
	}
	slices.SortStableFunc(c.Transforms, func(a, b wire.Transform) int { return first[a.Type] - first[b.Type] })
	return c, ""
}

func (o *offer) explain(why string) string {
	if len(o.rejected) == 0 {
		return why
	}
	rej := o.rejected
	if len(rej) > 8 {
		rej = append(rej[:8:8], fmt.Sprintf("and %d more", len(o.rejected)-8))
	}
	return why + " (" + strings.Join(rej, ", ") + ")"
}

// chooseCipher takes the encryption and, for a non-AEAD cipher, the
// integrity transform. An AEAD cipher is usable only in a proposal without
// integrity transforms or with INTEG NONE (RFC 5282 section 8); a
// non-AEAD one only with an acceptable integrity transform.
func (o *offer) chooseCipher(c *Choice, rule Rule) string {
	var usable []pick
	var keys []keymat.Encryption
	aeadOK := !o.present[wire.TransformINTEG] || o.integNone != nil
	for i, e := range o.encr {
		if o.keys[i].AEAD && aeadOK || !o.keys[i].AEAD && len(o.integ) > 0 {
			usable, keys = append(usable, e), append(keys, o.keys[i])
		}
	}
	e, ok := best(usable, rule)
	if !ok {
		switch {
		case len(o.encr) == 0:
			return "no acceptable encryption"
		case !aeadOK:
			return "AEAD cipher offered with integrity algorithms other than NONE, and no acceptable non-AEAD pair"
		}
		return "no acceptable integrity algorithm for the offered ciphers"
	}
	for i := range usable {
		if usable[i].rank == e.rank { // one rank, one (ID, key length)
			c.Encr = keys[i]
			break
		}
	}
	c.key[0] = e.rank
	c.Transforms = append(c.Transforms, e.t)
	if c.Encr.AEAD {
		c.Integ, _ = keymat.IntegrityByID(uint16(wire.IntegNone))
		c.key[1] = -1
		return ""
	}
	i, _ := best(o.integ, rule)
	c.Integ, _ = keymat.IntegrityByID(i.t.ID)
	c.key[1] = i.rank
	c.integ = i.t
	return ""
}

// integTransform is the INTEG transform of the reply: the chosen one, INTEG
// NONE when the proposal offered NONE with an AEAD cipher, else none.
func (c *Choice) integTransform(o *offer) []wire.Transform {
	switch {
	case !c.Encr.AEAD:
		return []wire.Transform{c.integ}
	case o.integNone != nil:
		return []wire.Transform{*o.integNone}
	}
	return nil
}

// chooseDH takes the KE payload's group when offered and accepted, else
// the rule's choice; an ESP proposal without DH transforms means no PFS.
func (o *offer) chooseDH(c *Choice, pol *Policy, opt Options) string {
	if !o.present[wire.TransformDH] {
		// only ESP gets here (DH is mandatory for IKE)
		if r := rank(pol.DH, wire.DHNone); r >= 0 || opt.IgnoreDH {
			c.DH, c.key[3] = wire.DHNone, r
			return ""
		}
		return "no DH group offered and the policy requires PFS"
	}
	var d pick
	ok := false
	for _, p := range o.dh {
		if wire.DHGroup(p.t.ID) == opt.KEGroup {
			d, ok = p, true
			break
		}
	}
	if !ok {
		if d, ok = best(o.dh, opt.Rule); !ok {
			return "no acceptable DH group"
		}
	}
	c.DH, c.key[3] = wire.DHGroup(d.t.ID), d.rank
	c.Transforms = append(c.Transforms, d.t)
	return ""
}
