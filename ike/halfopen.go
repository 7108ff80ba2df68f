package ike

import (
	"net/netip"

	"github.com/sirupsen/logrus"
)

// Half-open ISAKMP SAs: responder state created by a first message (MM1 or
// AM1) that has not completed phase 1. Only first messages from a
// configured peer address create one (others are answered
// NO-PROPOSAL-CHOSEN without state), and each lives at most
// halfOpenTimeout (30 s). Two bounds apply:
//
//   - per peer address: halfOpenPerTunnel (4) for every tunnel configured
//     with that remote address. A flood that spoofs one customer's address
//     fills only that address's slots; every other peer still negotiates.
//   - engine-wide: the larger of Config.MaxHalfOpen (default 1,024) and
//     halfOpenPerTunnel times the number of tunnels, so that a mass
//     reconnect of every configured tunnel at once always fits (2,000
//     tunnels: 8,000) and memory stays bounded by the configuration.
//
// A refused first message is dropped silently (answering would make the
// responder an amplifier), counted in half_open_refused and logged once
// per 100.

// halfOpenPerTunnel is how many half-open SAs one tunnel's peer may hold:
// its own negotiation, a collision with ours, and a retry while an
// abandoned attempt waits out its 30 s.
const halfOpenPerTunnel = 4

// halfOpenLimits computes the bounds from the configuration.
func (e *Engine) halfOpenLimits() {
	e.halfOpenPeerMax = map[netip.Addr]int{}
	for _, t := range e.tunnels {
		e.halfOpenPeerMax[t.cfg.RemoteAddr] += halfOpenPerTunnel
	}
	e.halfOpenMax = max(e.cfg.MaxHalfOpen, halfOpenPerTunnel*len(e.tunnels))
	e.halfOpenBy = map[netip.Addr]int{}
}

// admitHalfOpen decides whether a first message from peer may create state.
func (e *Engine) admitHalfOpen(peer netip.Addr, log logrus.FieldLogger) bool {
	perPeer := e.halfOpenPeerMax[peer]
	switch {
	case e.halfOpenBy[peer] >= perPeer:
		e.counters.HalfOpenRefused++
		e.counters.HalfOpenPeerRefused++
		if e.counters.HalfOpenPeerRefused%100 == 1 {
			log.WithFields(logrus.Fields{"half_open_peer": e.halfOpenBy[peer], "limit": perPeer, "refused": e.counters.HalfOpenPeerRefused}).
				Warn("too many half-open ISAKMP SAs from this peer address: dropping its new first messages")
		}
		return false
	case e.halfOpen >= e.halfOpenMax:
		e.counters.HalfOpenRefused++
		if e.counters.HalfOpenRefused%100 == 1 {
			log.WithFields(logrus.Fields{"half_open": e.halfOpen, "limit": e.halfOpenMax, "refused": e.counters.HalfOpenRefused}).
				Warn("too many half-open ISAKMP SAs: dropping new first messages")
		}
		return false
	}
	return true
}

// holdHalfOpen counts a new responder SA as half-open.
func (e *Engine) holdHalfOpen(sa *ikeSA, peer netip.Addr) {
	e.hold(&sa.halfOpen, &sa.halfOpenPeer, peer)
}

// releaseHalfOpen ends an SA's half-open count (established or deleted).
func (e *Engine) releaseHalfOpen(sa *ikeSA) { e.release(&sa.halfOpen, sa.halfOpenPeer) }

// holdHalfOpenV2 counts a new IKEv2 responder SA as half-open: IKEv1 and
// IKEv2 first messages share the bounds.
func (e *Engine) holdHalfOpenV2(sa *ikev2SA, peer netip.Addr) {
	e.hold(&sa.halfOpen, &sa.halfOpenPeer, peer)
}

// releaseHalfOpenV2 ends an IKEv2 SA's half-open count.
func (e *Engine) releaseHalfOpenV2(sa *ikev2SA) { e.release(&sa.halfOpen, sa.halfOpenPeer) }

// hold marks an SA (its flag and peer fields) half-open and counts it.
func (e *Engine) hold(on *bool, at *netip.Addr, peer netip.Addr) {
	*on, *at = true, peer
	e.halfOpen++
	e.halfOpenBy[peer]++
}

// release uncounts an SA marked half-open, once.
func (e *Engine) release(on *bool, peer netip.Addr) {
	if !*on {
		return
	}
	*on = false
	e.halfOpen--
	if e.halfOpenBy[peer]--; e.halfOpenBy[peer] <= 0 {
		delete(e.halfOpenBy, peer)
	}
}
