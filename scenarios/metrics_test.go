package scenarios

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/scenarios/report"
)

const scrapeA = `# TYPE vpnlab_tunnel_up gauge
vpnlab_tunnel_up{tunnel="tunnel1"} 0
# TYPE vpnlab_ipsec_bytes_total counter
vpnlab_ipsec_bytes_total{direction="in",tunnel="tunnel1"} 0
vpnlab_ipsec_bytes_total{direction="out",tunnel="tunnel1"} 0
# TYPE vpnlab_ike_half_open_sas gauge
vpnlab_ike_half_open_sas 0
# TYPE go_goroutines gauge
go_goroutines 12
`

const scrapeB = `# TYPE vpnlab_tunnel_up gauge
vpnlab_tunnel_up{tunnel="tunnel1"} 1
# TYPE vpnlab_ipsec_bytes_total counter
vpnlab_ipsec_bytes_total{direction="in",tunnel="tunnel1"} 0
vpnlab_ipsec_bytes_total{direction="out",tunnel="tunnel1"} 4200
# TYPE vpnlab_ike_half_open_sas gauge
vpnlab_ike_half_open_sas 0
# TYPE go_goroutines gauge
go_goroutines 14
`

// TestMetricsSamplerDeltas: a gateway's first sample has every vpnlab_
// series, later ones only what changed; other families are not kept.
func TestMetricsSamplerDeltas(t *testing.T) {
	m := newMetricsSampler()
	t0 := time.Now()
	for i, body := range []string{scrapeA, scrapeB, scrapeB} {
		vals, err := flattenMetrics([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		m.add("cgw", t0.Add(time.Duration(i)*time.Second), vals)
	}
	got := m.result()
	if len(got) != 2 {
		t.Fatalf("%d samples, want 2 (the third scrape changed nothing): %+v", len(got), got)
	}
	if len(got[0].Values) != 4 || got[0].Values[`vpnlab_ike_half_open_sas`] != 0 {
		t.Errorf("first sample %v", got[0].Values)
	}
	want := map[string]float64{`vpnlab_tunnel_up{tunnel="tunnel1"}`: 1, `vpnlab_ipsec_bytes_total{direction="out",tunnel="tunnel1"}`: 4200}
	if len(got[1].Values) != len(want) {
		t.Errorf("second sample %v, want %v", got[1].Values, want)
	}
	for k, v := range want {
		if got[1].Values[k] != v {
			t.Errorf("second sample %s = %v, want %v", k, got[1].Values[k], v)
		}
	}
	if _, err := flattenMetrics([]byte("not a scrape {")); err == nil {
		t.Error("garbage parsed")
	}
}

// TestMetricsInTimeline runs the basic scenario: timeline.json holds both
// gateways' metrics, and they show the tunnels coming up and traffic.
func TestMetricsInTimeline(t *testing.T) {
	needLab(t)
	out := t.TempDir()
	if text, code := runCLI(t, 2*time.Minute, "run", "--out", out, "basic.yaml"); code != 0 {
		t.Fatalf("vpnlab run basic.yaml: exit %d\n%s", code, text)
	}
	f, err := os.Open(filepath.Join(out, "basic", report.FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	// The latest value of each series per gateway, and whether it was
	// ever seen at 0 before it was 1 (the tunnel came up during the run).
	latest := map[string]map[string]float64{}
	upFrom := map[string]bool{}
	samples := map[string]int{}
	for _, s := range r.Metrics {
		if latest[s.Gateway] == nil {
			latest[s.Gateway] = map[string]float64{}
		}
		for k, v := range s.Values {
			if k == `vpnlab_tunnel_up{tunnel="tunnel1"}` && v == 1 && latest[s.Gateway][k] == 0 {
				upFrom[s.Gateway] = true
			}
			latest[s.Gateway][k] = v
		}
		samples[s.Gateway]++
		if s.Time.Before(r.Start) || s.Time.After(r.End) {
			t.Errorf("sample at %v outside the run %v..%v", s.Time, r.Start, r.End)
		}
	}
	for _, gw := range []string{"cgw", "vgw"} {
		l := latest[gw]
		if samples[gw] < 2 || !upFrom[gw] { // the first sample, then at least the change to up
			t.Errorf("%s: %d samples, tunnel1 went up in them: %v", gw, samples[gw], upFrom[gw])
		}
		for _, series := range []string{`vpnlab_ipsec_bytes_total{direction="in",tunnel="tunnel1"}`, `vpnlab_ipsec_bytes_total{direction="out",tunnel="tunnel1"}`} {
			if l[series] < 10000 {
				t.Errorf("%s: %s = %v after the flows", gw, series, l[series])
			}
		}
		if l[`vpnlab_bgp_session_state{state="Established",tunnel="tunnel2"}`] != 1 {
			t.Errorf("%s: tunnel2 BGP not Established in the last sample", gw)
		}
		if l[`vpnlab_bgp_accepted_routes{tunnel="tunnel1"}`] < 1 || l[`vpnlab_route_changes_total{kind="installed"}`] < 1 || l[`vpnlab_routes_active{tunnel="tunnel1"}`] < 1 {
			t.Errorf("%s: routes: accepted %v, installed %v, active on tunnel1 %v", gw, l[`vpnlab_bgp_accepted_routes{tunnel="tunnel1"}`],
				l[`vpnlab_route_changes_total{kind="installed"}`], l[`vpnlab_routes_active{tunnel="tunnel1"}`])
		}
	}
	t.Logf("samples: %v, %d series of cgw", samples, len(latest["cgw"]))
}
