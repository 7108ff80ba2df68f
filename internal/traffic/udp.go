package traffic

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

// rcvBuf is the receive buffer asked for on receiving sockets.
const rcvBuf = 1 << 20

type udpTransport struct {
	f    *Flow
	tx   *net.UDPConn // connected, in SrcNS
	rx   *net.UDPConn // bound to Dst:Port, in DstNS
	pkt  []byte
	rbuf []byte
}

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

func network(udpOrTCP string, a netip.Addr) string {
	if a.Is4() {
		return udpOrTCP + "4"
	}
	return udpOrTCP + "6"
}

// localUDP returns the bind address for the sender (nil: any).
func (f *Flow) localUDP() *net.UDPAddr {
	if !f.spec.Src.IsValid() {
		return nil
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(f.spec.Src, 0))
}

func (f *Flow) startUDP() error {
	s := f.spec
	t := &udpTransport{f: f, pkt: make([]byte, s.Size), rbuf: make([]byte, 65536)}
	err := f.bindPort(func(port uint16) error {
		var c *net.UDPConn
		err := netlab.Do(s.DstNS, func() (err error) {
			c, err = net.ListenUDP(network("udp", s.Dst), net.UDPAddrFromAddrPort(netip.AddrPortFrom(s.Dst, port)))
			return err
		})
		if err != nil {
			if c != nil {
				c.Close()
			}
			return err
		}
		t.rx = c
		return nil
	})
	if err != nil {
		return err
	}
	_ = t.rx.SetReadBuffer(rcvBuf)
	err = netlab.Do(s.SrcNS, func() (err error) {
		t.tx, err = net.DialUDP(network("udp", s.Dst), f.localUDP(), net.UDPAddrFromAddrPort(netip.AddrPortFrom(s.Dst, f.spec.Port)))
		return err
	})
	if err != nil {
		t.close()
		return err
	}
	f.setSrc(t.tx.LocalAddr().(*net.UDPAddr).AddrPort().Addr())
	f.tx = t
	close(f.ready)
	f.wg.Add(1)
	go t.recvLoop()
	return nil
}

func (t *udpTransport) send(seq uint64, ts int64) error {
	putHeader(t.pkt, t.f.id, seq, ts)
	_, err := t.tx.Write(t.pkt)
	return err
}

func (t *udpTransport) recvLoop() {
	defer t.f.wg.Done()
	var errs int
	for {
		n, err := t.rx.Read(t.rbuf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause(&errs) // e.g. a queued ICMP error: the socket stays usable
			continue
		}
		errs = 0
		if seq, ts, ok := parseHeader(t.rbuf[:n], t.f.id); ok {
			t.f.tr.recv(seq, ts, n, time.Now())
		}
	}
}

// pause sleeps a little after many consecutive read errors, so that a
// socket error that does not clear cannot make a receive loop spin.
func pause(errs *int) {
	if *errs++; *errs > 100 {
		time.Sleep(10 * time.Millisecond)
	}
}

func (t *udpTransport) interrupt() { _ = t.tx.SetWriteDeadline(time.Now()) }

func (t *udpTransport) close() {
	if t.tx != nil {
		t.tx.Close()
	}
	if t.rx != nil {
		t.rx.Close()
	}
}
