package datapath

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// maxGROSegments bounds the datagrams one UDP GRO read can carry (the
// kernel's UDP_MAX_SEGMENTS is 64 or 128; each GRO batch is at most 64 KiB).
const maxGROSegments = 128

// nattReader is the state of one NAT-T socket's reader: a receive buffer
// large enough for a UDP GRO batch, and one output buffer per datagram so
// that a whole batch goes to the device in one Write (where the TUN device
// coalesces TCP segments again).
type nattReader struct {
	buf  []byte
	oob  []byte
	outs [][]byte // each bufSize; outs[i][writeOffset:] receives a packet
	used int      // outs in use (by wb or q)
	wb   [][]byte
	q    inQueue // packets waiting for parallel decryption (workers_in.go)
}

func newNATTReader() *nattReader {
	r := &nattReader{buf: make([]byte, 2*65536), oob: make([]byte, 128)}
	for i := 0; i < maxGROSegments; i++ {
		r.outs = append(r.outs, make([]byte, bufSize))
	}
	r.wb = make([][]byte, 0, maxGROSegments)
	r.q = newInQueue(maxGROSegments)
	return r
}

// ServeNATT reads a NAT-T socket of the IKE engine until it is closed
// (childsa.NATTDataPath). RFC 3948 section 2.2: a datagram starting with four
// zero bytes (the non-ESP marker) is IKE and goes to ike without the
// marker; a single 0xff byte is a NAT keepalive (section 2.3) and is
// dropped; anything else is ESP. Every datagram goes to the capture sink
// as received.
//
// The socket has UDP GRO enabled where the kernel supports it: one read
// may return many datagrams of one size (the last may be shorter), which
// are split here; their inner packets are written to the device as one
// batch.
//
// IP_RECVTOS is enabled too: each read carries the outer TOS byte, so that
// ECN decapsulation (RFC 6040) sees CE marks on ESP in UDP as it does on
// raw ESP. One TOS per read is right for a GRO batch: the kernel only
// coalesces datagrams whose IPv4 headers have the same TOS (and TTL).
func (d *DataPath) ServeNATT(conn *net.UDPConn, local netip.AddrPort, ike func(from netip.AddrPort, msg []byte)) {
	d.wire.AddNATT(local, conn)
	gro := enableUDPGRO(conn)
	d.log.WithFields(logrus.Fields{"addr": local.String(), "udp_gro": gro}).Debug("data path: serving NAT-T socket")
	r := newNATTReader()
	for {
		n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(r.buf, r.oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.WithError(err).WithField("addr", local.String()).Warn("data path: NAT-T receive failed")
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		seg, tos := parseCmsgs(r.oob[:oobn])
		if seg <= 0 || seg > n {
			seg = n
		}
		r.wb, r.used = r.wb[:0], 0
		for off := 0; off < n; off += seg {
			end := min(off+seg, n)
			d.nattDatagram(r, local, from, r.buf[off:end], tos, ike)
		}
		d.writeNATT(r)
	}
}

// writeNATT finishes the queued packets and writes the read's inner packets
// to the device.
func (d *DataPath) writeNATT(r *nattReader) {
	r.wb = d.finishIn(&r.q, r.wb)
	if len(r.wb) > 0 {
		if _, err := d.dev.Write(r.wb, writeOffset); err != nil {
			d.dropGlobal(dropTunWrite, logrus.Fields{"error": err.Error()})
		}
	}
	r.wb, r.used = r.wb[:0], 0
}

// nattDatagram handles one datagram of a read; ESP packets that pass are
// queued in r.wb. tos is the outer TOS byte of the read's datagrams.
func (d *DataPath) nattDatagram(r *nattReader, local, from netip.AddrPort, data []byte, tos byte, ike func(netip.AddrPort, []byte)) {
	n := len(data)
	if d.sink != nil {
		d.sink.Packet(from, local, data)
	}
	switch {
	case n == 1 && data[0] == 0xff:
		// NAT keepalive
	case n >= 4 && data[0] == 0 && data[1] == 0 && data[2] == 0 && data[3] == 0:
		ike(from, data[4:])
	case n < 8:
		d.dropGlobal(dropMalformed, logrus.Fields{"len": n, "from": from.String(), "what": "short datagram on the NAT-T port"})
	default:
		if r.used == len(r.outs) { // more datagrams than buffers: write what we have
			d.writeNATT(r)
		}
		out := r.outs[r.used]
		if d.queueESP(&r.q, out, data, from, tos, true) {
			r.used++
		} else if inner := d.openUDP(out, local, from, data, tos); inner != nil {
			r.wb = append(r.wb, out[:writeOffset+len(inner)])
			r.used++
		}
	}
}

// enableUDPGRO asks the kernel to coalesce datagrams (UDP_GRO, Linux 5.0)
// and to report each read's TOS byte (IP_RECVTOS), and gives the socket a
// 4 MiB receive buffer (SO_RCVBUFFORCE as root, beyond net.core.rmem_max),
// so that bursts of ESP are not dropped by the socket while the data path
// writes to the TUN device. It reports whether GRO is on.
func enableUDPGRO(conn *net.UDPConn) bool {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	_ = rc.Control(func(fd uintptr) {
		ok = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 1) // best effort: without it the TOS reads as 0
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		}
	})
	return ok
}

// parseCmsgs finds, without allocating, the UDP_GRO control message (the
// size of each coalesced datagram; 0 if absent) and the IP_TOS one (the
// outer TOS byte; 0 if absent).
func parseCmsgs(oob []byte) (seg int, tos byte) {
	const hdr = unix.SizeofCmsghdr
	for len(oob) >= hdr {
		l := int(binary.NativeEndian.Uint64(oob[0:8]))
		level := int32(binary.NativeEndian.Uint32(oob[8:12]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:16]))
		if l < hdr || l > len(oob) {
			return seg, tos
		}
		switch {
		case level == unix.IPPROTO_UDP && typ == unix.UDP_GRO && l >= hdr+4:
			seg = int(binary.NativeEndian.Uint32(oob[hdr : hdr+4]))
		case level == unix.IPPROTO_UDP && typ == unix.UDP_GRO && l >= hdr+2:
			seg = int(binary.NativeEndian.Uint16(oob[hdr : hdr+2]))
		case level == unix.IPPROTO_IP && typ == unix.IP_TOS && l >= hdr+1:
			tos = oob[hdr]
		}
		adv := (l + 7) &^ 7
		if adv > len(oob) {
			return seg, tos
		}
		oob = oob[adv:]
	}
	return seg, tos
}
