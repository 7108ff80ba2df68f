package isakmp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The frames in testdata/capture are the ISAKMP messages (UDP payload, the
// 4-byte non-ESP marker stripped on port 4500) of
// /work/shared/lab/captures/ikev1-natt-public.pcap, a strongSwan 5.9.8 IKEv1
// main mode + quick mode with NAT-T, DPD and delete. Expected values are
// copied from ikev1-natt-public.isakmp-V.txt / .decrypted-V.txt (tshark -V).

func loadFrame(t testing.TB, n int) []byte {
	t.Helper()
	name := filepath.Join("testdata", "capture", "frame"+twoDigits(n)+".hex")
	s, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(s)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func twoDigits(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	capICookie = "069cf174ba04d16c"
	capRCookie = "983f817f4484825f"
)

func checkHeader(t *testing.T, m *Message, icky, rcky string, np PayloadType, ex ExchangeType, flags uint8, mid uint32, length uint32) {
	t.Helper()
	h := m.Header
	if hex.EncodeToString(h.ICookie[:]) != icky || hex.EncodeToString(h.RCookie[:]) != rcky {
		t.Errorf("cookies %x %x, want %s %s", h.ICookie, h.RCookie, icky, rcky)
	}
	if h.NextPayload != np || h.Version != 0x10 || h.Exchange != ex || h.Flags != flags || h.MessageID != mid || h.Length != length {
		t.Errorf("header %v, want np=%s ex=%s flags=%d mid=%08x len=%d", h, np, ex, flags, mid, length)
	}
}

func checkMainModeSA(t *testing.T, p Payload) {
	t.Helper()
	sa, ok := p.(*SA)
	if !ok {
		t.Fatalf("first payload %T, want *SA", p)
	}
	if sa.DOI != DOIIPsec || sa.Situation != SituationIdentityOnly || len(sa.Proposals) != 1 {
		t.Fatalf("SA %s", Describe(sa))
	}
	pr := sa.Proposals[0]
	if pr.Number != 1 || pr.ProtocolID != ProtoISAKMP || len(pr.SPI) != 0 || len(pr.Transforms) != 1 {
		t.Fatalf("proposal %+v", pr)
	}
	tr := pr.Transforms[0]
	if tr.Number != 1 || tr.ID != TransformKeyIKE {
		t.Fatalf("transform %+v", tr)
	}
	want := []Attribute{
		AttrBasic(AttrEncryptionAlgorithm, EncAESCBC),
		AttrBasic(AttrKeyLength, 256),
		AttrBasic(AttrHashAlgorithm, HashSHA2256),
		AttrBasic(AttrGroupDescription, 14),
		AttrBasic(AttrAuthenticationMethod, AuthPSK),
		AttrBasic(AttrLifeType, LifeSeconds),
		AttrBasic(AttrLifeDuration, 28800),
	}
	if len(tr.Attributes) != len(want) {
		t.Fatalf("attributes %+v", tr.Attributes)
	}
	for i := range want {
		if tr.Attributes[i].Type != want[i].Type || !tr.Attributes[i].Basic || tr.Attributes[i].Value != want[i].Value {
			t.Errorf("attribute %d = %+v, want %+v", i, tr.Attributes[i], want[i])
		}
	}
	if d := Describe(sa); !strings.Contains(d, "Encryption-Algorithm=AES-CBC") || !strings.Contains(d, "Group-Description=modp2048") || !strings.Contains(d, "Life-Duration=28800") {
		t.Errorf("Describe(SA) = %q", d)
	}
}

func checkVIDs(t *testing.T, m *Message, want []string, names []string) {
	t.Helper()
	vids := m.VendorIDs()
	if len(vids) != len(want) {
		t.Fatalf("%d VIDs, want %d", len(vids), len(want))
	}
	for i, v := range vids {
		if hex.EncodeToString(v.Data) != want[i] {
			t.Errorf("VID %d = %x, want %s", i, v.Data, want[i])
		}
		if n := VendorName(v.Data); n != names[i] {
			t.Errorf("VendorName(%x) = %q, want %q", v.Data, n, names[i])
		}
	}
}

// reencode checks that encoding the decoded message gives the input bytes,
// both with SA.Raw and with the SA rebuilt from its fields.
func reencode(t *testing.T, m *Message, wire []byte) {
	t.Helper()
	out, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, wire) {
		t.Fatalf("re-encoded message differs:\n got %x\nwant %x", out, wire)
	}
	for _, p := range m.Payloads {
		if sa, ok := p.(*SA); ok {
			sa.Raw = nil
		}
	}
	out, err = m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, wire) {
		t.Fatalf("message re-encoded from fields differs:\n got %x\nwant %x", out, wire)
	}
}

