package gwconfig

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/policy"
)

// TestIdentities: local_id/remote_id as addresses (both IKE versions),
// FQDNs and KEY_IDs (IKEv2 only: LocalIdentity/RemoteIdentity), in the
// forms vpn.example.com, @vpn.example.com, keyid:HEX and @#HEX; the
// summary and the startup line show them in strongSwan's notation.
func TestIdentities(t *testing.T) {
	c := mustParse(t, CGW, minimal("    ike_versions: [ikev2]\n    local_id: '@cgw.example.com'\n    remote_id: keyid:6B6579\n"))
	tn := &c.IKE.Tunnels[0]
	if tn.LocalIdentity.Type != policy.IdentityFQDN || tn.LocalIdentity.Name != "cgw.example.com" ||
		tn.RemoteIdentity.Type != policy.IdentityKeyID || string(tn.RemoteIdentity.KeyID) != "key" {
		t.Fatalf("identities %+v %+v", tn.LocalIdentity, tn.RemoteIdentity)
	}
	if tn.LocalID != tn.LocalAddr || tn.RemoteID.IsValid() {
		t.Fatalf("address ids %v %v", tn.LocalID, tn.RemoteID)
	}
	if d := DescribeTunnel(tn); !strings.Contains(d, "local_id=cgw.example.com remote_id=@#6b6579") {
		t.Fatalf("DescribeTunnel: %s", d)
	}
	if s := c.Summary(); !strings.Contains(s, "(id cgw.example.com)") || !strings.Contains(s, "(id @#6b6579)") {
		t.Fatalf("Summary:\n%s", s)
	}

	c = mustParse(t, VGW, minimal("    ike_versions: ikev2\n    local_id: '@#00ff'\n    remote_id: cgw.example.com\n"))
	tn = &c.IKE.Tunnels[0]
	if tn.LocalIdentity.String() != "@#00ff" || tn.RemoteIdentity.String() != "cgw.example.com" {
		t.Fatalf("identities %s %s", tn.LocalIdentity, tn.RemoteIdentity)
	}

	// Addresses stay LocalID/RemoteID, with IKEv1 too.
	c = mustParse(t, CGW, minimal("    local_id: 192.0.2.7\n    remote_id: 192.0.2.8\n"))
	tn = &c.IKE.Tunnels[0]
	if tn.LocalIdentity.IsSet() || tn.RemoteIdentity.IsSet() || tn.LocalID != netip.MustParseAddr("192.0.2.7") || tn.RemoteID != netip.MustParseAddr("192.0.2.8") {
		t.Fatalf("address identities %+v", tn)
	}
}

// TestIdentityErrors: malformed identities and FQDN/KEY_ID identities on a
// tunnel that allows IKEv1 are errors with the file and line.
func TestIdentityErrors(t *testing.T) {
	for _, tc := range []struct{ extra, want string }{
		{"    ike_versions: [ikev2]\n    local_id: user@example.com\n", `test.yaml:7: tunnels[0].local_id: "user@example.com" is neither an IP address, a domain name, keyid:HEX nor @#HEX`},
		{"    ike_versions: [ikev2]\n    remote_id: '@#abc'\n", `test.yaml:7: tunnels[0].remote_id: "@#abc": a KEY_ID is an even number of hex digits`},
		{"    ike_versions: [ikev2]\n    remote_id: 'keyid:'\n", `test.yaml:7: tunnels[0].remote_id: "keyid:" is neither`},
		{"    local_id: vpn.example.com\n", "test.yaml:6: tunnels[0].local_id: vpn.example.com (ID_FQDN) needs IKEv2: the tunnel allows IKEv1"},
		{"    ike_versions: [ikev2, ikev1]\n    remote_id: '@#6b6579'\n", "test.yaml:7: tunnels[0].remote_id: @#6b6579 (ID_KEY_ID) needs IKEv2"},
		{"    ike_versions: [ikev2]\n    local_id: 0.0.0.0\n", "test.yaml:7: tunnels[0].local_id: 0.0.0.0 is not a unicast address"},
	} {
		wantErr(t, CGW, minimal(tc.extra), tc.want)
	}
}
