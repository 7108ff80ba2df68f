package report

import (
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
)

// WriteHTML writes a self-contained HTML page: the verdict, the picture of
// WriteSVG inline, then tables of the steps (with their assertions), the
// flows, the tunnel events, the variables and the artifacts (linked
// relative to the output folder). No script, no style sheet or font from
// elsewhere.
func WriteHTML(w io.Writer, r *Run) error {
	page := htmlPage{
		Verdict:     r.Verdict(),
		Scenario:    r.Scenario,
		File:        r.File,
		Description: r.Description,
		Error:       r.Error,
		// The SVG is built by this package with every text escaped.
		SVG: template.HTML(renderSVG(r, false)),
	}
	if page.Scenario == "" {
		page.Scenario = "(unnamed scenario)"
	}
	if !r.Start.IsZero() {
		page.Started = r.Start.UTC().Format("2006-01-02 15:04:05.000 UTC")
	}
	if d := r.Duration(); d > 0 {
		page.Duration = human(d)
	}
	for _, s := range r.Steps {
		hs := htmlStep{Step: s, Offset: offset(r, s.Start), Duration: "-", Failed: s.Failed(), Status: s.Status}
		if !s.Start.IsZero() && !s.End.IsZero() {
			hs.Duration = human(s.Duration())
		}
		if s.Failed() {
			hs.Status = strings.ToUpper(s.Status)
		}
		page.Steps = append(page.Steps, hs)
	}
	for _, f := range r.Flows {
		hf := htmlFlow{Flow: f, LossPct: fmt.Sprintf("%.1f%%", f.LossPct), MaxGap: "-", At: "-"}
		if f.MaxGap > 0 {
			hf.MaxGap = human(f.MaxGap)
		}
		if !f.MaxGapFrom.IsZero() {
			hf.At = offset(r, f.MaxGapFrom) + " .. " + offset(r, f.MaxGapTo)
		}
		page.Flows = append(page.Flows, hf)
	}
	shown, omitted := interestingEvents(sortedEvents(r))
	page.Omitted = omitted
	for _, e := range shown {
		page.Events = append(page.Events, htmlEvent{Offset: offset(r, e.Time), Source: orDash(e.Source),
			Tunnel: eventTunnel(e), Text: DescribeEvent(e), Runner: e.Source == "runner"})
	}
	keys := make([]string, 0, len(r.Vars))
	for k := range r.Vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		page.Vars = append(page.Vars, [2]string{k, r.Vars[k]})
	}
	for _, a := range r.Artifacts {
		page.Artifacts = append(page.Artifacts, htmlArtifact{Artifact: a, Link: localPath(a.Path)})
	}
	return pageTemplate.Execute(w, page)
}

// localPath is true for a path relative to the output folder (no scheme,
// not absolute), the only kind the page links to.
func localPath(p string) bool {
	return p != "" && !strings.Contains(p, ":") && !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "\\")
}

type htmlPage struct {
	Verdict, Scenario, File, Description, Error string
	Started, Duration                           string
	SVG                                         template.HTML
	Steps                                       []htmlStep
	Flows                                       []htmlFlow
	Events                                      []htmlEvent
	Omitted                                     int
	Vars                                        [][2]string
	Artifacts                                   []htmlArtifact
}

type htmlStep struct {
	Step
	Offset, Duration, Status string
	Failed                   bool
}

type htmlFlow struct {
	Flow
	LossPct, MaxGap, At string
}

type htmlEvent struct {
	Offset, Source, Tunnel, Text string
	Runner                       bool
}

