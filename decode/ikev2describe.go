package decode

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// IKEv2Report is one IKEv2 SA as the capture shows it.
type IKEv2Report struct {
	SPIi          string   `json:"spi_i"`
	SPIr          string   `json:"spi_r"`
	Initiator     string   `json:"initiator"`
	Responder     string   `json:"responder"`
	Status        string   `json:"status"` // established, failed, incomplete, unknown
	Reason        string   `json:"reason,omitempty"`
	Offered       string   `json:"offered,omitempty"`
	Chosen        string   `json:"chosen,omitempty"`
	NAT           string   `json:"nat,omitempty"`
	IDi           string   `json:"id_i,omitempty"`
	IDr           string   `json:"id_r,omitempty"`
	Auth          string   `json:"auth,omitempty"`
	ChildFailures []string `json:"child_failures,omitempty"`
	RekeyedTo     string   `json:"rekeyed_to,omitempty"`
	RekeyedFrom   string   `json:"rekeyed_from,omitempty"`
	Undecrypted   int      `json:"undecrypted"`
	Story         []Event  `json:"story"`
}

// describe is the story line of a readable message; it also records what
// the verdict needs.
func (sa *v2SA) describe(m *v2Msg) string {
	var parts []string
	add := func(f string, a ...any) { parts = append(parts, fmt.Sprintf(f, a...)) }
	ps := m.payloads
	var errN *wire.Notify
	for _, p := range ps {
		if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() && errN == nil {
			errN = n
		}
	}
	switch m.h.Exchange {
	case wire.ExchangeIKESAInit:
		sa.describeInit(m, errN, add)
	case wire.ExchangeIKEAuth:
		sa.describeAuth(m, errN, add)
	case wire.ExchangeCreateChildSA:
		sa.describeCreateChild(m, add)
	case wire.ExchangeInformational:
		if len(ps) == 0 {
			switch req := sa.reqKind[m.h.MessageID]; {
			case !m.h.Response():
				add("liveness check (empty INFORMATIONAL)")
			case req == "liveness":
				add("liveness reply (empty INFORMATIONAL)")
			default:
				add("empty response: %s acknowledged", orDash(req))
			}
		}
		if !m.h.Response() {
			sa.reqKind[m.h.MessageID] = "liveness"
		}
		for _, p := range ps {
			if d, ok := p.(*wire.Delete); ok {
				add("DELETE %s", describeDelete(d))
				if !m.h.Response() {
					sa.reqKind[m.h.MessageID] = "DELETE " + describeDelete(d)
				}
			}
		}
		if errN != nil && sa.up && errN.NotifyType == wire.NotifyAuthenticationFailed && m.fromI {
			sa.failNotify, sa.failMsg = errN, m
		}
	}
	if notes := describeV2Notifies(ps); notes != "" {
		add("notify %s", notes)
	}
	if len(parts) == 0 {
		return "no payloads"
	}
	return strings.Join(parts, "; ")
}

func (sa *v2SA) describeInit(m *v2Msg, errN *wire.Notify, add func(string, ...any)) {
	for _, p := range m.payloads {
		switch p := p.(type) {
		case *wire.SA:
			if m.h.Response() {
				sa.chosen = p
				add("chosen %s", describeV2SA(p))
			} else {
				sa.offered = p
				add("offers %s", describeV2SA(p))
			}
		case *wire.KE:
			sa.ke = p.Group
			add("KE %s", p.Group)
		case *wire.Nonce:
			add("nonce %d bytes", len(p.Data))
		}
	}
	if c := wire.FindNotify(m.payloads, wire.NotifyCookie); c != nil {
		if m.h.Response() {
			add("COOKIE: the responder is under load (too many half-open IKE SAs) and asks the initiator to repeat IKE_SA_INIT with this %d-byte cookie (RFC 7296 section 2.6)", len(c.Data))
		} else {
			add("repeats IKE_SA_INIT with the responder's COOKIE")
		}
	}
	if nat := sa.natDetect(m); nat != "" {
		add("%s", nat)
		switch {
		case m.h.Response():
			sa.nat = strings.TrimPrefix(sa.nat+"; "+nat, "; ")
		case !strings.HasPrefix(nat, "NAT-D: no NAT"):
			sa.natReq = nat // kept until the response, which comes first in the summary
		}
	}
	if errN == nil {
		return
	}
	switch errN.NotifyType {
	case wire.NotifyInvalidKEPayload:
		g, err := errN.Group()
		if err == nil {
			add("INVALID_KE_PAYLOAD: the responder wants KE %s (the initiator sent %s); the initiator must retry with it", g, sa.ke)
		}
	case wire.NotifyNoProposalChosen:
		sa.failNotify, sa.failMsg = errN, m
	}
}

