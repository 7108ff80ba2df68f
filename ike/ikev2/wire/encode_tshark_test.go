package wire

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/pcapfile"
)

// samplePayloads has every payload type of RFC 7296 section 3 except SK,
// with our own values.
func samplePayloads() []Payload {
	return []Payload{
		&SA{Proposals: []Proposal{
			{Number: 1, Protocol: ProtoIKE, Transforms: []Transform{Encr(EncrAESCBC, 256), Encr(EncrAESCBC, 128), PRF(PRFHMACSHA2256), PRF(PRFHMACSHA1),
				Integ(IntegHMACSHA2256128), Integ(IntegHMACSHA196), DH(DHModp2048), DH(DHModp2048S256)}},
			{Number: 2, Protocol: ProtoIKE, Transforms: []Transform{Encr(EncrAESGCM16, 256), PRF(PRFHMACSHA2512), DH(DHECP384), DH(DHModp1024S160)}},
			{Number: 3, Protocol: ProtoESP, SPI: []byte{0xc0, 0x01, 0xd0, 0x0d}, Transforms: []Transform{Encr(EncrAESGCM16, 128), ESNTransform(ESNNo), ESNTransform(ESNYes)}},
		}},
		&KE{Group: DHModp2048, Data: bytes.Repeat([]byte{0x5c}, 256)},
		&Nonce{Data: bytes.Repeat([]byte{0x4e}, 32)},
		&Notify{NotifyType: NotifyNATDetectionSourceIP, Data: bytes.Repeat([]byte{0xd1}, 20)},
		&Notify{NotifyType: NotifyNATDetectionDestinationIP, Data: bytes.Repeat([]byte{0xd2}, 20)},
		&Notify{NotifyType: NotifyIKEv2FragmentationSupported},
		&Notify{NotifyType: NotifySignatureHashAlgorithms, Data: []byte{0, 2, 0, 3, 0, 4}},
		InvalidKE(DHECP256),
		&Notify{NotifyType: NotifyCookie, Data: bytes.Repeat([]byte{0xc0}, 20)},
		&Notify{Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, NotifyType: NotifyRekeySA},
		&Notify{NotifyType: NotifyUseTransportMode},
		&Notify{NotifyType: NotifyInitialContact},
		UnsupportedCritical(PayloadType(99)),
		&VendorID{Data: []byte("vpnlab ikev2 test")},
		&CertReq{Encoding: CertX509Sig, Data: bytes.Repeat([]byte{0xca}, 20)},
	}
}

func authPayloads() []Payload {
	return []Payload{
		IDFromAddr(netip.MustParseAddr("198.51.100.2"), false),
		&Cert{Encoding: CertX509Sig, Data: testCert()},
		&ID{Responder: true, IDType: IDFQDN, Data: []byte("vgw.example.com")},
		&Auth{Method: AuthPSK, Data: bytes.Repeat([]byte{0xa5}, 32)},
		&Config{CfgType: CfgRequest, Attributes: []CfgAttribute{{Type: CfgInternalIP4Address}, {Type: CfgInternalIP4DNS}}},
		&EAP{Data: []byte{2, 7, 0, 5, 1}},
		&SA{Proposals: []Proposal{{Number: 1, Protocol: ProtoESP, SPI: []byte{0xad, 0x8c, 0x31, 0x88},
			Transforms: []Transform{Encr(EncrAESCBC, 256), Integ(IntegHMACSHA2384192), Integ(IntegHMACSHA2512256), ESNTransform(ESNNo)}}}},
		&TS{Selectors: []Selector{SelectorFromPrefix(netip.MustParsePrefix("10.10.0.0/16")),
			{Type: TSIPv4Range, Protocol: 6, StartPort: 179, EndPort: 179, Start: netip.MustParseAddr("169.254.10.1"), End: netip.MustParseAddr("169.254.10.2")}}},
		&TS{Responder: true, Selectors: []Selector{SelectorFromPrefix(netip.MustParsePrefix("2001:db8::/32"))}},
		&Notify{NotifyType: NotifyUseTransportMode},
		&Delete{Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{0xad, 0x8c, 0x31, 0x88}, {0xef, 0x5e, 0xbb, 0xd9}}},
		&Delete{Protocol: ProtoIKE},
	}
}

var testCert = sync.OnceValue(func() []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vgw.example.com"},
		NotBefore: time.Unix(1700000000, 0), NotAfter: time.Unix(1900000000, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return der
})

// tsharkSuites are the encryption suites of the cross-check: every
// algorithm Seal supports, with tshark's names for them.
var tsharkSuites = []struct {
	keys        Keys
	encr, integ string
}{
	{Keys{Encr: EncrAESCBC, Integ: IntegHMACSHA196, EncrKey: bytes.Repeat([]byte{1}, 16), IntegKey: bytes.Repeat([]byte{2}, 20)}, "AES-CBC-128 [RFC3602]", "HMAC_SHA1_96 [RFC2404]"},
	{Keys{Encr: EncrAESCBC, Integ: IntegHMACSHA2256128, EncrKey: bytes.Repeat([]byte{3}, 32), IntegKey: bytes.Repeat([]byte{4}, 32)}, "AES-CBC-256 [RFC3602]", "HMAC_SHA2_256_128 [RFC4868]"},
	{Keys{Encr: EncrAESCBC, Integ: IntegHMACSHA2384192, EncrKey: bytes.Repeat([]byte{5}, 32), IntegKey: bytes.Repeat([]byte{6}, 48)}, "AES-CBC-256 [RFC3602]", "HMAC_SHA2_384_192 [RFC4868]"},
	{Keys{Encr: EncrAESCBC, Integ: IntegHMACSHA2512256, EncrKey: bytes.Repeat([]byte{7}, 32), IntegKey: bytes.Repeat([]byte{8}, 64)}, "AES-CBC-256 [RFC3602]", "HMAC_SHA2_512_256 [RFC4868]"},
	{Keys{Encr: EncrAESGCM16, EncrKey: bytes.Repeat([]byte{9}, 20)}, "AES-GCM-128 with 16 octet ICV [RFC5282]", "NONE [RFC4306]"},
	{Keys{Encr: EncrAESGCM16, EncrKey: bytes.Repeat([]byte{10}, 36)}, "AES-GCM-256 with 16 octet ICV [RFC5282]", "NONE [RFC4306]"},
}

