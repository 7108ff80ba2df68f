package ike

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// Hostile quick mode input from an authenticated peer: the cgw of a test
// pair crafts a QM1 on its established ISAKMP SA (a correct HASH(1), so the
// vgw processes it), with its payloads changed by mutate.

// craftedQM1 is what craftQM1 sent.
type craftedQM1 struct {
	mid uint32
	ps  []isakmp.Payload // after mutate, without HASH(1)
}

// qm1Payloads returns a well-formed QM1 payload list for the tunnel's
// policy, as startQuickMode builds it (PFS if the first proposal has it).
// It registers nothing.
func qm1Payloads(sa *ikeSA, qm *quickMode) []isakmp.Payload {
	pol := &sa.t.cfg.Phase2
	pfs := pol.Proposals[0].PFSGroup
	saP := phase2SA(pol.Proposals, qm.spiIn, pol.Lifetime, pol.LifetimeKB, qm.encap, pfs)
	ps := []isakmp.Payload{saP, &isakmp.Nonce{Data: qm.ni}}
	if pfs != 0 {
		g, _ := dh.ByID(pfs)
		qm.dhKey, _ = g.Generate(rand.Reader)
		qm.gi = qm.dhKey.Public()
		ps = append(ps, &isakmp.KE{Data: qm.gi})
	}
	return append(ps, isakmp.IDFromPrefix(qm.localTS), isakmp.IDFromPrefix(qm.remoteTS))
}

// craftQM1 sends a QM1 built by qm1Payloads and changed by mutate from g's
// established ISAKMP SA, registered as g's own quick mode so that g
// processes the answer like any QM2.
func craftQM1(t *testing.T, g *igw, mutate func([]isakmp.Payload) []isakmp.Payload) craftedQM1 {
	t.Helper()
	var out craftedQM1
	var ferr string
	if err := g.e.call(func() {
		tun := g.e.byName["tunnel1"]
		sa := tun.sa
		if sa == nil || sa.state != stateEstablished {
			ferr = "phase 1 is not established"
			return
		}
		pol := &tun.cfg.Phase2
		spi, err := g.e.dp.AllocateSPI(pol.Proposals[0].Protocol)
		if err != nil {
			ferr = err.Error()
			return
		}
		qm := &quickMode{sa: sa, mid: newMessageID(), initiator: true, offered: pol.Proposals, spiIn: spi,
			life: pol.Lifetime, lifeKB: pol.LifetimeKB, mode: pol.Mode, localTS: pol.LocalTS, remoteTS: pol.RemoteTS,
			started: timeNow(), ni: randomBytes(nonceLen)}
		qm.encap = encapMode(qm.mode, sa.natDetected(), sa.nattVersion)
		ps := mutate(qm1Payloads(sa, qm))
		for _, p := range ps {
			if n, ok := p.(*isakmp.Nonce); ok {
				qm.ni = n.Data
			}
		}
		_, rest, err := isakmp.EncodePayloads(ps)
		if err != nil {
			ferr = "encoding: " + err.Error()
			return
		}
		h1 := keymat.QMHash1(sa.hash, sa.skeyidA, qm.mid, rest)
		b, err := qm.seal(append([]isakmp.Payload{&isakmp.Hash{Data: h1}}, ps...))
		if err != nil {
			ferr = "sealing: " + err.Error()
			return
		}
		sa.quick[qm.mid] = qm
		qm.state = qmQM1Sent
		qm.send(b, "QM1", true)
		out = craftedQM1{mid: qm.mid, ps: ps}
	}); err != nil {
		t.Fatal(err)
	}
	if ferr != "" {
		t.Fatal(ferr)
	}
	return out
}

// noPFS configures both sides without PFS (the cgw profile with
// pfs_groups: []).
func noPFS(ct, vt *TunnelConfig) {
	ct.Phase2.Proposals[0].PFSGroup = 0
	var ps []Phase2Proposal
	for _, p := range vt.Phase2.Proposals {
		if p.PFSGroup == 0 {
			ps = append(ps, p)
		}
	}
	vt.Phase2.Proposals = ps
}

func withPayload(extra isakmp.Payload) func([]isakmp.Payload) []isakmp.Payload {
	return func(ps []isakmp.Payload) []isakmp.Payload { return append(ps, extra) }
}

func withoutPayload(pt isakmp.PayloadType) func([]isakmp.Payload) []isakmp.Payload {
	return func(ps []isakmp.Payload) []isakmp.Payload {
		var out []isakmp.Payload
		for _, p := range ps {
			if p.Type() != pt {
				out = append(out, p)
			}
		}
		return out
	}
}

// stillServes checks that the vgw's loop answers and its tunnel keeps its
// established pair.
func stillServes(t *testing.T, vgw *igw) {
	t.Helper()
	ts := vgw.tunnel(t, "tunnel1")
	if ts.Phase1State != "Established" || len(ts.SAs) != 1 {
		t.Fatalf("vgw after the hostile QM1: phase 1 %s, %d pairs; want Established and the one pair", ts.Phase1State, len(ts.SAs))
	}
}

