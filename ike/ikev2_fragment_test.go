package ike

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/sock"
)

// withFragmentSize sets the fragment size below the option's floor of
// 576, so that the small IKE_AUTH messages of a test fragment.
func withFragmentSize(n int) Option { return func(e *Engine) { e.fragmentSize = n } }

// TestIKEv2Fragmentation: with a fragment size smaller than IKE_AUTH both
// ways, the messages go as SKF fragments (RFC 7383) and are reassembled;
// with the first copy of one request fragment lost, the initiator's
// retransmission of all fragments completes the exchange; without the
// peer's IKEV2_FRAGMENTATION_SUPPORTED nothing is fragmented.
func TestIKEv2Fragmentation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lose      bool
		peerFrags bool
	}{{"fragmented", false, true}, {"fragment-lost", true, true}, {"peer-without-fragmentation", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			network := sock.NewNetwork()
			var mu sync.Mutex
			frags := map[string]int{}
			lost := false
			network.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
				h, ok := v2Header(to, b)
				if !ok || h.NextPayload != wire.PayloadSKF {
					return true
				}
				mu.Lock()
				defer mu.Unlock()
				k := v2Key(from, h)
				frags[k]++
				if tc.lose && !lost && !h.Response() && frags[k] == 2 {
					lost = true
					return false
				}
				return true
			})
			opts := v2PairOpts{network: network, cgwOpts: []Option{withFragmentSize(200)}, vgwOpts: []Option{withFragmentSize(200)}}
			if !tc.peerFrags {
				// The customer does not announce fragmentation: neither
				// side may fragment (RFC 7383 section 2.3).
				opts.cgwOpts = append(opts.cgwOpts, func(e *Engine) { e.noFragmentSupport = true })
			}
			cgw, vgw, _ := newV2Pair(t, opts)
			cgw.waitEvent(t, "phase2-up", 10*time.Second)
			vgw.waitEvent(t, "phase2-up", 10*time.Second)
			checkPairsMatch(t, cgw, vgw)
			mu.Lock()
			defer mu.Unlock()
			req, resp := frags[v2C.String()+" IKE_AUTH request"], frags[v2V.String()+" IKE_AUTH response"]
			if !tc.peerFrags {
				if req != 0 || resp != 0 {
					t.Fatalf("fragments sent without the peer's support: %v", frags)
				}
				return
			}
			if req < 2 || resp < 2 || lost != tc.lose {
				t.Fatalf("fragments %v, lost %v", frags, lost)
			}
			if tc.lose && cgw.tunnel(t).Counters.Retransmits == 0 {
				t.Fatal("the lost fragment was not retransmitted")
			}
		})
	}
}
