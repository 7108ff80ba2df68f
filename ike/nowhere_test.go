package ike

import (
	"net/netip"
	"testing"

	"github.com/vpnlab/vpnlab/ike/sock"
)

// bindNowhere gives an engine whose loop does not run its IKE and NAT-T
// sockets on local in an in-memory network of its own: what it sends
// reaches nobody (a packet sink captures it), and no port is used.
func bindNowhere(t testing.TB, e *Engine, local netip.Addr) {
	t.Helper()
	nowhere := sock.NewNetwork()
	for _, p := range []uint16{e.cfg.Ports.IKE, e.cfg.Ports.NATT} {
		ap := netip.AddrPortFrom(local, p)
		c, err := nowhere.Open(ap)
		if err != nil {
			t.Fatal(err)
		}
		e.sockets[ap] = &socket{conn: c, local: ap, natt: p == e.cfg.Ports.NATT}
	}
}
