package wanem

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/natt"
)

func TestFilters(t *testing.T) {
	udp := func(sport, dport uint16, payload []byte) []byte {
		f := testFrame(leftIP, rightIP, len(payload))
		ip := f[hdrRoom:]
		binary.BigEndian.PutUint16(ip[20:], sport)
		binary.BigEndian.PutUint16(ip[22:], dport)
		copy(ip[28:], payload)
		return ip
	}
	ike500 := udp(500, 500, make([]byte, 40))
	ike4500 := udp(4500, 4500, append([]byte{0, 0, 0, 0}, make([]byte, 40)...))
	espUDP := udp(4500, 4500, append([]byte{0, 0, 1, 2}, make([]byte, 40)...))
	keepalive := udp(4500, 4500, []byte{0xff})
	espRaw := append([]byte(nil), ike500...)
	espRaw[9] = 50
	other := udp(5000, 6000, make([]byte, 10))
	for _, c := range []struct {
		name          string
		ip            []byte
		all, ike, esp bool
	}{
		{"IKE 500", ike500, true, true, false},
		{"IKE 4500", ike4500, true, true, false},
		{"ESP in UDP", espUDP, true, false, true},
		{"NAT keepalive", keepalive, true, false, false},
		{"raw ESP", espRaw, true, false, true},
		{"other UDP", other, true, false, false},
	} {
		if got := filtered(&Impairment{DropAll: true}, c.ip); got != c.all {
			t.Errorf("%s: DropAll %v", c.name, got)
		}
		if got := filtered(&Impairment{DropIKE: true}, c.ip); got != c.ike {
			t.Errorf("%s: DropIKE %v", c.name, got)
		}
		if got := filtered(&Impairment{DropESP: true}, c.ip); got != c.esp {
			t.Errorf("%s: DropESP %v", c.name, got)
		}
	}
}

// TestCorruptKeepsHeaders: the flipped bit is after the ESP SPI and
// sequence number (or the ISAKMP header), and a complete UDP checksum
// still verifies, so the receiver fails the ICV or HASH, not UDP.
func TestCorruptKeepsHeaders(t *testing.T) {
	for _, c := range []struct {
		name  string
		sport uint16
		lead  []byte
		skip  int // payload bytes that must not change
	}{
		{"ESP in UDP", 4500, []byte{0, 0, 1, 2, 0, 0, 0, 9}, 8},
		{"IKE on 4500", 4500, []byte{0, 0, 0, 0}, 4 + 28},
		{"IKE on 500", 500, nil, 28},
	} {
		d := newDirection("t", Impairment{Corrupt: 1}, 7, &Counters{})
		for i := 0; i < 200; i++ {
			f := testFrame(leftIP, rightIP, 100)
			ip := f[hdrRoom:]
			binary.BigEndian.PutUint16(ip[20:], c.sport)
			binary.BigEndian.PutUint16(ip[22:], c.sport)
			copy(ip[28:], c.lead)
			binary.BigEndian.PutUint16(ip[26:], 0)
			ck, _ := natt.Checksum(leftIP, rightIP, natt.ProtoUDP, ip[20:])
			binary.BigEndian.PutUint16(ip[26:], ck)
			orig := append([]byte(nil), ip...)
			if !corrupt(f, d) {
				t.Fatalf("%s: nothing corrupted", c.name)
			}
			diff := 0
			for j := range ip {
				if ip[j] != orig[j] {
					diff++
					if j < 28+c.skip && j != 26 && j != 27 {
						t.Fatalf("%s: byte %d changed (header or protected prefix)", c.name, j)
					}
				}
			}
			if diff == 0 || !natt.Verify(leftIP, rightIP, natt.ProtoUDP, ip[20:]) {
				t.Fatalf("%s: %d bytes changed, UDP checksum verifies: %v", c.name, diff, natt.Verify(leftIP, rightIP, natt.ProtoUDP, ip[20:]))
			}
		}
	}
}

