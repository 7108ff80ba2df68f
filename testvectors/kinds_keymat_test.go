package testvectors

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestKeymatKindShipped makes sure ikev1_keymat.json runs, passes and covers
// every hash, both protocols, PFS and no PFS, multi-block lengths and the
// real strongSwan exchange.
func TestKeymatKindShipped(t *testing.T) {
	results, err := RunFile("ikev1_keymat.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 20 {
		t.Errorf("only %d ikev1-keymat vectors", len(results))
	}
	for _, r := range results {
		if !r.Pass || r.Kind != "ikev1-keymat" {
			t.Errorf("FAIL %s %s: %s", r.Kind, r.Name, r.Detail)
		}
	}
	all := ""
	for _, r := range results {
		all += r.Name + "\n"
	}
	for _, s := range []string{"-sha1-", "-sha256-", "-sha384-", "-sha512-", "(AH,", "(ESP,", "no PFS", ", PFS ",
		"= 1 x", "= 2 x", "= 3 x", "= 4 x", "strongswan-5.9.8 ESP SPI ad8c3188", "strongswan-5.9.8 ESP SPI ef5ebbd9"} {
		if !strings.Contains(all, s) {
			t.Errorf("no vector named like %q", s)
		}
	}
}

// keymatVectorJSON returns the first vector of ikev1_keymat.json whose name
// starts with prefix, as a map.
func keymatVectorJSON(t *testing.T, prefix string) map[string]any {
	t.Helper()
	data, err := os.ReadFile("ikev1_keymat.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vectors []map[string]any `json:"vectors"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, v := range doc.Vectors {
		if strings.HasPrefix(v["name"].(string), prefix) {
			return v
		}
	}
	t.Fatalf("no vector %q", prefix)
	return nil
}

func runKeymatVectors(t *testing.T, vs ...map[string]any) []Result {
	t.Helper()
	b, err := json.Marshal(map[string]any{"kind": "ikev1-keymat", "source": "test", "vectors": vs})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := RunFile(writeTemp(t, t.TempDir(), "keymat.json", string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(vs) {
		t.Fatalf("%d results for %d vectors", len(rs), len(vs))
	}
	return rs
}

func clone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// flipHex flips the low bit of byte i of a hex string.
func flipHex(s string, i int) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	b[i] ^= 1
	return hex.EncodeToString(b)
}

// TestKeymatKindFails shows that the checker detects wrong expected values
// and wrong inputs, in the first and in a later prf block, with and without
// PFS, and rejects malformed vectors.
func TestKeymatKindFails(t *testing.T) {
	noPFS := keymatVectorJSON(t, "keymat-sha256-11 ") // no PFS, 100 bytes = 4 blocks
	pfs := keymatVectorJSON(t, "strongswan-5.9.8 ESP SPI ad8c3188")
	if _, ok := noPFS["g_qm_xy"]; ok {
		t.Fatal("keymat-sha256-11 should be a no-PFS vector")
	}

	type mod struct {
		name   string
		base   map[string]any
		change func(v map[string]any)
		detail string // substring of the failure
	}
	mods := []mod{
		{"unchanged no PFS", noPFS, func(map[string]any) {}, ""},
		{"unchanged PFS", pfs, func(map[string]any) {}, ""},
		{"keymat byte 0", noPFS, func(v map[string]any) { v["keymat"] = flipHex(v["keymat"].(string), 0) }, "keymat: expected "},
		{"keymat last byte (block 4)", noPFS, func(v map[string]any) { v["keymat"] = flipHex(v["keymat"].(string), 99) }, "keymat: expected "},
		{"keymat byte 40 (block 2) PFS", pfs, func(v map[string]any) { v["keymat"] = flipHex(v["keymat"].(string), 40) }, "keymat: expected "},
		{"skeyid_d", noPFS, func(v map[string]any) { v["skeyid_d"] = flipHex(v["skeyid_d"].(string), 5) }, "keymat: expected "},
		{"spi", pfs, func(v map[string]any) { v["spi"] = "ef5ebbd9" }, "keymat: expected "},
		{"protocol AH instead of ESP", pfs, func(v map[string]any) { v["protocol"] = 2 }, "keymat: expected "},
		{"nonces swapped", pfs, func(v map[string]any) { v["ni_b"], v["nr_b"] = v["nr_b"], v["ni_b"] }, "keymat: expected "},
		{"PFS secret dropped", pfs, func(v map[string]any) { delete(v, "g_qm_xy") }, "keymat: expected "},
		{"PFS secret added", noPFS, func(v map[string]any) { v["g_qm_xy"] = "00" }, "keymat: expected "},
		{"wrong hash", noPFS, func(v map[string]any) { v["hash"] = "sha512" }, "keymat: expected "},
		{"unknown field", noPFS, func(v map[string]any) { v["keymatt"] = v["keymat"] }, "unknown field"},
		{"typo g_qm_xy", pfs, func(v map[string]any) { v["gqm_xy"] = v["g_qm_xy"]; delete(v, "g_qm_xy") }, "unknown field"},
		{"md5", noPFS, func(v map[string]any) { v["hash"] = "md5" }, "not an IKEv1 hash"},
		{"missing keymat", noPFS, func(v map[string]any) { delete(v, "keymat") }, `missing "keymat"`},
		{"missing protocol", noPFS, func(v map[string]any) { delete(v, "protocol") }, `missing "protocol"`},
		{"protocol 4", noPFS, func(v map[string]any) { v["protocol"] = 4 }, "protocol must be 2 (AH) or 3 (ESP)"},
		{"short spi", noPFS, func(v map[string]any) { v["spi"] = "0102" }, "spi must be 4 bytes"},
		{"empty g_qm_xy", noPFS, func(v map[string]any) { v["g_qm_xy"] = "" }, "g_qm_xy is empty"},
		{"missing length", noPFS, func(v map[string]any) { delete(v, "length") }, `missing "length"`},
		{"length mismatch", noPFS, func(v map[string]any) { v["length"] = 99 }, "length is 99 but keymat has 100 bytes"},
		{"truncated keymat", noPFS, func(v map[string]any) { v["keymat"] = v["keymat"].(string)[:198] }, "length is 100 but keymat has 99 bytes"},
	}
	vs := make([]map[string]any, len(mods))
	for i, m := range mods {
		v := clone(m.base)
		v["name"] = m.name
		m.change(v)
		vs[i] = v
	}
	rs := runKeymatVectors(t, vs...)
	for i, m := range mods {
		r := rs[i]
		if r.Name != m.name {
			t.Errorf("result %d is %q, want %q", i, r.Name, m.name)
		}
		if m.detail == "" {
			if !r.Pass {
				t.Errorf("%s: should pass: %s", m.name, r.Detail)
			}
			continue
		}
		if r.Pass {
			t.Errorf("%s: passed", m.name)
		} else if !strings.Contains(r.Detail, m.detail) {
			t.Errorf("%s: detail %q lacks %q", m.name, r.Detail, m.detail)
		}
	}
}
