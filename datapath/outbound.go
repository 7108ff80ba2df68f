package datapath

import (
	"errors"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/esp"
)

// Buffer layout: every worker buffer leaves writeOffset bytes in front for
// the TUN device's virtio header, and holds the largest IP packet plus
// headers.
const (
	writeOffset = 16
	bufSize     = writeOffset + 65535 + 512
)

// worker is one goroutine's reusable buffers.
type worker struct {
	buf  []byte   // output of a transform
	tmp  []byte   // AH tunnel mode: outer header + inner packet
	frag []byte   // a fragment made before encryption (mtu.go)
	wb   [][]byte // one-element batch for Device.Write
}

func newWorker() *worker {
	return &worker{buf: make([]byte, bufSize), tmp: make([]byte, bufSize), frag: make([]byte, bufSize), wb: make([][]byte, 1)}
}

func (d *DataPath) getWorker() *worker {
	if w, ok := d.workers.Get().(*worker); ok {
		return w
	}
	return newWorker()
}

func (d *DataPath) putWorker(w *worker) { d.workers.Put(w) }

// RunInside reads the inside device until it is closed, protecting and
// sending every packet. It returns nil when the device is closed.
//
// ESP-in-UDP packets of one read that go to the same peer are sent
// together with UDP segmentation offload (one send for up to 64 datagrams)
// where the kernel supports it.
func (d *DataPath) RunInside() error {
	n := d.dev.BatchSize()
	bufs := make([][]byte, n)
	sizes := make([]int, n)
	for i := range bufs {
		bufs[i] = make([]byte, bufSize)
	}
	w := newWorker()
	b := newUDPBatch()
	for {
		k, err := d.dev.Read(bufs, sizes, writeOffset)
		for i := 0; i < k; i++ {
			d.sendInside(w, b, bufs[i][writeOffset:writeOffset+sizes[i]])
		}
		d.flushUDP(b)
		if err != nil {
			if d.closed.Load() || errors.Is(err, os.ErrClosed) {
				return nil
			}
			if errors.Is(err, tun.ErrTooManySegments) {
				continue
			}
			d.log.WithError(err).Warn("data path: reading the inside device failed")
			if k == 0 {
				return fmt.Errorf("datapath: reading the inside device: %w", err)
			}
		}
	}
}

// udpBatch collects ESP packets for one peer: all of size seg except
// possibly the last (the rule of UDP_SEGMENT).
const (
	maxUDPBatchBytes = 60000
	maxUDPBatchCount = 64
)

type udpBatch struct {
	p     *pair
	buf   []byte
	seg   int
	count int
	short bool     // the last packet is shorter than seg: nothing may follow
	out   outQueue // packets prepared, to be sealed before they are sent (workers_out.go)
}

func newUDPBatch() *udpBatch {
	return &udpBatch{buf: make([]byte, 0, maxUDPBatchBytes+bufSize), out: newOutQueue()}
}

// sendInside protects one inside packet and sends it (or queues it in b).
func (d *DataPath) sendInside(w *worker, b *udpBatch, pkt []byte) {
	src, dst, ok := addrs(pkt)
	if !ok {
		d.dropGlobal(dropNotIP, logrus.Fields{"len": len(pkt)})
		return
	}
	p := d.table.Load().sender(pkt, dst, d.seed)
	if p == nil {
		d.dropGlobal(dropNoRoute, logrus.Fields{"src": src.String(), "dst": dst.String()})
		return
	}
	if p.expired.Load() {
		d.expiredDrop(p)
		return
	}
	if !p.localTS.Contains(src) || !p.remoteTS.Contains(dst) {
		d.selectorDrop(p, "outbound", src, dst)
		return
	}
	if p.opts != nil {
		if mss := p.opts.mss.Load(); mss != 0 && clampMSS(pkt, uint16(mss)) {
			p.mssClamped.Add(1)
		}
		if d.tooBig(w, b, p, pkt) {
			return
		}
	}
	d.protectSend(w, b, p, pkt)
}

// protectSend protects one inside packet with p and sends it (or queues it
// in b).
func (d *DataPath) protectSend(w *worker, b *udpBatch, p *pair, pkt []byte) {
	var dstBuf []byte
	deferred := d.deferred(p)
	if deferred {
		d.queueRoom(b, !p.udpEncap, p.out.ESPLen(len(pkt))+esp.IPv4HeaderLen)
	}
	if p.udpEncap {
		sz := p.out.ESPLen(len(pkt))
		if p.mode != childsa.ModeTunnel {
			sz = p.out.ESPLen(len(pkt) - int(pkt[0]&0x0f)*4)
		}
		if b.count > 0 && (b.p != p || b.short || sz > b.seg || b.count >= maxUDPBatchCount || len(b.buf)+sz > maxUDPBatchBytes) {
			d.flushUDP(b)
		}
		dstBuf = b.buf
	} else if deferred {
		dstBuf = b.out.arena
	} else {
		dstBuf = w.buf[:0]
	}
	var out []byte
	var err error
	if deferred {
		out, err = d.prepare(&b.out, dstBuf, p, pkt)
	} else {
		out, err = d.protect(dstBuf, w.tmp, p, pkt)
	}
	if err != nil {
		if errors.Is(err, esp.ErrSeqExhausted) {
			if !p.expired.Swap(true) {
				d.signal(childsa.Limit{Protocol: p.proto, InboundSPI: uint32(p.key), Hard: true, Reason: "sequence number space exhausted"})
			}
			d.expiredDrop(p)
			return
		}
		d.sendFailed(p, err)
		return
	}
	if src, dst, ok := addrs(pkt); ok { // BGP and the like: counted apart (control.go)
		p.ctl.outbound(src, dst, len(pkt))
	}
	d.checkLimits(p, p.out)
	if p.udpEncap {
		sz := len(out) - len(b.buf)
		if b.count == 0 {
			b.p, b.seg = p, sz
		} else if sz < b.seg {
			b.short = true
		}
		b.buf = out
		b.count++
		return
	}
	if deferred {
		b.out.raw = append(b.out.raw, rawOut{p: p, pkt: out[len(b.out.arena):]})
		b.out.arena = out
		return
	}
	err = d.wire.SendIP(out)
	if err == nil && d.sink != nil {
		d.sink.IP(out)
	}
	if err != nil {
		d.sendFailed(p, err)
	}
}

