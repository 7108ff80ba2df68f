package report

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	r := failoverRun()
	r.Artifacts = append(r.Artifacts, Artifact{Name: "failover.html", Path: "./failover.html", What: "listed by the runner"})
	if err := WriteFiles(dir, r); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, a := range r.Artifacts {
		paths = append(paths, a.Path)
	}
	if got := strings.Join(paths, " "); got != "cgw.log captures/outside.pcap ./failover.html summary.txt timeline.json junit.xml failover.svg" {
		t.Errorf("artifacts: %s", got)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if s := read(FileSummary); !strings.Contains(s, "failover.svg") || !strings.HasPrefix(s, "FAIL  failover-dpd") {
		t.Errorf("summary.txt:\n%s", s)
	}
	if _, err := ReadJSON(strings.NewReader(read(FileJSON))); err != nil {
		t.Error(err)
	}
	var suites struct {
		Tests int `xml:"tests,attr"`
	}
	if err := xml.Unmarshal([]byte(read(FileJUnit)), &suites); err != nil || suites.Tests != 8 {
		t.Errorf("junit.xml: %v %d", err, suites.Tests)
	}
	page := read(FileHTML)
	checkSelfContained(t, page)
	if !strings.Contains(page, `<a href="junit.xml">junit.xml</a>`) {
		t.Errorf("the page does not link junit.xml")
	}
	parseSVG(t, read(FileSVG))

	// A folder that cannot be made is an error.
	if err := WriteFiles(filepath.Join(dir, FileSVG, "sub"), failoverRun()); err == nil {
		t.Error("no error for a folder under a file")
	}
}
