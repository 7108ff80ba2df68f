package wanem

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

// testLab is left 10.1.0.2 -- (la 10.1.0.1) wan (lb 10.2.0.1) -- 10.2.0.2 right,
// with the forwarder between la and lb.
type testLab struct {
	lab              *netlab.Lab
	left, wan, right *netlab.NS
	f                *Forwarder
	leftIP, rightIP  netip.Addr
}

var (
	leftIP  = netip.MustParseAddr("10.1.0.2")
	rightIP = netip.MustParseAddr("10.2.0.2")
)

func newTestLab(t testing.TB, opt Options) *testLab {
	t.Helper()
	l, err := netlab.New(t)
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLab{lab: l, leftIP: leftIP, rightIP: rightIP}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tl.left, err = l.AddNS("left")
	must(err)
	tl.wan, err = l.AddNS("wan")
	must(err)
	tl.right, err = l.AddNS("right")
	must(err)
	must(l.Link(tl.left, "eth0", netip.MustParsePrefix("10.1.0.2/24"), tl.wan, "la", netip.MustParsePrefix("10.1.0.1/24")))
	must(l.Link(tl.wan, "lb", netip.MustParsePrefix("10.2.0.1/24"), tl.right, "eth0", netip.MustParsePrefix("10.2.0.2/24")))
	must(tl.left.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.1.0.1")))
	must(tl.right.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.2.0.1")))
	must(tl.wan.EnableForwarding())
	if opt.LinkA == "" {
		opt.LinkA, opt.LinkB = "la", "lb"
	}
	opt.Steer = tl.wan.Nft
	if opt.Logf == nil {
		opt.Logf = t.Logf
	}
	must(tl.wan.Do(func() error {
		var err error
		tl.f, err = New(opt)
		return err
	}))
	tl.f.Start()
	t.Cleanup(func() {
		if err := tl.f.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return tl
}

// set installs one path left<->right with the given impairments.
func (tl *testLab) set(t testing.TB, ab, ba Impairment) {
	t.Helper()
	if err := tl.f.Set(Config{Seed: 42, Paths: []Path{{Name: "p", A: tl.leftIP, B: tl.rightIP, AtoB: ab, BtoA: ba}}}); err != nil {
		t.Fatal(err)
	}
}

// counters returns the a->b and b->a counters of path "p".
func (tl *testLab) counters() (ab, ba CounterValues) {
	for _, c := range tl.f.Counters() {
		if c.Path == "p" && c.Direction == "a->b" {
			ab = c.CounterValues
		} else if c.Path == "p" {
			ba = c.CounterValues
		}
	}
	return
}

var rttRe = regexp.MustCompile(`rtt min/avg/max/mdev = ([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+) ms`)

// ping runs ping from left to right and returns min, avg, max, mdev.
func (tl *testLab) ping(t testing.TB, count int, interval string, size int) (rtt [4]time.Duration, received int) {
	t.Helper()
	out, _ := tl.left.Run(context.Background(), "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", interval, "-s", strconv.Itoa(size), "-W", "3", tl.rightIP.String())
	m := rttRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("ping: no rtt in %q", out)
	}
	for i := range rtt {
		v, _ := strconv.ParseFloat(m[i+1], 64)
		rtt[i] = time.Duration(v * float64(time.Millisecond))
	}
	rm := regexp.MustCompile(`(\d+) received`).FindStringSubmatch(string(out))
	if rm != nil {
		received, _ = strconv.Atoi(rm[1])
	}
	return rtt, received
}

// udpSink listens on right:port and records the received datagrams.
type udpSink struct {
	conn *net.UDPConn
	got  chan []byte
}

func (tl *testLab) udpSink(t testing.TB, port int) *udpSink {
	t.Helper()
	var c *net.UDPConn
	if err := tl.right.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero, Port: port})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(8 << 20)
	s := &udpSink{conn: c, got: make(chan []byte, 200000)}
	go func() {
		for {
			b := make([]byte, 2048)
			n, err := c.Read(b)
			if err != nil {
				close(s.got)
				return
			}
			s.got <- b[:n]
		}
	}()
	t.Cleanup(func() { c.Close() })
	return s
}

// collect returns what arrived until nothing came for quiet.
func (s *udpSink) collect(quiet time.Duration) [][]byte {
	var out [][]byte
	for {
		select {
		case b, ok := <-s.got:
			if !ok {
				return out
			}
			out = append(out, b)
		case <-time.After(quiet):
			return out
		}
	}
}

// udpSender is a UDP socket in left connected to right:port.
func (tl *testLab) udpSender(t testing.TB, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := tl.left.Do(func() error {
		var err error
		c, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: tl.rightIP.AsSlice(), Port: port})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetWriteBuffer(8 << 20)
	t.Cleanup(func() { c.Close() })
	return c
}

// sendNumbered sends n datagrams of size bytes carrying their number,
// pausing every burst packets for gap (not to overflow socket buffers).
func sendNumbered(t testing.TB, c *net.UDPConn, n, size, burst int, gap time.Duration) {
	t.Helper()
	b := make([]byte, size)
	for i := 0; i < n; i++ {
		for j := range b {
			b[j] = byte(i + j)
		}
		b[0], b[1], b[2], b[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		if _, err := c.Write(b); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if burst > 0 && (i+1)%burst == 0 {
			time.Sleep(gap)
		}
	}
}

func seqOf(b []byte) int { return int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3]) }

func TestSmokeForward(t *testing.T) {
	tl := newTestLab(t, Options{})
	tl.set(t, Impairment{}, Impairment{})
	rtt, got := tl.ping(t, 5, "0.05", 56)
	ab, ba := tl.counters()
	t.Logf("rtt %v, received %d, a->b %+v b->a %+v", rtt, got, ab, ba)
	if got != 5 || ab.Forwarded < 5 || ba.Forwarded < 5 {
		t.Fatalf("received %d of 5; forwarded a->b %d b->a %d", got, ab.Forwarded, ba.Forwarded)
	}
}
