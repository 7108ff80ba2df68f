package scenarios

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vpnlab/vpnlab/internal/wanem"
)

// WAN emulation in the WAN router (package wanem): a `wan` step sets one
// tunnel's outside path impairments per direction, changeable at any step.

// WANStep is the `wan` step: what one tunnel's path (or all tunnels') suffers
// from now on, in one direction or both. It replaces what an earlier wan step
// set for that tunnel and direction; a step with no impairment clears it.
type WANStep struct {
	Tunnel       string    `yaml:"tunnel"`       // tunnel name or "all"
	Direction    string    `yaml:"direction"`    // to_aws, to_customer, both (default)
	Delay        Duration  `yaml:"delay"`        // one way
	Jitter       Duration  `yaml:"jitter"`       // uniform: +-jitter; normal: standard deviation
	Distribution string    `yaml:"distribution"` // uniform (default), normal
	Loss         float64   `yaml:"loss"`         // percent, independent
	Burst        *WANBurst `yaml:"burst"`        // Gilbert-Elliott loss instead
	Reorder      float64   `yaml:"reorder"`      // percent of packets held back
	ReorderGap   int       `yaml:"reorder_gap"`  // ... behind this many later packets (default 3)
	Duplicate    float64   `yaml:"duplicate"`    // percent
	Corrupt      float64   `yaml:"corrupt"`      // percent: one bit flipped in the ESP/IKE payload
	Rate         string    `yaml:"rate"`         // bit/s with unit (10mbit, 1.25gbit) or aws
	RatePPS      int       `yaml:"rate_pps"`     // packets per second
	MTU          int       `yaml:"mtu"`          // largest outer packet
	MTUMode      string    `yaml:"mtu_mode"`     // icmp (default), drop
	Seed         uint64    `yaml:"seed"`         // random seed of the whole WAN (default 1)
	lines        map[string]int
}

// WANBurst is the Gilbert-Elliott model in percent: p good->bad, r
// bad->good, loss in the bad state (default 100) and in the good (0).
type WANBurst struct {
	P        float64  `yaml:"p"`
	R        float64  `yaml:"r"`
	LossBad  *float64 `yaml:"loss_bad"`
	LossGood float64  `yaml:"loss_good"`
}

// UnmarshalYAML decodes the step and keeps each key's line for errors.
func (w *WANStep) UnmarshalYAML(n *yaml.Node) error {
	type plain WANStep
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*w = WANStep(p)
	w.lines = map[string]int{"": n.Line}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.lines[n.Content[i].Value] = n.Content[i].Line
		}
	}
	return nil
}

func (w *WANStep) line(key string) int {
	if l, ok := w.lines[key]; ok {
		return l
	}
	return w.lines[""]
}

// WAN directions.
var wanDirections = []string{"to_aws", "to_customer", "both"}

// parseRate reads "aws" or a bit rate with a unit: bit, kbit, mbit, gbit
// (decimal, as tc writes them).
func parseRate(s string) (uint64, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}} {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || f <= 0 || f*u.mult > wanem.MaxRateBits || math.IsNaN(f) {
				break
			}
			return uint64(f * u.mult), nil
		}
	}
	return 0, fmt.Errorf("rate %q: write aws or a bit rate such as 10mbit, 500kbit, 1.25gbit", s)
}

// impairment converts the step to the forwarder's form (validated).
func (w *WANStep) impairment() (wanem.Impairment, error) {
	im := wanem.Impairment{Delay: w.Delay.D(), Jitter: w.Jitter.D(), Distribution: w.Distribution,
		Loss: w.Loss / 100, Reorder: w.Reorder / 100, ReorderGap: w.ReorderGap, Duplicate: w.Duplicate / 100,
		Corrupt: w.Corrupt / 100, RatePackets: uint64(max(w.RatePPS, 0)), MTU: w.MTU, MTUMode: w.MTUMode}
	if w.Burst != nil {
		bad := 100.0
		if w.Burst.LossBad != nil {
			bad = *w.Burst.LossBad
		}
		im.Burst = &wanem.GilbertElliott{P: w.Burst.P / 100, R: w.Burst.R / 100, LossBad: bad / 100, LossGood: w.Burst.LossGood / 100}
	}
	if strings.EqualFold(strings.TrimSpace(w.Rate), "aws") {
		im.RateBits, im.RatePackets = wanem.AWSRateBits, wanem.AWSRatePackets
		if w.RatePPS != 0 {
			im.RatePackets = uint64(w.RatePPS)
		}
	} else if w.Rate != "" {
		r, err := parseRate(w.Rate)
		if err != nil {
			return im, err
		}
		im.RateBits = r
	}
	return im, im.Validate()
}

