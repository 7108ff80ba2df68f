package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
)

// FormatVersion names the JSON format WriteJSON writes.
const FormatVersion = "vpnlab-report/1"

// timeLayout is RFC 3339 with nanoseconds, always nine digits.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

type jsonRun struct {
	Format      string             `json:"format"`
	Scenario    string             `json:"scenario"`
	File        string             `json:"file,omitempty"`
	Description string             `json:"description,omitempty"`
	Vars        map[string]string  `json:"vars,omitempty"`
	Start       string             `json:"start,omitempty"`
	End         string             `json:"end,omitempty"`
	DurationS   float64            `json:"duration_s"`
	Passed      bool               `json:"passed"`
	Verdict     string             `json:"verdict"`
	Error       string             `json:"error,omitempty"`
	Gateways    []string           `json:"gateways"`
	Tunnels     []string           `json:"tunnels"`
	Steps       []jsonStep         `json:"steps"`
	Events      []jsonEvent        `json:"events"`
	Flows       []jsonFlow         `json:"flows"`
	Artifacts   []jsonArtifact     `json:"artifacts"`
	Metrics     []jsonMetricSample `json:"metrics"`
}

type jsonStep struct {
	Index     int          `json:"index"`
	Name      string       `json:"name"`
	Action    string       `json:"action,omitempty"`
	Line      int          `json:"line,omitempty"`
	Start     string       `json:"start,omitempty"`
	End       string       `json:"end,omitempty"`
	OffsetS   float64      `json:"offset_s"`
	DurationS float64      `json:"duration_s"`
	Status    string       `json:"status"`
	Message   string       `json:"message,omitempty"`
	Asserts   []jsonAssert `json:"asserts"`
}

type jsonAssert struct {
	Expr     string `json:"expr"`
	Line     int    `json:"line,omitempty"`
	Passed   bool   `json:"passed"`
	Expected string `json:"expected,omitempty"`
	Seen     string `json:"seen,omitempty"`
}

type jsonEvent struct {
	Time    string            `json:"time"`
	OffsetS float64           `json:"offset_s"`
	Source  string            `json:"source"`
	Tunnel  string            `json:"tunnel,omitempty"`
	Type    string            `json:"type"`
	Detail  map[string]string `json:"detail,omitempty"`
	Text    string            `json:"text"`
}

type jsonFlow struct {
	Name        string       `json:"name"`
	Proto       string       `json:"proto,omitempty"`
	From        string       `json:"from,omitempty"`
	To          string       `json:"to,omitempty"`
	Start       string       `json:"start,omitempty"`
	End         string       `json:"end,omitempty"`
	OffsetS     float64      `json:"offset_s"`
	Sent        uint64       `json:"sent"`
	Received    uint64       `json:"received"`
	Lost        uint64       `json:"lost"`
	Reordered   uint64       `json:"reordered"`
	Duplicates  uint64       `json:"duplicates"`
	LossPct     float64      `json:"loss_pct"`
	MaxGapS     float64      `json:"max_gap_s"`
	MaxGapFrom  string       `json:"max_gap_from,omitempty"`
	MaxGapTo    string       `json:"max_gap_to,omitempty"`
	MaxGapFromS *float64     `json:"max_gap_from_offset_s,omitempty"`
	MaxGapToS   *float64     `json:"max_gap_to_offset_s,omitempty"`
	Series      []jsonBucket `json:"series"`
}

type jsonBucket struct {
	Start    string  `json:"start"`
	OffsetS  float64 `json:"offset_s"`
	Sent     uint64  `json:"sent"`
	Received uint64  `json:"received"`
}

type jsonArtifact struct {
	Name string `json:"name"`
	Path string `json:"path"`
	What string `json:"what,omitempty"`
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(timeLayout)
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", field, err)
	}
	return t, nil
}

func seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1e9) / 1e9
}

