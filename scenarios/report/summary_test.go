package report

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func summaryOf(t *testing.T, r *Run, o SummaryOptions) string {
	t.Helper()
	var b strings.Builder
	if err := WriteSummaryOptions(&b, r, o); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestSummaryFailover(t *testing.T) {
	out := summaryOf(t, failoverRun(), SummaryOptions{})
	if !strings.HasPrefix(out, "FAIL  failover-dpd  (scenarios/failover-dpd.yaml)  20.0s\n") {
		t.Errorf("header:\n%s", out)
	}
	for _, want := range []string{
		"8 steps: 6 passed, 1 failed, 1 skipped",
		// The failed step, then why, indented on the next lines.
		"  5  check outage       assert flow ping                          FAIL     0ms\n" +
			"      expected max_gap < 3s, seen 4.0s\n" +
			"      line 21: flow ping max_gap < 3s: expected < 3s, seen 4.0s\n",
		"      skipped: --quick\n",
		"+8.000s   cgw     tunnel1  DPD: peer dead (silent 3s, action restart)",
		"+8.100s   cgw     -        route 172.31.0.0/16: tunnel1 -> tunnel2 (only path)",
		"+0.500s   cgw     tunnel1  phase 2 up (esp-aes128gcm16, SPIs in c0de0001 out c0de0101)",
		"+8.000s   cgw     tunnel1  tunnel DOWN",
		"+0.900s   cgw     tunnel1  BGP Established (was OpenConfirm)",
		"+5.000s   runner  tunnel1  impair tunnel1: blackhole",
		"routine events omitted",
		"captures/outside.pcap  capture of the outside",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	flowLine := regexp.MustCompile(`(?m)^  ping +icmp +host-a -> host-b +140 +100 +40 +28\.6% +0 +0 +4\.00s +\+5\.000s \.\. \+9\.000s$`)
	if !flowLine.MatchString(out) {
		t.Errorf("no flow line with its numbers:\n%s", out)
	}
	// Routine events are not listed.
	for _, not := range []string{"phase 1 Negotiating", "DPD: probing", "R-U-THERE", "BGP OpenSent", "learned", "step start", "\x1b["} {
		if strings.Contains(out, not) {
			t.Errorf("summary has %q", not)
		}
	}
	// A "tunnel UP" right after "phase 2 up" says nothing new.
	if strings.Contains(out, "tunnel UP") {
		t.Errorf("summary repeats tunnel UP after phase 2 up:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing blanks: %q", l)
		}
	}
}

func TestSummaryGolden(t *testing.T) {
	out := summaryOf(t, failoverRun(), SummaryOptions{})
	golden := filepath.Join("testdata", "failover.summary.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if out != string(want) {
		t.Errorf("summary differs from %s (go test -update rewrites it):\n%s", golden, out)
	}
}

func TestSummaryColorAndMaxEvents(t *testing.T) {
	out := summaryOf(t, failoverRun(), SummaryOptions{Color: true, MaxEvents: 3})
	if !strings.HasPrefix(out, ansiRed+"FAIL"+ansiReset) {
		t.Errorf("verdict not red: %q", out[:20])
	}
	if !strings.Contains(out, "more not shown") {
		t.Errorf("no count of the events cut:\n%s", out)
	}
	if n := strings.Count(out, "start vgw") + strings.Count(out, "start cgw") + strings.Count(out, "phase 1 up"); n != 3 {
		t.Errorf("%d event rows, want 3", n)
	}
	r := failoverRun()
	r.Passed = true
	for i := range r.Steps {
		r.Steps[i].Status = StatusPass
	}
	out = summaryOf(t, r, SummaryOptions{Color: true})
	if !strings.HasPrefix(out, ansiGreen+"PASS"+ansiReset+"  failover-dpd") {
		t.Errorf("verdict not green: %q", out[:30])
	}
}

func TestSummaryAbortedAndEmpty(t *testing.T) {
	out := summaryOf(t, abortedRun(), SummaryOptions{})
	if !strings.HasPrefix(out, "FAIL  failover-dpd") || !strings.Contains(out, "error: setup: ip netns add vl-cgw: operation not permitted") {
		t.Errorf("aborted run:\n%s", out)
	}
	out = summaryOf(t, &Run{}, SummaryOptions{})
	if out != "FAIL  (unnamed scenario)\n" {
		t.Errorf("empty run: %q", out)
	}
}

func TestDescribeEvent(t *testing.T) {
	for _, c := range []struct {
		ev   Event
		want string
	}{
		{Event{Type: "phase2-up", Detail: map[string]string{"proposal": "esp-aes128gcm16", "spi_in": "ef5ebbd9", "spi_out": "ad8c3188"}},
			"phase 2 up (esp-aes128gcm16, SPIs in ef5ebbd9 out ad8c3188)"},
		{Event{Type: "phase1-up", Detail: map[string]string{"exchange": "main", "role": "responder", "proposal": "aes128-sha1-modp2048", "nat_detected": "true"}},
			"phase 1 up (main, responder, aes128-sha1-modp2048, NAT)"},
		{Event{Type: "dpd-state", Detail: map[string]string{"state": "dead"}}, "DPD: peer dead"},
		{Event{Type: "dpd-state", Detail: map[string]string{"state": "probing"}}, "DPD: probing"},
		{Event{Type: "bgp-state", Detail: map[string]string{"from": "OpenConfirm", "state": "Established"}}, "BGP Established (was OpenConfirm)"},
		{Event{Type: "bgp-state", Detail: map[string]string{"from": "Established", "state": "Idle", "limit_exceeded": "true"}}, "BGP Idle (was Established): route limit exceeded"},
		{Event{Type: "route", Detail: map[string]string{"kind": "best-moved", "prefix": "172.31.0.0/16", "from": "tunnel1", "to": "tunnel2"}},
			"route 172.31.0.0/16: tunnel1 -> tunnel2"},
		{Event{Type: "route", Detail: map[string]string{"kind": "installed", "prefix": "10.0.0.0/8", "to": "tunnel1,tunnel2", "reason": "ECMP"}},
			"route 10.0.0.0/8: installed on tunnel1+tunnel2 (ECMP)"},
		{Event{Type: "route", Detail: map[string]string{"kind": "removed", "prefix": "10.0.0.0/8", "from": "tunnel2"}},
			"route 10.0.0.0/8: removed (was on tunnel2)"},
		{Event{Type: "route", Tunnel: "tunnel1", Detail: map[string]string{"kind": "limit-exceeded", "reason": "peer sent more than 100 prefixes"}},
			"route limit exceeded on tunnel1: peer sent more than 100 prefixes"},
		{Event{Type: "peer-moved", Detail: map[string]string{"from": "198.51.100.7:4500", "to": "198.51.100.7:61000", "via": "esp"}},
			"peer moved 198.51.100.7:4500 -> 198.51.100.7:61000 (via esp)"},
		{Event{Type: "nat-detected", Detail: map[string]string{"local_behind_nat": "true", "remote_behind_nat": "false"}}, "NAT detected (we are behind a NAT)"},
		{Event{Type: "delete-received", Detail: map[string]string{"protocol": "esp", "spi": "ad8c3188"}}, "DELETE received (esp SPI ad8c3188)"},
		{Event{Type: "notify-received", Detail: map[string]string{"notify": "NO-PROPOSAL-CHOSEN"}}, "notify received: NO-PROPOSAL-CHOSEN"},
		{Event{Type: "error", Detail: map[string]string{"message": "phase 2: no proposal chosen"}}, "error: phase 2: no proposal chosen"},
		{Event{Source: "runner", Type: "impair", Tunnel: "tunnel1", Detail: map[string]string{"what": "loss 30%"}}, "impair tunnel1: loss 30%"},
		{Event{Source: "runner", Type: "impair", Detail: map[string]string{"tunnel": "tunnel2", "fault": "loss", "percent": "30"}}, "impair tunnel2: loss 30%"},
		{Event{Source: "runner", Type: "impair", Detail: map[string]string{"tunnel": "tunnel1", "fault": "blackhole", "percent": "0"}}, "impair tunnel1: blackhole"},
		{Event{Source: "runner", Type: "restore", Detail: map[string]string{"tunnel": "all"}}, "restore all"},
		{Event{Source: "runner", Type: "gateway-kill", Detail: map[string]string{"gateway": "cgw", "signal": "KILL"}}, "kill cgw (signal=KILL)"},
		{Event{Type: "something-new", Detail: map[string]string{"b": "2", "a": "1"}}, "something-new (a=1, b=2)"},
	} {
		if got := DescribeEvent(c.ev); got != c.want {
			t.Errorf("%s %v: %q, want %q", c.ev.Type, c.ev.Detail, got, c.want)
		}
	}
}

// A wait that timed out with several conditions: one condition per line,
// not run together on one.
func TestSummaryFailedWaitOneConditionPerLine(t *testing.T) {
	r := failoverRun()
	for i := range r.Steps {
		if r.Steps[i].Status == StatusFail {
			r.Steps[i].Asserts = nil
			r.Steps[i].Message = "not reached within 10s:\nline 4: tunnel1 up: expected status == UP, seen cgw DOWN\nline 5: cgw route 172.31.1.0/24 via tunnel2: expected 172.31.1.0/24 via tunnel2, seen cgw: via tunnel1"
		}
	}
	out := summaryOf(t, r, SummaryOptions{})
	want := "      not reached within 10s:\n" +
		"      line 4: tunnel1 up: expected status == UP, seen cgw DOWN\n" +
		"      line 5: cgw route 172.31.1.0/24 via tunnel2: expected 172.31.1.0/24 via tunnel2, seen cgw: via tunnel1\n"
	if !strings.Contains(out, want) {
		t.Fatalf("summary:\n%s\nwant lines:\n%s", out, want)
	}
}

// The teardown's events (withdrawals as the gateways stop) are not notable.
func TestSummaryLeavesOutTheCleanup(t *testing.T) {
	r := failoverRun()
	r.Events = append(r.Events,
		Event{Time: at(19.5), Source: "runner", Type: "cleanup"},
		Event{Time: at(19.6), Source: "cgw", Type: "route", Detail: map[string]string{"kind": "removed", "prefix": "172.31.0.0/16", "from": "tunnel1"}},
		Event{Time: at(19.7), Source: "vgw", Type: "error", Detail: map[string]string{"message": "boom at the end"}})
	out := summaryOf(t, r, SummaryOptions{})
	if strings.Contains(out, "route 172.31.0.0/16: removed") || !strings.Contains(out, "1 during the cleanup") || !strings.Contains(out, "boom at the end") {
		t.Fatalf("summary:\n%s", out)
	}
}
