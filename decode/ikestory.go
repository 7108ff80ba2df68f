package decode

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// ikeMsg is one ISAKMP message of an SA, in capture order.
type ikeMsg struct {
	p        packet
	h        isakmp.Header
	fromI    bool
	label    string // MM1..MM6, AM1..AM3, QM1..QM3, INFO
	payloads []isakmp.Payload
	plain    bool // payloads readable (not encrypted, or decrypted)
	keySrc   string
	dup      bool
}

// ikeSA collects everything the capture shows about one ISAKMP SA.
type ikeSA struct {
	icookie, rcookie [8]byte
	init, resp       netip.AddrPort
	exchange         isakmp.ExchangeType
	msgs             []*ikeMsg
	seen             map[[32]byte]bool

	offered, chosen *isakmp.SA
	st              suite
	gxi, gxr        []byte
	ni, nr          []byte
	idi, idr        *isakmp.ID
	hashI, hashR    []byte

	p1Last  []byte            // last phase 1 ciphertext (IV chain)
	p1Done  bool              // MM6 / AM3 seen
	midLast map[uint32][]byte // per message ID: last ciphertext
	keyI    *IKEKey           // key that decrypted the initiator's phase 1 message
	keyR    *IKEKey           // ... the responder's
	split   []splitKey        // keys of one cookie that disagree on a message
	logged  []string          // sources of the distinct keys logged for the cookie

	story []Event
	qms   map[uint32]*quickMode
	qmOrd []uint32
}

// Event is one line of an exchange's story.
type Event struct {
	Frame int    `json:"frame"`
	Time  string `json:"time"`
	Dir   string `json:"dir"` // "I->R" or "R->I"
	Msg   string `json:"msg"`
	Text  string `json:"text"`
}

func (sa *ikeSA) addEvent(m *ikeMsg, text string) {
	dir := "R->I"
	if m.fromI {
		dir = "I->R"
	}
	sa.story = append(sa.story, Event{Frame: m.p.d.Frame, Time: m.p.d.Time.UTC().Format("15:04:05.000000"), Dir: dir, Msg: m.label, Text: text})
}

// ikeDecoder groups messages by initiator cookie.
type ikeDecoder struct {
	keys  *Keys
	sas   map[[8]byte]*ikeSA
	order [][8]byte
	bad   int // ISAKMP messages whose header does not decode
	badAt []string
	v2    *ikev2Decoder // IKEv2 messages (major version 2)
}

func newIKEDecoder(k *Keys) *ikeDecoder {
	return &ikeDecoder{keys: k, sas: map[[8]byte]*ikeSA{}, v2: newIKEv2Decoder(k)}
}

// add takes one classified IKE datagram.
func (dec *ikeDecoder) add(p packet) {
	if len(p.data) >= isakmp.HeaderLen && p.data[17]>>4 == 2 {
		dec.v2.add(p)
		return
	}
	h, err := isakmp.DecodeHeader(p.data)
	if err != nil {
		dec.bad++
		dec.badAt = appendCapped(dec.badAt, fmt.Sprintf("frame %d: %v", p.d.Frame, err))
		return
	}
	sa := dec.sas[h.ICookie]
	if sa == nil {
		sa = &ikeSA{icookie: h.ICookie, init: p.src, resp: p.dst, seen: map[[32]byte]bool{},
			midLast: map[uint32][]byte{}, qms: map[uint32]*quickMode{}}
		if h.RCookie != ([8]byte{}) && h.Exchange != isakmp.ExchangeIdentityProtection && h.Exchange != isakmp.ExchangeAggressive {
			sa.init, sa.resp = p.src, p.dst // mid-stream capture: the first sender is a guess
		}
		dec.sas[h.ICookie] = sa
		dec.order = append(dec.order, h.ICookie)
	}
	if sa.rcookie == ([8]byte{}) {
		sa.rcookie = h.RCookie
	}
	m := &ikeMsg{p: p, h: h, fromI: sameHost(p.src, sa.init)}
	sum := sha256.Sum256(p.data[:h.Length])
	if sa.seen[sum] {
		m.dup = true
	}
	sa.seen[sum] = true
	sa.msgs = append(sa.msgs, m)
	dec.process(sa, m)
}

