package decode

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"time"
)

// Datagram is one IPv4 datagram, reassembled if it came in fragments.
type Datagram struct {
	Frame     int // frame of the first (or only) fragment
	LastFrame int // frame that completed it
	Time      time.Time
	Src, Dst  netip.Addr
	Proto     uint8
	Payload   []byte // after the IPv4 header
	Fragments int    // 0 when not fragmented
}

// Reassembly limits: a datagram has at most 64 KiB, at most maxFragParts
// parts, and at most maxPending datagrams wait for their missing fragments.
const (
	maxFragParts = 128
	maxPending   = 1024
	maxIPv4Len   = 65535
)

type fragKey struct {
	src, dst netip.Addr
	proto    uint8
	id       uint16
}

type fragPart struct {
	off  int
	data []byte
	more bool
}

type pending struct {
	first     int
	last      int
	time      time.Time
	parts     []fragPart
	haveFinal bool
	total     int
}

// reassembler collects IPv4 fragments (RFC 791); overlapping fragments are
// accepted only when their bytes agree (RFC 5722's reasoning, applied to
// IPv4: a disagreement is a damaged or hostile datagram and is dropped).
type reassembler struct {
	pending map[fragKey]*pending
	order   []fragKey
}

func newReassembler() *reassembler {
	return &reassembler{pending: map[fragKey]*pending{}}
}

// parseIPv4 checks an IPv4 header; it returns the datagram (payload not
// yet reassembled), the fragment offset and more-fragments flag.
func parseIPv4(b []byte) (d Datagram, id uint16, off int, more bool, err error) {
	if len(b) < 20 {
		return d, 0, 0, false, fmt.Errorf("truncated IPv4 header (%d bytes)", len(b))
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || ihl > len(b) {
		return d, 0, 0, false, fmt.Errorf("IPv4 header length %d invalid for %d bytes", ihl, len(b))
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total < ihl {
		return d, 0, 0, false, fmt.Errorf("IPv4 total length %d shorter than its header", total)
	}
	if total > len(b) {
		return d, 0, 0, false, fmt.Errorf("IPv4 total length %d, only %d bytes captured", total, len(b))
	}
	id = binary.BigEndian.Uint16(b[4:6])
	fo := binary.BigEndian.Uint16(b[6:8])
	more = fo&0x2000 != 0
	off = int(fo&0x1fff) * 8
	d.Src = netip.AddrFrom4([4]byte(b[12:16]))
	d.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	d.Proto = b[9]
	d.Payload = b[ihl:total]
	return d, id, off, more, nil
}

// add takes one IPv4 packet; it returns a complete datagram (ok) or nil
// while fragments are missing. err reports a damaged packet.
func (r *reassembler) add(f Frame, pkt []byte) (Datagram, bool, error) {
	d, id, off, more, err := parseIPv4(pkt)
	if err != nil {
		return d, false, err
	}
	d.Frame, d.LastFrame, d.Time = f.N, f.N, f.Time
	if off == 0 && !more {
		return d, true, nil
	}
	if off+len(d.Payload) > maxIPv4Len {
		return d, false, fmt.Errorf("fragment at offset %d with %d bytes exceeds 65535", off, len(d.Payload))
	}
	k := fragKey{d.Src, d.Dst, d.Proto, id}
	p := r.pending[k]
	if p == nil {
		if len(r.pending) >= maxPending {
			r.evictOldest()
		}
		p = &pending{first: f.N, time: f.Time}
		r.pending[k] = p
		r.order = append(r.order, k)
	}
	if len(p.parts) >= maxFragParts {
		delete(r.pending, k)
		return d, false, fmt.Errorf("more than %d fragments for IP ID %#04x", maxFragParts, id)
	}
	p.parts = append(p.parts, fragPart{off: off, data: append([]byte(nil), d.Payload...), more: more})
	p.last = f.N
	if !more {
		p.haveFinal, p.total = true, off+len(d.Payload)
	}
	if !p.haveFinal {
		return d, false, nil
	}
	full, complete, err := p.assemble()
	if err != nil {
		delete(r.pending, k)
		return d, false, err
	}
	if !complete {
		return d, false, nil
	}
	delete(r.pending, k)
	d.Frame, d.LastFrame, d.Time = p.first, p.last, p.time
	d.Payload, d.Fragments = full, len(p.parts)
	return d, true, nil
}

// assemble checks coverage of [0, total) and builds the payload.
func (p *pending) assemble() ([]byte, bool, error) {
	parts := append([]fragPart(nil), p.parts...)
	sort.Slice(parts, func(i, j int) bool { return parts[i].off < parts[j].off })
	covered := 0
	for _, fp := range parts {
		if fp.off > covered {
			return nil, false, nil // a hole: wait for more
		}
		if end := fp.off + len(fp.data); end > covered {
			covered = end
		}
	}
	if covered < p.total {
		return nil, false, nil
	}
	if covered > p.total {
		return nil, false, fmt.Errorf("fragments extend to %d beyond the last fragment's end %d", covered, p.total)
	}
	out := make([]byte, p.total)
	set := make([]bool, p.total)
	for _, fp := range parts {
		for i, c := range fp.data {
			j := fp.off + i
			if set[j] && out[j] != c {
				return nil, false, fmt.Errorf("overlapping fragments disagree at offset %d", j)
			}
			out[j], set[j] = c, true
		}
	}
	return out, true, nil
}

func (r *reassembler) evictOldest() {
	for len(r.order) > 0 {
		k := r.order[0]
		r.order = r.order[1:]
		if _, ok := r.pending[k]; ok {
			delete(r.pending, k)
			return
		}
	}
}

// incomplete returns how many datagrams still miss fragments at the end.
func (r *reassembler) incomplete() int { return len(r.pending) }
