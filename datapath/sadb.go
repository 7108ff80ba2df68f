package datapath

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/esp"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// SA protocols as the IKE engine names them (isakmp protocol IDs, not IP
// protocol numbers: those are esp.ProtoESP and esp.ProtoAH).
const (
	protoESP = isakmp.ProtoESP
	protoAH  = isakmp.ProtoAH
)

// pair is one installed SA pair: the inbound and outbound esp.SA with what
// both share. Its fields are set once at install (peer before the pair is
// published), except inTop (under inMu); counters are atomic. The peer
// address itself lives in peer, shared with the tunnel's other pairs.
type pair struct {
	tunnel    string
	key       uint64 // protocol<<32 | inbound SPI
	proto     uint8
	mode      childsa.Mode
	udpEncap  bool
	local     netip.AddrPort
	remote    netip.AddrPort // as installed; the current peer is peer's
	peer      *peerState     // the tunnel's peer address, shared by its pairs (NAT rebinding)
	localTS   netip.Prefix
	remoteTS  netip.Prefix
	installed time.Time
	seq       uint64 // activation order: the newest sending pair of a tunnel sends
	staged    bool   // inbound only (InstallInbound) until ActivateOutbound; under DataPath.mu
	hardBytes uint64 // 0: no byte lifetime
	softBytes uint64
	// NAT-OA (transport mode in UDP): the addresses the peer put into its
	// TCP/UDP pseudo-header, its own and ours as it saw it. Invalid if
	// not exchanged.
	origRemote, origLocal netip.Addr
	inMu, outM            sync.Mutex
	in, out               *esp.SA
	inTop                 uint32 // highest sequence number accepted (under inMu)

	last      atomic.Int64 // unix nanoseconds of the last accepted inbound packet
	softSent  atomic.Bool
	hardSent  atomic.Bool
	expired   atomic.Bool
	selDrops  atomic.Uint64 // inner packet outside the selectors (either way)
	badInner  atomic.Uint64 // verified, but the inner packet is unusable (not IP, RFC 6040 drop): counted as malformed
	expDrops  atomic.Uint64 // packets refused because the SA is past its hard limit
	sendFails atomic.Uint64 // outside write errors

	opts       *tunnelOpts     // the tunnel's MSS clamp and outside MTU (mtu.go), shared by its pairs
	mssClamped atomic.Uint64   // SYNs whose MSS was lowered
	fragBefore atomic.Uint64   // inside packets fragmented before encryption
	icmpSent   atomic.Uint64   // ICMP fragmentation-needed sent to the inside
	ctl        controlCounters // link-local (inside /30) traffic: BGP and the like (control.go)
}

func newPair(p childsa.Pair, softPercent int) (*pair, error) {
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
	if p.UDPEncap && p.Mode == childsa.ModeTransport {
		pr.origRemote, pr.origLocal = p.OriginalRemote, p.OriginalLocal
	}
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
func (p *pair) counters() childsa.Counters {
	si, so := p.in.Stats(), p.out.Stats()
	c := childsa.Counters{PacketsIn: si.Packets, BytesIn: si.Bytes, PacketsOut: so.Packets, BytesOut: so.Bytes,
		Drops: map[string]uint64{}, LastInbound: p.lastInbound(),
		ControlPacketsIn: p.ctl.pktIn.Load(), ControlBytesIn: p.ctl.bytesIn.Load(),
		ControlPacketsOut: p.ctl.pktOut.Load(), ControlBytesOut: p.ctl.bytesOut.Load()}
	for r, n := range si.Drops {
		c.Drops[r.String()] = n
	}
	c.Drops[esp.DropMalformed.String()] += p.badInner.Load()
	c.Drops["selector"] = p.selDrops.Load()
	c.Drops["expired"] = p.expDrops.Load()
	c.Drops["send-failed"] = p.sendFails.Load()
	c.MSSClamped, c.FragBeforeEncrypt, c.ICMPFragNeededSent = p.mssClamped.Load(), p.fragBefore.Load(), p.icmpSent.Load()
	return c
}

// table is an immutable snapshot of the SA database.
type table struct {
	inbound  map[uint64]*pair // by protocol<<32 | inbound SPI
	outbound map[string]*pair // by tunnel: the pair that sends
	nextSeq  uint64

	// Routing (routes.go). explicit is SetRoutes' table, shared by the
	// snapshots until the next SetRoutes; selector is derived from the
	// senders' remote traffic selectors; senders holds each tunnel's
	// sending pair by tunnel slot (nil: none).
	explicit     *routeTable
	selector     routeTable
	explicitOnly bool
	senders      []*pair
}

func emptyTable(explicitOnly bool) *table {
	return &table{inbound: map[uint64]*pair{}, outbound: map[string]*pair{}, explicitOnly: explicitOnly}
}

// clone copies the SA maps; the caller changes the copy and publishes it
// with DataPath.publishLocked, which derives the routes.
func (t *table) clone() *table {
	n := &table{inbound: make(map[uint64]*pair, len(t.inbound)+1), outbound: make(map[string]*pair, len(t.outbound)+1),
		nextSeq: t.nextSeq, explicit: t.explicit, explicitOnly: t.explicitOnly}
	for k, v := range t.inbound {
		n.inbound[k] = v
	}
	for k, v := range t.outbound {
		n.outbound[k] = v
	}
	return n
}

func (t *table) add(p *pair) {
	t.inbound[p.key] = p
	t.activate(p)
}

// addInbound adds a staged pair (childsa.StagedDataPath): it verifies and
// decrypts inbound packets, and sends nothing until activate.
func (t *table) addInbound(p *pair) {
	p.staged = true
	t.inbound[p.key] = p
}

// activate makes p, a pair of t, its tunnel's sender.
func (t *table) activate(p *pair) {
	t.nextSeq++
	p.seq = t.nextSeq
	p.staged = false
	t.outbound[p.tunnel] = p
}

// remove deletes the pair; if it was its tunnel's sender, the newest
// remaining pair of the tunnel that is not staged takes over (a staged
// pair sends only once the engine activates it).
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
			if q.tunnel == p.tunnel && !q.staged && (best == nil || q.seq > best.seq) {
				best = q
			}
		}
		if best != nil {
			t.outbound[p.tunnel] = best
		}
	}
	return p
}
