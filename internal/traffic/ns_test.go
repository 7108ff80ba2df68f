package traffic

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

var (
	nsSrcAddr = mustAddr("10.77.0.1")
	nsDstAddr = mustAddr("10.77.0.2")
)

// twoNS builds two namespaces joined by a veth: src (10.77.0.1) and dst
// (10.77.0.2). It skips unless root.
func twoNS(t *testing.T) (src, dst *netlab.NS) {
	t.Helper()
	l, err := netlab.New(t)
	if err != nil {
		t.Fatal(err)
	}
	if src, err = l.AddNS("src"); err != nil {
		t.Fatal(err)
	}
	if dst, err = l.AddNS("dst"); err != nil {
		t.Fatal(err)
	}
	if err := l.Link(src, "eth0", netip.PrefixFrom(nsSrcAddr, 24), dst, "eth0", netip.PrefixFrom(nsDstAddr, 24)); err != nil {
		t.Fatal(err)
	}
	return src, dst
}

func nsSpec(proto string, src, dst *netlab.NS, rate float64) Spec {
	return Spec{Name: proto, Proto: proto, SrcNS: src.Name(), DstNS: dst.Name(), Dst: nsDstAddr, Rate: rate}
}

// Flows of every protocol across two namespaces, at once: nothing is lost.
// The icmp flow uses a ping socket (allowed in src by ping_group_range), the
// udp flow binds its source address.
func TestNSNoLoss(t *testing.T) {
	src, dst := twoNS(t)
	if _, err := src.Run(context.Background(), "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"); err != nil {
		t.Fatal(err)
	}
	specs := []Spec{nsSpec("udp", src, dst, 100), nsSpec("tcp", src, dst, 100), nsSpec("icmp", src, dst, 100)}
	specs[0].Src = nsSrcAddr
	var flows []*Flow
	forcePingSocket = true
	for _, s := range specs {
		s.Count = 100
		flows = append(flows, startFlow(t, s))
	}
	forcePingSocket = false
	if flows[2].tx.(*icmpTransport).raw {
		t.Fatal("icmp flow did not use a ping socket")
	}
	for _, f := range flows {
		waitDone(t, f, 30*time.Second)
	}
	for _, f := range flows {
		r := f.Stop(5 * time.Second)
		checkComplete(t, r, 100, 64)
		if r.Src != nsSrcAddr {
			t.Fatalf("%s: source %v, want %v", r.Name, r.Src, nsSrcAddr)
		}
	}
}

