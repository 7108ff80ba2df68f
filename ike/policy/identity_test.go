package policy

import (
	"net/netip"
	"testing"
)

// TestParseIdentity: addresses, FQDNs (with or without @), keyid:HEX and
// @#HEX parse to the right type and print in strongSwan's notation;
// e-mail addresses, DNs, odd hex and empty values are refused.
func TestParseIdentity(t *testing.T) {
	for _, tc := range []struct {
		in, str string
		typ     IdentityType
	}{
		{"192.0.2.1", "192.0.2.1", IdentityAddr},
		{"2001:db8::1", "2001:db8::1", IdentityAddr},
		{"vpn.example.com", "vpn.example.com", IdentityFQDN},
		{"@vpn.example.com", "vpn.example.com", IdentityFQDN},
		{"gw1", "gw1", IdentityFQDN},
		{"keyid:6B6579", "@#6b6579", IdentityKeyID},
		{"@#6b6579", "@#6b6579", IdentityKeyID},
	} {
		id, err := ParseIdentity(tc.in)
		if err != nil || id.Type != tc.typ || id.String() != tc.str || id.Validate() != nil {
			t.Fatalf("%q: %+v %q %v", tc.in, id, id.String(), err)
		}
	}
	for _, bad := range []string{"", "@", "@#", "@#6b6", "keyid:zz", "user@example.com", "@@user@example.com",
		"C=CH, O=strongSwan", "a b", "-vpn.example.com", "fe80::1%eth0"} {
		if id, err := ParseIdentity(bad); err == nil {
			t.Fatalf("%q parsed as %+v", bad, id)
		}
	}
	a := Identity{Type: IdentityAddr, Addr: netip.MustParseAddr("192.0.2.1")}
	f := Identity{Type: IdentityFQDN, Name: "VPN.example.com"}
	k := Identity{Type: IdentityKeyID, KeyID: []byte("VPN.example.com")}
	if !f.Equal(Identity{Type: IdentityFQDN, Name: "vpn.example.com"}) || f.Equal(k) || a.Equal(f) || !k.Equal(k) || k.Equal(Identity{Type: IdentityKeyID, KeyID: []byte("vpn.example.com")}) {
		t.Fatal("Equal")
	}
	if (Identity{}).IsSet() || (Identity{}).Validate() != nil || (Identity{Type: IdentityKeyID}).Validate() == nil {
		t.Fatal("unset/empty")
	}
}
