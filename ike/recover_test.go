package ike

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// panicDP is a data path that panics while armed when it completes a pair
// (Install, or ActivateOutbound of a pair staged at QM2): a bug in a
// component the engine calls from a message handler.
type panicDP struct {
	*MemoryDataPath
	armed atomic.Bool
}

func (p *panicDP) Install(pair ChildSAPair) error {
	if p.armed.Load() {
		panic("test: data path install panics")
	}
	return p.MemoryDataPath.Install(pair)
}

func (p *panicDP) ActivateOutbound(proto uint8, spi uint32) error {
	if p.armed.Load() {
		panic("test: data path install panics")
	}
	return p.MemoryDataPath.ActivateOutbound(proto, spi)
}

// TestPanicSafetyNet: a panic while the vgw handles QM3 (in the data
// path, when the pair staged at QM2 is completed) is recovered: logged at error with the exchange and
// cookies, counted in Status (panics and drops), the ISAKMP SA is torn
// down, and the engine keeps serving: the next negotiation succeeds. A
// panic in a timer or control closure is recovered and counted as well,
// and a control call made in the same closure does not hang.
func TestPanicSafetyNet(t *testing.T) {
	t.Parallel()
	c, v, ports := loopPair()
	vt := baseTunnel(v, c, ports)
	ct := baseTunnel(c, v, ports)
	ct.StartupAction = StartupStart
	mk := func(tc TunnelConfig) Config {
		return Config{Tunnels: []TunnelConfig{tc}, Ports: ports, RetransmitTimeout: 300 * time.Millisecond, RetransmitBase: 1.5, RetransmitTries: 3}
	}
	pdp := &panicDP{MemoryDataPath: NewMemoryDataPath()}
	pdp.armed.Store(true)
	vgw := startIGWWith(t, "vgw", mk(vt), pdp.MemoryDataPath, pdp)
	vgw.allowPanics = true
	time.Sleep(20 * time.Millisecond)
	cgw := startIGW(t, "cgw", mk(ct))

	vgw.evs.wait(t, "phase1-down", detail("reason", "internal error"), 10*time.Second)
	st := vgw.e.Status()
	if st.Counters.Panics != 1 || st.Counters.Drops[dropInternalError] != 1 {
		t.Fatalf("vgw counters after the panic: panics %d, drops %v; want 1 and internal-error 1", st.Counters.Panics, st.Counters.Drops)
	}
	logs := vgw.logs.String()
	i := strings.Index(logs, "internal error while handling an IKE message")
	if i < 0 {
		t.Fatal("no error line for the recovered panic")
	}
	line := logs[strings.LastIndex(logs[:i], "\n")+1:]
	line = line[:strings.Index(line, "\n")]
	for _, want := range []string{"level=error", "exchange=", "icookie=", "rcookie=", "tunnel=tunnel1", "test: data path install panics"} {
		if !strings.Contains(line, want) {
			t.Fatalf("the panic's log line lacks %q: %s", want, line)
		}
	}
	// The cgw got DELETE for the ISAKMP SA; it negotiates again from
	// scratch and the vgw, no longer panicking, serves it.
	pdp.armed.Store(false)
	cgw.evs.wait(t, "phase1-down", nil, 5*time.Second)
	if err := cgw.e.Terminate("tunnel1"); err != nil { // drop the cgw's half of the broken pair
		t.Fatal(err)
	}
	if err := cgw.e.Initiate("tunnel1"); err != nil {
		t.Fatal(err)
	}
	vgw.evs.wait(t, "phase2-up", nil, 10*time.Second)
	if n := len(vgw.dp.Pairs()); n != 1 {
		t.Fatalf("vgw has %d pairs after the new negotiation, want 1", n)
	}

	// A timer or control closure that panics.
	vgw.e.post(func() { panic("test: timer panics") })
	if err := vgw.e.call(func() { panic("test: control call panics") }); err != nil {
		t.Fatal(err)
	}
	if p := vgw.e.Status().Counters.Panics; p != 3 {
		t.Fatalf("vgw recovered %d panics, want 3", p)
	}
	if !strings.Contains(vgw.logs.String(), "internal error in a timer or control call") {
		t.Fatal("no error line for the timer panic")
	}
}
