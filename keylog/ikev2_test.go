package keylog

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/pcapfile"
)

// IKEv2 capture (copied from ike/ikev2/wire/testdata/capture, see its
// README): two strongSwan 5.9.8 charons in namespaces, IKE SA "cbc"
// (AES-CBC-256, HMAC-SHA2-256-128) in frames 1-9 and IKE SA "gcm"
// (AES-GCM-16-128) in frames 10-17, IKE_AUTH in RFC 7383 fragments. The
// keys are from the initiator's charon log.
const (
	v2Pcap = "testdata/ikev2-strongswan.pcap"
	v2Keys = "testdata/ikev2-strongswan.keys"
)

// v2LabKeys returns the two SAs of the capture as the engine would hand
// them to IKEv2Keys: the SPIs from the IKE_SA_INIT responses (frames 2 and
// 11), the keys from the keys file.
func v2LabKeys(t *testing.T) (cbc, gcm status.IKEv2Keys) {
	t.Helper()
	f, err := os.Open(v2Keys)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 3 && !strings.HasPrefix(fs[0], "#") {
			keys[fs[0]+" "+fs[1]] = mustHex(t, fs[2])
		}
	}
	ds, err := pcapfile.ReadUDP(v2Pcap)
	if err != nil {
		t.Fatal(err)
	}
	spis := func(frame int) (i, r [8]byte) {
		for _, d := range ds {
			if d.Frame == frame && len(d.Payload) >= 16 {
				copy(i[:], d.Payload[:8])
				copy(r[:], d.Payload[8:16])
				return
			}
		}
		t.Fatalf("frame %d not in %s", frame, v2Pcap)
		return
	}
	cbc = status.IKEv2Keys{EncrID: 12, EncrKeyBits: 256, IntegID: 12,
		SKei: keys["cbc SK_ei"], SKer: keys["cbc SK_er"], SKai: keys["cbc SK_ai"], SKar: keys["cbc SK_ar"]}
	cbc.SPIi, cbc.SPIr = spis(2)
	gcm = status.IKEv2Keys{EncrID: 20, EncrKeyBits: 128, SKei: keys["gcm SK_ei"], SKer: keys["gcm SK_er"]}
	gcm.SPIi, gcm.SPIr = spis(11)
	if len(cbc.SKei) != 32 || len(cbc.SKai) != 32 || len(gcm.SKei) != 20 {
		t.Fatalf("keys file: SK_ei %d SK_ai %d bytes, gcm SK_ei %d (want 32, 32, 20: key + salt)", len(cbc.SKei), len(cbc.SKai), len(gcm.SKei))
	}
	return cbc, gcm
}

