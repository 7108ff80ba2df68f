package interop

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// TestIKEv2FragmentedIKEAuth: charon with a fragment size of 200 bytes
// sends its IKE_AUTH request in RFC 7383 fragments (SKF) because our vgw
// announced IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT; the vgw must
// reassemble them and establish the IKE SA and the child.
func TestIKEv2FragmentedIKEAuth(t *testing.T) {
	requirements(t)
	bin := buildGateway(t, "vgw")
	tp := topologies[0]
	s := v2Suites[0]
	e := newEnv(t, tp)
	psk := newPSK(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := e.lab.LogDir()
	g := e.startGateway(bin, "vgw", ourConfig(dir, "vgw", tp.vgwAddr, tp.vgwAddr, tp.cgwID, netipAny, netipAny, false, s.v2Tunnel("")), psk, e.vgw)
	conn := s.v2Conn(psk)
	conn.Fragmentation = "yes"
	conn.LocalAddrs, conn.RemoteAddrs = tp.cgwLocal.String(), tp.vgwAddr.String()
	conn.Children[0].LocalTS, conn.Children[0].RemoteTS = []string{"0.0.0.0/0"}, []string{"0.0.0.0/0"}
	c := e.startCharonWith(ctx, e.cgw, strongswan.Options{LogLevel: 1, Extra: "  fragment_size = 200\n"}, conn)
	go c.Initiate(ctx, strongswanCSA, upTimeout) //nolint:errcheck // waitUp reports the outcome
	sa, child := e.waitUp(ctx, c, g)
	checkV2StrongSwan(t, s, sa, child, true)
	checkV2Ours(t, g, s, sa, child, "responder")
	v2WaitLog(t, c, regexp.MustCompile(`splitting IKE message \(\d+ bytes\) into \d+ fragments`), time.Second)
}
