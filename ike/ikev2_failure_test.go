package ike

import (
	"crypto"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// TestIKEv2WrongPSK: the responder refuses the initiator's AUTH with
// AUTHENTICATION_FAILED and says why; the initiator reports the refusal;
// neither key appears in a log.
func TestIKEv2WrongPSK(t *testing.T) {
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) { ct.PSK = Secret("another.psk_entirely") }})
	vs := waitError(t, vgw, "pre-shared keys differ")
	cs := waitError(t, cgw, "AUTHENTICATION_FAILED")
	if vs.Phase1State == "Established" || cs.Phase1State == "Established" || len(cgw.dp.Pairs()) != 0 || len(vgw.dp.Pairs()) != 0 {
		t.Fatalf("states: cgw %s vgw %s", cs.Phase1State, vs.Phase1State)
	}
	for _, g := range []*gw{cgw, vgw} {
		if l := g.logs.String(); strings.Contains(l, string(testPSK)) || strings.Contains(l, "another.psk_entirely") {
			t.Fatal("a pre-shared key appears in the log")
		}
	}
	if st := vgw.e.Status(); st.Counters.HalfOpen != 0 {
		t.Fatalf("half-open after the failure: %d", st.Counters.HalfOpen)
	}
}

// TestIKEv2WrongIdentity: the responder expects another identity.
func TestIKEv2WrongIdentity(t *testing.T) {
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) { vt.RemoteID = netip.MustParseAddr("198.51.100.7") }})
	waitError(t, vgw, "is not the configured 198.51.100.7")
	waitError(t, cgw, "AUTHENTICATION_FAILED")
}

// TestIKEv2NoProposalChosen: no common IKE SA proposal: the responder
// answers NO_PROPOSAL_CHOSEN without keeping state and logs the reasons.
func TestIKEv2NoProposalChosen(t *testing.T) {
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) {
		ct.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA1, DHGroup: 5}}
	}})
	waitError(t, vgw, "IKE_SA_INIT refused (NO_PROPOSAL_CHOSEN)")
	waitError(t, cgw, "peer answered IKE_SA_INIT with NO_PROPOSAL_CHOSEN")
	if st := vgw.e.Status(); st.Counters.HalfOpen != 0 || len(vgw.e.sas2) != 0 {
		t.Fatalf("the responder kept state: half-open %d", st.Counters.HalfOpen)
	}
}

// TestIKEv2ChildNoProposalChosen: the IKE SA is made, the child SA is
// refused with NO_PROPOSAL_CHOSEN (RFC 7296 section 2.21.2).
func TestIKEv2ChildNoProposalChosen(t *testing.T) {
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) {
		vt.Phase2.Proposals = []Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKeyBits: 256, PFSGroup: 14}}
	}})
	vs := waitError(t, vgw, "no proposal chosen for the child SA")
	cs := waitError(t, cgw, "refused the child SA with NO_PROPOSAL_CHOSEN")
	if cs.Phase1State != "Established" || vs.Phase1State != "Established" || cs.Phase2State != "Down" || vs.Status != "DOWN" {
		t.Fatalf("cgw %s/%s vgw %s/%s", cs.Phase1State, cs.Phase2State, vs.Phase1State, vs.Phase2State)
	}
	if len(cgw.dp.Pairs()) != 0 || len(vgw.dp.Pairs()) != 0 {
		t.Fatal("pairs installed")
	}
}

// TestIKEv2TSUnacceptable: traffic selectors with nothing in common.
func TestIKEv2TSUnacceptable(t *testing.T) {
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) {
		vt.Phase2.LocalTS, vt.Phase2.RemoteTS = netip.MustParsePrefix("172.31.0.0/16"), netip.MustParsePrefix("10.10.0.0/16")
		ct.Phase2.LocalTS, ct.Phase2.RemoteTS = netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("172.31.0.0/16")
	}})
	waitError(t, vgw, "traffic selectors unacceptable")
	cs := waitError(t, cgw, "TS_UNACCEPTABLE")
	if cs.Phase1State != "Established" || len(cgw.dp.Pairs()) != 0 {
		t.Fatalf("cgw %s with %d pairs", cs.Phase1State, len(cgw.dp.Pairs()))
	}
}

// TestIKEv2TSNarrowed: the customer offers 0.0.0.0/0 both ways, the vgw
// narrows to its configured networks; both pairs carry the narrowed
// selectors, mirrored.
func TestIKEv2TSNarrowed(t *testing.T) {
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) {
		vt.Phase2.LocalTS, vt.Phase2.RemoteTS = netip.MustParsePrefix("172.31.0.0/16"), netip.MustParsePrefix("10.10.0.0/16")
	}})
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	c, v := cgw.dp.Pairs()[0], vgw.dp.Pairs()[0]
	if c.LocalTS.String() != "10.10.0.0/16" || c.RemoteTS.String() != "172.31.0.0/16" || v.LocalTS != c.RemoteTS || v.RemoteTS != c.LocalTS {
		t.Fatalf("cgw %v === %v, vgw %v === %v", c.LocalTS, c.RemoteTS, v.LocalTS, v.RemoteTS)
	}
}

