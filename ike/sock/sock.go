// Package sock is the narrow socket interface of the IKE engines (as
// wireguard-go's conn.Bind): an engine opens one Conn per local address and
// port through a Binder, reads datagrams with their source and writes them
// to an address. UDP is the real implementation (kernel sockets, optional
// SO_MARK); Network is its in-memory double, which delivers datagrams
// between the engines bound to it by address, so that two engines run in
// one test without ports.
package sock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// Conn is one bound datagram endpoint: an engine's IKE (500) or NAT-T
// (4500) socket.
type Conn interface {
	// ReadFrom blocks for the next datagram, copies it into b and returns
	// its length and source. After Close it returns an error that wraps
	// net.ErrClosed.
	ReadFrom(b []byte) (n int, from netip.AddrPort, err error)
	// WriteTo sends b to the address.
	WriteTo(b []byte, to netip.AddrPort) error
	// LocalAddr is the address and port the Conn is bound to.
	LocalAddr() netip.AddrPort
	// Close unblocks ReadFrom and releases the address.
	Close() error
}

// Binder opens Conns.
type Binder interface {
	Open(local netip.AddrPort) (Conn, error)
}

// KernelConn is a Conn backed by a kernel UDP socket. A data path that
// carries ESP in UDP shares the engine's NAT-T socket through it
// (childsa.NATTDataPath), so that IKE and ESP use one NAT mapping.
type KernelConn interface {
	Conn
	Kernel() *net.UDPConn
}

// UDP opens kernel UDP sockets.
type UDP struct {
	// Mark is the SO_MARK of the sockets (0: none), so that policy routing
	// can tell the gateway's outside traffic from traffic that must enter
	// a tunnel.
	Mark uint32
}

// Open binds a UDP socket on local.
func (u UDP) Open(local netip.AddrPort) (Conn, error) {
	lc := net.ListenConfig{}
	if u.Mark != 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, int(u.Mark))
			})
			if err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("SO_MARK: %w", serr)
			}
			return nil
		}
	}
	pc, err := lc.ListenPacket(context.Background(), "udp", local.String())
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	setReadBuffer(c)                                 // readbuf.go
	bound := c.LocalAddr().(*net.UDPAddr).AddrPort() // the port, if local asked for 0
	return &udpConn{c: c, local: netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())}, nil
}

// udpConn is a kernel UDP socket as a Conn.
type udpConn struct {
	c     *net.UDPConn
	local netip.AddrPort
}

var _ KernelConn = (*udpConn)(nil)

func (u *udpConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, from, err := u.c.ReadFromUDPAddrPort(b)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	return n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), nil
}

func (u *udpConn) WriteTo(b []byte, to netip.AddrPort) error {
	_, err := u.c.WriteToUDPAddrPort(b, to)
	return err
}

func (u *udpConn) LocalAddr() netip.AddrPort { return u.local }
func (u *udpConn) Close() error              { return u.c.Close() }
func (u *udpConn) Kernel() *net.UDPConn      { return u.c }

// ErrAddrInUse is returned by Network.Open for an address already bound.
var ErrAddrInUse = errors.New("address already in use")