func TestValidateConfig(t *testing.T) {
	for _, c := range []struct {
		im   Impairment
		want string
	}{
		{Impairment{Jitter: time.Millisecond, Distribution: "pareto"}, `unknown jitter distribution "pareto" (known: uniform, normal)`},
		{Impairment{Loss: 1.5}, "loss 1.5 is not a share"},
		{Impairment{Loss: 0.1, Burst: &GilbertElliott{P: 0.1, R: 0.5}}, "either loss or a burst"},
		{Impairment{MTU: 20}, "mtu 20 is not in 68..65535"},
		{Impairment{MTUMode: "frag"}, `unknown mtu mode "frag"`},
		{Impairment{Delay: -time.Second}, "must not be negative"},
		{Impairment{ReorderGap: 1000}, "reorder gap 1000"},
	} {
		c2 := Config{Paths: []Path{{Name: "x", A: leftIP, B: rightIP, BtoA: c.im}}}
		err := c2.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "x (10.2.0.2 -> 10.1.0.2)") {
			t.Errorf("%+v: %v, want %q", c.im, err, c.want)
		}
	}
	if err := (&Config{Paths: []Path{{A: leftIP, B: rightIP}, {A: leftIP, B: rightIP}}}).Validate(); err == nil {
		t.Error("two paths with the same addresses accepted")
	}
}

// TestLatencyDistributions: uniform jitter stays in [delay-jitter,
// delay+jitter] with the mean at delay; normal jitter has the jitter as its
// standard deviation; never below 0 (exact, from the model, no clock).
func TestLatencyDistributions(t *testing.T) {
	const n = 20000
	for _, c := range []struct {
		dist         string
		delay, jit   time.Duration
		minV, maxV   time.Duration // hard bounds
		wantSD       float64       // ms, ±10 %
		wantMeanSlop float64       // ms
	}{
		{"uniform", 50 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 70 * time.Millisecond, 20 / math.Sqrt(3), 0.5},
		{"normal", 50 * time.Millisecond, 10 * time.Millisecond, 0, time.Hour, 10, 0.5},
		{"normal", 5 * time.Millisecond, 10 * time.Millisecond, 0, time.Hour, -1, -1}, // clamped at 0
	} {
		d := newDirection("t", Impairment{Delay: c.delay, Jitter: c.jit, Distribution: c.dist}, 3, &Counters{})
		var sum, sq float64
		for i := 0; i < n; i++ {
			v := time.Duration(d.latency())
			if v < c.minV || v > c.maxV {
				t.Fatalf("%s %v±%v: %v outside [%v, %v]", c.dist, c.delay, c.jit, v, c.minV, c.maxV)
			}
			ms := float64(v) / 1e6
			sum += ms
			sq += ms * ms
		}
		mean := sum / n
		sd := math.Sqrt(sq/n - mean*mean)
		if c.wantSD > 0 && (math.Abs(mean-float64(c.delay)/1e6) > c.wantMeanSlop || math.Abs(sd-c.wantSD) > c.wantSD*0.1) {
			t.Errorf("%s %v±%v: mean %.2f ms, sd %.2f ms (want %.2f)", c.dist, c.delay, c.jit, mean, sd, c.wantSD)
		}
	}
}

// TestPacer: at three times the packet rate for 2 s of virtual time, the
// pacer passes the rate's worth plus its queue (50 ms) and drops the rest.
func TestPacer(t *testing.T) {
	d := newDirection("t", Impairment{RatePackets: 1000}, 1, &Counters{})
	passed, dropped, total := 0, 0, 0
	last := int64(0)
	for now := int64(0); now < int64(2*time.Second); now += int64(time.Second) / 3000 {
		total++
		dep, ok := d.shape(now)
		if !ok {
			dropped++
			continue
		}
		if dep < now || dep < last {
			t.Fatalf("departure %d before arrival %d or the previous %d", dep, now, last)
		}
		last = dep
		passed++
	}
	if passed < 2000 || passed > 2051 || dropped != total-passed {
		t.Fatalf("passed %d, dropped %d", passed, dropped)
	}
}