// TestIKEv2VersionMismatch: an IKEv1-only customer against an IKEv2-only
// vgw tunnel, and the other way round: the responder refuses the first
// message, counts it and says why in its last error and an event.
func TestIKEv2VersionMismatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cgw, vgw []policy.Version
		want     string
		drop     string
	}{
		{"ikev1-customer", []policy.Version{policy.IKEv1}, []policy.Version{policy.IKEv2}, "peer started IKEv1 but tunnel allows only ikev2", dropV1VersionRefused},
		{"ikev2-customer", []policy.Version{policy.IKEv2}, nil, "peer started IKEv2 but tunnel allows only ikev1", dropV2VersionRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) { ct.IKEVersions, vt.IKEVersions = tc.cgw, tc.vgw }})
			ev := vgw.waitEvent(t, "version-mismatch", 10*time.Second)
			if ev.Detail["message"] != tc.want {
				t.Fatalf("event %v", ev.Detail)
			}
			waitError(t, vgw, tc.want)
			waitError(t, cgw, "NO") // NO-PROPOSAL-CHOSEN (IKEv1) or NO_PROPOSAL_CHOSEN (IKEv2)
			if n := vgw.e.Status().Counters.Drops[tc.drop]; n == 0 {
				t.Fatalf("refusals not counted under %s", tc.drop)
			}
		})
	}
}

// TestIKEv2BothVersionsAnswered: a vgw tunnel that allows both versions
// answers an IKEv1 customer with IKEv1 and an IKEv2 customer with IKEv2.
func TestIKEv2BothVersionsAnswered(t *testing.T) {
	for _, v := range []policy.Version{policy.IKEv1, policy.IKEv2} {
		t.Run(v.String(), func(t *testing.T) {
			cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) {
				ct.IKEVersions = []policy.Version{v}
				vt.IKEVersions = []policy.Version{policy.IKEv1, policy.IKEv2}
			}})
			cgw.waitEvent(t, "phase2-up", 10*time.Second)
			vgw.waitEvent(t, "phase2-up", 10*time.Second)
			checkPairsMatch(t, cgw, vgw)
			if cs, vs := cgw.tunnel(t), vgw.tunnel(t); cs.IKEVersion != v.String() || vs.IKEVersion != v.String() {
				t.Fatalf("versions cgw %q vgw %q, want %q", cs.IKEVersion, vs.IKEVersion, v)
			}
		})
	}
}

// TestIKEv2UnknownPeer: an IKE_SA_INIT from an address no tunnel names is
// answered NO_PROPOSAL_CHOSEN and counted, without state.
func TestIKEv2UnknownPeer(t *testing.T) {
	cgw, vgw, _ := newV2Pair(t, v2PairOpts{mod: func(ct, vt *TunnelConfig) { vt.RemoteAddr = netip.MustParseAddr("192.0.2.99") }})
	waitError(t, cgw, "NO_PROPOSAL_CHOSEN")
	st := vgw.e.Status()
	if st.Counters.UnknownPeer == 0 || st.Counters.Drops[dropV2NoTunnel] == 0 || st.Counters.HalfOpen != 0 {
		t.Fatalf("counters %+v", st.Counters)
	}
}

// TestIKEv2PolicyRefusedAtStart: a tunnel that allows IKEv2 with a policy
// IKEv2 cannot negotiate here (AES-192, AH) is a configuration error that
// says why, not a negotiation that fails later; the same tunnel with IKEv1
// only is accepted.
func TestIKEv2PolicyRefusedAtStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*TunnelConfig)
		want string
	}{
		{"aes192", func(tc *TunnelConfig) {
			tc.Phase1.Proposals = []Phase1Proposal{{EncKeyBits: 192, Hash: crypto.SHA256, DHGroup: 14}}
		}, "IKEv2 phase 1"},
		{"ah", func(tc *TunnelConfig) {
			tc.Phase2.Proposals = []Phase2Proposal{{Protocol: isakmp.ProtoAH, Integrity: isakmp.AuthHMACSHA2256}}
		}, "AH is not implemented for IKEv2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, _ := v2Tunnels()
			tc.mod(&ct)
			_, err := NewEngine(Config{Tunnels: []TunnelConfig{ct}}, WithLogger(newDiscardLogger()))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			ct.IKEVersions = []policy.Version{policy.IKEv1}
			if _, err := NewEngine(Config{Tunnels: []TunnelConfig{ct}}, WithLogger(newDiscardLogger())); err != nil {
				t.Fatalf("IKEv1 only: %v", err)
			}
		})
	}
}
