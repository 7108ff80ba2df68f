package keylog

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Lab capture (strongSwan 5.9.8 cgw <-> vgw through a NAT, public side) and
// its throw-away keys, copied from shared/lab/captures so the test works from
// a fresh clone.
const (
	capturePcap = "testdata/ikev1-natt-public.pcap"
	captureKeys = "testdata/keys.txt"
	cgwPublic   = "198.51.100.2" // the cgw after SNAT, as seen in the capture
	vgwPublic   = "203.0.113.10"
)

type labKeys struct {
	icookie            [8]byte
	ka                 []byte
	spiOut, spiIn      uint32 // from the cgw's point of view: out = cgw->vgw
	encOut, authOut    []byte
	encIn, authIn      []byte
	allHex             []string // every key as hex, for leak checks
	cookieHex, kaHexed string
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func readLabKeys(t *testing.T) labKeys {
	t.Helper()
	b, err := os.ReadFile(captureKeys)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	find := func(re string) []string {
		m := regexp.MustCompile(re).FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("keys.txt: no match for %s", re)
		}
		return m
	}
	var k labKeys
	k.cookieHex = find(`IKEv1 initiator cookie: ([0-9a-f]{16})`)[1]
	copy(k.icookie[:], mustHex(t, k.cookieHex))
	k.kaHexed = find(`encryption key Ka \(AES-256-CBC\): ([0-9a-f]{64})`)[1]
	k.ka = mustHex(t, k.kaHexed)
	out := find(`ESP cgw->vgw SPI 0x([0-9a-f]{8}): enc ([0-9a-f]{32}) auth ([0-9a-f]{64})`)
	in := find(`ESP vgw->cgw SPI 0x([0-9a-f]{8}): enc ([0-9a-f]{32}) auth ([0-9a-f]{64})`)
	spi := func(h string) uint32 {
		v, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		return uint32(v)
	}
	k.spiOut, k.encOut, k.authOut = spi(out[1]), mustHex(t, out[2]), mustHex(t, out[3])
	k.spiIn, k.encIn, k.authIn = spi(in[1]), mustHex(t, in[2]), mustHex(t, in[3])
	k.allHex = []string{k.kaHexed, out[2], out[3], in[2], in[3]}
	return k
}

func espSA(spi uint32, enc, auth []byte) childsa.SA {
	return childsa.SA{SPI: spi, Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKey: enc,
		Integrity: isakmp.AuthHMACSHA2256, IntegKey: auth}
}

// cgwPair is the SA pair as the cgw's engine would hand it over (addresses
// as seen on the public side of the NAT).
func cgwPair(k labKeys) childsa.Pair {
	return childsa.Pair{
		Tunnel:   "tunnel1",
		Outbound: espSA(k.spiOut, k.encOut, k.authOut),
		Inbound:  espSA(k.spiIn, k.encIn, k.authIn),
		Mode:     childsa.ModeTunnel,
		UDPEncap: true,
		Local:    netip.MustParseAddrPort(cgwPublic + ":4500"),
		Remote:   netip.MustParseAddrPort(vgwPublic + ":4500"),
		LocalTS:  netip.MustParsePrefix("10.10.0.0/16"),
		RemoteTS: netip.MustParsePrefix("172.31.0.0/16"),
	}
}

// vgwPair is the same pair from the vgw's side.
func vgwPair(k labKeys) childsa.Pair {
	p := cgwPair(k)
	p.Inbound, p.Outbound = p.Outbound, p.Inbound
	p.Local, p.Remote = p.Remote, p.Local
	p.LocalTS, p.RemoteTS = p.RemoteTS, p.LocalTS
	return p
}

func writeLog(t *testing.T, path string, fn func(w *Writer)) {
	t.Helper()
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fn(w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func records(t *testing.T, path string) []string {
	t.Helper()
	recs, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Table+":"+r.Value)
	}
	return out
}

