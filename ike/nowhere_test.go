package ike

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
)

// bindNowhere gives an engine whose loop does not run its IKE and NAT-T
// sockets on local that reach nobody: what it sends is discarded (a packet
// sink captures it), nothing is ever read, and no port is used. The fuzz
// targets build two engines per execution, so the socket is a plain value
// (an in-memory sock.Network would allocate a receive queue per socket).
func bindNowhere(t testing.TB, e *Engine, local netip.Addr) {
	t.Helper()
	for _, p := range []uint16{e.cfg.Ports.IKE, e.cfg.Ports.NATT} {
		ap := netip.AddrPortFrom(local, p)
		e.sockets[ap] = &socket{conn: nowhereConn{ap}, local: ap, natt: p == e.cfg.Ports.NATT}
	}
}

// nowhereConn is a sock.Conn that discards what is written and has
// nothing to read.
type nowhereConn struct{ local netip.AddrPort }

func (c nowhereConn) ReadFrom([]byte) (int, netip.AddrPort, error) {
	return 0, netip.AddrPort{}, fmt.Errorf("read %s: nowhere: %w", c.local, net.ErrClosed)
}
func (c nowhereConn) WriteTo([]byte, netip.AddrPort) error { return nil }
func (c nowhereConn) LocalAddr() netip.AddrPort            { return c.local }
func (c nowhereConn) Close() error                         { return nil }
