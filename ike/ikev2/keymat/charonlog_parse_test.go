package keymat_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// charonLogSample is real charon 5.9.8 output (level 4) trimmed to a few
// dumps, with another thread's line inside the nonce dump.
const charonLogSample = `2026-12-01 15:00:35.534 09[ENC] <t|1> generating payload of type NONCE
2026-12-01 15:00:35.534 09[ENC] <t|1>   generating rule 10 CHUNK_DATA
2026-12-01 15:00:35.534 09[ENC] <t|1>    => 32 bytes @ 0x7fa568042250
2026-12-01 15:00:35.534 09[ENC] <t|1>    0: F5 D6 61 F8 22 57 DC 73 B3 48 B0 0F 84 C4 5A 3B  ..a."W.s.H....Z;
2026-12-01 15:00:35.534 04[JOB]   watching 16 for reading
2026-12-01 15:00:35.534 09[ENC] <t|1>   16: 54 E8 BE 2B 92 E4 DF 4E 5B 1C 91 74 53 A9 C9 6A  T..+...N[..tS..j
2026-12-01 15:00:35.534 09[ENC] <t|1> generating NONCE payload finished
2026-12-01 15:00:35.587 14[ENC] <x|2> parsing NONCE payload, 348 bytes left
2026-12-01 15:00:35.587 14[ENC] <x|2>   parsing rule 10 CHUNK_DATA
2026-12-01 15:00:35.587 14[ENC] <x|2>    => 4 bytes @ 0x7fa574001110
2026-12-01 15:00:35.587 14[ENC] <x|2>    0: 26 F4 67 84                                      &.g.
2026-12-01 15:00:35.547 16[IKE] <t|1> SKEYSEED => 20 bytes @ 0x5650d768ae80
2026-12-01 15:00:35.547 16[IKE] <t|1>    0: 5C 82 20 64 DA 75 6E 27 AB 14 55 31 EC 67 33 06  \. d.un'..U1.g3.
2026-12-01 15:00:35.547 16[IKE] <t|1>   16: F7 D3 B9 63                                      ...c
`

func TestParseCharonLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "charon.log")
	if err := os.WriteFile(p, []byte(charonLogSample), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := parseCharonLog(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []charonDump{
		{"t", "NONCE sent", []byte{0xf5, 0xd6, 0x61, 0xf8, 0x22, 0x57, 0xdc, 0x73, 0xb3, 0x48, 0xb0, 0x0f, 0x84, 0xc4, 0x5a, 0x3b,
			0x54, 0xe8, 0xbe, 0x2b, 0x92, 0xe4, 0xdf, 0x4e, 0x5b, 0x1c, 0x91, 0x74, 0x53, 0xa9, 0xc9, 0x6a}},
		{"x", "NONCE received", []byte{0x26, 0xf4, 0x67, 0x84}},
		{"t", "SKEYSEED", []byte{0x5c, 0x82, 0x20, 0x64, 0xda, 0x75, 0x6e, 0x27, 0xab, 0x14, 0x55, 0x31, 0xec, 0x67, 0x33, 0x06, 0xf7, 0xd3, 0xb9, 0x63}},
	}
	if len(d) != len(want) {
		t.Fatalf("%d dumps: %+v", len(d), d)
	}
	for i := range want {
		if d[i].Conn != want[i].Conn || d[i].Label != want[i].Label || !bytes.Equal(d[i].Data, want[i].Data) {
			t.Errorf("dump %d: %s %q %x, want %s %q %x", i, d[i].Conn, d[i].Label, d[i].Data, want[i].Conn, want[i].Label, want[i].Data)
		}
	}
	v := newCharonValues(d, "t")
	if b, err := v.next("SKEYSEED"); err != nil || len(b) != 20 {
		t.Errorf("next SKEYSEED: %x %v", b, err)
	}
	if _, err := v.next("NONCE sent"); err == nil {
		t.Error("cursor went backwards")
	}
	// A dump that stops early is an error, not a short value.
	cut := strings.Replace(charonLogSample, "2026-12-01 15:00:35.547 16[IKE] <t|1>   16: F7 D3 B9 63                                      ...c\n", "2026-12-01 15:00:35.547 16[IKE] <t|1> next line\n", 1)
	if err := os.WriteFile(p, []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := parseCharonLog(p); err == nil || !strings.Contains(err.Error(), "ends after 16 of 20 bytes") {
		t.Errorf("truncated dump: %v", err)
	}
}
