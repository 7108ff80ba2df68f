package datapath

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/sirupsen/logrus"
)

// peerState is where a tunnel's peer is now: the destination of its
// outbound packets (ESP in UDP: address and port of the peer's NAT
// mapping). All pairs of the tunnel share it, so a move applies to every
// pair at once. Read on the packet path with one atomic load; replaced (a
// new pointer) only when the address actually changes.
type peerState struct {
	addr atomic.Pointer[netip.AddrPort]
}

func (ps *peerState) get() netip.AddrPort { return *ps.addr.Load() }

// set makes to the peer's address; false if it already was.
func (ps *peerState) set(to netip.AddrPort) (from netip.AddrPort, changed bool) {
	for {
		cur := ps.addr.Load()
		if cur != nil && *cur == to {
			return to, false
		}
		nu := new(netip.AddrPort)
		*nu = to
		if ps.addr.CompareAndSwap(cur, nu) {
			if cur != nil {
				from = *cur
			}
			return from, true
		}
	}
}

// peerMove is one detected NAT rebinding, waiting for the OnPeerMoved
// handler.
type peerMove struct {
	tunnel   string
	from, to netip.AddrPort
}

// peerLocked returns the tunnel's peer state, made with addr if new.
// Caller holds d.mu.
func (d *DataPath) peerLocked(tunnel string, addr netip.AddrPort) *peerState {
	ps := d.peers[tunnel]
	if ps == nil {
		ps = &peerState{}
		ps.set(addr)
		d.peers[tunnel] = ps
	}
	return ps
}

// OnPeerMoved sets the handler of NAT rebindings: when an ESP-in-UDP
// packet that verified (ICV, then anti-replay) and carries the highest
// sequence number its SA has seen arrives from another address or port
// than the tunnel's current peer, the tunnel's outbound packets (all its
// pairs) go to the new address:port from then on, and fn is called once
// for that change with the old and the new address, on a goroutine of its
// own (never on the packet path; changes are reported in order). Packets
// that fail verification never move the peer. The IKE engine moves its
// ISAKMP SA to the new address in fn.
func (d *DataPath) OnPeerMoved(fn func(tunnel string, from, to netip.AddrPort)) {
	d.moveMu.Lock()
	d.moveFn = fn
	d.moveMu.Unlock()
}

// UpdatePeer moves the tunnel's peer to to, for when the IKE engine learns
// of the move first (an authenticated IKE message from a new address).
// The OnPeerMoved handler is not called. Outer addresses are IPv4 only:
// anything else is ignored (logged).
func (d *DataPath) UpdatePeer(tunnel string, to netip.AddrPort) {
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	if !to.Addr().Is4() {
		d.log.WithFields(logrus.Fields{"tunnel": tunnel, "to": to.String()}).Warn("data path: peer update to a non-IPv4 address ignored")
		return
	}
	d.mu.Lock()
	ps := d.peerLocked(tunnel, to)
	d.mu.Unlock()
	if from, ok := ps.set(to); ok {
		d.log.WithFields(logrus.Fields{"tunnel": tunnel, "from": from.String(), "to": to.String()}).Info("data path: peer address updated by the IKE engine")
	}
}

// Peer returns where the tunnel's outbound packets go now.
func (d *DataPath) Peer(tunnel string) (netip.AddrPort, bool) {
	d.mu.Lock()
	ps := d.peers[tunnel]
	d.mu.Unlock()
	if ps == nil {
		return netip.AddrPort{}, false
	}
	return ps.get(), true
}

// checkPeer is called on the packet path for every ESP-in-UDP packet that
// verified and advanced its SA's sequence number: if it came from another
// address than the tunnel's peer, the peer moves. The comparison is all it
// costs when nothing moved.
func (d *DataPath) checkPeer(p *pair, from netip.AddrPort) {
	cur := p.peer.addr.Load()
	if *cur == from || !from.Addr().Is4() {
		return
	}
	d.peerMoved(p, cur, from)
}

func (d *DataPath) peerMoved(p *pair, cur *netip.AddrPort, to netip.AddrPort) {
	nu := new(netip.AddrPort) // only on an actual change
	*nu = to
	if !p.peer.addr.CompareAndSwap(cur, nu) {
		return // another reader moved it first (and reports it)
	}
	d.log.WithFields(logrus.Fields{"tunnel": p.tunnel, "from": cur.String(), "to": to.String(), "spi_in": fmt.Sprintf("%08x", uint32(p.key))}).
		Info("data path: peer moved (NAT rebinding): outbound ESP follows")
	d.moveMu.Lock()
	d.moveQ = append(d.moveQ, peerMove{tunnel: p.tunnel, from: *cur, to: to})
	start := !d.moveRunning
	d.moveRunning = true
	d.moveMu.Unlock()
	if start {
		go d.routineReportMoves()
	}
}

// routineReportMoves calls the OnPeerMoved handler for the queued moves,
// in order, and exits when the queue is empty.
func (d *DataPath) routineReportMoves() {
	for {
		d.moveMu.Lock()
		if len(d.moveQ) == 0 {
			d.moveRunning = false
			d.moveMu.Unlock()
			return
		}
		m := d.moveQ[0]
		d.moveQ = d.moveQ[1:]
		fn := d.moveFn
		d.moveMu.Unlock()
		if fn != nil {
			fn(m.tunnel, m.from, m.to)
		}
	}
}
