package ike

import "github.com/sirupsen/logrus"

// NAT-keepalives for an IKEv2 SA (RFC 7296 section 2.23, RFC 3948 section
// 2.3): while we are behind a NAT and IKE has floated to the NAT-T port,
// a one-byte 0xFF datagram keeps the mapping open, on the tunnel's
// keepalive timer (natkeepalive.go has IKEv1's; a tunnel runs one IKE
// version at a time, so they share the timer).

// startKeepaliveV2 runs the keepalive timer for an established IKEv2 SA.
func (t *tunnel) startKeepaliveV2(sa *ikev2SA) {
	iv := t.keepaliveInterval()
	if iv == 0 || !sa.floated || !sa.localBehindNAT || t.keepalive != nil {
		return
	}
	t.log.WithFields(logrus.Fields{"interval": iv.String(), "ike_version": "ikev2"}).Info("behind a NAT: sending NAT-keepalives")
	var tick func()
	tick = func() {
		t.keepalive = nil
		sa := t.v2
		if sa == nil || sa.state != v2Established || !sa.floated {
			return
		}
		s := t.e.sockets[sa.local]
		if s != nil {
			ka := []byte{0xff}
			if t.e.sink != nil {
				t.e.sink.Packet(sa.local, sa.remote, ka)
			}
			if err := s.conn.WriteTo(ka, sa.remote); err != nil {
				t.log.WithError(err).Debug("NAT-keepalive not sent")
			}
		}
		t.keepalive = t.e.afterFunc(iv, tick)
	}
	t.keepalive = t.e.afterFunc(iv, tick)
}
