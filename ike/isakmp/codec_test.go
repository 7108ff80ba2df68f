package isakmp

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// samplePayloads has one payload of every modelled type, in a form that
// decodes back to an equal value.
func samplePayloads() []Payload {
	return []Payload{
		&SA{DOI: DOIIPsec, Situation: SituationIdentityOnly, Proposals: []Proposal{
			{Number: 1, ProtocolID: ProtoISAKMP, Transforms: []Transform{
				{Number: 1, ID: TransformKeyIKE, Attributes: []Attribute{
					AttrBasic(AttrEncryptionAlgorithm, EncAESCBC), AttrBasic(AttrKeyLength, 256),
					AttrBasic(AttrHashAlgorithm, HashSHA2256), AttrBasic(AttrGroupDescription, 14),
					AttrBasic(AttrAuthenticationMethod, AuthPSK), AttrBasic(AttrLifeType, LifeSeconds),
					AttrUint(AttrLifeDuration, 86400)}},
				{Number: 2, ID: TransformKeyIKE, Attributes: []Attribute{
					AttrBasic(AttrEncryptionAlgorithm, EncAESCBC), AttrBasic(AttrHashAlgorithm, HashSHA1),
					{Type: 200, Data: []byte{}}}},
			}},
			{Number: 2, ProtocolID: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{
				{Number: 1, ID: ESPAESGCM16, Attributes: []Attribute{AttrBasic(AttrKeyLen, 128), AttrUint(AttrSALifeDuration, 0x1_0000_0000)}}}},
			{Number: 2, ProtocolID: ProtoAH, SPI: []byte{5, 6, 7, 8}, Transforms: []Transform{{Number: 1, ID: AHSHA2_256}}},
		}},
		&KE{Data: bytes.Repeat([]byte{0xab}, 256)},
		&Nonce{Data: bytes.Repeat([]byte{0x01}, 32)},
		&Hash{Data: bytes.Repeat([]byte{0x02}, 20)},
		&Signature{Data: []byte{9, 9, 9}},
		&Cert{Encoding: 4, Data: []byte{0x30, 0x00}},
		&CertReq{CertType: 4, Data: []byte{}},
		IDFromAddr(netip.MustParseAddr("198.51.100.2")),
		&ID{IDType: IDFQDN, ProtocolID: 17, Port: 500, Data: []byte("vpn.example.com")},
		&Notify{DOI: DOIIPsec, ProtocolID: ProtoISAKMP, SPI: bytes.Repeat([]byte{7}, 16), NotifyType: NotifyRUThere, Data: []byte{0, 0, 0, 1}},
		&Notify{DOI: DOIIPsec, ProtocolID: ProtoESP, NotifyType: NotifyNoProposalChosen},
		&Delete{DOI: DOIIPsec, ProtocolID: ProtoESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}},
		&VendorID{Data: VendorDPD},
		&NATD{Hash: bytes.Repeat([]byte{3}, 32)},
		&NATD{Hash: bytes.Repeat([]byte{4}, 16), Draft: true},
		&NATOA{IDType: IDIPv4Addr, Addr: []byte{10, 0, 0, 1}},
		&NATOA{IDType: IDIPv6Addr, Addr: netip.MustParseAddr("2001:db8::1").AsSlice(), Draft: true},
		&Unknown{PType: 77, Data: []byte("opaque")},
	}
}

// normalize clears SA.Raw so that decoded and built payloads compare equal.
func normalize(ps []Payload) {
	for _, p := range ps {
		if sa, ok := p.(*SA); ok {
			sa.Raw = nil
		}
	}
}

func TestRoundTripEachPayload(t *testing.T) {
	for _, p := range samplePayloads() {
		first, b, err := EncodePayloads([]Payload{p})
		if err != nil {
			t.Fatalf("%s: %v", Describe(p), err)
		}
		if first != p.Type() || len(b) != 4+len(p.Body()) || b[0] != 0 {
			t.Fatalf("%s: first %s, %d bytes", Describe(p), first, len(b))
		}
		ps, err := DecodePayloads(first, b, 0)
		if err != nil {
			t.Fatalf("%s: %v", Describe(p), err)
		}
		if sa, ok := ps[0].(*SA); ok && !bytes.Equal(sa.Raw, b[4:]) {
			t.Errorf("SA.Raw is not the received body")
		}
		normalize(ps)
		if len(ps) != 1 || !reflect.DeepEqual(ps[0], p) {
			t.Errorf("round trip:\n got %s %#v\nwant %s %#v", Describe(ps[0]), ps[0], Describe(p), p)
		}
	}
}

