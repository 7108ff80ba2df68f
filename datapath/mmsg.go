package datapath

import (
	"errors"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw IP in batches: sendmmsg(2) and recvmmsg(2) move up to MaxBatch raw
// ESP/AH packets per system call (ESP in UDP has UDP GSO and GRO for that;
// raw IP has no segmentation offload). The headers are preallocated: no
// allocation per packet.

// mmsgBuf holds the message headers of one batch.
type mmsgBuf struct {
	hdrs  [MaxBatch]unix.Mmsghdr
	iovs  [MaxBatch]unix.Iovec
	addrs [MaxBatch]unix.RawSockaddrInet4
}

// ipBatchSender is a Wire that sends many raw IPv4 packets at once.
type ipBatchSender interface {
	// SendIPs sends pkts in order. It returns len(pkts) and nil when all
	// went out, else the index of the first packet that failed and why
	// (the packets before it were sent, the ones after it were not).
	SendIPs(pkts [][]byte) (int, error)
}

var sendMMsgPool = sync.Pool{New: func() any { return new(mmsgBuf) }}

// SendIPs implements ipBatchSender with sendmmsg.
func (w *NetWire) SendIPs(pkts [][]byte) (int, error) {
	if w.sendFD < 0 {
		return 0, errors.New(w.rawErr)
	}
	m := sendMMsgPool.Get().(*mmsgBuf)
	defer sendMMsgPool.Put(m)
	done := 0
	for done < len(pkts) {
		n := min(len(pkts)-done, MaxBatch)
		for i := 0; i < n; i++ {
			p := pkts[done+i]
			if len(p) < 20 {
				return done + i, errors.New("packet shorter than an IPv4 header")
			}
			a := &m.addrs[i]
			a.Family = unix.AF_INET
			copy(a.Addr[:], p[16:20])
			m.iovs[i].Base = &p[0]
			m.iovs[i].SetLen(len(p))
			h := &m.hdrs[i].Hdr
			h.Name = (*byte)(unsafe.Pointer(a))
			h.Namelen = unix.SizeofSockaddrInet4
			h.Iov = &m.iovs[i]
			h.SetIovlen(1)
		}
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(w.sendFD), uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(n), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			clear(m.iovs[:n])
			return done, errno
		}
		if r == 0 { // cannot happen (sendmmsg sends at least one or fails); never spin
			clear(m.iovs[:n])
			return done, unix.EIO
		}
		done += int(r)
	}
	clear(m.iovs[:]) // no references to packet buffers stay in the pool
	return done, nil
}

// recvBatch reads up to len(bufs) packets from a non-blocking raw socket
// with one recvmmsg; EAGAIN when nothing is there.
func recvBatch(fd int, m *mmsgBuf, bufs [][]byte, pkts [][]byte) ([][]byte, error) {
	n := min(len(bufs), MaxBatch)
	for i := 0; i < n; i++ {
		m.iovs[i].Base = &bufs[i][0]
		m.iovs[i].SetLen(len(bufs[i]))
		h := &m.hdrs[i].Hdr
		h.Name, h.Namelen = nil, 0
		h.Iov = &m.iovs[i]
		h.SetIovlen(1)
		m.hdrs[i].Len = 0
	}
	for {
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(n), unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return pkts, errno
		}
		for i := 0; i < int(r); i++ {
			pkts = append(pkts, bufs[i][:m.hdrs[i].Len])
		}
		return pkts, nil
	}
}