func (sa *v2SA) describeAuth(m *v2Msg, errN *wire.Notify, add func(string, ...any)) {
	var tsi, tsr string
	for _, p := range m.payloads {
		switch p := p.(type) {
		case *wire.ID:
			if p.Responder {
				sa.idr = p
				add("IDr %s", describeV2ID(p))
			} else {
				sa.idi = p
				add("IDi %s", describeV2ID(p))
			}
		case *wire.Auth:
			if m.fromI {
				sa.auth = p.Method
			}
			add("AUTH %s", p.Method)
		case *wire.SA:
			if m.h.Response() {
				add("child SA chosen %s", describeV2SA(p))
			} else {
				add("child SA offers %s", describeV2SA(p))
			}
		case *wire.TS:
			if p.Responder {
				tsr = describeTS(p)
			} else {
				tsi = describeTS(p)
			}
		}
	}
	if tsi != "" || tsr != "" {
		add("TSi %s, TSr %s", orDash(tsi), orDash(tsr))
	}
	if !m.h.Response() {
		return
	}
	switch {
	case errN != nil && errN.NotifyType == wire.NotifyAuthenticationFailed:
		sa.failNotify, sa.failMsg = errN, m
	case errN != nil && (errN.NotifyType == wire.NotifyNoProposalChosen || errN.NotifyType == wire.NotifyTSUnacceptable ||
		errN.NotifyType == wire.NotifySinglePairRequired || errN.NotifyType == wire.NotifyInternalAddressFailure || errN.NotifyType == wire.NotifyFailedCPRequired):
		sa.up = true
		sa.childFail = append(sa.childFail, childFailure(errN.NotifyType))
	case errN != nil:
		sa.failNotify, sa.failMsg = errN, m
	default:
		sa.up = true
	}
}

func childFailure(t wire.NotifyType) string {
	switch t {
	case wire.NotifyNoProposalChosen:
		return "the first CHILD_SA failed: NO_PROPOSAL_CHOSEN: the responder accepts none of the offered ESP/AH proposals (the IKE SA stays up)"
	case wire.NotifyTSUnacceptable:
		return "the first CHILD_SA failed: TS_UNACCEPTABLE: the responder's traffic selectors do not overlap the offered TSi/TSr (the IKE SA stays up)"
	}
	return fmt.Sprintf("the first CHILD_SA failed: %s (the IKE SA stays up)", t)
}

func (sa *v2SA) describeCreateChild(m *v2Msg, add func(string, ...any)) {
	rekey := wire.FindNotify(m.payloads, wire.NotifyRekeySA)
	if m.h.Response() {
		if req, ok := sa.rekeyOf[m.h.MessageID]; ok {
			rekey = req
		}
	} else if rekey != nil {
		sa.rekeyOf[m.h.MessageID] = rekey
	}
	for _, p := range m.payloads {
		switch p := p.(type) {
		case *wire.SA:
			if len(p.Proposals) == 0 {
				continue
			}
			pr := p.Proposals[0]
			verb := "offers"
			if m.h.Response() {
				verb = "chose"
			}
			switch {
			case pr.Protocol == wire.ProtoIKE && len(pr.SPI) == 8:
				add("IKE SA rekey: %s %s, new SPI %x", verb, describeV2SA(p), pr.SPI)
				if m.h.Response() && len(sa.rekeyNewI) == 8 {
					sa.rekeyedTo = fmt.Sprintf("%x/%x", sa.rekeyNewI, pr.SPI)
					sa.newSA = &v2SA{spii: [8]byte(sa.rekeyNewI), spir: [8]byte(pr.SPI), rekeyedFrom: fmt.Sprintf("%x/%x", sa.spii[:], sa.spir[:]),
						init: sa.init, resp: sa.resp, up: true}
				} else {
					sa.rekeyNewI = append([]byte(nil), pr.SPI...)
				}
			case rekey != nil:
				add("CHILD_SA rekey of %s SPI %x: %s %s, new SPI %x", rekey.Protocol, rekey.SPI, verb, describeV2SA(p), pr.SPI)
			default:
				add("new CHILD_SA: %s %s, SPI %x", verb, describeV2SA(p), pr.SPI)
			}
		case *wire.KE:
			add("KE %s (PFS)", p.Group)
		case *wire.TS:
			add("%s %s", map[bool]string{false: "TSi", true: "TSr"}[p.Responder], describeTS(p))
		}
	}
}

