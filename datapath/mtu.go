package datapath

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/esp"
	"github.com/vpnlab/vpnlab/natt"
)

// Per-tunnel handling of packet sizes on the way into a tunnel: TCP MSS
// clamping of SYNs, and packets larger than the tunnel can carry (RFC 4301
// section 8): with DF set the inside sender gets ICMP fragmentation-needed
// with the largest inner size that fits; without DF the packet is
// fragmented before encryption (as AWS's generic configuration says,
// fragmentation_before_encryption), each fragment in its own ESP packet.

// TunnelOptions are a tunnel's data-path options (SetTunnelOptions).
type TunnelOptions struct {
	// MSSClamp lowers the MSS option of TCP SYNs entering the tunnel to
	// this value (0: off). AWS's generic configuration uses 1379.
	MSSClamp int
	// OutsideMTU is the largest outer packet the tunnel may send (0: 1500).
	OutsideMTU int
}

// Defaults and limits of TunnelOptions.
const (
	DefaultOutsideMTU = 1500
	MinOutsideMTU     = 576
	MaxOutsideMTU     = 9000
	AWSMSSClamp       = 1379 // AWS generic configuration: tcp_mss_adjustment
	MinMSSClamp       = 88   // RFC 6691's minimum MSS for IPv4 (536) is what senders honour; 88 allows tests
	MaxMSSClamp       = 65495
)

// tunnelOpts is a tunnel's options as the packet path reads them; shared by
// the tunnel's pairs, changed in place.
type tunnelOpts struct {
	mss atomic.Uint32
	mtu atomic.Uint32
}

// SetTunnelOptions sets a tunnel's data-path options; it applies at once to
// its installed pairs and to the pairs installed later.
func (d *DataPath) SetTunnelOptions(tunnel string, o TunnelOptions) error {
	if o.MSSClamp != 0 && (o.MSSClamp < MinMSSClamp || o.MSSClamp > MaxMSSClamp) {
		return fmt.Errorf("datapath: %s: mss clamp %d is not in %d..%d", tunnel, o.MSSClamp, MinMSSClamp, MaxMSSClamp)
	}
	if o.OutsideMTU == 0 {
		o.OutsideMTU = DefaultOutsideMTU
	}
	if o.OutsideMTU < MinOutsideMTU || o.OutsideMTU > MaxOutsideMTU {
		return fmt.Errorf("datapath: %s: outside mtu %d is not in %d..%d", tunnel, o.OutsideMTU, MinOutsideMTU, MaxOutsideMTU)
	}
	d.mu.Lock()
	t := d.optsLocked(tunnel)
	d.mu.Unlock()
	t.mss.Store(uint32(o.MSSClamp))
	t.mtu.Store(uint32(o.OutsideMTU))
	return nil
}

// optsLocked returns the tunnel's options (created with the defaults).
func (d *DataPath) optsLocked(tunnel string) *tunnelOpts {
	t := d.tunOpts[tunnel]
	if t == nil {
		t = &tunnelOpts{}
		t.mtu.Store(DefaultOutsideMTU)
		d.tunOpts[tunnel] = t
	}
	return t
}

