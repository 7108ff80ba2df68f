package wire

import (
	"encoding/hex"
	"fmt"
	"strconv"
)

// fieldList is what the codec decoded, as tshark's isakmp dissector names
// and prints it (`tshark -T fields -E occurrence=a`): per field, the values
// in the order of the protocol tree.
type fieldList map[string][]string

func (f fieldList) add(k string, v any) {
	var s string
	switch v := v.(type) {
	case []byte:
		s = hex.EncodeToString(v)
	case string:
		s = v
	default:
		s = fmt.Sprint(v)
	}
	f[k] = append(f[k], s)
}

// tsharkFields lists the fields compared.
var tsharkFields = []string{
	"isakmp.ispi", "isakmp.rspi", "isakmp.nextpayload", "isakmp.version", "isakmp.exchangetype", "isakmp.flags",
	"isakmp.messageid", "isakmp.length", "isakmp.payloadlength", "isakmp.criticalpayload",
	"isakmp.prop.number", "isakmp.prop.protoid", "isakmp.spisize", "isakmp.spi", "isakmp.prop.transforms",
	"isakmp.tf.type", "isakmp.tf.id.encr", "isakmp.tf.id.prf", "isakmp.tf.id.integ", "isakmp.tf.id.dh", "isakmp.tf.id.esn",
	"isakmp.ike2.attr.key_length",
	"isakmp.key_exchange.dh_group", "isakmp.key_exchange.data", "isakmp.nonce",
	"isakmp.notify.protoid", "isakmp.notify.msgtype", "isakmp.notify.data",
	"isakmp.id.type", "isakmp.id.data.ipv4_addr", "isakmp.id.data.fqdn", "isakmp.id.data.ipv6_addr",
	"isakmp.cert.encoding", "isakmp.certreq.type",
	"isakmp.auth.method", "isakmp.auth.data",
	"isakmp.ts.number", "isakmp.ts.type", "isakmp.ts.protoid", "isakmp.ts.selector_length", "isakmp.ts.start_port",
	"isakmp.ts.end_port", "isakmp.ts.start_ipv4", "isakmp.ts.end_ipv4", "isakmp.ts.start_ipv6", "isakmp.ts.end_ipv6",
	"isakmp.delete.protoid", "isakmp.delete.spi", "isakmp.spinum",
	"isakmp.vid_bytes", "isakmp.cfg.type", "isakmp.cfg.attr.type", "isakmp.cfg.attr.length",
	"isakmp.frag.number", "isakmp.frag.total", "isakmp.enc.iv", "isakmp.enc.pad_length", "isakmp.enc.icd",
}

// messageFields returns the fields of one message; opened and inner are
// set when the message was decrypted (inner: the whole inner chain, in the
// frame that completed it).
func messageFields(m *Message, opened *Opened, inner []Payload, icd []byte) fieldList {
	f := fieldList{}
	h := m.Header
	f.add("isakmp.ispi", h.SPIi[:])
	f.add("isakmp.rspi", h.SPIr[:])
	f.add("isakmp.nextpayload", uint8(h.NextPayload))
	f.add("isakmp.version", fmt.Sprintf("0x%02x", h.Version))
	f.add("isakmp.exchangetype", uint8(h.Exchange))
	f.add("isakmp.flags", fmt.Sprintf("0x%02x", h.Flags))
	f.add("isakmp.messageid", fmt.Sprintf("0x%08x", h.MessageID))
	f.add("isakmp.length", h.Length)
	chainFields(f, m.Payloads, opened != nil)
	if opened == nil {
		return f
	}
	if opened.Total != 0 {
		f.add("isakmp.frag.number", opened.Number)
		f.add("isakmp.frag.total", opened.Total)
	}
	f.add("isakmp.enc.iv", opened.IV)
	f.add("isakmp.enc.pad_length", len(opened.Padding))
	f.add("isakmp.enc.icd", icd)
	if opened.Total == 0 || inner != nil {
		chainFields(f, inner, false)
	}
	return f
}

func chainFields(f fieldList, ps []Payload, sealedOpen bool) {
	for i, p := range ps {
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].Type()
		} else {
			next = innerFirst(p)
		}
		body, _ := p.appendBody(nil)
		f.add("isakmp.nextpayload", uint8(next))
		f.add("isakmp.payloadlength", GenericLen+len(body))
		f.add("isakmp.criticalpayload", 0)
		payloadFields(f, p, sealedOpen)
	}
}

