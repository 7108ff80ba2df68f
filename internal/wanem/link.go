package wanem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// One link: an AF_PACKET socket bound to a veth of the router, with the
// virtio-net header on (PACKET_VNET_HDR) so that checksum-offload and GSO
// state survive the trip through user space.

const (
	vnetLen  = 10 // struct virtio_net_hdr
	ethLen   = 14
	hdrRoom  = vnetLen + ethLen
	batchMax = 64
	bigSlot  = hdrRoom + 65535 // a GSO super-packet
)

type link struct {
	name    string
	ifindex int
	mac     [6]byte
	addr    netip.Addr // the router's IPv4 address on the link (ICMP, ARP source)
	fd      int
	file    *os.File
	rc      syscall.RawConn

	htb bool // the forwarder installed a root htb (kshape.go)

	neighMu sync.Mutex
	neigh   map[netip.Addr][6]byte
	arpAt   map[netip.Addr]int64 // last ARP request per address (ns since start)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openLink opens the socket in the current network namespace.
func openLink(name string) (*link, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("wanem: link %s: %w", name, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("wanem: link %s is not an Ethernet link", name)
	}
	l := &link{name: name, ifindex: ifi.Index, neigh: map[netip.Addr][6]byte{}, arpAt: map[netip.Addr]int64{}}
	copy(l.mac[:], ifi.HardwareAddr)
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok && n.IP.To4() != nil {
				l.addr = ip
				break
			}
		}
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("wanem: AF_PACKET socket: %w", err)
	}
	fail := func(what string, err error) (*link, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("wanem: link %s: %s: %w", name, what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
	// Frames we send must not be looped back to our own socket.
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	l.fd = fd
	l.file = os.NewFile(uintptr(fd), "wanem-"+name)
	if l.rc, err = l.file.SyscallConn(); err != nil {
		l.file.Close()
		return nil, err
	}
	return l, nil
}

func (l *link) close() error { return l.file.Close() }

// rxBatch is one reader's receive state: buffers and the recvmmsg vectors,
// all allocated once.
type rxBatch struct {
	bufs  [][]byte
	iov   []unix.Iovec
	msgs  []unix.Mmsghdr
	names []unix.RawSockaddrLinklayer
	n     int
	err   error
	read  func(fd uintptr) bool // bound once: no closure per call
}

func newRxBatch() *rxBatch {
	b := &rxBatch{
		bufs:  make([][]byte, batchMax),
		iov:   make([]unix.Iovec, batchMax),
		msgs:  make([]unix.Mmsghdr, batchMax),
		names: make([]unix.RawSockaddrLinklayer, batchMax),
	}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, bigSlot)
		b.iov[i].Base = &b.bufs[i][0]
		b.iov[i].SetLen(bigSlot)
		b.msgs[i].Hdr.Iov = &b.iov[i]
		b.msgs[i].Hdr.Iovlen = 1
		b.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	b.read = b.recv
	return b
}

func (b *rxBatch) recv(fd uintptr) bool {
	for i := range b.msgs {
		b.msgs[i].Hdr.Namelen = unix.SizeofSockaddrLinklayer
		b.msgs[i].Len = 0
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs)), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false // wait for readiness
	}
	b.n, b.err = int(n), nil
	if e != 0 {
		b.n, b.err = 0, e
	}
	return true
}

// receive blocks until at least one frame arrived (or the link is closed).
func (l *link) receive(b *rxBatch) (int, error) {
	if err := l.rc.Read(b.read); err != nil {
		return 0, err
	}
	return b.n, b.err
}

// frame returns the i-th received frame (virtio header included) and
// whether it was addressed to this host (not outgoing, broadcast ok).
func (b *rxBatch) frame(i int) ([]byte, bool) {
	t := b.names[i].Pkttype
	return b.bufs[i][:b.msgs[i].Len], t == unix.PACKET_HOST || t == unix.PACKET_BROADCAST
}

// txBatch collects frames for one link and sends them with one sendmmsg.
type txBatch struct {
	slots []*pkt               // pool slots to give back after the flush
	dir   [batchMax]*direction // whose frame each one is (nil: ICMP)
	iov   []unix.Iovec
	msgs  []unix.Mmsghdr
	n     int
	err   error
	sent  int
	l     *link
	send  func(fd uintptr) bool
}

func newTxBatch(l *link) *txBatch {
	t := &txBatch{slots: make([]*pkt, 0, batchMax), iov: make([]unix.Iovec, batchMax), msgs: make([]unix.Mmsghdr, batchMax), l: l}
	for i := range t.msgs {
		t.msgs[i].Hdr.Iov = &t.iov[i]
		t.msgs[i].Hdr.Iovlen = 1
	}
	t.send = t.sendmmsg
	return t
}

