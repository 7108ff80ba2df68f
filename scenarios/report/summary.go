package report

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// SummaryOptions change what WriteSummaryOptions prints.
type SummaryOptions struct {
	// Color prints the verdict in green or red with ANSI escapes; for a
	// terminal only.
	Color bool
	// MaxEvents bounds the tunnel events table (0: 60, negative: no bound);
	// the rest are counted, not printed.
	MaxEvents int
}

const (
	ansiGreen = "\x1b[1;32m"
	ansiRed   = "\x1b[1;31m"
	ansiReset = "\x1b[0m"
)

// WriteSummary writes the end-of-run summary for a terminal, without colours.
func WriteSummary(w io.Writer, r *Run) error {
	return WriteSummaryOptions(w, r, SummaryOptions{})
}

// WriteSummaryOptions writes the end-of-run summary: the verdict, the
// steps, the interesting tunnel events, the flows and the artifacts.
func WriteSummaryOptions(w io.Writer, r *Run, o SummaryOptions) error {
	bw := bufio.NewWriter(w)
	s := &summary{w: bw, r: r, o: o}
	s.header()
	s.steps()
	s.events()
	s.flows()
	s.artifacts()
	return bw.Flush()
}

type summary struct {
	w *bufio.Writer
	r *Run
	o SummaryOptions
}

func (s *summary) paint(text, color string) string {
	if !s.o.Color {
		return text
	}
	return color + text + ansiReset
}

// grid prints rows in aligned columns (text/tabwriter), each row followed
// by its notes (if any) indented on lines of their own, outside the columns.
func (s *summary) grid(header []string, rows [][]string, notes [][]string) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, row := range append([][]string{header}, rows...) {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = cell(c)
		}
		fmt.Fprintln(tw, "  "+strings.Join(cells, "\t"))
	}
	tw.Flush()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for i, l := range lines {
		fmt.Fprintln(s.w, strings.TrimRight(l, " "))
		if i > 0 && i-1 < len(notes) {
			for _, n := range notes[i-1] {
				fmt.Fprintln(s.w, "      "+n)
			}
		}
	}
}

func (s *summary) header() {
	r := s.r
	verdict := r.Verdict()
	color := ansiGreen
	if verdict != "PASS" {
		color = ansiRed
	}
	name := r.Scenario
	if name == "" {
		name = "(unnamed scenario)"
	}
	line := s.paint(verdict, color) + "  " + name
	if r.File != "" {
		line += "  (" + r.File + ")"
	}
	if d := r.Duration(); d > 0 {
		line += "  " + human(d)
	}
	fmt.Fprintln(s.w, line)
	var counts []string
	if n := len(r.Steps); n > 0 {
		c := map[string]int{}
		for _, st := range r.Steps {
			c[st.Status]++
		}
		part := fmt.Sprintf("%d steps: %d passed", n, c[StatusPass])
		for _, k := range []string{StatusFail, StatusError, StatusSkipped} {
			if c[k] > 0 {
				part += fmt.Sprintf(", %d %s", c[k], map[string]string{StatusFail: "failed", StatusError: "errors", StatusSkipped: "skipped"}[k])
			}
		}
		counts = append(counts, part)
	}
	if n := len(r.Flows); n > 0 {
		counts = append(counts, plural(n, "flow", "flows"))
	}
	if n := len(r.Events); n > 0 {
		counts = append(counts, plural(n, "event", "events"))
	}
	if len(counts) > 0 {
		fmt.Fprintln(s.w, strings.Join(counts, "; "))
	}
	if r.Description != "" {
		fmt.Fprintln(s.w, oneLine(r.Description))
	}
	if r.Error != "" {
		fmt.Fprintln(s.w, s.paint("error: ", color)+oneLine(r.Error))
	}
}

func (s *summary) steps() {
	r := s.r
	if len(r.Steps) == 0 {
		return
	}
	fmt.Fprintln(s.w, "\nSTEPS")
	var rows [][]string
	var notes [][]string
	for _, st := range r.Steps {
		status := st.Status
		if st.Failed() {
			status = strings.ToUpper(status)
		}
		dur := "-"
		if !st.Start.IsZero() && !st.End.IsZero() {
			dur = human(st.Duration())
		}
		rows = append(rows, []string{fmt.Sprint(st.Index), st.Name, st.Action, status, dur})
		var n []string
		if st.Failed() || st.Status == StatusSkipped {
			n = failureLines(st)
		}
		notes = append(notes, n)
	}
	s.grid([]string{"#", "NAME", "ACTION", "STATUS", "TIME"}, rows, notes)
}