func TestRoundTripMessage(t *testing.T) {
	for _, flags := range []uint8{0, FlagCommit} {
		m := &Message{Header: Header{ICookie: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, RCookie: [8]byte{9}, Exchange: ExchangeAggressive, Flags: flags, MessageID: 0x01020304},
			Payloads: samplePayloads()}
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Version != Version || m.Header.NextPayload != PayloadSA || int(m.Header.Length) != len(b) {
			t.Fatalf("header not filled: %v", m.Header)
		}
		d, err := Decode(append(b, 0xee, 0xee)) // bytes after Length are ignored
		if err != nil {
			t.Fatal(err)
		}
		normalize(d.Payloads)
		if !reflect.DeepEqual(d, m) {
			t.Fatalf("round trip differs:\n got %+v\nwant %+v", d, m)
		}
		if len(d.Notifies()) != 2 || d.Find(PayloadNotify) != Payload(d.Notifies()[0]) {
			t.Errorf("Notifies/Find")
		}
		if len(d.FindAll(PayloadNATD)) != 2 || len(d.FindAll(PayloadNATOADraft)) != 2 || d.Find(PayloadNATOA).(*NATOA).Draft {
			t.Errorf("FindAll NAT-D/NAT-OA")
		}
		if d.Find(PayloadCert) == nil || d.Find(PayloadType(99)) != nil {
			t.Errorf("Find")
		}
	}
}

func TestEncryptedMessage(t *testing.T) {
	body := bytes.Repeat([]byte{0x5a}, 48)
	m := &Message{Header: Header{NextPayload: PayloadHash, Exchange: ExchangeQuickMode, Flags: FlagEncryption, MessageID: 7}, Body: body}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != HeaderLen+48 || m.Header.NextPayload != PayloadHash || b[16] != byte(PayloadHash) {
		t.Fatalf("encrypted encode: %x", b)
	}
	d, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d, m) {
		t.Fatalf("got %+v", d)
	}
	// Decode copies its input.
	b[HeaderLen] = 0
	if d.Body[0] != 0x5a {
		t.Error("Decode aliases its input")
	}
	// A bare header.
	m = &Message{Header: Header{NextPayload: PayloadSA, Exchange: ExchangeInformational}}
	if b, err = m.Encode(); err != nil || len(b) != HeaderLen || m.Header.NextPayload != PayloadNone {
		t.Fatalf("bare header: %x %v", b, err)
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, ps := range [][]Payload{
		{nil},
		{(*KE)(nil)},
		{&Unknown{PType: PayloadNone}},
		{&Unknown{PType: PayloadProposal}},
		{&KE{Data: make([]byte, 65532)}},
		{&Delete{SPISize: 4, SPIs: [][]byte{{1, 2, 3}}}},
		{&Delete{SPISize: 0, SPIs: [][]byte{{}}}},
		{&Notify{SPI: make([]byte, 256)}},
		{&NATOA{IDType: IDIPv4Addr, Addr: make([]byte, 16)}},
		{&NATOA{IDType: IDFQDN, Addr: []byte("x")}},
		{&SA{Proposals: []Proposal{{Transforms: []Transform{{Attributes: []Attribute{{Type: 0x8001, Basic: true}}}}}}}},
		{&SA{Proposals: []Proposal{{Transforms: []Transform{{Attributes: []Attribute{{Type: 1, Data: make([]byte, 70000)}}}}}}}},
	} {
		if _, b, err := EncodePayloads(ps); err == nil {
			t.Errorf("EncodePayloads(%v) = %x, want error", ps, b)
		}
		if _, err := (&Message{Payloads: ps}).Encode(); err == nil {
			t.Errorf("Encode(%v) succeeded", ps)
		}
	}
	if b := (&Delete{SPISize: 4, SPIs: [][]byte{{1}}}).Body(); b != nil {
		t.Errorf("Body of an invalid payload = %x, want nil", b)
	}
	// Typed nil payloads give errors, not panics.
	for _, p := range []Payload{(*SA)(nil), (*NATD)(nil), (*NATOA)(nil), (*Unknown)(nil), (*Notify)(nil), (*ID)(nil)} {
		if _, _, err := EncodePayloads([]Payload{&KE{}, p}); err == nil {
			t.Errorf("EncodePayloads with %T(nil) succeeded", p)
		}
		if d := Describe(p); !strings.HasSuffix(d, "<nil>") {
			t.Errorf("Describe(%T(nil)) = %q", p, d)
		}
		_ = p.Body()
	}
	if _, b, err := EncodePayloads(nil); err != nil || b != nil {
		t.Errorf("empty chain: %x %v", b, err)
	}
}

