package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

// The reader's view of JUnit XML, written independently of junit.go.
type xSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Time     float64  `xml:"time,attr"`
	Suites   []struct {
		Name       string  `xml:"name,attr"`
		Tests      int     `xml:"tests,attr"`
		Failures   int     `xml:"failures,attr"`
		Errors     int     `xml:"errors,attr"`
		Skipped    int     `xml:"skipped,attr"`
		Time       float64 `xml:"time,attr"`
		Timestamp  string  `xml:"timestamp,attr"`
		Hostname   string  `xml:"hostname,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name      string  `xml:"name,attr"`
			Classname string  `xml:"classname,attr"`
			Time      float64 `xml:"time,attr"`
			Failure   *xMsg   `xml:"failure"`
			Error     *xMsg   `xml:"error"`
			Skipped   *xMsg   `xml:"skipped"`
			SystemOut string  `xml:"system-out"`
		} `xml:"testcase"`
		SystemOut string `xml:"system-out"`
	} `xml:"testsuite"`
}

type xMsg struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

func junitOf(t *testing.T, r *Run) (xSuites, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, r); err != nil {
		t.Fatal(err)
	}
	var s xSuites
	if err := xml.Unmarshal(buf.Bytes(), &s); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	return s, buf.String()
}

func TestJUnitFailover(t *testing.T) {
	s, raw := junitOf(t, failoverRun())
	if !strings.HasPrefix(raw, `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML declaration")
	}
	if s.Tests != 8 || s.Failures != 1 || s.Errors != 0 || s.Skipped != 1 || s.Time != 20 || len(s.Suites) != 1 {
		t.Fatalf("testsuites: tests %d failures %d errors %d skipped %d time %v suites %d", s.Tests, s.Failures, s.Errors, s.Skipped, s.Time, len(s.Suites))
	}
	su := s.Suites[0]
	if su.Name != "failover-dpd" || su.Tests != 8 || su.Failures != 1 || su.Errors != 0 || su.Skipped != 1 || su.Timestamp != "2026-11-21T10:00:00" || su.Hostname == "" {
		t.Errorf("testsuite: %+v", su)
	}
	if len(su.Cases) != 8 {
		t.Fatalf("%d testcases", len(su.Cases))
	}
	for i, c := range su.Cases {
		if c.Classname != "failover-dpd" {
			t.Errorf("case %d classname %q", i, c.Classname)
		}
	}
	if c := su.Cases[0]; c.Name != "1 tunnels up" || c.Time != 1 || c.Failure != nil || c.Error != nil || c.Skipped != nil {
		t.Errorf("case 1: %+v", c)
	}
	c := su.Cases[4]
	if c.Name != "5 check outage" || c.Failure == nil {
		t.Fatalf("case 5: %+v", c)
	}
	if c.Failure.Message != "expected max_gap < 3s, seen 4.0s" {
		t.Errorf("failure message %q", c.Failure.Message)
	}
	for _, want := range []string{"line 21: assert flow ping max_gap < 3s", "expected: < 3s", "seen:     4.0s"} {
		if !strings.Contains(c.Failure.Body, want) {
			t.Errorf("failure body lacks %q:\n%s", want, c.Failure.Body)
		}
	}
	if strings.Contains(c.Failure.Body, "loss < 50%") {
		t.Errorf("failure body lists a passing assertion:\n%s", c.Failure.Body)
	}
	if c := su.Cases[7]; c.Skipped == nil || c.Skipped.Message != "skipped: --quick" {
		t.Errorf("case 8: %+v", c)
	}
	// The events during step 4 (failover) are its output.
	if out := su.Cases[3].SystemOut; !strings.Contains(out, "+8.000s cgw tunnel1 DPD: peer dead") || !strings.Contains(out, "route 172.31.0.0/16: tunnel1 -> tunnel2") {
		t.Errorf("step 4 system-out:\n%s", out)
	}
	if !strings.Contains(su.SystemOut, "FAIL  failover-dpd") {
		t.Errorf("suite system-out lacks the summary")
	}
	props := map[string]string{}
	for _, p := range su.Properties {
		props[p.Name] = p.Value
	}
	if props["var.dpd_timeout"] != "3s" || props["file"] != "scenarios/failover-dpd.yaml" {
		t.Errorf("properties %v", props)
	}
}

func TestJUnitErrorsAndSetup(t *testing.T) {
	r := failoverRun()
	r.Steps[6].Status, r.Steps[6].Message = StatusError, "control API: connection refused"
	r.Error = "runner: cgw exited (signal: killed)"
	s, _ := junitOf(t, r)
	su := s.Suites[0]
	if su.Tests != 9 || su.Failures != 1 || su.Errors != 2 || su.Skipped != 1 || s.Errors != 2 {
		t.Fatalf("counts: tests %d failures %d errors %d skipped %d", su.Tests, su.Failures, su.Errors, su.Skipped)
	}
	if c := su.Cases[0]; c.Name != "setup" || c.Error == nil || c.Error.Message != r.Error {
		t.Errorf("setup case: %+v", c)
	}
	if c := su.Cases[7]; c.Error == nil || c.Error.Message != "control API: connection refused" {
		t.Errorf("step 7: %+v", c)
	}

	s, _ = junitOf(t, abortedRun())
	su = s.Suites[0]
	if su.Tests != 1 || su.Errors != 1 || len(su.Cases) != 1 || su.Cases[0].Name != "setup" ||
		!strings.Contains(su.Cases[0].Error.Message, "operation not permitted") {
		t.Errorf("aborted run: %+v", su)
	}

	s, _ = junitOf(t, &Run{})
	if s.Tests != 0 || len(s.Suites) != 1 || s.Suites[0].Name != "scenario" {
		t.Errorf("empty run: %+v", s)
	}
}

func TestJUnitNamesKeepOrder(t *testing.T) {
	r := &Run{Scenario: "x<&>\"y", Start: t0}
	for i := 1; i <= 12; i++ {
		r.Steps = append(r.Steps, Step{Index: i, Name: "same", Status: StatusPass, Start: t0, End: t0})
	}
	s, raw := junitOf(t, r)
	if s.Suites[0].Name != "x<&>\"y" || !strings.Contains(raw, `name="x&lt;&amp;&gt;&#34;y"`) {
		t.Errorf("escaping: %s", raw)
	}
	if s.Suites[0].Cases[0].Name != "01 same" || s.Suites[0].Cases[11].Name != "12 same" {
		t.Errorf("names %q %q", s.Suites[0].Cases[0].Name, s.Suites[0].Cases[11].Name)
	}
}

func TestJUnitOddText(t *testing.T) {
	r := failoverRun()
	r.Steps[4].Message = "seen \x01 bytes ]]> and <tags> & \xff"
	r.Steps[4].Asserts[0].Seen = "]]>"
	s, _ := junitOf(t, r)
	f := s.Suites[0].Cases[4].Failure
	if f == nil || !strings.Contains(f.Body, "]]> and <tags> &") || !strings.Contains(f.Body, "seen:     ]]>") || !strings.Contains(f.Message, "<tags> &") {
		t.Errorf("failure: %+v", f)
	}
}
