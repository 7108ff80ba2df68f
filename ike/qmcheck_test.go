package ike

import (
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// overflowSeconds times 10^9 wraps around 2^64 to 0.29 s: a lifetime the
// old conversion (time.Duration(v) * time.Second) adopted as 290 ms.
const overflowSeconds = 18446744074

func lifeAttrs(secs, kb uint64) []byte {
	attrs := []isakmp.Attribute{isakmp.AttrBasic(isakmp.AttrSALifeType, isakmp.LifeSeconds), isakmp.AttrUint(isakmp.AttrSALifeDuration, secs)}
	if kb != 0 {
		attrs = append(attrs, isakmp.AttrBasic(isakmp.AttrSALifeType, isakmp.LifeKilobytes), isakmp.AttrUint(isakmp.AttrSALifeDuration, kb))
	}
	return encodeAttributes(attrs)
}

// TestApplyResponderLifetime: the initiator takes the minimum of its
// lifetime and the responder's, and only a responder value above zero.
func TestApplyResponderLifetime(t *testing.T) {
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	for _, tc := range []struct {
		name     string
		secs, kb uint64
		ourKB    uint64
		want     time.Duration
		wantKB   uint64
	}{
		{"shorter", 600, 0, 0, 10 * time.Minute, 0},
		{"longer", 7200, 0, 0, time.Hour, 0},
		{"zero", 0, 0, 0, time.Hour, 0},
		{"overflowing", overflowSeconds, 0, 0, time.Hour, 0},
		{"largest", 1<<64 - 1, 0, 0, time.Hour, 0},
		{"kilobytes when we have none", 600, 5000, 0, 10 * time.Minute, 5000},
		{"kilobytes larger than ours", 600, 9000, 5000, 10 * time.Minute, 5000},
		{"kilobytes zero", 600, 0, 5000, 10 * time.Minute, 5000},
	} {
		qm := &quickMode{sa: &ikeSA{e: &Engine{log: lg}}, life: time.Hour, lifeKB: tc.ourKB}
		data := lifeAttrs(tc.secs, tc.kb)
		if tc.name == "kilobytes zero" {
			data = append(data, encodeAttributes([]isakmp.Attribute{isakmp.AttrBasic(isakmp.AttrSALifeType, isakmp.LifeKilobytes), isakmp.AttrUint(isakmp.AttrSALifeDuration, 0)})...)
		}
		qm.applyResponderLifetime(data)
		if qm.life != tc.want || qm.lifeKB != tc.wantKB {
			t.Errorf("%s: lifetime %v / %d KB, want %v / %d KB", tc.name, qm.life, qm.lifeKB, tc.want, tc.wantKB)
		}
	}
}

// setSALife sets the seconds lifetime of every transform of a QM1's SA.
func setSALife(secs uint64) func([]isakmp.Payload) []isakmp.Payload {
	return func(ps []isakmp.Payload) []isakmp.Payload {
		for _, p := range ps {
			sa, ok := p.(*isakmp.SA)
			if !ok {
				continue
			}
			for i := range sa.Proposals {
				for j := range sa.Proposals[i].Transforms {
					tr := &sa.Proposals[i].Transforms[j]
					for k, a := range tr.Attributes {
						if a.Type == isakmp.AttrSALifeDuration {
							tr.Attributes[k] = isakmp.AttrUint(isakmp.AttrSALifeDuration, secs)
							break
						}
					}
				}
			}
		}
		return ps
	}
}

// TestQM1LifetimeOverflow: a QM1 proposing a lifetime whose nanoseconds
// overflow is not installed with the wrapped-around 290 ms: the responder
// keeps its own lifetime and answers RESPONDER-LIFETIME. A zero lifetime is
// no lifetime: ours.
func TestQM1LifetimeOverflow(t *testing.T) {
	t.Parallel()
	for _, secs := range []uint64{overflowSeconds, 0} {
		cgw, vgw := newImpairedPair(t, nil, nil, nil)
		up(t, cgw, vgw)
		q := craftQM1(t, cgw, setSALife(secs))
		if !countWithin(vgw.evs, "phase2-up", 2, 5*time.Second) {
			t.Fatalf("%d s: the crafted quick mode %08x did not come up on the vgw", secs, q.mid)
		}
		for _, p := range vgw.dp.Pairs() {
			if p.Lifetime != time.Hour {
				t.Fatalf("%d s: vgw installed a pair with lifetime %v, want its own 1h0m0s", secs, p.Lifetime)
			}
		}
		for _, p := range cgw.dp.Pairs() {
			if p.Lifetime != time.Hour {
				t.Fatalf("%d s: cgw installed a pair with lifetime %v, want 1h0m0s", secs, p.Lifetime)
			}
		}
	}
}

func setNonce(n int) func([]isakmp.Payload) []isakmp.Payload {
	return func(ps []isakmp.Payload) []isakmp.Payload {
		for _, p := range ps {
			if no, ok := p.(*isakmp.Nonce); ok {
				no.Data = randomBytes(n)
			}
		}
		return ps
	}
}

// TestQM1NonceLength: RFC 2409 section 5 nonces of 8 to 256 bytes are
// accepted, others refused with PAYLOAD-MALFORMED.
func TestQM1NonceLength(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n  int
		ok bool
	}{{0, false}, {7, false}, {8, true}, {256, true}, {257, false}, {1000, false}} {
		cgw, vgw := newImpairedPair(t, nil, nil, nil)
		up(t, cgw, vgw)
		craftQM1(t, cgw, setNonce(tc.n))
		if tc.ok {
			waitCount(t, cgw.evs, "phase2-up", 2, 5*time.Second)
			continue
		}
		vgw.evs.wait(t, "notify-sent", detail("notify", "PAYLOAD-MALFORMED"), 3*time.Second)
		cgw.evs.wait(t, "phase2-failed", nil, 3*time.Second)
		stillServes(t, vgw)
	}
}

func setIDPort(proto uint8, port uint16) func([]isakmp.Payload) []isakmp.Payload {
	return func(ps []isakmp.Payload) []isakmp.Payload {
		for _, p := range ps {
			if id, ok := p.(*isakmp.ID); ok {
				id.ProtocolID, id.Port = proto, port
				return ps // IDci only
			}
		}
		return ps
	}
}

// TestQM1SelectorProtocolPort: ID payloads that select an IP protocol or a
// port are refused with INVALID-ID-INFORMATION (the data path honours
// address selectors only and IKEv1 has no narrowing); protocol any, port 0
// (what AWS sends) is accepted.
func TestQM1SelectorProtocolPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		proto uint8
		port  uint16
	}{{6, 179}, {17, 0}, {0, 500}} {
		cgw, vgw := newImpairedPair(t, nil, nil, nil)
		up(t, cgw, vgw)
		craftQM1(t, cgw, setIDPort(tc.proto, tc.port))
		vgw.evs.wait(t, "notify-sent", detail("notify", "INVALID-ID-INFORMATION"), 3*time.Second)
		cgw.evs.wait(t, "phase2-failed", nil, 3*time.Second)
		stillServes(t, vgw)
	}
}

// countWithin waits until l holds n events of typ.
func countWithin(l *eventLog, typ string, n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for len(l.all(typ)) < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func waitCount(t *testing.T, l *eventLog, typ string, n int, d time.Duration) {
	t.Helper()
	if !countWithin(l, typ, n, d) {
		t.Fatalf("%d %q events within %v, want %d", len(l.all(typ)), typ, d, n)
	}
}
