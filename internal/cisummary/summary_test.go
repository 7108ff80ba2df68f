package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goTestJSON runs the real `go test -json` on a throwaway module with
// passing, failing and skipping tests and a package that does not build,
// so the summarizer is tested against the go command's actual stream.
func goTestJSON(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.22\n",
		"a/a_test.go": `package a
import "testing"
func TestPass(t *testing.T) {}
func TestFail(t *testing.T) { t.Log("before"); t.Fatal("the failure text") }
func TestNeedsTool(t *testing.T) { t.Log("noise"); t.Skip("footool not installed (apt-get install footool)") }
func TestSub(t *testing.T) {
	t.Run("load", func(t *testing.T) { t.Skipf("machine starved:\nline two") })
	t.Run("ok", func(t *testing.T) {})
}
`,
		"b/b_test.go": "package b\nimport \"testing\"\nfunc TestB(t *testing.T) { undefined() }\n",
		"c/c.go":      "package c\n",
		"d/d_test.go": "package d\nimport \"testing\"\nfunc TestD(t *testing.T) {}\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-count=1", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	out, _ := cmd.CombinedOutput() // exits 1: TestFail and b fail
	if !bytes.Contains(out, []byte(`"Action":"skip"`)) {
		t.Fatalf("go test -json gave no skip event:\n%s", out)
	}
	return out
}

func TestSummaryOfARealStream(t *testing.T) {
	stream := goTestJSON(t)
	allow, err := ParseAllow(strings.NewReader("# comment\n\nm/a  TestSub/load  the machine was starved, not a missing package\n"), "allow")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code := run([]string{"-ci"}, bytes.NewReader(stream), &out, &out)
	if code != 1 {
		t.Errorf("exit %d, want 1 (a test failed)", code)
	}
	s := newSummarizer(&bytes.Buffer{}, allow)
	if err := s.Consume(bytes.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	sum := s.Summary()
	if sum.Passed != 4 || sum.Failed != 1 { // TestPass, TestSub, TestSub/ok, TestD
		t.Errorf("passed %d failed %d, want 4 and 1", sum.Passed, sum.Failed)
	}
	if len(sum.FailedPackages) != 2 { // a (TestFail) and b (build)
		t.Errorf("failed packages %v, want a and b", sum.FailedPackages)
	}
	reasons := map[string]Skip{}
	for _, sk := range sum.Skipped {
		reasons[sk.Test] = sk
	}
	if r := reasons["TestNeedsTool"]; !strings.Contains(r.Reason, "footool not installed (apt-get install footool)") ||
		strings.Contains(r.Reason, "noise") || r.Allowed != nil {
		t.Errorf("TestNeedsTool skip = %+v", r)
	}
	if r := reasons["TestSub/load"]; !strings.Contains(r.Reason, "machine starved: line two") || r.Allowed == nil {
		t.Errorf("TestSub/load skip = %+v, want the two-line reason, allowed", r)
	}
	text := out.String()
	for _, want := range []string{"the failure text", "undefined", "SKIP example.com/m/a TestNeedsTool",
		"NOT ALLOWED", "CI=true: 2 skipped test(s)", "tests: 4 passed, 1 failed, 2 skipped\n",
		"ok  \texample.com/m/d\t", "?   \texample.com/m/c\t[no test files]"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "=== RUN   TestPass") {
		t.Errorf("a passing test's output was printed:\n%s", text)
	}
}

func TestCIRefusesOnlyUncoveredSkips(t *testing.T) {
	sum := Summary{Passed: 2, Skipped: []Skip{{Package: "p", Test: "T", Reason: "r", Allowed: &Allow{Reason: "ok", Line: 1}}}}
	var out bytes.Buffer
	if code := report(&out, sum, true); code != 0 {
		t.Errorf("allowed skip: exit %d, want 0\n%s", code, out.String())
	}
	sum.Skipped = append(sum.Skipped, Skip{Package: "p", Test: "U", Reason: "tool missing"})
	if code := report(&out, sum, false); code != 0 {
		t.Errorf("without -ci an uncovered skip must not fail: exit %d", code)
	}
	if code := report(&out, sum, true); code != 1 {
		t.Errorf("with -ci an uncovered skip must fail: exit %d", code)
	}
}

func TestUnfinishedTestsCountAsFailed(t *testing.T) {
	stream := `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestHang"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"p","Output":"panic: test timed out after 1s\n"}
{"Action":"fail","Package":"p","Elapsed":1}
`
	var out bytes.Buffer
	code := run(nil, strings.NewReader(stream), &out, &out)
	if code != 1 || !strings.Contains(out.String(), "--- UNFINISHED: TestHang") ||
		!strings.Contains(out.String(), "panic: test timed out") || !strings.Contains(out.String(), "0 passed, 1 failed") {
		t.Errorf("exit %d:\n%s", code, out.String())
	}
}

func TestAllowListErrors(t *testing.T) {
	for _, bad := range []string{"ike TestX\n", "ike Test( reason\n"} {
		if _, err := ParseAllow(strings.NewReader(bad), "f"); err == nil || !strings.Contains(err.Error(), "f:1:") {
			t.Errorf("%q: err %v, want one naming f:1", bad, err)
		}
	}
	a, _ := ParseAllow(strings.NewReader("ike TestM.* load\n"), "f")
	if !a[0].Covers(Skip{Package: "github.com/x/ike", Test: "TestMany"}) || a[0].Covers(Skip{Package: "github.com/x/ike/dh", Test: "TestMany"}) ||
		a[0].Covers(Skip{Package: "github.com/x/bike", Test: "TestMany"}) {
		t.Error("package suffix matching is wrong")
	}
}
