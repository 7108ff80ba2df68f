package ike

import (
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/ike/sock"
)

// Impairments on IKEv2 (impair.go): a customer (IKEv2 only, initiator)
// and a vgw (both versions) as in ikev2_engine_test.go, with impairments
// from the start; v2Traffic counts what reaches the network.

func newV2Impaired(t *testing.T, cgwImps, vgwImps []string, drop func(key string, n int) bool) (cgw, vgw *gw, tr *v2Traffic) {
	t.Helper()
	return newV2ImpairedMod(t, cgwImps, vgwImps, drop, nil)
}

func newV2ImpairedMod(t *testing.T, cgwImps, vgwImps []string, drop func(key string, n int) bool, mod func(ct, vt *TunnelConfig)) (cgw, vgw *gw, tr *v2Traffic) {
	t.Helper()
	network := sock.NewNetwork()
	tr = &v2Traffic{}
	tr.watch(network, drop)
	ct, vt := v2Tunnels()
	if mod != nil {
		mod(&ct, &vt)
	}
	vc := Config{Tunnels: []TunnelConfig{vt}, Impairments: mustImpairs(t, vgwImps)}
	cc := Config{Tunnels: []TunnelConfig{ct}, Impairments: mustImpairs(t, cgwImps)}
	fastRetransmit(&vc)
	fastRetransmit(&cc)
	vgw = startGW(t, "vgw", vc, WithBinder(network))
	vgw.e.Status()
	cgw = startGW(t, "cgw", cc, WithBinder(network))
	return cgw, vgw, tr
}

var (
	v2CInitReq  = v2C.String() + " IKE_SA_INIT request"
	v2CAuthReq  = v2C.String() + " IKE_AUTH request"
	v2VAuthResp = v2V.String() + " IKE_AUTH response"
	v2CInfoReq  = v2C.String() + " INFORMATIONAL request"
)

// TestIKEv2ImpairDropAuth: drop:ike_auth:1 on the initiator: its first
// IKE_AUTH request never reaches the network, the retransmission does, and
// the tunnel comes up.
func TestIKEv2ImpairDropAuth(t *testing.T) {
	cgw, vgw, tr := newV2Impaired(t, []string{"drop:ike_auth:1"}, nil, nil)
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	checkPairsMatch(t, cgw, vgw)
	cs := cgw.tunnel(t)
	if cs.Counters.Retransmits != 1 || tr.count(v2CAuthReq) != 1 {
		t.Fatalf("cgw retransmits %d (want 1), IKE_AUTH requests on the wire %d (want 1: the first was dropped)",
			cs.Counters.Retransmits, tr.count(v2CAuthReq))
	}
	if !strings.Contains(cgw.logs.String(), "impairment: IKE_AUTH request dropped (first transmission)") {
		t.Fatal("no impairment logged")
	}
}

// TestIKEv2ImpairDropAllInit: drop-all:ike_sa_init:1: no IKE_SA_INIT
// request ever leaves, and the initiator gives up with the reason.
func TestIKEv2ImpairDropAllInit(t *testing.T) {
	cgw, _, tr := newV2Impaired(t, []string{"drop-all:ike_sa_init:1"}, nil, nil)
	ev := cgw.waitEvent(t, "phase1-down", 10*time.Second)
	if ev.Detail["reason"] != "IKEv2: no answer to IKE_SA_INIT after 3 retransmissions" {
		t.Fatalf("reason %q", ev.Detail["reason"])
	}
	if n := tr.count(v2CInitReq); n != 0 {
		t.Fatalf("%d IKE_SA_INIT requests on the wire, want 0", n)
	}
}

// TestIKEv2ImpairResponderDrop: drop:ike_auth:2 on the responder: its
// first IKE_AUTH response is lost, the initiator retransmits and the
// responder answers from its cache (a repetition is not dropped).
func TestIKEv2ImpairResponderDrop(t *testing.T) {
	cgw, vgw, tr := newV2Impaired(t, nil, []string{"drop:ike_auth:2"}, nil)
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	vs, cs := vgw.tunnel(t), cgw.tunnel(t)
	if vs.Counters.DuplicatesAnswered != 1 || cs.Counters.Retransmits != 1 || tr.count(v2VAuthResp) != 1 || tr.count(v2CAuthReq) != 2 {
		t.Fatalf("vgw cached answers %d (want 1), cgw retransmits %d (want 1), IKE_AUTH responses %d (want 1), requests %d (want 2)",
			vs.Counters.DuplicatesAnswered, cs.Counters.Retransmits, tr.count(v2VAuthResp), tr.count(v2CAuthReq))
	}
}

