package ike

import (
	"crypto"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/sock"
)

// TestIKEv2ExchangeCounters: a clean IKE_SA_INIT and IKE_AUTH count one
// request and one response of each exchange on each side (RFC 7296
// section 1.2), both completed, and nothing under IKEv1's exchanges; the
// per-exchange sums are the tunnel's message totals.
func TestIKEv2ExchangeCounters(t *testing.T) {
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	c := waitCounters(t, cgw, "cgw", func(s TunnelStatus) bool { return s.Counters.Exchanges.IKEAuth.Completed == 1 }).Counters
	v := waitCounters(t, vgw, "vgw", func(s TunnelStatus) bool { return s.Counters.Exchanges.IKEAuth.Completed == 1 }).Counters
	one := ExchangeCount{Sent: 1, Received: 1, Completed: 1}
	for _, w := range []struct {
		name      string
		got, want ExchangeCount
	}{
		{"cgw IKE_SA_INIT", c.Exchanges.IKESAInit, one},
		{"cgw IKE_AUTH", c.Exchanges.IKEAuth, one},
		{"vgw IKE_SA_INIT", v.Exchanges.IKESAInit, one},
		{"vgw IKE_AUTH", v.Exchanges.IKEAuth, one},
		{"cgw main", c.Exchanges.Main, ExchangeCount{}},
		{"vgw quick", v.Exchanges.Quick, ExchangeCount{}},
	} {
		if w.got != w.want {
			t.Errorf("%s: %+v, want %+v", w.name, w.got, w.want)
		}
	}
	for _, k := range []struct {
		name string
		c    Counters
	}{{"cgw", c}, {"vgw", v}} {
		x := k.c.Exchanges
		in := x.IKESAInit.Received + x.IKEAuth.Received + x.CreateChildSA.Received + x.InformationalV2.Received
		out := x.IKESAInit.Sent + x.IKEAuth.Sent + x.CreateChildSA.Sent + x.InformationalV2.Sent
		if in != k.c.MessagesIn || out != k.c.MessagesOut {
			t.Errorf("%s: exchanges in %d out %d, tunnel totals in %d out %d", k.name, in, out, k.c.MessagesIn, k.c.MessagesOut)
		}
	}

	// A child SA rekey is a CREATE_CHILD_SA request and response; the old
	// pair's DELETE is an INFORMATIONAL exchange.
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	c = waitCounters(t, cgw, "cgw child rekey", func(s TunnelStatus) bool {
		return s.Counters.Phase2Rekeys == 1 && s.Counters.Exchanges.InformationalV2.Received >= 1
	}).Counters
	if x := c.Exchanges.CreateChildSA; x.Sent != 1 || x.Received != 1 {
		t.Errorf("cgw CREATE_CHILD_SA %+v, want one request sent and one response received", x)
	}
	if x := c.Exchanges.InformationalV2; x.Sent < 1 {
		t.Errorf("cgw INFORMATIONAL %+v, want the DELETE exchange counted", x)
	}
}

// TestIKEv2RetransmitCounters: an IKE_SA_INIT nobody answers counts its
// retransmissions and one failed IKE_SA_INIT.
func TestIKEv2RetransmitCounters(t *testing.T) {
	network := sock.NewNetwork()
	var tr v2Traffic
	tr.watch(network, func(k string, n int) bool { return k == v2C.String()+" IKE_SA_INIT request" })
	cgw, _, _ := newV2Pair(t, v2PairOpts{network: network})
	cgw.waitEvent(t, "phase1-down", 10*time.Second)
	x := cgw.tunnel(t).Counters.Exchanges.IKESAInit
	// A retry of the tunnel may have begun after the failure: at least the
	// first attempt's 4 datagrams and 3 retransmissions.
	if x.Failed < 1 || x.Retransmits < 3 || x.Sent < 4 || x.Received != 0 || x.Completed != 0 {
		t.Fatalf("cgw IKE_SA_INIT %+v, want >=4 sent, >=3 retransmitted, >=1 failed, none received", x)
	}
}

// TestIKEv2FailedExchangeCounters: a refused IKE_SA_INIT (no proposal) and
// a refused IKE_AUTH (wrong key) count as failed on both sides.
func TestIKEv2FailedExchangeCounters(t *testing.T) {
	t.Run("IKE_SA_INIT", func(t *testing.T) {
		cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) {
			ct.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA1, DHGroup: 5}}
		}})
		v := waitCounters(t, vgw, "vgw", func(s TunnelStatus) bool { return s.Counters.Exchanges.IKESAInit.Failed >= 1 }).Counters.Exchanges
		c := waitCounters(t, cgw, "cgw", func(s TunnelStatus) bool { return s.Counters.Exchanges.IKESAInit.Failed >= 1 }).Counters.Exchanges
		if v.IKESAInit.Sent < 1 || v.IKESAInit.Received < 1 || v.IKESAInit.Completed != 0 || c.IKESAInit.Completed != 0 || c.IKEAuth != (ExchangeCount{}) {
			t.Fatalf("vgw %+v cgw %+v / %+v", v.IKESAInit, c.IKESAInit, c.IKEAuth)
		}
	})
	t.Run("IKE_AUTH", func(t *testing.T) {
		cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) { ct.PSK = Secret("another.psk_entirely") }})
		v := waitCounters(t, vgw, "vgw", func(s TunnelStatus) bool { return s.Counters.Exchanges.IKEAuth.Failed >= 1 }).Counters.Exchanges
		c := waitCounters(t, cgw, "cgw", func(s TunnelStatus) bool { return s.Counters.Exchanges.IKEAuth.Failed >= 1 }).Counters.Exchanges
		if v.IKEAuth.Completed != 0 || c.IKEAuth.Completed != 0 || v.IKESAInit.Completed < 1 || c.IKESAInit.Completed < 1 {
			t.Fatalf("vgw %+v cgw %+v", v, c)
		}
	})
}
