package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"
)

// The JUnit XML elements, as the common schema (Ant's, as read by Jenkins,
// GitLab and GitHub actions) has them.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Package    string          `xml:"package,attr,omitempty"`
	ID         int             `xml:"id,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Hostname   string          `xml:"hostname,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  *junitText      `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

// junitText is multi-line text kept readable in the file (CDATA).
type junitText struct {
	Text string `xml:",cdata"`
}

func newText(s string) *junitText {
	if s == "" {
		return nil
	}
	return &junitText{Text: xmlSafe(s)}
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",cdata"`
}

// WriteJUnit writes the run as JUnit XML for CI: one testsuite (the
// scenario) with one testcase per step, named "NN step-name" so that
// tools that sort by name keep the scenario's order. A failed step is a
// failure (message: the step's message; body: the failing assertions with
// expected and seen values), a step with status "error" an error, a
// skipped step skipped; a run Error adds an error testcase "setup". The
// tunnel events during a step are its system-out, the summary the suite's.
func WriteJUnit(w io.Writer, r *Run) error {
	name := r.Scenario
	if name == "" {
		name = "scenario"
	}
	suite := junitSuite{Name: name, Package: "vpnlab", Time: secs3(r.Duration().Seconds()), Hostname: hostname()}
	if !r.Start.IsZero() {
		suite.Timestamp = r.Start.UTC().Format("2006-01-02T15:04:05")
	}
	keys := make([]string, 0, len(r.Vars))
	for k := range r.Vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if r.File != "" {
		suite.Properties = append(suite.Properties, junitProperty{Name: "file", Value: r.File})
	}
	for _, k := range keys {
		suite.Properties = append(suite.Properties, junitProperty{Name: "var." + k, Value: r.Vars[k]})
	}
	if r.Error != "" {
		suite.Cases = append(suite.Cases, junitCase{Name: "setup", Classname: name, Time: secs3(0),
			Error: &junitMessage{Message: oneLine(r.Error), Type: "runner", Body: xmlSafe(r.Error)}})
	}
	width := len(fmt.Sprint(len(r.Steps)))
	events := sortedEvents(r)
	for _, s := range r.Steps {
		c := junitCase{Name: strings.TrimSpace(fmt.Sprintf("%0*d %s", width, s.Index, oneLine(s.Name))), Classname: name, Time: secs3(s.Duration().Seconds())}
		body := xmlSafe(strings.Join(assertLines(s), "\n"))
		switch s.Status {
		case StatusFail:
			c.Failure = &junitMessage{Message: stepMessage(s), Type: "assertion", Body: body}
		case StatusError:
			c.Error = &junitMessage{Message: stepMessage(s), Type: "error", Body: body}
		case StatusSkipped:
			c.Skipped = &junitMessage{Message: oneLine(s.Message)}
		}
		c.SystemOut = newText(stepEvents(r, s, events))
		suite.Cases = append(suite.Cases, c)
	}
	for _, c := range suite.Cases {
		suite.Tests++
		switch {
		case c.Failure != nil:
			suite.Failures++
		case c.Error != nil:
			suite.Errors++
		case c.Skipped != nil:
			suite.Skipped++
		}
	}
	var sum strings.Builder
	if err := WriteSummary(&sum, r); err != nil {
		return err
	}
	suite.SystemOut = newText(sum.String())
	doc := junitSuites{Name: "vpnlab", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Skipped: suite.Skipped, Time: suite.Time, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// stepMessage is the one-line reason of a failed step: its message, or
// else its first failing assertion.
func stepMessage(s Step) string {
	if m := oneLine(s.Message); m != "" {
		return m
	}
	for _, a := range s.Asserts {
		if !a.Passed {
			return join(": ", oneLine(a.Expr), expectedSeen(a))
		}
	}
	return s.Status
}

// assertLines lists a step's failing assertions.
func assertLines(s Step) []string {
	var out []string
	if m := strings.TrimSpace(s.Message); m != "" {
		out = append(out, m)
	}
	for _, a := range s.Asserts {
		if a.Passed {
			continue
		}
		l := "assert " + oneLine(a.Expr)
		if a.Line > 0 {
			l = fmt.Sprintf("line %d: %s", a.Line, l)
		}
		if a.Expected != "" || a.Seen != "" {
			l += "\n    expected: " + oneLine(a.Expected) + "\n    seen:     " + oneLine(a.Seen)
		}
		out = append(out, l)
	}
	return out
}

// stepEvents lists the interesting events from a step's start to its end
// (both included: the event that ended a wait belongs to it).
func stepEvents(r *Run, s Step, events []Event) string {
	if s.Start.IsZero() || s.End.IsZero() {
		return ""
	}
	var b strings.Builder
	shown, _ := interestingEvents(events)
	for _, e := range shown {
		if e.Time.Before(s.Start) || e.Time.After(s.End) {
			continue
		}
		fmt.Fprintf(&b, "%s %s %s %s\n", offset(r, e.Time), orDash(e.Source), eventTunnel(e), DescribeEvent(e))
	}
	return b.String()
}

func secs3(s float64) string { return fmt.Sprintf("%.3f", s) }

func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// xmlSafe replaces what XML 1.0 cannot carry (control characters, invalid
// UTF-8) with U+FFFD; CDATA sections are written as they are.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == utf8.RuneError, r >= 0xFFFE && r <= 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return '\uFFFD'
		}
		return r
	}, s)
}