// TestIKEv2ImpairDuplicate: duplicate:ike_auth:1 sends the IKE_AUTH
// request twice back to back: the responder answers the second from its
// cache and the tunnel is up once; send-twice on the responder doubles
// every message it sends.
func TestIKEv2ImpairDuplicate(t *testing.T) {
	cgw, vgw, tr := newV2Impaired(t, []string{"duplicate:ike_auth:1"}, []string{"send-twice"}, nil)
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	checkPairsMatch(t, cgw, vgw)
	time.Sleep(100 * time.Millisecond)
	vs := vgw.tunnel(t)
	// 2 requests, each answered twice (send-twice): 4 responses.
	if tr.count(v2CAuthReq) != 2 || vs.Counters.DuplicatesAnswered != 1 || tr.count(v2VAuthResp) != 4 ||
		tr.count(v2V.String()+" IKE_SA_INIT response") != 2 {
		t.Fatalf("IKE_AUTH requests %d (want 2), vgw cached answers %d (want 1), IKE_AUTH responses %d (want 4), IKE_SA_INIT responses %d (want 2)",
			tr.count(v2CAuthReq), vs.Counters.DuplicatesAnswered, tr.count(v2VAuthResp), tr.count(v2V.String()+" IKE_SA_INIT response"))
	}
	if len(cgw.dp.Pairs()) != 1 || len(vgw.dp.Pairs()) != 1 {
		t.Fatalf("pairs: cgw %d vgw %d, want 1 each", len(cgw.dp.Pairs()), len(vgw.dp.Pairs()))
	}
}

// TestIKEv2ImpairReplay: replay:ike_auth:2 on the responder sends its
// IKE_AUTH response again about a second later; the initiator ignores the
// stale copy and the tunnel stays up.
func TestIKEv2ImpairReplay(t *testing.T) {
	cgw, vgw, tr := newV2Impaired(t, nil, []string{"replay:ike_auth:2"}, nil)
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	if n := tr.count(v2VAuthResp); n != 1 {
		t.Fatalf("%d IKE_AUTH responses before the replay, want 1", n)
	}
	deadline := time.Now().Add(3 * time.Second)
	for tr.count(v2VAuthResp) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := tr.count(v2VAuthResp); n != 2 {
		t.Fatalf("%d IKE_AUTH responses after the replay delay, want 2", n)
	}
	time.Sleep(100 * time.Millisecond)
	if cs := cgw.tunnel(t); cs.Status != "UP" || len(cgw.dp.Pairs()) != 1 {
		t.Fatalf("cgw after the replay: %s, %d pairs", cs.Status, len(cgw.dp.Pairs()))
	}
}

// TestIKEv2ImpairNoRetransmit: the vgw's IKE_AUTH responses are lost on
// the network; with no-retransmit the initiator sends IKE_AUTH once and
// still gives up on its schedule with the reason.
func TestIKEv2ImpairNoRetransmit(t *testing.T) {
	cgw, _, tr := newV2Impaired(t, []string{"no-retransmit"}, nil, func(k string, _ int) bool { return k == v2VAuthResp })
	ev := cgw.waitEvent(t, "phase1-down", 10*time.Second)
	if ev.Detail["reason"] != "IKEv2: no answer to IKE_AUTH after 3 retransmissions" {
		t.Fatalf("reason %q", ev.Detail["reason"])
	}
	if n := tr.count(v2CAuthReq); n != 1 {
		t.Fatalf("%d IKE_AUTH requests on the wire, want 1 (no retransmission)", n)
	}
	if !strings.Contains(cgw.logs.String(), "retransmission 3 suppressed") {
		t.Fatal("the suppressed retransmissions are not logged")
	}
}

// TestIKEv2ImpairNoDelete: no-delete on the customer: Terminate removes
// its SAs, the INFORMATIONAL requests go out without their DELETE
// payloads, and the vgw keeps its IKE SA and pair.
func TestIKEv2ImpairNoDelete(t *testing.T) {
	cgw, vgw, tr := newV2Impaired(t, []string{"no-delete"}, nil, nil)
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	if err := cgw.e.Terminate("tunnel1"); err != nil {
		t.Fatal(err)
	}
	cgw.waitEvent(t, "phase1-down", 5*time.Second)
	deadline := time.Now().Add(3 * time.Second)
	for tr.count(v2CInfoReq) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if tr.count(v2CInfoReq) == 0 {
		t.Fatal("the customer sent no INFORMATIONAL request at terminate")
	}
	if len(cgw.dp.Pairs()) != 0 {
		t.Fatalf("cgw kept %d pairs after terminate", len(cgw.dp.Pairs()))
	}
	vs := vgw.tunnel(t)
	if vs.Phase1State != "Established" || len(vgw.dp.Pairs()) != 1 {
		t.Fatalf("vgw after the silent terminate: phase 1 %s, %d pairs; want both kept", vs.Phase1State, len(vgw.dp.Pairs()))
	}
	if !strings.Contains(cgw.logs.String(), "sent without its DELETE payload") {
		t.Fatal("the suppressed DELETE is not logged")
	}
}