func TestIKEv2RecordFormat(t *testing.T) {
	cbc, gcm := v2LabKeys(t)
	path := filepath.Join(t.TempDir(), "keys.log")
	writeLog(t, path, func(w *Writer) {
		w.IKEv2Keys(cbc)
		w.IKEv2Keys(gcm)
		w.IKEv2Keys(status.IKEv2Keys{EncrID: 23, EncrKeyBits: 256, SKei: []byte{1}, SKer: []byte{2}}) // Camellia: unknown
		w.IKEv2Keys(status.IKEv2Keys{EncrID: 12, EncrKeyBits: 128, IntegID: 5, SKei: []byte{1}, SKer: []byte{2}})
		w.IKEv2Keys(status.IKEv2Keys{EncrID: 20, EncrKeyBits: 128, SKei: make([]byte, 16), SKer: make([]byte, 16)}) // GCM key without salt
	})
	recs := records(t, path)
	want := []string{
		TableIKEv2 + ":" + hex.EncodeToString(cbc.SPIi[:]) + "," + hex.EncodeToString(cbc.SPIr[:]) + "," +
			hex.EncodeToString(cbc.SKei) + "," + hex.EncodeToString(cbc.SKer) + `,"AES-CBC-256 [RFC3602]",` +
			hex.EncodeToString(cbc.SKai) + "," + hex.EncodeToString(cbc.SKar) + `,"HMAC_SHA2_256_128 [RFC4868]"`,
		TableIKEv2 + ":" + hex.EncodeToString(gcm.SPIi[:]) + "," + hex.EncodeToString(gcm.SPIr[:]) + "," +
			hex.EncodeToString(gcm.SKei) + "," + hex.EncodeToString(gcm.SKer) + `,"AES-GCM-128 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"`,
	}
	if len(recs) != len(want) {
		t.Fatalf("records:\n%s", strings.Join(recs, "\n"))
	}
	for i := range want {
		if recs[i] != want[i] {
			t.Errorf("record %d:\n got %s\nwant %s", i, recs[i], want[i])
		}
	}
	b, _ := os.ReadFile(path)
	for _, c := range []string{"encryption transform 23 (256 bits) unknown to Wireshark, no record", "integrity transform 5 unknown to Wireshark, no record",
		"SK_ei/SK_er are 16/16 bytes, Wireshark needs 20 for AES-GCM-128 with 16 octet ICV [RFC5282], no record"} {
		if !strings.Contains(string(b), c) {
			t.Errorf("log lacks comment %q:\n%s", c, b)
		}
	}
	// ReadFile accepts what IKEv2Keys writes and rejects malformed records
	// without echoing them.
	if _, err := ReadFile(path); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		TableIKEv2 + ":0011,2233,aa,bb,\"x\",,,\"y\"",                                     // short SPIs
		TableIKEv2 + ":0011223344556677,8899aabbccddeeff,aa,bb,x,,,\"y\"",                 // unquoted name
		TableIKEv2 + ":0011223344556677,8899aabbccddeeff,a,bb,\"x\",,,\"y\"",              // odd hex
		TableIKEv2 + ":0011223344556677,8899aabbccddeeff,a5ecret5,bb,\"x\",,,\"y\",\"z\"", // 9 fields
	} {
		p := filepath.Join(t.TempDir(), "bad.log")
		if err := os.WriteFile(p, []byte(bad+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ReadFile(p)
		if err == nil {
			t.Errorf("ReadFile accepted %q", bad)
		} else if strings.Contains(err.Error(), "8899aabb") || strings.Contains(err.Error(), "a5ecret5") {
			t.Errorf("error leaks the record: %v", err)
		}
	}
}

// checkV2Decrypted checks tshark -V output of the IKEv2 capture: every SK
// payload decrypted (and, for CBC, its ICV checked), the fragments
// reassembled, no expert warning or error.
func checkV2Decrypted(t *testing.T, v string) {
	t.Helper()
	f := frames(v)
	if len(f) != 17 {
		t.Fatalf("tshark showed %d frames, want 17", len(f))
	}
	// IKE_AUTH request reassembled in frame 5 (cbc) and 13 (gcm); response in 7 and 15.
	for _, n := range []int{5, 13} {
		for _, s := range []string{"Payload: Identification - Initiator (35)", "Payload: Authentication (39)",
			"Payload: Traffic Selector - Initiator (44)", "Payload: Security Association (33)"} {
			if !strings.Contains(f[n], s) {
				t.Errorf("frame %d (IKE_AUTH request) lacks %q:\n%s", n, s, f[n])
			}
		}
	}
	for _, n := range []int{7, 15} {
		for _, s := range []string{"Payload: Identification - Responder (36)", "Payload: Authentication (39)", "Payload: Traffic Selector - Responder (45)"} {
			if !strings.Contains(f[n], s) {
				t.Errorf("frame %d (IKE_AUTH response) lacks %q:\n%s", n, s, f[n])
			}
		}
	}
	for _, n := range []int{8, 16} {
		if !strings.Contains(f[n], "Payload: Delete (42)") {
			t.Errorf("frame %d lacks the decrypted DELETE:\n%s", n, f[n])
		}
	}
	if c := strings.Count(v, "<HMAC_SHA2_256_128 [RFC4868]>[correct]"); c != 7 {
		t.Errorf("%d IKE ICVs shown [correct], want one for each of the 7 CBC SK/SKF messages", c)
	}
	for _, bad := range []string{"Malformed", "[incorrect", "Bad: True", "Expert Info (Error", "Expert Info (Warning", "ecryption failed"} {
		if i := strings.Index(v, bad); i >= 0 {
			t.Errorf("decoded output contains %q: ...%s...", bad, v[max(0, i-300):min(len(v), i+100)])
		}
	}
}

func TestTsharkDecryptsIKEv2(t *testing.T) {
	tshark := needTshark(t)
	cbc, gcm := v2LabKeys(t)
	env := []string{"WIRESHARK_CONFIG_DIR=" + t.TempDir(), "HOME=" + t.TempDir()}
	// Negative control: without keys the SK payloads stay opaque.
	plain := frames(runTsharkOn(t, tshark, v2Pcap, env, "-V"))
	if strings.Contains(plain[5], "Payload: Authentication (39)") || strings.Contains(plain[13], "Payload: Authentication (39)") {
		t.Fatal("capture decodes without keys: the test would prove nothing")
	}
	path := filepath.Join(t.TempDir(), "keys.log")
	writeLog(t, path, func(w *Writer) {
		w.IKEv2Keys(cbc)
		w.IKEv2Keys(gcm)
	})
	opts, err := TsharkOptions(path)
	if err != nil {
		t.Fatal(err)
	}
	checkV2Decrypted(t, runTsharkOn(t, tshark, v2Pcap, env, append(opts, "-V")...))

	// The same through a Wireshark profile directory, no -o options.
	dir := filepath.Join(t.TempDir(), "ws")
	if err := WriteWiresharkUAT(path, dir); err != nil {
		t.Fatal(err)
	}
	checkV2Decrypted(t, runTsharkOn(t, tshark, v2Pcap, []string{"WIRESHARK_CONFIG_DIR=" + dir, "HOME=" + t.TempDir()}, "-V"))

	// A wrong SK_ei: the check must notice (the test can fail).
	bad := cbc
	bad.SKei = append([]byte(nil), cbc.SKei...)
	bad.SKei[0] ^= 1
	bad.SKai = append([]byte(nil), cbc.SKai...)
	bad.SKai[0] ^= 1
	badPath := filepath.Join(t.TempDir(), "bad.log")
	writeLog(t, badPath, func(w *Writer) { w.IKEv2Keys(bad) })
	bopts, err := TsharkOptions(badPath)
	if err != nil {
		t.Fatal(err)
	}
	bv := frames(runTsharkOn(t, tshark, v2Pcap, env, append(bopts, "-V")...))
	if strings.Contains(bv[5], "Payload: Authentication (39)") {
		t.Error("a wrong SK_ei still decrypts the IKE_AUTH request")
	}
}

// TestTsharkAcceptsAllIKEv2AlgorithmNames loads a record for every IKEv2
// name keylog can write; tshark reports an unknown UAT value on stderr,
// which runTsharkOn turns into a failure.
func TestTsharkAcceptsAllIKEv2AlgorithmNames(t *testing.T) {
	tshark := needTshark(t)
	path := filepath.Join(t.TempDir(), "all.log")
	n := 0
	writeLog(t, path, func(w *Writer) {
		for _, id := range []uint16{encr3DES, encrNULL, encrAESCBC, encrAESCTR, encrAESCCM8, encrAESCCM12, encrAESCCM16, encrAESGCM8, encrAESGCM12, encrAESGCM16} {
			for _, bits := range []int{128, 192, 256} {
				for integ := range ikev2IntegrityNames {
					if (integ == 0) != (IsAEAD(id) || id == encrNULL) {
						continue
					}
					n++
					el, il := ikev2EncrKeyLen(id, bits), ikev2IntegKeyLen[integ]
					k := status.IKEv2Keys{EncrID: id, EncrKeyBits: bits, IntegID: integ, SKei: make([]byte, el), SKer: make([]byte, el), SKai: make([]byte, il), SKar: make([]byte, il)}
					k.SPIi[7] = byte(n)
					k.SPIr[6] = byte(n >> 8)
					w.IKEv2Keys(k)
				}
			}
		}
	})
	opts, err := TsharkOptions(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(strings.Join(opts, "\n"), "uat:"+TableIKEv2+":"); got != n || n < 40 {
		t.Fatalf("%d IKEv2 records for %d SAs", got, n)
	}
	out, _ := os.ReadFile(path)
	if strings.Contains(string(out), "no record") {
		t.Fatalf("a combination was refused:\n%s", out)
	}
	runTsharkOn(t, tshark, v2Pcap, []string{"WIRESHARK_CONFIG_DIR=" + t.TempDir(), "HOME=" + t.TempDir()}, append(opts, "-c", "1")...)
}

// uatToKeys turns an ikev2_decryption_table line back into the engine's
// IKEv2Keys (the algorithm names through this package's own tables).
func uatToKeys(t *testing.T, line string) status.IKEv2Keys {
	t.Helper()
	f := strings.Split(line, ",")
	if len(f) != 8 {
		t.Fatalf("UAT line with %d fields", len(f))
	}
	var k status.IKEv2Keys
	copy(k.SPIi[:], mustHex(t, f[0]))
	copy(k.SPIr[:], mustHex(t, f[1]))
	k.SKei, k.SKer, k.SKai, k.SKar = mustHex(t, f[2]), mustHex(t, f[3]), mustHex(t, f[5]), mustHex(t, f[6])
	enc, integ := strings.Trim(f[4], `"`), strings.Trim(f[7], `"`)
	for _, id := range []uint16{encrAESCBC, encrAESGCM16} {
		for _, bits := range []int{128, 192, 256} {
			if n, _ := IKEv2EncryptionName(id, bits); n == enc {
				k.EncrID, k.EncrKeyBits = id, bits
			}
		}
	}
	for id, n := range ikev2IntegrityNames {
		if n == integ {
			k.IntegID = id
		}
	}
	if k.EncrID == 0 {
		t.Fatalf("encryption %q not found", enc)
	}
	return k
}

// TestTsharkDecryptsDecodeCaptures writes the keys of every real IKEv2
// capture of decode/testdata/ikev2 (CBC with child and IKE SA rekeys, GCM
// with UDP 4500, a real NAT, failures) through IKEv2Keys and lets tshark
// decrypt them: every encrypted message decrypted, no expert warning.
func TestTsharkDecryptsDecodeCaptures(t *testing.T) {
	tshark := needTshark(t)
	files, _ := filepath.Glob("../decode/testdata/ikev2/*.keys")
	if len(files) < 6 {
		t.Fatalf("%d key files in ../decode/testdata/ikev2", len(files))
	}
	for _, kf := range files {
		b, err := os.ReadFile(kf)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "keys.log")
		sas := 0
		writeLog(t, path, func(w *Writer) {
			for _, l := range strings.Split(string(b), "\n") {
				if l != "" && !strings.HasPrefix(l, "#") {
					w.IKEv2Keys(uatToKeys(t, l))
					sas++
				}
			}
		})
		opts, err := TsharkOptions(path)
		if err != nil {
			t.Fatal(err)
		}
		pcap := strings.TrimSuffix(kf, ".keys") + ".pcap"
		env := []string{"WIRESHARK_CONFIG_DIR=" + t.TempDir(), "HOME=" + t.TempDir()}
		v := runTsharkOn(t, tshark, pcap, env, append(opts, "-V")...)
		for _, bad := range []string{"Expert Info (Warning", "Expert Info (Error", "Malformed", "[incorrect", "ecryption failed"} {
			if strings.Contains(v, bad) {
				t.Errorf("%s: tshark shows %q", pcap, bad)
			}
		}
		// Every SK payload decrypted: an "Encrypted and Authenticated"
		// payload is followed by its decrypted inner payloads.
		enc := strings.Count(v, "Payload: Encrypted and Authenticated (46)")
		dec := strings.Count(v, "Decrypted Data")
		if sas > 0 && (enc == 0 || dec != enc) {
			t.Errorf("%s: %d SK payloads, %d decrypted", pcap, enc, dec)
		}
	}
}