// sameHost compares addresses, and ports unless one side floated to 4500.
func sameHost(a, b netip.AddrPort) bool { return a.Addr() == b.Addr() }

func appendCapped(s []string, v string) []string {
	if len(s) < 50 {
		return append(s, v)
	}
	return s
}

func (dec *ikeDecoder) process(sa *ikeSA, m *ikeMsg) {
	if m.dup {
		m.label = "again"
		sa.addEvent(m, fmt.Sprintf("retransmission of an earlier message (%d bytes, identical)", m.h.Length))
		return
	}
	switch m.h.Exchange {
	case isakmp.ExchangeIdentityProtection, isakmp.ExchangeAggressive:
		sa.exchange = m.h.Exchange
		dec.phase1(sa, m)
	case isakmp.ExchangeQuickMode:
		dec.quick(sa, m)
	case isakmp.ExchangeInformational:
		dec.informational(sa, m)
	default:
		m.label = m.h.Exchange.String()
		sa.addEvent(m, fmt.Sprintf("exchange %s is not decoded", m.h.Exchange))
	}
}

// open decodes a message's payloads: plaintext directly, encrypted ones
// with every candidate key for this cookie and the IV from prev (the
// previous ciphertext of the chain) or first (the chain's first IV).
// It returns the payloads, the key that worked, and a description of
// failures.
func (dec *ikeDecoder) open(sa *ikeSA, m *ikeMsg, ivFor func(bs int) []byte) (string, bool) {
	if m.h.Flags&isakmp.FlagEncryption == 0 {
		msg, err := isakmp.Decode(m.p.data)
		if err != nil {
			return "payloads do not decode: " + err.Error(), false
		}
		m.payloads, m.plain = msg.Payloads, true
		return "", true
	}
	body := m.p.data[isakmp.HeaderLen:m.h.Length]
	keys := dec.keys.IKE[sa.icookie]
	if len(keys) == 0 {
		return fmt.Sprintf("encrypted (%d bytes); no key for initiator cookie %x", len(body), sa.icookie), false
	}
	// Every key is tried, also after one worked: a second key for the same
	// cookie that turns the message into garbage is the other side's key,
	// derived from another pre-shared key.
	var fails, failSrc []string
	for i := range keys {
		k := &keys[i]
		blocks, err := newBlock(sa.st.cipher, k.Key)
		if err != nil {
			fails = append(fails, k.Source+": "+err.Error())
			continue
		}
		probe := *m
		ok, why := tryBlocks(blocks, &probe, body, ivFor)
		if !ok {
			fails = append(fails, k.Source+": "+why)
			failSrc = append(failSrc, k.Source)
			continue
		}
		if m.plain {
			continue
		}
		*m = probe
		m.keySrc = k.Source
		if m.fromI {
			sa.keyI = k
		} else {
			sa.keyR = k
		}
	}
	if m.plain {
		if len(failSrc) > 0 && m.fromI && (m.label == "MM5" || m.label == "AM3") {
			sa.split = append(sa.split, splitKey{good: m.keySrc, bad: failSrc, msg: m.label, frame: m.p.d.Frame})
		}
		if len(fails) > 0 {
			return "not with " + strings.Join(fails, "; "), true
		}
		return "", true
	}
	return "does not decrypt with any key (" + strings.Join(fails, "; ") + ")", false
}

func tryBlocks(blocks []cipher.Block, m *ikeMsg, body []byte, ivFor func(bs int) []byte) (bool, string) {
	why := ""
	for _, b := range blocks {
		iv := ivFor(b.BlockSize())
		if iv == nil {
			return false, "IV unknown (the capture lacks the KE payloads or the chosen hash)"
		}
		pt, err := cbcDecrypt(b, iv, body)
		if err != nil {
			why = err.Error()
			continue
		}
		ps, err := isakmp.DecodePayloads(m.h.NextPayload, pt, isakmp.HeaderLen)
		if err != nil {
			why = "decrypts to garbage (" + err.Error() + ")"
			continue
		}
		if isakmp.FindIn(ps, isakmp.PayloadHash) == nil && isakmp.FindIn(ps, isakmp.PayloadSig) == nil && m.h.Exchange != isakmp.ExchangeInformational {
			why = "decrypts to payloads without a HASH or signature (garbage)"
			continue
		}
		m.payloads, m.plain = ps, true
		return true, ""
	}
	return false, why
}