// natDetect compares the NAT_DETECTION_*_IP notifies of an IKE_SA_INIT
// message with the packet's addresses (RFC 7296 section 2.23:
// SHA-1(SPIi | SPIr | IP | port), SPIr zero in the request).
func (sa *v2SA) natDetect(m *v2Msg) string {
	src := wire.FindNotify(m.payloads, wire.NotifyNATDetectionSourceIP)
	dst := wire.FindNotify(m.payloads, wire.NotifyNATDetectionDestinationIP)
	if src == nil || dst == nil {
		return ""
	}
	hash := func(a netip.AddrPort) []byte {
		h := sha1.New()
		h.Write(m.h.SPIi[:])
		h.Write(m.h.SPIr[:])
		ip := a.Addr().Unmap().AsSlice()
		h.Write(ip)
		var port [2]byte
		binary.BigEndian.PutUint16(port[:], a.Port())
		h.Write(port[:])
		return h.Sum(nil)
	}
	srcOK := bytes.Equal(src.Data, hash(m.p.src))
	dstOK := bytes.Equal(dst.Data, hash(m.p.dst))
	who, other := "initiator", "responder"
	if m.h.Response() {
		who, other = "responder", "initiator"
	}
	if srcOK && dstOK {
		return "NAT-D: no NAT between the peers (the hashes match the addresses)"
	}
	var parts []string
	if !srcOK {
		parts = append(parts, fmt.Sprintf("the %s's source hash does not match %s: the %s is behind a NAT (or fakes NAT-D to force UDP encapsulation)", who, m.p.src, who))
	}
	if !dstOK {
		parts = append(parts, fmt.Sprintf("the %s's destination hash does not match %s: the %s is behind a NAT", who, m.p.dst, other))
	}
	return "NAT-D: " + strings.Join(parts, ", and ")
}

func describeV2SA(s *wire.SA) string {
	var out []string
	for _, p := range s.Proposals {
		var ts []string
		for _, t := range p.Transforms {
			ts = append(ts, t.Name())
		}
		out = append(out, fmt.Sprintf("#%d %s %s", p.Number, p.Protocol, strings.Join(ts, "/")))
	}
	return strings.Join(out, ", ")
}

func describeV2ID(id *wire.ID) string {
	if a, ok := id.Addr(); ok {
		return fmt.Sprintf("%s %s", id.IDType, a)
	}
	if id.IDType == wire.IDFQDN || id.IDType == wire.IDRFC822Addr {
		return fmt.Sprintf("%s %q", id.IDType, sanitizeText(string(id.Data)))
	}
	return fmt.Sprintf("%s %s", id.IDType, shortHex(id.Data))
}

// sanitizeText keeps a peer-supplied string printable and short.
func sanitizeText(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func describeTS(ts *wire.TS) string {
	var out []string
	for _, s := range ts.Selectors {
		var ps []string
		for _, p := range s.Prefixes() {
			ps = append(ps, p.String())
		}
		if len(ps) == 0 || len(ps) > 4 {
			ps = []string{s.Start.String() + "-" + s.End.String()}
		}
		d := strings.Join(ps, "+")
		if s.Protocol != 0 || s.StartPort != 0 || s.EndPort != 65535 {
			d += fmt.Sprintf(" proto %d ports %d-%d", s.Protocol, s.StartPort, s.EndPort)
		}
		out = append(out, d)
	}
	return strings.Join(out, ", ")
}

func describeDelete(d *wire.Delete) string {
	if d.Protocol == wire.ProtoIKE {
		return "of the IKE SA"
	}
	var spis []string
	for _, s := range d.SPIs {
		spis = append(spis, fmt.Sprintf("%x", s))
	}
	return fmt.Sprintf("%s SPI %s", d.Protocol, strings.Join(spis, ", "))
}

func describeV2Notifies(ps []wire.Payload) string {
	var out []string
	for _, p := range ps {
		n, ok := p.(*wire.Notify)
		if !ok || n.NotifyType == wire.NotifyNATDetectionSourceIP || n.NotifyType == wire.NotifyNATDetectionDestinationIP {
			continue
		}
		out = append(out, n.NotifyType.String())
	}
	return strings.Join(out, ", ")
}
