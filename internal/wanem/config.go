package wanem

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Config is the whole impairment table of a Forwarder. Set replaces it at
// run time.
type Config struct {
	// Paths are the impaired paths, matched by outer addresses. Traffic of
	// no path is left to the kernel's forwarding.
	Paths []Path
	// Seed makes the random choices repeatable: each direction of each
	// path draws from its own generator seeded from Seed, the path's index
	// and the direction (0: random seed).
	Seed uint64
}

// Path is one tunnel's outside path: the packets between A (an address on
// the forwarder's link A side) and B (on link B's side).
type Path struct {
	Name string     // for logs and counters (e.g. "tunnel1")
	A, B netip.Addr // outer addresses
	AtoB Impairment // packets from A to B
	BtoA Impairment // packets from B to A
}

// Impairment is what one direction of a path suffers. The zero value
// forwards every packet unchanged.
type Impairment struct {
	Delay        time.Duration // added to every packet
	Jitter       time.Duration // spread around Delay (the result is never below 0)
	Distribution string        // of the jitter: "uniform" (default) or "normal" (Jitter is the standard deviation)

	// Loss: a share of packets dropped (0..1), independently; or, with
	// Burst set, the Gilbert-Elliott model instead.
	Loss  float64
	Burst *GilbertElliott

	Reorder    float64 // share of packets held back (0..1)
	ReorderGap int     // a held packet leaves after this many later packets (default 3; at most 1 s later)

	Duplicate float64 // share of packets sent twice
	Corrupt   float64 // share of packets with one bit flipped in the ESP/IKE payload

	RateBits    uint64 // bit/s of the frames (kernel htb + tbf on the out link); 0: unlimited
	RatePackets uint64 // packets/s (the forwarder's pacer); 0: unlimited
	// RateQueue bounds the backlog in time (default 50 ms): tbf's queue
	// holds this much at RateBits, the pacer lets no packet wait longer;
	// what does not fit is dropped (dropped_rate).
	RateQueue time.Duration

	// Drop filters (the scenario runner's faults on a path the forwarder
	// carries): every packet, IKE (UDP 500, UDP 4500 with the non-ESP
	// marker), or ESP (protocol 50, UDP 4500 without the marker).
	DropAll, DropIKE, DropESP bool

	MTU     int    // largest IP packet passed; 0: no limit
	MTUMode string // "icmp" (default: fragmentation needed back to the sender) or "drop" (silent)
}

// GilbertElliott is the two-state burst loss model: in the good state a
// packet is lost with LossGood (usually 0), in the bad state with LossBad
// (default 1); after each packet the good state turns bad with P and the
// bad state good with R.
type GilbertElliott struct {
	P, R     float64
	LossGood float64
	LossBad  float64
}

// AWS's per-tunnel throughput quota (AWS Site-to-Site VPN quotas: up to
// 1.25 Gbit/s and 140,000 packets per second per tunnel).
const (
	AWSRateBits    = 1_250_000_000
	AWSRatePackets = 140_000
)

// MaxRateBits is the highest bit rate (100 Gbit/s, far above a veth's).
const MaxRateBits = 100_000_000_000

// Distributions the jitter may follow.
var Distributions = []string{"uniform", "normal"}

// MTU modes.
var MTUModes = []string{"icmp", "drop"}

// Validate says what is wrong with the configuration (nil: nothing).
func (c *Config) Validate() error {
	var errs []error
	seen := map[[2]netip.Addr]string{}
	for i := range c.Paths {
		p := &c.Paths[i]
		name := p.Name
		if name == "" {
			name = fmt.Sprintf("path %d", i+1)
		}
		if !p.A.Is4() || !p.B.Is4() {
			errs = append(errs, fmt.Errorf("%s: addresses must be IPv4 (a=%v, b=%v)", name, p.A, p.B))
			continue
		}
		if other, dup := seen[[2]netip.Addr{p.A, p.B}]; dup {
			errs = append(errs, fmt.Errorf("%s: same addresses as %s", name, other))
		}
		seen[[2]netip.Addr{p.A, p.B}] = name
		if err := p.AtoB.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s (%v -> %v): %w", name, p.A, p.B, err))
		}
		if err := p.BtoA.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s (%v -> %v): %w", name, p.B, p.A, err))
		}
	}
	return errors.Join(errs...)
}

// Validate checks one direction's impairment.
func (im *Impairment) Validate() error {
	var errs []error
	share := func(name string, v float64) {
		if v < 0 || v > 1 || v != v {
			errs = append(errs, fmt.Errorf("%s %v is not a share between 0 and 1", name, v))
		}
	}
	if im.Delay < 0 || im.Jitter < 0 {
		errs = append(errs, errors.New("delay and jitter must not be negative"))
	}
	if im.Delay > time.Minute || im.Jitter > time.Minute {
		errs = append(errs, errors.New("delay and jitter are at most 1m"))
	}
	if err := CheckDistribution(im.Distribution); err != nil {
		errs = append(errs, err)
	}
	share("loss", im.Loss)
	if im.Burst != nil {
		share("burst p", im.Burst.P)
		share("burst r", im.Burst.R)
		share("burst loss_good", im.Burst.LossGood)
		share("burst loss_bad", im.Burst.LossBad)
		if im.Loss != 0 {
			errs = append(errs, errors.New("give either loss or a burst (Gilbert-Elliott) model, not both"))
		}
	}
	share("reorder", im.Reorder)
	if im.ReorderGap < 0 || im.ReorderGap > maxHeld {
		errs = append(errs, fmt.Errorf("reorder gap %d is not in 0..%d", im.ReorderGap, maxHeld))
	}
	share("duplicate", im.Duplicate)
	share("corrupt", im.Corrupt)
	if im.RateQueue < 0 || im.RateQueue > 10*time.Second {
		errs = append(errs, fmt.Errorf("rate queue %v is not in 0..10s", im.RateQueue))
	}
	if im.RateBits > MaxRateBits {
		errs = append(errs, fmt.Errorf("rate %d bit/s is above %d", im.RateBits, uint64(MaxRateBits)))
	}
	if im.MTU != 0 && (im.MTU < 68 || im.MTU > 65535) {
		errs = append(errs, fmt.Errorf("mtu %d is not in 68..65535", im.MTU))
	}
	switch im.MTUMode {
	case "", "icmp", "drop":
	default:
		errs = append(errs, fmt.Errorf("unknown mtu mode %q (known: icmp, drop)", im.MTUMode))
	}
	return errors.Join(errs...)
}

// CheckDistribution refuses a jitter distribution this package does not
// know ("" is the default, uniform).
func CheckDistribution(d string) error {
	switch d {
	case "", "uniform", "normal":
		return nil
	}
	return fmt.Errorf("unknown jitter distribution %q (known: uniform, normal)", d)
}

// passthrough: the direction changes nothing but may drop or corrupt in
// place: packets need not be queued.
func (im *Impairment) queued() bool {
	return im.Delay > 0 || im.Jitter > 0 || im.Reorder > 0 || im.RatePackets > 0
}
