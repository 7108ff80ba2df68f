package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// The picture, top to bottom: a header (verdict, scenario, duration, error),
// a lane with the steps (boxes coloured by status), a lane with the labels of
// the runner's events (impair, restore, start, stop, kill; each also a
// vertical line through the whole picture), a band per gateway and tunnel
// coloured by its state, a "BGP active path" band per gateway and routed
// prefix coloured by the tunnel that carries it, a chart per flow (a bar per
// bucket: delivered green, lost red; the longest gap shaded and labelled),
// the time axis in seconds from the start, and the legend. Every shape has a
// <title> tooltip.

const (
	svgWidth   = 1200
	plotLeft   = 210.0
	plotRight  = 1180.0
	bandHeight = 20.0
	bandGap    = 6.0
	flowHeight = 44.0
	flowLabel  = 16.0
	fontFamily = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
)

// WriteSVG writes the failover picture as a standalone SVG document.
func WriteSVG(w io.Writer, r *Run) error {
	_, err := io.WriteString(w, renderSVG(r, true))
	return err
}

// picture holds what renderSVG derives from the run.
type picture struct {
	r          *Run
	start, end time.Time
	ok         bool
	events     []Event
	tunnels    []string
	tbands     []tunnelBand
	rbands     []routeBand
	markers    []marker
	markerRow  []int
	markerRows int
	b          strings.Builder
}

// renderSVG draws the picture; standalone adds the XML declaration and
// namespace a .svg file needs (an <svg> inside HTML has neither).
func renderSVG(r *Run, standalone bool) string {
	p := &picture{r: r, events: sortedEvents(r), tunnels: tunnelsOf(r)}
	p.start, p.end, p.ok = timeRange(r)
	if p.ok {
		p.tbands = tunnelBands(r, p.events, p.start, p.end)
		p.rbands = routeBands(r, p.events, p.start, p.end)
		p.markers = markers(p.events)
		p.placeMarkerLabels()
	}
	p.draw(standalone)
	return p.b.String()
}

func (p *picture) printf(format string, args ...any) { fmt.Fprintf(&p.b, format, args...) }

// x maps a time to a horizontal coordinate in the plot.
func (p *picture) x(t time.Time) float64 {
	t = clampTime(t, p.start, p.end)
	return plotLeft + (plotRight-plotLeft)*t.Sub(p.start).Seconds()/p.end.Sub(p.start).Seconds()
}

// textWidth estimates the width of text in pixels.
func textWidth(s string, size float64) float64 {
	return float64(len([]rune(s))) * size * 0.6
}

// fit shortens s to fit in px pixels ("" if not even one letter and the
// ellipsis fit).
func fit(s string, px, size float64) string {
	if textWidth(s, size) <= px {
		return s
	}
	rs := []rune(s)
	n := int(px/(size*0.6)) - 1
	if n < 3 || n < len(rs)/4 {
		return "" // "n…" says nothing: the tooltip has the whole text
	}
	return string(rs[:min(n, len(rs))]) + "…"
}

// esc makes text safe in XML and HTML: escaped, and without the characters
// XML cannot carry.
func esc(s string) string { return html.EscapeString(xmlSafe(s)) }

// placeMarkerLabels puts each marker's label on the first row where it does
// not overlap the previous label (at most 4 rows, then they may overlap).
func (p *picture) placeMarkerLabels() {
	var ends []float64
	p.markerRow = make([]int, len(p.markers))
	for i, m := range p.markers {
		x := p.x(m.at) + 3
		row := -1
		for j, e := range ends {
			if x > e {
				row = j
				break
			}
		}
		if row < 0 {
			if len(ends) < 4 {
				ends = append(ends, 0)
				row = len(ends) - 1
			} else {
				row = i % 4
			}
		}
		ends[row] = x + textWidth(m.label, 11) + 6
		p.markerRow[i] = row
	}
	p.markerRows = len(ends)
}

