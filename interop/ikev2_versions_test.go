package interop

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// TestIKEv2VGWDefaultVersions: a vgw tunnel without ike_versions allows
// both versions, as AWS's default: it answers charon's IKEv1 main mode and
// charon's IKEv2 IKE_SA_INIT alike, and its status names the version the
// peer chose. Behind the SNAT, so NAT-T is real in both.
func TestIKEv2VGWDefaultVersions(t *testing.T) {
	requirements(t)
	bin := buildGateway(t, "vgw")
	tp := topologies[1]
	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprintf("ikev%d", version), func(t *testing.T) {
			e := newEnv(t, tp)
			psk := newPSK(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dir := e.lab.LogDir()
			p := fmt.Sprintf("    phase1: {proposals: [%s]}\n    phase2: {proposals: [%s]}\n", ikeProposal, ourP2Proposal)
			g := e.startGateway(bin, "vgw", ourConfig(dir, "vgw", tp.vgwAddr, tp.vgwAddr, tp.cgwID, netipAny, netipAny, false, p), psk, e.vgw)
			c := e.startCharon(ctx, e.cgw, strongswan.Conn{
				Name: strongswanConn, Version: version, LocalAddrs: tp.cgwLocal.String(), RemoteAddrs: tp.vgwAddr.String(),
				LocalID: tp.cgwID.String(), RemoteID: tp.vgwAddr.String(), Proposals: []string{ikeProposal},
				Encap: true, ReauthTime: "0s", RekeyTime: "0s", KeyingTries: "1", PSK: psk,
				Children: []strongswan.Child{{Name: strongswanCSA, LocalTS: []string{"0.0.0.0/0"}, RemoteTS: []string{"0.0.0.0/0"},
					ESPProposals: []string{espProposal}, LifeTime: "3600s", RekeyTime: "0s"}},
			})
			go c.Initiate(ctx, strongswanCSA, upTimeout) //nolint:errcheck // waitUp reports the outcome
			sa, child := e.waitUp(ctx, c, g)
			t.Logf("strongSwan:%s", strongswan.Summary([]strongswan.IKESA{sa}))
			if sa.Version != version {
				t.Errorf("charon: IKE version %d, want %d", sa.Version, version)
			}
			want := map[int]string{1: "ikev1", 2: "ikev2"}[version]
			tu, err := control.Dial(g.control).Tunnel(ctx, tunnelName)
			if err != nil {
				t.Fatal(err)
			}
			if tu.IKEVersion != want || tu.Phase1State != "Established" {
				t.Errorf("our vgw: ike_version %q phase1 %s, want %q Established", tu.IKEVersion, tu.Phase1State, want)
			}
			if len(tu.SAs) != 1 || tu.SAs[0].InboundSPI != child.SPIOut {
				t.Errorf("our vgw: SAs %+v, want one with inbound SPI %s", tu.SAs, child.SPIOut)
			}
		})
	}
}

// netipAny is 0.0.0.0/0, AWS's default traffic selector.
var netipAny = netip.MustParsePrefix("0.0.0.0/0")