// splitKey records a phase 1 message of the initiator that one logged key
// decrypts and another for the same cookie does not.
type splitKey struct {
	good  string
	bad   []string
	msg   string
	frame int
}

// phase1IVFunc gives the IV for the next phase 1 message of the chain.
func (sa *ikeSA) phase1IVFunc() func(int) []byte {
	return func(bs int) []byte {
		if sa.p1Last != nil {
			return lastBlock(sa.p1Last, bs)
		}
		return phase1IV(sa.st.hash, sa.gxi, sa.gxr, bs)
	}
}

// lastPhase1Block is what quick mode and informational IVs start from.
func (sa *ikeSA) lastPhase1Block(bs int) []byte {
	return sa.phase1IVFunc()(bs)
}

func (dec *ikeDecoder) phase1(sa *ikeSA, m *ikeMsg) {
	encrypted := m.h.Flags&isakmp.FlagEncryption != 0
	m.label = phase1Label(m, encrypted)
	why, ok := dec.open(sa, m, sa.phase1IVFunc())
	if encrypted {
		sa.p1Last = append([]byte(nil), m.p.data[isakmp.HeaderLen:m.h.Length]...)
	} else if ok {
		m.label = phase1Label(m, false)
	}
	if m.label == "MM6" || m.label == "AM3" {
		sa.p1Done = true // the responder answered MM5 / the initiator completed aggressive mode
	}
	if !ok {
		sa.addEvent(m, why)
		return
	}
	var parts []string
	if encrypted {
		parts = append(parts, "decrypted with "+m.keySrc)
		if why != "" {
			parts = append(parts, why)
		}
	}
	parts = append(parts, sa.readPhase1(m)...)
	parts = append(parts, describeNotifies(m.payloads)...)
	sa.addEvent(m, strings.Join(parts, "; "))
}

// phase1Label names a phase 1 message by its sender and content, not by
// its position (a capture may start late, a message may be lost or
// re-sent): main mode MM1/MM2 carry the SA, MM3/MM4 the KE, MM5/MM6 are
// encrypted; aggressive mode AM1 (initiator, SA), AM2 (responder), AM3
// (initiator, encrypted or not).
func phase1Label(m *ikeMsg, encrypted bool) string {
	has := func(t isakmp.PayloadType) bool { return isakmp.FindIn(m.payloads, t) != nil }
	if m.h.Exchange == isakmp.ExchangeAggressive {
		switch {
		case !m.fromI:
			return "AM2"
		case encrypted || (m.plain && !has(isakmp.PayloadSA)):
			return "AM3"
		}
		return "AM1"
	}
	n := 1
	switch {
	case encrypted:
		n = 5
	case has(isakmp.PayloadKE):
		n = 3
	case m.plain && !has(isakmp.PayloadSA):
		return "MM?"
	}
	if !m.fromI {
		n++
	}
	return fmt.Sprintf("MM%d", n)
}

// readPhase1 records the payloads of a phase 1 message and describes them.
func (sa *ikeSA) readPhase1(m *ikeMsg) []string {
	var out []string
	for _, p := range m.payloads {
		switch p := p.(type) {
		case *isakmp.SA:
			if m.fromI {
				sa.offered = p
				out = append(out, "offers "+describeP1Offer(p))
			} else {
				sa.chosen = p
				if len(p.Proposals) > 0 && len(p.Proposals[0].Transforms) > 0 {
					sa.st = suiteOf(p.Proposals[0].Transforms[0])
				}
				out = append(out, "chooses "+describeP1Offer(p))
			}
		case *isakmp.KE:
			if m.fromI {
				sa.gxi = p.Data
			} else {
				sa.gxr = p.Data
			}
			out = append(out, fmt.Sprintf("KE %d bytes", len(p.Data)))
		case *isakmp.Nonce:
			if m.fromI {
				sa.ni = p.Data
			} else {
				sa.nr = p.Data
			}
		case *isakmp.ID:
			if m.fromI {
				sa.idi = p
			} else {
				sa.idr = p
			}
			out = append(out, "ID "+p.String())
		case *isakmp.Hash:
			if m.fromI {
				sa.hashI = p.Data
			} else {
				sa.hashR = p.Data
			}
			out = append(out, fmt.Sprintf("HASH_%s %d bytes", map[bool]string{true: "I", false: "R"}[m.fromI], len(p.Data)))
		case *isakmp.VendorID:
			if n := isakmp.VendorName(p.Data); n != "" {
				out = append(out, "VID "+n)
			} else {
				out = append(out, "VID "+shortHex(p.Data))
			}
		case *isakmp.Cert:
			out = append(out, fmt.Sprintf("CERT %d bytes", len(p.Data)))
		case *isakmp.Signature:
			out = append(out, fmt.Sprintf("SIG %d bytes", len(p.Data)))
		}
	}
	if v := sa.natdVerdict(m); v != "" {
		out = append(out, v)
	}
	return out
}

