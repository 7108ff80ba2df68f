package datapath

import (
	"errors"
	"net"
	"net/netip"
	"sync"
)

// MemoryWire is an in-memory Wire: the test double of NetWire. Two of them,
// made by NewMemoryWires, connect two data paths in one process: what one
// sends, the other receives, synchronously on the sender's goroutine. A
// Filter can drop, change or duplicate packets on the way, and SetNAT puts
// a side behind a NAT for ESP in UDP.
type MemoryWire struct {
	mu     sync.Mutex
	recv   Receiver
	peer   *MemoryWire
	filter func(pkt []byte) [][]byte
	sent   uint64

	natInside, natPublic netip.AddrPort // SetNAT
	natDrops             uint64
}

// NewMemoryWires returns two connected wires.
func NewMemoryWires() (*MemoryWire, *MemoryWire) {
	a, b := &MemoryWire{}, &MemoryWire{}
	a.peer, b.peer = b, a
	return a, b
}

// SetFilter installs f on packets sent by w: it returns what to deliver
// (nothing, the packet, a changed copy, several copies). nil removes it.
func (w *MemoryWire) SetFilter(f func(pkt []byte) [][]byte) {
	w.mu.Lock()
	w.filter = f
	w.mu.Unlock()
}

// Sent returns the number of packets sent by w.
func (w *MemoryWire) Sent() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sent
}

// Attach implements Wire.
func (w *MemoryWire) Attach(r Receiver) {
	w.mu.Lock()
	w.recv = r
	w.mu.Unlock()
}

// SetNAT puts w behind a NAT (a NAPT with one mapping) for ESP in UDP:
// datagrams w sends from inside reach the peer from public; datagrams the
// peer sends reach w only when addressed to public, and then arrive on
// inside; datagrams to any other address are dropped (NATDropped). Calling
// it again with another public address is a NAT rebinding. Two invalid
// addresses remove the NAT.
func (w *MemoryWire) SetNAT(inside, public netip.AddrPort) {
	w.mu.Lock()
	w.natInside, w.natPublic = inside, public
	w.mu.Unlock()
}

// NATDropped returns the number of datagrams for w that w's NAT dropped
// (addressed to a mapping that is not the current one).
func (w *MemoryWire) NATDropped() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.natDrops
}

// AddNATT implements Wire; a MemoryWire needs no sockets.
func (w *MemoryWire) AddNATT(netip.AddrPort, *net.UDPConn) {}

func (w *MemoryWire) deliver(pkt []byte, fn func(r Receiver, p []byte)) error {
	w.mu.Lock()
	w.sent++
	f := w.filter
	w.mu.Unlock()
	w.peer.mu.Lock()
	r := w.peer.recv
	w.peer.mu.Unlock()
	if r == nil {
		return errors.New("memory wire: peer not attached")
	}
	pkts := [][]byte{append([]byte(nil), pkt...)}
	if f != nil {
		pkts = f(pkts[0])
	}
	for _, p := range pkts {
		fn(r, p)
	}
	return nil
}

// SendUDP implements Wire: the peer receives the ESP packet on remote
// (through the NATs set by SetNAT).
func (w *MemoryWire) SendUDP(local, remote netip.AddrPort, esp []byte) error {
	w.mu.Lock()
	from := local
	if w.natPublic.IsValid() && local == w.natInside {
		from = w.natPublic
	}
	w.mu.Unlock()
	to := remote
	w.peer.mu.Lock()
	if w.peer.natPublic.IsValid() {
		if remote != w.peer.natPublic {
			w.peer.natDrops++
			w.peer.mu.Unlock()
			w.mu.Lock()
			w.sent++
			w.mu.Unlock()
			return nil // lost in the NAT, as on a real network
		}
		to = w.peer.natInside
	}
	w.peer.mu.Unlock()
	return w.deliver(esp, func(r Receiver, p []byte) { r.ReceiveUDP(to, from, p) })
}

// SendUDPSegments implements Wire: one delivery per segment.
func (w *MemoryWire) SendUDPSegments(local, remote netip.AddrPort, buf []byte, seg int) error {
	for off := 0; off < len(buf); off += seg {
		if err := w.SendUDP(local, remote, buf[off:min(off+seg, len(buf))]); err != nil {
			return err
		}
	}
	return nil
}

// SendIP implements Wire.
func (w *MemoryWire) SendIP(pkt []byte) error {
	return w.deliver(pkt, func(r Receiver, p []byte) { r.ReceiveIP(p) })
}

// RawIP implements Wire: always available.
func (w *MemoryWire) RawIP() bool { return true }

// RawIPError implements Wire.
func (w *MemoryWire) RawIPError() string { return "" }
