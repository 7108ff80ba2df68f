package ike

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/sock"
)

// socket is one bound UDP socket: port 500 (plain IKE) or 4500 (NAT-T, where
// IKE messages carry the 4-byte non-ESP marker of RFC 3948 section 2.2).
type socket struct {
	conn  sock.Conn
	local netip.AddrPort
	natt  bool
}

var nonESPMarker = []byte{0, 0, 0, 0}

// WithPacketSink copies every datagram to s.
func WithPacketSink(s PacketSink) Option { return func(e *Engine) { e.sink = s } }

// WithSocketMark sets SO_MARK on the engine's UDP sockets, so that policy
// routing can tell our outside traffic from traffic that must enter the
// tunnel (transport mode to the peer's own address).
// It applies to the default binder (kernel UDP sockets) only.
func WithSocketMark(mark uint32) Option { return func(e *Engine) { e.mark = mark } }

// WithBinder makes the engine open its sockets through b instead of kernel
// UDP sockets: a sock.Network runs engines in one process without ports.
// ESP in UDP on the NAT-T sockets (childsa.NATTDataPath) needs kernel
// sockets (sock.KernelConn); on others the engine drops it.
func WithBinder(b sock.Binder) Option { return func(e *Engine) { e.binder = b } }

// bind opens one IKE and one NAT-T socket per distinct local address.
func (e *Engine) bind() error {
	if e.binder == nil {
		e.binder = sock.UDP{Mark: e.mark}
	}
	seen := map[netip.Addr]bool{}
	for _, t := range e.tunnels {
		a := t.cfg.LocalAddr
		if seen[a] {
			continue
		}
		seen[a] = true
		for _, p := range []uint16{e.cfg.Ports.IKE, e.cfg.Ports.NATT} {
			ap := netip.AddrPortFrom(a, p)
			c, err := e.binder.Open(ap)
			if err != nil {
				hint := ""
				if strings.Contains(err.Error(), "address already in use") {
					hint = " (another IKE daemon, e.g. charon, may hold the port)"
				} else if strings.Contains(err.Error(), "cannot assign requested address") {
					hint = " (the address is not configured on any interface in this network namespace)"
				}
				return fmt.Errorf("bind UDP %s: %w%s", ap, err, hint)
			}
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
		if kc, ok := s.conn.(sock.KernelConn); ok {
			nd.ServeNATT(kc.Kernel(), s.local, func(from netip.AddrPort, data []byte) {
				msg := append([]byte(nil), data...)
				e.post(func() { e.handleDatagramGuarded(s, from, msg) })
			})
			return
		}
		e.log.WithField("addr", s.local.String()).Warn("the data path carries ESP in UDP only on kernel sockets: ESP on this NAT-T socket is dropped")
	}
	buf := make([]byte, 65536)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			e.log.WithError(err).Warn("UDP receive failed")
			continue
		}
		data := buf[:n]
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
	return s.conn.WriteTo(out, remote)
}
