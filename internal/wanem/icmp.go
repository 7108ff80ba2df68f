package wanem

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/vpnlab/vpnlab/natt"
)

// ICMP fragmentation-needed, corruption and UDP GSO segmentation: the
// packet surgery of the pipeline.

// fragNeeded answers a packet too big for d's MTU, with DF set, by ICMP
// destination unreachable, fragmentation needed (type 3 code 4, RFC 792,
// with the next-hop MTU of RFC 1191 section 4) from the router's address
// on the ingress link, quoting as much of the packet as fits in 576 bytes.
func (w *worker) fragNeeded(d *direction, frame []byte) {
	if w.nicmp == len(w.icmp) || !d.in.addr.IsValid() {
		return
	}
	ip := frame[hdrRoom:]
	if ip[9] == 1 && len(ip) > int(ip[0]&0x0f)*4 && ip[int(ip[0]&0x0f)*4] == 3 {
		return // never an ICMP error about an ICMP error (RFC 1122 3.2.2)
	}
	buf := w.icmp[w.nicmp][:]
	w.nicmp++
	quote := min(len(ip), icmpMax-28)
	n := vnetLen + ethLen + 28 + quote
	clear(buf[:vnetLen])
	eth := buf[vnetLen:]
	in := frame[vnetLen:]
	copy(eth[0:6], in[6:12]) // back to the sender's next hop
	copy(eth[6:12], d.in.mac[:])
	binary.BigEndian.PutUint16(eth[12:14], unix.ETH_P_IP)
	h := eth[ethLen:]
	h[0], h[1] = 0x45, 0xc0 // DSCP CS6, as Linux sends ICMP errors
	binary.BigEndian.PutUint16(h[2:4], uint16(28+quote))
	binary.BigEndian.PutUint16(h[4:6], 0)
	binary.BigEndian.PutUint16(h[6:8], 0)
	h[8], h[9] = 64, 1
	h[10], h[11] = 0, 0
	src := d.in.addr.As4()
	copy(h[12:16], src[:])
	copy(h[16:20], ip[12:16])
	binary.BigEndian.PutUint16(h[10:12], ^natt.Sum(h[:20]))
	m := h[20:]
	m[0], m[1], m[2], m[3], m[4], m[5] = 3, 4, 0, 0, 0, 0
	binary.BigEndian.PutUint16(m[6:8], uint16(d.im.MTU))
	copy(m[8:], ip[:quote])
	binary.BigEndian.PutUint16(m[2:4], ^natt.Sum(m[:8+quote]))
	if w.txBack.n == batchMax {
		w.flushOne(w.txBack)
	}
	w.txBack.add(buf[:n], nil)
	d.c.ICMPSent.Add(1)
}

// corrupt flips one random bit in the payload after the ESP header's SPI
// and sequence number, or after the ISAKMP header, so that the receiver's
// ICV or HASH check fails rather than its IP or UDP checks: a complete
// UDP checksum is updated to match. Other protocols are corrupted after
// their first 8 payload bytes. false: nothing to corrupt.
func corrupt(frame []byte, d *direction) bool {
	ip := frame[hdrRoom:]
	ihl := int(ip[0]&0x0f) * 4
	if binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
		return false // a later fragment: no header to find
	}
	off := ihl + 8 // ESP: SPI and sequence number; others: a header's worth
	if ip[9] == natt.ProtoUDP && len(ip) >= ihl+8 {
		sp, dp := binary.BigEndian.Uint16(ip[ihl:]), binary.BigEndian.Uint16(ip[ihl+2:])
		pl := ip[ihl+8:]
		switch {
		case sp == 500 || dp == 500:
			off = ihl + 8 + 28
		case (sp == 4500 || dp == 4500) && len(pl) >= 4 && binary.BigEndian.Uint32(pl) == 0:
			off = ihl + 8 + 4 + 28
		default: // ESP in UDP, or another UDP payload
			off = ihl + 8 + 8
		}
	}
	if off >= len(ip) {
		return false
	}
	pos := off + d.rng.IntN(len(ip)-off)
	wpos := ihl + (pos-ihl)&^1 // the 16-bit word of the UDP checksum holding pos
	var old uint16
	if wpos+1 < len(ip) {
		old = binary.BigEndian.Uint16(ip[wpos:])
	} else {
		old = uint16(ip[wpos]) << 8
	}
	ip[pos] ^= 1 << d.rng.IntN(8)
	if ip[9] == natt.ProtoUDP && frame[0]&needsCsum == 0 {
		c := binary.BigEndian.Uint16(ip[ihl+6:])
		if c != 0 {
			var nw uint16
			if wpos+1 < len(ip) {
				nw = binary.BigEndian.Uint16(ip[wpos:])
			} else {
				nw = uint16(ip[wpos]) << 8
			}
			c = natt.UpdateWord(c, old, nw)
			if c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(ip[ihl+6:], c)
		}
	}
	return true
}

// segmentUDP splits a UDP GSO super-packet (UDP_SEGMENT from the sender)
// into its datagrams, each with its own IP header (length, ID, checksum)
// and a complete UDP checksum, and runs each through the pipeline: an
// impairment acts on datagrams, as on a real link.
func (w *worker) segmentUDP(d *direction, frame []byte, now int64) {
	f := w.f
	ip := frame[hdrRoom:]
	ihl := int(ip[0]&0x0f) * 4
	gso := int(binary.LittleEndian.Uint16(frame[4:6]))
	if len(ip) < ihl+8 || gso == 0 {
		return
	}
	hdr := frame[:hdrRoom+ihl+8]
	payload := ip[ihl+8:]
	id := binary.BigEndian.Uint16(ip[4:6])
	src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	for i, off := 0, 0; off < len(payload); i, off = i+1, off+gso {
		seg := payload[off:min(off+gso, len(payload))]
		p := f.pool.get(len(hdr) + len(seg))
		if p == nil {
			d.c.DroppedQueue.Add(1)
			continue
		}
		copy(p.buf, hdr)
		p.n = len(hdr) + copy(p.buf[len(hdr):], seg)
		clear(p.buf[:vnetLen])
		q := p.buf[hdrRoom:p.n]
		binary.BigEndian.PutUint16(q[2:4], uint16(len(q)))
		binary.BigEndian.PutUint16(q[4:6], id+uint16(i))
		q[10], q[11] = 0, 0
		binary.BigEndian.PutUint16(q[10:12], ^natt.Sum(q[:ihl]))
		u := q[ihl:]
		binary.BigEndian.PutUint16(u[4:6], uint16(len(u)))
		if c, ok := natt.Checksum(src, dst, natt.ProtoUDP, u); ok {
			binary.BigEndian.PutUint16(u[6:8], c)
		}
		w.one(d, p.frame(), p, now)
	}
}
