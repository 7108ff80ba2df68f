package report

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// Every action step the runner performs has its marker, and a flush of the
// NAT says so (not "impair all").
func TestMarkersOfEveryAction(t *testing.T) {
	r := failoverRun()
	add := func(sec float64, typ string, kv ...string) {
		d := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			d[kv[i]] = kv[i+1]
		}
		r.Events = append(r.Events, Event{Time: at(sec), Source: "runner", Type: typ, Detail: d})
	}
	add(2, "rekey", "gateway", "cgw", "tunnel", "tunnel1", "phase", "2")
	add(3, "initiate", "gateway", "vgw", "tunnel", "tunnel2")
	add(4, "terminate", "gateway", "cgw", "tunnel", "tunnel2")
	add(6, "ike-impair", "gateway", "cgw", "spec", "drop:main:3")
	add(7, "bgp", "gateway", "vgw", "what", "prepend 2 on tunnel1")
	add(9, "impair", "tunnel", "all", "fault", "flush-nat", "percent", "0")
	var labels []string
	for _, m := range markers(sortedEvents(r)) {
		labels = append(labels, m.label)
	}
	for _, want := range []string{"rekey cgw tunnel1 phase 2", "initiate vgw tunnel2", "terminate cgw tunnel2",
		"ike_impair cgw: drop:main:3", "bgp vgw: prepend 2 on tunnel1", "flush NAT", "impair tunnel1: blackhole"} {
		if !slices.Contains(labels, want) {
			t.Errorf("no marker %q in %q", want, labels)
		}
	}
}

// A flow without loss gets no red outage box: its longest gap is the
// probe interval.
func TestNoLossFlowHasNoOutageBox(t *testing.T) {
	r := failoverRun()
	r.Flows[0].Lost, r.Flows[0].Received = 0, r.Flows[0].Sent
	r.Flows[0].MaxGap = 6 * time.Millisecond
	r.Flows[0].MaxGapTo = r.Flows[0].MaxGapFrom.Add(6 * time.Millisecond)
	for i := range r.Flows[0].Series {
		r.Flows[0].Series[i].Received = r.Flows[0].Series[i].Sent
	}
	root, raw := svgOf(t, r)
	if len(rectsTitled(root, "ping: longest gap")) != 0 || strings.Contains(raw, "max gap 6 ms</text>") {
		t.Errorf("a lossless flow got an outage box")
	}
	if !strings.Contains(raw, "no loss (max gap 6 ms)") {
		t.Errorf("no quiet note for the lossless flow")
	}
}

// A band too short for its label shows none (the tooltip has it), not "n…".
func TestShortLabelsAreLeftOut(t *testing.T) {
	if got := fit("no data", 14, 11); got != "" {
		t.Errorf("fit(no data, 14px) = %q", got)
	}
	if got := fit("IPsec up, BGP not Established", 60, 11); got != "IPsec up…" {
		t.Errorf("fit long label = %q", got)
	}
}
