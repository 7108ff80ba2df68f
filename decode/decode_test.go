package decode

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// decodeFile decodes a testdata capture with the given key and PSK files.
func decodeFile(t *testing.T, capture string, keyFiles, pskFiles []string) *Report {
	t.Helper()
	keys := NewKeys()
	for _, f := range keyFiles {
		if err := keys.LoadKeyFile(filepath.Join("testdata", f)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range pskFiles {
		if err := keys.LoadPSKFile(f); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join("testdata", capture))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Decode(bytes.NewReader(b), capture, keys)
	if err != nil {
		t.Fatal(err)
	}
	var txt, js bytes.Buffer
	if err := rep.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	t.Log(txt.String())
	return rep
}

func pskFile(t *testing.T, psks ...string) string {
	f := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(f, []byte(strings.Join(psks, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Our psk-mismatch scenario (scenarios/psk-mismatch.yaml, vpnlab run):
// each gateway logs its own key for the same cookie; MM5 decrypts only
// with the initiator's.
func TestPSKMismatchScenario(t *testing.T) {
	rep := decodeFile(t, "scenarios/psk-mismatch.pcap", []string{"scenarios/psk-mismatch.keys.log"}, nil)
	if len(rep.IKE) != 2 {
		t.Fatalf("%d ISAKMP SAs, want 2 (one per tunnel)", len(rep.IKE))
	}
	for _, sa := range rep.IKE {
		if sa.Status != "failed" || !strings.Contains(sa.Reason, "pre-shared key mismatch") || !strings.Contains(sa.Reason, "MM5") {
			t.Errorf("SA %s: status %q reason %q, want failed with a pre-shared key mismatch at MM5", sa.ICookie, sa.Status, sa.Reason)
		}
	}
	if rep.ExitCode() != 1 {
		t.Errorf("exit code %d, want 1", rep.ExitCode())
	}
	// With the AWS side's key, HASH_I (computed by the customer gateway
	// with its wrong key) does not verify; with the customer's it does.
	rep = decodeFile(t, "scenarios/psk-mismatch.pcap", []string{"scenarios/psk-mismatch.keys.log"}, []string{pskFile(t, "correct.horse.battery.staple")})
	if r := rep.IKE[0].Reason; !strings.Contains(r, "HASH_I does not verify") || !strings.Contains(r, "pre-shared key mismatch") {
		t.Errorf("reason %q, want HASH_I does not verify: pre-shared key mismatch", r)
	}
	rep = decodeFile(t, "scenarios/psk-mismatch.pcap", []string{"scenarios/psk-mismatch.keys.log"}, []string{pskFile(t, "wrong.horse.battery.staple")})
	if h := rep.IKE[0].Hashes; len(h) != 1 || h[0].Result != "verified" {
		t.Errorf("hash checks %+v, want HASH_I verified with the customer's key", h)
	}
	// Without keys the responder's AUTHENTICATION-FAILED still explains it.
	rep = decodeFile(t, "scenarios/psk-mismatch.pcap", nil, nil)
	if r := rep.IKE[0].Reason; !strings.Contains(r, "AUTHENTICATION-FAILED") || !strings.Contains(r, "pre-shared key mismatch") {
		t.Errorf("reason without keys %q", r)
	}
}

func checkEstablished(t *testing.T, rep *Report, exchange string, espProto string) {
	t.Helper()
	if len(rep.IKE) == 0 {
		t.Fatal("no ISAKMP SA")
	}
	for _, sa := range rep.IKE {
		if sa.Status != "established" || sa.Exchange != exchange || sa.Undecrypted != 0 {
			t.Errorf("SA %s: %s %s (%s), %d undecrypted", sa.ICookie, sa.Exchange, sa.Status, sa.Reason, sa.Undecrypted)
		}
		if len(sa.Quick) == 0 || sa.Quick[0].Status != "established" || len(sa.Quick[0].Selectors) != 2 {
			t.Errorf("SA %s quick modes %+v", sa.ICookie, sa.Quick)
		}
	}
	if len(rep.ESP) == 0 {
		t.Fatal("no ESP SA")
	}
	for _, e := range rep.ESP {
		if e.Protocol != espProto || e.Decrypted != e.Packets || len(e.Flows) == 0 || e.Gaps != 0 {
			t.Errorf("ESP %s: %s %d/%d decrypted, %d flows, %d missing (%s %s)", e.SPI, e.Protocol, e.Decrypted, e.Packets, len(e.Flows), e.Gaps, e.Note, e.FailReason)
		}
	}
	if rep.ExitCode() != 0 {
		t.Errorf("exit code %d (%v)", rep.ExitCode(), rep.Problems)
	}
}

func TestBasicScenario(t *testing.T) {
	rep := decodeFile(t, "scenarios/basic.pcap", []string{"scenarios/basic.keys.log"}, nil)
	checkEstablished(t, rep, "main mode", "ESP")
}

func TestNATTScenario(t *testing.T) {
	rep := decodeFile(t, "scenarios/nat-t.pcap", []string{"scenarios/nat-t.keys.log"}, nil)
	checkEstablished(t, rep, "main mode", "ESP-in-UDP")
	if s := rep.IKE[0].Story[2].Text; !strings.Contains(s, "initiator's own address") || !strings.Contains(s, "behind a NAT") {
		t.Errorf("MM3 NAT-D verdict %q, want the initiator behind a NAT", s)
	}
}

func TestAggressiveScenario(t *testing.T) {
	rep := decodeFile(t, "scenarios/aggressive.pcap", []string{"scenarios/aggressive.keys.log"}, nil)
	checkEstablished(t, rep, "aggressive mode", "ESP-in-UDP")
}

// scenarios/proposal-mismatch.yaml: tunnel 1 offers a phase 1 proposal
// the vgw does not allow, tunnel 2 a phase 2 proposal. With the run's
// vgw.yaml the reason says what the vgw allows.
func TestProposalMismatchScenario(t *testing.T) {
	keys := NewKeys()
	if err := keys.LoadKeyFile("testdata/scenarios/proposal-mismatch.keys.log"); err != nil {
		t.Fatal(err)
	}
	pol := &Policy{}
	if err := pol.LoadPolicyFile("testdata/scenarios/proposal-mismatch.vgw.yaml"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile("testdata/scenarios/proposal-mismatch.pcap")
	rep, err := DecodeWithPolicy(bytes.NewReader(b), "proposal-mismatch", keys, pol)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.IKE[0].Reason; !strings.Contains(r, "no proposal in common: the initiator offered AES-CBC-128/SHA/modp2048") ||
		!strings.Contains(r, "we allow (testdata/scenarios/proposal-mismatch.vgw.yaml tunnel tunnel1): aes256-sha256-modp2048") {
		t.Errorf("tunnel 1 reason %q", r)
	}
	if rep.IKE[1].Status != "established" {
		t.Errorf("tunnel 2 phase 1 %s %q", rep.IKE[1].Status, rep.IKE[1].Reason)
	}
	q := rep.IKE[1].Quick
	if len(q) != 1 || q[0].Status != "failed" || !strings.Contains(q[0].Reason, "no phase 2 proposal in common") ||
		!strings.Contains(q[0].Reason, "we allow (testdata/scenarios/proposal-mismatch.vgw.yaml tunnel tunnel2): esp-aes256gcm16-modp2048") {
		t.Errorf("tunnel 2 quick modes %+v", q)
	}
	if rep.ExitCode() != 1 {
		t.Errorf("exit code %d, want 1", rep.ExitCode())
	}
}

// strongSwan 5.9 (charon) against strongSwan, NAT-T, captured in this
// project's reference lab: /work/shared/lab/captures/ikev1-natt-public.pcap
// with its keys (/work/shared/lab/captures/keys.txt). HASH_I and HASH_R
// computed by charon verify with the lab's PSK.
func TestStrongSwanLabCapture(t *testing.T) {
	rep := decodeFile(t, "public/ikev1-natt-public.pcap", []string{"public/lab.keys.log"}, []string{"testdata/public/lab.psk"})
	checkEstablished(t, rep, "main mode", "ESP-in-UDP")
	// The lab's cgw is SNATed to 198.51.100.2 before the capture point.
	if s := rep.IKE[0].Story[2].Text; !strings.Contains(s, "initiator's own address is not 198.51.100.2:500 as seen here: it is behind a NAT") {
		t.Errorf("MM3 NAT-D verdict %q", s)
	}
	h := rep.IKE[0].Hashes
	if len(h) != 2 || h[0].Result != "verified" || h[1].Result != "verified" {
		t.Errorf("hash checks %+v, want HASH_I and HASH_R verified", h)
	}
	rep = decodeFile(t, "public/ikev1-natt-public.pcap", []string{"public/lab.keys.log"}, []string{pskFile(t, "not-the-lab-psk")})
	if rep.IKE[0].Status != "failed" || !strings.Contains(rep.IKE[0].Reason, "HASH_I does not verify") {
		t.Errorf("with a wrong PSK: %s %q", rep.IKE[0].Status, rep.IKE[0].Reason)
	}
}

// Wireshark's test suite: test/captures/ikev1-certs.pcap (Openswan, RSA
// signatures, 3DES/MD5) with the key of test/config/ikev1_decryption_table.tmpl
// (github.com/wireshark/wireshark), here from the copy in
// github.com/corelight/zeek-spicy-ipsec tests/traces/ (commit 4a7f004).
func TestWiresharkIKEv1Certs3DESMD5(t *testing.T) {
	rep := decodeFile(t, "public/ikev1-certs.pcap", []string{"public/wireshark-ikev1_decryption_table"}, nil)
	sa := rep.IKE[0]
	if sa.Status != "established" || sa.Undecrypted != 0 || sa.IDi != "ID_IPV4_ADDR 192.168.12.118" || sa.IDr != "ID_IPV4_ADDR 172.16.1.103" {
		t.Errorf("SA: %s %q, %d undecrypted, IDs %q %q", sa.Status, sa.Reason, sa.Undecrypted, sa.IDi, sa.IDr)
	}
	if !strings.HasPrefix(sa.Chosen, "3DES-CBC/MD5/modp1024/RSA signatures") {
		t.Errorf("chosen %q", sa.Chosen)
	}
	if len(sa.Quick) != 1 || sa.Quick[0].Status != "established" {
		t.Errorf("quick modes %+v", sa.Quick)
	}
}

// Public captures of other implementations without keys (from
// github.com/corelight/zeek-spicy-ipsec tests/traces/, commit 4a7f004,
// originally cloudshark.org captures): the plaintext part is told, the
// encrypted messages are counted as not decrypted.
func TestPublicCapturesWithoutKeys(t *testing.T) {
	rep := decodeFile(t, "public/ipsec-ikev1-isakmp-aggressive-mode.pcap", nil, nil)
	sa := rep.IKE[0]
	if sa.Exchange != "aggressive mode" || sa.Offered == "" || sa.Chosen == "" || sa.IDi == "" || sa.IDr == "" {
		t.Errorf("aggressive mode: %+v", sa)
	}
	if len(sa.Hashes) == 0 || sa.Hashes[0].Result != "not-verifiable" {
		t.Errorf("hash checks without a PSK: %+v", sa.Hashes)
	}
	if rep.ExitCode() != 1 || sa.Undecrypted == 0 {
		t.Errorf("exit %d, %d undecrypted: encrypted quick mode without keys must count", rep.ExitCode(), sa.Undecrypted)
	}
	rep = decodeFile(t, "public/ipsec-ikev1-isakmp-main-mode.pcap", nil, nil)
	if sa := rep.IKE[0]; sa.Exchange != "main mode" || sa.Chosen == "" || sa.Undecrypted != 5 {
		t.Errorf("main mode: %s chosen %q, %d undecrypted (want MM5, MM6, QM1-3)", sa.Exchange, sa.Chosen, sa.Undecrypted)
	}
}

// Damaged ISAKMP (zeek-spicy-ipsec's self-made ipsec-ikev1-payload-bad-length
// and ipsec-ikev1-zero-length) is counted and shown, not a crash.
func TestDamagedPublicCaptures(t *testing.T) {
	for _, f := range []string{"public/ipsec-ikev1-payload-bad-length.pcap", "public/ipsec-ikev1-zero-length.pcap"} {
		rep := decodeFile(t, f, nil, nil)
		if rep.ExitCode() != 1 || len(rep.Problems) == 0 {
			t.Errorf("%s: exit %d problems %v", f, rep.ExitCode(), rep.Problems)
		}
	}
}

// IPv4 fragments (IKEv2 IKE_AUTH of ipsec_client.pcap, zeek-spicy-ipsec)
// are reassembled and the IKEv2 messages told as a story (no keys: the
// IKE_AUTH stays encrypted).
func TestFragmentReassembly(t *testing.T) {
	rep := decodeFile(t, "public/ipsec_client.pcap", nil, nil)
	if rep.Counts["fragments"] == 0 || rep.Counts["incomplete fragments"] != 0 || rep.Counts["damaged"] != 0 || len(rep.Damaged) != 0 {
		t.Errorf("counts %v damaged %v", rep.Counts, rep.Damaged)
	}
	events := 0
	for _, sa := range rep.IKEv2 {
		events += len(sa.Story)
	}
	if len(rep.IKEv2) == 0 || events != rep.Counts["ike"] {
		t.Errorf("%d IKEv2 SAs, %d events for %d IKE datagrams", len(rep.IKEv2), events, rep.Counts["ike"])
	}
	if sa := rep.IKEv2[0]; sa.Status != "failed" || !strings.HasPrefix(sa.Reason, "IKE_AUTH was never answered (2 retransmission(s))") ||
		!strings.Contains(sa.NAT, "the initiator is behind a NAT") {
		t.Errorf("IKEv2 SA: %s: %s; NAT %s", sa.Status, sa.Reason, sa.NAT)
	}
}

func TestReassemblerOverlapAndHoles(t *testing.T) {
	mk := func(off int, more bool, data []byte) []byte {
		h := make([]byte, 20)
		h[0] = 0x45
		total := 20 + len(data)
		h[2], h[3] = byte(total>>8), byte(total)
		h[4], h[5] = 0x12, 0x34
		fo := off / 8
		if more {
			fo |= 0x2000
		}
		h[6], h[7] = byte(fo>>8), byte(fo)
		h[9] = 17
		copy(h[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
		return append(h, data...)
	}
	r := newReassembler()
	a, b := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 8)
	if _, ok, err := r.add(Frame{N: 1}, mk(16, false, b)); ok || err != nil {
		t.Fatalf("last fragment alone: ok %v err %v", ok, err)
	}
	d, ok, err := r.add(Frame{N: 2}, mk(0, true, a))
	if !ok || err != nil || len(d.Payload) != 24 || d.Fragments != 2 || d.Frame != 1 || d.LastFrame != 2 {
		t.Fatalf("reassembled: ok %v err %v len %d frags %d", ok, err, len(d.Payload), d.Fragments)
	}
	r.add(Frame{N: 3}, mk(0, true, a))
	if _, _, err := r.add(Frame{N: 4}, mk(8, false, bytes.Repeat([]byte{9}, 16))); err == nil {
		t.Fatal("overlapping fragments that disagree were accepted")
	}
}

func TestKeyFormats(t *testing.T) {
	k := NewKeys()
	in := strings.Join([]string{
		"# strongSwan save-keys esp_sa and ikev1_decryption_table lines",
		`"IPv4","192.0.2.1","192.0.2.2","0x0000abcd","TripleDes-CBC [RFC2451]","0x000102030405060708090a0b0c0d0e0f1011121314151617","HMAC-MD5-96 [RFC2403]","0x000102030405060708090a0b0c0d0e0f"`,
		`"IPv4","192.0.2.2","192.0.2.1","0x0000abce","AES-GCM [RFC4106]","0x000102030405060708090a0b0c0d0e0f00010203","ANY 128 bit authentication [no checking]","0x"`,
		"0102030405060708,000102030405060708090a0b0c0d0e0f",
		"ikev1_decryption_table:0102030405060708,000102030405060708090a0b0c0d0e0f",
		"ikev2_decryption_table:0102030405060708,0807060504030201,00,00,\"AES-CBC-128 [RFC3602]\",00,00,\"NONE [RFC4306]\"",
	}, "\n")
	if err := k.loadKeys(strings.NewReader(in), "x"); err != nil {
		t.Fatal(err)
	}
	if len(k.ESP) != 2 || k.ESP[0].Encryption != 3 || k.ESP[0].Integrity != 1 || k.ESP[1].Encryption != 20 {
		t.Errorf("ESP keys %+v", k.ESP)
	}
	if n := len(k.IKE[[8]byte{1, 2, 3, 4, 5, 6, 7, 8}]); n != 1 {
		t.Errorf("%d IKE keys for the cookie, want 1 (duplicates merged)", n)
	}
	if v2 := k.IKEv2[spiPair([8]byte{1, 2, 3, 4, 5, 6, 7, 8}, [8]byte{8, 7, 6, 5, 4, 3, 2, 1})]; len(v2) != 1 || v2[0].Encr != 12 || v2[0].KeyBits != 128 {
		t.Errorf("IKEv2 keys %v", v2)
	}
	for _, v := range []string{fmt.Sprint(k.ESP[0]), fmt.Sprintf("%v", k.IKE[[8]byte{1, 2, 3, 4, 5, 6, 7, 8}]), fmt.Sprint(PSK{Secret: []byte("hunter2"), Source: "p:1"})} {
		if strings.Contains(v, "0001020304") || strings.Contains(v, "hunter2") || strings.Contains(v, "[0 1 2") {
			t.Errorf("a key is printed: %s", v)
		}
	}
	err := k.loadKeys(strings.NewReader("secret-looking-garbage\n"), "bad")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v must name the line, never its content", err)
	}
}

func TestNotACapture(t *testing.T) {
	if _, err := Decode(strings.NewReader("hello world"), "x", nil); err == nil {
		t.Fatal("a text file decoded as a capture")
	}
}

// A quick mode the responder ends with INVALID-ID-INFORMATION is told as
// traffic selectors that differ, with the selectors the initiator sent.
func TestQuickModeSelectorVerdict(t *testing.T) {
	ids := []*isakmp.ID{
		isakmp.IDFromPrefix(netip.MustParsePrefix("10.10.0.0/16")),
		isakmp.IDFromPrefix(netip.MustParsePrefix("172.31.0.0/16")),
	}
	qm := &quickMode{mid: 1, n: 1, readable: 1, ids: ids, notify: isakmp.NotifyInvalidIDInformation.String()}
	r := qm.report()
	want := "traffic selectors differ: the initiator proposed ID_IPV4_ADDR_SUBNET 10.10.0.0/16 <-> ID_IPV4_ADDR_SUBNET 172.31.0.0/16"
	if r.Status != "failed" || !strings.HasPrefix(r.Reason, want) {
		t.Errorf("%s %q, want %q", r.Status, r.Reason, want)
	}
}

// Aggressive mode with a known PSK (testdata/scenarios/aggressive-psk.yaml,
// scenarios/aggressive.yaml with a fixed psk): HASH_R is plaintext in AM2
// and verifies from the capture and the PSK alone; HASH_I (AM3) too.
func TestAggressiveHashesFromPSK(t *testing.T) {
	rep := decodeFile(t, "scenarios/aggressive-psk.pcap", nil, []string{"testdata/scenarios/aggressive-psk.psk"})
	for _, sa := range rep.IKE {
		if len(sa.Hashes) != 2 || sa.Hashes[0].Result != "verified" || sa.Hashes[1].Result != "verified" {
			t.Errorf("SA %s hashes %+v, want HASH_I and HASH_R verified", sa.ICookie, sa.Hashes)
		}
	}
}

// Aggressive mode with different PSKs (testdata/scenarios/aggressive-mismatch.yaml):
// the initiator refuses AM2. Both key logs hold a key for the cookie and
// they differ; with the responder's PSK HASH_R verifies, so the initiator
// has another key.
func TestAggressivePSKMismatch(t *testing.T) {
	rep := decodeFile(t, "scenarios/aggressive-mismatch.pcap", []string{"scenarios/aggressive-mismatch.keys.log"}, nil)
	for _, sa := range rep.IKE {
		if sa.Status != "failed" || !strings.Contains(sa.Reason, "pre-shared key mismatch: 2 different encryption keys are logged for this cookie") {
			t.Errorf("SA %s: %s %q", sa.ICookie, sa.Status, sa.Reason)
		}
	}
	rep = decodeFile(t, "scenarios/aggressive-mismatch.pcap", nil, []string{"testdata/scenarios/aggressive-psk.psk"})
	for _, sa := range rep.IKE {
		if !strings.Contains(sa.Reason, "HASH_R verifies with the pre-shared key of testdata/scenarios/aggressive-psk.psk:1, yet the initiator rejected it") {
			t.Errorf("SA %s: %q", sa.ICookie, sa.Reason)
		}
	}
	rep = decodeFile(t, "scenarios/aggressive-mismatch.pcap", nil, nil)
	if r := rep.IKE[0].Reason; !strings.Contains(r, "the initiator rejected AM2 with AUTHENTICATION-FAILED") {
		t.Errorf("without keys: %q", r)
	}
}
