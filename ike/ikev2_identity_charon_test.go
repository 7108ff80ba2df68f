package ike

import (
	"context"
	"crypto"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// TestIKEv2IdentityCharon: a strongSwan charon with `id = vpn.example.com`
// (ID_FQDN) that requires `remote.id = "@#..."` (ID_KEY_ID) of us, and our
// engine with that KEY_ID as LocalIdentity and the FQDN as RemoteIdentity,
// with charon and with us initiating: both sides authenticate each other
// and the child SA comes up. Controls: charon refuses another KEY_ID
// (AUTHENTICATION_FAILED), we refuse charon's FQDN when we expect another.
func TestIKEv2IdentityCharon(t *testing.T) {
	if err := netlab.Usable(); err != nil {
		t.Skipf("needs network namespaces: %v", err)
	}
	if err := strongswan.Available(nil); err != nil {
		t.Skipf("needs strongSwan: %v", err)
	}
	const keyHex = "00ff10a56b6579" // not printable: charon prints it in hex
	for _, tc := range []struct {
		name, ourID, wantErr string
		weInitiate           bool
	}{
		{"charon-starts", "@#" + keyHex, "", false},
		{"we-initiate", "@#" + keyHex, "", true},
		// Control: charon does enforce its remote.id.
		{"charon-refuses", "@#00ff10a56b657a", "AUTHENTICATION_FAILED", true},
		// Control: we enforce RemoteIdentity against charon's FQDN.
		{"we-refuse", "@#" + keyHex, `peer identity ID_FQDN "vpn.example.com" is not the configured ID_FQDN other.example.com`, true},
	} {
		weInitiate := tc.weInitiate
		t.Run(tc.name, func(t *testing.T) {
			_, cgwNS, vgwNS := netlab.NewPair(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			ch, err := strongswan.Start(ctx, cgwNS, strongswan.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("charon log:\n%s", ch.LogTail(80))
				}
			})
			const psk = "Interop.identities.0123456789"
			conn := strongswan.Conn{Name: "t", Version: 2, LocalAddrs: "10.99.0.2", RemoteAddrs: "10.99.0.1",
				LocalID: "vpn.example.com", RemoteID: "KEYIDPLACEHOLDER",
				Proposals: []string{"aes256-sha256-modp2048"}, Encap: true, ReauthTime: "0s", RekeyTime: "0s", PSK: psk,
				Children: []strongswan.Child{{Name: "t-net", LocalTS: []string{"0.0.0.0/0"}, RemoteTS: []string{"0.0.0.0/0"},
					ESPProposals: []string{"aes128-sha256"}, LifeTime: "3600s", RekeyTime: "0s"}}}
			text, err := strongswan.Config{Connections: []strongswan.Conn{conn}}.Render()
			if err != nil {
				t.Fatal(err)
			}
			// Render's value check has no '@' or '#': write strongSwan's
			// KEY_ID notation (quoted, '#' starts a comment) ourselves.
			text = strings.ReplaceAll(text, "KEYIDPLACEHOLDER", `"@#`+keyHex+`"`)
			f := filepath.Join(t.TempDir(), "swanctl.conf")
			if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := ch.LoadFile(ctx, f); err != nil {
				t.Fatalf("swanctl --load-all: %v\n%s", err, out)
			}

			vt := baseTunnel(netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2"), DefaultPorts)
			vt.PSK = Secret(psk)
			vt.IKEVersions = []policy.Version{policy.IKEv2}
			vt.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 256, Hash: crypto.SHA256, DHGroup: 14}}
			vt.Phase2.Proposals = []Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA2256}}
			vt.LocalIdentity = mustIdentity(t, tc.ourID)
			vt.RemoteIdentity = mustIdentity(t, "vpn.example.com")
			if strings.Contains(tc.wantErr, "other.example.com") {
				vt.RemoteIdentity = mustIdentity(t, "other.example.com")
			}
			if weInitiate {
				vt.StartupAction = StartupStart
			}
			g := startGW(t, "vgw", Config{Tunnels: []TunnelConfig{vt}}, WithBinder(nsBinder{vgwNS}))
			if !weInitiate {
				g.e.Status() // bound
				if out, err := ch.Initiate(ctx, "t-net", 15*time.Second); err != nil {
					t.Fatalf("charon's initiate: %v\n%s", err, out)
				}
			}
			if tc.wantErr != "" {
				waitError(t, g, tc.wantErr)
				return
			}
			g.waitEvent(t, "phase2-up", 20*time.Second)
			ci, _, err := ch.WaitEstablished(ctx, "t", "t-net", 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			st := g.tunnel(t)
			if ci.Version != 2 || st.IKEVersion != "ikev2" || st.Status != "UP" {
				t.Fatalf("charon v%d, ours %s %s", ci.Version, st.IKEVersion, st.Status)
			}
			t.Logf("charon's identities: local %q remote %q", ci.LocalID, ci.RemoteID)
			if ci.LocalID != "vpn.example.com" || !strings.Contains(strings.ReplaceAll(strings.ToLower(ci.RemoteID), ":", ""), keyHex) {
				t.Fatalf("charon's identities: local %q remote %q", ci.LocalID, ci.RemoteID)
			}
			if !strings.Contains(g.logs.String(), `peer_id="ID_FQDN \"vpn.example.com\""`) && !weInitiate {
				t.Fatal("our log does not name the peer's FQDN identity")
			}
		})
	}
}
