package ike

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/status"
)

// v2KeyLog records what an engine hands a key logger that takes IKEv2
// keys.
type v2KeyLog struct {
	mu    sync.Mutex
	ikev2 []status.IKEv2Keys
	pairs []childsa.Pair
}

func (k *v2KeyLog) IKEv1Keys([8]byte, []byte) {}
func (k *v2KeyLog) ChildKeys(p childsa.Pair) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pairs = append(k.pairs, p)
}
func (k *v2KeyLog) IKEv2Keys(x status.IKEv2Keys) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ikev2 = append(k.ikev2, x)
}

// v2Capture keeps every datagram the engine sends or receives.
type v2Capture struct {
	mu   sync.Mutex
	pkts []capturedPkt
}

type capturedPkt struct {
	src, dst netip.AddrPort
	b        []byte
}

func (c *v2Capture) Packet(src, dst netip.AddrPort, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pkts = append(c.pkts, capturedPkt{src, dst, append([]byte(nil), b...)})
}

// TestIKEv2KeyLogAndCapture: each side logs the IKE SA's SPIs and keys
// once (the same on both sides, the transform IDs of the proposal) and the
// child pair; with the logged keys the captured IKE_AUTH messages decrypt,
// as Wireshark would decrypt them with the exported table.
func TestIKEv2KeyLogAndCapture(t *testing.T) {
	ck, vk := &v2KeyLog{}, &v2KeyLog{}
	capture := &v2Capture{}
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{
		mod: func(ct, vt *TunnelConfig) {
			ct.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 256, Hash: ct.Phase1.Proposals[0].Hash, DHGroup: 14}}
		},
		cgwOpts: []Option{WithKeyLogger(ck), WithPacketSink(capture)},
		vgwOpts: []Option{WithKeyLogger(vk)},
	})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	cs := cgw.tunnel(t)
	ck.mu.Lock()
	vk.mu.Lock()
	defer ck.mu.Unlock()
	defer vk.mu.Unlock()
	if len(ck.ikev2) != 1 || len(vk.ikev2) != 1 || len(ck.pairs) != 1 || len(vk.pairs) != 1 {
		t.Fatalf("logged IKE SAs %d/%d, pairs %d/%d", len(ck.ikev2), len(vk.ikev2), len(ck.pairs), len(vk.pairs))
	}
	a, b := ck.ikev2[0], vk.ikev2[0]
	if a.SPIi != b.SPIi || a.SPIr != b.SPIr || string(a.SKei) != string(b.SKei) || string(a.SKar) != string(b.SKar) {
		t.Fatal("the two sides logged different SPIs or keys")
	}
	if a.EncrID != uint16(wire.EncrAESCBC) || a.EncrKeyBits != 256 || a.IntegID != uint16(wire.IntegHMACSHA196) || len(a.SKei) != 32 || len(a.SKai) != 20 {
		t.Fatalf("logged transforms %d/%d/%d with key lengths %d/%d", a.EncrID, a.EncrKeyBits, a.IntegID, len(a.SKei), len(a.SKai))
	}
	if cs.ICookie != hexSPI(a.SPIi) || cs.RCookie != hexSPI(a.SPIr) {
		t.Fatalf("status SPIs %s/%s, logged %x/%x", cs.ICookie, cs.RCookie, a.SPIi, a.SPIr)
	}
	si, err := wire.NewSuite(wire.Keys{Encr: wire.EncrAESCBC, Integ: wire.IntegHMACSHA196, EncrKey: a.SKei, IntegKey: a.SKai})
	if err != nil {
		t.Fatal(err)
	}
	sr, err := wire.NewSuite(wire.Keys{Encr: wire.EncrAESCBC, Integ: wire.IntegHMACSHA196, EncrKey: a.SKer, IntegKey: a.SKar})
	if err != nil {
		t.Fatal(err)
	}
	capture.mu.Lock()
	defer capture.mu.Unlock()
	opened := 0
	for _, p := range capture.pkts {
		h, ok := v2Header(p.dst, p.b)
		if !ok || h.Exchange != wire.ExchangeIKEAuth {
			continue
		}
		s := si
		if h.Response() {
			s = sr
		}
		o, err := s.Open(p.b[len(p.b)-int(h.Length):])
		if err != nil {
			t.Fatalf("captured IKE_AUTH (response %v) does not open with the logged keys: %v", h.Response(), err)
		}
		ps, err := o.Payloads()
		if err != nil || findAuth(ps) == nil {
			t.Fatalf("decrypted IKE_AUTH: %v", err)
		}
		opened++
	}
	if opened != 2 {
		t.Fatalf("opened %d captured IKE_AUTH messages, want 2 (request sent, response received)", opened)
	}
}

func hexSPI(s [8]byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 16)
	for i, b := range s {
		out[2*i], out[2*i+1] = digits[b>>4], digits[b&15]
	}
	return string(out)
}
