package report

import (
	"fmt"
	"math"
	"time"
)

// The flow charts of the picture (svg.go): a bar per time bucket, the
// longest outage shaded.

func (p *picture) flowSection(y float64) {
	flows := p.r.Flows
	if len(flows) == 0 {
		return
	}
	p.sectionTitle(y, "flows (delivered share per interval: green received, red lost)")
	y += 18
	for _, f := range flows {
		top := y + flowLabel
		p.rowLabel(top+12, f.Name, true)
		p.rowLabel(top+26, join(" ", f.Proto, join(" → ", f.From, f.To)), false)
		p.rowLabel(top+40, fmt.Sprintf("lost %d of %d (%.1f%%)", f.Lost, f.Sent, f.LossPct), false)
		p.printf("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fafafa\" stroke=\"#e0e0e0\"/>\n",
			plotLeft, top, plotRight-plotLeft, flowHeight)
		p.flowBars(f, top)
		p.outage(f, y, top)
		y += flowLabel + flowHeight + 10
	}
}

// bucketWidth is the length of bucket i: up to the next one, the last as
// long as the one before it (or up to the flow's end).
func bucketWidth(f Flow, i int) time.Duration {
	if i+1 < len(f.Series) {
		return f.Series[i+1].Start.Sub(f.Series[i].Start)
	}
	if i > 0 {
		return f.Series[i].Start.Sub(f.Series[i-1].Start)
	}
	if f.End.After(f.Series[i].Start) {
		return f.End.Sub(f.Series[i].Start)
	}
	return time.Second
}

func (p *picture) flowBars(f Flow, top float64) {
	if len(f.Series) == 0 {
		if !f.Start.IsZero() {
			end := f.End
			if end.IsZero() {
				end = p.end
			}
			p.box(f.Start, end, top+flowHeight/2-6, 12, "#e0e0e0", "", "no per-interval series", "#616161",
				fmt.Sprintf("%s: %s, no series", f.Name, p.span(f.Start, end)))
		}
		return
	}
	inner := flowHeight - 4
	base := top + flowHeight - 2
	p.printf("<g class=\"vl-flow-bars\">\n")
	for _, b := range p.bars(f) {
		x0, x1 := p.x(b.from), p.x(b.to)
		w := x1 - x0
		if w > 3 {
			w -= 1 // a gap between bars
		}
		w = math.Max(w, 0.5)
		ratio := 1.0
		if b.sent > 0 {
			ratio = math.Min(float64(b.received)/float64(b.sent), 1)
		}
		title := fmt.Sprintf("%s %s: sent %d, received %d", f.Name, offset(p.r, b.from), b.sent, b.received)
		if b.n > 1 {
			title = fmt.Sprintf("%s %s .. %s: sent %d, received %d", f.Name, offset(p.r, b.from), offset(p.r, b.to), b.sent, b.received)
		}
		okH := inner * ratio
		if okH > 0 {
			p.printf("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#43a047\"><title>%s</title></rect>\n",
				x0, base-okH, w, okH, esc(title))
		}
		if lostH := inner - okH; lostH > 0.05 {
			p.printf("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#e53935\"><title>%s</title></rect>\n",
				x0, base-inner, w, lostH, esc(title))
		}
	}
	p.printf("</g>\n")
}

// bar is one or more consecutive buckets drawn as one bar.
type bar struct {
	from, to       time.Time
	sent, received uint64
	n              int
}

// bars merges the buckets that fall into the same 2-pixel column, so that a
// long series at a fine interval stays a picture of bounded size. Empty
// buckets (nothing sent or received) are left out.
func (p *picture) bars(f Flow) []bar {
	var out []bar
	col := func(t time.Time) int { return int(math.Floor((p.x(t) - plotLeft) / 2)) }
	last := math.MinInt
	for i, b := range f.Series {
		if b.Sent == 0 && b.Received == 0 {
			last = math.MinInt
			continue
		}
		end := b.Start.Add(bucketWidth(f, i))
		if c := col(b.Start); c == last && len(out) > 0 {
			o := &out[len(out)-1]
			o.to, o.sent, o.received, o.n = end, o.sent+b.Sent, o.received+b.Received, o.n+1
			continue
		}
		last = col(b.Start)
		out = append(out, bar{from: b.Start, to: end, sent: b.Sent, received: b.Received, n: 1})
	}
	return out
}

// outage shades the flow's longest gap and labels it above the chart.
func (p *picture) outage(f Flow, labelY, top float64) {
	if f.MaxGap <= 0 || f.MaxGapFrom.IsZero() {
		return
	}
	to := f.MaxGapTo
	if to.IsZero() || to.Before(f.MaxGapFrom) {
		to = f.MaxGapFrom.Add(f.MaxGap)
	}
	x0, x1 := p.x(f.MaxGapFrom), p.x(to)
	w := math.Max(x1-x0, 2)
	if f.Lost == 0 && f.MaxGap < time.Second {
		// Nothing lost: the longest gap is the probe interval, not an
		// outage; no red box, a quiet note.
		title := fmt.Sprintf("%s: nothing lost; longest gap between received packets %s", f.Name, human(f.MaxGap))
		p.printf("<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#2e7d32\"><title>%s</title>no loss (max gap %s)</text>\n",
			plotLeft+2, labelY+flowLabel-7, esc(title), esc(spoken(f.MaxGap)))
		return
	}
	word := "max gap "
	if f.Lost > 0 || f.MaxGap >= time.Second {
		word = "outage "
	}
	label := word + spoken(f.MaxGap)
	title := fmt.Sprintf("%s: longest gap without a received packet: %s, %s", f.Name, human(f.MaxGap), p.span(f.MaxGapFrom, to))
	p.printf("<g class=\"vl-outage\">\n")
	p.printf("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#d32f2f\" fill-opacity=\"0.15\" stroke=\"#d32f2f\" stroke-dasharray=\"4,2\"><title>%s</title></rect>\n",
		x0, top, w, flowHeight, esc(title))
	// A bracket over the gap, then the label centred on it, kept inside.
	p.printf("<path d=\"M%.1f %.1fV%.1fH%.1fV%.1f\" fill=\"none\" stroke=\"#c62828\"/>\n", x0, top-1, top-5, x0+w, top-1)
	tw := textWidth(label, 11)
	lx := math.Min(math.Max((x0+x0+w)/2-tw/2, plotLeft), plotRight-tw)
	p.printf("<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" font-weight=\"bold\" fill=\"#c62828\">%s</text>\n", lx, labelY+flowLabel-7, esc(label))
	p.printf("</g>\n")
}