func TestFileFormat(t *testing.T) {
	k := readLabKeys(t)
	path := filepath.Join(t.TempDir(), "keys.log")
	// An existing file with a loose mode is truncated and tightened.
	if err := os.WriteFile(path, []byte("old content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeLog(t, path, func(w *Writer) {
		w.IKEv1Keys(k.icookie, k.ka)
		w.ChildKeys(cgwPair(k))
	})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	want := []string{
		"ikev1_decryption_table:069cf174ba04d16c,17500b66939ff7df2f3a38448431a175e0626af47a77806a90c2125d28af5379",
		`esp_sa:"IPv4","198.51.100.2","203.0.113.10","0xad8c3188","AES-CBC [RFC3602]","0x63d04efd5cc6109a96ccab49cda10bf1","HMAC-SHA-256-128 [RFC4868]","0x8d8474d30bef0c7d734b7170e4e51530a6b564a262c4a01a537d87632ba350f1"`,
		`esp_sa:"IPv4","203.0.113.10","198.51.100.2","0xef5ebbd9","AES-CBC [RFC3602]","0x6ce61a48aefedcb9f3a92b06fb804b24","HMAC-SHA-256-128 [RFC4868]","0x3c5777079f0bdca37dcd230493f89b84fa07655ce52d811d63c352b9752bc885"`,
	}
	got := records(t, path)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "old content") {
		t.Error("file not truncated")
	}

	// The vgw's view of the same pair yields the same two esp_sa records.
	path2 := filepath.Join(t.TempDir(), "vgw.log")
	writeLog(t, path2, func(w *Writer) { w.ChildKeys(vgwPair(k)) })
	got2 := records(t, path2)
	if len(got2) != 2 || !(got2[0] == want[2] && got2[1] == want[1]) {
		t.Errorf("vgw view records %q", got2)
	}
}

func TestAlgorithmsAndEdgeCases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.log")
	key := bytes.Repeat([]byte{0xab}, 20)
	writeLog(t, path, func(w *Writer) {
		w.ChildKeys(childsa.Pair{
			Tunnel:   "t\nx", // must not break the comment line
			Inbound:  childsa.SA{SPI: 0x1001, Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKey: key},
			Outbound: childsa.SA{SPI: 0x1002, Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPNull, Integrity: isakmp.AuthHMACSHA1, IntegKey: key},
			Local:    netip.MustParseAddrPort("[2001:db8::1]:500"),
			Remote:   netip.MustParseAddrPort("[2001:db8::2]:500"),
		})
		w.ChildKeys(childsa.Pair{
			Inbound:  childsa.SA{SPI: 0x2001, Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKey: key, Integrity: isakmp.AuthHMACSHA2512, IntegKey: key},
			Outbound: childsa.SA{SPI: 0x2002, Protocol: isakmp.ProtoESP, Encryption: 99, EncKey: key},
			Local:    netip.MustParseAddrPort("[::ffff:192.0.2.1]:4500"), // mapped: logged as IPv4
			Remote:   netip.AddrPort{},                                   // unknown: wildcard
		})
		w.ChildKeys(childsa.Pair{
			Inbound:  childsa.SA{SPI: 0x3001, Protocol: isakmp.ProtoAH, Integrity: isakmp.AuthHMACSHA2384, IntegKey: key},
			Outbound: childsa.SA{SPI: 0x3002, Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKey: key, Integrity: isakmp.AuthHMACSHA2384, IntegKey: key},
			Local:    netip.MustParseAddrPort("192.0.2.1:500"),
			Remote:   netip.MustParseAddrPort("192.0.2.2:500"),
		})
	})
	kh := "0x" + hex.EncodeToString(key)
	want := []string{
		`esp_sa:"IPv6","2001:db8::1","2001:db8::2","0x00001002","NULL","","HMAC-SHA-1-96 [RFC2404]","` + kh + `"`,
		`esp_sa:"IPv6","2001:db8::2","2001:db8::1","0x00001001","AES-GCM with 16 octet ICV [RFC4106]","` + kh + `","NULL",""`,
		`esp_sa:"IPv4","*","192.0.2.1","0x00002001","AES-CBC [RFC3602]","` + kh + `","HMAC-SHA-512-256 [RFC4868]","` + kh + `"`,
		`esp_sa:"IPv4","192.0.2.1","192.0.2.2","0x00003002","AES-CBC [RFC3602]","` + kh + `","HMAC-SHA-384-192 [RFC4868]","` + kh + `"`,
	}
	got := records(t, path)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	b, _ := os.ReadFile(path)
	for _, s := range []string{"transform 99 unknown to Wireshark", "0x00003001 protocol 2: not ESP", "tunnel t?x "} {
		if !strings.Contains(string(b), s) {
			t.Errorf("file lacks comment %q:\n%s", s, b)
		}
	}
}

