package ike

import (
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// errNoProposal is returned when nothing the peer offered is acceptable.
var errNoProposal = errors.New("no proposal chosen")

// checkPhase1 says why the engine cannot negotiate a phase 1 proposal.
func checkPhase1(p Phase1Proposal) error {
	switch p.EncKeyBits {
	case 128, 192, 256:
	default:
		return fmt.Errorf("AES key size %d is not 128, 192 or 256", p.EncKeyBits)
	}
	if _, err := hashRank(p.Hash); err != nil {
		return err
	}
	if _, err := dh.ByID(p.DHGroup); err != nil {
		return err
	}
	return nil
}

// checkPhase2 says why the engine cannot negotiate a phase 2 proposal.
func checkPhase2(p Phase2Proposal) error {
	switch p.Protocol {
	case isakmp.ProtoESP:
		switch p.Encryption {
		case isakmp.ESPAESCBC:
			if p.Integrity == 0 {
				return errors.New("ESP AES-CBC needs an integrity algorithm")
			}
		case isakmp.ESPAESGCM16:
			if p.Integrity != 0 {
				return errors.New("ESP AES-GCM carries its own integrity; integrity must be empty")
			}
		case isakmp.ESPNull:
			if p.Integrity == 0 {
				return errors.New("ESP NULL needs an integrity algorithm")
			}
		default:
			return fmt.Errorf("ESP transform %d is not supported (AES-CBC 12, AES-GCM-16 20, NULL 11)", p.Encryption)
		}
		if p.Encryption != isakmp.ESPNull && p.EncKeyBits != 128 && p.EncKeyBits != 192 && p.EncKeyBits != 256 {
			return fmt.Errorf("AES key size %d is not 128, 192 or 256", p.EncKeyBits)
		}
	case isakmp.ProtoAH:
		if p.Encryption != 0 {
			return errors.New("AH has no encryption")
		}
		if _, err := ahTransformID(p.Integrity); err != nil {
			return err
		}
	default:
		return fmt.Errorf("protocol %d is neither ESP (3) nor AH (2)", p.Protocol)
	}
	if p.Integrity != 0 {
		if _, err := keymat.IntegrityByIKE(p.Integrity); err != nil {
			return err
		}
	}
	if p.PFSGroup != 0 {
		if _, err := dh.ByID(p.PFSGroup); err != nil {
			return err
		}
	}
	return nil
}

func ahTransformID(integ uint16) (uint8, error) {
	switch integ {
	case isakmp.AuthHMACSHA1:
		return isakmp.AHSHA, nil
	case isakmp.AuthHMACSHA2256:
		return isakmp.AHSHA2_256, nil
	case isakmp.AuthHMACSHA2384:
		return isakmp.AHSHA2_384, nil
	case isakmp.AuthHMACSHA2512:
		return isakmp.AHSHA2_512, nil
	}
	return 0, fmt.Errorf("AH integrity %d is not supported (SHA1 2, SHA2-256 5, SHA2-384 6, SHA2-512 7)", integ)
}

func hashRank(h crypto.Hash) (int, error) {
	switch h {
	case crypto.SHA1:
		return 0, nil
	case crypto.SHA256:
		return 1, nil
	case crypto.SHA384:
		return 2, nil
	case crypto.SHA512:
		return 3, nil
	}
	return 0, fmt.Errorf("hash %v is not SHA1, SHA2-256, SHA2-384 or SHA2-512", h)
}

// ---- phase 1 ----

// phase1SA builds the initiator's SA payload: one ISAKMP proposal whose
// transforms are our proposals in order (RFC 2409 section 5: all offered
// transforms in one proposal). In aggressive mode every transform must use the
// DH group of the KE payload, so only those are offered.
func phase1SA(ps []Phase1Proposal, lifetime time.Duration, onlyGroup uint16) *isakmp.SA {
	prop := isakmp.Proposal{Number: 1, ProtocolID: isakmp.ProtoISAKMP}
	for _, p := range ps {
		if p.GCM || (onlyGroup != 0 && p.DHGroup != onlyGroup) {
			continue // AES-GCM: IKEv2's only (v1Proposals)
		}
		prop.Transforms = append(prop.Transforms, isakmp.Transform{
			Number: uint8(len(prop.Transforms) + 1),
			ID:     isakmp.TransformKeyIKE,
			Attributes: []isakmp.Attribute{
				isakmp.AttrBasic(isakmp.AttrEncryptionAlgorithm, isakmp.EncAESCBC),
				isakmp.AttrBasic(isakmp.AttrKeyLength, uint16(p.EncKeyBits)),
				isakmp.AttrBasic(isakmp.AttrHashAlgorithm, keymat.IKEHashValue(p.Hash)),
				isakmp.AttrBasic(isakmp.AttrAuthenticationMethod, isakmp.AuthPSK),
				isakmp.AttrBasic(isakmp.AttrGroupDescription, p.DHGroup),
				isakmp.AttrBasic(isakmp.AttrLifeType, isakmp.LifeSeconds),
				isakmp.AttrUint(isakmp.AttrLifeDuration, uint64(lifetime/time.Second)),
			},
		})
	}
	return &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: []isakmp.Proposal{prop}}
}

