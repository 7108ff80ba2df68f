// Package decode reads a packet capture (pcap or pcapng) of IKEv1 and
// IPsec traffic and tells its story: every ISAKMP SA and quick mode (who
// proposed what, what was chosen, IDs, NAT-D verdicts, notifies), decrypted
// with the keys of a key log where they are available, with the reason a
// negotiation failed in plain words, and a summary of the ESP/AH flows
// (decrypted inner 5-tuples, sequence gaps and replays).
//
// One mechanism per file: reader.go (capture files and link layers),
// reassembly.go (IPv4 and fragments), classify.go (IKE, NAT-keepalive,
// ESP, AH), keys.go (key sources), ikecrypt.go (phase 1 ciphers and IVs),
// ikestory.go / ikeverdict.go (the exchanges and their explanation),
// espflows.go (ESP/AH), output.go (text and JSON). See docs/decode.md.
//
// Every input is untrusted: a damaged or unknown packet is counted and
// shown, never a panic.
package decode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Frame is one captured frame: its number (1-based, as in Wireshark), time,
// link type and bytes.
type Frame struct {
	N    int
	Time time.Time
	Link layers.LinkType
	Data []byte
}

// frameSource yields frames until io.EOF.
type frameSource interface {
	next() (Frame, error)
}

// MaxFrames bounds how many frames one capture may hold (a hostile file
// cannot make the decoder run forever).
const MaxFrames = 5_000_000

var (
	pcapMagics = [][]byte{
		{0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0xc3, 0xd4}, // microseconds
		{0x4d, 0x3c, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d}, // nanoseconds
	}
	pcapngMagic = []byte{0x0a, 0x0d, 0x0d, 0x0a}
)

// ErrNotCapture means the input is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a pcap or pcapng file (unknown magic number)")

// openCapture detects the format from the first bytes.
func openCapture(r io.Reader) (frameSource, string, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, "", fmt.Errorf("reading the file header: %w", ErrNotCapture)
	}
	if bytes.Equal(magic, pcapngMagic) {
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{SkipUnknownVersion: true})
		if err != nil {
			return nil, "", fmt.Errorf("pcapng: %w", err)
		}
		return &ngSource{r: ng}, "pcapng", nil
	}
	for _, m := range pcapMagics {
		if bytes.Equal(magic, m) {
			pr, err := pcapgo.NewReader(br)
			if err != nil {
				return nil, "", fmt.Errorf("pcap: %w", err)
			}
			return &pcapSource{r: pr}, "pcap", nil
		}
	}
	return nil, "", ErrNotCapture
}

type pcapSource struct {
	r *pcapgo.Reader
	n int
}

func (s *pcapSource) next() (Frame, error) {
	data, ci, err := s.r.ReadPacketData()
	if err != nil {
		return Frame{}, err
	}
	s.n++
	return Frame{N: s.n, Time: ci.Timestamp, Link: s.r.LinkType(), Data: data}, nil
}

type ngSource struct {
	r *pcapgo.NgReader
	n int
}

func (s *ngSource) next() (Frame, error) {
	data, ci, err := s.r.ReadPacketData()
	if err != nil {
		return Frame{}, err
	}
	s.n++
	link := s.r.LinkType()
	if ifc, err := s.r.Interface(ci.InterfaceIndex); err == nil {
		link = ifc.LinkType
	}
	return Frame{N: s.n, Time: ci.Timestamp, Link: link, Data: data}, nil
}

// Link types beyond gopacket's constants (tcpdump.org LINKTYPE_ values).
const (
	linkIPv4      layers.LinkType = 228
	linkLinuxSLL2 layers.LinkType = 276
)

const (
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
	etherTypeQinQ = 0x88a8
)

// networkLayer strips the link layer: it returns the IPv4 packet inside a
// frame, or why there is none (a short reason for the counters).
func networkLayer(f Frame) ([]byte, string) {
	b := f.Data
	switch f.Link {
	case layers.LinkTypeEthernet:
		if len(b) < 14 {
			return nil, "truncated Ethernet header"
		}
		et := int(b[12])<<8 | int(b[13])
		b = b[14:]
		for i := 0; (et == etherTypeVLAN || et == etherTypeQinQ) && i < 4; i++ {
			if len(b) < 4 {
				return nil, "truncated VLAN tag"
			}
			et = int(b[2])<<8 | int(b[3])
			b = b[4:]
		}
		return byEtherType(et, b)
	case layers.LinkTypeLinuxSLL:
		if len(b) < 16 {
			return nil, "truncated Linux cooked (v1) header"
		}
		return byEtherType(int(b[14])<<8|int(b[15]), b[16:])
	case linkLinuxSLL2:
		if len(b) < 20 {
			return nil, "truncated Linux cooked (v2) header"
		}
		return byEtherType(int(b[0])<<8|int(b[1]), b[20:])
	case layers.LinkTypeRaw, 12, linkIPv4: // 12: LINKTYPE_RAW on OpenBSD
		return byVersion(b)
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(b) < 4 {
			return nil, "truncated loopback header"
		}
		return byVersion(b[4:])
	}
	return nil, fmt.Sprintf("link type %d not supported", int(f.Link))
}

func byEtherType(et int, b []byte) ([]byte, string) {
	switch et {
	case etherTypeIPv4:
		return b, ""
	case etherTypeIPv6:
		return nil, "IPv6 (not decoded)"
	case 0x0806:
		return nil, "ARP"
	}
	return nil, fmt.Sprintf("ethertype %#04x", et)
}

func byVersion(b []byte) ([]byte, string) {
	if len(b) == 0 {
		return nil, "empty packet"
	}
	switch b[0] >> 4 {
	case 4:
		return b, ""
	case 6:
		return nil, "IPv6 (not decoded)"
	}
	return nil, fmt.Sprintf("IP version %d", b[0]>>4)
}