// flushUDP seals the prepared packets (in parallel, workers_out.go) and
// sends the queued ESP-in-UDP packets and raw IP packets.
func (d *DataPath) flushUDP(b *udpBatch) {
	d.sealQueued(&b.out)
	defer d.sendRaw(&b.out)
	if b.count == 0 {
		return
	}
	p := b.p
	remote := p.peer.get()
	err := d.wire.SendUDPSegments(p.local, remote, b.buf, b.seg)
	if err != nil {
		d.sendFailed(p, err)
	} else if d.sink != nil {
		for off := 0; off < len(b.buf); off += b.seg {
			d.sink.Packet(p.local, remote, b.buf[off:min(off+b.seg, len(b.buf))])
		}
	}
	b.p, b.buf, b.seg, b.count, b.short = nil, b.buf[:0], 0, 0, false
}

// protect applies the pair's outbound SA to pkt and appends the packet to
// send to dst: for ESP in UDP the ESP packet, otherwise a whole IPv4
// packet. tmp is scratch space (AH tunnel mode).
func (d *DataPath) protect(dst, tmp []byte, p *pair, pkt []byte) ([]byte, error) {
	p.outM.Lock()
	defer p.outM.Unlock()
	sa := p.out
	tunnel := p.mode == childsa.ModeTunnel
	if !tunnel && pkt[0]>>4 != 4 {
		return nil, errors.New("transport mode carries IPv4 only")
	}
	switch {
	case p.proto == protoAH && tunnel:
		nh := byte(esp.ProtoIPv4)
		if pkt[0]>>4 == 6 {
			nh = esp.ProtoIPv6
		}
		total := esp.IPv4HeaderLen + len(pkt)
		if total > 0xffff {
			return nil, errors.New("packet too long")
		}
		tmp = tmp[:total]
		if err := esp.PutOuterIPv4(tmp, p.local.Addr(), p.peer.get().Addr(), uint16(d.ipID.Add(1)), nh, total, pkt); err != nil {
			return nil, err
		}
		copy(tmp[esp.IPv4HeaderLen:], pkt)
		return sa.ProtectAH(dst, tmp)
	case p.proto == protoAH:
		return sa.ProtectAH(dst, pkt)
	case tunnel && p.udpEncap:
		return sa.AppendESP(dst, pkt, innerProto(pkt))
	case tunnel:
		start := len(dst)
		out, err := sa.AppendESP(append(dst, make([]byte, esp.IPv4HeaderLen)...), pkt, innerProto(pkt))
		if err != nil {
			return nil, err
		}
		return out, esp.PutOuterIPv4(out[start:start+esp.IPv4HeaderLen], p.local.Addr(), p.peer.get().Addr(), uint16(d.ipID.Add(1)), esp.ProtoESP, len(out)-start, pkt)
	default: // ESP transport
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < esp.IPv4HeaderLen || ihl > len(pkt) {
			return nil, esp.DropMalformed
		}
		if p.udpEncap {
			return sa.AppendESP(dst, pkt[ihl:], pkt[9])
		}
		start := len(dst)
		out, err := sa.AppendESP(append(dst, pkt[:ihl]...), pkt[ihl:], pkt[9])
		if err != nil {
			return nil, err
		}
		return out, esp.RewriteIPv4(out[start:start+ihl], esp.ProtoESP, len(out)-start)
	}
}

func innerProto(pkt []byte) byte {
	if pkt[0]>>4 == 6 {
		return esp.ProtoIPv6
	}
	return esp.ProtoIPv4
}

func (d *DataPath) sendFailed(p *pair, err error) {
	p.sendFails.Add(1)
	if d.rl.allow(slotSend) {
		d.log.WithFields(logrus.Fields{"tunnel": p.tunnel, "spi_out": fmt.Sprintf("%08x", p.out.SPI()), "error": err.Error()}).
			Warn("data path: sending failed (logged at most every 5 s)")
	}
}

// checkLimits signals the byte lifetime's soft and hard limits and the
// outbound sequence number's soft limit, once each per pair.
func (d *DataPath) checkLimits(p *pair, sa *esp.SA) {
	if p.hardBytes > 0 {
		_, b := sa.Counts()
		if b >= p.hardBytes {
			if !p.expired.Swap(true) {
				d.signal(childsa.Limit{Protocol: p.proto, InboundSPI: uint32(p.key), Hard: true,
					Reason: fmt.Sprintf("byte lifetime of %d KB used up (%s)", p.hardBytes/1024, sa.Direction())})
			}
			return
		}
		if b >= p.softBytes && !p.softSent.Swap(true) {
			d.signal(childsa.Limit{Protocol: p.proto, InboundSPI: uint32(p.key),
				Reason: fmt.Sprintf("byte lifetime %d%% used (%s)", d.soft, sa.Direction())})
		}
	}
	if sa.Direction() == esp.Outbound && sa.SoftLimitReached() && !p.softSent.Swap(true) {
		d.signal(childsa.Limit{Protocol: p.proto, InboundSPI: uint32(p.key), Reason: "outbound sequence number near 2^32"})
	}
}
