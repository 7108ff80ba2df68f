package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const decodeData = "../../decode/testdata/"

// The exit status contract of vpnlab decode (docs/decode.md): 0 all
// decoded and established, 1 a failed negotiation or something not
// decoded, 2 bad usage.
func TestDecodeExitStatus(t *testing.T) {
	code, out, errOut := runCLI("decode", decodeData+"scenarios/basic.pcap", "--keys", decodeData+"scenarios/basic.keys.log")
	if code != 0 || !strings.Contains(out, "Verdict: everything decoded") {
		t.Errorf("basic: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCLI("decode", decodeData+"scenarios/psk-mismatch.pcap", "--keys", decodeData+"scenarios/psk-mismatch.keys.log")
	if code != 1 || !strings.Contains(out, "pre-shared key mismatch") {
		t.Errorf("psk-mismatch: exit %d\n%s", code, out)
	}
	notCapture := filepath.Join(t.TempDir(), "x.pcap")
	os.WriteFile(notCapture, []byte("not a capture"), 0o644)
	for _, args := range [][]string{
		{"decode"},
		{"decode", notCapture},
		{"decode", decodeData + "scenarios/basic.pcap", "--keys", notCapture},
		{"decode", decodeData + "scenarios/basic.pcap", "--keys", "/nonexistent"},
		{"decode", "/nonexistent.pcap"},
	} {
		if code, _, errOut := runCLI(args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d (want 2), stderr %q", args, code, errOut)
		}
	}
	// A key file's content never appears in an error.
	if _, _, errOut := runCLI("decode", decodeData+"scenarios/basic.pcap", "--keys", notCapture); strings.Contains(errOut, "not a capture") {
		t.Errorf("error shows the key file's content: %s", errOut)
	}
}

func TestDecodeJSON(t *testing.T) {
	code, out, _ := runCLI("decode", "--json", decodeData+"scenarios/psk-mismatch.pcap", "--keys", decodeData+"scenarios/psk-mismatch.keys.log")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var rep struct {
		IKE []struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
		} `json:"ike"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(rep.IKE) != 2 || rep.IKE[0].Status != "failed" || !strings.Contains(rep.IKE[0].Reason, "pre-shared key mismatch") || len(rep.Problems) == 0 {
		t.Errorf("JSON report %+v", rep)
	}
	// Keys are never printed.
	keys, _ := os.ReadFile(decodeData + "scenarios/psk-mismatch.keys.log")
	for _, line := range strings.Split(string(keys), "\n") {
		if _, k, ok := strings.Cut(line, ","); ok && strings.Contains(out, k) {
			t.Errorf("the output contains a key from the key log")
		}
	}
}
