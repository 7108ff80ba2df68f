package ike

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// recordingKeyLog records the IKEv1 keys an engine logs.
type recordingKeyLog struct {
	mu   sync.Mutex
	keys map[[8]byte][]byte
}

func (r *recordingKeyLog) IKEv1Keys(icookie [8]byte, encKey []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys[icookie] = append([]byte(nil), encKey...)
}

func (r *recordingKeyLog) ChildKeys(ChildSAPair) {}

func (r *recordingKeyLog) get() map[[8]byte][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[[8]byte][]byte{}
	for k, v := range r.keys {
		out[k] = v
	}
	return out
}

// With different pre-shared keys phase 1 fails at MM5, yet each gateway
// has logged its own encryption key for the SA as soon as it derived it:
// one cookie, two different keys (vpnlab decode proves the mismatch from
// them). Before the key was logged only at establishment, so both logs
// stayed empty.
func TestKeyLoggedAtDerivationEvenIfPhase1Fails(t *testing.T) {
	t.Parallel()
	c, v, ports := loopPair()
	vt := baseTunnel(v, c, ports)
	vt.Phase1.Proposals, vt.Phase1.Selection = awsVGWPhase1(), SelectLowestValue
	vt.Phase2.Proposals, vt.Phase2.Selection = awsVGWPhase2(), SelectLowestValue
	ct := baseTunnel(c, v, ports)
	ct.StartupAction = StartupStart
	ct.PSK = Secret("another.psk_entirely")
	logs := map[string]*recordingKeyLog{}
	start := func(name string, tc TunnelConfig) {
		kl := &recordingKeyLog{keys: map[[8]byte][]byte{}}
		logs[name] = kl
		lg := logrus.New()
		lg.SetOutput(io.Discard)
		e, err := NewEngine(Config{Tunnels: []TunnelConfig{tc}, Ports: ports, RetransmitTimeout: 300 * time.Millisecond, RetransmitBase: 1.5, RetransmitTries: 2},
			WithLogger(lg.WithField("gw", name)), WithDataPath(NewMemoryDataPath()), WithKeyLogger(kl))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	start("vgw", vt)
	time.Sleep(20 * time.Millisecond)
	start("cgw", ct)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ck, vk := logs["cgw"].get(), logs["vgw"].get()
		for cookie, k := range ck {
			if k2, ok := vk[cookie]; ok {
				if bytes.Equal(k, k2) {
					t.Fatal("the gateways logged the same key despite different pre-shared keys")
				}
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no cookie with a logged key on both sides: cgw %d, vgw %d keys", len(logs["cgw"].get()), len(logs["vgw"].get()))
}
