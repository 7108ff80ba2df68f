package datapath

import (
	"errors"
	"net"
	"net/netip"

	"github.com/sirupsen/logrus"
)

// ServeNATT reads a NAT-T socket of the IKE engine until it is closed
// (ike.NATTDataPath). RFC 3948 section 2.2: a datagram starting with four
// zero bytes (the non-ESP marker) is IKE and goes to ike without the
// marker; a single 0xff byte is a NAT keepalive (section 2.3) and is
// dropped; anything else is ESP. Every datagram goes to the capture sink
// as received.
func (d *DataPath) ServeNATT(conn *net.UDPConn, local netip.AddrPort, ike func(from netip.AddrPort, msg []byte)) {
	d.wire.AddNATT(local, conn)
	w := newWorker()
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.WithError(err).WithField("addr", local.String()).Warn("data path: NAT-T receive failed")
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		data := buf[:n]
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
			d.receiveUDP(w, local, from, data)
		}
	}
}