// v1Proposals are the phase 1 proposals IKEv1 can negotiate. A tunnel that
// also allows IKEv2 may list AES-GCM ones (RFC 5282 defines AES-GCM for the
// IKEv2 SA; AWS offers it in phase 1 with IKEv2 only): IKEv1 skips them.
func v1Proposals(ps []Phase1Proposal) []Phase1Proposal {
	var out []Phase1Proposal
	for _, p := range ps {
		if !p.GCM {
			out = append(out, p)
		}
	}
	return out
}

// parsePhase1Transform reads one ISAKMP transform. Unsupported values give an
// error that says which.
func parsePhase1Transform(tr isakmp.Transform) (Phase1Proposal, time.Duration, error) {
	var p Phase1Proposal
	var life time.Duration
	lifeType := uint16(0)
	auth := uint16(0)
	enc := uint16(0)
	if tr.ID != isakmp.TransformKeyIKE {
		return p, 0, fmt.Errorf("transform ID %d is not KEY_IKE", tr.ID)
	}
	for _, a := range tr.Attributes {
		v, err := a.Uint()
		if err != nil {
			return p, 0, err
		}
		switch a.Type {
		case isakmp.AttrEncryptionAlgorithm:
			enc = uint16(v)
		case isakmp.AttrKeyLength:
			p.EncKeyBits = int(v)
		case isakmp.AttrHashAlgorithm:
			h, err := keymat.HashFromIKE(uint16(v))
			if err != nil {
				return p, 0, err
			}
			p.Hash = h
		case isakmp.AttrAuthenticationMethod:
			auth = uint16(v)
		case isakmp.AttrGroupDescription:
			p.DHGroup = uint16(v)
		case isakmp.AttrLifeType:
			lifeType = uint16(v)
		case isakmp.AttrLifeDuration:
			if lifeType == isakmp.LifeSeconds {
				life = secondsDuration(v)
			}
		default:
			return p, 0, fmt.Errorf("attribute %d not supported", a.Type)
		}
	}
	if enc != isakmp.EncAESCBC {
		return p, 0, fmt.Errorf("encryption algorithm %d is not AES-CBC (7)", enc)
	}
	if auth != isakmp.AuthPSK {
		return p, 0, fmt.Errorf("authentication method %d is not pre-shared key (1)", auth)
	}
	if err := checkPhase1(p); err != nil {
		return p, 0, err
	}
	return p, life, nil
}

