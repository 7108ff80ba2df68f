package ike

import (
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Counting per exchange type (status.go's ExchangeCounters). The engine loop
// owns every counter; Status copies them.

// exchangeCounters returns the counters of an exchange type, nil for one we do not count
// (an unsupported exchange type).
func exchangeCounters(x *ExchangeCounters, ex isakmp.ExchangeType) *ExchangeCount {
	switch ex {
	case isakmp.ExchangeIdentityProtection:
		return &x.Main
	case isakmp.ExchangeAggressive:
		return &x.Aggressive
	case isakmp.ExchangeQuickMode:
		return &x.Quick
	case isakmp.ExchangeInformational:
		return &x.Informational
	}
	return nil
}

// modeCounters returns the counters of a phase 1 exchange mode.
func modeCounters(x *ExchangeCounters, m ExchangeMode) *ExchangeCount {
	if m == AggressiveMode {
		return &x.Aggressive
	}
	return &x.Main
}

// impairCounters returns the counters of the exchange a sent message belongs to.
func impairCounters(x *ExchangeCounters, ex ImpairExchange) *ExchangeCount {
	switch ex {
	case ImpairMain:
		return &x.Main
	case ImpairAggressive:
		return &x.Aggressive
	case ImpairQuick:
		return &x.Quick
	case ImpairInformational:
		return &x.Informational
	}
	return nil
}

// countReceived counts a message of one of the tunnel's ISAKMP SAs.
func countReceived(c *Counters, ex isakmp.ExchangeType) {
	c.MessagesIn++
	if x := exchangeCounters(&c.Exchanges, ex); x != nil {
		x.Received++
	}
}

// v2ExchangeCounters returns the counters of an IKEv2 exchange type, nil
// for a type we do not count.
func v2ExchangeCounters(x *ExchangeCounters, ex wire.ExchangeType) *ExchangeCount {
	switch ex {
	case wire.ExchangeIKESAInit:
		return &x.IKESAInit
	case wire.ExchangeIKEAuth:
		return &x.IKEAuth
	case wire.ExchangeCreateChildSA:
		return &x.CreateChildSA
	case wire.ExchangeInformational:
		return &x.InformationalV2
	}
	return nil
}

// countV2Received counts an IKEv2 message of one of the tunnel's IKE SAs
// (or a first IKE_SA_INIT request for it), before decryption and checks.
func countV2Received(c *Counters, ex wire.ExchangeType) {
	c.MessagesIn++
	if x := v2ExchangeCounters(&c.Exchanges, ex); x != nil {
		x.Received++
	}
}

// v2MessageExchange is the exchange type in an IKEv2 datagram's header
// (RFC 7296 section 3.1: octet 18); 0 if it is too short.
func v2MessageExchange(msg []byte) wire.ExchangeType {
	if len(msg) < 28 {
		return 0
	}
	return wire.ExchangeType(msg[18])
}

// countV2Sent counts one IKEv2 datagram (a message or one of its
// fragments) that we sent.
func countV2Sent(c *Counters, msg []byte) {
	c.MessagesOut++
	if x := v2ExchangeCounters(&c.Exchanges, v2MessageExchange(msg)); x != nil {
		x.Sent++
	}
}

// countV2Retransmit counts one retransmission of a request of exchange
// type ex (once per message, however many fragments it has).
func countV2Retransmit(c *Counters, ex wire.ExchangeType) {
	c.Retransmits++
	if x := v2ExchangeCounters(&c.Exchanges, ex); x != nil {
		x.Retransmits++
	}
}

// countSent counts n datagrams of message r on the wire.
func (e *Engine) countSent(r msgRef, kind sendKind, n int) {
	t := e.byName[r.tunnel]
	if t == nil || n == 0 {
		return
	}
	x := impairCounters(&t.counters.Exchanges, r.ex)
	if x == nil {
		return
	}
	x.Sent += uint64(n)
	if kind == sendRetransmit {
		x.Retransmits++
	}
}

// retireCounters adds a deleted pair's data-path counters to the tunnel's
// totals (TunnelDataIn/Out and the packet and drop sums).
func (t *tunnel) retireCounters(n SACounters) {
	t.retiredIn += n.BytesIn
	t.retiredOut += n.BytesOut
	t.retiredPktIn += n.PacketsIn
	t.retiredPktOut += n.PacketsOut
	for k, v := range n.Drops {
		if v == 0 {
			continue
		}
		if t.retiredDrops == nil {
			t.retiredDrops = map[string]uint64{}
		}
		t.retiredDrops[k] += v
	}
}
