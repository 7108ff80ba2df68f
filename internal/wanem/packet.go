package wanem

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/vpnlab/vpnlab/natt"
)

// The per-packet pipeline of one reader (a worker): TTL, then per
// direction loss, MTU, corruption, duplication, rate, delay and jitter,
// reordering. Frames are virtio header + Ethernet header + IPv4 packet.

const (
	icmpMax   = 576 // RFC 1812 4.3.2.3: an ICMP error carries at most this much
	gsoUDPL4  = unix.VIRTIO_NET_HDR_GSO_UDP_L4
	gsoTCPv4  = unix.VIRTIO_NET_HDR_GSO_TCPV4
	needsCsum = unix.VIRTIO_NET_HDR_F_NEEDS_CSUM
)

type worker struct {
	f       *Forwarder
	in, out *link
	txOut   *txBatch
	txBack  *txBatch
	icmp    [batchMax][vnetLen + ethLen + icmpMax]byte
	nicmp   int
}

func newWorker(f *Forwarder, in, out *link) *worker {
	return &worker{f: f, in: in, out: out, txOut: newTxBatch(out), txBack: newTxBatch(in)}
}

// handle takes one received frame if it belongs to an impaired path.
func (w *worker) handle(dirs map[[2]netip.Addr]*direction, frame []byte, now int64) {
	eth := frame[vnetLen:]
	if binary.BigEndian.Uint16(eth[12:14]) != unix.ETH_P_IP {
		return
	}
	ip := eth[ethLen:]
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return
	}
	ihl, tot := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < 20 || tot < ihl || tot > len(ip) {
		return // malformed: the kernel drops it too
	}
	d := dirs[[2]netip.Addr{netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))}]
	if d == nil {
		return
	}
	frame = frame[:hdrRoom+tot]
	ip = ip[:tot]
	if ip[8] <= 1 {
		d.c.DroppedTTL.Add(1) // no time-exceeded: rare in a lab
		return
	}
	old := binary.BigEndian.Uint16(ip[8:10])
	ip[8]--
	binary.BigEndian.PutUint16(ip[10:12], natt.UpdateWord(binary.BigEndian.Uint16(ip[10:12]), old, binary.BigEndian.Uint16(ip[8:10])))
	if frame[1]&^unix.VIRTIO_NET_HDR_GSO_ECN == gsoUDPL4 && ip[9] == natt.ProtoUDP {
		w.segmentUDP(d, frame, now)
		return
	}
	w.one(d, frame, nil, now)
}

// wireLen is the size of the IP packets the frame becomes on the wire (a
// TCP GSO super-packet: its segments).
func wireLen(frame []byte) int {
	ip := frame[hdrRoom:]
	if frame[1]&^unix.VIRTIO_NET_HDR_GSO_ECN == gsoTCPv4 {
		ihl := int(ip[0]&0x0f) * 4
		if len(ip) >= ihl+20 {
			seg := int(binary.LittleEndian.Uint16(frame[4:6]))
			return ihl + int(ip[ihl+12]>>4)*4 + seg
		}
	}
	return len(ip)
}

