package report

import (
	"maps"
	"time"
)

// MetricSample is one scrape of a gateway's Prometheus metrics during a
// run (docs/metrics.md): the vpnlab_ series whose value changed since that
// gateway's previous sample, all of them in its first one. A series' value
// at any time is therefore its value in the latest sample of that gateway
// that has it. Keys are series in the exposition format's spelling,
// name{label="value",...} with labels in name order.
type MetricSample struct {
	Time    time.Time
	Gateway string
	Values  map[string]float64
}

type jsonMetricSample struct {
	Time    string             `json:"time"`
	OffsetS float64            `json:"offset_s"`
	Gateway string             `json:"gateway"`
	Values  map[string]float64 `json:"values"`
}

func metricsToJSON(r *Run) []jsonMetricSample {
	out := []jsonMetricSample{}
	for _, m := range r.Metrics {
		v := m.Values
		if v == nil {
			v = map[string]float64{}
		}
		out = append(out, jsonMetricSample{Time: formatTime(m.Time), OffsetS: offsetSeconds(r, m.Time), Gateway: m.Gateway, Values: v})
	}
	return out
}

func metricsFromJSON(js []jsonMetricSample, tm func(field, s string) time.Time) []MetricSample {
	var out []MetricSample
	for _, m := range js {
		out = append(out, MetricSample{Time: tm("metrics.time", m.Time), Gateway: m.Gateway, Values: maps.Clone(m.Values)})
	}
	return out
}
