package datapath

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/sirupsen/logrus"
)

// Route is an explicit route, decided outside the data path (BGP, static
// configuration): packets to Prefix leave through one of Tunnels.
//
// Without ECMP the first tunnel in Tunnels that has an installed outbound
// SA pair carries the packets; when it loses its pairs (DPD cleared it, a
// delete) the next one takes over at once. With ECMP the packets are
// spread over all tunnels of the route that have a pair, by a hash of the
// flow (addresses, protocol, and ports for TCP and UDP unless the packet is
// a fragment), so that one flow stays on one tunnel.
type Route struct {
	Prefix  netip.Prefix
	Tunnels []string
	ECMP    bool
}

// RouteStatus is one entry of the routing table as the data path uses it
// (see Routes).
type RouteStatus struct {
	Prefix  netip.Prefix `json:"prefix"`
	Tunnels []string     `json:"tunnels"`
	ECMP    bool         `json:"ecmp,omitempty"`
	// Source is "explicit" (SetRoutes) or "selector" (a sending pair's
	// remote traffic selector).
	Source string `json:"source"`
	// Active lists the route's tunnels that have an outbound SA pair now,
	// in order of preference: the first carries the traffic (all of them
	// with ECMP). Empty: packets to the prefix are dropped (no-route).
	Active []string `json:"active"`
}

// routeEntry is one prefix of a routeTable. Entries are immutable once
// published.
type routeEntry struct {
	prefix   netip.Prefix
	tunnels  []string
	slots    []int32 // tunnel slots (see DataPath.slotLocked), same order as tunnels
	ecmp     bool
	explicit bool
}

// routeTable is a longest-prefix-match table: one hash map lookup per
// prefix length in use, from the longest. IPv4 keys are integers. Lookups
// allocate nothing. A routeTable is built once and then only read.
type routeTable struct {
	v4    map[uint64]*routeEntry // masked address<<8 | prefix length
	v6    map[netip.Prefix]*routeEntry
	lens4 []int // prefix lengths in use, longest first
	lens6 []int
}

func key4(a uint32, bits int) uint64 { return uint64(a)<<8 | uint64(bits) }

// mask4 returns the network mask of an IPv4 prefix length (0..32).
func mask4(bits int) uint32 { return ^uint32(0) << (32 - bits) } // << 32 is 0 in Go

// find returns the entry of exactly this (masked) prefix.
func (r *routeTable) find(p netip.Prefix) *routeEntry {
	if p.Addr().Is4() {
		a := p.Addr().As4()
		return r.v4[key4(binary.BigEndian.Uint32(a[:]), p.Bits())]
	}
	return r.v6[p]
}

// insert adds e, replacing an entry of the same prefix.
func (r *routeTable) insert(e *routeEntry) {
	p := e.prefix
	lens := &r.lens6
	if p.Addr().Is4() {
		lens = &r.lens4
		if r.v4 == nil {
			r.v4 = map[uint64]*routeEntry{}
		}
		a := p.Addr().As4()
		r.v4[key4(binary.BigEndian.Uint32(a[:]), p.Bits())] = e
	} else {
		if r.v6 == nil {
			r.v6 = map[netip.Prefix]*routeEntry{}
		}
		r.v6[p] = e
	}
	if !slices.Contains(*lens, p.Bits()) {
		*lens = append(*lens, p.Bits())
		slices.SortFunc(*lens, func(a, b int) int { return b - a })
	}
}

// lookup returns the entry of the longest prefix longer than minBits that
// contains a, and its length; nil and -1 if none.
func (r *routeTable) lookup(a netip.Addr, minBits int) (*routeEntry, int) {
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		for _, l := range r.lens4 {
			if l <= minBits {
				break
			}
			if e := r.v4[key4(x&mask4(l), l)]; e != nil {
				return e, l
			}
		}
		return nil, -1
	}
	for _, l := range r.lens6 {
		if l <= minBits {
			break
		}
		p, err := a.Prefix(l)
		if err != nil {
			continue
		}
		if e := r.v6[p]; e != nil {
			return e, l
		}
	}
	return nil, -1
}

func (r *routeTable) entries() []*routeEntry {
	var es []*routeEntry
	for _, e := range r.v4 {
		es = append(es, e)
	}
	for _, e := range r.v6 {
		es = append(es, e)
	}
	return es
}

// route returns the route for dst: the longest prefix over the explicit
// routes and (unless explicitOnly) the selector routes; on an identical
// prefix the explicit route wins.
func (t *table) route(dst netip.Addr) *routeEntry {
	var e *routeEntry
	bits := -1
	if t.explicit != nil {
		e, bits = t.explicit.lookup(dst, -1)
	}
	if !t.explicitOnly {
		if s, _ := t.selector.lookup(dst, bits); s != nil {
			return s
		}
	}
	return e
}

