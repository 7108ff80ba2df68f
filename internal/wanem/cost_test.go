package wanem

import (
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestCostAgainstKernel measures what the emulated WAN costs: TCP
// throughput (iperf3, 3 s) and ping RTT between the namespaces, with the
// kernel forwarding, with the forwarder carrying the path without any
// impairment (passthrough), and with a 1 µs delay (every packet through the
// delay queue and the scheduler). The numbers are logged (docs/PERFORMANCE.md).
func TestCostAgainstKernel(t *testing.T) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Fatalf("iperf3 is needed (apt-get install iperf3): %v", err)
	}
	tl := newTestLab(t, Options{})
	srv, err := tl.right.Start(context.Background(), "iperf3", "-s", "-p", "5201")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(time.Second)
	time.Sleep(300 * time.Millisecond)
	for _, c := range []struct {
		name  string
		paths bool
		im    Impairment
	}{
		{"kernel forwarding", false, Impairment{}},
		{"forwarder, no impairment", true, Impairment{}},
		{"forwarder, 1 µs delay (queue)", true, Impairment{Delay: time.Microsecond}},
	} {
		if c.paths {
			tl.set(t, c.im, c.im)
		} else if err := tl.f.Set(Config{}); err != nil {
			t.Fatal(err)
		}
		rtt, got := tl.ping(t, 200, "0.005", 56)
		out, err := tl.left.Run(context.Background(), "iperf3", "-c", rightIP.String(), "-p", "5201", "-t", "3", "-J")
		if err != nil {
			t.Fatalf("%s: iperf3: %v", c.name, err)
		}
		var r struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
				SumSent struct {
					Retransmits int `json:"retransmits"`
				} `json:"sum_sent"`
			} `json:"end"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("iperf3 output: %v", err)
		}
		ab, _ := tl.counters()
		t.Logf("%-32s ping avg %v (min %v, mdev %v, %d/200)  iperf3 TCP %s Mbit/s (%d retransmits)  forwarded a->b %d",
			c.name, rtt[1], rtt[0], rtt[3], got, strconv.FormatFloat(r.End.SumReceived.BitsPerSecond/1e6, 'f', 0, 64), r.End.SumSent.Retransmits, ab.Forwarded)
		if got < 190 || r.End.SumReceived.BitsPerSecond < 10e6 {
			t.Fatalf("%s: %d/200 pings, %.0f bit/s", c.name, got, r.End.SumReceived.BitsPerSecond)
		}
		if c.paths && ab.Forwarded == 0 {
			t.Fatalf("%s: the forwarder carried nothing", c.name)
		}
	}
}
