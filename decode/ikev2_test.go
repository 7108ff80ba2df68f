package decode

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/keylog"
)

// The real strongSwan IKEv2 captures of testdata/ikev2 (README there). Their
// SPIs and keys change with every regeneration, so the tests read them from
// the .keys files and check the story's shape and the verdicts.

func decodeV2(t *testing.T, name string, withKeys bool) (*Report, string) {
	t.Helper()
	var kf []string
	if withKeys {
		kf = []string{"ikev2/" + name + ".keys"}
	}
	rep := decodeFile(t, "ikev2/"+name+".pcap", kf, nil)
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return rep, b.String()
}

func wantIn(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("report lacks %q:\n%s", w, text)
		}
	}
}

func TestIKEv2RekeyStory(t *testing.T) {
	rep, text := decodeV2(t, "cbc-rekey", true)
	if len(rep.IKEv2) != 2 {
		t.Fatalf("%d IKEv2 SAs, want the original and the rekeyed one:\n%s", len(rep.IKEv2), text)
	}
	old, nu := rep.IKEv2[0], rep.IKEv2[1]
	if old.Status != "established" || nu.Status != "established" || old.Undecrypted+nu.Undecrypted != 0 {
		t.Errorf("statuses %s/%s, undecrypted %d/%d:\n%s", old.Status, nu.Status, old.Undecrypted, nu.Undecrypted, text)
	}
	if old.RekeyedTo != nu.SPIi+"/"+nu.SPIr || nu.RekeyedFrom != old.SPIi+"/"+old.SPIr {
		t.Errorf("rekey link %q / %q", old.RekeyedTo, nu.RekeyedFrom)
	}
	if old.IDi != "ID_IPV4_ADDR 10.99.0.2" || old.IDr != "ID_IPV4_ADDR 10.99.0.1" || old.Auth != wire.AuthPSK.String() {
		t.Errorf("IDs %q %q auth %q", old.IDi, old.IDr, old.Auth)
	}
	wantIn(t, text,
		"offers #1 IKE ENCR_AES_CBC-256/AUTH_HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048; KE MODP_2048",
		"child SA chosen #1 ESP ENCR_AES_CBC-128/AUTH_HMAC_SHA2_256_128/NO_ESN; TSi 10.10.0.0/16, TSr 172.31.0.0/16",
		"CCSA>  CHILD_SA rekey of ESP SPI", "CCSA<  CHILD_SA rekey of ESP SPI",
		"IKE SA rekey: offers", "KE MODP_2048 (PFS)", "DELETE ESP SPI", "DELETE of the IKE SA",
		"empty response: DELETE of the IKE SA acknowledged",
		"liveness check (empty INFORMATIONAL)", "liveness reply (empty INFORMATIONAL)",
		"Verdict: everything decoded, no failed negotiation.")
	if rep.ExitCode() != 0 {
		t.Errorf("exit %d: %v", rep.ExitCode(), rep.Problems)
	}
}

func TestIKEv2GCMInvalidKEAndNATT(t *testing.T) {
	rep, text := decodeV2(t, "gcm-natt-invalidke", true)
	if len(rep.IKEv2) != 1 || rep.IKEv2[0].Status != "established" || rep.ExitCode() != 0 {
		t.Fatalf("report:\n%s", text)
	}
	wantIn(t, text,
		"INVALID_KE_PAYLOAD: the responder wants KE ECP_256 (the initiator sent MODP_2048)",
		"KE ECP_256", "chosen:  #1 IKE ENCR_AES_GCM_16-128/PRF_HMAC_SHA2_384/ECP_256",
		"child SA chosen #1 ESP ENCR_AES_GCM_16-256/NO_ESN",
		"NAT-D: the responder's source hash does not match", "floated to UDP 4500")
}

