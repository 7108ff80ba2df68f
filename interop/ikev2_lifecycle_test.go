package interop

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// The life of an IKEv2 tunnel with strongSwan after IKE_AUTH: CREATE_CHILD_SA
// rekeys of the child and of the IKE SA started by either side under
// continuous ping traffic, liveness checks both ways, and DELETE both ways
// (INFORMATIONAL). charon (initiator, behind the SNAT) against our vgw.

// v2State is one consistent view of both sides: charon's IKE_SA with its
// one INSTALLED child and our tunnel with the pair that mirrors it.
type v2State struct {
	sa    strongswan.IKESA
	child strongswan.ChildSA
	ours  status.Tunnel
}

// v2Settled waits until charon has exactly one ESTABLISHED IKE_SA with one
// INSTALLED CHILD_SA, our tunnel has exactly one pair whose SPIs mirror it
// and the same IKE SPIs, and pred holds for that state.
func v2Settled(ctx context.Context, t *testing.T, c *strongswan.Charon, g *gateway, what string, pred func(v2State) bool) v2State {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last v2State
	var lastWhy string
	for {
		st, why := v2Snapshot(ctx, c, g)
		if why == "" && pred(st) {
			t.Logf("%s: IKE SA %s/%s, child in %s out %s (charon)", what, st.sa.InitiatorSPI, st.sa.ResponderSPI, st.child.SPIIn, st.child.SPIOut)
			return st
		}
		if why == "" {
			why = "state not reached yet"
		}
		last, lastWhy = st, why
		if time.Now().After(deadline) {
			t.Fatalf("%s: not settled within 15 s: %s; charon:%s; ours: %s %s/%s SAs %+v", what, lastWhy,
				strongswan.Summary([]strongswan.IKESA{last.sa}), last.ours.Phase1State, last.ours.ICookie, last.ours.RCookie, last.ours.SAs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// v2Snapshot reads both sides once; why says what is not consistent.
func v2Snapshot(ctx context.Context, c *strongswan.Charon, g *gateway) (v2State, string) {
	var st v2State
	sas, err := c.ListSAs(ctx)
	if err != nil {
		return st, err.Error()
	}
	var established []strongswan.IKESA
	for _, sa := range sas {
		if sa.Name == strongswanConn && sa.State == "ESTABLISHED" {
			established = append(established, sa)
		}
	}
	if len(established) != 1 {
		return st, "charon has " + strconv.Itoa(len(established)) + " ESTABLISHED IKE_SAs"
	}
	st.sa = established[0]
	var installed []strongswan.ChildSA
	for _, ch := range st.sa.Children {
		if ch.State == "INSTALLED" {
			installed = append(installed, ch)
		}
	}
	if len(installed) != 1 || len(st.sa.Children) != 1 {
		return st, "charon has " + strconv.Itoa(len(installed)) + " INSTALLED of " + strconv.Itoa(len(st.sa.Children)) + " CHILD_SAs"
	}
	st.child = installed[0]
	st.ours, err = control.Dial(g.control).Tunnel(ctx, tunnelName)
	if err != nil {
		return st, err.Error()
	}
	switch {
	case st.ours.Phase1State != "Established" || st.ours.IKEVersion != "ikev2":
		return st, "our phase 1 " + st.ours.Phase1State + " " + st.ours.IKEVersion
	case !strings.EqualFold(st.ours.ICookie, st.sa.InitiatorSPI) || !strings.EqualFold(st.ours.RCookie, st.sa.ResponderSPI):
		return st, "our IKE SPIs differ from charon's"
	case len(st.ours.SAs) != 1:
		return st, "we have " + strconv.Itoa(len(st.ours.SAs)) + " SA pairs"
	case !strings.EqualFold(st.ours.SAs[0].InboundSPI, st.child.SPIOut) || !strings.EqualFold(st.ours.SAs[0].OutboundSPI, st.child.SPIIn):
		return st, "our pair's SPIs differ from charon's child"
	}
	return st, ""
}

// TestIKEv2RekeysWithStrongSwan: under a ping every 50 ms from the onprem
// host to the vpc host, charon rekeys the child (swanctl --rekey --child),
// our vgw rekeys it (control API), charon rekeys the IKE SA (swanctl
// --rekey --ike), our vgw rekeys the IKE SA; after each both sides agree on
// exactly one IKE SA and one pair, all new; no probe is lost.
func TestIKEv2RekeysWithStrongSwan(t *testing.T) {
	requirements(t)
	tp := topologies[1]
	s := v2Suites[0]
	e := newEnv(t, tp)
	onprem, _ := e.addHosts()
	psk := newPSK(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	dir := e.lab.LogDir()
	g := e.startGateway(buildGateway(t, "vgw"), "vgw", ourConfig(dir, "vgw", tp.vgwAddr, tp.vgwAddr, tp.cgwID, vpcNet, onpremNet, false, s.v2Tunnel("")), psk, e.vgw)
	conn := s.v2Conn(psk)
	conn.LocalAddrs, conn.RemoteAddrs = tp.cgwLocal.String(), tp.vgwAddr.String()
	conn.LocalID, conn.RemoteID = tp.cgwID.String(), tp.vgwAddr.String()
	conn.Children[0].LocalTS, conn.Children[0].RemoteTS = []string{onpremNet.String()}, []string{vpcNet.String()}
	c := e.startCharonWith(ctx, e.cgw, strongswan.Options{LogLevel: 1}, conn)
	go c.Initiate(ctx, strongswanCSA, upTimeout) //nolint:errcheck // v2Settled reports the outcome
	st := v2Settled(ctx, t, c, g, "up", func(v2State) bool { return true })
	pingUntil(t, onprem, vpcHost)
	p := startProbe(t, onprem, vpcHost, 120*time.Second)
	time.Sleep(time.Second)
	cl := control.Dial(g.control)
	steps := []struct {
		what string
		do   func() error
		ike  bool // the IKE SA is new, else the child
	}{
		{"charon rekeys the child", func() error { _, err := c.Swanctl(ctx, "--rekey", "--child", strongswanCSA); return err }, false},
		{"our vgw rekeys the child", func() error { return cl.Rekey(ctx, tunnelName, 2) }, false},
		{"charon rekeys the IKE SA", func() error { _, err := c.Swanctl(ctx, "--rekey", "--ike", strongswanConn); return err }, true},
		{"our vgw rekeys the IKE SA", func() error { return cl.Rekey(ctx, tunnelName, 1) }, true},
	}
	var stepAt []string
	for _, step := range steps {
		before := st
		stepAt = append(stepAt, step.what+" at "+time.Since(p.start).Round(time.Millisecond).String())
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		st = v2Settled(ctx, t, c, g, step.what, func(now v2State) bool {
			if step.ike {
				return now.sa.InitiatorSPI != before.sa.InitiatorSPI && now.child.SPIIn == before.child.SPIIn
			}
			return now.child.SPIIn != before.child.SPIIn && now.child.SPIOut != before.child.SPIOut && now.sa.InitiatorSPI == before.sa.InitiatorSPI
		})
		time.Sleep(time.Second)
	}
	r := p.stop(t)
	t.Logf("probe onprem -> vpc every %v across four rekeys: %v (the silence began at %v; %s)", probeInterval, r,
		r.GapStart.Sub(p.start).Round(time.Millisecond), strings.Join(stepAt, ", "))
	if r.Lost != 0 {
		t.Errorf("%d probes lost across the rekeys", r.Lost)
	}
	tu, err := cl.Tunnel(ctx, tunnelName)
	if err != nil {
		t.Fatal(err)
	}
	if tu.Counters.Phase1Rekeys < 2 || tu.Counters.Phase2Rekeys < 2 {
		t.Errorf("our vgw counts %d IKE SA and %d child rekeys, want at least 2 each", tu.Counters.Phase1Rekeys, tu.Counters.Phase2Rekeys)
	}
}

// TestIKEv2LivenessAndDelete: liveness checks (empty INFORMATIONAL
// requests, AWS's DPD for IKEv2) each way, with the other side's checks off
// so that its own requests do not count as traffic: charon's (dpd_delay 1s)
// must be answered by our vgw, our vgw's (DPD delay 1 s, timeout 4 s,
// action clear) by charon, for longer than the timeout, with the SAs
// unchanged. Then charon's DELETE of the IKE SA (swanctl --terminate) ends
// our tunnel, and after a new IKE SA our vgw's Terminate ends charon's.
func TestIKEv2LivenessAndDelete(t *testing.T) {
	requirements(t)
	for _, who := range []string{"charon-checks", "vgw-checks"} {
		t.Run(who, func(t *testing.T) {
			v2Liveness(t, who == "vgw-checks")
		})
	}
}

func v2Liveness(t *testing.T, ours bool) {
	tp := topologies[1]
	s := v2Suites[1]
	e := newEnv(t, tp)
	psk := newPSK(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := e.lab.LogDir()
	dpd := "    dpd: {delay: 30s, timeout: 120s, action: clear}\n"
	conn := s.v2Conn(psk)
	conn.DPDDelay, conn.DPDTimeout = "1s", "4s"
	if ours {
		dpd = "    dpd: {delay: 1s, timeout: 4s, action: clear}\n"
		conn.DPDDelay, conn.DPDTimeout = "", ""
	}
	g := e.startGateway(buildGateway(t, "vgw"), "vgw", ourConfig(dir, "vgw", tp.vgwAddr, tp.vgwAddr, tp.cgwID, netipAny, netipAny, false, s.v2Tunnel(dpd)), psk, e.vgw)
	conn.LocalAddrs, conn.RemoteAddrs = tp.cgwLocal.String(), tp.vgwAddr.String()
	conn.LocalID, conn.RemoteID = tp.cgwID.String(), tp.vgwAddr.String()
	conn.Children[0].LocalTS, conn.Children[0].RemoteTS = []string{"0.0.0.0/0"}, []string{"0.0.0.0/0"}
	c := e.startCharonWith(ctx, e.cgw, strongswan.Options{LogLevel: 1}, conn)
	go c.Initiate(ctx, strongswanCSA, upTimeout) //nolint:errcheck // v2Settled reports the outcome
	st := v2Settled(ctx, t, c, g, "up", func(v2State) bool { return true })
	time.Sleep(6 * time.Second)
	after := v2Settled(ctx, t, c, g, "after 6 s of liveness checks", func(v2State) bool { return true })
	if after.sa.InitiatorSPI != st.sa.InitiatorSPI || after.child.SPIIn != st.child.SPIIn {
		t.Fatalf("the SAs changed during the liveness checks: IKE %s -> %s, child %s -> %s", st.sa.InitiatorSPI, after.sa.InitiatorSPI, st.child.SPIIn, after.child.SPIIn)
	}
	cl := control.Dial(g.control)
	tu, err := cl.Tunnel(ctx, tunnelName)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("our vgw: DPD %s, %d liveness checks sent, %d timeouts", tu.DPDState, tu.Counters.DPDProbes, tu.Counters.DPDTimeouts)
	log := netlab.TailFile(c.LogPath(), 5000)
	if ours {
		// Every second one check; charon answers each (its log shows the
		// empty requests); none times out.
		if tu.Counters.DPDProbes < 3 || tu.Counters.DPDTimeouts != 0 || (tu.DPDState != "alive" && tu.DPDState != "probing") {
			t.Errorf("our vgw: DPD %s, %d checks, %d timeouts; want at least 3 checks answered, no timeout", tu.DPDState, tu.Counters.DPDProbes, tu.Counters.DPDTimeouts)
		}
		if n := len(regexp.MustCompile(`parsed INFORMATIONAL request \d+ \[ \]`).FindAllString(log, -1)); n < 3 {
			t.Errorf("charon logs %d empty INFORMATIONAL requests from us, want at least 3", n)
		}
	} else if n := len(regexp.MustCompile(`parsed INFORMATIONAL response \d+ \[ \]`).FindAllString(log, -1)); n < 3 {
		t.Errorf("charon logs %d answers to its liveness checks, want at least 3 in 6 s", n)
	}
	// charon's DELETE ends our tunnel.
	if out, err := c.Terminate(ctx, strongswanConn, 5*time.Second); err != nil {
		t.Fatalf("swanctl --terminate: %v\n%s", err, out)
	}
	waitOurDown(t, g)
	// A new IKE SA, then our DELETE ends charon's.
	go c.Initiate(ctx, strongswanCSA, upTimeout) //nolint:errcheck // v2Settled reports the outcome
	v2Settled(ctx, t, c, g, "up again", func(v2State) bool { return true })
	if err := cl.Terminate(ctx, tunnelName); err != nil {
		t.Fatalf("our vgw: terminate: %v", err)
	}
	waitCharonGone(ctx, t, c)
	v2WaitLog(t, c, regexp.MustCompile(`received DELETE for IKE_SA `+strongswanConn), 2*time.Second)
}
