package ike

import (
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/policy"
)

func mustIdentity(t *testing.T, s string) policy.Identity {
	t.Helper()
	id, err := policy.ParseIdentity(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// identityPair sets the cgw's and vgw's local identities and makes each
// expect the other's; with vgwInitiates the vgw starts (IKEv2 only) and
// the cgw waits.
func identityPair(t *testing.T, cgwID, vgwID, cgwExpects, vgwExpects string, vgwInitiates bool) (cgw, vgw *gw) {
	cgw, vgw, _ = newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) {
		ct.LocalIdentity, vt.LocalIdentity = mustIdentity(t, cgwID), mustIdentity(t, vgwID)
		ct.RemoteIdentity, vt.RemoteIdentity = mustIdentity(t, cgwExpects), mustIdentity(t, vgwExpects)
		if vgwInitiates {
			vt.IKEVersions, vt.StartupAction = []policy.Version{policy.IKEv2}, StartupStart
			ct.StartupAction = StartupAdd
		}
	}})
	return cgw, vgw
}

// TestIKEv2IdentityFQDNAndKeyID: two engines with FQDN and KEY_ID
// identities (each expecting exactly the other's), with the cgw and with
// the vgw initiating, and mixed (an FQDN one way, a KEY_ID the other):
// both ends authenticate and bring the child SA up.
func TestIKEv2IdentityFQDNAndKeyID(t *testing.T) {
	for _, tc := range []struct{ name, cgwID, vgwID string }{
		{"fqdn", "cgw.example.com", "@vpn.example.com"},
		{"keyid", "keyid:6367772d31", "@#7667772d31"},
		{"mixed", "@#00ff10", "vpn.example.com"},
		{"fqdn-and-address", "cgw.example.com", "192.0.2.2"},
	} {
		for _, vgwInitiates := range []bool{false, true} {
			name := tc.name + "/cgw-initiates"
			if vgwInitiates {
				name = tc.name + "/vgw-initiates"
			}
			t.Run(name, func(t *testing.T) {
				cgw, vgw := identityPair(t, tc.cgwID, tc.vgwID, tc.vgwID, tc.cgwID, vgwInitiates)
				cgw.waitEvent(t, "phase2-up", 10*time.Second)
				vgw.waitEvent(t, "phase2-up", 10*time.Second)
				checkPairsMatch(t, cgw, vgw)
				cs, vs := cgw.tunnel(t), vgw.tunnel(t)
				if cs.IKEVersion != "ikev2" || vs.IKEVersion != "ikev2" || cs.Status != "UP" || vs.Status != "UP" {
					t.Fatalf("cgw %s %s, vgw %s %s", cs.IKEVersion, cs.Status, vs.IKEVersion, vs.Status)
				}
				if (cs.Role == "initiator") == vgwInitiates {
					t.Fatalf("cgw role %s with vgwInitiates %v", cs.Role, vgwInitiates)
				}
			})
		}
	}
}

// TestIKEv2IdentityMismatch: a peer whose identity differs in value or in
// type (the same octets as ID_KEY_ID instead of ID_FQDN) from
// RemoteIdentity is refused with AUTHENTICATION_FAILED, by the responder
// and by the initiator; last_error names the identity that came and the
// one expected.
func TestIKEv2IdentityMismatch(t *testing.T) {
	for _, tc := range []struct {
		name                                 string
		cgwID, vgwID, cgwExpects, vgwExpects string
		vgwInitiates, responderRefuses       bool
		want                                 string
	}{
		{"responder-fqdn-value", "cgw.example.com", "vpn.example.com", "vpn.example.com", "other.example.com", false, true,
			`peer identity ID_FQDN "cgw.example.com" is not the configured ID_FQDN other.example.com`},
		{"responder-type", "cgw.example.com", "@#76706e2e6578616d706c652e636f6d", "vpn.example.com", "cgw.example.com", true, true,
			`peer identity ID_KEY_ID 76706e2e6578616d706c652e636f6d is not the configured ID_FQDN vpn.example.com`},
		{"initiator-keyid-value", "cgw.example.com", "@#0102", "@#0103", "cgw.example.com", false, false,
			`peer identity ID_KEY_ID 0102 is not the configured ID_KEY_ID @#0103`},
		{"initiator-address", "cgw.example.com", "192.0.2.2", "vpn.example.com", "cgw.example.com", false, false,
			`peer identity 192.0.2.2 is not the configured ID_FQDN vpn.example.com`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cgw, vgw := identityPair(t, tc.cgwID, tc.vgwID, tc.cgwExpects, tc.vgwExpects, tc.vgwInitiates)
			initiator, responder := cgw, vgw
			if tc.vgwInitiates {
				initiator, responder = vgw, cgw
			}
			if tc.responderRefuses {
				waitError(t, responder, "IKEv2: authentication failed: "+tc.want)
				waitError(t, initiator, "AUTHENTICATION_FAILED")
			} else {
				waitError(t, initiator, "IKEv2: authentication failed: "+tc.want)
				// The responder had accepted the initiator and
				// established; the initiator tells it in an
				// INFORMATIONAL with AUTHENTICATION_FAILED (section
				// 2.21.2), and its IKE SA and child go.
				if st := waitError(t, responder, "AUTHENTICATION_FAILED after IKE_AUTH"); st.Phase1State == "Established" || st.Status == "UP" {
					t.Fatalf("responder %s %s after the initiator refused it", st.Phase1State, st.Status)
				}
			}
			// The side that refused has no IKE SA.
			refuser := initiator
			if tc.responderRefuses {
				refuser = responder
			}
			if st := refuser.tunnel(t); st.Phase1State == "Established" || st.Status == "UP" {
				t.Fatalf("%s %s after an identity mismatch", st.Phase1State, st.Status)
			}
		})
	}
}

// TestIKEv2LocalIdentityPayload: the ID payload sent is the identity's
// type and octets (the body AUTH signs); an invalid configured identity is
// an error, not an empty payload.
func TestIKEv2LocalIdentityPayload(t *testing.T) {
	_, vt := v2FuzzTunnels()
	tun := &tunnel{cfg: &vt}
	for _, tc := range []struct {
		id   string
		typ  wire.IDType
		data string
	}{{"vpn.example.com", wire.IDFQDN, "vpn.example.com"}, {"@#6b6579", wire.IDKeyID, "key"}, {"keyid:00", wire.IDKeyID, "\x00"},
		{"198.51.100.7", wire.IDIPv4Addr, "\xc6\x33\x64\x07"}} {
		vt.LocalIdentity = mustIdentity(t, tc.id)
		p, err := tun.localV2ID(true)
		if err != nil || !p.Responder || p.IDType != tc.typ || string(p.Data) != tc.data {
			t.Fatalf("%s: %+v %v", tc.id, p, err)
		}
		if got := v2IDBody(p); got[0] != byte(tc.typ) || string(got[4:]) != tc.data {
			t.Fatalf("%s: ID body %x", tc.id, got)
		}
	}
	vt.LocalIdentity = policy.Identity{Type: policy.IdentityFQDN, Name: "bad name"}
	if _, err := tun.localV2ID(false); err == nil {
		t.Fatal("an invalid local identity was sent")
	}
}
