package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	// ImportPath names the package of build-output and build-fail
	// events, which carry no Package ("p [p.test]").
	ImportPath string
	Output     string
	Elapsed    float64
}

// key names a test, or a package's own output when test is "".
type key struct{ pkg, test string }

// Skip is one skipped test with the reason it gave.
type Skip struct {
	Package, Test, Reason string
	Allowed               *Allow // the allow-list entry that covers it, or nil
}

// Summary is what a whole `go test -json` stream amounted to.
type Summary struct {
	Passed, Failed int
	Skipped        []Skip
	FailedPackages []string // packages whose build or run failed (including timeouts)
	Unfinished     []string // tests that started and never ended (a package timeout or crash)
}

// summarizer consumes events, prints what a person needs while they arrive
// (package results, the whole output of failed tests and packages) and
// collects the summary.
type summarizer struct {
	out     io.Writer
	allow   []Allow
	buf     map[key][]string
	running map[key]bool
	sum     Summary
}

func newSummarizer(out io.Writer, allow []Allow) *summarizer {
	return &summarizer{out: out, allow: allow, buf: map[key][]string{}, running: map[key]bool{}}
}

// Consume reads the stream to its end. Lines that are not JSON events (the go
// command's own messages) are printed as they are.
func (s *summarizer) Consume(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil || ev.Action == "" {
			fmt.Fprintf(s.out, "%s\n", line)
			continue
		}
		s.handle(ev)
	}
	return sc.Err()
}

func (s *summarizer) handle(ev event) {
	k := key{ev.Package, ev.Test}
	switch ev.Action {
	case "run":
		s.running[k] = true
	case "output":
		s.buf[k] = append(s.buf[k], ev.Output)
	case "build-output":
		b := key{ev.ImportPath, ""}
		s.buf[b] = append(s.buf[b], ev.Output)
	case "build-fail": // the package's own fail event follows
		b := key{ev.ImportPath, ""}
		s.print(s.buf[b])
		s.finish(b)
	case "pass":
		if ev.Test == "" {
			s.printPackageLine(k) // finishes k after printing from its buffer
		} else {
			s.sum.Passed++
			s.finish(k)
		}
	case "skip":
		if ev.Test == "" { // a package without tests
			s.printPackageLine(k)
		} else {
			s.sum.Skipped = append(s.sum.Skipped, s.skip(k))
		}
		s.finish(k)
	case "fail":
		if ev.Test != "" {
			s.sum.Failed++
			s.print(s.buf[k])
			s.finish(k)
			return
		}
		s.failPackage(k)
	}
}

func (s *summarizer) finish(k key) {
	delete(s.running, k)
	delete(s.buf, k)
}

// printPackageLine prints the go command's one-line verdict of a package
// ("ok  pkg 1.2s", "?  pkg [no test files]").
func (s *summarizer) printPackageLine(k key) {
	for _, l := range s.buf[k] {
		if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "?  ") || strings.HasPrefix(l, "ok\t") || strings.HasPrefix(l, "?\t") {
			fmt.Fprint(s.out, l)
		}
	}
	s.finish(k)
}

// failPackage prints everything the package said that no passing test
// claimed: its own output (a timeout's panic, a build error) and the output
// of tests that never finished.
func (s *summarizer) failPackage(k key) {
	var unfinished []key
	for r := range s.running {
		if r.pkg == k.pkg && r.test != "" {
			unfinished = append(unfinished, r)
		}
	}
	sort.Slice(unfinished, func(i, j int) bool { return unfinished[i].test < unfinished[j].test })
	for _, r := range unfinished {
		fmt.Fprintf(s.out, "--- UNFINISHED: %s (%s)\n", r.test, r.pkg)
		s.print(s.buf[r])
		s.sum.Unfinished = append(s.sum.Unfinished, r.pkg+" "+r.test)
		s.finish(r)
	}
	s.print(s.buf[k])
	if len(s.buf[k]) == 0 {
		fmt.Fprintf(s.out, "FAIL\t%s\n", k.pkg)
	}
	s.sum.FailedPackages = append(s.sum.FailedPackages, k.pkg)
	s.finish(k)
}

func (s *summarizer) print(lines []string) {
	for _, l := range lines {
		fmt.Fprint(s.out, l)
	}
}

// logEntry matches the first line of a t.Log/t.Skip entry: "    file.go:12: text".
var logEntry = regexp.MustCompile(`^ {4}\S+\.go:\d+: `)

// skip builds the record of a skipped test. Its reason is the last log
// entry before the "--- SKIP" line (t.Skip's message), with its
// continuation lines.
func (s *summarizer) skip(k key) Skip {
	var entry []string
	for _, l := range s.buf[k] {
		t := strings.TrimRight(l, "\n")
		switch {
		case strings.HasPrefix(strings.TrimSpace(t), "=== "), strings.HasPrefix(strings.TrimSpace(t), "--- "):
		case logEntry.MatchString(t):
			entry = []string{strings.TrimSpace(t)}
		case strings.HasPrefix(t, "        ") && entry != nil:
			entry = append(entry, strings.TrimSpace(t))
		}
	}
	sk := Skip{Package: k.pkg, Test: k.test, Reason: strings.Join(entry, " ")}
	if sk.Reason == "" {
		sk.Reason = "(no reason given)"
	}
	for i := range s.allow {
		if s.allow[i].Covers(sk) {
			sk.Allowed = &s.allow[i]
			break
		}
	}
	return sk
}

// Summary returns what was seen, with tests that never finished counted as
// failed.
func (s *summarizer) Summary() Summary {
	for r := range s.running {
		if r.test != "" {
			s.sum.Unfinished = append(s.sum.Unfinished, r.pkg+" "+r.test)
		}
	}
	sort.Strings(s.sum.Unfinished)
	return s.sum
}
