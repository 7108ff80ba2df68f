package decode

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// quickMode is one quick mode exchange (by message ID).
type quickMode struct {
	mid      uint32
	n        int // messages seen (not counting retransmissions)
	readable int
	offered  *isakmp.SA
	chosen   *isakmp.SA
	ids      []*isakmp.ID // IDci, IDcr as sent by the initiator, then the responder's
	spis     []string
	pfs      bool
	done     bool
	notify   string // an error notify that ended it (from an informational)
}

// exchangeIV returns the IV function for a message of a quick mode or
// informational exchange: RFC 2409 appendix B, hash(last phase 1 block |
// M-ID) for its first message, then the previous message's last block.
func (sa *ikeSA) exchangeIV(mid uint32) func(int) []byte {
	return func(bs int) []byte {
		if last := sa.midLast[mid]; last != nil {
			return lastBlock(last, bs)
		}
		return messageIV(sa.st.hash, sa.lastPhase1Block(bs), mid, bs)
	}
}

func (dec *ikeDecoder) quick(sa *ikeSA, m *ikeMsg) {
	qm := sa.qms[m.h.MessageID]
	if qm == nil {
		qm = &quickMode{mid: m.h.MessageID}
		sa.qms[m.h.MessageID] = qm
		sa.qmOrd = append(sa.qmOrd, m.h.MessageID)
	}
	qm.n++
	m.label = fmt.Sprintf("QM%d", qm.n)
	why, ok := dec.open(sa, m, sa.exchangeIV(m.h.MessageID))
	if m.h.Flags&isakmp.FlagEncryption != 0 {
		sa.midLast[m.h.MessageID] = append([]byte(nil), m.p.data[isakmp.HeaderLen:m.h.Length]...)
	}
	if !ok {
		sa.addEvent(m, fmt.Sprintf("mid %08x: %s", m.h.MessageID, why))
		return
	}
	qm.readable++
	parts := []string{fmt.Sprintf("mid %08x", m.h.MessageID)}
	if m.keySrc != "" {
		parts = append(parts, "decrypted with "+m.keySrc)
	}
	for _, p := range m.payloads {
		switch p := p.(type) {
		case *isakmp.SA:
			if m.fromI {
				qm.offered = p
				parts = append(parts, "offers "+describeP2Offer(p))
			} else {
				qm.chosen = p
				parts = append(parts, "chooses "+describeP2Offer(p))
			}
			for _, pr := range p.Proposals {
				if len(pr.SPI) > 0 {
					qm.spis = append(qm.spis, fmt.Sprintf("%s %s SPI %s", sideName(m.fromI), isakmp.ProtocolName(pr.ProtocolID), hex.EncodeToString(pr.SPI)))
					break
				}
			}
		case *isakmp.ID:
			if m.fromI && qm.n == 1 {
				qm.ids = append(qm.ids, p) // the responder echoes them
			}
		case *isakmp.KE:
			qm.pfs = true
			parts = append(parts, fmt.Sprintf("KE %d bytes (PFS)", len(p.Data)))
		case *isakmp.NATOA:
			parts = append(parts, isakmp.Describe(p))
		}
	}
	if ids := m.idsIn(); len(ids) == 2 {
		parts = append(parts, fmt.Sprintf("traffic selectors %s <-> %s", ids[0], ids[1]))
	}
	parts = append(parts, describeNotifies(m.payloads)...)
	if qm.n >= 3 || (qm.n == 2 && !m.fromI && qm.chosen != nil) {
		qm.done = qm.n >= 3
	}
	sa.addEvent(m, strings.Join(parts, "; "))
}

func (m *ikeMsg) idsIn() []string {
	var out []string
	for _, p := range m.payloads {
		if id, ok := p.(*isakmp.ID); ok {
			out = append(out, id.String())
		}
	}
	return out
}

func sideName(initiator bool) string {
	if initiator {
		return "initiator"
	}
	return "responder"
}

// describeP2Offer is e.g. "ESP_AES_CBC-128/HMAC-SHA/Tunnel/PFS modp2048"
// per transform, "|" between them.
func describeP2Offer(p *isakmp.SA) string {
	var ts []string
	for _, pr := range p.Proposals {
		for _, t := range pr.Transforms {
			name := isakmp.TransformName(pr.ProtocolID, t.ID)
			var auth, mode, group string
			for _, a := range t.Attributes {
				x := isakmp.AttrString(pr.ProtocolID, a)
				_, v, _ := strings.Cut(x, "=")
				switch a.Type {
				case isakmp.AttrKeyLen:
					name += "-" + v
				case isakmp.AttrAuthAlgorithm:
					auth = "/" + v
				case isakmp.AttrEncapsulationMode:
					mode = "/" + v
				case isakmp.AttrGroup:
					group = "/PFS " + v
				}
			}
			ts = append(ts, name+auth+mode+group)
		}
	}
	if len(ts) == 0 {
		return "no transform"
	}
	return strings.Join(ts, " | ")
}

func (dec *ikeDecoder) informational(sa *ikeSA, m *ikeMsg) {
	m.label = "INFO"
	why, ok := dec.open(sa, m, sa.exchangeIV(m.h.MessageID))
	if m.h.Flags&isakmp.FlagEncryption != 0 {
		sa.midLast[m.h.MessageID] = append([]byte(nil), m.p.data[isakmp.HeaderLen:m.h.Length]...)
	}
	if !ok {
		sa.addEvent(m, why)
		return
	}
	var parts []string
	if m.keySrc != "" {
		parts = append(parts, "decrypted with "+m.keySrc)
	} else {
		parts = append(parts, "plaintext")
	}
	ns := describeNotifies(m.payloads)
	parts = append(parts, ns...)
	for _, p := range m.payloads {
		n, ok := p.(*isakmp.Notify)
		if !ok || !n.NotifyType.IsError() {
			continue
		}
		// An error notify about a quick mode names its SPI; the latest
		// unfinished quick mode is the one it ends.
		if len(sa.qmOrd) > 0 && sa.p1Done {
			if qm := sa.qms[sa.qmOrd[len(sa.qmOrd)-1]]; !qm.done && qm.notify == "" {
				qm.notify = n.NotifyType.String()
			}
		}
	}
	sa.addEvent(m, strings.Join(parts, "; "))
}
