package ike

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
)

// socket is one bound UDP socket: port 500 (plain IKE) or 4500 (NAT-T, where
// IKE messages carry the 4-byte non-ESP marker of RFC 3948 section 2.2).
type socket struct {
	conn  *net.UDPConn
	local netip.AddrPort
	natt  bool
}

var nonESPMarker = []byte{0, 0, 0, 0}

// PacketSink receives every UDP datagram the engine sends or receives on its
// IKE and NAT-T sockets, exactly as on the wire (with the non-ESP marker on
// NAT-T), for pcap capture. It is called from several goroutines.
type PacketSink interface {
	Packet(src, dst netip.AddrPort, payload []byte)
}

// WithPacketSink copies every datagram to s.
func WithPacketSink(s PacketSink) Option { return func(e *Engine) { e.sink = s } }

// WithSocketMark sets SO_MARK on the engine's UDP sockets, so that policy
// routing can tell our outside traffic from traffic that must enter the
// tunnel (transport mode to the peer's own address).
func WithSocketMark(mark uint32) Option { return func(e *Engine) { e.mark = mark } }

func (e *Engine) listenUDP(ap netip.AddrPort) (*net.UDPConn, error) {
	lc := net.ListenConfig{}
	if e.mark != 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, int(e.mark))
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
	pc, err := lc.ListenPacket(context.Background(), "udp", ap.String())
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// bind opens one IKE and one NAT-T socket per distinct local address.
func (e *Engine) bind() error {
	seen := map[netip.Addr]bool{}
	for _, t := range e.tunnels {
		a := t.cfg.LocalAddr
		if seen[a] {
			continue
		}
		seen[a] = true
		for _, p := range []uint16{e.cfg.Ports.IKE, e.cfg.Ports.NATT} {
			ap := netip.AddrPortFrom(a, p)
			c, err := e.listenUDP(ap)
			if err != nil {
				hint := ""
				if strings.Contains(err.Error(), "address already in use") {
					hint = " (another IKE daemon, e.g. charon, may hold the port)"
				} else if strings.Contains(err.Error(), "cannot assign requested address") {
					hint = " (the address is not configured on any interface in this network namespace)"
				}
				return fmt.Errorf("bind UDP %s: %w%s", ap, err, hint)
			}
			setIKEReadBuffer(c) // sockbuf.go
			s := &socket{conn: c, local: ap, natt: p == e.cfg.Ports.NATT}
			e.sockets[ap] = s
			e.log.WithFields(logrus.Fields{"addr": ap.String(), "natt": s.natt}).Info("listening")
		}
	}
	return nil
}

func (e *Engine) closeSockets() {
	for _, s := range e.sockets {
		s.conn.Close()
	}
}

// routineReceive reads datagrams from one socket and posts IKE messages to the
// engine loop.
func (e *Engine) routineReceive(s *socket) {
	if nd, ok := e.dp.(NATTDataPath); ok && s.natt {
		nd.ServeNATT(s.conn, s.local, func(from netip.AddrPort, data []byte) {
			msg := append([]byte(nil), data...)
			e.post(func() { e.handleDatagramGuarded(s, from, msg) })
		})
		return
	}
	buf := make([]byte, 65536)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			e.log.WithError(err).Warn("UDP receive failed")
			continue
		}
		data := buf[:n]
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if e.sink != nil {
			e.sink.Packet(from, s.local, data)
		}
		if s.natt {
			switch {
			case n == 1 && data[0] == 0xff:
				continue // NAT keepalive (RFC 3948 section 2.3)
			case n >= 4 && bytes.Equal(data[:4], nonESPMarker):
				data = data[4:]
			default:
				// ESP in UDP, but this data path does not carry it.
				e.post(func() { e.counters.Received++ })
				continue
			}
		}
		msg := append([]byte(nil), data...)
		e.post(func() { e.handleDatagramGuarded(s, from, msg) })
	}
}

// send writes an IKE message to the peer from a local socket, adding the
// non-ESP marker on NAT-T sockets.
func (e *Engine) send(local, remote netip.AddrPort, msg []byte) error {
	s := e.sockets[local]
	if s == nil {
		return fmt.Errorf("no socket bound on %s", local)
	}
	out := msg
	if s.natt {
		out = make([]byte, 0, len(msg)+4)
		out = append(out, nonESPMarker...)
		out = append(out, msg...)
	}
	if e.sink != nil {
		e.sink.Packet(local, remote, out)
	}
	_, err := s.conn.WriteToUDPAddrPort(out, remote)
	return err
}
