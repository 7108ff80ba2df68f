package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/vpnlab/vpnlab/esp"
)

// NetWire is the real outside: raw IPv4 sockets for ESP (protocol 50) and
// AH (51), which work in a network namespace even without kernel IPsec,
// and the IKE engine's NAT-T sockets for ESP in UDP (registered through
// ServeNATT). Raw sockets need CAP_NET_RAW; without it NetWire still
// carries ESP in UDP and RawIPError says why raw IP is missing.
type NetWire struct {
	log    logrus.FieldLogger
	recv   atomic.Pointer[Receiver]
	udpMu  sync.Mutex
	udp    atomic.Pointer[map[netip.AddrPort]*net.UDPConn]
	sendFD int
	rawErr string
	rx     []*os.File
	addrs  sync.Pool // *unix.SockaddrInet4 for sendto
	oobs   sync.Pool // *[]byte UDP_SEGMENT control messages
	noGSO  atomic.Bool
	wg     sync.WaitGroup
	closed atomic.Bool
}

// NewNetWire opens the raw sockets (best effort: see RawIPError). A
// non-zero mark is set as SO_MARK on the sending socket (see
// ike.WithSocketMark).
func NewNetWire(log logrus.FieldLogger, mark uint32) *NetWire {
	w := &NetWire{log: log, sendFD: -1}
	w.addrs.New = func() any { return new(unix.SockaddrInet4) }
	w.oobs.New = func() any { b := make([]byte, unix.CmsgSpace(2)); return &b }
	m := map[netip.AddrPort]*net.UDPConn{}
	w.udp.Store(&m)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		w.rawErr = fmt.Sprintf("raw IP socket: %v (needs root or CAP_NET_RAW)", err)
		return w
	}
	w.sendFD = fd
	if mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
			w.log.WithError(err).Warn("data path: cannot mark the raw socket (transport mode policy routing will not work)")
		}
	}
	for _, proto := range []int{esp.ProtoESP, esp.ProtoAH} {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			w.rawErr = fmt.Sprintf("raw IP socket for protocol %d: %v", proto, err)
			w.Close()
			return w
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		w.rx = append(w.rx, os.NewFile(uintptr(fd), fmt.Sprintf("raw-ip-%d", proto)))
	}
	return w
}

// Attach implements Wire and starts the raw socket readers.
func (w *NetWire) Attach(r Receiver) {
	w.recv.Store(&r)
	for _, f := range w.rx {
		w.wg.Add(1)
		go w.routineReadRaw(f)
	}
}

// routineReadRaw reads a raw socket: after each wake-up it reads up to
// MaxBatch packets with one recvmmsg and hands them over as one batch.
func (w *NetWire) routineReadRaw(f *os.File) {
	defer w.wg.Done()
	rc, err := f.SyscallConn()
	if err != nil {
		w.log.WithError(err).Error("data path: raw socket unusable")
		return
	}
	bufs := make([][]byte, MaxBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 65536)
	}
	pkts := make([][]byte, 0, MaxBatch)
	m := new(mmsgBuf)
	var rerr error
	drain := func(fd uintptr) bool { // one recvmmsg: up to MaxBatch packets (mmsg.go)
		var err error
		pkts, rerr = pkts[:0], nil
		pkts, err = recvBatch(int(fd), m, bufs, pkts)
		if err == unix.EAGAIN {
			return false // nothing yet: wait for the poller
		}
		if err != nil {
			rerr = err
		}
		return true
	}
	for {
		if err := rc.Read(drain); err != nil {
			if w.closed.Load() || errors.Is(err, os.ErrClosed) {
				return
			}
			w.log.WithError(err).Warn("data path: raw IP receive failed")
			continue
		}
		if len(pkts) > 0 {
			(*w.recv.Load()).ReceiveIPs(pkts)
		}
		if rerr != nil && !w.closed.Load() {
			w.log.WithError(rerr).Warn("data path: raw IP receive failed")
		}
	}
}

// AddNATT implements Wire.
func (w *NetWire) AddNATT(local netip.AddrPort, conn *net.UDPConn) {
	w.udpMu.Lock()
	defer w.udpMu.Unlock()
	old := *w.udp.Load()
	m := make(map[netip.AddrPort]*net.UDPConn, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[local] = conn
	w.udp.Store(&m)
}

// SendUDP implements Wire.
func (w *NetWire) SendUDP(local, remote netip.AddrPort, esp []byte) error {
	c := (*w.udp.Load())[local]
	if c == nil {
		return fmt.Errorf("no NAT-T socket on %s", local)
	}
	_, err := c.WriteToUDPAddrPort(esp, remote)
	return err
}

// SendUDPSegments implements Wire with UDP_SEGMENT (Linux 4.18) when buf
// holds more than one packet; if the kernel or the route refuses it, GSO is
// turned off for good and the packets go one by one.
func (w *NetWire) SendUDPSegments(local, remote netip.AddrPort, buf []byte, seg int) error {
	c := (*w.udp.Load())[local]
	if c == nil {
		return fmt.Errorf("no NAT-T socket on %s", local)
	}
	if len(buf) > seg && !w.noGSO.Load() {
		oob := w.oobs.Get().(*[]byte)
		putSegmentCmsg(*oob, seg)
		_, _, err := c.WriteMsgUDPAddrPort(buf, *oob, remote)
		w.oobs.Put(oob)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EIO) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOPROTOOPT) {
			return err
		}
		w.noGSO.Store(true)
		w.log.WithError(err).Warn("data path: UDP segmentation offload refused; sending ESP-in-UDP datagrams one by one")
	}
	for off := 0; off < len(buf); off += seg {
		if _, err := c.WriteToUDPAddrPort(buf[off:min(off+seg, len(buf))], remote); err != nil {
			return err
		}
	}
	return nil
}

// putSegmentCmsg writes a UDP_SEGMENT control message with the segment
// size into b (unix.CmsgSpace(2) bytes).
func putSegmentCmsg(b []byte, seg int) {
	clear(b)
	binary.NativeEndian.PutUint64(b[0:8], uint64(unix.CmsgLen(2)))
	binary.NativeEndian.PutUint32(b[8:12], uint32(unix.IPPROTO_UDP))
	binary.NativeEndian.PutUint32(b[12:16], uint32(unix.UDP_SEGMENT))
	binary.NativeEndian.PutUint16(b[unix.SizeofCmsghdr:], uint16(seg))
}

// SendIP implements Wire.
func (w *NetWire) SendIP(pkt []byte) error {
	if w.sendFD < 0 {
		return errors.New(w.rawErr)
	}
	if len(pkt) < 20 {
		return errors.New("packet shorter than an IPv4 header")
	}
	sa := w.addrs.Get().(*unix.SockaddrInet4)
	copy(sa.Addr[:], pkt[16:20])
	err := unix.Sendto(w.sendFD, pkt, 0, sa)
	w.addrs.Put(sa)
	return err
}

// RawIP implements Wire.
func (w *NetWire) RawIP() bool { return w.sendFD >= 0 && len(w.rx) == 2 }

// RawIPError implements Wire.
func (w *NetWire) RawIPError() string { return w.rawErr }

// Close closes the raw sockets and waits for their readers.
func (w *NetWire) Close() error {
	if w.closed.Swap(true) {
		return nil
	}
	for _, f := range w.rx {
		f.Close()
	}
	if w.sendFD >= 0 {
		unix.Close(w.sendFD)
		w.sendFD = -1
	}
	w.wg.Wait()
	return nil
}