// one runs the pipeline for one packet; slot is the pool slot holding it
// (nil: it is in the reader's receive buffer).
func (w *worker) one(d *direction, frame []byte, slot *pkt, now int64) {
	f := w.f
	drop := func() {
		if slot != nil {
			f.pool.put(slot)
		}
	}
	if (d.im.DropAll || d.im.DropIKE || d.im.DropESP) && filtered(&d.im, frame[hdrRoom:]) {
		d.c.DroppedFilter.Add(1)
		drop()
		return
	}
	if d.lose() {
		d.c.DroppedLoss.Add(1)
		drop()
		return
	}
	if d.im.MTU > 0 && wireLen(frame) > d.im.MTU {
		d.c.DroppedMTU.Add(1)
		if d.im.MTUMode == "icmp" && frame[hdrRoom+6]&0x40 != 0 {
			w.fragNeeded(d, frame)
		}
		drop()
		return
	}
	if d.chance(d.im.Corrupt) && corrupt(frame, d) {
		d.c.Corrupted.Add(1)
	}
	dup := d.chance(d.im.Duplicate)
	if dup {
		d.c.Duplicated.Add(1)
	}
	if !d.im.queued() {
		w.send(d, frame, slot)
		if dup {
			w.send(d, frame, nil)
		}
		return
	}
	due, ok := d.shape(now)
	if !ok {
		d.c.DroppedRate.Add(1)
		drop()
		return
	}
	due += d.latency()
	if due > now {
		d.c.Delayed.Add(1)
	}
	hold := d.chance(d.im.Reorder)
	for i := 0; i < 1+btoi(dup); i++ {
		p := slot
		if p == nil || i > 0 {
			if p = f.pool.get(len(frame)); p == nil {
				d.c.DroppedQueue.Add(1)
				continue
			}
			p.n = copy(p.buf, frame)
		}
		p.out, p.dir, p.due = d.out, d, due
		f.sched.enqueue(p, hold && i == 0)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// send puts a frame on the direction's outgoing link (passthrough).
func (w *worker) send(d *direction, frame []byte, slot *pkt) {
	t := w.txOut
	if t.n == batchMax {
		w.flushOne(t)
	}
	if !w.f.address(d, frame) {
		if slot != nil {
			w.f.pool.put(slot)
		}
		return
	}
	t.add(frame, d)
	if slot != nil {
		t.slots = append(t.slots, slot)
	}
	d.c.Forwarded.Add(1)
}

func (w *worker) flush() {
	w.flushOne(w.txOut)
	w.flushOne(w.txBack)
	w.nicmp = 0
}

func (w *worker) flushOne(t *txBatch) {
	if failed, err := t.flush(); failed > 0 {
		w.f.opt.Logf("wanem: sending on %s: %d frames failed: %v", t.l.name, failed, err)
	}
	for i, s := range t.slots {
		w.f.pool.put(s)
		t.slots[i] = nil
	}
	t.slots = t.slots[:0]
}

// address writes the Ethernet header for d's next hop; false (counted,
// ARP asked) when its MAC is not known yet.
func (f *Forwarder) address(d *direction, frame []byte) bool {
	mac, ok := d.out.neighbour(d.nh)
	if !ok {
		d.c.DroppedNoNeigh.Add(1)
		_ = d.out.arpRequest(d.nh, f.now())
		return false
	}
	eth := frame[vnetLen:]
	copy(eth[0:6], mac[:])
	copy(eth[6:12], d.out.mac[:])
	return true
}

// transmit sends due packets (the scheduler's goroutine). Every packet is
// put in its link's batch first; slots go back to the pool only after both
// batches are sent (a slot back in the pool belongs to the readers).
func (f *Forwarder) transmit(ps []*pkt) {
	for _, p := range ps {
		if !f.address(p.dir, p.frame()) {
			f.pool.put(p)
			continue
		}
		t := f.schedTx(p.out)
		t.add(p.frame(), p.dir)
		t.slots = append(t.slots, p)
		p.dir.c.Forwarded.Add(1)
	}
	for _, l := range [2]*link{f.a, f.b} {
		t := f.schedTx(l)
		if failed, err := t.flush(); failed > 0 {
			f.opt.Logf("wanem: sending on %s: %d frames failed: %v", l.name, failed, err)
		}
		for i, s := range t.slots {
			f.pool.put(s)
			t.slots[i] = nil
		}
		t.slots = t.slots[:0]
	}
}

// schedTx returns the scheduler's own batch for l.
func (f *Forwarder) schedTx(l *link) *txBatch {
	if l == f.a {
		return f.sched.txA
	}
	return f.sched.txB
}

// filtered applies the drop filters: IKE is UDP port 500, or 4500 with the
// non-ESP marker (RFC 3948); ESP is protocol 50, or UDP 4500 without it.
func filtered(im *Impairment, ip []byte) bool {
	if im.DropAll {
		return true
	}
	ihl := int(ip[0]&0x0f) * 4
	switch ip[9] {
	case 50:
		return im.DropESP
	case natt.ProtoUDP:
		if len(ip) < ihl+8 || binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
			return false
		}
		sp, dp := binary.BigEndian.Uint16(ip[ihl:]), binary.BigEndian.Uint16(ip[ihl+2:])
		if sp == 500 || dp == 500 {
			return im.DropIKE
		}
		if sp == 4500 || dp == 4500 {
			pl := ip[ihl+8:]
			if len(pl) == 1 && pl[0] == 0xff {
				return false // NAT keepalive: neither
			}
			if len(pl) >= 4 && binary.BigEndian.Uint32(pl) == 0 {
				return im.DropIKE
			}
			return im.DropESP
		}
	}
	return false
}