// An nftables rule in dst drops everything from src for about a second in
// the middle of the flows: udp and icmp report the loss and an outage of
// about a second where the rule was; tcp loses nothing (it retransmits) but
// its delay shows the stall.
func TestNSOutage(t *testing.T) {
	src, dst := twoNS(t)
	const rate = 50
	var flows []*Flow
	for _, p := range []string{"udp", "icmp", "tcp"} {
		flows = append(flows, startFlow(t, nsSpec(p, src, dst, rate)))
	}
	time.Sleep(time.Second)
	ruleOn := time.Now()
	if err := dst.Nft(fmt.Sprintf(`table inet vltraffic {
  chain input {
    type filter hook input priority filter; policy accept;
    ip saddr %s drop
  }
}
`, nsSrcAddr)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := dst.Nft("delete table inet vltraffic\n"); err != nil {
		t.Fatal(err)
	}
	ruleOff := time.Now()
	time.Sleep(time.Second)
	t.Logf("rule in place for %v", ruleOff.Sub(ruleOn).Round(time.Millisecond))

	var wg sync.WaitGroup
	res := make([]Result, len(flows))
	for i, f := range flows {
		wg.Add(1)
		go func() { defer wg.Done(); res[i] = f.Stop(3 * time.Second) }()
	}
	wg.Wait()
	for _, r := range res {
		t.Logf("%s: sent %d received %d lost %d (%.1f%%) reordered %d dups %d; max gap %v (+%v..+%v after the rule went in); delay avg %v max %v; errors %d",
			r.Proto, r.Sent, r.Received, r.Lost, r.LossPct, r.Reordered, r.Duplicates, r.MaxGap.Round(time.Millisecond),
			r.MaxGapFrom.Sub(ruleOn).Round(time.Millisecond), r.MaxGapTo.Sub(ruleOn).Round(time.Millisecond),
			r.AvgDelay.Round(time.Microsecond), r.MaxDelay.Round(time.Millisecond), r.Errors)
		if r.Received+r.Lost != r.Sent || r.Duplicates != 0 {
			t.Errorf("%s: inconsistent counters", r.Proto)
		}
		if r.Proto == "tcp" {
			if r.Lost != 0 || r.Reconnects != 0 {
				t.Errorf("tcp: lost %d, reconnects %d; want none (the connection survives a 1s outage)", r.Lost, r.Reconnects)
			}
			if r.MaxDelay < 500*time.Millisecond {
				t.Errorf("tcp: max delay %v, want the stall (> 0.5s) to show", r.MaxDelay)
			}
			continue
		}
		if r.MaxGap < 700*time.Millisecond || r.MaxGap > 2500*time.Millisecond {
			t.Errorf("%s: max gap %v, want about 1s (0.7-2.5s)", r.Proto, r.MaxGap)
		}
		// The outage lies where the rule was (with slack for nft's own time).
		if r.MaxGapFrom.Before(ruleOn.Add(-500*time.Millisecond)) || r.MaxGapTo.After(ruleOff.Add(500*time.Millisecond)) {
			t.Errorf("%s: outage %v..%v outside the rule's time %v..%v", r.Proto, r.MaxGapFrom, r.MaxGapTo, ruleOn, ruleOff)
		}
		if lo, hi := uint64(0.5*rate), uint64(2.5*rate); r.Lost < lo || r.Lost > hi {
			t.Errorf("%s: lost %d, want %d..%d (about a second's worth)", r.Proto, r.Lost, lo, hi)
		}
		// Some bucket lost everything, and the series adds up.
		var dark bool
		var sent, recv uint64
		for _, b := range r.Series {
			dark = dark || b.Sent > 0 && b.Received == 0
			sent += b.Sent
			recv += b.Received
		}
		if !dark || sent != r.Sent || recv != r.Received {
			t.Errorf("%s: series: a dark bucket %v, totals %d/%d", r.Proto, dark, sent, recv)
		}
	}
}

// A missing route makes sends fail: counted as errors and losses, the flow
// goes on and recovers when the route is back.
func TestNSSendErrors(t *testing.T) {
	src, dst := twoNS(t)
	f := startFlow(t, Spec{Proto: "udp", SrcNS: src.Name(), DstNS: dst.Name(), Src: nsSrcAddr, Dst: nsDstAddr, Rate: 50})
	waitFor(t, "10 probes", func() bool { return f.Snapshot().Received >= 10 })
	if _, err := src.Run(context.Background(), "ip", "link", "set", "eth0", "down"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 send errors", func() bool { return f.Snapshot().Errors >= 5 })
	if _, err := src.Run(context.Background(), "ip", "link", "set", "eth0", "up"); err != nil {
		t.Fatal(err)
	}
	before := f.Snapshot().Received
	waitFor(t, "traffic again", func() bool { return f.Snapshot().Received >= before+10 })
	r := f.Stop(2 * time.Second)
	t.Logf("sent %d received %d lost %d errors %d (%s) gap %v", r.Sent, r.Received, r.Lost, r.Errors, r.LastError, r.MaxGap)
	if r.Lost < r.Errors || r.Errors < 5 || r.LastError == "" {
		t.Fatalf("lost %d errors %d last error %q", r.Lost, r.Errors, r.LastError)
	}
}

func TestNSBadNamespace(t *testing.T) {
	src, _ := twoNS(t)
	_, err := Start(context.Background(), Spec{Proto: "udp", SrcNS: src.Name(), DstNS: "vl-missing", Dst: nsDstAddr})
	if err == nil || !strings.Contains(err.Error(), "vl-missing") {
		t.Fatalf("missing namespace: %v", err)
	}
}
