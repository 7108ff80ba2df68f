package ike

import (
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"
)

// NAT traversal after phase 1 (RFC 3948): the side behind a NAT keeps its
// mapping open with one-byte NAT-keepalive packets (0xFF) from the NAT-T
// socket, and both sides follow the peer when its mapping changes (NAT
// rebinding): an authenticated IKE message or ESP packet from a new address
// or port moves the ISAKMP SA, the IPsec SA pairs and the data path there.

func (t *tunnel) keepaliveInterval() time.Duration {
	switch {
	case t.cfg.NATKeepalive < 0:
		return 0
	case t.cfg.NATKeepalive == 0:
		return DefaultNATKeepalive
	}
	return t.cfg.NATKeepalive
}

// startKeepalive runs the keepalive timer while we are behind a NAT.
func (t *tunnel) startKeepalive(sa *ikeSA) {
	iv := t.keepaliveInterval()
	if iv == 0 || !sa.floated || !sa.localBehindNAT || t.keepalive != nil {
		return
	}
	t.log.WithField("interval", iv.String()).Info("behind a NAT: sending NAT-keepalives")
	var tick func()
	tick = func() {
		t.keepalive = nil
		sa := t.sa
		if sa == nil || sa.state != stateEstablished || !sa.floated {
			return
		}
		t.sendKeepalive(sa)
		t.keepalive = t.e.afterFunc(iv, tick)
	}
	t.keepalive = t.e.afterFunc(iv, tick)
}

func (t *tunnel) stopKeepalive() {
	if t.keepalive != nil {
		t.keepalive.Stop()
		t.keepalive = nil
	}
}

func (t *tunnel) sendKeepalive(sa *ikeSA) {
	s := t.e.sockets[sa.local]
	if s == nil {
		return
	}
	ka := []byte{0xff}
	if t.e.sink != nil {
		t.e.sink.Packet(sa.local, sa.remote, ka)
	}
	if err := s.conn.WriteTo(ka, sa.remote); err != nil {
		t.log.WithError(err).Debug("NAT-keepalive not sent")
	}
}

// authenticated is called for every authenticated IKE message of an
// established SA: proof of life for DPD, and the peer's current mapping.
func (sa *ikeSA) authenticated(from netip.AddrPort) {
	sa.peerConfirmed = true // phase1notify.go
	t := sa.t
	if t == nil {
		return
	}
	t.dpdSeen(timeNow(), "IKE message")
	if sa.floated && from.IsValid() && from != sa.remote {
		t.peerMoved(sa.remote, from, "IKE")
	}
}

// peerMoved follows the peer to a new NAT mapping. via is "IKE" or "ESP".
func (t *tunnel) peerMoved(from, to netip.AddrPort, via string) {
	moved := false
	for _, sa := range t.ikeSAs {
		if sa.floated && sa.remote != to {
			sa.remote, moved = to, true
		}
	}
	for _, sa := range t.v2SAs {
		if sa.floated && sa.remote != to {
			sa.remote, moved = to, true
		}
	}
	for _, c := range t.children {
		if c.pair.UDPEncap && c.pair.Remote != to {
			c.pair.Remote, moved = to, true
		}
	}
	if !moved {
		return
	}
	t.log.WithFields(logrus.Fields{"from": from.String(), "to": to.String(), "via": via}).Info("NAT rebinding: the peer's address changed, following it")
	t.e.emit(Event{Tunnel: t.cfg.Name, Type: "peer-moved", Detail: map[string]string{"from": from.String(), "to": to.String(), "via": via}})
	if pm, ok := t.e.dp.(PeerMover); ok && via != "ESP" {
		pm.UpdatePeer(t.cfg.Name, to)
	}
}
