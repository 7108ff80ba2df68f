package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/wanem"
)

const wanMinimal = `name: t
steps:
  - wait: tunnel1 phase2 up
`

// The wan step's errors name the file, the line of the key at fault and
// what is allowed.
func TestWANStepErrors(t *testing.T) {
	for _, c := range []struct {
		name, step string
		nat        bool
		want       string
	}{
		{"unknown distribution", "  - wan:\n      tunnel: tunnel1\n      jitter: 5ms\n      distribution: pareto\n", false,
			`x.yaml:7: steps[1] (wan): unknown jitter distribution "pareto" (known: uniform, normal)`},
		{"unknown tunnel", "  - wan: {tunnel: tunnel9, delay: 10ms}\n", false, `x.yaml:4: steps[1] (wan): no tunnel "tunnel9" (tunnels: tunnel1, tunnel2, or all)`},
		{"direction", "  - wan:\n      tunnel: all\n      direction: up\n", false, `x.yaml:6: steps[1] (wan): direction "up" is not allowed (allowed: to_aws, to_customer, both)`},
		{"percent", "  - wan:\n      tunnel: all\n      loss: 150\n", false, "x.yaml:6: steps[1] (wan): loss 150 is not a percentage (0-100)"},
		{"rate", "  - wan:\n      tunnel: all\n      rate: fast\n", false, `x.yaml:6: steps[1] (wan): rate "fast": write aws or a bit rate such as 10mbit`},
		{"mtu", "  - wan:\n      tunnel: all\n      mtu: 20\n", false, "x.yaml:6: steps[1] (wan): mtu 20 is not in 68..65535"},
		{"mtu mode", "  - wan:\n      tunnel: all\n      mtu: 1300\n      mtu_mode: frag\n", false, `x.yaml:7: steps[1] (wan): unknown mtu mode "frag" (known: icmp, drop)`},
		{"burst", "  - wan:\n      tunnel: all\n      burst: {p: 0, r: 10}\n", false, "x.yaml:6: steps[1] (wan): burst needs p and r in (0, 100]"},
		{"loss and burst", "  - wan:\n      tunnel: all\n      loss: 1\n      burst: {p: 1, r: 10}\n", false, "either loss or a burst"},
		{"with nat", "  - wan: {tunnel: all, delay: 10ms}\n", true, "x.yaml:6: steps[1] (wan): wan impairments need topology.wan.nat: none"},
		{"unknown key", "  - wan: {tunnel: all, latency: 10ms}\n", false, `unknown key "latency"`},
		{"bad condition", "  - assert: wan tunnel1 sideways delayed > 0\n", false, "expected wan TUNNEL to_aws|to_customer COUNTER OP VALUE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := wanMinimal + c.step
			if c.nat {
				src = strings.Replace(src, "steps:\n", "topology:\n  wan: {nat: masquerade}\nsteps:\n", 1)
			}
			got := parseErr(t, src, Options{})
			if !strings.Contains(got, c.want) {
				t.Errorf("error\n%s\ndoes not contain\n%s", got, c.want)
			}
		})
	}
}

func TestWANStepParses(t *testing.T) {
	src := wanMinimal + `  - wan:
      tunnel: tunnel1
      direction: to_aws
      delay: 100ms
      jitter: 10ms
      distribution: normal
      burst: {p: 5, r: 25}
      reorder: 10
      reorder_gap: 5
      duplicate: 1
      corrupt: 0.5
      rate: aws
      mtu: 1300
      mtu_mode: drop
  - wan: {tunnel: all, rate: 1.25gbit, rate_pps: 1000}
  - assert: wan tunnel1 to_aws dropped_mtu >= 0
`
	s, err := Parse([]byte(src), "x.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	im, err := s.Steps[1].WAN.impairment()
	if err != nil {
		t.Fatal(err)
	}
	want := wanem.Impairment{Delay: 100 * time.Millisecond, Jitter: 10 * time.Millisecond, Distribution: "normal",
		Burst: &wanem.GilbertElliott{P: 0.05, R: 0.25, LossBad: 1}, Reorder: 0.1, ReorderGap: 5, Duplicate: 0.01, Corrupt: 0.005,
		RateBits: 1_250_000_000, RatePackets: 140_000, MTU: 1300, MTUMode: "drop"}
	if im.Burst == nil || *im.Burst != *want.Burst {
		t.Fatalf("burst %+v", im.Burst)
	}
	im.Burst, want.Burst = nil, nil
	if im != want {
		t.Fatalf("impairment\n%+v\nwant\n%+v", im, want)
	}
	im2, _ := s.Steps[2].WAN.impairment()
	if im2.RateBits != 1_250_000_000 || im2.RatePackets != 1000 {
		t.Fatalf("rate %d bit/s %d pps", im2.RateBits, im2.RatePackets)
	}
	if d := describeWAN(s.Steps[1].WAN); !strings.Contains(d, "wan tunnel1 to_aws: delay 100ms, jitter 10ms normal") {
		t.Errorf("describe: %s", d)
	}
	if c := s.Steps[3].asserts[0]; c.Kind != "wan" || c.Tunnel != "tunnel1" || c.Field != "to_aws" || c.Name != "dropped_mtu" {
		t.Errorf("condition %+v", c)
	}
}
