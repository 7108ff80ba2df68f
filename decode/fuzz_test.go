package decode

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the whole decoder (capture reader,
// link layers, reassembly, classification, ISAKMP, IKEv2, ESP with keys). The
// seeds are the captures in testdata (and testdata/fuzz/FuzzDecode); the
// key set holds the keys of the scenario captures so that decryption paths
// run too. It must never panic or hang.
func FuzzDecode(f *testing.F) {
	for _, glob := range []string{"testdata/scenarios/*.pcap", "testdata/public/*.pcap", "testdata/public/*.cap", "testdata/ikev2/*.pcap"} {
		files, _ := filepath.Glob(glob)
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err == nil && len(b) < 20000 {
				f.Add(b)
			}
		}
	}
	keys := NewKeys()
	for _, p := range []string{"testdata/scenarios/basic.keys.log", "testdata/scenarios/psk-mismatch.keys.log", "testdata/public/lab.keys.log", "testdata/public/wireshark-ikev1_decryption_table"} {
		if err := keys.LoadKeyFile(p); err != nil {
			f.Fatal(err)
		}
	}
	// IKEv2: the keys of the real strongSwan captures, so that SK/SKF
	// opening, reassembly and the decrypted exchanges are fuzzed too.
	v2, _ := filepath.Glob("testdata/ikev2/*.keys")
	for _, p := range v2 {
		if err := keys.LoadKeyFile(p); err != nil {
			f.Fatal(err)
		}
	}
	keys.PSKs = []PSK{{Secret: []byte("lab-psk-tunnel1-Xq3vR7"), Source: "fuzz"}}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Decode(bytes.NewReader(b), "fuzz", keys)
		if err != nil {
			return
		}
		if err := rep.WriteText(io.Discard); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteJSON(io.Discard); err != nil {
			t.Fatal(err)
		}
	})
}
