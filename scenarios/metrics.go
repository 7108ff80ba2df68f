package scenarios

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vpnlab/vpnlab/scenarios/report"
)

// metricsEvery is how often the runner samples each gateway's metrics.
const metricsEvery = time.Second

// metricsSampler scrapes every running gateway's /metrics (control API,
// docs/metrics.md) about once a second during a run and keeps, per scrape,
// the vpnlab_ series that changed since the gateway's previous scrape: the
// "metrics" of timeline.json, so that runs can be compared. A scrape that
// fails (gateway stopped) is skipped; a foreign gateway is not scraped.
type metricsSampler struct {
	mu      sync.Mutex
	lastAt  map[string]time.Time
	last    map[string]map[string]float64 // gateway -> series -> value
	samples []report.MetricSample
}

func newMetricsSampler() *metricsSampler {
	return &metricsSampler{lastAt: map[string]time.Time{}, last: map[string]map[string]float64{}}
}

// sample scrapes the gateways whose last scrape is metricsEvery old.
func (m *metricsSampler) sample(ctx context.Context, gws map[string]*gwProc) {
	names := make([]string, 0, len(gws))
	for n := range gws {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		g := gws[name]
		m.mu.Lock()
		due := time.Since(m.lastAt[name]) >= metricsEvery
		m.mu.Unlock()
		if !due || g.foreign != nil || !g.running() {
			continue // a foreign gateway (strongSwan) has no /metrics
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		body, err := g.client().Raw(cctx, http.MethodGet, "/metrics")
		cancel()
		now := time.Now()
		if err != nil {
			continue
		}
		vals, err := flattenMetrics(body)
		if err != nil {
			continue
		}
		m.add(name, now, vals)
	}
}

// add records a scrape of gateway gw: the series that changed.
func (m *metricsSampler) add(gw string, at time.Time, vals map[string]float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastAt[gw] = at
	prev := m.last[gw]
	changed := map[string]float64{}
	for k, v := range vals {
		if old, ok := prev[k]; !ok || old != v {
			changed[k] = v
		}
	}
	m.last[gw] = vals
	if len(changed) > 0 || prev == nil {
		m.samples = append(m.samples, report.MetricSample{Time: at, Gateway: gw, Values: changed})
	}
}

// result returns the samples so far, in time order.
func (m *metricsSampler) result() []report.MetricSample {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.samples)
	slices.SortStableFunc(out, func(a, b report.MetricSample) int { return a.Time.Compare(b.Time) })
	return out
}

// flattenMetrics parses a scrape in the text format and returns its
// vpnlab_ counters and gauges by series: name{label="value",...}.
func flattenMetrics(body []byte) (map[string]float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, "vpnlab_") {
			continue
		}
		for _, mt := range f.GetMetric() {
			var v float64
			switch {
			case mt.Counter != nil:
				v = mt.Counter.GetValue()
			case mt.Gauge != nil:
				v = mt.Gauge.GetValue()
			default:
				continue
			}
			labels := make([]string, 0, len(mt.GetLabel()))
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			slices.Sort(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = v
		}
	}
	return out, nil
}
