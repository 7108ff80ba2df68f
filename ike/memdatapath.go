package ike

import (
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
	return &MemoryDataPath{pairs: map[uint64]ChildSAPair{}, allocated: map[uint64]bool{}, last: map[uint64]time.Time{}}
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

// Install records a pair.
func (m *MemoryDataPath) Install(p ChildSAPair) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pairs[spiKey(p.Inbound.Protocol, p.Inbound.SPI)] = p
	m.installs++
	return nil
}

// Delete forgets a pair.
func (m *MemoryDataPath) Delete(proto uint8, spi uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pairs, spiKey(proto, spi))
	delete(m.allocated, spiKey(proto, spi))
	delete(m.last, spiKey(proto, spi))
	return nil
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

// Pairs returns the installed pairs.
func (m *MemoryDataPath) Pairs() []ChildSAPair {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ChildSAPair, 0, len(m.pairs))
	for _, p := range m.pairs {
		out = append(out, p)
	}
	return out
}

// Installs counts Install calls.
func (m *MemoryDataPath) Installs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.installs
}