func TestCaptureMainMode(t *testing.T) {
	// MM1: SA + 5 VIDs (lab README section 6).
	mm1 := loadFrame(t, 1)
	m, err := Decode(mm1)
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, m, capICookie, "0000000000000000", PayloadSA, ExchangeIdentityProtection, 0, 0, 180)
	if len(m.Payloads) != 6 {
		t.Fatalf("MM1: %d payloads", len(m.Payloads))
	}
	checkMainModeSA(t, m.Payloads[0])
	if got := len(m.Payloads[0].Body()); got != 56-4 {
		t.Errorf("SA body %d bytes, want 52", got)
	}
	checkVIDs(t, m,
		[]string{"09002689dfd6b712", "afcad71368a1f1c96b8696fc77570100", "4048b7d56ebce88525e7de7f00d6c2d380000000",
			"4a131c81070358455c5728f20e95452f", "90cb80913ebb696e086381b5ec427b1f"},
		[]string{"XAUTH", "Dead Peer Detection (DPD) v1.0", "FRAGMENTATION", "RFC 3947 NAT-Traversal", "draft-ietf-ipsec-nat-t-ike-02_n"})
	for i, v := range [][]byte{VendorXAuth, VendorDPD, VendorCiscoFrag, VendorRFC3947NATT, VendorNATTDraft02N} {
		if !bytes.Equal(m.VendorIDs()[i].Data, v) {
			t.Errorf("VID %d does not equal the exported variable", i)
		}
	}
	reencode(t, m, mm1)

	// MM2: responder cookie, SA, 4 VIDs.
	mm2 := loadFrame(t, 2)
	m, err = Decode(mm2)
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, m, capICookie, capRCookie, PayloadSA, ExchangeIdentityProtection, 0, 0, 160)
	checkMainModeSA(t, m.Payloads[0])
	checkVIDs(t, m,
		[]string{"09002689dfd6b712", "afcad71368a1f1c96b8696fc77570100", "4048b7d56ebce88525e7de7f00d6c2d380000000", "4a131c81070358455c5728f20e95452f"},
		[]string{"XAUTH", "Dead Peer Detection (DPD) v1.0", "FRAGMENTATION", "RFC 3947 NAT-Traversal"})
	reencode(t, m, mm2)

	// MM3/MM4: KE (256 bytes, modp2048), Nonce, 2 NAT-D.
	for _, c := range []struct {
		frame      int
		kePrefix   string
		nonce      string
		natd0, nd1 string
	}{
		{3, "f875ed551c2f3590660f6df1c75ef4390a59b6bd6c8d7c6c9c607c97d0ef90d3e52dee35",
			"fc5170c8efe7b884dcf993896cb84279eb488f26865b93ae58966815da849fd1",
			"364dc783f38fec72626ef14a1c46ad1ed21e59fecfb3677853397c5d7fe759a5",
			"bc8a75d9d08fbf74eb61f9cfb1b78cb26b3e7443b1c9230c2168d690c9dc4ef1"},
		{4, "49978690b8a23b0dc4b31335d1065e0fbae5b432676fb7f6d013a8297f5512d2150d876f",
			"08498b0ecec712063feaa474da4a2d7b67b19426af4679c0008d839dbabaf9a2",
			"065a889dc0e3c4c5c54b072776fac4d56dad9c0ba6ac2979a259776fdf3bd6c3",
			"085ba3c7fecd923ce71461802b8734b154c04d7770be43e40840374fd8874d2d"},
	} {
		wire := loadFrame(t, c.frame)
		m, err := Decode(wire)
		if err != nil {
			t.Fatal(err)
		}
		checkHeader(t, m, capICookie, capRCookie, PayloadKE, ExchangeIdentityProtection, 0, 0, 396)
		ke, _ := m.Find(PayloadKE).(*KE)
		if ke == nil || len(ke.Data) != 256 || !strings.HasPrefix(hex.EncodeToString(ke.Data), c.kePrefix) {
			t.Errorf("MM%d KE %v", c.frame, Describe(ke))
		}
		n, _ := m.Find(PayloadNonce).(*Nonce)
		if n == nil || hex.EncodeToString(n.Data) != c.nonce {
			t.Errorf("MM%d nonce %v", c.frame, Describe(n))
		}
		nds := m.FindAll(PayloadNATDDraft) // draft type finds RFC NAT-D too
		if len(nds) != 2 || hex.EncodeToString(nds[0].(*NATD).Hash) != c.natd0 || hex.EncodeToString(nds[1].(*NATD).Hash) != c.nd1 {
			t.Errorf("MM%d NAT-D %v", c.frame, nds)
		}
		if nds[0].Type() != PayloadNATD || nds[0].(*NATD).Draft {
			t.Errorf("NAT-D decoded as draft")
		}
		reencode(t, m, wire)
	}
}

