package isakmp

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/internal/pcapfile"
)

// writePcap writes each message as an Ethernet/IPv4/UDP 500->500 frame.
func writePcap(path string, msgs [][]byte) error {
	return pcapfile.WriteUDP(path, netip.MustParseAddrPort("198.51.100.2:500"), netip.MustParseAddrPort("203.0.113.10:500"), msgs)
}

func tsharkMessages(t *testing.T) [][]byte {
	icky := [8]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	rcky := [8]byte{0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01}
	p1 := func(enc, hash, group uint16, life uint64) []Attribute {
		return []Attribute{AttrBasic(AttrEncryptionAlgorithm, enc), AttrBasic(AttrKeyLength, 256), AttrBasic(AttrHashAlgorithm, hash),
			AttrBasic(AttrGroupDescription, group), AttrBasic(AttrAuthenticationMethod, AuthPSK), AttrBasic(AttrLifeType, LifeSeconds),
			AttrUint(AttrLifeDuration, life)}
	}
	msgs := []*Message{
		// Main mode MM1: three proposals, basic and variable-length (86400, 4 bytes) attributes, VIDs.
		{Header: Header{ICookie: icky, Exchange: ExchangeIdentityProtection}, Payloads: []Payload{
			&SA{DOI: DOIIPsec, Situation: SituationIdentityOnly, Proposals: []Proposal{
				{Number: 1, ProtocolID: ProtoISAKMP, Transforms: []Transform{{Number: 1, ID: TransformKeyIKE, Attributes: p1(EncAESCBC, HashSHA2256, 14, 28800)}}},
				{Number: 2, ProtocolID: ProtoISAKMP, Transforms: []Transform{{Number: 1, ID: TransformKeyIKE, Attributes: p1(EncAESCBC, HashSHA2512, 19, 86400)}}},
				{Number: 3, ProtocolID: ProtoISAKMP, Transforms: []Transform{
					{Number: 1, ID: TransformKeyIKE, Attributes: []Attribute{AttrBasic(AttrEncryptionAlgorithm, EncAESCBC), AttrBasic(AttrKeyLength, 128),
						AttrBasic(AttrHashAlgorithm, HashSHA1), AttrBasic(AttrGroupDescription, 14), AttrBasic(AttrAuthenticationMethod, AuthPSK),
						AttrBasic(AttrLifeType, LifeSeconds), {Type: AttrLifeDuration, Data: []byte{0, 1, 0x51, 0x80}}}},
				}},
			}},
			&VendorID{Data: VendorXAuth}, &VendorID{Data: VendorDPD}, &VendorID{Data: VendorRFC3947NATT}, &VendorID{Data: VendorNATTDraft02N},
		}},
		// Aggressive mode message 1: SA, KE, Nonce, ID.
		{Header: Header{ICookie: icky, Exchange: ExchangeAggressive}, Payloads: []Payload{
			&SA{DOI: DOIIPsec, Situation: SituationIdentityOnly, Proposals: []Proposal{
				{Number: 1, ProtocolID: ProtoISAKMP, Transforms: []Transform{{Number: 1, ID: TransformKeyIKE, Attributes: p1(EncAESCBC, HashSHA2256, 14, 28800)}}}}},
			&KE{Data: bytes.Repeat([]byte{0x5c}, 256)},
			&Nonce{Data: bytes.Repeat([]byte{0x4e}, 32)},
			IDFromAddr(netip.MustParseAddr("198.51.100.2")),
			&VendorID{Data: VendorDPD},
		}},
		// Main mode MM3 with NAT-D.
		{Header: Header{ICookie: icky, RCookie: rcky, Exchange: ExchangeIdentityProtection}, Payloads: []Payload{
			&KE{Data: bytes.Repeat([]byte{0x5d}, 256)},
			&Nonce{Data: bytes.Repeat([]byte{0x4f}, 32)},
			&NATD{Hash: bytes.Repeat([]byte{0xd1}, 32)},
			&NATD{Hash: bytes.Repeat([]byte{0xd2}, 32)},
		}},
		// Plaintext Informational with Notify and Delete.
		{Header: Header{ICookie: icky, RCookie: rcky, Exchange: ExchangeInformational, MessageID: 0x01020304}, Payloads: []Payload{
			&Notify{DOI: DOIIPsec, ProtocolID: ProtoISAKMP, NotifyType: NotifyNoProposalChosen},
			&Notify{DOI: DOIIPsec, ProtocolID: ProtoISAKMP, SPI: append(icky[:], rcky[:]...), NotifyType: NotifyRUThere, Data: []byte{0, 0, 0, 42}},
			&Delete{DOI: DOIIPsec, ProtocolID: ProtoESP, SPISize: 4, SPIs: [][]byte{{0xad, 0x8c, 0x31, 0x88}, {0xef, 0x5e, 0xbb, 0xd9}}},
			&Delete{DOI: DOIIPsec, ProtocolID: ProtoISAKMP, SPISize: 16, SPIs: [][]byte{append(icky[:], rcky[:]...)}},
		}},
		// Quick mode (unencrypted here) with ESP SA, IDs and NAT-OA.
		{Header: Header{ICookie: icky, RCookie: rcky, Exchange: ExchangeQuickMode, MessageID: 0x4f19c6e5}, Payloads: []Payload{
			&Hash{Data: bytes.Repeat([]byte{0x48}, 32)},
			&SA{DOI: DOIIPsec, Situation: SituationIdentityOnly, Proposals: []Proposal{
				{Number: 1, ProtocolID: ProtoESP, SPI: []byte{0xef, 0x5e, 0xbb, 0xd9}, Transforms: []Transform{
					{Number: 1, ID: ESPAESCBC, Attributes: []Attribute{AttrBasic(AttrKeyLen, 128), AttrBasic(AttrAuthAlgorithm, AuthHMACSHA2256),
						AttrBasic(AttrGroup, 14), AttrBasic(AttrEncapsulationMode, EncapUDPTunnel), AttrBasic(AttrSALifeType, LifeSeconds), AttrUint(AttrSALifeDuration, 3600)}},
					{Number: 2, ID: ESPAESGCM16, Attributes: []Attribute{AttrBasic(AttrKeyLen, 256), AttrBasic(AttrEncapsulationMode, EncapUDPTunnel),
						AttrBasic(AttrSALifeType, LifeKilobytes), AttrUint(AttrSALifeDuration, 4608000)}},
				}}}},
			&Nonce{Data: bytes.Repeat([]byte{0x4e}, 32)},
			IDFromPrefix(netip.MustParsePrefix("10.10.0.0/16")),
			IDFromPrefix(netip.MustParsePrefix("172.31.0.0/16")),
			&NATOA{IDType: IDIPv4Addr, Addr: []byte{10, 99, 0, 2}},
			&NATOA{IDType: IDIPv4Addr, Addr: []byte{203, 0, 113, 10}},
		}},
	}
	var out [][]byte
	for _, m := range msgs {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install tshark); skipping the cross-check of the encoder against Wireshark's dissector")
	}
	msgs := tsharkMessages(t)
	path := filepath.Join(t.TempDir(), "encoded.pcap")
	if err := writePcap(path, msgs); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tshark, "-r", path, "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	text := string(out)
	if os.Getenv("ISAKMP_TSHARK_DUMP") != "" {
		t.Log(text)
	}
	for _, bad := range []string{"Malformed", "Expert Info (Warning", "Expert Info (Error"} {
		if i := strings.Index(text, bad); i >= 0 {
			lo := max(0, i-1500)
			t.Fatalf("tshark reports %q:\n%s", bad, text[lo:min(len(text), i+500)])
		}
	}
	if n := strings.Count(text, "Internet Security Association and Key Management Protocol"); n != len(msgs) {
		t.Errorf("tshark saw %d ISAKMP messages, want %d", n, len(msgs))
	}
	for _, want := range []string{
		"Initiator SPI: 1122334455667788",
		"Exchange type: Aggressive (4)",
		"Proposal number: 3",
		"Life-Duration: 28800",
		"Life-Duration: 86400",
		"Group Description: 2048 bit MODP group (14)",
		"Vendor ID: RFC 3947 Negotiation of NAT-Traversal in the IKE",
		"Vendor ID: XAUTH",
		"Vendor ID: RFC 3706 DPD (Dead Peer Detection)",
		"Key Exchange Data: 5c5c5c5c",
		"ID_IPV4_ADDR: 198.51.100.2",
		"HASH of the address and port: d1d1d1d1",
		"Notify Message Type: NO-PROPOSAL-CHOSEN (14)",
		"Notify Message Type: R-U-THERE (36136)",
		"SPI: ad8c3188",
		"SPI: ef5ebbd9",
		"Encapsulation Mode: UDP-Encapsulated-Tunnel (3)",
		"ID_IPV4_SUBNET: 255.255.0.0",
		"NAT Original IPv4 Address: 10.99.0.2",
		"Life Duration: 4608000",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("tshark output lacks %q", want)
		}
	}
}
