package wanem

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Options configure a Forwarder.
type Options struct {
	// LinkA and LinkB are the router's two interfaces (veths) the
	// forwarder sits between.
	LinkA, LinkB string
	// QueueLimit bounds the packets waiting in the delay queue (default
	// 8192); a packet that finds it full is dropped (dropped_queue).
	QueueLimit int
	// Steer loads an nftables ruleset in the router's namespace (e.g.
	// netlab.NS.Nft). The forwarder uses it to stop the kernel from
	// forwarding the impaired paths itself (table inet wanem).
	Steer func(ruleset string) error
	// Logf receives notes (nil: discarded).
	Logf func(format string, args ...any)
}

// Forwarder is the emulated WAN between two links of a router namespace.
type Forwarder struct {
	opt   Options
	a, b  *link
	nl    *netlink.Handle
	start time.Time
	pool  *pool
	sched scheduler

	cfg      atomic.Pointer[snapshot]
	setMu    sync.Mutex
	counters map[string]*Counters // "name a->b" / "name b->a", kept across Set

	stop     chan struct{}
	wg       sync.WaitGroup
	running  atomic.Bool
	stopOnce sync.Once
}

// snapshot is one published configuration: the directions by (ingress
// link, source, destination).
type snapshot struct {
	cfg Config
	all []*direction
	onA map[[2]netip.Addr]*direction // packets arriving on link A
	onB map[[2]netip.Addr]*direction
}

// New opens the two links. It must be called inside the router's network
// namespace (netlab.Do); everything it creates stays there.
func New(opt Options) (*Forwarder, error) {
	if opt.LinkA == "" || opt.LinkB == "" || opt.LinkA == opt.LinkB {
		return nil, fmt.Errorf("wanem: two different links are needed (a=%q, b=%q)", opt.LinkA, opt.LinkB)
	}
	if opt.QueueLimit == 0 {
		opt.QueueLimit = 8192
	}
	if opt.QueueLimit < 16 || opt.QueueLimit > 1<<20 {
		return nil, fmt.Errorf("wanem: queue limit %d is not in 16..1048576", opt.QueueLimit)
	}
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	nl, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("wanem: netlink: %w", err)
	}
	f := &Forwarder{opt: opt, nl: nl, start: time.Now(), counters: map[string]*Counters{}, stop: make(chan struct{})}
	if f.a, err = openLink(opt.LinkA); err != nil {
		nl.Close()
		return nil, err
	}
	if f.b, err = openLink(opt.LinkB); err != nil {
		f.a.close()
		nl.Close()
		return nil, err
	}
	big := max(16, opt.QueueLimit/256)
	f.pool = newPool(opt.QueueLimit, big)
	f.sched = scheduler{q: make(queue, 0, opt.QueueLimit+big), wake: make(chan struct{}, 1), f: f, txA: newTxBatch(f.a), txB: newTxBatch(f.b)}
	f.cfg.Store(&snapshot{onA: map[[2]netip.Addr]*direction{}, onB: map[[2]netip.Addr]*direction{}})
	return f, nil
}

func (f *Forwarder) now() int64 { return int64(time.Since(f.start)) }

// Start runs the readers and the scheduler.
func (f *Forwarder) Start() {
	if f.running.Swap(true) {
		return
	}
	f.wg.Add(3)
	go func() { defer f.wg.Done(); f.sched.run(f.stop) }()
	go func() { defer f.wg.Done(); f.read(f.a, f.b, true) }()
	go func() { defer f.wg.Done(); f.read(f.b, f.a, false) }()
}

// Stop gives the impaired paths back to the kernel, stops the goroutines,
// drops what is still queued and closes the sockets. Safe to call twice.
func (f *Forwarder) Stop() error {
	var err error
	f.stopOnce.Do(func() {
		if f.opt.Steer != nil && len(f.cfg.Load().cfg.Paths) > 0 {
			err = f.opt.Steer("table inet wanem {}\ndelete table inet wanem\n")
		}
		err = errors.Join(err, f.kernelRates(&snapshot{}))
		close(f.stop)
		err = errors.Join(err, f.a.close(), f.b.close())
		f.wg.Wait()
		f.nl.Close()
	})
	return err
}

// Set replaces the impairment table; safe while running. Directions keep
// their counters (by path name and direction); models restart (the
// Gilbert-Elliott state, the shaper's clock, the random generator from
// the seed).
func (f *Forwarder) Set(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	f.setMu.Lock()
	defer f.setMu.Unlock()
	s := &snapshot{cfg: c, onA: map[[2]netip.Addr]*direction{}, onB: map[[2]netip.Addr]*direction{}}
	seed := c.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	for i, p := range c.Paths {
		name := p.Name
		if name == "" {
			name = fmt.Sprintf("%v-%v", p.A, p.B)
		}
		ab := newDirection(name+" a->b", p.AtoB, seed+uint64(2*i+1)*0x100000001b3, f.countersFor(name+" a->b"))
		ba := newDirection(name+" b->a", p.BtoA, seed+uint64(2*i+2)*0x100000001b3, f.countersFor(name+" b->a"))
		ab.in, ab.out, ab.nh, ab.src, ab.dst = f.a, f.b, f.nextHop(f.b, p.B), p.A, p.B
		ba.in, ba.out, ba.nh, ba.src, ba.dst = f.b, f.a, f.nextHop(f.a, p.A), p.B, p.A
		s.all = append(s.all, ab, ba)
		s.onA[[2]netip.Addr{p.A, p.B}] = ab
		s.onB[[2]netip.Addr{p.B, p.A}] = ba
	}
	f.cfg.Store(s)
	if err := f.kernelRates(s); err != nil {
		return err
	}
	if f.opt.Steer != nil {
		if err := f.opt.Steer(steerRules(c)); err != nil {
			return fmt.Errorf("wanem: steering the impaired paths away from the kernel: %w", err)
		}
	}
	return nil
}

