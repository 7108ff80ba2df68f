package pktgen

import (
	"encoding/binary"
	"net"

	"golang.org/x/sys/unix"
)

// oobLen is room for one SO_RXQ_OVFL control message (and spare).
var oobLen = unix.CmsgSpace(4) * 2

// setRcvBuf sets the receive buffer: SO_RCVBUFFORCE (root, above
// net.core.rmem_max) or else SO_RCVBUF (capped by rmem_max); it returns the
// size the kernel reports and whether the forced variant was allowed.
func setRcvBuf(c *net.UDPConn, n int) (got int, forced bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) == nil {
			forced = true
		} else {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
		got, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	return got, forced
}

// enableRxqOvfl asks the kernel to attach the socket's drop count to every
// datagram read.
func enableRxqOvfl(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
	}); err != nil {
		return err
	}
	return serr
}

// rxqOvfl finds the SO_RXQ_OVFL count in a datagram's control messages
// without allocating (a Linux cmsghdr: length as wide as a pointer, level
// int32, type int32, then the data, aligned to the pointer width).
func rxqOvfl(oob []byte) (uint32, bool) {
	const hdr = unix.SizeofCmsghdr
	const word = hdr / 2 // 8 on 64-bit, 4 on 32-bit machines
	for len(oob) >= hdr {
		var l uint64
		if word == 8 {
			l = binary.NativeEndian.Uint64(oob[0:8])
		} else {
			l = uint64(binary.NativeEndian.Uint32(oob[0:4]))
		}
		level := int32(binary.NativeEndian.Uint32(oob[word : word+4]))
		typ := int32(binary.NativeEndian.Uint32(oob[word+4 : word+8]))
		if l < hdr || l > uint64(len(oob)) {
			return 0, false
		}
		if level == unix.SOL_SOCKET && typ == unix.SO_RXQ_OVFL && l >= hdr+4 {
			return binary.NativeEndian.Uint32(oob[hdr : hdr+4]), true
		}
		next := (int(l) + word - 1) &^ (word - 1)
		if next >= len(oob) {
			return 0, false
		}
		oob = oob[next:]
	}
	return 0, false
}