// WriteJSON writes the whole run as one JSON document (see the package
// documentation for the format), indented, events in time order.
func WriteJSON(w io.Writer, r *Run) error {
	j := jsonRun{
		Format: FormatVersion, Scenario: r.Scenario, File: r.File, Description: r.Description, Vars: r.Vars,
		Start: formatTime(r.Start), End: formatTime(r.End), DurationS: seconds(r.Duration()),
		Passed: r.Passed, Verdict: r.Verdict(), Error: r.Error,
		Gateways: nonNil(r.Gateways), Tunnels: nonNil(r.Tunnels),
		Steps: []jsonStep{}, Events: []jsonEvent{}, Flows: []jsonFlow{}, Artifacts: []jsonArtifact{},
	}
	for _, s := range r.Steps {
		js := jsonStep{Index: s.Index, Name: s.Name, Action: s.Action, Line: s.Line,
			Start: formatTime(s.Start), End: formatTime(s.End), OffsetS: offsetSeconds(r, s.Start),
			DurationS: seconds(s.Duration()), Status: s.Status, Message: s.Message, Asserts: []jsonAssert{}}
		for _, a := range s.Asserts {
			js.Asserts = append(js.Asserts, jsonAssert(a))
		}
		j.Steps = append(j.Steps, js)
	}
	for _, e := range sortedEvents(r) {
		j.Events = append(j.Events, jsonEvent{Time: formatTime(e.Time), OffsetS: offsetSeconds(r, e.Time),
			Source: e.Source, Tunnel: e.Tunnel, Type: e.Type, Detail: e.Detail, Text: DescribeEvent(e)})
	}
	for _, f := range r.Flows {
		jf := jsonFlow{Name: f.Name, Proto: f.Proto, From: f.From, To: f.To,
			Start: formatTime(f.Start), End: formatTime(f.End), OffsetS: offsetSeconds(r, f.Start),
			Sent: f.Sent, Received: f.Received, Lost: f.Lost, Reordered: f.Reordered, Duplicates: f.Duplicates,
			LossPct: f.LossPct, MaxGapS: seconds(f.MaxGap),
			MaxGapFrom: formatTime(f.MaxGapFrom), MaxGapTo: formatTime(f.MaxGapTo), Series: []jsonBucket{}}
		if !f.MaxGapFrom.IsZero() {
			from, to := offsetSeconds(r, f.MaxGapFrom), offsetSeconds(r, f.MaxGapTo)
			jf.MaxGapFromS, jf.MaxGapToS = &from, &to
		}
		for _, b := range f.Series {
			jf.Series = append(jf.Series, jsonBucket{Start: formatTime(b.Start), OffsetS: offsetSeconds(r, b.Start), Sent: b.Sent, Received: b.Received})
		}
		j.Flows = append(j.Flows, jf)
	}
	for _, a := range r.Artifacts {
		j.Artifacts = append(j.Artifacts, jsonArtifact(a))
	}
	j.Metrics = metricsToJSON(r)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(j)
}

// ReadJSON reads a run written by WriteJSON (to render it again, e.g. as
// HTML). Derived fields (offsets, verdict, text) are ignored; a flow's
// max gap is read with nanosecond precision.
func ReadJSON(rd io.Reader) (*Run, error) {
	var j jsonRun
	dec := json.NewDecoder(rd)
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if j.Format != FormatVersion {
		return nil, fmt.Errorf("report: format %q, want %q", j.Format, FormatVersion)
	}
	r := &Run{Scenario: j.Scenario, File: j.File, Description: j.Description, Vars: j.Vars,
		Passed: j.Passed, Error: j.Error, Gateways: j.Gateways, Tunnels: j.Tunnels}
	var errs []error
	tm := func(field, s string) time.Time {
		t, err := parseTime(field, s)
		if err != nil {
			errs = append(errs, err)
		}
		return t
	}
	r.Start, r.End = tm("start", j.Start), tm("end", j.End)
	for _, s := range j.Steps {
		st := Step{Index: s.Index, Name: s.Name, Action: s.Action, Line: s.Line,
			Start: tm("steps.start", s.Start), End: tm("steps.end", s.End), Status: s.Status, Message: s.Message}
		for _, a := range s.Asserts {
			st.Asserts = append(st.Asserts, Assert(a))
		}
		r.Steps = append(r.Steps, st)
	}
	for _, e := range j.Events {
		r.Events = append(r.Events, Event{Time: tm("events.time", e.Time), Source: e.Source, Tunnel: e.Tunnel, Type: e.Type, Detail: e.Detail})
	}
	for _, f := range j.Flows {
		fl := Flow{Name: f.Name, Proto: f.Proto, From: f.From, To: f.To,
			Start: tm("flows.start", f.Start), End: tm("flows.end", f.End),
			Sent: f.Sent, Received: f.Received, Lost: f.Lost, Reordered: f.Reordered, Duplicates: f.Duplicates,
			LossPct: f.LossPct, MaxGap: time.Duration(math.Round(f.MaxGapS * 1e9)),
			MaxGapFrom: tm("flows.max_gap_from", f.MaxGapFrom), MaxGapTo: tm("flows.max_gap_to", f.MaxGapTo)}
		for _, b := range f.Series {
			fl.Series = append(fl.Series, Bucket{Start: tm("flows.series.start", b.Start), Sent: b.Sent, Received: b.Received})
		}
		r.Flows = append(r.Flows, fl)
	}
	for _, a := range j.Artifacts {
		r.Artifacts = append(r.Artifacts, Artifact(a))
	}
	r.Metrics = metricsFromJSON(j.Metrics, tm)
	if len(errs) > 0 {
		return nil, fmt.Errorf("report: %w", errs[0])
	}
	return r, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
