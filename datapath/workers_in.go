package datapath

import (
	"encoding/binary"
	"net/netip"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/esp"
)

// The inbound side of the parallel crypto (workers.go): a socket reader
// queues the tunnel-mode ESP packets of a read (phase 1: SA lookup),
// decrypts them all in parallel (phase 2: esp.SA.DecryptESP, which verifies
// the ICV) and then, in the order they arrived, judges each by the SA's
// anti-replay window and delivers it (phase 3: esp.SA.AcceptESP under the
// pair's inMu, the peer move for ESP in UDP, the selector check). The window
// sees the packets in arrival order, as without helpers.

// inJob is one queued inbound packet.
type inJob struct {
	p    *pair
	data []byte // the ESP packet (SPI through ICV), in the reader's buffer
	out  []byte // bufSize buffer: the inner packet goes to out[writeOffset:]
	from netip.AddrPort
	tos  byte
	udp  bool
	// phase 2's result
	pt  []byte
	seq uint32
	err error
}

// inQueue is a reader's queued packets.
type inQueue struct {
	cb    cryptoBatch
	jobs  []inJob
	bytes int
}

func newInQueue(n int) inQueue { return inQueue{jobs: make([]inJob, 0, n)} }

func (q *inQueue) do(i, lane int) {
	j := &q.jobs[i]
	j.pt, j.seq, j.err = j.p.in.DecryptESP(lane, j.out[writeOffset:writeOffset], j.data)
}

// deferredIn reports whether p's inbound packets are decrypted in phase 2.
func (d *DataPath) deferredIn(p *pair) bool {
	return p.proto == protoESP && p.mode == childsa.ModeTunnel
}

// queueESP queues an ESP packet (SPI first) for phases 2 and 3 if its SA is
// a deferred one; false: the caller handles it the serial way (which also
// counts the drops of unknown and expired SAs).
func (d *DataPath) queueESP(q *inQueue, out, data []byte, from netip.AddrPort, tos byte, udp bool) bool {
	if len(data) < 8 || len(q.jobs) == cap(q.jobs) {
		return false
	}
	p := d.table.Load().inbound[spiKey(protoESP, binary.BigEndian.Uint32(data[0:4]))]
	if p == nil || p.expired.Load() || !d.deferredIn(p) {
		return false
	}
	q.jobs = append(q.jobs, inJob{p: p, data: data, out: out, from: from, tos: tos, udp: udp})
	if !p.in.AEAD() { // AES-GCM is too cheap to be worth a helper (workers.go)
		q.bytes += len(data)
	}
	return true
}

// queueIP is queueESP for a raw IPv4 packet.
func (d *DataPath) queueIP(q *inQueue, out, pkt []byte) bool {
	if len(pkt) < esp.IPv4HeaderLen || pkt[0]>>4 != 4 || pkt[9] != esp.ProtoESP {
		return false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < esp.IPv4HeaderLen || len(pkt) < ihl+12 {
		return false
	}
	if !d.queueESP(q, out, pkt[ihl:], netip.AddrPortFrom(netip.AddrFrom4([4]byte(pkt[12:16])), 0), pkt[1], false) {
		return false
	}
	if d.sink != nil {
		d.sink.IP(pkt)
	}
	return true
}

// finishIn runs phases 2 and 3 of the queued packets and appends the inner
// packets to deliver to wb.
func (d *DataPath) finishIn(q *inQueue, wb [][]byte) [][]byte {
	d.crypto.run(&q.cb, q, len(q.jobs), q.bytes)
	for i := range q.jobs {
		j := &q.jobs[i]
		if inner, nh, ok := d.acceptJob(j); ok && d.accept(j.p, inner, nh, j.tos) {
			wb = append(wb, j.out[:writeOffset+len(inner)])
		}
	}
	clear(q.jobs)
	q.jobs, q.bytes = q.jobs[:0], 0
	return wb
}

// acceptJob is phase 3's window and padding check of one decrypted packet.
func (d *DataPath) acceptJob(j *inJob) ([]byte, byte, bool) {
	p := j.p
	if j.err != nil {
		d.saDrop(p, j.err)
		return nil, 0, false
	}
	p.inMu.Lock()
	n, nh, err := p.in.AcceptESP(j.seq, j.pt)
	// Only the newest authentic packet may move the peer (see openUDP).
	newest := err == nil && j.seq > p.inTop
	if newest {
		p.inTop = j.seq
	}
	p.inMu.Unlock()
	if err != nil {
		d.saDrop(p, err)
		return nil, 0, false
	}
	if newest && j.udp && p.udpEncap {
		d.checkPeer(p, j.from)
	}
	return j.pt[:n], nh, true
}
