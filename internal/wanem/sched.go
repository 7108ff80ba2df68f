package wanem

import (
	"sync"
	"time"
)

// The delay queue: packets wait in a min-heap ordered by departure time
// (then arrival order) in slots from a fixed pool; one scheduler goroutine
// sends what is due in batches and sleeps on one timer until the next
// departure or until a reader queues an earlier one.

type pkt struct {
	buf   []byte // the slot: virtio header, Ethernet header, IP packet
	n     int    // frame length in buf
	out   *link
	dir   *direction
	due   int64 // ns since the forwarder's start
	seq   uint64
	idx   int // heap index, -1 when not queued
	gap   int // reordering: later packets still to pass
	held  bool
	large bool
}

func (p *pkt) frame() []byte { return p.buf[:p.n] }

// pool is a fixed set of packet slots: small ones for ordinary frames and
// a few large ones for GSO super-packets.
type pool struct {
	mu           sync.Mutex
	small, big   []*pkt
	nSmall, nBig int
}

const smallSlot = hdrRoom + 9216 // jumbo frames fit

func newPool(small, big int) *pool {
	p := &pool{nSmall: small, nBig: big}
	sb := make([]byte, small*smallSlot)
	for i := 0; i < small; i++ {
		p.small = append(p.small, &pkt{buf: sb[i*smallSlot : (i+1)*smallSlot : (i+1)*smallSlot], idx: -1})
	}
	for i := 0; i < big; i++ {
		p.big = append(p.big, &pkt{buf: make([]byte, bigSlot), idx: -1, large: true})
	}
	return p
}

// get returns a slot that holds n bytes (nil: the pool is empty).
func (p *pool) get(n int) *pkt {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := &p.small
	if n > smallSlot {
		list = &p.big
	}
	k := len(*list)
	if k == 0 {
		return nil
	}
	s := (*list)[k-1]
	*list = (*list)[:k-1]
	return s
}

func (p *pool) put(s *pkt) {
	s.out, s.dir, s.held, s.idx, s.n = nil, nil, false, -1, 0
	p.mu.Lock()
	if s.large {
		p.big = append(p.big, s)
	} else {
		p.small = append(p.small, s)
	}
	p.mu.Unlock()
}

// queue is the heap of waiting packets.
type queue []*pkt

func (q queue) less(i, j int) bool {
	if q[i].due != q[j].due {
		return q[i].due < q[j].due
	}
	return q[i].seq < q[j].seq
}

func (q queue) swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}

func (q *queue) push(p *pkt) {
	p.idx = len(*q)
	*q = append(*q, p)
	q.up(p.idx)
}

func (q *queue) pop() *pkt {
	h := *q
	n := len(h) - 1
	h.swap(0, n)
	p := h[n]
	*q = h[:n]
	q.down(0)
	p.idx = -1
	return p
}

// fix restores the order after p's due time changed.
func (q queue) fix(i int) {
	if !q.down(i) {
		q.up(i)
	}
}

func (q queue) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !q.less(j, i) {
			break
		}
		q.swap(i, j)
		j = i
	}
}

func (q queue) down(i0 int) bool {
	i, n := i0, len(q)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && q.less(r, l) {
			j = r
		}
		if !q.less(j, i) {
			break
		}
		q.swap(i, j)
		i = j
	}
	return i > i0
}

// scheduler owns the queue.
type scheduler struct {
	mu   sync.Mutex
	q    queue
	seq  uint64
	wake chan struct{}
	f    *Forwarder
	txA  *txBatch // the scheduler's send batches
	txB  *txBatch
}

// holdMax: a packet held for reordering leaves at the latest after this.
const holdMax = time.Second

// enqueue queues p (due set); a packet held for reordering waits for gap
// later packets of its direction. Packets queued in the same direction
// release held ones: they leave right after the releasing packet.
func (s *scheduler) enqueue(p *pkt, hold bool) {
	s.mu.Lock()
	s.seq++
	p.seq = s.seq
	d := p.dir
	if !hold && d.nheld > 0 {
		s.release(d, p)
	}
	if hold && d.nheld < maxHeld {
		d.c.Reordered.Add(1)
		p.held, p.gap = true, d.im.ReorderGap
		d.held[d.nheld] = p
		d.nheld++
		p.due += int64(holdMax)
	}
	s.q.push(p)
	early := s.q[0] == p
	s.mu.Unlock()
	if early {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// release counts p against d's held packets; those whose gap is used up
// leave just after p.
func (s *scheduler) release(d *direction, p *pkt) {
	k := 0
	for i := 0; i < d.nheld; i++ {
		h := d.held[i]
		h.gap--
		if h.gap > 0 {
			d.held[k] = h
			k++
			continue
		}
		h.held = false
		s.seq++
		h.due, h.seq = p.due, s.seq // right after p
		s.q.fix(h.idx)
	}
	for i := k; i < d.nheld; i++ {
		d.held[i] = nil
	}
	d.nheld = k
}

// unhold removes a held packet that leaves on its timeout.
func (s *scheduler) unhold(p *pkt) {
	d := p.dir
	for i := 0; i < d.nheld; i++ {
		if d.held[i] == p {
			copy(d.held[i:], d.held[i+1:d.nheld])
			d.nheld--
			d.held[d.nheld] = nil
			break
		}
	}
	p.held = false
}

// run sends due packets until stop is closed; then it drops the rest.
func (s *scheduler) run(stop <-chan struct{}) {
	f := s.f
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var out [batchMax]*pkt
	for {
		s.mu.Lock()
		now := f.now()
		k := 0
		for len(s.q) > 0 && s.q[0].due <= now && k < len(out) {
			p := s.q.pop()
			if p.held {
				s.unhold(p)
			}
			out[k] = p
			k++
		}
		wait := time.Duration(-1)
		if k < len(out) && len(s.q) > 0 {
			wait = time.Duration(s.q[0].due - now)
		}
		s.mu.Unlock()
		if k > 0 {
			f.transmit(out[:k])
			for i := range out[:k] {
				out[i] = nil
			}
			if wait < 0 && k == len(out) {
				continue
			}
		}
		if wait < 0 {
			wait = time.Hour
		}
		timer.Reset(wait)
		select {
		case <-stop:
			s.mu.Lock()
			for len(s.q) > 0 {
				p := s.q.pop()
				if p.held {
					s.unhold(p)
				}
				f.pool.put(p)
			}
			s.mu.Unlock()
			return
		case <-s.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-timer.C:
		}
	}
}
