package decode

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// v2Msg is one IKEv2 message of an IKE SA, in capture order.
type v2Msg struct {
	p        packet
	h        wire.Header
	fromI    bool // the I flag: sent by the original initiator
	label    string
	payloads []wire.Payload // readable payloads (clear, or decrypted)
	plain    bool
	keySrc   string
	dup      bool
}

// v2SA collects what the capture shows about one IKE SA (by SPIi).
type v2SA struct {
	spii, spir [8]byte
	init, resp netip.AddrPort
	msgs       []*v2Msg
	seen       map[[32]byte]bool
	frags      map[[5]byte]*wire.Reassembler // message ID + direction

	offered, chosen *wire.SA
	ke              wire.DHGroup
	nat             string
	natReq          string // the request's NAT-D verdict when it shows a NAT
	idi, idr        *wire.ID
	auth            wire.AuthMethod
	up              bool         // IKE_AUTH response without an error notify
	failNotify      *wire.Notify // error notify that ended the SA
	failMsg         *v2Msg
	childFail       []string
	undecrypted     int
	badKey          int
	keyNote         string
	rekeyedTo       string
	rekeyNewI       []byte
	rekeyedFrom     string
	floated         string
	newSA           *v2SA                   // made by an IKE SA rekey, not yet seen
	reqKind         map[uint32]string       // INFORMATIONAL requests by message ID
	rekeyOf         map[uint32]*wire.Notify // CREATE_CHILD_SA REKEY_SA by message ID
	story           []Event
}

func (sa *v2SA) addEvent(m *v2Msg, text string) {
	dir := "R->I"
	if m.fromI {
		dir = "I->R"
	}
	sa.story = append(sa.story, Event{Frame: m.p.d.Frame, Time: m.p.d.Time.UTC().Format("15:04:05.000000"), Dir: dir, Msg: m.label, Text: text})
}

// ikev2Decoder groups IKEv2 messages by initiator SPI.
type ikev2Decoder struct {
	keys  *Keys
	sas   map[[8]byte]*v2SA
	order [][8]byte
	bad   int
	badAt []string
}

func newIKEv2Decoder(k *Keys) *ikev2Decoder {
	return &ikev2Decoder{keys: k, sas: map[[8]byte]*v2SA{}}
}

// maxV2SAs bounds the IKE SAs one capture can create (hostile input).
const maxV2SAs = 10000

func (dec *ikev2Decoder) add(p packet) {
	h, err := wire.DecodeHeader(p.data)
	if err != nil {
		dec.bad++
		dec.badAt = appendCapped(dec.badAt, fmt.Sprintf("frame %d: %v", p.d.Frame, err))
		return
	}
	sa := dec.sas[h.SPIi]
	if sa == nil {
		if len(dec.sas) >= maxV2SAs {
			dec.bad++
			return
		}
		sa = &v2SA{spii: h.SPIi}
		sa.init, sa.resp = p.src, p.dst
		if !h.Initiator() {
			sa.init, sa.resp = p.dst, p.src
		}
		sa.init0()
		dec.sas[h.SPIi] = sa
		dec.order = append(dec.order, h.SPIi)
	}
	if sa.spir == ([8]byte{}) && h.SPIr != ([8]byte{}) {
		sa.spir = h.SPIr
	}
	m := &v2Msg{p: p, h: h, fromI: h.Initiator(), label: v2Label(h)}
	if p.marker && sa.floated == "" {
		sa.floated = fmt.Sprintf("IKE floated to UDP 4500 (non-ESP marker) at frame %d: %s -> %s", p.d.Frame, p.src, p.dst)
	}
	sum := sha256.Sum256(p.data[:h.Length])
	m.dup = sa.seen[sum]
	sa.seen[sum] = true
	sa.msgs = append(sa.msgs, m)
	if m.dup {
		sa.addEvent(m, fmt.Sprintf("retransmission of message %d (%d bytes, identical)", h.MessageID, h.Length))
		return
	}
	dec.read(sa, m)
	if m.plain {
		sa.addEvent(m, sa.describe(m))
	}
	if n := sa.newSA; n != nil && dec.sas[n.spii] == nil && len(dec.sas) < maxV2SAs {
		n.init0()
		dec.sas[n.spii] = n
		dec.order = append(dec.order, n.spii)
	}
	sa.newSA = nil
}

func (sa *v2SA) init0() {
	sa.seen = map[[32]byte]bool{}
	sa.frags = map[[5]byte]*wire.Reassembler{}
	sa.reqKind = map[uint32]string{}
	sa.rekeyOf = map[uint32]*wire.Notify{}
}

func v2Label(h wire.Header) string {
	n := map[wire.ExchangeType]string{wire.ExchangeIKESAInit: "INIT", wire.ExchangeIKEAuth: "AUTH",
		wire.ExchangeCreateChildSA: "CCSA", wire.ExchangeInformational: "INFO"}[h.Exchange]
	if n == "" {
		n = fmt.Sprintf("X%d", h.Exchange)
	}
	if h.Response() {
		return n + "<"
	}
	return n + ">"
}