func shortHex(b []byte) string {
	if len(b) > 8 {
		return hex.EncodeToString(b[:8]) + "..."
	}
	return hex.EncodeToString(b)
}

func describeNotifies(ps []isakmp.Payload) []string {
	var out []string
	for _, p := range ps {
		switch p := p.(type) {
		case *isakmp.Notify:
			s := "NOTIFY " + p.NotifyType.String()
			if p.NotifyType == isakmp.NotifyResponderLifetime {
				s += " " + lifetimeAttrs(p.Data)
			}
			out = append(out, s)
		case *isakmp.Delete:
			var spis []string
			for _, s := range p.SPIs {
				spis = append(spis, hex.EncodeToString(s))
			}
			out = append(out, fmt.Sprintf("DELETE %s SPI %s", isakmp.ProtocolName(p.ProtocolID), strings.Join(spis, " ")))
		}
	}
	return out
}

func lifetimeAttrs(b []byte) string {
	var parts []string
	for len(b) >= 4 && b[0]&0x80 != 0 {
		t := (uint16(b[0])<<8 | uint16(b[1])) & 0x7fff
		v := uint16(b[2])<<8 | uint16(b[3])
		parts = append(parts, isakmp.AttrString(isakmp.ProtoESP, isakmp.AttrBasic(t, v)))
		b = b[4:]
	}
	if len(b) >= 4 { // a TLV duration
		n := int(b[2])<<8 | int(b[3])
		if len(b) >= 4+n && n <= 8 {
			var v uint64
			for _, c := range b[4 : 4+n] {
				v = v<<8 | uint64(c)
			}
			parts = append(parts, fmt.Sprintf("duration=%d", v))
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// describeP1Offer names the transforms of a phase 1 SA payload.
func describeP1Offer(p *isakmp.SA) string {
	var ts []string
	for _, pr := range p.Proposals {
		for _, t := range pr.Transforms {
			ts = append(ts, p1Transform(t))
		}
	}
	if len(ts) == 0 {
		return "no transform"
	}
	return strings.Join(ts, " | ")
}

// p1Transform is e.g. "AES-CBC-256/SHA2-256/modp2048/PSK/28800s".
func p1Transform(t isakmp.Transform) string {
	s := suiteOf(t)
	enc := strings.TrimPrefix(cipherName(s.cipher), "Encryption-Algorithm=")
	if s.keyBits > 0 {
		enc += fmt.Sprintf("-%d", s.keyBits)
	}
	val := func(typ, v uint16) string {
		x := isakmp.AttrString(isakmp.ProtoISAKMP, isakmp.AttrBasic(typ, v))
		_, after, _ := strings.Cut(x, "=")
		return after
	}
	out := enc + "/" + val(isakmp.AttrHashAlgorithm, s.hashID) + "/" + val(isakmp.AttrGroupDescription, s.group) + "/" + val(isakmp.AttrAuthenticationMethod, s.auth)
	for _, a := range t.Attributes {
		if a.Type == isakmp.AttrLifeDuration {
			if v, err := a.Uint(); err == nil {
				out += fmt.Sprintf("/life %d", v)
			}
		}
	}
	return out
}

// shortName is a one-word address for the story.
func shortName(a netip.AddrPort) string { return a.String() }
