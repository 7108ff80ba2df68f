package traffic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

const (
	icmpEchoRequest  = 8
	icmpEchoReply    = 0
	icmp6EchoRequest = 128
	icmp6EchoReply   = 129
	icmpHeaderLen    = 8
)

// forcePingSocket makes icmp flows use a ping socket even where a raw
// socket is permitted (tests).
var forcePingSocket bool

type icmpTransport struct {
	f     *Flow
	conn  net.Conn // *net.IPConn (raw socket) or *net.UDPConn (ping socket), connected to Dst
	raw   bool
	v6    bool
	id    uint16 // echo identifier (a ping socket replaces it with its own)
	pkt   []byte
	rbuf  []byte
	reply byte
}

func (f *Flow) startICMP() error {
	s := f.spec
	t := &icmpTransport{
		f:     f,
		v6:    s.Dst.Is6(),
		id:    uint16(f.id),
		pkt:   make([]byte, icmpHeaderLen+s.Size),
		rbuf:  make([]byte, 65536+60),
		reply: icmpEchoReply,
	}
	t.pkt[0] = icmpEchoRequest
	if t.v6 {
		t.pkt[0], t.reply = icmp6EchoRequest, icmp6EchoReply
	}
	binary.BigEndian.PutUint16(t.pkt[4:], t.id)
	err := netlab.Do(s.SrcNS, func() error {
		if !forcePingSocket {
			c, err := rawICMP(s.Src, s.Dst)
			if err == nil {
				t.conn, t.raw = c, true
				return nil
			}
			if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EACCES) {
				return err
			}
		}
		c, err := pingSocket(s.Src, s.Dst)
		if err != nil {
			return fmt.Errorf("no raw ICMP socket (needs CAP_NET_RAW) and no ping socket (see sysctl net.ipv4.ping_group_range): %w", err)
		}
		t.conn = c
		return nil
	})
	if err != nil {
		t.close()
		return err
	}
	switch a := t.conn.LocalAddr().(type) {
	case *net.IPAddr:
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			f.setSrc(ip)
		}
	case *net.UDPAddr:
		f.setSrc(a.AddrPort().Addr())
	}
	if c, ok := t.conn.(interface{ SetReadBuffer(int) error }); ok {
		_ = c.SetReadBuffer(rcvBuf)
	}
	f.tx = t
	close(f.ready)
	f.wg.Add(1)
	go t.recvLoop()
	return nil
}

// rawICMP opens a raw ICMP socket connected to dst (it then only receives
// ICMP from dst).
func rawICMP(src, dst netip.Addr) (net.Conn, error) {
	network := "ip4:icmp"
	if dst.Is6() {
		network = "ip6:ipv6-icmp"
	}
	var laddr *net.IPAddr
	if src.IsValid() {
		laddr = &net.IPAddr{IP: src.AsSlice()}
	}
	return net.DialIP(network, laddr, &net.IPAddr{IP: dst.AsSlice()})
}

// pingSocket opens a kernel ICMP echo ("ping") socket connected to dst.
func pingSocket(src, dst netip.Addr) (net.Conn, error) {
	family, proto := syscall.AF_INET, syscall.IPPROTO_ICMP
	if dst.Is6() {
		family, proto = syscall.AF_INET6, syscall.IPPROTO_ICMPV6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if src.IsValid() {
		if err := syscall.Bind(fd, sockaddr(src)); err != nil {
			syscall.Close(fd)
			return nil, os.NewSyscallError("bind", err)
		}
	}
	if err := syscall.Connect(fd, sockaddr(dst)); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	file := os.NewFile(uintptr(fd), "icmp")
	pc, err := net.FilePacketConn(file) // dups the descriptor
	file.Close()
	if err != nil {
		return nil, err
	}
	c, ok := pc.(net.Conn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("ping socket: unexpected connection type %T", pc)
	}
	return c, nil
}

func sockaddr(a netip.Addr) syscall.Sockaddr {
	if a.Is4() {
		return &syscall.SockaddrInet4{Addr: a.As4()}
	}
	return &syscall.SockaddrInet6{Addr: a.As16()}
}

func (t *icmpTransport) send(seq uint64, ts int64) error {
	b := t.pkt
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint16(b[6:], uint16(seq))
	putHeader(b[icmpHeaderLen:], t.f.id, seq, ts)
	if !t.v6 { // the kernel computes ICMPv6 checksums
		binary.BigEndian.PutUint16(b[2:], checksum(b))
	}
	_, err := t.conn.Write(b)
	return err
}

func (t *icmpTransport) recvLoop() {
	defer t.f.wg.Done()
	var errs int
	for {
		n, err := t.conn.Read(t.rbuf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause(&errs) // e.g. an ICMP error reported on a ping socket
			continue
		}
		errs = 0
		p := t.rbuf[:n]
		if t.raw && !t.v6 { // raw IPv4 sockets read the IP header too
			if len(p) < 20 || p[0]>>4 != 4 || len(p) < int(p[0]&0x0f)*4 {
				continue
			}
			p = p[int(p[0]&0x0f)*4:]
		}
		if len(p) < icmpHeaderLen+headerLen || p[0] != t.reply || p[1] != 0 {
			continue
		}
		if t.raw && binary.BigEndian.Uint16(p[4:]) != t.id {
			continue
		}
		seq, ts, ok := parseHeader(p[icmpHeaderLen:], t.f.id)
		if !ok || uint16(seq) != binary.BigEndian.Uint16(p[6:]) {
			continue
		}
		t.f.tr.recv(seq, ts, len(p)-icmpHeaderLen, time.Now())
	}
}

func (t *icmpTransport) interrupt() { _ = t.conn.SetWriteDeadline(time.Now()) }

func (t *icmpTransport) close() {
	if t.conn != nil {
		t.conn.Close()
	}
}