func TestIKEv2PSKMismatchVerdict(t *testing.T) {
	rep, text := decodeV2(t, "psk-mismatch", true)
	if len(rep.IKEv2) != 1 || rep.IKEv2[0].Status != "failed" || rep.ExitCode() != 1 {
		t.Fatalf("report:\n%s", text)
	}
	if !strings.HasPrefix(rep.IKEv2[0].Reason, "pre-shared key mismatch: the responder answered IKE_AUTH with AUTHENTICATION_FAILED") {
		t.Errorf("reason %q", rep.IKEv2[0].Reason)
	}
	// Without keys the verdict cannot be known and says so.
	rep, text = decodeV2(t, "psk-mismatch", false)
	if rep.IKEv2[0].Status != "unknown" || !strings.Contains(rep.IKEv2[0].Reason, "no key was given") || rep.IKEv2[0].Undecrypted != 2 {
		t.Errorf("without keys:\n%s", text)
	}
}

func TestIKEv2NoProposalVerdicts(t *testing.T) {
	rep, text := decodeV2(t, "no-proposal", false)
	if len(rep.IKEv2) != 1 || rep.IKEv2[0].Status != "failed" || rep.ExitCode() != 1 ||
		!strings.HasPrefix(rep.IKEv2[0].Reason, "no proposal chosen: offered #1 IKE ENCR_AES_CBC-128/AUTH_HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048; the responder accepts none of them (compare its configured IKE proposals") {
		t.Errorf("no-proposal:\n%s", text)
	}
	for name, want := range map[string]string{
		"child-no-proposal": "the first CHILD_SA failed: NO_PROPOSAL_CHOSEN",
		"ts-unacceptable":   "the first CHILD_SA failed: TS_UNACCEPTABLE",
	} {
		rep, text := decodeV2(t, name, true)
		if len(rep.IKEv2) != 1 || rep.IKEv2[0].Status != "established" || rep.ExitCode() != 1 ||
			len(rep.IKEv2[0].ChildFailures) != 1 || !strings.HasPrefix(rep.IKEv2[0].ChildFailures[0], want) {
			t.Errorf("%s:\n%s", name, text)
		}
	}
}

// A wrong key is told apart from a missing one.
func TestIKEv2WrongKey(t *testing.T) {
	b, err := os.ReadFile("testdata/ikev2/cbc-rekey.keys")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if l != "" && !strings.HasPrefix(l, "#") {
			f := strings.Split(l, ",")
			f[5] = strings.Repeat("0", len(f[5])) // SK_ai
			f[6] = strings.Repeat("0", len(f[6])) // SK_ar
			lines[i] = strings.Join(f, ",")
		}
	}
	keys := NewKeys()
	if err := keys.loadKeys(strings.NewReader(strings.Join(lines, "\n")), "bad.keys"); err != nil {
		t.Fatal(err)
	}
	pc, _ := os.ReadFile("testdata/ikev2/cbc-rekey.pcap")
	rep, err := Decode(bytes.NewReader(pc), "cbc-rekey", keys)
	if err != nil {
		t.Fatal(err)
	}
	if rep.IKEv2[0].Status != "unknown" || !strings.Contains(rep.IKEv2[0].Reason, "integrity check fails") || rep.ExitCode() != 1 {
		t.Errorf("status %s: %s", rep.IKEv2[0].Status, rep.IKEv2[0].Reason)
	}
}