// sender returns the pair that carries pkt (to dst): nil if no route or
// none of the route's tunnels has an outbound pair.
func (t *table) sender(pkt []byte, dst netip.Addr, seed uint64) *pair {
	e := t.route(dst)
	if e == nil {
		return nil
	}
	if !e.ecmp {
		for _, s := range e.slots {
			if int(s) < len(t.senders) && t.senders[s] != nil {
				return t.senders[s]
			}
		}
		return nil
	}
	// Rendezvous hashing: every tunnel with a pair gets a score from the
	// flow hash and its slot, the highest score wins. A flow only moves
	// when its tunnel loses its pair, or when a tunnel (re)appears that
	// outscores it.
	h := flowHash(pkt, seed)
	var best *pair
	var bestScore uint64
	for _, s := range e.slots {
		if int(s) >= len(t.senders) || t.senders[s] == nil {
			continue
		}
		score := mix64(h ^ (uint64(s)+1)*0x9e3779b97f4a7c15)
		if best == nil || score > bestScore {
			best, bestScore = t.senders[s], score
		}
	}
	return best
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// flowHash hashes what identifies a flow: source and destination
// addresses, protocol and, for TCP and UDP packets that are not fragments,
// the ports. IPv6 packets whose first next header is not TCP or UDP (an
// extension header, a fragment header) are hashed without ports.
func flowHash(pkt []byte, seed uint64) uint64 {
	h := seed
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
		h = mix64(h ^ binary.BigEndian.Uint64(pkt[12:20]))
		proto := pkt[9]
		ihl := int(pkt[0]&0x0f) * 4
		var ports uint32
		frag := binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 // MF or an offset
		if (proto == 6 || proto == 17) && !frag && ihl >= 20 && len(pkt) >= ihl+4 {
			ports = binary.BigEndian.Uint32(pkt[ihl:])
		}
		return mix64(h ^ (uint64(proto)<<32 | uint64(ports)))
	case len(pkt) >= 40 && pkt[0]>>4 == 6:
		for off := 8; off < 40; off += 8 {
			h = mix64(h ^ binary.BigEndian.Uint64(pkt[off:]))
		}
		nh := pkt[6]
		var ports uint32
		if (nh == 6 || nh == 17) && len(pkt) >= 44 {
			ports = binary.BigEndian.Uint32(pkt[40:])
		}
		return mix64(h ^ (uint64(nh)<<32 | uint64(ports)))
	}
	return h
}

// slotLocked returns the tunnel's slot, the index of its sender in every
// table's senders; slots are never reused. Caller holds d.mu.
func (d *DataPath) slotLocked(tunnel string) int32 {
	s, ok := d.slots[tunnel]
	if !ok {
		s = int32(len(d.slots))
		d.slots[tunnel] = s
	}
	return s
}

// publishLocked derives t's selector routes and senders from its outbound
// pairs and makes t the current table. Caller holds d.mu.
func (d *DataPath) publishLocked(t *table) {
	t.selector = routeTable{}
	if !t.explicitOnly {
		ps := make([]*pair, 0, len(t.outbound))
		for _, p := range t.outbound {
			ps = append(ps, p)
		}
		// newest first: with several tunnels claiming one prefix, the
		// most recently installed pair's tunnel comes first
		slices.SortFunc(ps, func(a, b *pair) int {
			switch {
			case a.seq > b.seq:
				return -1
			case a.seq < b.seq:
				return 1
			}
			return 0
		})
		for _, p := range ps {
			e := t.selector.find(p.remoteTS)
			if e == nil {
				e = &routeEntry{prefix: p.remoteTS}
				t.selector.insert(e)
			}
			e.tunnels = append(e.tunnels, p.tunnel)
			e.slots = append(e.slots, d.slotLocked(p.tunnel))
		}
	}
	for name := range t.outbound {
		d.slotLocked(name)
	}
	t.senders = make([]*pair, len(d.slots))
	for name, p := range t.outbound {
		t.senders[d.slots[name]] = p
	}
	d.table.Store(t)
}

// SetRoutes replaces the whole set of explicit routes (see Route) at once.
// It may be called at any time from any goroutine; the packet path sees
// either the old or the new set. Routes with an invalid prefix or no tunnel
// are ignored (logged); a later route with the same prefix replaces an
// earlier one; a tunnel named twice in one route counts once.
//
// With Config.ExplicitRoutesOnly these are the only routes; otherwise they
// share the longest-prefix lookup with the routes derived from the remote
// traffic selectors, and win on an identical prefix.
func (d *DataPath) SetRoutes(routes []Route) {
	rt := &routeTable{}
	ignored := 0
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range routes {
		if !r.Prefix.IsValid() {
			ignored++
			continue
		}
		e := &routeEntry{prefix: r.Prefix.Masked(), ecmp: r.ECMP, explicit: true}
		for _, name := range r.Tunnels {
			if name == "" || slices.Contains(e.tunnels, name) {
				continue
			}
			e.tunnels = append(e.tunnels, name)
			e.slots = append(e.slots, d.slotLocked(name))
		}
		if len(e.tunnels) == 0 {
			ignored++
			continue
		}
		rt.insert(e)
	}
	t := d.table.Load().clone()
	t.explicit = rt
	d.publishLocked(t)
	if ignored > 0 {
		d.log.WithField("ignored", ignored).Warn("data path: routes without a valid prefix or any tunnel ignored")
	}
	d.log.WithFields(logrus.Fields{"routes": len(routes) - ignored, "explicit_only": t.explicitOnly}).Debug("data path: routes set")
}

// Routes returns the routing table the data path uses now: the explicit
// routes and, unless Config.ExplicitRoutesOnly, the selector routes not
// overridden by an explicit route of the same prefix. Sorted by address
// family, address and prefix length. For status and debugging: it
// allocates.
func (d *DataPath) Routes() []RouteStatus {
	t := d.table.Load()
	var es []*routeEntry
	if t.explicit != nil {
		es = t.explicit.entries()
	}
	if !t.explicitOnly {
		for _, e := range t.selector.entries() {
			if t.explicit == nil || t.explicit.find(e.prefix) == nil {
				es = append(es, e)
			}
		}
	}
	out := make([]RouteStatus, 0, len(es))
	for _, e := range es {
		rs := RouteStatus{Prefix: e.prefix, Tunnels: slices.Clone(e.tunnels), ECMP: e.ecmp, Source: "selector", Active: []string{}}
		if e.explicit {
			rs.Source = "explicit"
		}
		for i, s := range e.slots {
			if int(s) < len(t.senders) && t.senders[s] != nil {
				rs.Active = append(rs.Active, e.tunnels[i])
			}
		}
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b RouteStatus) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out
}
