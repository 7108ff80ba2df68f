package ike

import "github.com/vpnlab/vpnlab/ike/isakmp"

// Counting per exchange type (status.go's ExchangeCounters). The engine loop
// owns every counter; Status copies them.

// of returns the counters of an exchange type, nil for one we do not count
// (an unsupported exchange type).
func (x *ExchangeCounters) of(ex isakmp.ExchangeType) *ExchangeCount {
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

// ofMode returns the counters of a phase 1 exchange mode.
func (x *ExchangeCounters) ofMode(m ExchangeMode) *ExchangeCount {
	if m == AggressiveMode {
		return &x.Aggressive
	}
	return &x.Main
}

// ofImpair returns the counters of the exchange a sent message belongs to.
func (x *ExchangeCounters) ofImpair(ex ImpairExchange) *ExchangeCount {
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

// received counts a message of one of the tunnel's ISAKMP SAs.
func (c *Counters) received(ex isakmp.ExchangeType) {
	c.MessagesIn++
	if x := c.Exchanges.of(ex); x != nil {
		x.Received++
	}
}

// countSent counts n datagrams of message r on the wire.
func (e *Engine) countSent(r msgRef, kind sendKind, n int) {
	t := e.byName[r.tunnel]
	if t == nil || n == 0 {
		return
	}
	x := t.counters.Exchanges.ofImpair(r.ex)
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

// addLive adds a live pair's data-path counters to a tunnel's status.
func (st *TunnelStatus) addLive(c SACounters) {
	st.DataIn += c.BytesIn
	st.DataOut += c.BytesOut
	st.PacketsIn += c.PacketsIn
	st.PacketsOut += c.PacketsOut
	for k, v := range c.Drops {
		if st.Drops == nil {
			st.Drops = map[string]uint64{}
		}
		st.Drops[k] += v
	}
}