func payloadFields(f fieldList, p Payload, sealedOpen bool) {
	switch p := p.(type) {
	case *SA:
		saFields(f, p)
	case *KE:
		f.add("isakmp.key_exchange.dh_group", uint16(p.Group))
		f.add("isakmp.key_exchange.data", p.Data)
	case *Nonce:
		f.add("isakmp.nonce", p.Data)
	case *Notify:
		f.add("isakmp.notify.protoid", uint8(p.Protocol))
		f.add("isakmp.spisize", len(p.SPI))
		if len(p.SPI) > 0 {
			f.add("isakmp.spi", p.SPI)
		}
		f.add("isakmp.notify.msgtype", uint16(p.NotifyType))
		if len(p.Data) > 0 {
			f.add("isakmp.notify.data", p.Data)
		}
	case *ID:
		f.add("isakmp.id.type", uint8(p.IDType))
		switch p.IDType {
		case IDIPv4Addr, IDIPv6Addr:
			a, _ := p.Addr()
			k := "isakmp.id.data.ipv4_addr"
			if a.Is6() {
				k = "isakmp.id.data.ipv6_addr"
			}
			f.add(k, a.String())
		case IDFQDN:
			f.add("isakmp.id.data.fqdn", string(p.Data))
		}
	case *Cert:
		f.add("isakmp.cert.encoding", uint8(p.Encoding))
	case *CertReq:
		f.add("isakmp.certreq.type", uint8(p.Encoding))
	case *Auth:
		f.add("isakmp.auth.method", uint8(p.Method))
		f.add("isakmp.auth.data", p.Data)
	case *TS:
		f.add("isakmp.ts.number", len(p.Selectors))
		for _, s := range p.Selectors {
			f.add("isakmp.ts.type", uint8(s.Type))
			f.add("isakmp.ts.protoid", s.Protocol)
			v := "ipv4"
			n := 16
			if s.Type == TSIPv6Range {
				v, n = "ipv6", 40
			}
			f.add("isakmp.ts.selector_length", n)
			f.add("isakmp.ts.start_port", s.StartPort)
			f.add("isakmp.ts.end_port", s.EndPort)
			f.add("isakmp.ts.start_"+v, s.Start.String())
			f.add("isakmp.ts.end_"+v, s.End.String())
		}
	case *Delete:
		f.add("isakmp.delete.protoid", uint8(p.Protocol))
		f.add("isakmp.spisize", p.SPISize)
		f.add("isakmp.spinum", len(p.SPIs))
		for _, s := range p.SPIs {
			f.add("isakmp.delete.spi", s)
		}
	case *VendorID:
		f.add("isakmp.vid_bytes", p.Data)
	case *Config:
		f.add("isakmp.cfg.type", uint8(p.CfgType))
		for _, a := range p.Attributes {
			f.add("isakmp.cfg.attr.type", uint16(a.Type))
			f.add("isakmp.cfg.attr.length", len(a.Value))
		}
	case *EncryptedFragment:
		if !sealedOpen { // tshark shows the numbers in any case; opened ones are added by messageFields
			f.add("isakmp.frag.number", p.Number)
			f.add("isakmp.frag.total", p.Total)
		}
	}
}

func saFields(f fieldList, p *SA) {
	for i, pr := range p.Proposals {
		np := 2
		if i == len(p.Proposals)-1 {
			np = 0
		}
		f.add("isakmp.nextpayload", np)
		l := proposalHdrLen + len(pr.SPI)
		for _, t := range pr.Transforms {
			l += transformLen(t)
		}
		f.add("isakmp.payloadlength", l)
		f.add("isakmp.prop.number", pr.Number)
		f.add("isakmp.prop.protoid", uint8(pr.Protocol))
		f.add("isakmp.spisize", len(pr.SPI))
		if len(pr.SPI) > 0 {
			f.add("isakmp.spi", pr.SPI)
		}
		f.add("isakmp.prop.transforms", len(pr.Transforms))
		for j, t := range pr.Transforms {
			np := 3
			if j == len(pr.Transforms)-1 {
				np = 0
			}
			f.add("isakmp.nextpayload", np)
			f.add("isakmp.payloadlength", transformLen(t))
			f.add("isakmp.tf.type", uint8(t.Type))
			if k, ok := map[TransformType]string{TransformENCR: "encr", TransformPRF: "prf", TransformINTEG: "integ", TransformDH: "dh", TransformESN: "esn"}[t.Type]; ok {
				f.add("isakmp.tf.id."+k, t.ID)
			}
			if k, ok := t.KeyLength(); ok {
				f.add("isakmp.ike2.attr.key_length", k)
			}
		}
	}
}

func transformLen(t Transform) int {
	n := transformHdrLen
	for _, a := range t.Attributes {
		n += 4
		if !a.TV {
			n += len(a.Data)
		}
	}
	return n
}

var _ = strconv.Itoa
