package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/internal/pcapfile"
)

// The captures in testdata/capture (see docs/testvectors.md):
//   - strongswan-ikev2.pcap: two strongSwan 5.9.8 charons in namespaces
//     (internal/strongswan TestSelfIKEv2 with V2WIRE_CAPTURE_DIR), IKEv2
//     PSK, one IKE SA with AES-CBC-256/HMAC-SHA2-256/MODP-2048 and one with
//     AES-GCM-16-128/PRF-SHA384/ECP-256, IKE_AUTH in RFC 7383 fragments
//     (charon.fragment_size = 200), then INFORMATIONAL deletes. The keys
//     (strongswan-ikev2.keys) are from the initiator's charon log.
//   - zeek-spicy-ipsec-client.pcap: tests/traces/ipsec_client.pcap of
//     github.com/corelight/zeek-spicy-ipsec (commit 4a7f0041aa12): a public
//     IKEv2 client capture (IKE_SA_INIT with a 922-byte datagram, IKE_AUTH
//     in IP fragments, retransmitted); no keys.

const capDir = "testdata/capture"

// capMsg is one IKE message of a capture.
type capMsg struct {
	frame int
	b     []byte
}

// loadCapture returns the IKE messages (the non-ESP marker stripped on
// port 4500, keepalives dropped).
func loadCapture(t testing.TB, name string) []capMsg {
	t.Helper()
	ds, err := pcapfile.ReadUDP(filepath.Join(capDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var out []capMsg
	for _, d := range ds {
		p := d.Payload
		if d.Dst.Port() == 4500 || d.Src.Port() == 4500 {
			if len(p) < 4 || !bytes.Equal(p[:4], []byte{0, 0, 0, 0}) {
				continue // ESP or a keepalive
			}
			p = p[4:]
		}
		out = append(out, capMsg{frame: d.Frame, b: p})
	}
	return out
}

// capKeys are the keys of strongswan-ikev2.keys by connection and name.
func capKeys(t testing.TB) map[string][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join(capDir, "strongswan-ikev2.keys"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 || strings.HasPrefix(fs[0], "#") {
			continue
		}
		b, err := hex.DecodeString(fs[2])
		if err != nil {
			t.Fatal(err)
		}
		keys[fs[0]+" "+fs[1]] = b
	}
	return keys
}

// The IKE SAs of strongswan-ikev2.pcap by initiator SPI (from tshark).
var capSAs = map[string]string{"3d88285cbe14a67b": "cbc", "a9b0c1a9d5524c9c": "gcm"}

// capSuite returns the suite that opens h's message.
func capSuite(t testing.TB, keys map[string][]byte, h Header) *Suite {
	t.Helper()
	conn := capSAs[hex.EncodeToString(h.SPIi[:])]
	dir := "r"
	if h.Initiator() {
		dir = "i"
	}
	k := Keys{Encr: EncrAESGCM16, EncrKey: keys[conn+" SK_e"+dir]}
	if conn == "cbc" {
		k = Keys{Encr: EncrAESCBC, Integ: IntegHMACSHA2256128, EncrKey: keys[conn+" SK_e"+dir], IntegKey: keys[conn+" SK_a"+dir]}
	}
	s, err := NewSuite(k)
	if err != nil {
		t.Fatalf("%s: %v", conn, err)
	}
	return s
}

// capFrame is what the codec made of one captured message.
type capFrame struct {
	frame  int
	msg    *Message
	opened *Opened   // SK/SKF messages
	inner  []Payload // decrypted SK, or a reassembled SKF message in the frame that completed it
}

// decodeCapture decodes, opens and reassembles every message of the
// strongSwan capture and checks that each re-encodes to the captured bytes:
// cleartext messages with Encode, SK with Seal and SKF with SealFragment
// (same IV and padding), reassembled chains with AppendPayloads.
func decodeCapture(t *testing.T, name string, keys map[string][]byte) []capFrame {
	t.Helper()
	var out []capFrame
	reasm := map[string]*Reassembler{}
	for _, cm := range loadCapture(t, name) {
		m, err := Decode(cm.b)
		if err != nil {
			t.Fatalf("frame %d: %v", cm.frame, err)
		}
		f := capFrame{frame: cm.frame, msg: m}
		last := lastPayload(m.Payloads)
		_, sk := last.(*Encrypted)
		_, skf := last.(*EncryptedFragment)
		if (!sk && !skf) || keys == nil {
			b, err := m.Encode()
			if err != nil || !bytes.Equal(b, cm.b) {
				t.Fatalf("frame %d: re-encoded differs (%v)\n got %x\nwant %x", cm.frame, err, b, cm.b)
			}
			out = append(out, f)
			continue
		}
		s := capSuite(t, keys, m.Header)
		o, err := s.Open(cm.b)
		if err != nil {
			t.Fatalf("frame %d: open: %v", cm.frame, err)
		}
		f.opened = o
		opt := &SealOptions{IV: o.IV, Padding: o.Padding}
		var re []byte
		if sk {
			if f.inner, err = o.Payloads(); err != nil {
				t.Fatalf("frame %d: inner payloads: %v", cm.frame, err)
			}
			re, err = s.Seal(o.Header, f.inner, opt)
		} else {
			re, err = s.SealFragment(o.Header, o.First, o.Plain, o.Number, o.Total, opt)
			key := hex.EncodeToString(m.Header.SPIi[:]) + string(rune('0'+m.Header.Flags&FlagResponse))
			if reasm[key] == nil {
				reasm[key] = &Reassembler{}
			}
			done, err := reasm[key].Add(o)
			if err != nil {
				t.Fatalf("frame %d: reassembly: %v", cm.frame, err)
			}
			if done {
				if f.inner, err = reasm[key].Payloads(); err != nil {
					t.Fatalf("frame %d: reassembled payloads: %v", cm.frame, err)
				}
				first, chain, _ := reasm[key].Chain()
				f2, b2, err := AppendPayloads(nil, f.inner)
				if err != nil || f2 != first || !bytes.Equal(b2, chain) {
					t.Fatalf("frame %d: reassembled chain re-encodes differently (%v)", cm.frame, err)
				}
				delete(reasm, key)
			}
		}
		if err != nil || !bytes.Equal(re, cm.b) {
			t.Fatalf("frame %d: resealed differs (%v)\n got %x\nwant %x", cm.frame, err, re, cm.b)
		}
		out = append(out, f)
	}
	if len(reasm) != 0 {
		t.Fatalf("%d incomplete reassemblies", len(reasm))
	}
	return out
}

func frameOf(t *testing.T, fs []capFrame, n int) capFrame {
	t.Helper()
	for _, f := range fs {
		if f.frame == n {
			return f
		}
	}
	t.Fatalf("no frame %d", n)
	return capFrame{}
}

func transformNames(p Proposal) []string {
	var out []string
	for _, tr := range p.Transforms {
		out = append(out, tr.Name())
	}
	return out
}

func notifyList(ps []Payload) []string {
	var out []string
	for _, p := range ps {
		if n, ok := p.(*Notify); ok {
			out = append(out, n.NotifyType.String())
		}
	}
	return out
}

// TestCaptureStrongSwan decodes, decrypts, reassembles and re-encodes every
// message of the strongSwan capture and checks chosen fields against the
// values tshark shows for the same bytes (tshark -V with the keys) and
// charon's log. TestTsharkCapture compares all fields.
func TestCaptureStrongSwan(t *testing.T) {
	fs := decodeCapture(t, "strongswan-ikev2.pcap", capKeys(t))
	if len(fs) != 17 {
		t.Fatalf("%d IKE messages, want 17", len(fs))
	}
	// Frame 1: IKE_SA_INIT request of the CBC SA.
	m := frameOf(t, fs, 1).msg
	h := m.Header
	if hex.EncodeToString(h.SPIi[:]) != "3d88285cbe14a67b" || h.SPIr != [8]byte{} || h.Exchange != ExchangeIKESAInit ||
		h.Flags != FlagInitiator || h.MessageID != 0 || h.Length != 464 || h.Version != 0x20 || h.NextPayload != PayloadSA {
		t.Errorf("frame 1 header %+v", h)
	}
	sa := m.Payloads[0].(*SA)
	if got := strings.Join(transformNames(sa.Proposals[0]), " "); sa.Proposals[0].Protocol != ProtoIKE || got != "ENCR_AES_CBC-256 AUTH_HMAC_SHA2_256_128 PRF_HMAC_SHA2_256 MODP_2048" {
		t.Errorf("frame 1 proposal %s: %s", sa.Proposals[0].Protocol, got)
	}
	ke := m.Payloads[1].(*KE)
	if ke.Group != DHModp2048 || len(ke.Data) != 256 || hex.EncodeToString(ke.Data[:8]) != "33f38020a11128dd" {
		t.Errorf("frame 1 KE group %s, %d bytes %x", ke.Group, len(ke.Data), ke.Data[:8])
	}
	if n := m.Payloads[2].(*Nonce); hex.EncodeToString(n.Data) != "bce220739de74aa724da73dbab34335560485f317b68502498b3771916939628" {
		t.Errorf("frame 1 nonce %x", n.Data)
	}
	if got := strings.Join(notifyList(m.Payloads), " "); got != "NAT_DETECTION_SOURCE_IP NAT_DETECTION_DESTINATION_IP IKEV2_FRAGMENTATION_SUPPORTED SIGNATURE_HASH_ALGORITHMS REDIRECT_SUPPORTED" {
		t.Errorf("frame 1 notifies %s", got)
	}
	if n := FindNotify(m.Payloads, NotifyNATDetectionSourceIP); n == nil || hex.EncodeToString(n.Data) != "0c765c5fac2fc9aa787922388ea0b5c53329badd" {
		t.Errorf("frame 1 NAT_DETECTION_SOURCE_IP %+v", n)
	}
	if algs, err := FindNotify(m.Payloads, NotifySignatureHashAlgorithms).HashAlgorithms(); err != nil || len(algs) != 4 || algs[0] != 2 || algs[3] != 5 {
		t.Errorf("frame 1 hash algorithms %v %v", algs, err)
	}
	// Frame 2: the response, with the responder SPI.
	m = frameOf(t, fs, 2).msg
	if hex.EncodeToString(m.Header.SPIr[:]) != "85e45c2b2ec37247" || !m.Header.Response() || m.Header.Initiator() {
		t.Errorf("frame 2 header %+v", m.Header)
	}
	// Frames 3-5: IKE_AUTH request in three fragments.
	for i, n := range []int{3, 4, 5} {
		o := frameOf(t, fs, n).opened
		if o.Number != uint16(i+1) || o.Total != 3 || (i == 0) != (o.First == PayloadIDi) {
			t.Errorf("frame %d: fragment %d/%d first %s", n, o.Number, o.Total, o.First)
		}
	}
	if o := frameOf(t, fs, 3).opened; hex.EncodeToString(o.IV) != "58029110617da805ab9dad8b12030dc4" || len(o.Plain) != 95 || len(o.Padding) != 0 {
		t.Errorf("frame 3: IV %x, %d bytes, padding %d", o.IV, len(o.Plain), len(o.Padding))
	}
	inner := frameOf(t, fs, 5).inner
	if got := payloadTypes(inner); got != "IDi N IDr AUTH SA TSi TSr N N N N N" {
		t.Errorf("frame 5 reassembled: %s", got)
	}
	// Frames 6-7: IKE_AUTH response in two fragments.
	inner = frameOf(t, fs, 7).inner
	if got := payloadTypes(inner); got != "IDr AUTH SA TSi TSr N N" {
		t.Fatalf("frame 7 reassembled: %s", got)
	}
	if a, ok := inner[0].(*ID).Addr(); !ok || a.String() != "10.99.0.1" || !inner[0].(*ID).Responder {
		t.Errorf("frame 7 IDr %+v", inner[0])
	}
	if au := inner[1].(*Auth); au.Method != AuthPSK || hex.EncodeToString(au.Data) != "6a3158855d6807352ddaa7b2299a5a5d821c4f8f729fe13941caa83bd91c784b" {
		t.Errorf("frame 7 AUTH %s %x", au.Method, au.Data)
	}
	esp := inner[2].(*SA).Proposals[0]
	// charon log (initiator): "CHILD_SA cbc-net{1} established with SPIs 38423195_i 3eec170d_o"
	if esp.Protocol != ProtoESP || hex.EncodeToString(esp.SPI) != "3eec170d" || strings.Join(transformNames(esp), " ") != "ENCR_AES_CBC-128 AUTH_HMAC_SHA2_256_128 NO_ESN" {
		t.Errorf("frame 7 ESP proposal %s %x %v", esp.Protocol, esp.SPI, transformNames(esp))
	}
	for _, p := range inner[3:5] {
		s := p.(*TS).Selectors
		if len(s) != 1 || s[0].String() != "0.0.0.0-255.255.255.255 proto 0 ports 0-65535" || s[0].Type != TSIPv4Range {
			t.Errorf("frame 7 %s %v", p.Type(), s)
		}
	}
	// Frames 8-9: INFORMATIONAL Delete of the IKE SA and the empty answer.
	if d, ok := frameOf(t, fs, 8).inner[0].(*Delete); !ok || d.Protocol != ProtoIKE || d.SPISize != 0 || len(d.SPIs) != 0 {
		t.Errorf("frame 8: %+v", frameOf(t, fs, 8).inner)
	}
	if o := frameOf(t, fs, 8).opened; len(o.Padding) != 7 {
		t.Errorf("frame 8 padding %d, tshark says 7", len(o.Padding))
	}
	if f := frameOf(t, fs, 9); len(f.inner) != 0 || f.opened.First != PayloadNone {
		t.Errorf("frame 9: %v", f.inner)
	}
	// The GCM SA: frame 10 proposes it, 13 completes the IKE_AUTH request.
	sa = frameOf(t, fs, 10).msg.Payloads[0].(*SA)
	if got := strings.Join(transformNames(sa.Proposals[0]), " "); got != "ENCR_AES_GCM_16-128 PRF_HMAC_SHA2_384 ECP_256" {
		t.Errorf("frame 10 proposal %s", got)
	}
	if got := payloadTypes(frameOf(t, fs, 13).inner); got != "IDi N IDr AUTH SA TSi TSr N N N N N" {
		t.Errorf("frame 13 reassembled: %s", got)
	}
	if o := frameOf(t, fs, 12).opened; len(o.IV) != 8 {
		t.Errorf("GCM IV of %d bytes, want 8 (RFC 5282)", len(o.IV))
	}
}

func payloadTypes(ps []Payload) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Type().String())
	}
	return strings.Join(s, " ")
}

// TestCaptureZeek decodes the public capture (no keys: the SK payload of
// IKE_AUTH stays sealed) and checks it re-encodes byte for byte.
func TestCaptureZeek(t *testing.T) {
	fs := decodeCapture(t, "zeek-spicy-ipsec-client.pcap", nil)
	if len(fs) != 5 {
		t.Fatalf("%d IKE messages, want 5", len(fs))
	}
	m := fs[0].msg
	if m.Header.Exchange != ExchangeIKESAInit || !m.Header.Initiator() || len(m.Payloads) == 0 {
		t.Fatalf("first message %+v", m.Header)
	}
	for _, f := range fs[2:] {
		if f.msg.Header.Exchange != ExchangeIKEAuth {
			t.Errorf("frame %d: %s", f.frame, f.msg.Header.Exchange)
		}
		if _, ok := lastPayload(f.msg.Payloads).(*Encrypted); !ok {
			t.Errorf("frame %d: no SK payload", f.frame)
		}
	}
}
