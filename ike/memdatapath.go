package ike

import (
	"fmt"
	"sync"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
)

// MemoryDataPath is a DataPath that only records SAs: the test double of the
// ESP/AH data path, and the data path of a gateway run without one.
type MemoryDataPath struct {
	mu        sync.Mutex
	pairs     map[uint64]ChildSAPair // by protocol<<32 | inbound SPI
	allocated map[uint64]bool
	last      map[uint64]time.Time
	staged    map[uint64]bool   // inbound only: InstallInbound, not yet ActivateOutbound
	senders   map[string]uint64 // tunnel -> the pair that sends (key of pairs)
	installs  int
	limitFn   func(SALimit)
}

// OnLimit implements SALimitSource.
func (m *MemoryDataPath) OnLimit(fn func(SALimit)) {
	m.mu.Lock()
	m.limitFn = fn
	m.mu.Unlock()
}

// Limit simulates a lifetime event of the data path (byte lifetime or
// sequence number space), as the real data path reports it.
func (m *MemoryDataPath) Limit(l SALimit) {
	m.mu.Lock()
	fn := m.limitFn
	m.mu.Unlock()
	if fn != nil {
		fn(l)
	}
}

// NewMemoryDataPath returns an empty MemoryDataPath.
func NewMemoryDataPath() *MemoryDataPath {
	return &MemoryDataPath{pairs: map[uint64]ChildSAPair{}, allocated: map[uint64]bool{}, last: map[uint64]time.Time{},
		staged: map[uint64]bool{}, senders: map[string]uint64{}}
}

func spiKey(proto uint8, spi uint32) uint64 { return uint64(proto)<<32 | uint64(spi) }

// AllocateSPI returns a random unused SPI >= 256.
func (m *MemoryDataPath) AllocateSPI(proto uint8) (uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	spi, err := childsa.RandomSPI(func(spi uint32) bool { return m.allocated[spiKey(proto, spi)] })
	if err == nil {
		m.allocated[spiKey(proto, spi)] = true
	}
	return spi, err
}

// Install records a pair; the tunnel sends on it from now on.
func (m *MemoryDataPath) Install(p ChildSAPair) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := spiKey(p.Inbound.Protocol, p.Inbound.SPI)
	m.pairs[k] = p
	delete(m.staged, k)
	m.senders[p.Tunnel] = k
	m.installs++
	return nil
}

// InstallInbound implements StagedDataPath: the pair is recorded, its
// inbound SA counts as installed, the tunnel's sender does not change.
func (m *MemoryDataPath) InstallInbound(p ChildSAPair) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := spiKey(p.Inbound.Protocol, p.Inbound.SPI)
	if _, ok := m.pairs[k]; ok {
		return fmt.Errorf("memory data path: SPI %08x is installed already", p.Inbound.SPI)
	}
	m.pairs[k] = p
	m.staged[k] = true
	return nil
}

// ActivateOutbound implements StagedDataPath: the tunnel sends on the pair
// from now on. It counts as an install (the pair is complete).
func (m *MemoryDataPath) ActivateOutbound(proto uint8, spi uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := spiKey(proto, spi)
	p, ok := m.pairs[k]
	if !ok {
		return fmt.Errorf("memory data path: no pair with inbound SPI %08x to activate", spi)
	}
	delete(m.staged, k)
	m.senders[p.Tunnel] = k
	m.installs++
	return nil
}

// Delete forgets a pair (staged or not). When it was its tunnel's sender,
// the newest other complete pair is not known here: the tunnel has no
// sender until the next Install or ActivateOutbound, unless one is left
// (then the one left sends, as the real data path's fallback does).
func (m *MemoryDataPath) Delete(proto uint8, spi uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := spiKey(proto, spi)
	p, had := m.pairs[k]
	delete(m.pairs, k)
	delete(m.allocated, k)
	delete(m.last, k)
	delete(m.staged, k)
	if had && m.senders[p.Tunnel] == k {
		delete(m.senders, p.Tunnel)
		for ok, op := range m.pairs {
			if op.Tunnel == p.Tunnel && !m.staged[ok] {
				m.senders[p.Tunnel] = ok
				break
			}
		}
	}
	return nil
}

// Sender returns the pair the tunnel sends on, if any.
func (m *MemoryDataPath) Sender(tunnel string) (ChildSAPair, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.senders[tunnel]
	if !ok {
		return ChildSAPair{}, false
	}
	return m.pairs[k], true
}

// Staged reports whether the pair with this inbound SPI is installed
// inbound only (InstallInbound without ActivateOutbound).
func (m *MemoryDataPath) Staged(proto uint8, spi uint32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.staged[spiKey(proto, spi)]
}

// Allocated reports whether the SPI is allocated or installed.
func (m *MemoryDataPath) Allocated(proto uint8, spi uint32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.allocated[spiKey(proto, spi)]
}

// LastInbound reports the time set by MarkInbound.
func (m *MemoryDataPath) LastInbound(proto uint8, spi uint32) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last[spiKey(proto, spi)]
}

// MarkInbound simulates an authenticated inbound packet on an SA.
func (m *MemoryDataPath) MarkInbound(proto uint8, spi uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last[spiKey(proto, spi)] = time.Now()
}

// Pairs returns the installed pairs, staged ones included.
func (m *MemoryDataPath) Pairs() []ChildSAPair {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ChildSAPair, 0, len(m.pairs))
	for _, p := range m.pairs {
		out = append(out, p)
	}
	return out
}

// Installs counts the pairs completed: Install and ActivateOutbound calls.
func (m *MemoryDataPath) Installs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.installs
}

var _ StagedDataPath = (*MemoryDataPath)(nil)
