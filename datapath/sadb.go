package datapath

import (
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpnlab/vpnlab/esp"
	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// SA protocols as the IKE engine names them (isakmp protocol IDs, not IP
// protocol numbers: those are esp.ProtoESP and esp.ProtoAH).
const (
	protoESP = isakmp.ProtoESP
	protoAH  = isakmp.ProtoAH
)

// pair is one installed SA pair: the inbound and outbound esp.SA with what
// both share. Its fields are set once at install; counters are atomic.
type pair struct {
	tunnel     string
	key        uint64 // protocol<<32 | inbound SPI
	proto      uint8
	mode       ike.Mode
	udpEncap   bool
	local      netip.AddrPort
	remote     netip.AddrPort
	localTS    netip.Prefix
	remoteTS   netip.Prefix
	installed  time.Time
	seq        uint64 // install order: the newest pair of a tunnel sends
	hardBytes  uint64 // 0: no byte lifetime
	softBytes  uint64
	inMu, outM sync.Mutex
	in, out    *esp.SA

	last      atomic.Int64 // unix nanoseconds of the last accepted inbound packet
	softSent  atomic.Bool
	hardSent  atomic.Bool
	expired   atomic.Bool
	selDrops  atomic.Uint64 // inner packet outside the selectors (either way)
	expDrops  atomic.Uint64 // packets refused because the SA is past its hard limit
	sendFails atomic.Uint64 // outside write errors
}

func newPair(p ike.ChildSAPair, softPercent int) (*pair, error) {
	in, err := esp.New(esp.Config{SA: p.Inbound, Direction: esp.Inbound, Mode: p.Mode, ReplayWindow: p.ReplayWindow})
	if err != nil {
		return nil, err
	}
	out, err := esp.New(esp.Config{SA: p.Outbound, Direction: esp.Outbound, Mode: p.Mode})
	if err != nil {
		return nil, err
	}
	if p.Inbound.Protocol == protoAH && p.UDPEncap {
		return nil, errAHNAT
	}
	if p.Local.Addr().Is6() || p.Remote.Addr().Is6() {
		return nil, errOuterIPv6
	}
	pr := &pair{tunnel: p.Tunnel, key: spiKey(p.Inbound.Protocol, p.Inbound.SPI), proto: p.Inbound.Protocol,
		mode: p.Mode, udpEncap: p.UDPEncap, local: p.Local, remote: p.Remote, localTS: p.LocalTS.Masked(),
		remoteTS: p.RemoteTS.Masked(), installed: time.Now(), in: in, out: out}
	if p.LifetimeKB > 0 {
		pr.hardBytes = p.LifetimeKB * 1024
		pr.softBytes = pr.hardBytes / 100 * uint64(softPercent)
	}
	return pr, nil
}

func (p *pair) lastInbound() time.Time {
	n := p.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// counters returns the pair's counters (allocates: not for the packet path).
func (p *pair) counters() ike.SACounters {
	si, so := p.in.Stats(), p.out.Stats()
	c := ike.SACounters{PacketsIn: si.Packets, BytesIn: si.Bytes, PacketsOut: so.Packets, BytesOut: so.Bytes,
		Drops: map[string]uint64{}, LastInbound: p.lastInbound()}
	for r, n := range si.Drops {
		c.Drops[r.String()] = n
	}
	c.Drops["selector"] = p.selDrops.Load()
	c.Drops["expired"] = p.expDrops.Load()
	c.Drops["send-failed"] = p.sendFails.Load()
	return c
}

// table is an immutable snapshot of the SA database.
type table struct {
	inbound  map[uint64]*pair // by protocol<<32 | inbound SPI
	outbound map[string]*pair // by tunnel: the pair that sends
	routes   routeTable
	nextSeq  uint64
}

func emptyTable() *table {
	return &table{inbound: map[uint64]*pair{}, outbound: map[string]*pair{}}
}

func (t *table) clone() *table {
	n := &table{inbound: make(map[uint64]*pair, len(t.inbound)+1), outbound: make(map[string]*pair, len(t.outbound)+1), nextSeq: t.nextSeq}
	for k, v := range t.inbound {
		n.inbound[k] = v
	}
	for k, v := range t.outbound {
		n.outbound[k] = v
	}
	return n
}

func (t *table) add(p *pair) {
	t.nextSeq++
	p.seq = t.nextSeq
	t.inbound[p.key] = p
	t.outbound[p.tunnel] = p
	t.rebuildRoutes()
}

// remove deletes the pair; if it was its tunnel's sender, the newest
// remaining pair of the tunnel takes over.
func (t *table) remove(key uint64) *pair {
	p := t.inbound[key]
	if p == nil {
		return nil
	}
	delete(t.inbound, key)
	if t.outbound[p.tunnel] == p {
		delete(t.outbound, p.tunnel)
		var best *pair
		for _, q := range t.inbound {
			if q.tunnel == p.tunnel && (best == nil || q.seq > best.seq) {
				best = q
			}
		}
		if best != nil {
			t.outbound[p.tunnel] = best
		}
	}
	t.rebuildRoutes()
	return p
}

// rebuildRoutes derives the route table from the senders' remote traffic
// selectors. With several tunnels claiming the same prefix, the most
// recently installed pair wins (BGP-driven choice comes with issue 4's
// routing layer).
func (t *table) rebuildRoutes() {
	var ps []*pair
	for _, p := range t.outbound {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].seq < ps[j].seq })
	t.routes = routeTable{}
	for _, p := range ps {
		t.routes.set(p.remoteTS, p.tunnel)
	}
}

// lookup returns the sending pair for a destination.
func (t *table) lookup(dst netip.Addr) *pair {
	tunnel, ok := t.routes.lookup(dst)
	if !ok {
		return nil
	}
	return t.outbound[tunnel]
}

// routeTable is a longest-prefix-match table: one map per prefix length in
// use, probed from the longest. Lookups allocate nothing.
type routeTable struct {
	lens4 []int // prefix lengths in use, longest first
	lens6 []int
	m     map[netip.Prefix]string
}

func (r *routeTable) set(p netip.Prefix, tunnel string) {
	if r.m == nil {
		r.m = map[netip.Prefix]string{}
	}
	p = p.Masked()
	if _, ok := r.m[p]; !ok {
		lens := &r.lens4
		if p.Addr().Is6() {
			lens = &r.lens6
		}
		found := false
		for _, l := range *lens {
			if l == p.Bits() {
				found = true
			}
		}
		if !found {
			*lens = append(*lens, p.Bits())
			sort.Sort(sort.Reverse(sort.IntSlice(*lens)))
		}
	}
	r.m[p] = tunnel
}

func (r *routeTable) lookup(a netip.Addr) (string, bool) {
	lens := r.lens4
	if a.Is6() {
		lens = r.lens6
	}
	for _, l := range lens {
		p, err := a.Prefix(l)
		if err != nil {
			continue
		}
		if t, ok := r.m[p]; ok {
			return t, true
		}
	}
	return "", false
}