// clampMSS lowers the MSS option of an IPv4 TCP SYN (or SYN-ACK) above mss
// and fixes the TCP checksum incrementally (RFC 1624). It reports whether
// it changed the packet.
func clampMSS(pkt []byte, mss uint16) bool {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != natt.ProtoTCP || binary.BigEndian.Uint16(pkt[6:8])&0x1fff != 0 {
		return false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || len(pkt) < ihl+20 {
		return false
	}
	tcp := pkt[ihl:]
	if tcp[13]&0x02 == 0 { // SYN
		return false
	}
	doff := int(tcp[12]>>4) * 4
	if doff < 20 || doff > len(tcp) {
		return false
	}
	opts := tcp[20:doff]
	for i := 0; i < len(opts); {
		switch kind := opts[i]; kind {
		case 0: // end of options
			return false
		case 1: // no-op
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			return false // malformed: leave it to the receiver
		}
		if opts[i] == 2 && opts[i+1] == 4 {
			old := binary.BigEndian.Uint16(opts[i+2:])
			if old <= mss {
				return false
			}
			binary.BigEndian.PutUint16(opts[i+2:], mss)
			// The MSS value sits at an even offset from the TCP header
			// (options start at 20; kind and length take the first word
			// only if i is even): update the word that holds it.
			off := 20 + i + 2
			c := binary.BigEndian.Uint16(tcp[16:18])
			if off%2 == 0 {
				c = natt.UpdateWord(c, old, mss)
			} else {
				var next uint16 // the byte after the value (0: the checksum's padding)
				if off+2 < len(tcp) {
					next = uint16(tcp[off+2])
				}
				c = natt.UpdateWord(c, uint16(tcp[off-1])<<8|old>>8, uint16(tcp[off-1])<<8|mss>>8)
				c = natt.UpdateWord(c, (old&0xff)<<8|next, (mss&0xff)<<8|next)
			}
			binary.BigEndian.PutUint16(tcp[16:18], c)
			return true
		}
		i += int(opts[i+1])
	}
	return false
}

// outerOverhead is what the pair adds around an ESP packet: outer IPv4
// header, and the UDP header in ESP-in-UDP.
func (p *pair) outerOverhead() int {
	if p.udpEncap {
		return esp.IPv4HeaderLen + 8
	}
	return esp.IPv4HeaderLen
}

// innerLimit is the largest inner packet whose ESP tunnel-mode packet fits
// in mtu (the value for ICMP fragmentation-needed: RFC 4301 section 8.2.1
// reports the PMTU minus the IPsec overhead).
func (p *pair) innerLimit(mtu int) int {
	room := mtu - p.outerOverhead()
	n := room - 8 // SPI and sequence number at least
	for n > 0 && p.out.ESPLen(n) > room {
		n--
	}
	return n
}

// tooBig handles an IPv4 tunnel-mode ESP packet that its pair cannot carry
// in one outer packet: it reports false when the packet fits; otherwise it
// answers or fragments it and reports true.
func (d *DataPath) tooBig(w *worker, b *udpBatch, p *pair, pkt []byte) bool {
	if p.proto != protoESP || p.mode != childsa.ModeTunnel || pkt[0]>>4 != 4 || p.opts == nil {
		return false
	}
	mtu := int(p.opts.mtu.Load())
	if p.out.ESPLen(len(pkt))+p.outerOverhead() <= mtu {
		return false
	}
	limit := p.innerLimit(mtu)
	if binary.BigEndian.Uint16(pkt[6:8])&0x4000 != 0 { // DF
		d.fragNeeded(w, p, pkt, limit)
		return true
	}
	d.fragment(w, b, p, pkt, limit)
	return true
}

// fragNeeded writes ICMP destination unreachable, fragmentation needed
// (type 3 code 4, next-hop MTU = limit; RFC 792, RFC 1191) about pkt to
// the inside device. Its source is pkt's destination: the gateway sits
// behind its TUN device, and the kernel refuses its own addresses as the
// source of a packet arriving from it.
func (d *DataPath) fragNeeded(w *worker, p *pair, pkt []byte, limit int) {
	if pkt[9] == 1 && len(pkt) > int(pkt[0]&0x0f)*4 && pkt[int(pkt[0]&0x0f)*4] == 3 {
		return // no ICMP error about an ICMP error (RFC 1122 3.2.2)
	}
	ihl := int(pkt[0]&0x0f) * 4
	quote := min(len(pkt), ihl+8, 576-28) // the header and 8 bytes (RFC 792)
	m := w.buf[writeOffset : writeOffset+28+quote]
	m[0], m[1] = 0x45, 0
	binary.BigEndian.PutUint16(m[2:4], uint16(len(m)))
	binary.BigEndian.PutUint32(m[4:8], 0)
	m[8], m[9], m[10], m[11] = 64, 1, 0, 0
	copy(m[12:16], pkt[16:20])
	copy(m[16:20], pkt[12:16])
	binary.BigEndian.PutUint16(m[10:12], ^natt.Sum(m[:20]))
	c := m[20:]
	c[0], c[1], c[2], c[3], c[4], c[5] = 3, 4, 0, 0, 0, 0
	binary.BigEndian.PutUint16(c[6:8], uint16(limit))
	copy(c[8:], pkt[:quote])
	binary.BigEndian.PutUint16(c[2:4], ^natt.Sum(c[:8+quote]))
	p.icmpSent.Add(1)
	d.writeInside(w, m)
}

// fragment splits an IPv4 packet without DF into fragments of at most
// limit bytes (RFC 791: payload offsets in units of 8; options are copied
// into every fragment only if their copy flag is set, here: all fragments
// carry the first fragment's header when it has no options) and sends
// each through the tunnel.
func (d *DataPath) fragment(w *worker, b *udpBatch, p *pair, pkt []byte, limit int) {
	ihl := int(pkt[0]&0x0f) * 4
	if ihl != esp.IPv4HeaderLen {
		// Options would need per-option copy rules: not fragmented here.
		d.sendFailed(p, fmt.Errorf("packet of %d bytes with IP options does not fit the tunnel (limit %d)", len(pkt), limit))
		return
	}
	step := (limit - ihl) &^ 7
	if step <= 0 {
		d.sendFailed(p, fmt.Errorf("tunnel limit %d too small to fragment", limit))
		return
	}
	fo := binary.BigEndian.Uint16(pkt[6:8])
	baseOff, moreAfter := int(fo&0x1fff)*8, fo&0x2000 != 0
	data := pkt[ihl:]
	p.fragBefore.Add(1)
	for off := 0; off < len(data); off += step {
		end := min(off+step, len(data))
		f := w.frag[:ihl+end-off]
		copy(f, pkt[:ihl])
		copy(f[ihl:], data[off:end])
		binary.BigEndian.PutUint16(f[2:4], uint16(len(f)))
		flags := uint16((baseOff + off) / 8)
		if end < len(data) || moreAfter {
			flags |= 0x2000
		}
		binary.BigEndian.PutUint16(f[6:8], flags)
		f[10], f[11] = 0, 0
		binary.BigEndian.PutUint16(f[10:12], ^natt.Sum(f[:ihl]))
		d.protectSend(w, b, p, f)
	}
}