func (p *picture) draw(standalone bool) {
	r := p.r
	// Vertical layout.
	y := 56.0 + 18*float64(len(p.headerNotes()))
	headerH := y
	var stepsY, markersY, tunnelsY, routesY, flowsY, axisY, legendY float64
	if p.ok {
		stepsY = y + 8
		y = stepsY + 22
		markersY = y + 4
		if p.markerRows > 0 {
			y = markersY + float64(p.markerRows)*14 + 4
		}
		tunnelsY = y + 8
		y = tunnelsY + 18 + float64(len(p.tbands))*(bandHeight+bandGap)
		routesY = y + 6
		if len(p.rbands) > 0 {
			y = routesY + 18 + float64(len(p.rbands))*(bandHeight+bandGap)
		}
		flowsY = y + 6
		if len(r.Flows) > 0 {
			y = flowsY + 18 + float64(len(r.Flows))*(flowLabel+flowHeight+10)
		}
		axisY = y + 4
		legendY = axisY + 34
		y = legendY + p.legendHeight()
	} else {
		y = headerH + 40
	}
	height := math.Ceil(y + 8)

	if standalone {
		p.printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
		p.printf("<svg xmlns=\"http://www.w3.org/2000/svg\" ")
	} else {
		p.printf("<svg ")
	}
	p.printf("class=\"vl-picture\" width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\" font-family=\"%s\" font-size=\"11\" role=\"img\">\n",
		svgWidth, height, svgWidth, height, esc(fontFamily))
	p.printf("<title>%s</title>\n", esc(r.Verdict()+" "+r.Scenario))
	p.printf("<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%.0f\" fill=\"#ffffff\"/>\n", svgWidth, height)
	p.header()
	if !p.ok {
		p.printf("<text x=\"12\" y=\"%.1f\" font-size=\"13\" fill=\"#555\">Nothing was recorded: no steps, events or flows.</text>\n", headerH+20)
		p.printf("</svg>\n")
		return
	}
	p.grid(stepsY, axisY)
	p.steps(stepsY)
	p.tunnelSection(tunnelsY)
	p.routeSection(routesY)
	p.flowSection(flowsY)
	p.stepLines(stepsY+20, axisY)
	p.markerLines(markersY, axisY)
	p.axis(axisY)
	p.legend(legendY)
	p.printf("</svg>\n")
}

func (p *picture) header() {
	r := p.r
	verdict := r.Verdict()
	fill := "#2e9d4f"
	if verdict != "PASS" {
		fill = "#c62828"
	}
	p.printf("<rect x=\"12\" y=\"12\" width=\"64\" height=\"30\" rx=\"4\" fill=\"%s\"/>\n", fill)
	p.printf("<text x=\"44\" y=\"32.5\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\" fill=\"#ffffff\">%s</text>\n", verdict)
	name := r.Scenario
	if name == "" {
		name = "(unnamed scenario)"
	}
	p.printf("<text x=\"90\" y=\"27\" font-size=\"17\" font-weight=\"bold\" fill=\"#222\">%s</text>\n", esc(fit(name, svgWidth-110, 17)))
	var parts []string
	if r.File != "" {
		parts = append(parts, r.File)
	}
	if d := r.Duration(); d > 0 {
		parts = append(parts, human(d))
	}
	if !r.Start.IsZero() {
		parts = append(parts, "started "+r.Start.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	failed := 0
	for _, s := range r.Steps {
		if s.Failed() {
			failed++
		}
	}
	if len(r.Steps) > 0 {
		parts = append(parts, fmt.Sprintf("%s, %d failed", plural(len(r.Steps), "step", "steps"), failed))
	}
	if len(r.Flows) > 0 {
		parts = append(parts, plural(len(r.Flows), "flow", "flows"))
	}
	p.printf("<text x=\"90\" y=\"45\" font-size=\"12\" fill=\"#555\">%s</text>\n", esc(fit(strings.Join(parts, " · "), svgWidth-110, 12)))
	for i, n := range p.headerNotes() {
		p.printf("<text x=\"12\" y=\"%d\" font-size=\"12\" font-weight=\"bold\" fill=\"#c62828\">%s</text>\n",
			66+18*i, esc(fit(n, svgWidth-24, 12)))
	}
}

// headerNotes are the red lines under the header: the run's error, and
// why the first failed step failed.
func (p *picture) headerNotes() []string {
	var notes []string
	if p.r.Error != "" {
		notes = append(notes, "error: "+oneLine(p.r.Error))
	}
	var failed []Step
	for _, s := range p.r.Steps {
		if s.Failed() {
			failed = append(failed, s)
		}
	}
	if len(failed) > 0 {
		s := failed[0]
		n := fmt.Sprintf("step %d %s %s: %s", s.Index, s.Name, s.Status, stepMessage(s))
		if len(failed) > 1 {
			n += fmt.Sprintf(" (and %d more failed)", len(failed)-1)
		}
		notes = append(notes, n)
	}
	return notes
}

// niceStep picks a tick interval in seconds giving at most about 12 ticks.
func niceStep(total float64) float64 {
	for _, s := range []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400} {
		if total/s <= 12 {
			return s
		}
	}
	return math.Ceil(total/12/86400) * 86400
}

func (p *picture) ticks() []float64 {
	total := p.end.Sub(p.start).Seconds()
	step := niceStep(total)
	var ts []float64
	for i := 0; ; i++ {
		t := float64(i) * step
		if t > total+1e-9 {
			break
		}
		ts = append(ts, t)
	}
	return ts
}

func (p *picture) tickX(sec float64) float64 {
	return plotLeft + (plotRight-plotLeft)*sec/p.end.Sub(p.start).Seconds()
}

func (p *picture) grid(top, bottom float64) {
	p.printf("<g stroke=\"#e6e9ed\" stroke-width=\"1\">\n")
	for _, t := range p.ticks() {
		x := p.tickX(t)
		p.printf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, top, x, bottom)
	}
	p.printf("</g>\n")
}

