package exchange

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/internal/pcapfile"
)

// capturedInit is one IKE_SA_INIT exchange of a capture.
type capturedInit struct {
	req, resp *wire.Message
	reqBytes  []byte
}

// loadInits returns the IKE_SA_INIT request/response pairs of the
// strongSwan capture of ike/ikev2/wire/testdata/capture (two charons
// 5.9.8, see its README).
func loadInits(t testing.TB) []capturedInit {
	t.Helper()
	ds, err := pcapfile.ReadUDP(filepath.Join("..", "wire", "testdata", "capture", "strongswan-ikev2.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	var out []capturedInit
	reqs := map[[8]byte]capturedInit{}
	for _, d := range ds {
		m, err := wire.Decode(d.Payload)
		if err != nil || m.Header.Exchange != wire.ExchangeIKESAInit {
			continue
		}
		if !m.Header.Response() {
			reqs[m.Header.SPIi] = capturedInit{req: m, reqBytes: d.Payload}
			continue
		}
		if c, ok := reqs[m.Header.SPIi]; ok {
			c.resp = m
			out = append(out, c)
		}
	}
	if len(out) < 2 {
		t.Fatalf("%d IKE_SA_INIT exchanges in the capture, want 2", len(out))
	}
	return out
}

func findSA(ps []wire.Payload) *wire.SA {
	for _, p := range ps {
		if s, ok := p.(*wire.SA); ok {
			return s
		}
	}
	return nil
}

func findKE(ps []wire.Payload) *wire.KE {
	for _, p := range ps {
		if k, ok := p.(*wire.KE); ok {
			return k
		}
	}
	return nil
}

// TestCapturedSelection: for strongSwan's real IKE_SA_INIT requests our
// selection under AWS's policy, with both rules, takes what strongSwan's
// responder took (its response's SA payload, transform for transform),
// the KE payload passes CheckKE, and strongSwan's answer passes
// CheckReply.
func TestCapturedSelection(t *testing.T) {
	for _, x := range loadInits(t) {
		offer, answer := findSA(x.req.Payloads), findSA(x.resp.Payloads)
		ke := findKE(x.req.Payloads)
		if offer == nil || answer == nil || ke == nil {
			t.Fatal("capture without SA or KE")
		}
		// strongSwan's responder answer passes our initiator's check.
		if ch, err := CheckReply(offer, answer); err != nil {
			t.Errorf("CheckReply of strongSwan's answer: %v", err)
		} else {
			t.Logf("strongSwan answered %s", ch)
		}
		for _, rule := range []Rule{FirstAcceptable, LowestValue} {
			ch, err := Select(offer, AWSIKE(), Options{Rule: rule, KEGroup: ke.Group})
			if err != nil {
				t.Fatalf("%s: %v", rule, err)
			}
			if got := ch.Reply(nil); !reflect.DeepEqual(got.Proposals[0], answer.Proposals[0]) {
				t.Errorf("%s: ours %+v, strongSwan's %+v", rule, got.Proposals[0], answer.Proposals[0])
			}
			if err := CheckKE(ch.DH, ke); err != nil {
				t.Errorf("%s: KE: %v", rule, err)
			}
			t.Logf("%s: %s", rule, ch)
		}
	}
}