type htmlArtifact struct {
	Artifact
	Link bool
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Verdict}} {{.Scenario}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px 0; display: flex; align-items: center; gap: 12px; }
h2 { font-size: 16px; margin: 28px 0 8px 0; color: #37474f; }
.verdict { color: #fff; border-radius: 4px; padding: 2px 10px; font-size: 18px; }
.verdict.PASS { background: #2e9d4f; }
.verdict.FAIL { background: #c62828; }
.meta { color: #555; font-size: 13px; margin: 2px 0; }
.error { color: #b71c1c; background: #ffebee; border: 1px solid #ef9a9a; padding: 8px 12px; border-radius: 4px; white-space: pre-wrap; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
.picture { overflow-x: auto; margin-top: 16px; border: 1px solid #e0e0e0; border-radius: 4px; }
.picture svg { display: block; max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid #eceff1; vertical-align: top; }
th { color: #546e7a; font-weight: 600; border-bottom: 1px solid #b0bec5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.mono, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
tr.fail td { background: #fff5f5; }
.st-pass { color: #2e7d32; } .st-FAIL, .st-ERROR { color: #c62828; font-weight: bold; } .st-skipped { color: #757575; }
.why { color: #b71c1c; padding-left: 8px; }
.assert-ok { color: #2e7d32; } .assert-bad { color: #c62828; }
tr.runner td { color: #6a1b9a; }
details summary { cursor: pointer; color: #37474f; }
</style>
</head>
<body>
<h1><span class="verdict {{.Verdict}}">{{.Verdict}}</span> {{.Scenario}}</h1>
{{if .File}}<p class="meta">scenario file <span class="mono">{{.File}}</span></p>{{end}}
{{if .Started}}<p class="meta">started {{.Started}}{{if .Duration}}, ran {{.Duration}}{{end}}</p>{{end}}
{{if .Description}}<p class="meta">{{.Description}}</p>{{end}}
{{if .Error}}<div class="error">run aborted: {{.Error}}</div>{{end}}
<div class="picture">
{{.SVG}}
</div>
{{if .Steps}}
<h2>Steps</h2>
<table>
<tr><th>#</th><th>name</th><th>action</th><th>line</th><th>start</th><th>time</th><th>status</th></tr>
{{range .Steps}}<tr{{if .Failed}} class="fail"{{end}}><td class="num">{{.Index}}</td><td>{{.Name}}</td><td class="mono">{{.Action}}</td><td class="num">{{if .Line}}{{.Line}}{{end}}</td><td class="mono">{{.Offset}}</td><td class="num">{{.Duration}}</td><td class="st-{{.Status}}">{{.Status}}</td></tr>
{{if .Message}}<tr{{if .Failed}} class="fail"{{end}}><td></td><td colspan="6" class="why">{{.Message}}</td></tr>
{{end}}{{range .Asserts}}<tr{{if not .Passed}} class="fail"{{end}}><td></td><td colspan="6" class="mono {{if .Passed}}assert-ok{{else}}assert-bad{{end}}">{{if .Passed}}✓{{else}}✗{{end}} {{if .Line}}line {{.Line}}: {{end}}{{.Expr}}{{if or .Expected .Seen}} — expected {{.Expected}}, seen {{.Seen}}{{end}}</td></tr>
{{end}}{{end}}</table>
{{end}}
{{if .Flows}}
<h2>Flows</h2>
<table>
<tr><th>name</th><th>proto</th><th>from → to</th><th>sent</th><th>received</th><th>lost</th><th>loss</th><th>reordered</th><th>dup</th><th>max gap</th><th>at</th></tr>
{{range .Flows}}<tr><td>{{.Name}}</td><td>{{.Proto}}</td><td class="mono">{{.From}} → {{.To}}</td><td class="num">{{.Sent}}</td><td class="num">{{.Received}}</td><td class="num">{{.Lost}}</td><td class="num">{{.LossPct}}</td><td class="num">{{.Reordered}}</td><td class="num">{{.Duplicates}}</td><td class="num">{{.MaxGap}}</td><td class="mono">{{.At}}</td></tr>
{{end}}</table>
{{end}}
{{if or .Events .Omitted}}
<h2>Tunnel events</h2>
<details open>
<summary>{{len .Events}} shown{{if .Omitted}}, {{.Omitted}} routine omitted (state transitions, DPD probes, BGP handshakes, paths learned, steps, tunnel UP after phase 2 up){{end}}</summary>
<table>
<tr><th>time</th><th>gateway</th><th>tunnel</th><th>event</th></tr>
{{range .Events}}<tr{{if .Runner}} class="runner"{{end}}><td class="mono">{{.Offset}}</td><td>{{.Source}}</td><td>{{.Tunnel}}</td><td>{{.Text}}</td></tr>
{{end}}</table>
</details>
{{end}}
{{if .Vars}}
<h2>Variables</h2>
<details>
<summary>{{len .Vars}} variables</summary>
<table>
{{range .Vars}}<tr><td class="mono">{{index . 0}}</td><td class="mono">{{index . 1}}</td></tr>
{{end}}</table>
</details>
{{end}}
{{if .Artifacts}}
<h2>Artifacts</h2>
<table>
{{range .Artifacts}}<tr><td class="mono">{{if .Link}}<a href="{{.Path}}">{{.Path}}</a>{{else}}{{.Path}}{{end}}</td><td>{{.What}}</td></tr>
{{end}}</table>
{{end}}
</body>
</html>
`))
