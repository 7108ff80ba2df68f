package testvectors

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestIKEv2KDFKindShipped makes sure ikev2_kdf_cavp.json runs, passes and
// covers every hash with several vectors, both nonce lengths and the long
// g^ir.
func TestIKEv2KDFKindShipped(t *testing.T) {
	results, err := RunFile("ikev2_kdf_cavp.json")
	if err != nil {
		t.Fatal(err)
	}
	perHash := map[string]int{}
	all := ""
	for _, r := range results {
		if !r.Pass || r.Kind != "ikev2-kdf" {
			t.Errorf("FAIL %s %s: %s", r.Kind, r.Name, r.Detail)
		}
		for _, h := range []string{"SHA-1 ", "SHA-256 ", "SHA-384 ", "SHA-512 "} {
			if strings.Contains(r.Name, h) {
				perHash[h]++
			}
		}
		all += r.Name + "\n"
	}
	for _, h := range []string{"SHA-1 ", "SHA-256 ", "SHA-384 ", "SHA-512 "} {
		if perHash[h] < 4 {
			t.Errorf("%d vectors for %s", perHash[h], h)
		}
	}
	for _, s := range []string{"Ni/Nr 64 bits", "Ni/Nr 2048 bits", "g^ir 8192 bits", "DKM 3072 bits"} {
		if !strings.Contains(all, s) {
			t.Errorf("no vector named like %q", s)
		}
	}
}

// ikev2VectorJSON returns the first vector of ikev2_kdf_cavp.json whose
// name contains s, as a map.
func ikev2VectorJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	data, err := os.ReadFile("ikev2_kdf_cavp.json")
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
		if strings.Contains(v["name"].(string), s) {
			return v
		}
	}
	t.Fatalf("no vector %q", s)
	return nil
}

// TestIKEv2KDFKindFails shows that the checker detects a wrong byte in
// every expected value and in every input, and rejects malformed vectors.
func TestIKEv2KDFKindFails(t *testing.T) {
	sha1 := ikev2VectorJSON(t, "SHA-1 g^ir 256 bits, Ni/Nr 64 bits, DKM 1056 bits, COUNT = 0")
	sha512 := ikev2VectorJSON(t, "SHA-512 g^ir 256 bits, Ni/Nr 2048 bits, DKM 3072 bits, COUNT = 2")
	flip := func(field string, i int) func(map[string]any) {
		return func(v map[string]any) { v[field] = flipHex(v[field].(string), i) }
	}
	last := func(v map[string]any, field string) int { return len(v[field].(string))/2 - 1 }
	type mod struct {
		name   string
		base   map[string]any
		change func(v map[string]any)
		detail string // substring of the failure; "" = must pass
	}
	mods := []mod{
		{"unchanged sha1", sha1, func(map[string]any) {}, ""},
		{"unchanged sha512", sha512, func(map[string]any) {}, ""},
		{"skeyseed byte 0", sha1, flip("skeyseed", 0), "skeyseed: expected "},
		{"dkm byte 0", sha1, flip("dkm", 0), "dkm: expected "},
		{"dkm last byte (prf+ block 7)", sha1, flip("dkm", last(sha1, "dkm")), "dkm: expected "},
		{"dkm last byte sha512 (block 6)", sha512, flip("dkm", last(sha512, "dkm")), "dkm: expected "},
		{"dkm_child byte 40", sha1, flip("dkm_child", 40), "dkm_child: expected "},
		{"dkm_child_dh last byte", sha512, flip("dkm_child_dh", last(sha512, "dkm_child_dh")), "dkm_child_dh: expected "},
		{"skeyseed_rekey byte 19", sha1, flip("skeyseed_rekey", 19), "skeyseed_rekey: expected "},
		{"ni", sha1, flip("ni", 7), "skeyseed: expected "},
		{"nr", sha512, flip("nr", 100), "skeyseed: expected "},
		{"gir", sha1, flip("gir", 31), "skeyseed: expected "},
		{"gir_new", sha1, flip("gir_new", 0), "dkm_child_dh: expected "},
		{"spii", sha1, flip("spii", 0), "dkm: expected "},
		{"spir", sha512, flip("spir", 7), "dkm: expected "},
		{"SPIs swapped", sha1, func(v map[string]any) { v["spii"], v["spir"] = v["spir"], v["spii"] }, "dkm: expected "},
		{"nonces swapped", sha1, func(v map[string]any) { v["ni"], v["nr"] = v["nr"], v["ni"] }, "skeyseed: expected "},
		{"wrong hash", sha1, func(v map[string]any) { v["hash"] = "sha256" }, "skeyseed: expected "},
		{"truncated dkm (compared over its length)", sha1, func(v map[string]any) { v["dkm"] = v["dkm"].(string)[:100] }, ""},
		{"md5", sha1, func(v map[string]any) { v["hash"] = "md5" }, "no IKEv2 HMAC prf"},
		{"unknown field", sha1, func(v map[string]any) { v["dkm_chlid"] = v["dkm_child"] }, "unknown field"},
		{"missing gir_new", sha1, func(v map[string]any) { delete(v, "gir_new") }, `missing "gir_new"`},
		{"missing skeyseed_rekey", sha1, func(v map[string]any) { delete(v, "skeyseed_rekey") }, `missing "skeyseed_rekey"`},
		{"short spii", sha1, func(v map[string]any) { v["spii"] = "0102" }, "spii and spir must be 8 bytes"},
		{"dkm shorter than SK_d", sha512, func(v map[string]any) { v["dkm"] = v["dkm"].(string)[:126] }, "SK_d alone needs 64"},
		{"empty dkm_child", sha1, func(v map[string]any) { v["dkm_child"] = "" }, "must not be empty"},
		{"dkm beyond 255 blocks", sha1, func(v map[string]any) { v["dkm"] = strings.Repeat("00", 255*20+1) }, "limit is 255 x 20"},
	}
	vs := make([]map[string]any, len(mods))
	for i, m := range mods {
		v := clone(m.base)
		v["name"] = m.name
		m.change(v)
		vs[i] = v
	}
	b, err := json.Marshal(map[string]any{"kind": "ikev2-kdf", "source": "test", "vectors": vs})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := RunFile(writeTemp(t, t.TempDir(), "ikev2.json", string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(mods) {
		t.Fatalf("%d results for %d vectors", len(rs), len(mods))
	}
	for i, m := range mods {
		r := rs[i]
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