// TestIKEv2ImpairOmitKE: omit-ke:ike_sa_init: the IKE_SA_INIT request
// goes out without KE; the vgw refuses it with INVALID_KE_PAYLOAD (RFC 7296
// section 1.2: the KE must be of the chosen group), which names the group
// the customer already offered, so the customer gives up with the reason
// and nothing comes up.
func TestIKEv2ImpairOmitKE(t *testing.T) {
	cgw, vgw, tr := newV2Impaired(t, []string{"omit-ke:ike_sa_init"}, nil, nil)
	ev := cgw.waitEvent(t, "phase1-down", 10*time.Second)
	if !strings.Contains(ev.Detail["reason"], "IKE_SA_INIT answered with INVALID_KE_PAYLOAD") {
		t.Fatalf("reason %q", ev.Detail["reason"])
	}
	tr.mu.Lock()
	invKE := tr.invKE
	tr.mu.Unlock()
	if invKE == 0 {
		t.Fatal("no INVALID_KE_PAYLOAD on the wire")
	}
	if len(cgw.dp.Pairs()) != 0 || len(vgw.dp.Pairs()) != 0 || vgw.tunnel(t).Status == "UP" {
		t.Fatal("the tunnel came up without a KE")
	}
	if !strings.Contains(cgw.logs.String(), "IKE_SA_INIT request sent without its KE payload") {
		t.Fatal("the impairment is not logged")
	}
}

// TestIKEv2ImpairRefusedForVersion: an impairment for an exchange a
// tunnel's IKE version never uses is an error, not silently ignored.
func TestIKEv2ImpairRefusedForVersion(t *testing.T) {
	ct, vt := v2Tunnels() // ct: IKEv2 only; vt: both
	v1 := vt
	v1.IKEVersions = []policy.Version{policy.IKEv1}
	cases := []struct {
		tun  TunnelConfig
		spec string
		want string // "" accepted
	}{
		{ct, "tunnel1/drop:main:1", `tunnel "tunnel1" speaks IKEv2 only, and tunnel1/drop:main:1 acts on IKEv1 messages only`},
		{ct, "omit-ke:quick", "no tunnel of this gateway can use it: omit-ke:quick acts on IKEv1 messages only"},
		{ct, "corrupt-hash:informational", "acts on IKEv1 messages only"},
		{ct, "tunnel1/drop:ike_auth:1", ""},
		{ct, "drop:informational:1", ""},
		{ct, "no-delete", ""},
		{v1, "tunnel1/drop:ike_auth:1", `tunnel "tunnel1" speaks IKEv1 only, and tunnel1/drop:ike_auth:1 acts on IKEv2 messages only`},
		{v1, "omit-ke:create_child_sa", "no tunnel of this gateway can use it"},
		{v1, "drop:main:1", ""},
		{vt, "drop:main:1", ""},
		{vt, "drop:create_child_sa:2", ""},
	}
	for _, c := range cases {
		_, err := NewEngine(Config{Tunnels: []TunnelConfig{c.tun}, Impairments: mustImpairs(t, []string{c.spec})})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s on %v: %v", c.spec, c.tun.Versions(), err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s on %v: error %v, want %q", c.spec, c.tun.Versions(), err, c.want)
		}
	}
}

// TestIKEv2ImpairCreateChildSA: drop:create_child_sa:2 on the vgw: its
// first answer to the customer's child SA rekey is lost, the customer
// retransmits, the vgw answers from its cache, and the rekey completes.
func TestIKEv2ImpairCreateChildSA(t *testing.T) {
	cgw, vgw, tr := newV2ImpairedMod(t, nil, []string{"drop:create_child_sa:2"}, nil,
		func(ct, vt *TunnelConfig) { ct.Phase2.Proposals[0].PFSGroup = 14 })
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for cgw.tunnel(t).Counters.Phase2Rekeys == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cs, vs := cgw.tunnel(t), vgw.tunnel(t)
	req, resp := v2C.String()+" CREATE_CHILD_SA request", v2V.String()+" CREATE_CHILD_SA response"
	if cs.Counters.Phase2Rekeys != 1 || vs.Counters.DuplicatesAnswered != 1 || tr.count(req) != 2 || tr.count(resp) != 1 {
		t.Fatalf("cgw rekeys %d (want 1), vgw cached answers %d (want 1), CREATE_CHILD_SA requests %d (want 2), responses %d (want 1)",
			cs.Counters.Phase2Rekeys, vs.Counters.DuplicatesAnswered, tr.count(req), tr.count(resp))
	}
}