// TestQM1KEPayload: a KE payload in a QM1 is refused unless a proposal
// with a PFS group fits it: present without PFS (empty or not) with
// NO-PROPOSAL-CHOSEN, empty or of the wrong length with PFS with
// INVALID-KEY-INFORMATION (RFC 2408 section 5.7). Before the fix an empty
// KE without PFS passed the proposal check and crashed the responder on a
// nil DH group.
func TestQM1KEPayload(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		pfs    bool
		mutate func([]isakmp.Payload) []isakmp.Payload
		notify string
	}{
		{"empty KE without PFS", false, withPayload(&isakmp.KE{}), "NO-PROPOSAL-CHOSEN"},
		{"KE without PFS", false, withPayload(&isakmp.KE{Data: make([]byte, 256)}), "NO-PROPOSAL-CHOSEN"},
		{"empty KE with PFS", true, func(ps []isakmp.Payload) []isakmp.Payload {
			return append(withoutPayload(isakmp.PayloadKE)(ps), &isakmp.KE{})
		}, "INVALID-KEY-INFORMATION"},
		{"short KE with PFS", true, func(ps []isakmp.Payload) []isakmp.Payload {
			return append(withoutPayload(isakmp.PayloadKE)(ps), &isakmp.KE{Data: make([]byte, 255)})
		}, "INVALID-KEY-INFORMATION"},
		{"no KE with PFS", true, withoutPayload(isakmp.PayloadKE), "NO-PROPOSAL-CHOSEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mod := noPFS
			if tc.pfs {
				mod = nil
			}
			cgw, vgw := newImpairedPair(t, nil, nil, mod)
			up(t, cgw, vgw)
			craftQM1(t, cgw, tc.mutate)
			vgw.evs.wait(t, "notify-sent", detail("notify", tc.notify), 3*time.Second)
			cgw.evs.wait(t, "phase2-failed", nil, 3*time.Second)
			stillServes(t, vgw)
		})
	}
}

// sealQM seals an arbitrary decrypted payload chain as a quick mode
// message of g's established ISAKMP SA (no HASH added) and sends it.
func sealQM(t *testing.T, g *igw, mid uint32, ps []isakmp.Payload) {
	t.Helper()
	var ferr error
	if err := g.e.call(func() {
		sa := g.e.byName["tunnel1"].sa
		first, body, err := isakmp.EncodePayloads(ps)
		if err != nil {
			ferr = err
			return
		}
		b, err := sa.sealExchange(sa.header(isakmp.ExchangeQuickMode, mid), body, first)
		if err != nil {
			ferr = err
			return
		}
		delete(sa.ivs, mid)
		ferr = g.e.send(sa.local, sa.remote, b)
	}); err != nil {
		t.Fatal(err)
	}
	if ferr != nil {
		t.Fatal(ferr)
	}
}

// logLine returns the first log line that contains all of want, or "".
func logLine(logs string, want ...string) string {
	for _, l := range strings.Split(logs, "\n") {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			return l
		}
	}
	return ""
}

// TestMalformedQuickModeLogsWhy: a quick mode message whose chain does not
// start with HASH is answered with PAYLOAD-MALFORMED and the warning says
// why (it used to log error="<nil>").
func TestMalformedQuickModeLogsWhy(t *testing.T) {
	t.Parallel()
	cgw, vgw := newImpairedPair(t, nil, nil, nil)
	up(t, cgw, vgw)
	sealQM(t, cgw, newMessageID(), []isakmp.Payload{&isakmp.Nonce{Data: make([]byte, 16)}})
	vgw.evs.wait(t, "notify-sent", detail("notify", "PAYLOAD-MALFORMED"), 3*time.Second)
	l := logLine(vgw.logs.String(), "malformed quick mode message")
	if l == "" || strings.Contains(l, "<nil>") || !strings.Contains(l, "starts with NONCE, not HASH") || !strings.Contains(l, "msgid=") {
		t.Fatalf("the malformed quick mode warning does not say why: %q", l)
	}
	stillServes(t, vgw)
}

// TestRetransmitLogFields: the retransmission log line names the tunnel,
// the peer, the message and the cookies.
func TestRetransmitLogFields(t *testing.T) {
	t.Parallel()
	cgw, vgw := newImpairedPair(t, []string{"drop:main:1"}, nil, nil)
	up(t, cgw, vgw)
	l := logLine(cgw.logs.String(), "no answer, retransmitting")
	for _, want := range []string{"tunnel=tunnel1", "icookie=", "rcookie=", "peer=", "message=MM1", "exchange="} {
		if !strings.Contains(l, want) {
			t.Fatalf("retransmission log line lacks %q: %q", want, l)
		}
	}
}
