package ike

import (
	"fmt"

	"github.com/sirupsen/logrus"
)

// One SA pair per tunnel.
//
// AWS: "You are limited to one unique security association (SA) pair per
// tunnel (one inbound and one outbound) ... Some devices use a policy-based
// VPN and create as many SAs as ACL entries" and "If you are using
// policy-based configuration, you must limit your configuration to a single
// security association" (AWS Site-to-Site VPN user guide, your-cgw.md). The
// data path follows that model too: a tunnel's outbound traffic goes through
// its newest pair (datapath: outbound by tunnel).
//
// A peer that negotiates a second quick mode with other traffic selectors on
// the same tunnel (strongSwan with a "bgp" child for the inside /30 and a
// "net" child for the networks, a common configuration) would otherwise get
// both pairs installed, and everything would leave through the newest pair,
// whose selectors do not cover the other traffic: BGP breaks without a word.
// Pairs with the same selectors are rekeys (make-before-break, tunnel.go)
// and are not concerned.
//
// What this engine does: the newest negotiation wins. Every older pair of
// the tunnel with other selectors is deleted at once and the peer is told
// (DELETE), the way a rekey replaces a pair. The log says which pair went
// and why, the tunnel's last_error and counters.phase2_superseded keep it
// for the status, and a "phase2-superseded" event carries both selector
// pairs. The documentation states the limit, not which pair survives; the
// newest one is what the data path carries anyway, and the peer learns of
// the removal at once instead of black-holing half of its traffic.

// superseded is the reason a superseded pair is deleted with.
const superseded = "AWS keeps one SA pair per tunnel: replaced by a pair with other traffic selectors"

// keepOnePair deletes the tunnel's pairs whose traffic selectors differ from
// those of nw, the pair just installed.
func (t *tunnel) keepOnePair(nw *childSA) {
	var old []*childSA
	for _, c := range t.children {
		if c != nw && (c.pair.LocalTS != nw.pair.LocalTS || c.pair.RemoteTS != nw.pair.RemoteTS) {
			old = append(old, c)
		}
	}
	for _, c := range old {
		was := fmt.Sprintf("%s === %s", c.pair.LocalTS, c.pair.RemoteTS)
		now := fmt.Sprintf("%s === %s", nw.pair.LocalTS, nw.pair.RemoteTS)
		t.counters.Phase2Superseded++
		t.log.WithFields(logrus.Fields{"deleted_spi_in": fmt.Sprintf("%08x", c.pair.Inbound.SPI), "deleted_ts": was,
			"new_spi_in": fmt.Sprintf("%08x", nw.pair.Inbound.SPI), "new_ts": now}).
			Warn("the peer negotiated a second IPsec SA pair with other traffic selectors on this tunnel; " +
				"AWS allows one SA pair per tunnel (policy-based configurations must use a single SA, e.g. 0.0.0.0/0 === 0.0.0.0/0): " +
				"deleting the older pair, only the newest one carries traffic")
		t.e.emit(Event{Tunnel: t.cfg.Name, Type: "phase2-superseded", Detail: map[string]string{
			"deleted_ts": was, "kept_ts": now, "deleted_spi_in": fmt.Sprintf("%08x", c.pair.Inbound.SPI)}})
		t.deleteChild(c, superseded, true)
		t.lastError = fmt.Sprintf("phase 2: the peer negotiated more than one SA pair (%s, then %s); AWS keeps one SA pair per tunnel: the older one was deleted", was, now)
	}
}
