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
// Filter can drop, change or duplicate packets on the way.
type MemoryWire struct {
	mu     sync.Mutex
	recv   Receiver
	peer   *MemoryWire
	filter func(pkt []byte) [][]byte
	sent   uint64
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

// SendUDP implements Wire: the peer receives the ESP packet on remote.
func (w *MemoryWire) SendUDP(local, remote netip.AddrPort, esp []byte) error {
	return w.deliver(esp, func(r Receiver, p []byte) { r.ReceiveUDP(remote, local, p) })
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