// encoded is one message of the encode cross-check and what tshark must see.
type encoded struct {
	b      []byte
	fields fieldList
}

// encodeSamples builds the cleartext IKE_SA_INIT, then per suite an SK
// IKE_AUTH and the same message in SKF fragments, decoding each again
// (Open, Reassembler) to get the expected fields.
func encodeSamples(t *testing.T) ([]encoded, []uatEntry) {
	var out []encoded
	var uat []uatEntry
	init := &Message{Header: Header{SPIi: [8]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}, Exchange: ExchangeIKESAInit, Flags: FlagInitiator}, Payloads: samplePayloads()}
	b, err := init.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, encoded{b, messageFields(m, nil, nil, nil)})
	for i, s := range tsharkSuites {
		suite, err := NewSuite(s.keys)
		if err != nil {
			t.Fatal(err)
		}
		h := Header{SPIi: [8]byte{0xa0, byte(i), 1, 2, 3, 4, 5, 6}, SPIr: [8]byte{0xb0, byte(i), 1, 2, 3, 4, 5, 6}, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MessageID: 1}
		uat = append(uat, uatEntry{spii: hex.EncodeToString(h.SPIi[:]), spir: hex.EncodeToString(h.SPIr[:]), ei: s.keys.EncrKey, ai: s.keys.IntegKey,
			er: s.keys.EncrKey, ar: s.keys.IntegKey, encr: s.encr, integ: s.integ})
		b, err := suite.Seal(h, authPayloads(), nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, openedSample(t, suite, b, nil))
		h.MessageID = 2
		frags, err := suite.Split(h, authPayloads(), 180)
		if err != nil {
			t.Fatal(err)
		}
		if len(frags) < 2 {
			t.Fatalf("%d fragments", len(frags))
		}
		r := &Reassembler{}
		for _, fb := range frags {
			out = append(out, openedSample(t, suite, fb, r))
		}
	}
	return out, uat
}

func openedSample(t *testing.T, s *Suite, b []byte, r *Reassembler) encoded {
	t.Helper()
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	var inner []Payload
	if r == nil {
		inner, err = o.Payloads()
	} else {
		var done bool
		if done, err = r.Add(o); done {
			inner, err = r.Payloads()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return encoded{b, messageFields(m, o, inner, b[len(b)-s.ICVLen():])}
}

// TestTsharkEncode writes the encoder's messages (every payload type, every
// supported SK suite, SKF fragments) to a pcap and checks that tshark
// dissects, decrypts (ICV "correct") and reassembles them into the same
// fields, without warnings.
func TestTsharkEncode(t *testing.T) {
	tsharkPath(t)
	msgs, uat := encodeSamples(t)
	var raw [][]byte
	for _, m := range msgs {
		raw = append(raw, m.b)
	}
	path := filepath.Join(t.TempDir(), "encoded.pcap")
	if err := pcapfile.WriteUDP(path, netip.MustParseAddrPort("198.51.100.2:500"), netip.MustParseAddrPort("203.0.113.10:500"), raw); err != nil {
		t.Fatal(err)
	}
	theirs, verbose := tsharkDissect(t, path, uat)
	checkVerbose(t, verbose)
	if len(theirs) != len(msgs) {
		t.Fatalf("tshark saw %d ISAKMP frames, want %d", len(theirs), len(msgs))
	}
	for i, m := range msgs {
		compareFields(t, i+1, m.fields, theirs[i+1], true)
	}
	if n := strings.Count(verbose, "[correct]"); n != len(msgs)-1 {
		t.Errorf("tshark verified %d ICVs, want %d", n, len(msgs)-1)
	}
	for _, want := range []string{"Notify (41) - INVALID_KE_PAYLOAD", "Notify (41) - UNSUPPORTED_CRITICAL_PAYLOAD", "Notify (41) - COOKIE",
		"Notify (41) - REKEY_SA", "Notify (41) - USE_TRANSPORT_MODE", "Notify (41) - INITIAL_CONTACT", "Notify (41) - IKEV2_FRAGMENTATION_SUPPORTED",
		"Notify (41) - SIGNATURE_HASH_ALGORITHMS", "Transform ID (D-H): 2048-bit MODP Group with 256-bit Prime Order Subgroup (24)",
		"Transform ID (D-H): 1024-bit MODP Group with 160-bit Prime Order Subgroup (22)", "Certificate Data (id-at-commonName=vgw.example.com)", "Type: Identity (1)",
		"Payload: Configuration (47)", "Payload: Extensible Authentication (48)", "Payload: Certificate (37)", "Payload: Certificate Request (38)",
		"Starting Addr: 2001:db8::", "Ending Addr: 2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if !strings.Contains(verbose, want) {
			t.Errorf("tshark output lacks %q", want)
		}
	}
}
