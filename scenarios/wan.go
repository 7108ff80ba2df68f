package scenarios

import (
	"time"

	"encoding/json"
	"fmt"
	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/internal/traffic"
	"math"
	"os"
	"path/filepath"
	"sort"
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
			if err != nil || f <= 0 || f*u.mult > 1e12 || math.IsNaN(f) {
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

// wanCounterFunc reads one direction of one tunnel's WAN counters.
type wanCounterFunc func(tunnel, dir string) (wanem.CounterValues, bool)

// wanLab is the lab's WAN emulation state: the forwarder (started by the
// first wan step), the impairments set by wan steps and the faults set by
// impair steps, per tunnel; index 0 is to_aws, 1 to_customer.
type wanLab struct {
	f      *wanem.Forwarder
	set    map[string]*[2]wanem.Impairment
	faults map[string][]ImpairStep
	seed   uint64
}

// noteFault records an impair step's fault (also before the forwarder
// runs: it takes them over when it starts).
func (l *lab) noteFault(tunnel, fault string, percent float64) {
	l.wanl.init()
	for _, t := range l.p.tunnels {
		if tunnel == "all" || t.Name == tunnel {
			l.wanl.faults[t.Name] = append(l.wanl.faults[t.Name], ImpairStep{Tunnel: t.Name, Fault: fault, Percent: percent})
		}
	}
}

func (w *wanLab) init() {
	if w.set == nil {
		w.set, w.faults, w.seed = map[string]*[2]wanem.Impairment{}, map[string][]ImpairStep{}, 1
	}
}

// restoreWAN forgets a tunnel's ("all": every tunnel's) wan impairments
// and faults; true when the forwarder runs (the caller applies the change).
func (l *lab) restoreWAN(tunnel string) bool {
	l.wanl.init()
	for _, t := range l.p.tunnels {
		if tunnel == "all" || t.Name == tunnel {
			delete(l.wanl.set, t.Name)
			delete(l.wanl.faults, t.Name)
		}
	}
	return l.wanl.f != nil
}

// wanStep applies a wan step (starting the forwarder the first time).
func (l *lab) wanStep(w *WANStep) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	im, err := w.impairment()
	if err != nil {
		return err
	}
	l.wanl.init()
	if w.Seed != 0 {
		l.wanl.seed = w.Seed
	}
	for _, t := range l.p.tunnels {
		if w.Tunnel != "all" && t.Name != w.Tunnel {
			continue
		}
		s := l.wanl.set[t.Name]
		if s == nil {
			s = &[2]wanem.Impairment{}
			l.wanl.set[t.Name] = s
		}
		if w.Direction != "to_customer" {
			s[0] = im
		}
		if w.Direction != "to_aws" {
			s[1] = im
		}
	}
	if l.wanl.f == nil {
		if err := l.startWAN(); err != nil {
			return err
		}
	}
	return l.applyWAN()
}

// startWAN starts the forwarder between the WAN router's two links; the
// nftables faults so far move into it (it carries every tunnel's path).
func (l *lab) startWAN() error {
	var f *wanem.Forwarder
	err := l.wan.Do(func() error {
		var e error
		f, e = wanem.New(wanem.Options{LinkA: wanCust, LinkB: wanPublic, Steer: l.wan.Nft})
		return e
	})
	if err != nil {
		return fmt.Errorf("starting the WAN emulation: %v", err)
	}
	f.Start()
	l.wanl.f = f
	var b strings.Builder
	for name := range l.impaired {
		fmt.Fprintf(&b, "flush chain inet vpnlab_impair t_%s\n", sanitizeChain(name))
	}
	if b.Len() > 0 {
		return l.wan.Nft(b.String())
	}
	return nil
}

// applyWAN gives the forwarder every tunnel's path: the wan steps'
// impairments plus the impair steps' faults (blackhole: every packet;
// drop-ike, drop-esp; loss: replaces the loss of both directions).
func (l *lab) applyWAN() error {
	c := wanem.Config{Seed: l.wanl.seed}
	for _, t := range l.p.tunnels {
		var ims [2]wanem.Impairment
		if s := l.wanl.set[t.Name]; s != nil {
			ims = *s
		}
		for i := range ims {
			for _, fl := range l.wanl.faults[t.Name] {
				switch fl.Fault {
				case "blackhole":
					ims[i].DropAll = true
				case "drop-ike":
					ims[i].DropIKE = true
				case "drop-esp":
					ims[i].DropESP = true
				case "loss":
					ims[i].Loss, ims[i].Burst = fl.Percent/100, nil
				}
			}
		}
		c.Paths = append(c.Paths, wanem.Path{Name: t.Name, A: l.p.cgwOutside.Addr(), B: t.AWSOutside, AtoB: ims[0], BtoA: ims[1]})
	}
	return l.wanl.f.Set(c)
}

// wanCounters returns one direction's counters ("to_aws", "to_customer").
func (l *lab) wanCounters(tunnel, dir string) (wanem.CounterValues, bool) {
	l.mu.Lock()
	f := l.wanl.f
	l.mu.Unlock()
	if f == nil {
		return wanem.CounterValues{}, false
	}
	want := map[string]string{"to_aws": "a->b", "to_customer": "b->a"}[dir]
	for _, c := range f.Counters() {
		if c.Path == tunnel && c.Direction == want {
			return c.CounterValues, true
		}
	}
	return wanem.CounterValues{}, false
}

// Close stops the forwarder (writing its counters to wan.json in the
// output folder) and tears the lab down.
func (l *lab) Close() error {
	l.mu.Lock()
	f := l.wanl.f
	l.wanl.f = nil
	l.mu.Unlock()
	if f != nil {
		cs := f.Counters()
		_ = f.Stop()
		out := map[string]map[string]wanem.CounterValues{}
		for _, c := range cs {
			dir := map[string]string{"a->b": "to_aws", "b->a": "to_customer"}[c.Direction]
			if out[c.Path] == nil {
				out[c.Path] = map[string]wanem.CounterValues{}
			}
			out[c.Path][dir] = c.CounterValues
		}
		if b, err := json.MarshalIndent(out, "", "  "); err == nil {
			_ = os.WriteFile(filepath.Join(l.LogDir(), "wan.json"), append(b, '\n'), 0o644)
		}
	}
	return l.Lab.Close()
}

// wanFields are the counters of "wan TUNNEL DIRECTION COUNTER OP VALUE".
var wanFields = func() []string {
	b, _ := json.Marshal(wanem.CounterValues{})
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	var l []string
	for k := range m {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
}()

// parseWANCond parses "wan TUNNEL DIRECTION COUNTER OP VALUE".
func (c *Cond) parseWAN(t []string) error {
	c.Kind = "wan"
	if len(t) != 5 || !contains([]string{"to_aws", "to_customer"}, t[1]) || !contains(wanFields, t[2]) {
		return fmt.Errorf("expected wan TUNNEL to_aws|to_customer COUNTER OP VALUE with COUNTER one of %s", strings.Join(wanFields, ", "))
	}
	c.Tunnel, c.Field, c.Name = t[0], t[1], t[2]
	return c.setOp(t[3], t[4])
}

// evalWAN evaluates a wan condition against the forwarder's counters.
func evalWAN(c *Cond, get func(tunnel, dir string) (wanem.CounterValues, bool)) (bool, string) {
	if get == nil {
		return compare("0", c.Op, c.Value), "no WAN emulation running: 0"
	}
	v, ok := get(c.Tunnel, c.Field)
	if !ok {
		return compare("0", c.Op, c.Value), "no WAN emulation running: 0"
	}
	b, _ := json.Marshal(v)
	var m map[string]uint64
	_ = json.Unmarshal(b, &m)
	seen := strconv.FormatUint(m[c.Name], 10)
	return compare(seen, c.Op, c.Value), fmt.Sprintf("%s %s %s %s", c.Tunnel, c.Field, c.Name, seen)
}

// The tunnel fields of the data path's size handling and the flow fields of
// delay, which the WAN scenarios read.
func init() {
	tunnelFields["mss_clamped"] = "TCP SYNs whose MSS the data path lowered (mss_clamp), current SA pairs"
	tunnelFields["frag_before_encrypt"] = "inside packets fragmented before encryption (outside_mtu), current SA pairs"
	tunnelFields["icmp_frag_needed_sent"] = "ICMP fragmentation-needed sent to inside senders (outside_mtu, DF), current SA pairs"
	flowFields["avg_delay"] = "average delay: one way for udp and tcp, round trip for icmp"
	flowFields["max_delay"] = "largest delay (as avg_delay)"
}

// sizeField reads the size counters summed over the tunnel's SA pairs.
func sizeField(t *ike.TunnelStatus, field string) (string, bool) {
	var n uint64
	for i := range t.SAs {
		c := t.SAs[i].Counters
		if c == nil {
			continue
		}
		switch field {
		case "mss_clamped":
			n += c.MSSClamped
		case "frag_before_encrypt":
			n += c.FragBeforeEncrypt
		case "icmp_frag_needed_sent":
			n += c.ICMPFragNeededSent
		default:
			return "", false
		}
	}
	switch field {
	case "mss_clamped", "frag_before_encrypt", "icmp_frag_needed_sent":
		return strconv.FormatUint(n, 10), true
	}
	return "", false
}

// delayField reads a flow's delay fields.
func delayField(r traffic.Result, field string) (string, bool) {
	switch field {
	case "avg_delay":
		return r.AvgDelay.Round(100 * time.Microsecond).String(), true
	case "max_delay":
		return r.MaxDelay.Round(100 * time.Microsecond).String(), true
	}
	return "", false
}