func TestAttributes(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		data []byte
	}{
		{0, nil}, {28800, nil}, {0xffff, nil},
		{0x10000, []byte{1, 0, 0}}, {86400, []byte{0x01, 0x51, 0x80}}, {0xffffffff, []byte{0xff, 0xff, 0xff, 0xff}},
		{1 << 63, []byte{0x80, 0, 0, 0, 0, 0, 0, 0}},
	} {
		a := AttrUint(AttrLifeDuration, c.v)
		if a.Basic != (c.data == nil) || (c.data != nil && !bytes.Equal(a.Data, c.data)) {
			t.Errorf("AttrUint(%d) = %+v", c.v, a)
		}
		if v, err := a.Uint(); err != nil || v != c.v {
			t.Errorf("Uint(AttrUint(%d)) = %d, %v", c.v, v, err)
		}
	}
	// strongSwan sends 4-byte lifetimes.
	if v, err := (Attribute{Type: 2, Data: []byte{0, 1, 0x51, 0x80}}).Uint(); err != nil || v != 86400 {
		t.Errorf("4-byte value: %d %v", v, err)
	}
	for _, d := range [][]byte{{}, make([]byte, 9)} {
		if _, err := (Attribute{Data: d}).Uint(); err == nil {
			t.Errorf("Uint of %d bytes succeeded", len(d))
		}
	}
	attrs := []Attribute{AttrBasic(1, 7), AttrBasic(14, 256)}
	if a, ok := FindAttr(attrs, 14); !ok || a.Value != 256 {
		t.Error("FindAttr")
	}
	if _, ok := FindAttr(attrs, 2); ok {
		t.Error("FindAttr found a missing attribute")
	}
	b, err := AppendAttributes(nil, []Attribute{AttrBasic(1, 7), {Type: 2, Data: []byte{1, 2, 3}}})
	if err != nil || !bytes.Equal(b, []byte{0x80, 1, 0, 7, 0, 2, 0, 3, 1, 2, 3}) {
		t.Fatalf("AppendAttributes = %x %v", b, err)
	}
	got, err := DecodeAttributes(b)
	if err != nil || len(got) != 2 || got[1].Type != 2 || !bytes.Equal(got[1].Data, []byte{1, 2, 3}) {
		t.Errorf("DecodeAttributes = %+v %v", got, err)
	}
}