func (p *picture) sectionTitle(y float64, title string) {
	p.printf("<text x=\"12\" y=\"%.1f\" font-size=\"12\" font-weight=\"bold\" fill=\"#37474f\">%s</text>\n", y+12, esc(title))
	p.printf("<line x1=\"12\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#cfd8dc\"/>\n", y+16, plotRight, y+16)
}

func (p *picture) rowLabel(y float64, text string, bold bool) {
	weight := ""
	if bold {
		weight = " font-weight=\"bold\""
	}
	p.printf("<text x=\"12\" y=\"%.1f\" font-size=\"12\"%s fill=\"#222\">%s</text>\n", y, weight, esc(fit(text, plotLeft-20, 12)))
}

// box draws a rectangle from time a to b with a tooltip and, if it fits, a
// label.
func (p *picture) box(a, b time.Time, y, h float64, fill, stroke, label, labelColor, title string) {
	x0, x1 := p.x(a), p.x(b)
	p.boxAt(x0, math.Max(x1-x0, 1), y, h, fill, stroke, label, labelColor, title)
}

func (p *picture) boxAt(x0, w, y, h float64, fill, stroke, label, labelColor, title string) {
	strokeAttr := ""
	if stroke != "" {
		strokeAttr = fmt.Sprintf(" stroke=\"%s\" stroke-width=\"1\"", stroke)
	}
	p.printf("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"%s><title>%s</title></rect>\n",
		x0, y, w, h, fill, strokeAttr, esc(title))
	if l := fit(label, w-6, 11); l != "" && label != "" {
		p.printf("<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"%s\" pointer-events=\"none\">%s</text>\n", x0+3, y+h/2+4, labelColor, esc(l))
	}
}

func (p *picture) span(a, b time.Time) string {
	return offset(p.r, a) + " .. " + offset(p.r, b) + " (" + human(b.Sub(a)) + ")"
}

func (p *picture) steps(y float64) {
	p.rowLabel(y+15, "steps", true)
	// Failed steps last, on top of their neighbours.
	for _, failed := range []bool{false, true} {
		for _, s := range p.r.Steps {
			if s.Start.IsZero() || s.Failed() != failed {
				continue
			}
			p.step(s, y)
		}
	}
}

func (p *picture) step(s Step, y float64) {
	end := s.End
	if end.IsZero() || end.Before(s.Start) {
		end = p.end
	}
	fill, stroke, text := "#f5f5f5", "#9e9e9e", "#616161" // skipped, or not finished
	switch s.Status {
	case StatusPass:
		fill, stroke, text = "#e8f5e9", "#2e9d4f", "#1b5e20"
	case StatusFail:
		fill, stroke, text = "#ffcdd2", "#c62828", "#b71c1c"
	case StatusError:
		fill, stroke, text = "#ffe0b2", "#e65100", "#bf360c"
	}
	title := fmt.Sprintf("step %d %s: %s — %s, %s", s.Index, s.Name, s.Action, s.Status, p.span(s.Start, end))
	if s.Failed() {
		title += "\n" + strings.Join(failureLines(s), "\n")
	}
	x0 := p.x(s.Start)
	w := p.x(end) - x0
	if minW := map[bool]float64{false: 2, true: 6}[s.Failed()]; w < minW {
		x0, w = x0-(minW-w)/2, minW
	}
	label := fmt.Sprintf("%d %s", s.Index, s.Name)
	if textWidth(label, 11) > w-6 {
		label = fmt.Sprint(s.Index)
	}
	if !s.Failed() || textWidth(label, 11) <= w-6 {
		p.boxAt(x0, w, y+2, 18, fill, stroke, label, text, title)
		return
	}
	// A failed step too short for its label: the label beside it, on a
	// white background.
	p.boxAt(x0, w, y+2, 18, fill, stroke, "", text, title)
	label = fmt.Sprintf("✗ %d %s", s.Index, s.Name)
	tw := textWidth(label, 11)
	lx := x0 + w + 3
	if lx+tw > svgWidth-4 {
		lx = x0 - 3 - tw
	}
	p.printf("<g><title>%s</title><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"16\" fill=\"#ffffff\" fill-opacity=\"0.9\"/>", esc(title), lx-2, y+3, tw+4)
	p.printf("<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" font-weight=\"bold\" fill=\"%s\">%s</text></g>\n", lx, y+15, text, esc(label))
}