// The three key sources give the same result: the testdata .keys files are
// Wireshark UAT / strongSwan save-keys lines; our key log writes the same
// records prefixed with the table name.
func TestIKEv2KeySources(t *testing.T) {
	k := NewKeys()
	if err := k.LoadKeyFile("testdata/ikev2/cbc-rekey.keys"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ours.log")
	w, err := keylog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ks := range k.IKEv2 {
		for _, e := range ks {
			w.IKEv2Keys(status.IKEv2Keys{SPIi: e.SPIi, SPIr: e.SPIr, EncrID: uint16(e.Encr), EncrKeyBits: e.KeyBits,
				IntegID: uint16(e.Integ), SKei: e.SKei, SKer: e.SKer, SKai: e.SKai, SKar: e.SKar})
			n++
		}
	}
	if err := w.Close(); err != nil || n != 2 {
		t.Fatalf("close %v, %d SAs", err, n)
	}
	ours := NewKeys()
	if err := ours.LoadKeyFile(path); err != nil {
		t.Fatal(err)
	}
	pc, _ := os.ReadFile("testdata/ikev2/cbc-rekey.pcap")
	rep, err := Decode(bytes.NewReader(pc), "cbc-rekey", ours)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Keys.IKEv2Keys != 2 || rep.ExitCode() != 0 || rep.IKEv2[0].Status != "established" {
		t.Errorf("with our key log: keys %d, exit %d %v", rep.Keys.IKEv2Keys, rep.ExitCode(), rep.Problems)
	}
	for _, ks := range ours.IKEv2 {
		if s := ks[0].String(); strings.Contains(s, fmt.Sprintf("%x", ks[0].SKei[:4])) || strings.Contains(s, fmt.Sprintf("%x", ks[0].SKai[:4])) {
			t.Errorf("String shows too much: %s", s)
		}
	}
}

// The wire package's fragmented strongSwan capture: SKF reassembly.
func TestIKEv2FragmentedIKEAuth(t *testing.T) {
	keys := NewKeys()
	k := `# cbc and gcm SAs of ike/ikev2/wire/testdata/capture/strongswan-ikev2.pcap
3d88285cbe14a67b,85e45c2b2ec37247,40759ab63e9aa18852ab92749242b9e2b2893b0c33a669b225908bc8ce6300fc,eceff2cf835fbefb34bd8fd97c892373d2aa095f6be577f1a58973579654bbb4,"AES-CBC-256 [RFC3602]",f917d4f8361e464081b264c1420a4f184f42f0c6ecbcccbc16fcf5e041c4e3fe,c0a4eb987170a23571b4eac0c5d25504a18ed47d707be3197fa736e0e316ec00,"HMAC_SHA2_256_128 [RFC4868]"
a9b0c1a9d5524c9c,ae9c75e0ee51066e,15d309070d04e75b474b41129bfba2106849c3a1,539ac94a3feda9c7537968d1f0bf058b8d9ed7aa,"AES-GCM-128 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"
`
	if err := keys.loadKeys(strings.NewReader(k), "wire.keys"); err != nil {
		t.Fatal(err)
	}
	pc, err := os.ReadFile("../ike/ikev2/wire/testdata/capture/strongswan-ikev2.pcap")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Decode(bytes.NewReader(pc), "strongswan-ikev2", keys)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.WriteText(&b)
	if len(rep.IKEv2) != 2 || rep.ExitCode() != 0 || rep.IKEv2[0].Status != "established" || rep.IKEv2[1].Status != "established" {
		t.Fatalf("report:\n%s", b.String())
	}
	wantIn(t, b.String(), "fragment 1/3 (RFC 7383), decrypted", "AUTH>[3 frags]", "AUTH<[2 frags]", "IDi ID_IPV4_ADDR 10.99.0.2")
}

// The cgw behind a real SNAT router (10.99.0.2 -> 198.51.100.2), captured
// on its private side: the responder's destination hash cannot match.
func TestIKEv2RealNAT(t *testing.T) {
	rep, text := decodeV2(t, "cbc-nat", true)
	if len(rep.IKEv2) != 1 || rep.IKEv2[0].Status != "established" || rep.ExitCode() != 0 {
		t.Fatalf("report:\n%s", text)
	}
	sa := rep.IKEv2[0]
	if sa.IDi != "ID_IPV4_ADDR 198.51.100.2" || sa.Responder != "203.0.113.10:500" {
		t.Errorf("IDi %q responder %q", sa.IDi, sa.Responder)
	}
	wantIn(t, sa.NAT, "the responder's destination hash does not match 10.99.0.2:500: the initiator is behind a NAT",
		"IKE floated to UDP 4500 (non-ESP marker) at frame 3")
	// Without NAT (same charons, one link) the destination hashes match.
	rep, _ = decodeV2(t, "cbc-rekey", true)
	if strings.Contains(rep.IKEv2[0].NAT, "destination hash") {
		t.Errorf("no-NAT capture: %s", rep.IKEv2[0].NAT)
	}
}
