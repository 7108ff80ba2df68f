package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/esp"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// ESPReport summarises one ESP or AH SA (one direction, one SPI).
type ESPReport struct {
	Protocol   string `json:"protocol"` // ESP, ESP-in-UDP, AH
	SPI        string `json:"spi"`
	Src        string `json:"src"`
	Dst        string `json:"dst"`
	Packets    int    `json:"packets"`
	Bytes      int    `json:"bytes"`
	First      string `json:"first"`
	Last       string `json:"last"`
	SeqFirst   uint32 `json:"seq_first"`
	SeqLast    uint32 `json:"seq_last"`
	Gaps       int    `json:"seq_missing"`  // sequence numbers never seen between the lowest and highest
	Replays    int    `json:"seq_replayed"` // sequence numbers seen more than once
	Reordered  int    `json:"seq_reordered"`
	Key        string `json:"key,omitempty"` // source of the key used
	Decrypted  int    `json:"decrypted"`
	Failed     int    `json:"failed"` // ICV, padding or late beyond the window
	FailReason string `json:"fail_reason,omitempty"`
	Note       string `json:"note,omitempty"` // why nothing was decrypted
	Flows      []Flow `json:"inner_flows,omitempty"`
}

// Flow is one inner 5-tuple.
type Flow struct {
	Proto   string `json:"proto"`
	Src     string `json:"src"`
	Dst     string `json:"dst"`
	Packets int    `json:"packets"`
	Bytes   int    `json:"bytes"`
	First   string `json:"first"`
	Last    string `json:"last"`
}

type saKey struct {
	proto    string
	spi      uint32
	src, dst string
}

type espSA struct {
	r      ESPReport
	seen   map[uint32]bool
	maxSeq uint32
	first  time.Time
	last   time.Time
	open   espOpener
	tried  bool
	flows  map[string]*Flow
	order  []string
}

type espDecoder struct {
	keys  *Keys
	sas   map[saKey]*espSA
	order []saKey
	buf   []byte
}

func newESPDecoder(k *Keys) *espDecoder {
	return &espDecoder{keys: k, sas: map[saKey]*espSA{}, buf: make([]byte, 0, 65536)}
}

func (dec *espDecoder) add(p packet) {
	proto := "ESP"
	if p.kind == kindAH {
		proto = "AH"
	} else if p.src.Port() != 0 {
		proto = "ESP-in-UDP"
	}
	spi := binary.BigEndian.Uint32(p.data[0:4])
	seqOff := 4
	if p.kind == kindAH {
		spi, seqOff = binary.BigEndian.Uint32(p.data[4:8]), 8
	}
	seq := binary.BigEndian.Uint32(p.data[seqOff : seqOff+4])
	k := saKey{proto, spi, p.src.String(), p.dst.String()}
	s := dec.sas[k]
	if s == nil {
		s = &espSA{r: ESPReport{Protocol: proto, SPI: fmt.Sprintf("0x%08x", spi), Src: k.src, Dst: k.dst, SeqFirst: seq},
			seen: map[uint32]bool{}, first: p.d.Time, flows: map[string]*Flow{}}
		dec.sas[k] = s
		dec.order = append(dec.order, k)
	}
	s.r.Packets++
	s.r.Bytes += len(p.data)
	s.last = p.d.Time
	if s.seen[seq] {
		s.r.Replays++
		return
	}
	if seq < s.maxSeq {
		s.r.Reordered++
	}
	s.seen[seq] = true
	if seq > s.maxSeq {
		s.maxSeq = seq
	}
	if p.kind == kindAH {
		dec.ah(s, p)
		return
	}
	dec.esp(s, p, spi)
}

// ah reads the inner packet behind an AH header (no keys needed: AH does
// not encrypt; the ICV is not verified, AH keys are in no key log).
func (dec *espDecoder) ah(s *espSA, p packet) {
	n := (int(p.data[1]) + 2) * 4
	if n > len(p.data) {
		s.r.Failed++
		s.r.FailReason = "AH header length beyond the packet"
		return
	}
	s.r.Note = "AH: inner packets read without verifying the ICV"
	s.r.Decrypted++
	s.addFlow(p, p.data[0], p.data[n:])
}