// choosePhase1 picks one of the initiator's transforms according to our policy.
// It returns the proposal, the peer's lifetime and the SA payload to answer with.
func choosePhase1(pol *Phase1Policy, sa *isakmp.SA) (Phase1Proposal, time.Duration, *isakmp.SA, []string, error) {
	var reasons []string
	type cand struct {
		p    Phase1Proposal
		life time.Duration
		prop isakmp.Proposal
		tr   isakmp.Transform
	}
	var best *cand
	for _, prop := range sa.Proposals {
		if prop.ProtocolID != isakmp.ProtoISAKMP {
			reasons = append(reasons, fmt.Sprintf("proposal %d: protocol %d is not ISAKMP", prop.Number, prop.ProtocolID))
			continue
		}
		for _, tr := range prop.Transforms {
			p, life, err := parsePhase1Transform(tr)
			if err != nil {
				reasons = append(reasons, fmt.Sprintf("transform %d: %v", tr.Number, err))
				continue
			}
			if !containsP1(pol.Proposals, p) {
				reasons = append(reasons, fmt.Sprintf("transform %d: %s not allowed", tr.Number, p))
				continue
			}
			c := &cand{p, life, prop, tr}
			if best == nil {
				best = c
				if pol.Selection == SelectInitiatorOrder {
					break
				}
				continue
			}
			if pol.Selection == SelectLowestValue && lessP1(c.p, best.p) {
				best = c
			}
		}
		if best != nil && pol.Selection == SelectInitiatorOrder {
			break
		}
	}
	if best == nil {
		return Phase1Proposal{}, 0, nil, reasons, errNoProposal
	}
	reply := &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: sa.Situation, Proposals: []isakmp.Proposal{{
		Number: best.prop.Number, ProtocolID: isakmp.ProtoISAKMP, SPI: best.prop.SPI,
		Transforms: []isakmp.Transform{best.tr},
	}}}
	return best.p, best.life, reply, reasons, nil
}

func containsP1(ps []Phase1Proposal, p Phase1Proposal) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// lessP1 orders by AWS's "lowest configured value": encryption, integrity, DH.
func lessP1(a, b Phase1Proposal) bool {
	if a.EncKeyBits != b.EncKeyBits {
		return a.EncKeyBits < b.EncKeyBits
	}
	ra, _ := hashRank(a.Hash)
	rb, _ := hashRank(b.Hash)
	if ra != rb {
		return ra < rb
	}
	return a.DHGroup < b.DHGroup
}

// ---- phase 2 ----

// encapMode returns the encapsulation-mode attribute value.
func encapMode(mode Mode, udp bool, nat nattVersion) uint16 {
	switch {
	case !udp && mode == ModeTunnel:
		return isakmp.EncapTunnel
	case !udp:
		return isakmp.EncapTransport
	case nat == nattDraft && mode == ModeTunnel:
		return isakmp.EncapUDPTunnelDraft
	case nat == nattDraft:
		return isakmp.EncapUDPTransportDraft
	case mode == ModeTunnel:
		return isakmp.EncapUDPTunnel
	}
	return isakmp.EncapUDPTransport
}

// decodeEncap maps an encapsulation-mode value to mode and UDP encapsulation.
func decodeEncap(v uint16) (Mode, bool, error) {
	switch v {
	case isakmp.EncapTunnel:
		return ModeTunnel, false, nil
	case isakmp.EncapTransport:
		return ModeTransport, false, nil
	case isakmp.EncapUDPTunnel, isakmp.EncapUDPTunnelDraft:
		return ModeTunnel, true, nil
	case isakmp.EncapUDPTransport, isakmp.EncapUDPTransportDraft:
		return ModeTransport, true, nil
	}
	return 0, false, fmt.Errorf("encapsulation mode %d unknown", v)
}

// phase2Attrs returns the transform attributes of one phase 2 proposal.
func phase2Attrs(p Phase2Proposal, life time.Duration, lifeKB uint64, encap uint16) []isakmp.Attribute {
	attrs := []isakmp.Attribute{
		isakmp.AttrBasic(isakmp.AttrSALifeType, isakmp.LifeSeconds),
		isakmp.AttrUint(isakmp.AttrSALifeDuration, uint64(life/time.Second)),
	}
	if lifeKB > 0 {
		attrs = append(attrs,
			isakmp.AttrBasic(isakmp.AttrSALifeType, isakmp.LifeKilobytes),
			isakmp.AttrUint(isakmp.AttrSALifeDuration, lifeKB))
	}
	if p.PFSGroup != 0 {
		attrs = append(attrs, isakmp.AttrBasic(isakmp.AttrGroup, p.PFSGroup))
	}
	attrs = append(attrs, isakmp.AttrBasic(isakmp.AttrEncapsulationMode, encap))
	if p.Integrity != 0 {
		attrs = append(attrs, isakmp.AttrBasic(isakmp.AttrAuthAlgorithm, p.Integrity))
	}
	if p.Protocol == isakmp.ProtoESP && p.Encryption != isakmp.ESPNull {
		attrs = append(attrs, isakmp.AttrBasic(isakmp.AttrKeyLen, uint16(p.EncKeyBits)))
	}
	return attrs
}