func TestReadFileErrorsDoNotLeakKeys(t *testing.T) {
	secret := "00112233445566778899aabbccddeeff"
	for _, content := range []string{
		"esp_sa:\"IPv4\",\"1.2.3.4\",\"0x" + secret + "\"\n",
		"ikev1_decryption_table:0011,\"" + secret + "\"\n",
		"garbage " + secret + "\n",
	} {
		path := filepath.Join(t.TempDir(), "bad.log")
		if err := os.WriteFile(path, []byte("# header\n"+content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := TsharkOptions(path)
		if err == nil {
			t.Errorf("no error for %q", content)
			continue
		}
		if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("error %q: must name line 2 and not contain the key", err)
		}
	}
}

// TestNoKeyLeaks: keylog has no logger; using it must print nothing, its
// source must not import any logging or printing-to-console facility, and
// formatting a Writer must not show keys.
func TestNoKeyLeaks(t *testing.T) {
	k := readLabKeys(t)
	rOut, wOut, _ := os.Pipe()
	rErr, wErr, _ := os.Pipe()
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = wOut, wErr
	path := filepath.Join(t.TempDir(), "keys.log")
	w, err := Open(path)
	if err == nil {
		w.IKEv1Keys(k.icookie, k.ka)
		w.ChildKeys(cgwPair(k))
		_ = fmt.Sprintf("%v %+v %#v %s", w, w, w, w)
		_, _ = TsharkOptions(path)
		err = w.Close()
	}
	os.Stdout, os.Stderr = stdout, stderr
	wOut.Close()
	wErr.Close()
	printed, _ := io.ReadAll(io.MultiReader(rOut, rErr))
	if err != nil {
		t.Fatal(err)
	}
	if len(printed) != 0 {
		t.Errorf("keylog printed %q", printed)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(f, w)
		for _, h := range k.allHex {
			if strings.Contains(s, h) {
				t.Errorf("Sprintf(%s, writer) shows a key: %s", f, s)
			}
		}
	}

	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			switch p {
			case "log", "log/slog", "github.com/sirupsen/logrus":
				t.Errorf("%s imports %s: keylog must not log", f, p)
			}
		}
		src, _ := os.ReadFile(f)
		for _, bad := range []string{"fmt.Print", "os.Stdout", "os.Stderr", "println("} {
			if strings.Contains(string(src), bad) {
				t.Errorf("%s uses %s", f, bad)
			}
		}
	}
}

// ---- Wireshark proof --------------------------------------------------------

func needTshark(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install tshark): cannot prove Wireshark decryption")
	}
	return p
}

func runTshark(t *testing.T, tshark string, env []string, args ...string) string {
	t.Helper()
	return runTsharkOn(t, tshark, capturePcap, env, args...)
}

func runTsharkOn(t *testing.T, tshark, pcap string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tshark, append([]string{"-n", "-r", pcap}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tshark %q: %v\n%s", args, err, errb.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("tshark timed out")
	}
	for _, l := range strings.Split(errb.String(), "\n") {
		if l != "" && !strings.Contains(l, "Running as user") {
			t.Errorf("tshark stderr: %s", l)
		}
	}
	return out.String()
}

// frames splits tshark -V output into frames by number.
func frames(v string) map[int]string {
	m := map[int]string{}
	re := regexp.MustCompile(`(?m)^Frame (\d+): `)
	idx := re.FindAllStringSubmatchIndex(v, -1)
	for i, loc := range idx {
		end := len(v)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		n, _ := strconv.Atoi(v[loc[2]:loc[3]])
		m[n] = v[loc[0]:end]
	}
	return m
}

