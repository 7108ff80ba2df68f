package datapath

import (
	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/esp"
)

// The outbound side of the parallel crypto (workers.go): RunInside prepares
// the ESP packets of tunnel-mode SAs into its send buffers (the UDP GSO batch,
// or the raw arena for ESP without UDP encapsulation) and seals them all,
// in parallel, just before it sends (flushUDP). RunInside is the only
// goroutine that protects outbound packets, so the packets of each SA leave
// in the order of their sequence numbers.

const (
	rawArenaBytes = 256 << 10
	maxQueued     = 1024 // prepared packets waiting for Seal
)

// outQueue is what RunInside has prepared but not yet sealed and sent.
type outQueue struct {
	cb    cryptoBatch
	jobs  []esp.PendingESP
	bytes int
	raw   []rawOut // raw IP packets (in arena), in order
	pkts  [][]byte // the packets of raw, for a batch send
	arena []byte
}

type rawOut struct {
	p   *pair
	pkt []byte
}

func newOutQueue() outQueue {
	return outQueue{jobs: make([]esp.PendingESP, 0, maxQueued), raw: make([]rawOut, 0, maxQueued), pkts: make([][]byte, 0, maxQueued),
		arena: make([]byte, 0, rawArenaBytes)}
}

// sealGroup is how many prepared packets a goroutine of phase 2 takes at
// once (a run of four per goroutine hand-off).
const sealGroup = 4

func (q *outQueue) do(i, lane int) {
	esp.SealBatch(lane, q.jobs[i*sealGroup:min((i+1)*sealGroup, len(q.jobs))])
}

// deferred reports whether p's packets are sealed in phase 2.
func (d *DataPath) deferred(p *pair) bool {
	return p.proto == protoESP && p.mode == childsa.ModeTunnel
}

// queueRoom makes room in q for one more packet of up to need bytes (raw):
// when it is full, everything queued is sealed and sent first.
func (d *DataPath) queueRoom(b *udpBatch, raw bool, need int) {
	q := &b.out
	if len(q.jobs) == cap(q.jobs) || len(q.raw) == cap(q.raw) || (raw && len(q.arena)+need > cap(q.arena) && len(q.arena) > 0) {
		d.flushUDP(b)
	}
}

// prepare is phase 1 of protect for a deferred pair: it appends the packet,
// still to be sealed, to dst (for raw IP with its outer IPv4 header).
func (d *DataPath) prepare(q *outQueue, dst []byte, p *pair, pkt []byte) ([]byte, error) {
	p.outM.Lock()
	defer p.outM.Unlock()
	start := len(dst)
	if !p.udpEncap {
		dst = append(dst, make([]byte, esp.IPv4HeaderLen)...)
	}
	out, job, err := p.out.PrepareESP(dst, pkt, innerProto(pkt))
	if err != nil {
		return nil, err
	}
	if !p.udpEncap {
		if err := esp.PutOuterIPv4(out[start:start+esp.IPv4HeaderLen], p.local.Addr(), p.peer.get().Addr(), uint16(d.ipID.Add(1)), esp.ProtoESP, len(out)-start, pkt); err != nil {
			return nil, err
		}
	}
	q.jobs = append(q.jobs, job)
	if !p.out.AEAD() { // AES-GCM is too cheap to be worth a helper (workers.go)
		q.bytes += len(pkt)
	}
	return out, nil
}

// sealQueued is phase 2: it seals every prepared packet.
func (d *DataPath) sealQueued(q *outQueue) {
	d.crypto.run(&q.cb, q, (len(q.jobs)+sealGroup-1)/sealGroup, q.bytes)
	clear(q.jobs)
	q.jobs, q.bytes = q.jobs[:0], 0
}

// sendRaw sends the queued raw IP packets in order: in batches (sendmmsg,
// mmsg.go) where the wire can, else one by one.
func (d *DataPath) sendRaw(q *outQueue) {
	if bs, ok := d.wire.(ipBatchSender); ok && len(q.raw) > 1 {
		q.pkts = q.pkts[:0]
		for _, r := range q.raw {
			q.pkts = append(q.pkts, r.pkt)
		}
		for start := 0; start < len(q.pkts); {
			n, err := bs.SendIPs(q.pkts[start:])
			if d.sink != nil {
				for _, p := range q.pkts[start : start+n] {
					d.sink.IP(p)
				}
			}
			start += n
			if err != nil {
				d.sendFailed(q.raw[start].p, err)
				start++ // that packet is lost; the rest still go
			}
		}
		clear(q.pkts)
	} else {
		for _, r := range q.raw {
			err := d.wire.SendIP(r.pkt)
			if err == nil && d.sink != nil {
				d.sink.IP(r.pkt)
			}
			if err != nil {
				d.sendFailed(r.p, err)
			}
		}
	}
	clear(q.raw)
	q.raw, q.arena = q.raw[:0], q.arena[:0]
}
