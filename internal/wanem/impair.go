package wanem

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"
)

// One direction of one path: its impairment, its random generator and the
// state of the models (Gilbert-Elliott state, the shaper's clock, held
// packets). Only the reader of the direction's ingress link touches it, so
// it needs no lock (held packets are the scheduler's, under its lock).

// maxHeld bounds the packets held back for reordering per direction.
const maxHeld = 256

type direction struct {
	name string // "tunnel1 a->b"
	im   Impairment
	rng  *rand.Rand
	bad  bool  // Gilbert-Elliott state
	next int64 // shaper: when the line is free again (ns since start)
	pace int64 // shaper: ns per packet at RatePackets (0: none)
	c    *Counters
	in   *link      // where the direction's packets arrive
	out  *link      // where they leave
	nh   netip.Addr // next hop on out
	src  netip.Addr // the direction's outer source and destination
	dst  netip.Addr
	// held packets (reordering), owned by the scheduler's lock
	held  [maxHeld]*pkt
	nheld int
}

// Counters count what a direction did. All fields are updated atomically;
// Snapshot reads them.
type Counters struct {
	Forwarded      atomic.Uint64 // packets sent on (duplicates included)
	Delayed        atomic.Uint64 // packets given a delay > 0
	DroppedLoss    atomic.Uint64
	DroppedFilter  atomic.Uint64 // DropAll, DropIKE, DropESP
	Reordered      atomic.Uint64 // packets held back behind later ones
	Duplicated     atomic.Uint64
	Corrupted      atomic.Uint64
	DroppedRate    atomic.Uint64
	DroppedMTU     atomic.Uint64
	ICMPSent       atomic.Uint64
	DroppedQueue   atomic.Uint64 // the delay queue was full
	DroppedNoNeigh atomic.Uint64 // next hop's MAC unknown (ARP pending)
	DroppedTTL     atomic.Uint64
	SendErrors     atomic.Uint64
}

// CounterValues is a snapshot of Counters.
type CounterValues struct {
	Forwarded      uint64 `json:"forwarded"`
	Delayed        uint64 `json:"delayed"`
	DroppedLoss    uint64 `json:"dropped_loss"`
	DroppedFilter  uint64 `json:"dropped_filter"`
	Reordered      uint64 `json:"reordered"`
	Duplicated     uint64 `json:"duplicated"`
	Corrupted      uint64 `json:"corrupted"`
	DroppedRate    uint64 `json:"dropped_rate"`
	DroppedMTU     uint64 `json:"dropped_mtu"`
	ICMPSent       uint64 `json:"icmp_sent"`
	DroppedQueue   uint64 `json:"dropped_queue"`
	DroppedNoNeigh uint64 `json:"dropped_no_neighbour"`
	DroppedTTL     uint64 `json:"dropped_ttl"`
	SendErrors     uint64 `json:"send_errors"`
}

// Snapshot reads the counters.
func (c *Counters) Snapshot() CounterValues {
	return CounterValues{
		Forwarded: c.Forwarded.Load(), Delayed: c.Delayed.Load(), DroppedLoss: c.DroppedLoss.Load(), DroppedFilter: c.DroppedFilter.Load(),
		Reordered: c.Reordered.Load(), Duplicated: c.Duplicated.Load(), Corrupted: c.Corrupted.Load(),
		DroppedRate: c.DroppedRate.Load(), DroppedMTU: c.DroppedMTU.Load(), ICMPSent: c.ICMPSent.Load(),
		DroppedQueue: c.DroppedQueue.Load(), DroppedNoNeigh: c.DroppedNoNeigh.Load(),
		DroppedTTL: c.DroppedTTL.Load(), SendErrors: c.SendErrors.Load(),
	}
}

func newDirection(name string, im Impairment, seed uint64, c *Counters) *direction {
	if im.Distribution == "" {
		im.Distribution = "uniform"
	}
	if im.MTUMode == "" {
		im.MTUMode = "icmp"
	}
	if im.ReorderGap == 0 {
		im.ReorderGap = 3
	}
	if im.RateQueue == 0 {
		im.RateQueue = 50 * time.Millisecond
	}
	if im.Burst != nil {
		b := *im.Burst
		if b.LossBad == 0 && b.LossGood == 0 {
			b.LossBad = 1
		}
		im.Burst = &b
	}
	d := &direction{name: name, im: im, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), c: c}
	if im.RatePackets > 0 {
		d.pace = int64(time.Second) / int64(im.RatePackets)
	}
	return d
}

func (d *direction) chance(p float64) bool { return p > 0 && d.rng.Float64() < p }

// lose decides whether the packet is lost (independent or Gilbert-Elliott).
func (d *direction) lose() bool {
	b := d.im.Burst
	if b == nil {
		return d.chance(d.im.Loss)
	}
	var lost bool
	if d.bad {
		lost = d.chance(b.LossBad)
		if d.chance(b.R) {
			d.bad = false
		}
	} else {
		lost = d.chance(b.LossGood)
		if d.chance(b.P) {
			d.bad = true
		}
	}
	return lost
}

// latency is the delay with jitter for one packet (never negative).
func (d *direction) latency() int64 {
	v := float64(d.im.Delay)
	if j := float64(d.im.Jitter); j > 0 {
		switch d.im.Distribution {
		case "normal":
			v += d.rng.NormFloat64() * j
		default: // uniform in [delay-jitter, delay+jitter]
			v += (2*d.rng.Float64() - 1) * j
		}
	}
	if v < 0 {
		return 0
	}
	return int64(math.Round(v))
}

// shape gives the packet its departure time under the packets/s limit (a
// pacer with a queue of RateQueue): ok is false when the packet would wait
// longer than RateQueue (dropped by rate). The bit rate is the kernel's
// (kshape.go).
func (d *direction) shape(now int64) (depart int64, ok bool) {
	if d.pace == 0 {
		return now, true
	}
	cost := d.pace
	start := max(d.next, now)
	if start-now > int64(d.im.RateQueue) {
		return 0, false
	}
	d.next = start + cost
	return start, true
}
