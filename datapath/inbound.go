package datapath

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/esp"
	"github.com/vpnlab/vpnlab/natt"
)

// ReceiveIP verifies and decapsulates an IPv4 packet carrying ESP or AH
// (from a raw socket) and writes the inner packet to the device.
func (d *DataPath) ReceiveIP(pkt []byte) {
	w := d.getWorker()
	d.receiveIP(w, pkt)
	d.putWorker(w)
}

// ReceiveUDP verifies and decapsulates an ESP packet that arrived in UDP
// (RFC 3948) and writes the inner packet to the device.
func (d *DataPath) ReceiveUDP(local, from netip.AddrPort, espPkt []byte) {
	w := d.getWorker()
	d.receiveUDP(w, local, from, espPkt)
	d.putWorker(w)
}

// ReceiveIPs handles a batch of packets from a raw socket; their inner
// packets go to the device in one Write (which coalesces TCP segments).
func (d *DataPath) ReceiveIPs(pkts [][]byte) {
	for len(pkts) > MaxBatch {
		d.receiveIPs(pkts[:MaxBatch])
		pkts = pkts[MaxBatch:]
	}
	d.receiveIPs(pkts)
}

func (d *DataPath) receiveIPs(pkts [][]byte) {
	b := d.getBatch()
	b.wb = b.wb[:0]
	used := 0
	for _, pkt := range pkts {
		out := b.outs[used]
		if d.queueIP(&b.q, out, pkt) { // parallel decryption (workers_in.go)
			used++
		} else if inner := d.openIP(out, pkt); inner != nil {
			b.wb = append(b.wb, out[:writeOffset+len(inner)])
			used++
		}
	}
	b.wb = d.finishIn(&b.q, b.wb)
	if len(b.wb) > 0 {
		if _, err := d.dev.Write(b.wb, writeOffset); err != nil {
			d.dropGlobal(dropTunWrite, logrus.Fields{"error": err.Error()})
		}
	}
	select {
	case d.batches <- b:
	default: // more concurrent callers than kept batches: let it go
	}
}

// inBatch is the output side of a batch of received packets: one buffer
// per packet, so that the batch goes to the device in one Write.
type inBatch struct {
	outs [][]byte
	wb   [][]byte
	q    inQueue
}

// MaxBatch is the largest batch ReceiveIPs accepts.
const MaxBatch = 64

func (d *DataPath) getBatch() *inBatch {
	select {
	case b := <-d.batches:
		return b
	default:
	}
	b := &inBatch{wb: make([][]byte, 0, MaxBatch), q: newInQueue(MaxBatch)}
	for i := 0; i < MaxBatch; i++ {
		b.outs = append(b.outs, make([]byte, bufSize))
	}
	return b
}

func (d *DataPath) receiveIP(w *worker, pkt []byte) {
	if inner := d.openIP(w.buf, pkt); inner != nil {
		d.writeInside(w, inner)
	}
}

