package ike

import "fmt"

// handleSALimit reacts to a lifetime event of the data path: the soft limit
// rekeys the pair (once), the hard limit deletes it, tells the peer and, if
// the tunnel should be up and has nothing left, negotiates a new pair.
func (e *Engine) handleSALimit(l SALimit) {
	for _, t := range e.tunnels {
		for _, c := range t.children {
			if c.pair.Inbound.Protocol != l.Protocol || c.pair.Inbound.SPI != l.InboundSPI {
				continue
			}
			spi := fmt.Sprintf("%08x", l.InboundSPI)
			if !l.Hard {
				t.log.WithField("spi_in", spi).WithField("why", l.Reason).Info("IPsec SA soft limit reached")
				t.rekeyChild(c, l.Reason)
				return
			}
			t.log.WithField("spi_in", spi).WithField("why", l.Reason).Warn("IPsec SA hard limit reached: deleting it")
			t.deleteChild(c, l.Reason, true)
			if t.wantUp && len(t.children) == 0 && !t.quickPending() && t.sa != nil && t.sa.state == stateEstablished {
				t.startQuickMode(nil)
			}
			return
		}
	}
}
