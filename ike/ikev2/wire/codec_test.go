package wire

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, ps := range [][]Payload{samplePayloads(), authPayloads()} {
		m := &Message{Header: Header{SPIi: [8]byte{9}, Exchange: ExchangeIKEAuth, Flags: FlagResponse | FlagVersion, MessageID: 3}, Payloads: ps}
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip differs:\n%#v\n%#v", m, m2)
		}
		if !m2.Header.Response() || m2.Header.Initiator() || !m2.Header.HigherVersion() || m2.Header.Length != uint32(len(b)) {
			t.Errorf("header %+v", m2.Header)
		}
	}
}

// TestNames: the transform IDs AWS offers, with IANA's names.
func TestNames(t *testing.T) {
	for _, c := range []struct {
		tr   Transform
		want string
	}{
		{Encr(EncrAESCBC, 128), "ENCR_AES_CBC-128"}, {Encr(EncrAESCBC, 256), "ENCR_AES_CBC-256"},
		{Encr(EncrAESGCM16, 128), "ENCR_AES_GCM_16-128"}, {Encr(EncrAESGCM16, 256), "ENCR_AES_GCM_16-256"},
		{PRF(PRFHMACSHA1), "PRF_HMAC_SHA1"}, {PRF(PRFHMACSHA2256), "PRF_HMAC_SHA2_256"},
		{PRF(PRFHMACSHA2384), "PRF_HMAC_SHA2_384"}, {PRF(PRFHMACSHA2512), "PRF_HMAC_SHA2_512"},
		{Integ(IntegHMACSHA196), "AUTH_HMAC_SHA1_96"}, {Integ(IntegHMACSHA2256128), "AUTH_HMAC_SHA2_256_128"},
		{Integ(IntegHMACSHA2384192), "AUTH_HMAC_SHA2_384_192"}, {Integ(IntegHMACSHA2512256), "AUTH_HMAC_SHA2_512_256"},
		{DH(2), "MODP_1024"}, {DH(5), "MODP_1536"}, {DH(14), "MODP_2048"}, {DH(15), "MODP_3072"}, {DH(16), "MODP_4096"},
		{DH(17), "MODP_6144"}, {DH(18), "MODP_8192"}, {DH(19), "ECP_256"}, {DH(20), "ECP_384"}, {DH(21), "ECP_521"},
		{DH(22), "MODP_1024_160"}, {DH(23), "MODP_2048_224"}, {DH(24), "MODP_2048_256"},
		{ESNTransform(ESNNo), "NO_ESN"}, {ESNTransform(ESNYes), "ESN"}, {Transform{Type: 9, ID: 7}, "7"},
	} {
		if got := c.tr.Name(); got != c.want {
			t.Errorf("%v: %q, want %q", c.tr, got, c.want)
		}
	}
	if NotifyType(16430).String() != "IKEV2_FRAGMENTATION_SUPPORTED" || NotifyType(17).String() != "INVALID_KE_PAYLOAD" ||
		NotifyType(60000).String() != "60000" || !NotifyAuthenticationFailed.IsError() || NotifyCookie.IsError() {
		t.Error("notify names")
	}
	if PayloadSKF.String() != "SKF" || ExchangeCreateChildSA.String() != "CREATE_CHILD_SA" || PayloadType(99).String() != "99" {
		t.Error("payload/exchange names")
	}
}

func TestNotifyHelpers(t *testing.T) {
	n := InvalidKE(DHECP384)
	if g, err := n.Group(); err != nil || g != DHECP384 {
		t.Errorf("Group() = %v %v", g, err)
	}
	if _, err := (&Notify{NotifyType: NotifyInvalidKEPayload, Data: []byte{1}}).Group(); err == nil {
		t.Error("1-byte group accepted")
	}
	if _, err := (&Notify{NotifyType: NotifyCookie, Data: []byte{0, 14}}).Group(); err == nil {
		t.Error("group of a COOKIE")
	}
	if FindNotify([]Payload{&Nonce{}, n}, NotifyInvalidKEPayload) != n || FindNotify(nil, NotifyCookie) != nil {
		t.Error("FindNotify")
	}
}

func TestSelectors(t *testing.T) {
	for _, c := range []struct{ prefix, start, end string }{
		{"10.10.0.0/16", "10.10.0.0", "10.10.255.255"},
		{"0.0.0.0/0", "0.0.0.0", "255.255.255.255"},
		{"169.254.10.1/32", "169.254.10.1", "169.254.10.1"},
		{"2001:db8::/32", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
	} {
		s := SelectorFromPrefix(netip.MustParsePrefix(c.prefix))
		if s.Start.String() != c.start || s.End.String() != c.end || s.StartPort != 0 || s.EndPort != 65535 {
			t.Errorf("%s: %v", c.prefix, s)
		}
		if p := s.Prefixes(); len(p) != 1 || p[0].String() != c.prefix {
			t.Errorf("%s: Prefixes %v", c.prefix, p)
		}
	}
	s := Selector{Type: TSIPv4Range, Start: netip.MustParseAddr("10.0.0.1"), End: netip.MustParseAddr("10.0.0.6")}
	var got []string
	for _, p := range s.Prefixes() {
		got = append(got, p.String())
	}
	if strings.Join(got, " ") != "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32" {
		t.Errorf("range prefixes %s", got)
	}
	if (Selector{Start: netip.MustParseAddr("10.0.0.2"), End: netip.MustParseAddr("10.0.0.1")}).Prefixes() != nil {
		t.Error("reversed range has prefixes")
	}
}

// TestAcceptedProposalNumber: a responder's SA payload carries the one
// accepted proposal with the number it had in the request (RFC 7296
// section 3.3.1), e.g. 2; it decodes with that number. (The decoder
// rejected every lone proposal not numbered 1 before.)
func TestAcceptedProposalNumber(t *testing.T) {
	for _, num := range []uint8{1, 2, 255} {
		m := &Message{Header: Header{Exchange: ExchangeIKESAInit, Flags: FlagResponse}, Payloads: []Payload{&SA{Proposals: []Proposal{{
			Number: num, Protocol: ProtoIKE, Transforms: []Transform{Encr(EncrAESGCM16, 128), PRF(PRFHMACSHA2256), DH(DHECP256)}}}}}}
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Decode(b)
		if err != nil {
			t.Fatalf("proposal %d: %v", num, err)
		}
		if got := m2.Payloads[0].(*SA).Proposals[0].Number; got != num {
			t.Errorf("proposal number %d decoded as %d", num, got)
		}
	}
}
