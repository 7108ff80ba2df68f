package testvectors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShippedVectors runs every vector file in this directory.
func TestShippedVectors(t *testing.T) {
	results, err := RunPaths([]string{"."})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) == 0 {
		t.Fatal("no vectors found")
	}
	kinds := map[string]int{}
	for _, r := range results {
		kinds[r.Kind]++
		if !r.Pass {
			t.Errorf("FAIL %s %s %s: %s", r.Kind, r.File, r.Name, r.Detail)
		}
	}
	for _, k := range []string{"prf", "integrity", "dh", "ikev1-psk-skeyid", "ikev2-kdf"} {
		if kinds[k] == 0 {
			t.Errorf("no vectors of kind %s", k)
		}
	}
	t.Logf("%d vectors: %v", len(results), kinds)
}

func TestPSKHashesCovered(t *testing.T) {
	results, err := RunFile("ikev1_psk_skeyid.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"sha1", "sha256", "sha384", "sha512"} {
		n := 0
		for _, r := range results {
			if strings.Contains(r.Name, "-"+h+"-") && r.Pass {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no passing %s SKEYID vector", h)
		}
	}
}

func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWrongVectorFails(t *testing.T) {
	dir := t.TempDir()
	// RFC 2202 HMAC-SHA-1 test case 2 with the last digit of the output changed,
	// followed by the correct one.
	p := writeTemp(t, dir, "bad.json", `{"kind":"prf","source":"test","vectors":[
 {"name":"wrong","hash":"sha1","key":"4a656665","data":"7768617420646f2079612077616e7420666f72206e6f7468696e673f","output":"effcdf6ae5eb2fa2d27416d5f184df9c259a7c78"},
 {"name":"right","hash":"sha1","key":"4a656665","data":"7768617420646f2079612077616e7420666f72206e6f7468696e673f","output":"effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
 {"name":"typo","hash":"sha1","key":"4a656665","data":"","outptu":"00"},
 {"hash":"sha1"}]}`)
	rs, err := RunFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 4 {
		t.Fatalf("%d results", len(rs))
	}
	if rs[0].Pass || !strings.Contains(rs[0].Detail, "expected effcdf6ae5eb2fa2d27416d5f184df9c259a7c78 got effcdf6ae5eb2fa2d27416d5f184df9c259a7c79") {
		t.Errorf("wrong vector: %+v", rs[0])
	}
	if !rs[1].Pass || rs[1].Name != "right" || rs[1].Kind != "prf" || rs[1].File != p {
		t.Errorf("right vector: %+v", rs[1])
	}
	if rs[2].Pass || !strings.Contains(rs[2].Detail, "outptu") {
		t.Errorf("typo vector: %+v", rs[2])
	}
	if rs[3].Pass || !strings.Contains(rs[3].Detail, "name") {
		t.Errorf("nameless vector: %+v", rs[3])
	}

	// A wrong SKEYID_e in the PSK kind.
	p = writeTemp(t, dir, "psk.json", `{"kind":"ikev1-psk-skeyid","source":"test","vectors":[
 {"name":"x","hash":"sha1","cky_i":"0000000000000001","cky_r":"0000000000000002","ni":"01","nr":"02","gxy":"03","psk":"04",
  "skeyid":"00","skeyid_d":"00","skeyid_a":"00","skeyid_e":"00"}]}`)
	rs, err = RunFile(p)
	if err != nil || len(rs) != 1 || rs[0].Pass || !strings.Contains(rs[0].Detail, "skeyid: expected 00 got ") {
		t.Errorf("psk: %v %+v", err, rs)
	}

	// Wrong DH shared secret.
	p = writeTemp(t, dir, "dh.json", `{"kind":"dh","source":"test","vectors":[
 {"name":"x","group":19,"private":"01","public":"00","peer_public":"00","shared":"00"}]}`)
	rs, err = RunFile(p)
	if err != nil || len(rs) != 1 || rs[0].Pass || !strings.Contains(rs[0].Detail, "public: expected 00 got 6b17d1f2") {
		t.Errorf("dh: %v %+v", err, rs)
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := writeTemp(t, dir, "unknown.json", `{"kind":"esp-frobnicate","source":"x","vectors":[{"name":"a"}]}`)
	_, err := RunFile(unknown)
	if err == nil {
		t.Fatal("unknown kind accepted")
	}
	for _, s := range []string{unknown, `"esp-frobnicate"`, "known kinds: ah, dh, esp, ikev1-keymat, ikev1-psk-skeyid, ikev2-kdf, integrity, prf, replay"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	cases := map[string]string{
		"badjson.json":   `{"kind":"prf",`,
		"nokind.json":    `{"source":"x","vectors":[{"name":"a"}]}`,
		"nosource.json":  `{"kind":"prf","vectors":[{"name":"a"}]}`,
		"novectors.json": `{"kind":"prf","source":"x","vectors":[]}`,
		"extra.json":     `{"kind":"prf","source":"x","vector":[{"name":"a"}]}`,
		"trailing.json":  `{"kind":"prf","source":"x","vectors":[{"name":"a"}]} {}`,
	}
	for name, content := range cases {
		p := writeTemp(t, dir, name, content)
		if _, err := RunFile(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := RunFile(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file accepted")
	}

	// RunPaths keeps going and reports every bad file, with good results.
	good := filepath.Join(dir, "sub")
	os.Mkdir(good, 0o755)
	writeTemp(t, good, "ok.json", `{"kind":"prf","source":"x","vectors":[{"name":"a","hash":"sha1","key":"4a656665","data":"7768617420646f2079612077616e7420666f72206e6f7468696e673f","output":"effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"}]}`)
	rs, err := RunPaths([]string{dir, filepath.Join(dir, "nonexistent")})
	if err == nil || !strings.Contains(err.Error(), "esp-frobnicate") || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("RunPaths err = %v", err)
	}
	found := false
	for _, r := range rs {
		if r.Name == "a" && r.Pass && strings.HasSuffix(r.File, filepath.Join("sub", "ok.json")) {
			found = true
		}
	}
	if !found {
		t.Errorf("recursive file not run: %+v", rs)
	}
}

func TestKinds(t *testing.T) {
	want := []string{"ah", "dh", "esp", "ikev1-keymat", "ikev1-psk-skeyid", "ikev2-kdf", "integrity", "prf", "replay"}
	got := Kinds()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Kinds() = %v", got)
	}
}

func TestHexMustBeLowercase(t *testing.T) {
	var h Hex
	if err := h.UnmarshalJSON([]byte(`"ABCD"`)); err == nil {
		t.Error("uppercase hex accepted")
	}
	if err := h.UnmarshalJSON([]byte(`""`)); err != nil || h == nil || len(h) != 0 {
		t.Errorf("empty hex: %v %v", h, err)
	}
}
