package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/traffic"
	"github.com/vpnlab/vpnlab/internal/wanem"
)

// The WAN emulation in the lab: the forwarder in the WAN router, the
// impairments of wan steps and the faults of impair steps it applies, and
// the conditions over its counters and the related tunnel and flow fields.

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
	flowFields["min_delay"] = "smallest delay (as avg_delay): a configured delay shows here however loaded the machine is"
}

// sizeField reads the size counters summed over the tunnel's SA pairs.
func sizeField(t *status.Tunnel, field string) (string, bool) {
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
	case "min_delay":
		return r.MinDelay.Round(100 * time.Microsecond).String(), true
	}
	return "", false
}