// stepLines draws each step's start as a dotted line through the picture.
func (p *picture) stepLines(top, bottom float64) {
	p.printf("<g class=\"vl-step-lines\" stroke=\"#78909c\" stroke-dasharray=\"2,3\" stroke-opacity=\"0.8\">\n")
	for _, s := range p.r.Steps {
		if s.Start.IsZero() {
			continue
		}
		x := p.x(s.Start)
		p.printf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, top, x, bottom)
	}
	p.printf("</g>\n")
}

func (p *picture) tunnelSection(y float64) {
	p.sectionTitle(y, "tunnel state")
	y += 18
	for _, b := range p.tbands {
		p.rowLabel(y+14, b.gateway+" "+b.tunnel, false)
		for _, s := range b.segs {
			st := styleOf(s.state)
			title := fmt.Sprintf("%s %s: %s, %s", b.gateway, b.tunnel, st.label, p.span(s.from, s.to))
			if s.why != "" {
				title += "\n" + s.why
			}
			p.box(s.from, s.to, y, bandHeight, st.fill, "", st.label, st.text, title)
		}
		y += bandHeight + bandGap
	}
}

func (p *picture) routeSection(y float64) {
	if len(p.rbands) == 0 {
		return
	}
	p.sectionTitle(y, "Routes: the decided route (via) and the tunnel carrying the packets (carried by)")
	y += 18
	for i, b := range p.rbands {
		verb := "via"
		if b.carried {
			verb = "carried by"
		}
		label := b.gateway + " " + b.prefix + " " + verb
		if b.carried && i > 0 && p.rbands[i-1].gateway == b.gateway && p.rbands[i-1].prefix == b.prefix {
			label = "  ↳ carried by" // under its decided route
		}
		p.rowLabel(y+14, label, false)
		for _, s := range b.segs {
			if len(s.tunnels) == 0 {
				what, label := "no route", "no route"
				switch {
				case b.carried && s.unknown:
					what, label = "not reported yet", "no data"
				case b.carried:
					what, label = "no tunnel with an SA pair: packets dropped", "none"
				}
				title := fmt.Sprintf("%s %s: %s, %s", b.gateway, b.prefix, what, p.span(s.from, s.to))
				if s.why != "" {
					title += "\n" + s.why
				}
				p.box(s.from, s.to, y, bandHeight, "#f5f5f5", "", label, "#9e9e9e", title)
				continue
			}
			// ECMP: one slice per tunnel.
			h := bandHeight / float64(len(s.tunnels))
			for i, tn := range s.tunnels {
				title := fmt.Sprintf("%s %s %s %s, %s", b.gateway, b.prefix, verb, strings.Join(s.tunnels, " + "), p.span(s.from, s.to))
				if s.why != "" {
					title += "\n" + s.why
				}
				label := tn
				if h < 12 {
					label = ""
				}
				fill := tunnelColor(p.tunnels, tn)
				p.box(s.from, s.to, y+float64(i)*h, h, fill, "", label, "#ffffff", title)
			}
		}
		y += bandHeight + bandGap
	}
}

func (p *picture) markerLines(y, bottom float64) {
	if len(p.markers) == 0 {
		return
	}
	p.rowLabel(y+11, "runner", true)
	for i, m := range p.markers {
		x := p.x(m.at)
		ly := y + float64(p.markerRow[i])*14 + 11
		p.printf("<g class=\"vl-marker\"><title>%s</title>", esc(offset(p.r, m.at)+" "+m.title))
		p.printf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.5\" stroke-opacity=\"0.75\"/>", x, ly-9, x, bottom, m.color)
		anchor, lx := "start", x+3
		if x+3+textWidth(m.label, 11) > float64(svgWidth) {
			anchor, lx = "end", x-3
		}
		p.printf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"11\" fill=\"%s\">%s</text></g>\n", lx, ly, anchor, m.color, esc(m.label))
	}
}
