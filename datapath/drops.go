package datapath

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

var (
	errAHNAT     = errors.New("AH cannot cross NAT: it authenticates the outer IP addresses, which NAT rewrites (RFC 3715 section 2.1); use ESP")
	errOuterIPv6 = errors.New("IPv6 outer addresses are not supported by this data path (IPv4 only)")
)

// dropReason is a data-path drop that belongs to no SA.
type dropReason int

const (
	dropNoSA      dropReason = iota // unknown SPI
	dropNoRoute                     // inside packet to a destination no SA covers
	dropMalformed                   // too short to find an SPI, bad IP header
	dropNotIP                       // inside packet that is neither IPv4 nor IPv6
	dropTunWrite                    // the inside device refused a packet
	numGlobalDrops
)

var globalDropNames = [numGlobalDrops]string{"no-sa", "no-route", "malformed", "not-ip", "tun-write"}

type globalDrops [numGlobalDrops]atomic.Uint64

func (g *globalDrops) add(r dropReason) { g[r].Add(1) }

func (g *globalDrops) snapshot() map[string]uint64 {
	m := make(map[string]uint64, numGlobalDrops)
	for i := range g {
		m[globalDropNames[i]] = g[i].Load()
	}
	return m
}

// rateLimiter lets one log line per reason through per interval, so a flood
// of bad packets is counted, and logged a few times, never per packet.
type rateLimiter struct {
	last [numGlobalDrops + 8]atomic.Int64
}

const logInterval = 5 * time.Second

// allow reports whether a line for slot may be logged now.
func (r *rateLimiter) allow(slot int) bool {
	now := time.Now().UnixNano()
	l := r.last[slot].Load()
	if now-l < int64(logInterval) {
		return false
	}
	return r.last[slot].CompareAndSwap(l, now)
}

// Log slots beyond the global drop reasons.
const (
	slotSADrop = int(numGlobalDrops) + iota
	slotSelector
	slotSend
	slotExpired
)

func (d *DataPath) dropGlobal(r dropReason, f logrus.Fields) {
	d.drops.add(r)
	if d.rl.allow(int(r)) {
		d.log.WithFields(f).WithField("reason", globalDropNames[r]).WithField("total", d.drops[r].Load()).Warn("data path: packet dropped (logged at most every 5 s per reason)")
	}
}
