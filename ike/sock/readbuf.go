package sock

import (
	"net"
	"syscall"
)

// readBuffer is each IKE socket's receive buffer. A mass reconnect
// (every customer gateway retrying after a vgw restart) arrives as one
// burst of first messages on the two tunnel addresses: 5,000 connections
// are 5,000 MM1 datagrams per socket, ~1.3 KB of buffer each on this
// kernel. With 1 MiB most of them were dropped, and each dropped customer
// waited its 4 s retransmission (10,000 tunnels took 67 s to come up
// instead of being bound by the loop's CPU). The memory is used only while
// the loop is behind.
const readBuffer = 8 << 20

// setReadBuffer sets the buffer beyond net.core.rmem_max where allowed
// (SO_RCVBUFFORCE, root as the gateways run), else as far as rmem_max.
func setReadBuffer(c *net.UDPConn) {
	if rc, err := c.SyscallConn(); err == nil {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, readBuffer)
		}); err == nil && serr == nil {
			return
		}
	}
	_ = c.SetReadBuffer(readBuffer)
}