func (dec *espDecoder) esp(s *espSA, p packet, spi uint32) {
	if !s.tried {
		s.tried = true
		s.open, s.r.Key, s.r.Note = dec.opener(spi, p)
	}
	if s.open == nil {
		return
	}
	pt, nh, err := s.open.OpenESP(dec.buf[:0], p.data)
	if err != nil {
		s.r.Failed++
		var dr esp.DropReason
		if errors.As(err, &dr) {
			s.r.FailReason = dr.String()
		} else {
			s.r.FailReason = err.Error()
		}
		return
	}
	s.r.Decrypted++
	s.addFlow(p, nh, pt)
}

// opener builds an inbound SA from the key of this SPI: the esp package's
// transforms (AES-CBC, AES-GCM-16, NULL with HMAC-SHA1/SHA2), else the
// read-only legacy ones (DES, 3DES, HMAC-MD5).
func (dec *espDecoder) opener(spi uint32, p packet) (espOpener, string, string) {
	ks := dec.keys.espKeysFor(spi, p.src.Addr().String(), p.dst.Addr().String())
	if len(ks) == 0 {
		return nil, "", "no key for this SPI"
	}
	var why string
	for _, k := range ks {
		c := childsa.SA{SPI: spi, Protocol: isakmp.ProtoESP, Encryption: k.Encryption, EncKey: k.EncKey, Integrity: k.Integrity, IntegKey: k.AuthKey}
		if k.Encryption == 0 || k.Integrity == 0xffff {
			why = fmt.Sprintf("%s: algorithm %q / %q is not supported by the decoder", k.Source, k.EncName, k.AuthName)
			continue
		}
		sa, err := esp.New(esp.Config{SA: c, Direction: esp.Inbound, Mode: childsa.ModeTunnel, ReplayWindow: 2048, AllowEncryptionOnly: true})
		if err == nil {
			return sa, k.Source, ""
		}
		if l, lerr := newLegacyESP(spi, k); lerr == nil {
			return l, k.Source + " (legacy algorithm, read-only)", ""
		}
		why = fmt.Sprintf("%s: %v", k.Source, err)
	}
	return nil, "", why
}

func (s *espSA) addFlow(p packet, nh byte, inner []byte) {
	proto, src, dst, sport, dport := nh, p.d.Src.String(), p.d.Dst.String(), -1, -1
	payload := inner
	if nh == 4 {
		d, _, off, more, err := parseIPv4(inner)
		if err != nil {
			s.r.Failed++
			s.r.FailReason = "inner IPv4 header damaged"
			return
		}
		proto, src, dst, payload = d.Proto, d.Src.String(), d.Dst.String(), d.Payload
		if off != 0 || more {
			payload = nil // a fragment: no ports
		}
	}
	if (proto == 6 || proto == 17) && len(payload) >= 4 {
		sport, dport = int(binary.BigEndian.Uint16(payload[0:2])), int(binary.BigEndian.Uint16(payload[2:4]))
	}
	name := protoName(proto)
	if sport >= 0 {
		src, dst = fmt.Sprintf("%s:%d", src, sport), fmt.Sprintf("%s:%d", dst, dport)
	}
	key := name + " " + src + " " + dst
	f := s.flows[key]
	ts := p.d.Time.UTC().Format("15:04:05.000000")
	if f == nil {
		f = &Flow{Proto: name, Src: src, Dst: dst, First: ts}
		s.flows[key] = f
		s.order = append(s.order, key)
	}
	f.Packets++
	f.Bytes += len(inner)
	f.Last = ts
}

func protoName(p byte) string {
	switch p {
	case 1:
		return "ICMP"
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 41:
		return "IPv6"
	case 59:
		return "none"
	}
	return fmt.Sprintf("proto-%d", p)
}

func (dec *espDecoder) reports() []ESPReport {
	var out []ESPReport
	for _, k := range dec.order {
		s := dec.sas[k]
		s.r.First = s.first.UTC().Format("15:04:05.000000")
		s.r.Last = s.last.UTC().Format("15:04:05.000000")
		s.r.SeqLast = s.maxSeq
		lo := s.r.SeqFirst
		for q := range s.seen {
			if q < lo {
				lo = q
			}
		}
		s.r.SeqFirst = lo
		s.r.Gaps = int(uint64(s.maxSeq)-uint64(lo)+1) - len(s.seen)
		for _, key := range s.order {
			s.r.Flows = append(s.r.Flows, *s.flows[key])
		}
		sort.SliceStable(s.r.Flows, func(i, j int) bool { return s.r.Flows[i].Packets > s.r.Flows[j].Packets })
		out = append(out, s.r)
	}
	return out
}
