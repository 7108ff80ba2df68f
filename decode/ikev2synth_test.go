package decode

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// v2Cap builds a raw-IP pcap of IKEv2 datagrams (exchanges the strongSwan
// captures do not have: COOKIE, an initiator that rejects the responder's
// AUTH, an unanswered IKE_SA_INIT).
type v2Cap struct {
	t    *testing.T
	buf  bytes.Buffer
	w    *pcapgo.Writer
	when time.Time
}

func newV2Cap(t *testing.T) *v2Cap {
	c := &v2Cap{t: t, when: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	c.w = pcapgo.NewWriter(&c.buf)
	if err := c.w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *v2Cap) add(src, dst netip.AddrPort, msg []byte) {
	udp := make([]byte, 8, 8+len(msg))
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(msg)))
	udp = append(udp, msg...)
	ip := make([]byte, 20, 20+len(udp))
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	pkt := append(ip, udp...)
	c.when = c.when.Add(10 * time.Millisecond)
	if err := c.w.WritePacket(gopacket.CaptureInfo{Timestamp: c.when, CaptureLength: len(pkt), Length: len(pkt)}, pkt); err != nil {
		c.t.Fatal(err)
	}
}

func encodeV2(t *testing.T, h wire.Header, ps ...wire.Payload) []byte {
	t.Helper()
	h.Version = wire.Version
	b, err := (&wire.Message{Header: h, Payloads: ps}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func natHash(spii, spir [8]byte, a netip.AddrPort) []byte {
	h := sha1.New()
	h.Write(spii[:])
	h.Write(spir[:])
	ip := a.Addr().As4()
	h.Write(ip[:])
	h.Write([]byte{byte(a.Port() >> 8), byte(a.Port())})
	return h.Sum(nil)
}

func TestIKEv2CookieInitiatorAuthFailedAndNoAnswer(t *testing.T) {
	ini, res := netip.MustParseAddrPort("192.0.2.1:500"), netip.MustParseAddrPort("198.51.100.7:500")
	spii, spir := [8]byte{1, 1, 1, 1, 1, 1, 1, 1}, [8]byte{2, 2, 2, 2, 2, 2, 2, 2}
	offer := &wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{
		wire.Encr(wire.EncrAESCBC, 128), wire.PRF(wire.PRFHMACSHA2256), wire.Integ(wire.IntegHMACSHA2256128), wire.DH(wire.DHModp2048)}}}}
	ke := &wire.KE{Group: wire.DHModp2048, Data: make([]byte, 256)}
	nonce := &wire.Nonce{Data: bytes.Repeat([]byte{7}, 32)}
	natd := func(si, sr [8]byte, src, dst netip.AddrPort) []wire.Payload {
		return []wire.Payload{&wire.Notify{NotifyType: wire.NotifyNATDetectionSourceIP, Data: natHash(si, sr, src)},
			&wire.Notify{NotifyType: wire.NotifyNATDetectionDestinationIP, Data: natHash(si, sr, dst)}}
	}
	cookie := &wire.Notify{NotifyType: wire.NotifyCookie, Data: bytes.Repeat([]byte{9}, 20)}
	c := newV2Cap(t)
	reqH := wire.Header{SPIi: spii, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagInitiator}
	respH := wire.Header{SPIi: spii, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagResponse}
	c.add(ini, res, encodeV2(t, reqH, append([]wire.Payload{offer, ke, nonce}, natd(spii, [8]byte{}, ini, res)...)...))
	c.add(res, ini, encodeV2(t, respH, cookie))
	c.add(ini, res, encodeV2(t, reqH, append([]wire.Payload{cookie, offer, ke, nonce}, natd(spii, [8]byte{}, ini, res)...)...))
	respH.SPIr = spir
	c.add(res, ini, encodeV2(t, respH, append([]wire.Payload{offer, ke, nonce}, natd(spii, spir, res, ini)...)...))

	keys := map[string][]byte{"ei": bytes.Repeat([]byte{0x11}, 16), "er": bytes.Repeat([]byte{0x22}, 16),
		"ai": bytes.Repeat([]byte{0x33}, 32), "ar": bytes.Repeat([]byte{0x44}, 32)}
	seal := func(fromI bool, h wire.Header, ps ...wire.Payload) []byte {
		k := wire.Keys{Encr: wire.EncrAESCBC, Integ: wire.IntegHMACSHA2256128, EncrKey: keys["ei"], IntegKey: keys["ai"]}
		if !fromI {
			k.EncrKey, k.IntegKey = keys["er"], keys["ar"]
		}
		s, err := wire.NewSuite(k)
		if err != nil {
			t.Fatal(err)
		}
		h.SPIi, h.SPIr, h.Version = spii, spir, wire.Version
		b, err := s.Seal(h, ps, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	child := &wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtoESP, SPI: []byte{0xc0, 0, 0, 1}, Transforms: []wire.Transform{
		wire.Encr(wire.EncrAESGCM16, 256), wire.ESNTransform(wire.ESNNo)}}}}
	tsi := &wire.TS{Selectors: []wire.Selector{wire.SelectorFromPrefix(netip.MustParsePrefix("0.0.0.0/0"))}}
	tsr := &wire.TS{Responder: true, Selectors: tsi.Selectors}
	auth := &wire.Auth{Method: wire.AuthPSK, Data: make([]byte, 32)}
	authReq := seal(true, wire.Header{Exchange: wire.ExchangeIKEAuth, Flags: wire.FlagInitiator, MessageID: 1},
		wire.IDFromAddr(ini.Addr(), false), auth, child, tsi, tsr)
	c.add(ini, res, authReq)
	c.add(ini, res, authReq) // retransmission
	c.add(res, ini, seal(false, wire.Header{Exchange: wire.ExchangeIKEAuth, Flags: wire.FlagResponse, MessageID: 1},
		wire.IDFromAddr(res.Addr(), true), auth, child, tsi, tsr))
	c.add(ini, res, seal(true, wire.Header{Exchange: wire.ExchangeInformational, Flags: wire.FlagInitiator, MessageID: 2},
		&wire.Notify{NotifyType: wire.NotifyAuthenticationFailed}))

	// A second IKE SA: IKE_SA_INIT sent three times, never answered.
	lone := [8]byte{3, 3, 3, 3, 3, 3, 3, 3}
	for i := 0; i < 3; i++ {
		c.add(ini, res, encodeV2(t, wire.Header{SPIi: lone, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagInitiator}, offer, ke, nonce))
	}

	k := NewKeys()
	rec := fmt.Sprintf("ikev2_decryption_table:%x,%x,%x,%x,\"AES-CBC-128 [RFC3602]\",%x,%x,\"HMAC_SHA2_256_128 [RFC4868]\"\n",
		spii, spir, keys["ei"], keys["er"], keys["ai"], keys["ar"])
	if err := k.loadKeys(strings.NewReader(rec), "synth.keys"); err != nil {
		t.Fatal(err)
	}
	rep, err := Decode(bytes.NewReader(c.buf.Bytes()), "synthetic", k)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.WriteText(&b)
	text := b.String()
	if os.Getenv("V2_DUMP") != "" {
		t.Log(text)
	}
	if len(rep.IKEv2) != 2 {
		t.Fatalf("%d IKEv2 SAs:\n%s", len(rep.IKEv2), text)
	}
	sa, lonely := rep.IKEv2[0], rep.IKEv2[1]
	if sa.Status != "failed" || !strings.HasPrefix(sa.Reason, "pre-shared key mismatch (seen by the initiator)") {
		t.Errorf("SA 1: %s: %s", sa.Status, sa.Reason)
	}
	if sa.NAT != "NAT-D: no NAT between the peers (the hashes match the addresses)" {
		t.Errorf("NAT %q", sa.NAT)
	}
	wantIn(t, text, "COOKIE: the responder is under load", "repeats IKE_SA_INIT with the responder's COOKIE",
		"retransmission of message 1", "child SA chosen #1 ESP ENCR_AES_GCM_16-256/NO_ESN", "TSi 0.0.0.0/0, TSr 0.0.0.0/0",
		"notify AUTHENTICATION_FAILED")
	if lonely.Status != "failed" || lonely.Reason != "no answer to IKE_SA_INIT (2 retransmission(s)): the responder is unreachable, not listening, or silently refuses the initiator" {
		t.Errorf("SA 2: %s: %s", lonely.Status, lonely.Reason)
	}
	if rep.ExitCode() != 1 {
		t.Errorf("exit %d", rep.ExitCode())
	}
}

// With the responder's configuration a refused IKE proposal is set against
// what it accepts.
func TestIKEv2NoProposalWithPolicy(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "vgw.yaml")
	y := "tunnels:\n  - name: t1\n    local_address: 10.99.0.1\n    remote_address: 10.99.0.2\n    phase1:\n      proposals: [aes256-sha256-modp2048]\n"
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	pol := &Policy{}
	if err := pol.LoadPolicyFile(cfg); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/ikev2/no-proposal.pcap")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := DecodeWithPolicy(bytes.NewReader(b), "no-proposal", NewKeys(), pol)
	if err != nil {
		t.Fatal(err)
	}
	want := "no proposal chosen: offered #1 IKE ENCR_AES_CBC-128/AUTH_HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048; the responder accepts none of them (the responder accepts (" + cfg + " tunnel t1): aes256-sha256-modp2048)"
	if len(rep.IKEv2) != 1 || rep.IKEv2[0].Reason != want {
		t.Errorf("reason:\n%q\nwant\n%q", rep.IKEv2[0].Reason, want)
	}
}