// phase2SA builds the initiator's quick mode SA payload: one proposal per
// policy proposal (numbered in preference order), each with our inbound SPI.
// Only proposals with the PFS group of the KE payload can be offered.
func phase2SA(ps []Phase2Proposal, spi uint32, life time.Duration, lifeKB uint64, encap uint16, pfs uint16) *isakmp.SA {
	spiB := make([]byte, 4)
	binary.BigEndian.PutUint32(spiB, spi)
	sa := &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly}
	for _, p := range ps {
		if p.PFSGroup != pfs {
			continue
		}
		id := p.Encryption
		if p.Protocol == isakmp.ProtoAH {
			id, _ = ahTransformID(p.Integrity)
		}
		sa.Proposals = append(sa.Proposals, isakmp.Proposal{
			Number: uint8(len(sa.Proposals) + 1), ProtocolID: p.Protocol, SPI: spiB,
			Transforms: []isakmp.Transform{{Number: 1, ID: id, Attributes: phase2Attrs(p, life, lifeKB, encap)}},
		})
	}
	return sa
}

// phase2Offer is a parsed phase 2 transform.
type phase2Offer struct {
	p      Phase2Proposal
	life   time.Duration
	lifeKB uint64
	mode   Mode
	udp    bool
	encap  uint16
	spi    uint32
	prop   isakmp.Proposal
	tr     isakmp.Transform
}

func parsePhase2Transform(protocol uint8, tr isakmp.Transform) (phase2Offer, error) {
	var o phase2Offer
	o.p.Protocol = protocol
	if protocol == isakmp.ProtoESP {
		o.p.Encryption = tr.ID
	}
	lifeType := uint16(0)
	sawEncap := false
	for _, a := range tr.Attributes {
		v, err := a.Uint()
		if err != nil {
			return o, err
		}
		switch a.Type {
		case isakmp.AttrSALifeType:
			lifeType = uint16(v)
		case isakmp.AttrSALifeDuration:
			switch lifeType {
			case isakmp.LifeSeconds:
				o.life = secondsDuration(v)
			case isakmp.LifeKilobytes:
				o.lifeKB = v
			}
		case isakmp.AttrGroup:
			o.p.PFSGroup = uint16(v)
		case isakmp.AttrEncapsulationMode:
			o.encap = uint16(v)
			if o.mode, o.udp, err = decodeEncap(uint16(v)); err != nil {
				return o, err
			}
			sawEncap = true
		case isakmp.AttrAuthAlgorithm:
			o.p.Integrity = uint16(v)
		case isakmp.AttrKeyLen:
			o.p.EncKeyBits = int(v)
		default:
			return o, fmt.Errorf("attribute %d not supported", a.Type)
		}
	}
	if !sawEncap {
		o.encap = isakmp.EncapTunnel // RFC 2407 4.5: unspecified defaults are host-specific; tunnel is the common one
		o.mode = ModeTunnel
	}
	if protocol == isakmp.ProtoAH {
		want, err := ahTransformID(o.p.Integrity)
		if err != nil {
			return o, err
		}
		if want != tr.ID {
			return o, fmt.Errorf("AH transform %d does not match authentication algorithm %d", tr.ID, o.p.Integrity)
		}
	}
	if err := checkPhase2(o.p); err != nil {
		return o, err
	}
	return o, nil
}

// errInvalidKE is returned by choosePhase2 when a proposal with a PFS group
// would have been chosen but the KE payload does not fit that group (empty,
// or not the group's public value length): RFC 2408 section 5.7 answers a
// Key Exchange that does not fit the SA with INVALID-KEY-INFORMATION.
var errInvalidKE = errors.New("KE payload does not fit the PFS group")

