package scenarios

import (
	"context"
	"fmt"
	"net"

	"github.com/vpnlab/vpnlab/internal/ikeflood"
	"github.com/vpnlab/vpnlab/scenarios/report"
)

// flood sends main mode first messages from the WAN router to a tunnel's
// AWS endpoint (a source the responder does not know).
func (ru *runner) flood(ctx context.Context, f *FloodStep, rs *report.Step) error {
	t := ru.s.plan.tunnel(f.Tunnel)
	var conn net.PacketConn
	err := ru.l.wan.Do(func() error {
		var e error
		conn, e = net.ListenPacket("udp4", net.JoinHostPort(wanPublicAddr.String(), "0"))
		return e
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	dst := &net.UDPAddr{IP: t.AWSOutside.AsSlice(), Port: 500}
	ru.w.runnerEvent("flood", map[string]string{"tunnel": f.Tunnel, "count": fmt.Sprint(f.Count)})
	n, err := ikeflood.Flood(ctx, conn, dst, f.Count, f.Rate)
	rs.Message = fmt.Sprintf("%d first messages sent", n)
	return err
}