// add queues frame (virtio header first) of direction d (nil: none, an
// ICMP error); the frame must stay untouched until flush. It reports false
// when the batch is full (flush first).
func (t *txBatch) add(frame []byte, d *direction) bool {
	if t.n == len(t.msgs) {
		return false
	}
	t.iov[t.n].Base = &frame[0]
	t.iov[t.n].SetLen(len(frame))
	t.dir[t.n] = d
	t.n++
	return true
}

func (t *txBatch) sendmmsg(fd uintptr) bool {
	for t.sent < t.n {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&t.msgs[t.sent])), uintptr(t.n-t.sent), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		if e != 0 {
			t.err = e
			return true
		}
		t.sent += int(n)
	}
	return true
}

// flush sends the queued frames; it returns how many were not sent.
func (t *txBatch) flush() (failed int, err error) {
	if t.n == 0 {
		return 0, nil
	}
	t.sent, t.err = 0, nil
	if werr := t.l.rc.Write(t.send); werr != nil && t.err == nil {
		t.err = werr
	}
	if t.err != nil {
		// A frame the kernel refused is skipped and counted, no longer
		// as forwarded: ENOBUFS on a direction the kernel shapes is its
		// full queue (dropped_rate), anything else (e.g. too long) a
		// send error. The rest of the batch still goes.
		failed = 1
		if t.sent < t.n && t.dir[t.sent] != nil {
			d := t.dir[t.sent]
			if errors.Is(t.err, unix.ENOBUFS) && d.im.RateBits > 0 {
				d.c.DroppedRate.Add(1)
				failed = 0
			} else {
				d.c.SendErrors.Add(1)
			}
			d.c.Forwarded.Add(^uint64(0))
		}
		err = t.err
		if t.sent+1 < t.n {
			copy(t.msgs[:], t.msgs[t.sent+1:t.n])
			rest := t.n - t.sent - 1
			copy(t.iov[:], t.iov[t.sent+1:t.n])
			copy(t.dir[:], t.dir[t.sent+1:t.n])
			for i := 0; i < rest; i++ {
				t.msgs[i].Hdr.Iov = &t.iov[i]
			}
			t.n = rest
			f, _ := t.flush()
			failed += f
		}
	}
	t.n = 0
	return failed, err
}

// neighbour returns the MAC address for a next hop on the link.
func (l *link) neighbour(a netip.Addr) ([6]byte, bool) {
	l.neighMu.Lock()
	m, ok := l.neigh[a]
	l.neighMu.Unlock()
	return m, ok
}

// learn records a (address, MAC) pair seen on the link.
func (l *link) learn(a netip.Addr, mac []byte) {
	if !a.Is4() || a.IsUnspecified() || mac[0]&1 != 0 {
		return
	}
	var m [6]byte
	copy(m[:], mac)
	l.neighMu.Lock()
	if old, ok := l.neigh[a]; !ok || old != m {
		if len(l.neigh) < 4096 {
			l.neigh[a] = m
		}
	}
	l.neighMu.Unlock()
}

// learnFrame learns from an ARP packet or an IPv4 frame's source.
func (l *link) learnFrame(eth []byte) {
	if len(eth) < ethLen {
		return
	}
	switch binary.BigEndian.Uint16(eth[12:14]) {
	case unix.ETH_P_ARP:
		a := eth[ethLen:]
		if len(a) >= 28 && binary.BigEndian.Uint16(a[0:2]) == 1 && binary.BigEndian.Uint16(a[2:4]) == unix.ETH_P_IP && a[4] == 6 && a[5] == 4 {
			l.learn(netip.AddrFrom4([4]byte(a[14:18])), a[8:14])
		}
	case unix.ETH_P_IP:
		if len(eth) >= ethLen+20 {
			l.learn(netip.AddrFrom4([4]byte(eth[ethLen+12:ethLen+16])), eth[6:12])
		}
	}
}

// arpRequest asks who has a on the link (at most every 200 ms per address).
func (l *link) arpRequest(a netip.Addr, now int64) error {
	if !l.addr.IsValid() {
		return errors.New("the link has no IPv4 address to ask from")
	}
	l.neighMu.Lock()
	if t, ok := l.arpAt[a]; ok && now-t < 200e6 {
		l.neighMu.Unlock()
		return nil
	}
	l.arpAt[a] = now
	l.neighMu.Unlock()
	var f [vnetLen + ethLen + 28]byte
	e := f[vnetLen:]
	copy(e[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(e[6:12], l.mac[:])
	binary.BigEndian.PutUint16(e[12:14], unix.ETH_P_ARP)
	p := e[ethLen:]
	binary.BigEndian.PutUint16(p[0:2], 1)
	binary.BigEndian.PutUint16(p[2:4], unix.ETH_P_IP)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:8], 1) // request
	copy(p[8:14], l.mac[:])
	src := l.addr.As4()
	copy(p[14:18], src[:])
	dst := a.As4()
	copy(p[24:28], dst[:])
	var werr error
	err := l.rc.Write(func(fd uintptr) bool {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&f[0])), uintptr(len(f)), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		if e != 0 {
			werr = e
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}