func checkDecrypted(t *testing.T, v string) {
	t.Helper()
	f := frames(v)
	if len(f) != 29 {
		t.Fatalf("tshark showed %d frames, want 29", len(f))
	}
	// Addresses: the cgw is 198.51.100.2 and the vgw 203.0.113.10 here.
	if !strings.Contains(f[1], "Src: "+cgwPublic+", Dst: "+vgwPublic) {
		t.Errorf("frame 1 is not cgw -> vgw:\n%s", f[1])
	}
	// MM5 (initiator) and MM6: decrypted ID and HASH payloads.
	for n, id := range map[int]string{5: cgwPublic, 6: vgwPublic} {
		for _, s := range []string{"Payload: Identification (5)", "ID_IPV4_ADDR: " + id, "Hash DATA: "} {
			if !strings.Contains(f[n], s) {
				t.Errorf("frame %d (MM%d) lacks %q:\n%s", n, n, s, f[n])
			}
		}
	}
	if !strings.Contains(f[5], "INITIAL-CONTACT") {
		t.Error("MM5: INITIAL-CONTACT notify not decrypted")
	}
	// Quick mode: SA, nonce, KE and the data selectors.
	for _, s := range []string{"Payload: Security Association (1)", "Payload: Nonce (10)", "ID_IPV4_ADDR: 10.10.0.0", "ID_IPV4_ADDR: 172.31.0.0"} {
		if !strings.Contains(f[7], s) {
			t.Errorf("quick mode 1 lacks %q", s)
		}
	}
	// Final ISAKMP DELETE.
	if !strings.Contains(f[29], "Payload: Delete (12)") {
		t.Errorf("frame 29 lacks the decrypted DELETE:\n%s", f[29])
	}
	// ESP-in-UDP: ICMP inside, ICV verified.
	for n := 10; n <= 19; n++ {
		kind := "Type: 8 (Echo (ping) request)"
		if n%2 == 1 {
			kind = "Type: 0 (Echo (ping) reply)"
		}
		for _, s := range []string{"Encapsulating Security Payload", "ESP Decrypted Data", "Internet Control Message Protocol", kind, "[correct]"} {
			if !strings.Contains(f[n], s) {
				t.Errorf("frame %d lacks %q:\n%s", n, s, f[n])
			}
		}
	}
	for _, bad := range []string{"Malformed", "[incorrect", "Bad: True", "Expert Info (Error", "Expert Info (Warning", "decryption failed", "Decryption failed"} {
		if strings.Contains(v, bad) {
			i := strings.Index(v, bad)
			t.Errorf("decoded output contains %q: ...%s...", bad, v[max(0, i-300):min(len(v), i+100)])
		}
	}
}

