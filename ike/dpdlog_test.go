package ike

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// lineBuffer collects log lines (safe for the timer goroutines).
type lineBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns the lines written since the last take, without the
// harness's own "send failed" warnings (its engines have no sockets: the
// wire is the packet sink).
func (l *lineBuffer) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if line != "" && !strings.Contains(line, `msg="send failed"`) {
			out = append(out, line)
		}
	}
	l.b.Reset()
	return out
}

// loggedHarnessEngine is harnessEngine with a log at level lvl into out.
func loggedHarnessEngine(t testing.TB, tc TunnelConfig, w *harnessWire, out io.Writer, lvl logrus.Level, timers timerSource) *Engine {
	lg := logrus.New()
	lg.SetOutput(out)
	lg.SetLevel(lvl)
	e, err := NewEngine(Config{Tunnels: []TunnelConfig{tc}}, WithLogger(lg.WithField("gw", tc.LocalAddr.String())),
		WithDataPath(NewMemoryDataPath()), WithPacketSink(w), withClock(timers))
	if err != nil {
		t.Fatal(err)
	}
	bindNowhere(t, e, tc.LocalAddr)
	return e
}

// TestDPDRoundLogsNothingAtInfo: an idle tunnel's DPD round at AWS's
// timers (R-U-THERE after 10 s of silence, answered at once) writes no
// line at info level, on either side, and is counted instead (DPDProbes).
// A round in which the peer missed a probe is logged: the second
// R-U-THERE and the peer being alive again. Two engines back to back,
// driven on a clock the test sets (no loops, no waiting).
func TestDPDRoundLogsNothingAtInfo(t *testing.T) {
	base := time.Now()
	now := base
	timeNow = func() time.Time { return now }
	defer func() { timeNow = time.Now }()
	timers := &recordedTimers{}
	defer timers.stopAll()

	ct, vt := handshakeTunnels(19)
	for _, tc := range []*TunnelConfig{&ct, &vt} {
		tc.DPDDelay, tc.DPDTimeout, tc.DPDAction = 10*time.Second, 30*time.Second, DPDClear
	}
	logs := &lineBuffer{}
	w := &harnessWire{}
	h := &qmHarness{wire: w}
	h.cgw = loggedHarnessEngine(t, ct, w, logs, logrus.InfoLevel, timers)
	h.vgw = loggedHarnessEngine(t, vt, w, logs, logrus.InfoLevel, timers)
	if !handshakeOnce(h) {
		t.Fatal("main mode + quick mode did not complete")
	}
	logs.take()
	ctun, vtun := h.cgw.byName["tunnel1"], h.vgw.byName["tunnel1"]
	if ctun.dpd == nil || vtun.dpd == nil {
		t.Fatal("DPD is not running on both sides")
	}
	const rounds = 5
	for i := 0; i < rounds; i++ {
		now = now.Add(11 * time.Second)
		ctun.dpdCheck()
		h.pump(5)
		if lines := logs.take(); len(lines) > 0 {
			t.Fatalf("round %d: an answered R-U-THERE wrote %d line(s) at info:\n%s", i+1, len(lines), strings.Join(lines, "\n"))
		}
		if s := ctun.dpd.State().String(); s != "alive" {
			t.Fatalf("round %d: cgw DPD %s after the ACK", i+1, s)
		}
	}
	if n := ctun.counters.DPDProbes; n != rounds {
		t.Fatalf("cgw counted %d R-U-THERE, want %d", n, rounds)
	}

	// The first probe of a round is lost: the second one, and the peer's
	// answer to it, are news.
	now = now.Add(11 * time.Second)
	ctun.dpdCheck()
	w.pkts = nil
	now = now.Add(11 * time.Second)
	ctun.dpdCheck()
	h.pump(5)
	got := strings.Join(logs.take(), "\n")
	for _, want := range []string{"DPD: peer silent, sending R-U-THERE", "probe=2", "DPD: peer alive again"} {
		if !strings.Contains(got, want) {
			t.Errorf("a round with a lost probe: no %q at info in:\n%s", want, got)
		}
	}
}
