package ike

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/netip"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/dh"
)

// Fixed Diffie-Hellman keys for the fuzz harness (the engines' dhKeys
// hook, dhkeys.go): one key pair per engine address and group, generated
// once per process, whose SharedSecret results are memoised by peer value.
// The same private key and the same peer value always give the same secret
// (or the same validation error), so the memo returns exactly what the
// computation would; an execution then costs no ECP/MODP arithmetic for
// the harness's own exchanges, while a fuzzed KE that is new still goes
// through the group's validation and arithmetic.

// fuzzDHMemoMax bounds each key's memo; past it, results are computed and
// not kept (fuzzed KE values are mostly new, the harness's own few repeat).
const fuzzDHMemoMax = 4096

type fuzzDHID struct {
	addr  netip.Addr
	group uint16
}

var fuzzDH = struct {
	sync.Mutex
	keys map[fuzzDHID]*memoDHKey
}{keys: map[fuzzDHID]*memoDHKey{}}

// memoDHKey is a fixed key pair with memoised SharedSecret results.
type memoDHKey struct {
	mu   sync.Mutex
	k    dh.Key
	pub  []byte
	memo map[string]dhResult
}

type dhResult struct {
	secret []byte
	err    error
}

func (m *memoDHKey) Public() []byte { return append([]byte(nil), m.pub...) }

func (m *memoDHKey) SharedSecret(peer []byte) ([]byte, error) {
	m.mu.Lock()
	r, ok := m.memo[string(peer)]
	m.mu.Unlock()
	if !ok {
		r.secret, r.err = m.k.SharedSecret(peer)
		m.mu.Lock()
		if len(m.memo) < fuzzDHMemoMax {
			m.memo[string(peer)] = r
		}
		m.mu.Unlock()
	}
	return append([]byte(nil), r.secret...), r.err
}

// fixedDHKey is the harness's key of group g for the engine at addr.
func fixedDHKey(addr netip.Addr, g dh.Group) (dh.Key, error) {
	fuzzDH.Lock()
	defer fuzzDH.Unlock()
	id := fuzzDHID{addr, g.ID()}
	if k, ok := fuzzDH.keys[id]; ok {
		return k, nil
	}
	k, err := g.Generate(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("harness DH key: %w", err)
	}
	m := &memoDHKey{k: k, pub: k.Public(), memo: map[string]dhResult{}}
	fuzzDH.keys[id] = m
	return m, nil
}

// fixedDHKeys is the dhKeys hook of the harness engine at addr.
func fixedDHKeys(addr netip.Addr) dhKeySource {
	return func(g dh.Group) (dh.Key, error) { return fixedDHKey(addr, g) }
}

// discardLogger is the harness engines' logger: a logrus logger at panic
// level writing nowhere, whose WithField(s) and WithError return one shared
// empty entry instead of building a field map for every log line (the
// entry's level check then skips formatting).
type discardLogger struct {
	*logrus.Logger
	entry *logrus.Entry
}

func newDiscardLogger() *discardLogger {
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	lg.SetLevel(logrus.PanicLevel)
	return &discardLogger{lg, logrus.NewEntry(lg)}
}

func (d *discardLogger) WithField(string, any) *logrus.Entry    { return d.entry }
func (d *discardLogger) WithFields(logrus.Fields) *logrus.Entry { return d.entry }
func (d *discardLogger) WithError(error) *logrus.Entry          { return d.entry }
