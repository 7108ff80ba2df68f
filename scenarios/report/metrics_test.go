package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestMetricsJSON: metric samples are written with their offset and read
// back unchanged; a run without samples has "metrics": [].
func TestMetricsJSON(t *testing.T) {
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	r := &Run{Scenario: "m", Start: start, End: start.Add(3 * time.Second), Metrics: []MetricSample{
		{Time: start.Add(time.Second), Gateway: "cgw", Values: map[string]float64{`vpnlab_tunnel_up{tunnel="tunnel1"}`: 0, `vpnlab_ike_half_open_sas`: 0}},
		{Time: start.Add(2 * time.Second), Gateway: "cgw", Values: map[string]float64{`vpnlab_tunnel_up{tunnel="tunnel1"}`: 1}},
	}}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Metrics []struct {
			OffsetS float64            `json:"offset_s"`
			Gateway string             `json:"gateway"`
			Values  map[string]float64 `json:"values"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil || len(raw.Metrics) != 2 || raw.Metrics[1].OffsetS != 2 ||
		raw.Metrics[1].Values[`vpnlab_tunnel_up{tunnel="tunnel1"}`] != 1 || raw.Metrics[0].Gateway != "cgw" {
		t.Fatalf("metrics in JSON (%v): %s", err, buf.String())
	}
	got, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Metrics, r.Metrics) {
		t.Fatalf("read back %+v, want %+v", got.Metrics, r.Metrics)
	}
	buf.Reset()
	if err := WriteJSON(&buf, &Run{Scenario: "empty"}); err != nil || !bytes.Contains(buf.Bytes(), []byte(`"metrics": []`)) {
		t.Fatalf("empty run (%v): %s", err, buf.String())
	}
}