func TestIDHelpers(t *testing.T) {
	for _, c := range []struct {
		in     string
		typ    IDType
		str    string
		prefix string
	}{
		{"198.51.100.2/32", IDIPv4Addr, "ID_IPV4_ADDR 198.51.100.2", "198.51.100.2/32"},
		{"10.0.0.0/16", IDIPv4AddrSubnet, "ID_IPV4_ADDR_SUBNET 10.0.0.0/16", "10.0.0.0/16"},
		{"10.1.2.3/8", IDIPv4AddrSubnet, "ID_IPV4_ADDR_SUBNET 10.0.0.0/8", "10.0.0.0/8"},
		{"0.0.0.0/0", IDIPv4AddrSubnet, "ID_IPV4_ADDR_SUBNET 0.0.0.0/0", "0.0.0.0/0"},
		{"2001:db8::1/128", IDIPv6Addr, "ID_IPV6_ADDR 2001:db8::1", "2001:db8::1/128"},
		{"2001:db8::/33", IDIPv6AddrSubnet, "ID_IPV6_ADDR_SUBNET 2001:db8::/33", "2001:db8::/33"},
		{"::ffff:10.0.0.0/104", IDIPv4AddrSubnet, "ID_IPV4_ADDR_SUBNET 10.0.0.0/8", "10.0.0.0/8"},
	} {
		id := IDFromPrefix(netip.MustParsePrefix(c.in))
		if id == nil || id.IDType != c.typ || id.String() != c.str {
			t.Errorf("IDFromPrefix(%s) = %v", c.in, id)
			continue
		}
		p, err := id.Prefix()
		if err != nil || p.String() != c.prefix {
			t.Errorf("%s.Prefix() = %v %v", id, p, err)
		}
	}
	if id := IDFromAddr(netip.MustParseAddr("::ffff:192.0.2.1")); id.IDType != IDIPv4Addr || len(id.Data) != 4 {
		t.Errorf("4in6: %v", id)
	}
	if IDFromAddr(netip.Addr{}) != nil || IDFromPrefix(netip.Prefix{}) != nil {
		t.Error("invalid input gives non-nil ID")
	}
	for _, c := range []struct {
		id     ID
		str    string
		prefix string // "" = error
	}{
		{ID{IDType: IDIPv4AddrSubnet, Data: []byte{10, 0, 0, 0, 255, 0, 255, 0}}, "ID_IPV4_ADDR_SUBNET 10.0.0.0/255.0.255.0", ""},
		{ID{IDType: IDIPv4AddrRange, Data: []byte{10, 0, 0, 0, 10, 0, 255, 255}}, "ID_IPV4_ADDR_RANGE 10.0.0.0-10.0.255.255", "10.0.0.0/16"},
		{ID{IDType: IDIPv4AddrRange, Data: []byte{10, 0, 0, 1, 10, 0, 0, 1}}, "ID_IPV4_ADDR_RANGE 10.0.0.1-10.0.0.1", "10.0.0.1/32"},
		{ID{IDType: IDIPv4AddrRange, Data: []byte{0, 0, 0, 0, 255, 255, 255, 255}}, "ID_IPV4_ADDR_RANGE 0.0.0.0-255.255.255.255", "0.0.0.0/0"},
		{ID{IDType: IDIPv4AddrRange, Data: []byte{10, 0, 0, 1, 10, 0, 0, 6}}, "ID_IPV4_ADDR_RANGE 10.0.0.1-10.0.0.6", ""},
		{ID{IDType: IDIPv4AddrRange, Data: []byte{10, 0, 0, 9, 10, 0, 0, 1}}, "ID_IPV4_ADDR_RANGE 10.0.0.9-10.0.0.1", ""},
		{ID{IDType: IDFQDN, Data: []byte("vpn.example.com")}, "ID_FQDN vpn.example.com", ""},
		{ID{IDType: IDUserFQDN, Data: []byte("a b")}, `ID_USER_FQDN "a b"`, ""},
		{ID{IDType: IDKeyID, Data: []byte{0xde, 0xad}}, "ID_KEY_ID dead", ""},
		{ID{IDType: IDIPv4Addr, ProtocolID: 17, Port: 500, Data: []byte{1, 2, 3, 4}}, "ID_IPV4_ADDR 1.2.3.4 proto 17 port 500", "1.2.3.4/32"},
		{ID{IDType: IDIPv4Addr, Data: []byte{1, 2, 3}}, "ID_IPV4_ADDR <3 bytes: 010203>", ""},
		{ID{IDType: IDDERASN1DN, Data: []byte{0x30, 0x0e, 0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, 'v', 'p', 'n'}}, "ID_DER_ASN1_DN CN=vpn", ""},
	} {
		if s := c.id.String(); s != c.str {
			t.Errorf("String() = %q, want %q", s, c.str)
		}
		p, err := c.id.Prefix()
		if c.prefix == "" {
			if err == nil {
				t.Errorf("%s: Prefix() = %v, want error", c.str, p)
			}
		} else if err != nil || p.String() != c.prefix {
			t.Errorf("%s: Prefix() = %v %v, want %s", c.str, p, err, c.prefix)
		}
	}
}