// choosePhase2 picks a proposal from the initiator's quick mode SA payload.
// The encapsulation must match our mode and the NAT situation. ke is the
// initiator's KE payload (nil if none): PFS is used exactly when a KE
// payload is present, even an empty one (RFC 2409 section 5.5: the KE
// payload is there only for PFS, and the SA then carries the group), and its
// length must be the group's public value length. It returns errNoProposal,
// or errInvalidKE when the only obstacle was the KE payload's length.
func choosePhase2(pol *Phase2Policy, sa *isakmp.SA, wantUDP bool, ke *isakmp.KE) (phase2Offer, []string, error) {
	var reasons []string
	var best *phase2Offer
	keLen := 0
	if ke != nil {
		keLen = len(ke.Data)
	}
	badKE := false
	for _, prop := range sa.Proposals {
		if prop.ProtocolID != isakmp.ProtoESP && prop.ProtocolID != isakmp.ProtoAH {
			reasons = append(reasons, fmt.Sprintf("proposal %d: protocol %d not supported", prop.Number, prop.ProtocolID))
			continue
		}
		if len(prop.SPI) != 4 {
			reasons = append(reasons, fmt.Sprintf("proposal %d: SPI size %d is not 4", prop.Number, len(prop.SPI)))
			continue
		}
		for _, tr := range prop.Transforms {
			o, err := parsePhase2Transform(prop.ProtocolID, tr)
			if err != nil {
				reasons = append(reasons, fmt.Sprintf("proposal %d transform %d: %v", prop.Number, tr.Number, err))
				continue
			}
			if !containsP2(pol.Proposals, o.p) {
				reasons = append(reasons, fmt.Sprintf("proposal %d: %s not allowed", prop.Number, o.p))
				continue
			}
			if o.mode != pol.Mode {
				reasons = append(reasons, fmt.Sprintf("proposal %d: mode %s, we require %s", prop.Number, o.mode, pol.Mode))
				continue
			}
			if o.udp != wantUDP {
				reasons = append(reasons, fmt.Sprintf("proposal %d: UDP encapsulation %v does not fit the NAT situation (%v)", prop.Number, o.udp, wantUDP))
				continue
			}
			if (o.p.PFSGroup != 0) != (ke != nil) {
				reasons = append(reasons, fmt.Sprintf("proposal %d: PFS group %d but KE payload present %v", prop.Number, o.p.PFSGroup, ke != nil))
				continue
			}
			if o.p.PFSGroup != 0 {
				if g, err := dh.ByID(o.p.PFSGroup); err != nil || g.PublicLen() != keLen {
					reasons = append(reasons, fmt.Sprintf("proposal %d: KE length %d does not fit PFS group %d", prop.Number, keLen, o.p.PFSGroup))
					badKE = true
					continue
				}
			}
			o.spi = binary.BigEndian.Uint32(prop.SPI)
			o.prop, o.tr = prop, tr
			c := o
			if best == nil || (pol.Selection == SelectLowestValue && lessP2(c.p, best.p)) {
				best = &c
			}
			if pol.Selection == SelectInitiatorOrder {
				break
			}
		}
		if best != nil && pol.Selection == SelectInitiatorOrder {
			break
		}
	}
	if best == nil {
		if badKE {
			return phase2Offer{}, reasons, errInvalidKE
		}
		return phase2Offer{}, reasons, errNoProposal
	}
	return *best, reasons, nil
}

func containsP2(ps []Phase2Proposal, p Phase2Proposal) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// lessP2 orders by AWS's lowest value: encryption (AES-CBC before GCM, smaller
// keys first), integrity, then PFS group.
func lessP2(a, b Phase2Proposal) bool {
	encRank := func(p Phase2Proposal) int {
		r := p.EncKeyBits
		if p.Encryption == isakmp.ESPAESGCM16 {
			r += 1000
		}
		return r
	}
	if encRank(a) != encRank(b) {
		return encRank(a) < encRank(b)
	}
	if a.Integrity != b.Integrity {
		return a.Integrity < b.Integrity
	}
	return a.PFSGroup < b.PFSGroup
}

// keyLengths returns the encryption and integrity key sizes in bytes.
func keyLengths(p Phase2Proposal) (enc, integ int) {
	switch p.Encryption {
	case isakmp.ESPAESCBC:
		enc = p.EncKeyBits / 8
	case isakmp.ESPAESGCM16:
		enc = p.EncKeyBits/8 + 4 // salt, RFC 4106 section 8.1
	}
	if p.Integrity != 0 {
		if in, err := keymat.IntegrityByIKE(p.Integrity); err == nil {
			integ = in.KeyLen
		}
	}
	return enc, integ
}