// TestCaptureEncrypted decrypts MM5, MM6 and the quick mode with Ka from
// keys.txt (AES-256-CBC; phase 1 IV = SHA2-256(g^xi | g^xr) truncated to the
// block size, RFC 2409 appendix B; phase 2 IV = hash(last phase 1 CBC block |
// M-ID); then the last CBC block of the previous message).
func TestCaptureEncrypted(t *testing.T) {
	ka := unhex(t, "17500b66939ff7df2f3a38448431a175e0626af47a77806a90c2125d28af5379")
	block, err := aes.NewCipher(ka)
	if err != nil {
		t.Fatal(err)
	}
	mustDecode := func(n int) *Message {
		m, err := Decode(loadFrame(t, n))
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		return m
	}
	kei := mustDecode(3).Find(PayloadKE).(*KE).Data
	ker := mustDecode(4).Find(PayloadKE).(*KE).Data
	h := sha256.Sum256(append(append([]byte{}, kei...), ker...))
	iv := h[:16]

	decrypt := func(m *Message, iv []byte) (plain, lastBlock []byte) {
		t.Helper()
		if m.Header.Flags&FlagEncryption == 0 || len(m.Payloads) != 0 || len(m.Body)%16 != 0 || len(m.Body) == 0 {
			t.Fatalf("not an encrypted body: %v body %d", m.Header, len(m.Body))
		}
		plain = make([]byte, len(m.Body))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, m.Body)
		return plain, m.Body[len(m.Body)-16:]
	}

	// MM5: ID_IPV4_ADDR 198.51.100.2, HASH_I, INITIAL-CONTACT.
	mm5 := mustDecode(5)
	checkHeader(t, mm5, capICookie, capRCookie, PayloadID, ExchangeIdentityProtection, FlagEncryption, 0, 108)
	plain, last := decrypt(mm5, iv)
	ps, err := DecodePayloads(mm5.Header.NextPayload, plain, HeaderLen)
	if err != nil {
		t.Fatalf("MM5: %v (plain %x)", err, plain)
	}
	if len(ps) != 3 {
		t.Fatalf("MM5 payloads %d", len(ps))
	}
	if id := ps[0].(*ID); id.String() != "ID_IPV4_ADDR 198.51.100.2" {
		t.Errorf("MM5 ID %s", id)
	}
	if hh := ps[1].(*Hash); hex.EncodeToString(hh.Data) != "ee0c7703b67745819e813f925003621f62a4fe866e7a57b488d3c973746e5c82" {
		t.Errorf("MM5 HASH %x", hh.Data)
	}
	n := ps[2].(*Notify)
	if n.NotifyType != NotifyInitialContact || n.ProtocolID != ProtoISAKMP || hex.EncodeToString(n.SPI) != capICookie+capRCookie || len(n.Data) != 0 {
		t.Errorf("MM5 notify %s", Describe(n))
	}
	// The encoded chain is the decrypted body without its padding.
	first, enc, err := EncodePayloads(ps)
	if err != nil || first != PayloadID || !bytes.Equal(enc, plain[:len(enc)]) || len(plain)-len(enc) != 4 {
		t.Errorf("MM5 re-encode: %v %s %x", err, first, enc)
	}

	// MM6: ID_IPV4_ADDR 203.0.113.10, HASH_R.
	mm6 := mustDecode(6)
	plain, last = decrypt(mm6, last)
	ps, err = DecodePayloads(mm6.Header.NextPayload, plain, HeaderLen)
	if err != nil {
		t.Fatalf("MM6: %v", err)
	}
	if len(ps) != 2 || ps[0].(*ID).String() != "ID_IPV4_ADDR 203.0.113.10" ||
		hex.EncodeToString(ps[1].(*Hash).Data) != "192de387c3b71ca19530fd6fbf4aa192fda96f06fb62696cdd9bd3eb91f637c4" {
		t.Errorf("MM6 payloads %v", ps)
	}
	phase1Last := last

	// QM1: HASH(1), SA (ESP), Nonce, KE, IDci, IDcr.
	qm1 := mustDecode(7)
	checkHeader(t, qm1, capICookie, capRCookie, PayloadHash, ExchangeQuickMode, FlagEncryption, 0x4f19c6e5, 460)
	mid := binary.BigEndian.AppendUint32(nil, qm1.Header.MessageID)
	h = sha256.Sum256(append(append([]byte{}, phase1Last...), mid...))
	plain, last = decrypt(qm1, h[:16])
	ps, err = DecodePayloads(qm1.Header.NextPayload, plain, HeaderLen)
	if err != nil {
		t.Fatalf("QM1: %v", err)
	}
	types := []PayloadType{PayloadHash, PayloadSA, PayloadNonce, PayloadKE, PayloadID, PayloadID}
	if len(ps) != len(types) {
		t.Fatalf("QM1: %d payloads", len(ps))
	}
	for i, p := range ps {
		if p.Type() != types[i] {
			t.Errorf("QM1 payload %d is %s, want %s", i, p.Type(), types[i])
		}
	}
	if hex.EncodeToString(ps[0].(*Hash).Data) != "66c3ccf8d7a6dd11de9ced9692dc420411e98980ddd999e06febb17afd9375c6" {
		t.Errorf("QM1 HASH %x", ps[0].Body())
	}
	sa := ps[1].(*SA)
	pr := sa.Proposals[0]
	if len(sa.Proposals) != 1 || pr.ProtocolID != ProtoESP || hex.EncodeToString(pr.SPI) != "ef5ebbd9" || len(pr.Transforms) != 1 || pr.Transforms[0].ID != ESPAESCBC {
		t.Fatalf("QM1 SA %s", Describe(sa))
	}
	attrs := pr.Transforms[0].Attributes
	for _, w := range []Attribute{AttrBasic(AttrKeyLen, 128), AttrBasic(AttrAuthAlgorithm, AuthHMACSHA2256), AttrBasic(AttrGroup, 14),
		AttrBasic(AttrEncapsulationMode, EncapUDPTunnel), AttrBasic(AttrSALifeType, LifeSeconds), AttrBasic(AttrSALifeDuration, 3600)} {
		a, ok := FindAttr(attrs, w.Type)
		if v, err := a.Uint(); !ok || err != nil || v != uint64(w.Value) {
			t.Errorf("QM1 attribute %d = %+v", w.Type, a)
		}
	}
	if d := Describe(sa); !strings.Contains(d, "ESP_AES_CBC") || !strings.Contains(d, "Encapsulation-Mode=UDP-Encapsulated-Tunnel") {
		t.Errorf("Describe = %q", d)
	}
	if hex.EncodeToString(ps[2].(*Nonce).Data) != "205454ac7af0a8aa2ce6efafe172d96d34348dfcb4c5827fd5057d732948b717" {
		t.Errorf("QM1 nonce")
	}
	if ke := ps[3].(*KE); len(ke.Data) != 256 || !strings.HasPrefix(hex.EncodeToString(ke.Data), "0e39b61657ad133b1ac4ec5ca8e4ee70155d05c23c1c4c67abd77c80978ac28201f15878") {
		t.Errorf("QM1 KE")
	}
	for i, want := range []string{"10.10.0.0/16", "172.31.0.0/16"} {
		id := ps[4+i].(*ID)
		p, err := id.Prefix()
		if err != nil || p != netip.MustParsePrefix(want) || id.String() != "ID_IPV4_ADDR_SUBNET "+want {
			t.Errorf("QM1 ID %d: %s %v %v", i, id, p, err)
		}
		if !bytes.Equal(IDFromPrefix(p).Body(), id.Body()) {
			t.Errorf("IDFromPrefix(%s) differs from the wire", p)
		}
	}
	// Quick mode HASH(1) input: "all payloads after HASH including headers".
	_, afterHash, err := EncodePayloads(ps[1:])
	if err != nil || !bytes.Equal(afterHash, plain[4+32:4+32+len(afterHash)]) {
		t.Errorf("EncodePayloads(after HASH) differs from the decrypted body: %v", err)
	}

	// QM2 (responder) and QM3 (HASH(3) only): IV chains from the previous message.
	qm2 := mustDecode(8)
	plain, last = decrypt(qm2, last)
	ps, err = DecodePayloads(qm2.Header.NextPayload, plain, HeaderLen)
	if err != nil || len(ps) != 6 {
		t.Fatalf("QM2: %v %d", err, len(ps))
	}
	if spi := ps[1].(*SA).Proposals[0].SPI; hex.EncodeToString(spi) != "ad8c3188" {
		t.Errorf("QM2 SPI %x", spi)
	}
	qm3 := mustDecode(9)
	plain, _ = decrypt(qm3, last)
	ps, err = DecodePayloads(qm3.Header.NextPayload, plain, HeaderLen)
	if err != nil || len(ps) != 1 || ps[0].Type() != PayloadHash {
		t.Fatalf("QM3: %v %v", err, ps)
	}

	// Informational exchanges (DPD, delete): IV = hash(phase 1 last block | M-ID).
	var sawRUThere, sawAck, sawDelESP, sawDelIKE bool
	for _, f := range []int{20, 21, 22, 23, 24, 25, 26, 27, 28, 29} {
		m := mustDecode(f)
		if m.Header.Exchange != ExchangeInformational {
			t.Fatalf("frame %d: %v", f, m.Header)
		}
		mid := binary.BigEndian.AppendUint32(nil, m.Header.MessageID)
		h := sha256.Sum256(append(append([]byte{}, phase1Last...), mid...))
		plain, _ := decrypt(m, h[:16])
		ps, err := DecodePayloads(m.Header.NextPayload, plain, HeaderLen)
		if err != nil {
			t.Fatalf("frame %d: %v", f, err)
		}
		if ps[0].Type() != PayloadHash {
			t.Errorf("frame %d: first payload %s", f, ps[0].Type())
		}
		for _, p := range ps[1:] {
			switch p := p.(type) {
			case *Notify:
				if hex.EncodeToString(p.SPI) != capICookie+capRCookie || len(p.Data) != 4 {
					t.Errorf("frame %d: %s", f, Describe(p))
				}
				sawRUThere = sawRUThere || p.NotifyType == NotifyRUThere
				sawAck = sawAck || p.NotifyType == NotifyRUThereAck
			case *Delete:
				switch {
				case p.ProtocolID == ProtoESP && len(p.SPIs) == 1 && hex.EncodeToString(p.SPIs[0]) == "ef5ebbd9":
					sawDelESP = true
				case p.ProtocolID == ProtoISAKMP && p.SPISize == 16 && len(p.SPIs) == 1 && hex.EncodeToString(p.SPIs[0]) == capICookie+capRCookie:
					sawDelIKE = true
				default:
					t.Errorf("frame %d: %s", f, Describe(p))
				}
			default:
				t.Errorf("frame %d: unexpected %s", f, Describe(p))
			}
		}
	}
	if !sawRUThere || !sawAck || !sawDelESP || !sawDelIKE {
		t.Errorf("R-U-THERE %v ACK %v delete ESP %v delete ISAKMP %v", sawRUThere, sawAck, sawDelESP, sawDelIKE)
	}
}