// failureLines says why a step failed: its message, then each failing
// assertion with its line, expected and seen values.
func failureLines(st Step) []string {
	var out []string
	msg := st.Message
	for _, l := range strings.Split(st.Message, "\n") {
		if l = oneLine(l); l != "" {
			out = append(out, l) // one condition per line
		}
	}
	for _, a := range st.Asserts {
		if a.Passed {
			continue
		}
		l := oneLine(a.Expr)
		if a.Line > 0 {
			l = fmt.Sprintf("line %d: %s", a.Line, l)
		}
		if ev := expectedSeen(a); ev != "" && !strings.Contains(msg, ev) {
			l += ": " + ev
		}
		out = append(out, l)
	}
	if len(out) == 0 && st.Failed() {
		out = append(out, "(no message)")
	}
	return out
}

func expectedSeen(a Assert) string {
	if a.Expected == "" && a.Seen == "" {
		return ""
	}
	return "expected " + orDash(oneLine(a.Expected)) + ", seen " + orDash(oneLine(a.Seen))
}

// beforeCleanup leaves out the gateways' events after the runner's
// "cleanup" event (withdrawals, sessions closing, DELETEs of the
// teardown), errors excepted; it returns how many it left out.
func beforeCleanup(events []Event) (kept []Event, teardown int) {
	cleaning := false
	for _, e := range events {
		if e.Source == "runner" && e.Type == "cleanup" {
			cleaning = true
		}
		if cleaning && e.Source != "runner" && e.Type != "error" {
			teardown++
			continue
		}
		kept = append(kept, e)
	}
	return kept, teardown
}

func (s *summary) events() {
	r := s.r
	evs, teardown := beforeCleanup(sortedEvents(r))
	shown, omitted := interestingEvents(evs)
	if len(shown) == 0 && omitted == 0 && teardown == 0 {
		return
	}
	max := s.o.MaxEvents
	if max == 0 {
		max = 60
	}
	cut := 0
	if max > 0 && len(shown) > max {
		cut = len(shown) - max
		shown = shown[:max]
	}
	head := "\nTUNNEL EVENTS"
	var notes []string
	if omitted > 0 {
		notes = append(notes, fmt.Sprintf("%d routine events omitted", omitted))
	}
	if cut > 0 {
		notes = append(notes, fmt.Sprintf("%d more not shown", cut))
	}
	if teardown > 0 {
		notes = append(notes, fmt.Sprintf("%d during the cleanup", teardown))
	}
	if len(notes) > 0 {
		head += " (" + strings.Join(notes, "; ") + ")"
	}
	fmt.Fprintln(s.w, head)
	if len(shown) == 0 {
		return
	}
	var rows [][]string
	for _, e := range shown {
		rows = append(rows, []string{offset(r, e.Time), orDash(e.Source), eventTunnel(e), DescribeEvent(e)})
	}
	s.grid([]string{"TIME", "GW", "TUNNEL", "EVENT"}, rows, nil)
}

func (s *summary) flows() {
	r := s.r
	if len(r.Flows) == 0 {
		return
	}
	fmt.Fprintln(s.w, "\nFLOWS")
	var rows [][]string
	for _, f := range r.Flows {
		at, gap := "-", "-"
		if !f.MaxGapFrom.IsZero() {
			at = offset(r, f.MaxGapFrom) + " .. " + offset(r, f.MaxGapTo)
		}
		if f.MaxGap > 0 {
			gap = human(f.MaxGap)
		}
		rows = append(rows, []string{f.Name, orDash(f.Proto), orDash(f.From) + " -> " + orDash(f.To),
			fmt.Sprint(f.Sent), fmt.Sprint(f.Received), fmt.Sprint(f.Lost), fmt.Sprintf("%.1f%%", f.LossPct),
			fmt.Sprint(f.Reordered), fmt.Sprint(f.Duplicates), gap, at})
	}
	s.grid([]string{"NAME", "PROTO", "FROM -> TO", "SENT", "RECV", "LOST", "LOSS", "REORD", "DUP", "MAX GAP", "AT"}, rows, nil)
}

func (s *summary) artifacts() {
	r := s.r
	if len(r.Artifacts) == 0 {
		return
	}
	fmt.Fprintln(s.w, "\nARTIFACTS")
	var rows [][]string
	for _, a := range r.Artifacts {
		p := a.Path
		if p == "" {
			p = a.Name
		}
		rows = append(rows, []string{p, a.What})
	}
	s.grid([]string{"FILE", "WHAT"}, rows, nil)
}

// cell makes text safe for one tabwriter cell on one line.
func cell(s string) string {
	return strings.ReplaceAll(oneLine(s), "\t", " ")
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
