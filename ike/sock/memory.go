package sock

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Network is an in-memory datagram network: the Conns opened on it (by
// every engine that uses it as its Binder) deliver datagrams to each other
// by address, in order, as a lossless link would. A datagram to an address
// nobody has bound, or to a Conn whose queue is full, is dropped and
// counted (as UDP would lose it). Filter, when set, sees each datagram
// before delivery and may drop it (return false), so that a test can lose
// or inspect messages.
type Network struct {
	mu      sync.Mutex
	conns   map[netip.AddrPort]*memConn
	filter  func(from, to netip.AddrPort, b []byte) bool
	dropped uint64
}

// memQueue is how many datagrams a Conn holds before it drops.
const memQueue = 256

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{conns: map[netip.AddrPort]*memConn{}}
}

// SetFilter installs fn (nil: deliver everything). It runs on the sender's
// goroutine with the datagram as sent; it must not keep b.
func (n *Network) SetFilter(fn func(from, to netip.AddrPort, b []byte) bool) {
	n.mu.Lock()
	n.filter = fn
	n.mu.Unlock()
}

// Dropped counts datagrams that were not delivered (no such address, a full
// queue, a closed Conn, or the filter).
func (n *Network) Dropped() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropped
}

// Open binds local on the network.
func (n *Network) Open(local netip.AddrPort) (Conn, error) {
	if !local.IsValid() || local.Port() == 0 {
		return nil, fmt.Errorf("bind %s: a memory Conn needs an address and a port", local)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns[local] != nil {
		return nil, fmt.Errorf("bind %s: %w", local, ErrAddrInUse)
	}
	c := &memConn{n: n, local: local, in: make(chan datagram, memQueue), closed: make(chan struct{})}
	n.conns[local] = c
	return c, nil
}

type datagram struct {
	from netip.AddrPort
	b    []byte
}

// memConn is one Conn of a Network.
type memConn struct {
	n      *Network
	local  netip.AddrPort
	in     chan datagram
	once   sync.Once
	closed chan struct{}
}

func (c *memConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-c.in:
		return copy(b, d.b), d.from, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, fmt.Errorf("read %s: %w", c.local, net.ErrClosed)
	}
}

func (c *memConn) WriteTo(b []byte, to netip.AddrPort) error {
	select {
	case <-c.closed:
		return fmt.Errorf("write %s: %w", c.local, net.ErrClosed)
	default:
	}
	n := c.n
	n.mu.Lock()
	filter, dst := n.filter, n.conns[to]
	n.mu.Unlock()
	if (filter != nil && !filter(c.local, to, b)) || dst == nil || !dst.deliver(c.local, b) {
		n.mu.Lock()
		n.dropped++
		n.mu.Unlock()
	}
	return nil
}

// deliver queues a copy of b unless the Conn is closed or full.
func (c *memConn) deliver(from netip.AddrPort, b []byte) bool {
	select {
	case <-c.closed:
		return false
	default:
	}
	select {
	case c.in <- datagram{from: from, b: append([]byte(nil), b...)}:
		return true
	default:
		return false
	}
}

func (c *memConn) LocalAddr() netip.AddrPort { return c.local }

func (c *memConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.n.mu.Lock()
		if c.n.conns[c.local] == c {
			delete(c.n.conns, c.local)
		}
		c.n.mu.Unlock()
	})
	return nil
}