// steerRules makes the kernel drop (not forward) what the forwarder
// carries: the forwarder read its copy from the AF_PACKET socket before.
func steerRules(c Config) string {
	var b strings.Builder
	b.WriteString("table inet wanem {}\ndelete table inet wanem\n")
	if len(c.Paths) == 0 {
		return b.String()
	}
	b.WriteString("table inet wanem {\n  chain forward {\n    type filter hook forward priority -20; policy accept;\n")
	for _, p := range c.Paths {
		fmt.Fprintf(&b, "    ip saddr %s ip daddr %s drop\n    ip saddr %s ip daddr %s drop\n", p.A, p.B, p.B, p.A)
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

func (f *Forwarder) countersFor(key string) *Counters {
	c, ok := f.counters[key]
	if !ok {
		c = &Counters{}
		f.counters[key] = c
	}
	return c
}

// nextHop finds the next hop towards dst on l (the kernel's route; dst
// itself when on-link), seeds the neighbour from the kernel's table and
// asks by ARP when it is unknown.
func (f *Forwarder) nextHop(l *link, dst netip.Addr) netip.Addr {
	nh := dst
	if rs, err := f.nl.RouteGet(dst.AsSlice()); err == nil && len(rs) > 0 {
		if gw, ok := netip.AddrFromSlice(rs[0].Gw.To4()); ok && rs[0].Gw != nil {
			nh = gw
		}
		if rs[0].LinkIndex != l.ifindex {
			f.opt.Logf("wanem: the kernel routes %v through interface %d, not %s: the forwarder sends it on %s", dst, rs[0].LinkIndex, l.name, l.name)
		}
	}
	if ns, err := f.nl.NeighList(l.ifindex, unix.AF_INET); err == nil {
		for _, n := range ns {
			if a, ok := netip.AddrFromSlice(n.IP.To4()); ok && a == nh && len(n.HardwareAddr) == 6 &&
				n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_PERMANENT|netlink.NUD_DELAY|netlink.NUD_PROBE) != 0 {
				l.learn(a, n.HardwareAddr)
			}
		}
	}
	if _, ok := l.neighbour(nh); !ok {
		if err := l.arpRequest(nh, f.now()); err != nil {
			f.opt.Logf("wanem: ARP for %v on %s: %v", nh, l.name, err)
		}
	}
	return nh
}

// PathCounters is one direction's counters.
type PathCounters struct {
	Path      string `json:"path"`      // path name
	Direction string `json:"direction"` // "a->b" or "b->a"
	CounterValues
}

// Counters returns every direction's counters (sorted).
func (f *Forwarder) Counters() []PathCounters {
	f.setMu.Lock()
	defer f.setMu.Unlock()
	out := make([]PathCounters, 0, len(f.counters))
	for k, c := range f.counters {
		name, dir, _ := strings.Cut(k, " ")
		out = append(out, PathCounters{Path: name, Direction: dir, CounterValues: c.Snapshot()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Direction < out[j].Direction
	})
	return out
}

// Total sums the counters of every direction.
func (f *Forwarder) Total() CounterValues {
	var t CounterValues
	for _, c := range f.Counters() {
		v := c.CounterValues
		t.Forwarded += v.Forwarded
		t.Delayed += v.Delayed
		t.DroppedLoss += v.DroppedLoss
		t.DroppedFilter += v.DroppedFilter
		t.Reordered += v.Reordered
		t.Duplicated += v.Duplicated
		t.Corrupted += v.Corrupted
		t.DroppedRate += v.DroppedRate
		t.DroppedMTU += v.DroppedMTU
		t.ICMPSent += v.ICMPSent
		t.DroppedQueue += v.DroppedQueue
		t.DroppedNoNeigh += v.DroppedNoNeigh
		t.DroppedTTL += v.DroppedTTL
		t.SendErrors += v.SendErrors
	}
	return t
}

// read is one link's reader: it takes the frames of impaired paths (the
// kernel drops its own copy) and leaves all others to the kernel.
func (f *Forwarder) read(in, out *link, isA bool) {
	rx := newRxBatch()
	w := newWorker(f, in, out)
	var lastLog time.Time
	for {
		n, err := in.receive(rx)
		if err != nil {
			if errors.Is(err, os.ErrClosed) || f.stopped() {
				return
			}
			// Anything else (ENETDOWN, ENOBUFS, ...) is logged and read
			// past: a reader that quit would leave its paths black-holed
			// (the kernel drops its own copies).
			if now := time.Now(); now.Sub(lastLog) > 5*time.Second {
				f.opt.Logf("wanem: reading %s: %v (logged at most every 5 s)", in.name, err)
				lastLog = now
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s := f.cfg.Load()
		dirs := s.onB
		if isA {
			dirs = s.onA
		}
		now := f.now()
		for i := 0; i < n; i++ {
			frame, host := rx.frame(i)
			if !host || len(frame) < hdrRoom {
				continue
			}
			in.learnFrame(frame[vnetLen:])
			w.handle(dirs, frame, now)
		}
		w.flush()
	}
}

func (f *Forwarder) stopped() bool {
	select {
	case <-f.stop:
		return true
	default:
		return false
	}
}