func TestTsharkDecryptsLabCapture(t *testing.T) {
	tshark := needTshark(t)
	k := readLabKeys(t)
	// Isolate from the user's Wireshark profile.
	env := []string{"WIRESHARK_CONFIG_DIR=" + t.TempDir(), "HOME=" + t.TempDir()}

	// Negative control: without keys nothing is readable.
	plain := frames(runTshark(t, tshark, env, "-V"))
	if strings.Contains(plain[5], "ID_IPV4_ADDR") || strings.Contains(plain[10], "Internet Control Message Protocol") {
		t.Fatal("capture decodes without keys: the test would prove nothing")
	}

	path := filepath.Join(t.TempDir(), "keys.log")
	writeLog(t, path, func(w *Writer) {
		w.IKEv1Keys(k.icookie, k.ka)
		w.ChildKeys(cgwPair(k))
	})
	opts, err := TsharkOptions(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tshark options: %q", opts)
	checkDecrypted(t, runTshark(t, tshark, env, append(opts, "-V")...))

	// The summary view names the inner ICMP.
	sum := runTshark(t, tshark, env, opts...)
	if n := strings.Count(sum, "Echo (ping) request"); n != 5 {
		t.Errorf("summary shows %d ping requests, want 5:\n%s", n, sum)
	}
	if n := strings.Count(sum, "Echo (ping) reply"); n != 5 {
		t.Errorf("summary shows %d ping replies, want 5", n)
	}
}

func TestWiresharkProfileDecryptsLabCapture(t *testing.T) {
	tshark := needTshark(t)
	k := readLabKeys(t)
	path := filepath.Join(t.TempDir(), "keys.log")
	writeLog(t, path, func(w *Writer) {
		w.IKEv1Keys(k.icookie, k.ka)
		w.ChildKeys(cgwPair(k))
	})
	dir := filepath.Join(t.TempDir(), "wireshark")
	// A pre-existing profile: its entries and preferences are kept.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	other := `"IPv4","192.0.2.1","192.0.2.2","0x00000999","NULL","","NULL",""`
	if err := os.WriteFile(filepath.Join(dir, "esp_sa"), []byte("# existing\n"+other+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "preferences"), []byte("gui.column.format: \"No.\", \"%m\"\n#esp.enable_encryption_decode: FALSE\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := WriteWiresharkUAT(path, dir); err != nil {
			t.Fatal(err)
		}
	}
	esp, _ := os.ReadFile(filepath.Join(dir, "esp_sa"))
	if !strings.Contains(string(esp), other) || strings.Count(string(esp), "0xad8c3188") != 1 || strings.Count(string(esp), "\n\"IPv4\"") != 3 {
		t.Errorf("esp_sa:\n%s", esp)
	}
	for _, f := range []string{"esp_sa", "ikev1_decryption_table"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
	prefs, _ := os.ReadFile(filepath.Join(dir, "preferences"))
	if !strings.Contains(string(prefs), "gui.column.format") || strings.Count(string(prefs), "\nesp.enable_encryption_decode: TRUE") != 1 {
		t.Errorf("preferences:\n%s", prefs)
	}

	// tshark with only the profile directory, no -o options.
	checkDecrypted(t, runTshark(t, tshark, []string{"WIRESHARK_CONFIG_DIR=" + dir, "HOME=" + t.TempDir()}, "-V"))
}

// TestTsharkAcceptsAllAlgorithmNames loads a record for every encryption and
// authentication name keylog can write; tshark reports any UAT value it does
// not know ("Error loading table 'ESP SAs': ... invalid value") on stderr,
// which runTshark turns into a failure.
func TestTsharkAcceptsAllAlgorithmNames(t *testing.T) {
	tshark := needTshark(t)
	keyLen := map[uint8]int{isakmp.ESPNull: 0, 3: 24, isakmp.ESPAESCBC: 16, 13: 20,
		isakmp.ESPAESGCM8: 20, isakmp.ESPAESGCM12: 20, isakmp.ESPAESGCM16: 20}
	path := filepath.Join(t.TempDir(), "all.log")
	spi := uint32(0x1000)
	writeLog(t, path, func(w *Writer) {
		for enc := range espEncryptionNames {
			for integ := range espAuthenticationNames {
				spi++
				sa := childsa.SA{SPI: spi, Protocol: isakmp.ProtoESP, Encryption: enc, EncKey: bytes.Repeat([]byte{1}, keyLen[enc]),
					Integrity: integ, IntegKey: bytes.Repeat([]byte{2}, 32)}
				w.ChildKeys(childsa.Pair{Inbound: sa, Outbound: sa,
					Local: netip.MustParseAddrPort("192.0.2.1:4500"), Remote: netip.MustParseAddrPort("192.0.2.2:4500")})
			}
		}
	})
	opts, err := TsharkOptions(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2*len(ESPPreferences) + 2*2*len(espEncryptionNames)*len(espAuthenticationNames); len(opts) != want {
		t.Fatalf("%d options, want %d", len(opts), want)
	}
	runTshark(t, tshark, []string{"WIRESHARK_CONFIG_DIR=" + t.TempDir(), "HOME=" + t.TempDir()}, append(opts, "-c", "1")...)
}
