package report

import (
	"fmt"
	"slices"
	"strings"
)

// The time axis and the legend of the picture (svg.go).

func (p *picture) axis(y float64) {
	p.printf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#455a64\"/>\n", plotLeft, y, plotRight, y)
	total := p.end.Sub(p.start).Seconds()
	step := niceStep(total)
	for _, t := range p.ticks() {
		x := p.tickX(t)
		p.printf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#455a64\"/>", x, y, x, y+5)
		p.printf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" fill=\"#455a64\">%s</text>\n", x, y+17, tickLabel(t, step))
	}
	p.printf("<text x=\"12\" y=\"%.1f\" font-size=\"11\" fill=\"#455a64\">seconds from start</text>\n", y+17)
}

func tickLabel(sec, step float64) string {
	if step < 1 {
		return fmt.Sprintf("%.1f s", sec)
	}
	return fmt.Sprintf("%.0f s", sec)
}

type legendItem struct {
	kind         string // "box", "line", "shade"
	color, label string
}

func (p *picture) legendItems() []legendItem {
	var items []legendItem
	present := map[string]bool{stateUp: true, stateNegotiating: true, stateDown: true, stateDead: true}
	for _, b := range p.tbands {
		for _, s := range b.segs {
			present[s.state] = true
		}
	}
	for _, st := range stateStyles {
		if present[st.key] {
			items = append(items, legendItem{"box", st.fill, st.label})
		}
	}
	var carried []string
	for _, b := range p.rbands {
		for _, s := range b.segs {
			for _, tn := range s.tunnels {
				if !slices.Contains(carried, tn) {
					carried = append(carried, tn)
				}
			}
		}
	}
	slices.SortFunc(carried, func(a, b string) int {
		ia, ib := slices.Index(p.tunnels, a), slices.Index(p.tunnels, b)
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	for _, tn := range carried {
		items = append(items, legendItem{"box", tunnelColor(p.tunnels, tn), "route via " + tn})
	}
	if len(p.r.Flows) > 0 {
		items = append(items, legendItem{"box", "#43a047", "received"}, legendItem{"box", "#e53935", "lost"},
			legendItem{"shade", "#d32f2f", "longest gap"})
	}
	seen := map[string]bool{}
	for _, m := range p.markers {
		if !seen[m.kind] {
			seen[m.kind] = true
			items = append(items, legendItem{"line", m.color, strings.ReplaceAll(m.kind, "-", " ")})
		}
	}
	if len(p.r.Steps) > 0 {
		items = append(items, legendItem{"box", "#e8f5e9", "step passed"}, legendItem{"box", "#ffcdd2", "step failed"})
	}
	return items
}

// legendLayout places the legend items in rows; it returns each item's
// position.
func (p *picture) legendLayout() (xs, ys []float64, height float64) {
	x, y := 12.0, 0.0
	for _, it := range p.legendItems() {
		w := 22 + textWidth(it.label, 11) + 16
		if x+w > svgWidth-12 && x > 12 {
			x, y = 12, y+18
		}
		xs, ys = append(xs, x), append(ys, y)
		x += w
	}
	if len(xs) == 0 {
		return nil, nil, 0
	}
	return xs, ys, y + 18
}

func (p *picture) legendHeight() float64 {
	_, _, h := p.legendLayout()
	return h
}

func (p *picture) legend(y float64) {
	xs, ys, _ := p.legendLayout()
	p.printf("<g class=\"vl-legend\">\n")
	for i, it := range p.legendItems() {
		x, ly := xs[i], y+ys[i]
		switch it.kind {
		case "line":
			p.printf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>", x+8, ly, x+8, ly+12, it.color)
		case "shade":
			p.printf("<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"12\" fill=\"%s\" fill-opacity=\"0.15\" stroke=\"%s\" stroke-dasharray=\"4,2\"/>", x, ly, it.color, it.color)
		default:
			p.printf("<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"12\" fill=\"%s\" stroke=\"#90a4ae\" stroke-width=\"0.5\"/>", x, ly, it.color)
		}
		p.printf("<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#333\">%s</text>\n", x+22, ly+10, esc(it.label))
	}
	p.printf("</g>\n")
}