// openIP verifies and decapsulates one raw ESP/AH packet into
// buf[writeOffset:] and returns the inner packet, or nil if it was dropped
// (counted) or was a dummy packet.
func (d *DataPath) openIP(buf []byte, pkt []byte) []byte {
	if d.sink != nil {
		d.sink.IP(pkt)
	}
	if len(pkt) < esp.IPv4HeaderLen || pkt[0]>>4 != 4 {
		d.dropGlobal(dropMalformed, logrus.Fields{"len": len(pkt)})
		return nil
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < esp.IPv4HeaderLen || len(pkt) < ihl+12 {
		d.dropGlobal(dropMalformed, logrus.Fields{"len": len(pkt)})
		return nil
	}
	var proto uint8
	var spi uint32
	switch pkt[9] {
	case esp.ProtoESP:
		proto, spi = protoESP, binary.BigEndian.Uint32(pkt[ihl:ihl+4])
	case esp.ProtoAH:
		proto, spi = protoAH, binary.BigEndian.Uint32(pkt[ihl+4:ihl+8])
	default:
		d.dropGlobal(dropMalformed, logrus.Fields{"protocol": pkt[9]})
		return nil
	}
	p := d.inboundPair(proto, spi, netip.AddrFrom4([4]byte(pkt[12:16])))
	if p == nil {
		return nil
	}
	out := buf[writeOffset:writeOffset]
	var inner []byte
	var nh byte
	var err error
	p.inMu.Lock()
	switch {
	case proto == protoAH:
		inner, nh, err = p.in.VerifyAH(out, pkt)
	case p.mode == childsa.ModeTunnel:
		inner, nh, err = p.in.OpenESP(out, pkt[ihl:])
	default: // ESP transport: the outer header becomes the packet's header again
		out = append(out, pkt[:ihl]...)
		inner, nh, err = p.in.OpenESP(out, pkt[ihl:])
		if err == nil {
			err = esp.RewriteIPv4(inner[:ihl], nh, len(inner))
		}
	}
	p.inMu.Unlock()
	if err != nil {
		d.saDrop(p, err)
		return nil
	}
	if !d.accept(p, inner, nh, pkt[1]) {
		return nil
	}
	return inner
}

func (d *DataPath) receiveUDP(w *worker, local, from netip.AddrPort, espPkt []byte) {
	if inner := d.openUDP(w.buf, local, from, espPkt, 0); inner != nil {
		d.writeInside(w, inner)
	}
}

// openUDP verifies and decapsulates one ESP-in-UDP packet into
// buf[writeOffset:] and returns the inner packet, or nil if it was dropped
// (counted) or was a dummy packet. tos is the outer IPv4 header's TOS byte
// (0 if unknown).
func (d *DataPath) openUDP(buf []byte, local, from netip.AddrPort, espPkt []byte, tos byte) []byte {
	if len(espPkt) < 8 {
		d.dropGlobal(dropMalformed, logrus.Fields{"len": len(espPkt), "from": from.String()})
		return nil
	}
	spi := binary.BigEndian.Uint32(espPkt[0:4])
	seq := binary.BigEndian.Uint32(espPkt[4:8])
	p := d.inboundPair(protoESP, spi, from.Addr())
	if p == nil {
		return nil
	}
	out := buf[writeOffset:writeOffset]
	var inner []byte
	var nh byte
	var err error
	tunnel := p.mode == childsa.ModeTunnel
	p.inMu.Lock()
	if tunnel {
		inner, nh, err = p.in.OpenESP(out, espPkt)
	} else {
		// UDP-encapsulated transport: rebuild an IPv4 header from the
		// datagram's addresses (RFC 3948 section 3.2). It is the packet's
		// own header, so it keeps the outer TOS (ECN marks included).
		out = out[:esp.IPv4HeaderLen]
		putIPv4Header(out, from.Addr(), local.Addr(), 0)
		out[1] = tos
		inner, nh, err = p.in.OpenESP(out, espPkt)
		if err == nil {
			err = esp.RewriteIPv4(inner[:esp.IPv4HeaderLen], nh, len(inner))
		}
	}
	// Authentic and not a replay: does it carry the highest sequence
	// number so far? Only such a packet may move the peer, so that a
	// delayed packet from the old mapping does not move it back.
	newest := err == nil && seq > p.inTop
	if newest {
		p.inTop = seq
	}
	p.inMu.Unlock()
	if err != nil {
		d.saDrop(p, err)
		return nil
	}
	if newest && p.udpEncap {
		d.checkPeer(p, from)
	}
	if !tunnel && (nh == natt.ProtoTCP || nh == natt.ProtoUDP) {
		// RFC 3948 section 3.1.2: the sender computed its TCP/UDP checksum
		// over its own pseudo-header (its original address, ours as it saw
		// it: the NAT-OA payloads), the rebuilt header carries the NATed
		// ones. With NAT-OA: incremental update (procedure 1); without:
		// recomputed (procedure 2). A UDP checksum of 0 stays 0.
		natt.FixTransport(inner[esp.IPv4HeaderLen:], nh, from.Addr(), local.Addr(), p.origRemote, p.origLocal)
	}
	if !d.accept(p, inner, nh, tos) {
		return nil
	}
	return inner
}

// inboundPair finds the pair that verifies packets with this SPI; nil (the
// drop counted) for an unknown SPI or an SA past its hard limit.
func (d *DataPath) inboundPair(proto uint8, spi uint32, from netip.Addr) *pair {
	p := d.table.Load().inbound[spiKey(proto, spi)]
	if p == nil {
		d.noSA(proto, spi, from)
		return nil
	}
	if p.expired.Load() {
		d.expiredDrop(p)
		return nil
	}
	return p
}

// accept checks a verified inner packet against the selectors (and RFC 6040
// for tunnel mode) and does the pair's bookkeeping. false: dropped.
func (d *DataPath) accept(p *pair, inner []byte, nh byte, outerTOS byte) bool {
	if nh == esp.NextHdrNone {
		return false // dummy packet (RFC 4303 section 2.6)
	}
	if p.mode == childsa.ModeTunnel {
		if nh != esp.ProtoIPv4 && nh != esp.ProtoIPv6 {
			d.innerDrop(p)
			return false
		}
		if !esp.DecapECN(outerTOS, inner) {
			d.innerDrop(p)
			return false
		}
	}
	src, dst, ok := addrs(inner)
	if !ok {
		d.innerDrop(p)
		return false
	}
	if !p.remoteTS.Contains(src) || !p.localTS.Contains(dst) {
		d.selectorDrop(p, "inbound", src, dst)
		return false
	}
	p.last.Store(time.Now().UnixNano())
	p.ctl.inbound(src, dst, len(inner))
	d.checkLimits(p, p.in)
	return true
}

// writeInside writes one packet that lies at w.buf[writeOffset:].
func (d *DataPath) writeInside(w *worker, inner []byte) {
	w.wb[0] = w.buf[:writeOffset+len(inner)]
	if _, err := d.dev.Write(w.wb, writeOffset); err != nil {
		d.dropGlobal(dropTunWrite, logrus.Fields{"error": err.Error()})
	}
}

// addrs returns the source and destination of an IPv4 or IPv6 packet.
func addrs(pkt []byte) (src, dst netip.Addr, ok bool) {
	switch {
	case len(pkt) >= esp.IPv4HeaderLen && pkt[0]>>4 == 4:
		return netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20])), true
	case len(pkt) >= 40 && pkt[0]>>4 == 6:
		return netip.AddrFrom16([16]byte(pkt[8:24])), netip.AddrFrom16([16]byte(pkt[24:40])), true
	}
	return netip.Addr{}, netip.Addr{}, false
}