// read decodes the payloads of m: directly for a clear message, through
// the SA's keys for SK/SKF.
func (dec *ikev2Decoder) read(sa *v2SA, m *v2Msg) {
	msg, err := wire.Decode(m.p.data)
	if err != nil {
		dec.bad++
		dec.badAt = appendCapped(dec.badAt, fmt.Sprintf("frame %d: %v", m.p.d.Frame, err))
		sa.addEvent(m, "undecodable: "+err.Error())
		return
	}
	last := wire.PayloadType(0)
	if n := len(msg.Payloads); n > 0 {
		last = msg.Payloads[n-1].Type()
	}
	if last != wire.PayloadSK && last != wire.PayloadSKF {
		m.payloads, m.plain = msg.Payloads, true
		return
	}
	keys := dec.keys.IKEv2[spiPair(m.h.SPIi, m.h.SPIr)]
	if len(keys) == 0 {
		sa.undecrypted++
		sa.addEvent(m, fmt.Sprintf("encrypted (%d bytes), no key for SPIs %x/%x", m.h.Length, m.h.SPIi[:], m.h.SPIr[:]))
		return
	}
	var lastErr error
	for _, k := range keys {
		s, err := k.suite(m.fromI)
		if err != nil {
			lastErr = err
			continue
		}
		o, err := s.Open(m.p.data)
		if err != nil {
			lastErr = err
			continue
		}
		m.keySrc = k.Source
		dec.opened(sa, m, o)
		return
	}
	sa.undecrypted++
	if errors.Is(lastErr, wire.ErrAuthentication) {
		sa.badKey++
		sa.addEvent(m, fmt.Sprintf("encrypted; the integrity check fails with the logged key(s) (%s): wrong key, or not this SA's", keys[0].Source))
		return
	}
	sa.addEvent(m, fmt.Sprintf("encrypted; not decrypted: %v", lastErr))
}

// opened handles a decrypted SK message or SKF fragment.
func (dec *ikev2Decoder) opened(sa *v2SA, m *v2Msg, o *wire.Opened) {
	if o.Total == 0 {
		ps, err := o.Payloads()
		if err != nil {
			sa.addEvent(m, "decrypted, but the inner payloads do not decode: "+err.Error())
			return
		}
		m.payloads, m.plain = append(o.Clear, ps...), true
		return
	}
	var id [5]byte
	id[0], id[1], id[2], id[3] = byte(m.h.MessageID>>24), byte(m.h.MessageID>>16), byte(m.h.MessageID>>8), byte(m.h.MessageID)
	if m.h.Response() {
		id[4] = 1
	}
	r := sa.frags[id]
	if r == nil {
		if len(sa.frags) > 64 {
			sa.addEvent(m, "fragment dropped: too many messages in reassembly")
			return
		}
		r = &wire.Reassembler{}
		sa.frags[id] = r
	}
	done, err := r.Add(o)
	if err != nil {
		sa.addEvent(m, fmt.Sprintf("fragment %d/%d refused: %v", o.Number, o.Total, err))
		return
	}
	if !done {
		sa.addEvent(m, fmt.Sprintf("fragment %d/%d (RFC 7383), decrypted", o.Number, o.Total))
		return
	}
	ps, err := r.Payloads()
	delete(sa.frags, id)
	if err != nil {
		sa.addEvent(m, "reassembled, but the inner payloads do not decode: "+err.Error())
		return
	}
	m.payloads, m.plain = ps, true
	m.label += fmt.Sprintf("[%d frags]", o.Total)
}

// report builds the IKE SA's report with its verdict.
func (sa *v2SA) report(pol *Policy) IKEv2Report {
	r := IKEv2Report{SPIi: fmt.Sprintf("%x", sa.spii[:]), SPIr: fmt.Sprintf("%x", sa.spir[:]),
		Initiator: sa.init.String(), Responder: sa.resp.String(), Story: sa.story,
		NAT: sa.nat, Undecrypted: sa.undecrypted, RekeyedTo: sa.rekeyedTo, RekeyedFrom: sa.rekeyedFrom}
	if sa.offered != nil {
		r.Offered = describeV2SA(sa.offered)
	}
	if sa.chosen != nil {
		r.Chosen = describeV2SA(sa.chosen)
	}
	if sa.idi != nil {
		r.IDi = describeV2ID(sa.idi)
	}
	if sa.idr != nil {
		r.IDr = describeV2ID(sa.idr)
	}
	if sa.auth != 0 {
		r.Auth = sa.auth.String()
	}
	if sa.natReq != "" {
		r.NAT = strings.TrimPrefix(r.NAT+"; "+sa.natReq, "; ")
	}
	if sa.floated != "" {
		r.NAT = strings.TrimPrefix(r.NAT+"; "+sa.floated, "; ")
	}
	r.Status, r.Reason = sa.verdict(pol)
	for _, c := range sa.childFail {
		if t := pol.forLocal(sa.resp.Addr()); t != nil && strings.Contains(c, "NO_PROPOSAL_CHOSEN") {
			c += "; the responder accepts (" + t.Source + "): " + t.Phase2
		}
		r.ChildFailures = append(r.ChildFailures, c)
	}
	return r
}