func TestNames(t *testing.T) {
	for got, want := range map[string]string{
		ExchangeIdentityProtection.String(): "Main Mode",
		ExchangeQuickMode.String():          "Quick Mode",
		ExchangeType(99).String():           "ExchangeType(99)",
		PayloadSA.String():                  "SA",
		PayloadNATDDraft.String():           "NAT-D(draft)",
		PayloadType(200).String():           "PayloadType(200)",
		NotifyNoProposalChosen.String():     "NO-PROPOSAL-CHOSEN",
		NotifyRUThere.String():              "R-U-THERE",
		NotifyInitialContact.String():       "INITIAL-CONTACT",
		NotifyResponderLifetime.String():    "RESPONDER-LIFETIME",
		NotifyType(40000).String():          "NotifyType(40000)",
		IDIPv4AddrSubnet.String():           "ID_IPV4_ADDR_SUBNET",
		VendorName(VendorRFC3947NATT):       "RFC 3947 NAT-Traversal",
		VendorName(VendorNATTDraft03):       "draft-ietf-ipsec-nat-t-ike-03",
		VendorName(VendorNATTDraft02):       "draft-ietf-ipsec-nat-t-ike-02",
		VendorName(VendorNATTDraft00):       "draft-ietf-ipsec-nat-t-ike-00",
		VendorName(VendorNATTDraft01):       "draft-ietf-ipsec-nat-t-ike-01",
		VendorName(VendorXAuth):             "XAUTH",
		VendorName(VendorCiscoFrag):         "FRAGMENTATION",
		VendorName([]byte{1, 2, 3}):         "",
		// DPD with another minor version still matches (first 14 bytes).
		VendorName(append(append([]byte{}, VendorDPD[:15]...), 9)): "Dead Peer Detection (DPD) v1.0",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	h := Header{ICookie: [8]byte{1}, Exchange: ExchangeInformational, Flags: FlagEncryption, MessageID: 0xabcd, NextPayload: PayloadHash, Length: 76}
	if s := h.String(); s != "Informational i=0100000000000000 r=0000000000000000 mid=0000abcd flags=E np=HASH len=76" {
		t.Errorf("Header.String() = %q", s)
	}
	for _, p := range samplePayloads() {
		d := Describe(p)
		if d == "" || strings.Contains(d, "%!") {
			t.Errorf("Describe(%T) = %q", p, d)
		}
	}
	for p, want := range map[Payload]string{
		&Notify{DOI: 1, ProtocolID: 1, SPI: []byte{0xaa, 0xbb}, NotifyType: NotifyRUThere, Data: []byte{0, 0, 0, 5}}: "N(R-U-THERE) doi=1 proto=ISAKMP spi=aabb data=00000005",
		&Delete{DOI: 1, ProtocolID: 3, SPISize: 4, SPIs: [][]byte{{0xad, 0x8c, 0x31, 0x88}}}:                         "D doi=1 proto=ESP spis=[ad8c3188]",
		&VendorID{Data: VendorDPD}:                           "VID afcad71368a1f1c96b8696fc77570100 (Dead Peer Detection (DPD) v1.0)",
		&NATD{Hash: []byte{1, 2}}:                            "NAT-D 0102",
		&NATOA{IDType: IDIPv4Addr, Addr: []byte{1, 2, 3, 4}}: "NAT-OA 1.2.3.4",
		IDFromAddr(netip.MustParseAddr("192.0.2.1")):         "ID ID_IPV4_ADDR 192.0.2.1",
		nil: "<nil>",
	} {
		if got := Describe(p); got != want {
			t.Errorf("Describe = %q, want %q", got, want)
		}
	}
	var de *DecodeError
	_, err := Decode(make([]byte, 3))
	if !errors.As(err, &de) || err.Error() != "isakmp: message at offset 0: 3 bytes is shorter than the 28-byte header" {
		t.Errorf("error text %q", err)
	}
}
