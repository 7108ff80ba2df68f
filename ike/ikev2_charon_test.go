package ike

import (
	"context"
	"crypto"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/ike/sock"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// nsBinder opens the engine's kernel UDP sockets inside a namespace.
type nsBinder struct{ ns *netlab.NS }

func (b nsBinder) Open(ap netip.AddrPort) (sock.Conn, error) {
	var c sock.Conn
	err := b.ns.Do(func() error {
		var err error
		c, err = sock.UDP{}.Open(ap)
		return err
	})
	return c, err
}

// TestIKEv2Charon: the IKEv2 engine against a real strongSwan charon
// (kernel-libipsec, which fakes NAT detection so that IKE floats to 4500)
// in two namespaces: charon initiating and our engine initiating, AES-CBC
// and AES-GCM-16 IKE SAs, both sides sending IKE_AUTH in RFC 7383
// fragments (fragment sizes of 200 bytes). Both ends report the same
// IKEv2 SA (SPIs, proposal) and the child SA is up on both.
func TestIKEv2Charon(t *testing.T) {
	if err := netlab.Usable(); err != nil {
		t.Skipf("needs network namespaces: %v", err)
	}
	if err := strongswan.Available(nil); err != nil {
		t.Skipf("needs strongSwan: %v", err)
	}
	for _, tc := range []struct {
		name, ike, esp, want string
		p1                   Phase1Proposal
		p2                   Phase2Proposal
		weInitiate           bool
	}{
		{"charon-initiates-cbc", "aes256-sha256-modp2048", "aes128-sha256", "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
			Phase1Proposal{EncKeyBits: 256, Hash: crypto.SHA256, DHGroup: 14},
			Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA2256}, false},
		{"we-initiate-gcm", "aes128gcm16-prfsha384-ecp256", "aes256gcm16", "AES_GCM_16-128/PRF_HMAC_SHA2_384/ECP_256",
			Phase1Proposal{EncKeyBits: 128, Hash: crypto.SHA384, DHGroup: 19, GCM: true},
			Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKeyBits: 256}, true},
		{"we-initiate-sha1", "aes128-sha1-modp2048", "aes128-sha1", "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048",
			Phase1Proposal{EncKeyBits: 128, Hash: crypto.SHA1, DHGroup: 14},
			Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cgwNS, vgwNS := netlab.NewPair(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			ch, err := strongswan.Start(ctx, cgwNS, strongswan.Options{Extra: "  fragment_size = 200\n"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("charon log:\n%s", ch.LogTail(80))
				}
			})
			const psk = "Interop.0123456789abcdef"
			conn := strongswan.Conn{Name: "t", Version: 2, Fragmentation: "yes", LocalAddrs: "10.99.0.2", RemoteAddrs: "10.99.0.1",
				Proposals: []string{tc.ike}, Encap: true, ReauthTime: "0s", RekeyTime: "0s", PSK: psk, DPDDelay: "1s",
				Children: []strongswan.Child{{Name: "t-net", LocalTS: []string{"0.0.0.0/0"}, RemoteTS: []string{"0.0.0.0/0"},
					ESPProposals: []string{tc.esp}, LifeTime: "3600s", RekeyTime: "0s"}}}
			if err := ch.Load(ctx, strongswan.Config{Connections: []strongswan.Conn{conn}}); err != nil {
				t.Fatal(err)
			}
			vt := baseTunnel(netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2"), DefaultPorts)
			vt.PSK = Secret(psk)
			vt.IKEVersions = []policy.Version{policy.IKEv2}
			vt.Phase1.Proposals, vt.Phase2.Proposals = []Phase1Proposal{tc.p1}, []Phase2Proposal{tc.p2}
			if tc.weInitiate {
				vt.StartupAction = StartupStart
			}
			g := startGW(t, "vgw", Config{Tunnels: []TunnelConfig{vt}}, WithBinder(nsBinder{vgwNS}), withFragmentSize(200))
			if !tc.weInitiate {
				g.e.Status() // bound
				if out, err := ch.Initiate(ctx, "t-net", 15*time.Second); err != nil {
					t.Fatalf("charon's initiate: %v\n%s", err, out)
				}
			}
			g.waitEvent(t, "phase2-up", 20*time.Second)
			ci, _, err := ch.WaitEstablished(ctx, "t", "t-net", 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			st := g.tunnel(t)
			if ci.Version != 2 || ci.Proposal() != tc.want || st.IKEVersion != "ikev2" || st.Proposal != tc.p1.String() {
				t.Fatalf("charon v%d %q, ours %s %q", ci.Version, ci.Proposal(), st.IKEVersion, st.Proposal)
			}
			if !strings.EqualFold(strings.ReplaceAll(ci.InitiatorSPI, ":", ""), st.ICookie) || !strings.EqualFold(strings.ReplaceAll(ci.ResponderSPI, ":", ""), st.RCookie) {
				t.Fatalf("SPIs: charon %s/%s, ours %s/%s", ci.InitiatorSPI, ci.ResponderSPI, st.ICookie, st.RCookie)
			}
			if !st.Floated || len(g.dp.Pairs()) != 1 || !g.dp.Pairs()[0].UDPEncap {
				t.Fatalf("floated %v, pairs %d", st.Floated, len(g.dp.Pairs()))
			}
			// charon's liveness checks (dpd_delay 1 s) are answered.
			time.Sleep(2500 * time.Millisecond)
			log, _ := os.ReadFile(ch.LogPath())
			if !strings.Contains(string(log), "parsed INFORMATIONAL response") {
				t.Fatal("charon's liveness check got no answer")
			}
			if !strings.Contains(g.logs.String(), "message fragmented") || !strings.Contains(string(log), "reassembled fragmented IKE message") ||
				!strings.Contains(string(log), "splitting IKE message") {
				t.Fatal("IKE_AUTH was not fragmented both ways")
			}
		})
	}
}
