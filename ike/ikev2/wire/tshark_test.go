package wire

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// tsharkPath returns tshark or skips: the cross-check needs Wireshark's
// dissector (apt-get install tshark).
func tsharkPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install tshark); skipping the cross-check against Wireshark's dissector")
	}
	return p
}

// uatEntry is one row of tshark's IKEv2 decryption table.
type uatEntry struct {
	spii, spir     string
	ei, er, ai, ar []byte
	encr, integ    string
}

func (u uatEntry) String() string {
	return fmt.Sprintf(`uat:ikev2_decryption_table:%s,%s,%x,%x,"%s",%x,%x,"%s"`, u.spii, u.spir, u.ei, u.er, u.encr, u.ai, u.ar, u.integ)
}

// tsharkDissect runs tshark on a pcap with the decryption table and returns
// the fields of every ISAKMP frame by frame number, "<MISSING>" entries
// dropped.
func tsharkDissect(t *testing.T, pcap string, uat []uatEntry) (map[int]map[string][]string, string) {
	t.Helper()
	ts := tsharkPath(t)
	var opts []string
	for _, u := range uat {
		opts = append(opts, "-o", u.String())
	}
	args := append([]string{"-r", pcap, "-Y", "isakmp", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|", "-e", "frame.number"}, opts...)
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command(ts, args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	res := map[int]map[string][]string{}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		cols := strings.Split(line, "\t")
		if len(cols) != len(tsharkFields)+1 {
			t.Fatalf("tshark line with %d columns: %q", len(cols), line)
		}
		n, err := strconv.Atoi(cols[0])
		if err != nil {
			t.Fatal(err)
		}
		fm := map[string][]string{}
		for i, f := range tsharkFields {
			for _, v := range strings.Split(cols[i+1], "|") {
				if v != "" && v != "<MISSING>" {
					fm[f] = append(fm[f], v)
				}
			}
		}
		res[n] = fm
	}
	verbose, err := exec.Command(ts, append([]string{"-r", pcap, "-V"}, opts...)...).Output()
	if err != nil {
		t.Fatalf("tshark -V: %v", err)
	}
	return res, string(verbose)
}

// compareFields reports every field whose values differ.
// Without keys tshark guesses an IV for SK payloads; decrypted says whether
// the isakmp.enc fields count.
func compareFields(t *testing.T, frame int, ours fieldList, theirs map[string][]string, decrypted bool) {
	t.Helper()
	for _, k := range tsharkFields {
		if !decrypted && strings.HasPrefix(k, "isakmp.enc.") {
			continue
		}
		a, b := strings.Join(ours[k], "|"), strings.Join(theirs[k], "|")
		if a != b {
			t.Errorf("frame %d %s:\n codec  %s\n tshark %s", frame, k, a, b)
		}
	}
}

// checkVerbose fails on tshark's complaints and on an ICV it calls wrong.
func checkVerbose(t *testing.T, text string) {
	t.Helper()
	for _, bad := range []string{"Malformed", "Expert Info (Warning", "Expert Info (Error", "[incorrect", "[Integrity check failed"} {
		if i := strings.Index(text, bad); i >= 0 {
			t.Errorf("tshark reports %q:\n%s", bad, text[max(0, i-1500):min(len(text), i+300)])
		}
	}
	if os.Getenv("IKEV2_TSHARK_DUMP") != "" {
		t.Log(text)
	}
}

func capUAT(t *testing.T) []uatEntry {
	k := capKeys(t)
	return []uatEntry{
		{spii: "3d88285cbe14a67b", spir: "85e45c2b2ec37247", ei: k["cbc SK_ei"], er: k["cbc SK_er"], ai: k["cbc SK_ai"], ar: k["cbc SK_ar"],
			encr: "AES-CBC-256 [RFC3602]", integ: "HMAC_SHA2_256_128 [RFC4868]"},
		{spii: "a9b0c1a9d5524c9c", spir: "ae9c75e0ee51066e", ei: k["gcm SK_ei"], er: k["gcm SK_er"],
			encr: "AES-GCM-128 with 16 octet ICV [RFC5282]", integ: "NONE [RFC4306]"},
	}
}

// TestTsharkCapture compares every field the codec decodes (after
// decryption and reassembly) with what Wireshark's dissector reads from the
// same captured bytes with the same keys.
func TestTsharkCapture(t *testing.T) {
	for _, c := range []struct {
		pcap string
		keys bool
	}{{"strongswan-ikev2.pcap", true}, {"zeek-spicy-ipsec-client.pcap", false}} {
		t.Run(c.pcap, func(t *testing.T) {
			var keys map[string][]byte
			var uat []uatEntry
			if c.keys {
				keys, uat = capKeys(t), capUAT(t)
			}
			theirs, verbose := tsharkDissect(t, capDir+"/"+c.pcap, uat)
			checkVerbose(t, verbose)
			fs := decodeCapture(t, c.pcap, keys)
			if len(theirs) != len(fs) {
				t.Errorf("tshark saw %d ISAKMP frames, the codec %d", len(theirs), len(fs))
			}
			for _, f := range fs {
				var icd []byte
				if f.opened != nil {
					raw := loadRaw(t, c.pcap, f.frame)
					icd = raw[len(raw)-16:]
				}
				compareFields(t, f.frame, messageFields(f.msg, f.opened, f.inner, icd), theirs[f.frame], c.keys)
			}
		})
	}
}

func loadRaw(t *testing.T, pcap string, frame int) []byte {
	for _, m := range loadCapture(t, pcap) {
		if m.frame == frame {
			return m.b
		}
	}
	t.Fatalf("no frame %d", frame)
	return nil
}

var _ = hex.EncodeToString
