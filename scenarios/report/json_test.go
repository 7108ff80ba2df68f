package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestJSONRoundTrip(t *testing.T) {
	r := failoverRun()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Scenario != r.Scenario || got.File != r.File || got.Passed != r.Passed || !got.Start.Equal(r.Start) || !got.End.Equal(r.End) {
		t.Errorf("run: %+v", got)
	}
	if !reflect.DeepEqual(got.Vars, r.Vars) || !reflect.DeepEqual(got.Gateways, r.Gateways) || !reflect.DeepEqual(got.Tunnels, r.Tunnels) {
		t.Errorf("vars/gateways/tunnels: %v %v %v", got.Vars, got.Gateways, got.Tunnels)
	}
	// Everything comes back as it was (times are UTC in the fixture).
	if !reflect.DeepEqual(got.Steps, r.Steps) {
		t.Errorf("steps:\n got %+v\nwant %+v", got.Steps, r.Steps)
	}
	if !reflect.DeepEqual(got.Events, r.Events) {
		t.Errorf("events differ: %d vs %d", len(got.Events), len(r.Events))
	}
	if !reflect.DeepEqual(got.Flows, r.Flows) {
		t.Errorf("flows:\n got %+v\nwant %+v", got.Flows, r.Flows)
	}
	if !reflect.DeepEqual(got.Artifacts, r.Artifacts) {
		t.Errorf("artifacts: %+v", got.Artifacts)
	}

	// The document itself: snake_case names, offsets, times with nanoseconds.
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["format"] != FormatVersion || doc["verdict"] != "FAIL" || doc["duration_s"] != 20.0 {
		t.Errorf("format/verdict/duration: %v %v %v", doc["format"], doc["verdict"], doc["duration_s"])
	}
	if doc["start"] != "2026-11-21T10:00:00.000000000Z" {
		t.Errorf("start %v", doc["start"])
	}
	events := doc["events"].([]any)
	var dead map[string]any
	for _, e := range events {
		e := e.(map[string]any)
		if e["source"] == "cgw" && e["type"] == "dpd-state" && e["detail"].(map[string]any)["state"] == "dead" {
			dead = e
		}
	}
	if dead == nil || dead["offset_s"] != 8.0 || dead["time"] != "2026-11-21T10:00:08.000000000Z" || dead["text"] != "DPD: peer dead (silent 3s, action restart)" {
		t.Errorf("cgw DPD dead event: %v", dead)
	}
	step := doc["steps"].([]any)[4].(map[string]any)
	if step["name"] != "check outage" || step["offset_s"] != 15.0 || step["status"] != "fail" || step["message"] != "expected max_gap < 3s, seen 4.0s" {
		t.Errorf("step 5: %v", step)
	}
	if a := step["asserts"].([]any)[0].(map[string]any); a["expected"] != "< 3s" || a["seen"] != "4.0s" || a["passed"] != false || a["line"] != 21.0 {
		t.Errorf("assert: %v", a)
	}
	flow := doc["flows"].([]any)[0].(map[string]any)
	if flow["max_gap_s"] != 4.0 || flow["max_gap_from_offset_s"] != 5.0 || flow["max_gap_to_offset_s"] != 9.0 || flow["lost"] != 40.0 || flow["loss_pct"].(float64) < 28.5 {
		t.Errorf("flow: %v", flow)
	}
	if b := flow["series"].([]any)[4].(map[string]any); b["offset_s"] != 5.0 || b["received"] != 0.0 || b["sent"] != 10.0 {
		t.Errorf("bucket: %v", b)
	}
	// Offsets of events are in time order.
	last := -1.0
	for _, e := range events {
		o := e.(map[string]any)["offset_s"].(float64)
		if o < last {
			t.Fatalf("events not in time order at %v", o)
		}
		last = o
	}
	if camel := regexp.MustCompile(`"[a-z]+[A-Z][A-Za-z]*":`).FindString(buf.String()); camel != "" {
		t.Errorf("field not in snake_case: %s", camel)
	}
}

func TestJSONEmptyAndAborted(t *testing.T) {
	for _, r := range []*Run{{}, abortedRun()} {
		var buf bytes.Buffer
		if err := WriteJSON(&buf, r); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"steps": []`, `"events": []`, `"flows": []`, `"artifacts": []`, `"verdict": "FAIL"`} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("lacks %s:\n%s", want, buf.String())
			}
		}
		got, err := ReadJSON(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if got.Error != r.Error || !got.Start.Equal(r.Start) || !got.End.IsZero() {
			t.Errorf("read back %+v", got)
		}
	}
	if _, err := ReadJSON(strings.NewReader(`{"format":"other/9"}`)); err == nil {
		t.Error("accepted another format")
	}
}

func TestJSONOffsetsKeepNanoseconds(t *testing.T) {
	r := &Run{Start: t0, Events: []Event{{Time: t0.Add(1234567891 * time.Nanosecond), Source: "cgw", Type: "phase1-up"}}}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"offset_s": 1.234567891`) || !strings.Contains(buf.String(), `"time": "2026-11-21T10:00:01.234567891Z"`) {
		t.Errorf("offset or time:\n%s", buf.String())
	}
}
