package policy

import (
	"crypto"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

func TestSecretNeverPrinted(t *testing.T) {
	s := Secret("s3cret-key")
	j, err := json.Marshal(struct{ PSK Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %x %q", s, s, s, s, s, s), fmt.Sprintf("%+v", Tunnel{PSK: s}), string(j)} {
		if strings.Contains(out, "s3cret") || strings.Contains(out, fmt.Sprintf("%x", "s3cret")) {
			t.Fatalf("the secret shows: %s", out)
		}
	}
}

func TestProposalNames(t *testing.T) {
	for _, c := range []struct {
		p    fmt.Stringer
		want string
	}{
		{Phase1Proposal{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 14}, "aes128-sha256-modp2048"},
		{Phase1Proposal{EncKeyBits: 256, Hash: crypto.SHA1, DHGroup: 19}, "aes256-sha1-ecp256"},
		{Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA2256, PFSGroup: 14}, "esp-aes128-sha256-modp2048"},
		{Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKeyBits: 256}, "esp-aes256gcm16"},
		{Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPNull, Integrity: isakmp.AuthHMACSHA1}, "esp-null-sha1"},
		{Phase2Proposal{Protocol: isakmp.ProtoAH, Integrity: isakmp.AuthHMACSHA2512}, "ah-sha512"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.p, got, c.want)
		}
	}
}