// TestIKEv2ImpairOmitKEChild: omit-ke:create_child_sa with PFS: the
// customer's rekey request goes out without its KE, the vgw refuses it,
// and the rekey does not happen.
func TestIKEv2ImpairOmitKEChild(t *testing.T) {
	cgw, vgw, tr := newV2ImpairedMod(t, []string{"omit-ke:create_child_sa"}, nil, nil,
		func(ct, vt *TunnelConfig) { ct.Phase2.Proposals[0].PFSGroup = 14 })
	cgw.waitEvent(t, "phase2-up", 10*time.Second)
	vgw.waitEvent(t, "phase2-up", 10*time.Second)
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	resp := v2V.String() + " CREATE_CHILD_SA response"
	deadline := time.Now().Add(5 * time.Second)
	for tr.count(resp) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cs, vs := cgw.tunnel(t), vgw.tunnel(t)
	t.Logf("cgw error %q, vgw error %q", cs.LastError, vs.LastError)
	if !strings.Contains(cs.LastError, "INVALID_KE_PAYLOAD") {
		t.Fatalf("cgw error %q, want the vgw's INVALID_KE_PAYLOAD", cs.LastError)
	}
	if tr.count(resp) != 1 || cs.Counters.Phase2Rekeys != 0 || vs.Counters.Phase2Rekeys != 0 {
		t.Fatalf("CREATE_CHILD_SA responses %d (want 1, the refusal), rekeys cgw %d vgw %d (want 0)", tr.count(resp), cs.Counters.Phase2Rekeys, vs.Counters.Phase2Rekeys)
	}
	if !strings.Contains(cgw.logs.String(), "CREATE_CHILD_SA request sent without its KE payload") {
		t.Fatal("the impairment is not logged")
	}
}

// TestIKEv2ImpairInformational: the vgw answers the customer's liveness
// checks; drop:informational:1 loses its first answer, which the
// retransmitted check gets from the cache (the peer stays alive);
// drop-all:informational:1 also drops the cached answers (a repetition
// keeps the number of its message), so the customer declares it dead.
func TestIKEv2ImpairInformational(t *testing.T) {
	resp := v2V.String() + " INFORMATIONAL response"
	dpd := func(ct, vt *TunnelConfig) {
		ct.DPDDelay, ct.DPDTimeout, ct.DPDAction = 200*time.Millisecond, 3*time.Second, DPDClear
	}
	t.Run("drop", func(t *testing.T) {
		cgw, vgw, tr := newV2ImpairedMod(t, nil, []string{"drop:informational:1"}, nil, dpd)
		cgw.waitEvent(t, "phase2-up", 10*time.Second)
		vgw.waitEvent(t, "phase2-up", 10*time.Second)
		time.Sleep(1500 * time.Millisecond)
		cs, vs := cgw.tunnel(t), vgw.tunnel(t)
		if vs.Counters.DuplicatesAnswered != 1 || tr.count(resp) != tr.count(v2CInfoReq)-1 || cs.DPDState != "alive" || cs.Phase1State != "Established" {
			t.Fatalf("vgw cached answers %d (want 1), INFORMATIONAL requests %d responses %d (want one fewer), cgw DPD %s phase 1 %s",
				vs.Counters.DuplicatesAnswered, tr.count(v2CInfoReq), tr.count(resp), cs.DPDState, cs.Phase1State)
		}
	})
	t.Run("drop-all", func(t *testing.T) {
		cgw, vgw, tr := newV2ImpairedMod(t, nil, []string{"drop-all:informational:1"}, nil, dpd)
		cgw.waitEvent(t, "phase2-up", 10*time.Second)
		vgw.waitEvent(t, "phase2-up", 10*time.Second)
		cgw.waitEvent(t, "phase1-down", 10*time.Second)
		if n := tr.count(resp); n != 0 {
			t.Fatalf("%d INFORMATIONAL responses on the wire, want 0", n)
		}
		if vgw.tunnel(t).Counters.DuplicatesAnswered == 0 {
			t.Fatal("the vgw answered no retransmitted check from its cache")
		}
	})
}