// validateWAN checks a wan step; errors carry the line of the key at fault.
func (p *plan) validateWAN(el *errList, what string, w *WANStep) {
	if p.nat {
		el.add(w.line(""), "%s: wan impairments need topology.wan.nat: none (the forwarder carries the tunnels' packets itself, past the router's NAT)", what)
	}
	if w.Tunnel != "all" && p.tunnel(w.Tunnel) == nil {
		el.add(w.line("tunnel"), "%s: no tunnel %q (tunnels: %s, or all)", what, w.Tunnel, strings.Join(p.tunnelNames(), ", "))
	}
	if w.Direction != "" && !contains(wanDirections, w.Direction) {
		el.add(w.line("direction"), "%s: direction %q is not allowed (allowed: %s)", what, w.Direction, strings.Join(wanDirections, ", "))
	}
	if err := wanem.CheckDistribution(w.Distribution); err != nil {
		el.add(w.line("distribution"), "%s: %v", what, err)
		return
	}
	for _, f := range []struct {
		key string
		v   float64
	}{{"loss", w.Loss}, {"reorder", w.Reorder}, {"duplicate", w.Duplicate}, {"corrupt", w.Corrupt}} {
		if f.v < 0 || f.v > 100 {
			el.add(w.line(f.key), "%s: %s %g is not a percentage (0-100)", what, f.key, f.v)
			return
		}
	}
	if b := w.Burst; b != nil {
		if b.P <= 0 || b.P > 100 || b.R <= 0 || b.R > 100 || b.LossGood < 0 || b.LossGood > 100 || (b.LossBad != nil && (*b.LossBad < 0 || *b.LossBad > 100)) {
			el.add(w.line("burst"), "%s: burst needs p and r in (0, 100] and loss_bad, loss_good in [0, 100] (percent)", what)
			return
		}
	}
	if w.RatePPS < 0 {
		el.add(w.line("rate_pps"), "%s: rate_pps must not be negative", what)
		return
	}
	if _, err := w.impairment(); err != nil {
		key := ""
		for _, k := range []string{"rate", "mtu_mode", "mtu", "reorder_gap", "burst", "delay", "jitter"} {
			if strings.Contains(err.Error(), strings.ReplaceAll(k, "_", " ")) {
				key = k
				break
			}
		}
		el.add(w.line(key), "%s: %v", what, err)
	}
}

// describeWAN is the step's one-line action.
func describeWAN(w *WANStep) string {
	dir := w.Direction
	if dir == "" {
		dir = "both"
	}
	var parts []string
	add := func(ok bool, format string, args ...any) {
		if ok {
			parts = append(parts, fmt.Sprintf(format, args...))
		}
	}
	add(w.Delay > 0, "delay %v", w.Delay.D())
	add(w.Jitter > 0, "jitter %v %s", w.Jitter.D(), orDefault(w.Distribution, "uniform"))
	add(w.Loss > 0, "loss %g%%", w.Loss)
	add(w.Burst != nil, "burst loss")
	add(w.Reorder > 0, "reorder %g%%", w.Reorder)
	add(w.Duplicate > 0, "duplicate %g%%", w.Duplicate)
	add(w.Corrupt > 0, "corrupt %g%%", w.Corrupt)
	add(w.Rate != "", "rate %s", w.Rate)
	add(w.RatePPS > 0, "%d packets/s", w.RatePPS)
	add(w.MTU > 0, "mtu %d (%s)", w.MTU, orDefault(w.MTUMode, "icmp"))
	if len(parts) == 0 {
		parts = []string{"no impairment"}
	}
	return fmt.Sprintf("wan %s %s: %s", w.Tunnel, dir, strings.Join(parts, ", "))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