func (d *DataPath) noSA(proto uint8, spi uint32, from netip.Addr) {
	d.drops.add(dropNoSA)
	if d.rl.allow(int(dropNoSA)) {
		d.log.WithFields(logrus.Fields{"proto": protoName(proto), "spi": fmt.Sprintf("%08x", spi), "from": from.String(),
			"total": d.drops[dropNoSA].Load()}).Warn("data path: packet for an unknown SPI dropped (logged at most every 5 s)")
	}
}

// innerDrop counts and logs (rate-limited) a packet that verified but whose
// inner packet cannot be delivered: not IP, or ECN says drop (RFC 6040
// section 4.2: outer CE over a Not-ECT inner packet).
func (d *DataPath) innerDrop(p *pair) {
	p.badInner.Add(1)
	d.saDrop(p, esp.DropMalformed)
}

// saDrop logs (rate-limited) a drop the esp.SA has already counted.
func (d *DataPath) saDrop(p *pair, err error) {
	if d.rl.allow(slotSADrop) {
		d.log.WithFields(logrus.Fields{"tunnel": p.tunnel, "spi_in": fmt.Sprintf("%08x", uint32(p.key)), "reason": reasonOf(err)}).
			Warn("data path: inbound packet dropped (logged at most every 5 s; see the SA's drop counters)")
	}
}

func reasonOf(err error) string {
	if r, ok := err.(esp.DropReason); ok {
		return r.String()
	}
	return err.Error()
}

func (d *DataPath) selectorDrop(p *pair, dir string, src, dst netip.Addr) {
	p.selDrops.Add(1)
	if d.rl.allow(slotSelector) {
		d.log.WithFields(logrus.Fields{"tunnel": p.tunnel, "direction": dir, "src": src.String(), "dst": dst.String(),
			"local_ts": p.localTS.String(), "remote_ts": p.remoteTS.String()}).
			Warn("data path: packet outside the SA's traffic selectors dropped (logged at most every 5 s)")
	}
}

func (d *DataPath) expiredDrop(p *pair) {
	p.expDrops.Add(1)
	if d.rl.allow(slotExpired) {
		d.log.WithFields(logrus.Fields{"tunnel": p.tunnel, "spi_in": fmt.Sprintf("%08x", uint32(p.key))}).
			Warn("data path: packet for an SA past its hard limit dropped (waiting for the rekey)")
	}
}

// putIPv4Header writes a 20-byte IPv4 header (TTL 64, no options); the
// protocol, length and checksum are set later with esp.RewriteIPv4.
func putIPv4Header(h []byte, src, dst netip.Addr, proto uint8) {
	h[0], h[1] = 0x45, 0
	h[2], h[3], h[4], h[5] = 0, 0, 0, 0
	h[6], h[7] = 0x40, 0
	h[8], h[9] = 64, proto
	h[10], h[11] = 0, 0
	s, t := src.As4(), dst.As4()
	copy(h[12:16], s[:])
	copy(h[16:20], t[:])
}
