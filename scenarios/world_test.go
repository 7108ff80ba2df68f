package scenarios

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/scenarios/report"
)

// A wait whose time runs out while the runner asks the gateway (or a
// gateway slow to answer) must report the route it saw last, not "no
// route": the defect was "expected ... via tunnel2, seen cgw: no route"
// while the gateway routed via tunnel1.
func TestWaitKeepsLastSeenRouteWhenAQueryFails(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gw.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hang := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(status.Snapshot{})
	})
	mux.HandleFunc("GET /v1/routing", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
			_, _ = w.Write([]byte(`{"mode":"static","routes":[{"prefix":"172.31.1.0/24","tunnels":["tunnel1","tunnel2"],"active":1,"carrying":["tunnel2"]}]}`))
		case <-r.Context().Done():
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	c := control.Dial("unix:" + sock)

	close(hang)
	st, rv, ok := queryGateway(context.Background(), c)
	if !ok || st == nil || rv == nil {
		t.Fatalf("first query failed: %v %v %v", st, rv, ok)
	}
	w := newWorld(nil)
	w.store("cgw", st, rv, ok)

	hang = make(chan struct{}) // the next routing request hangs
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	st2, rv2, ok2 := queryGateway(ctx, c)
	if ok2 {
		t.Fatalf("a query cut off by the step's end must not count as an answer: %v %v", st2, rv2)
	}
	w.store("cgw", st2, rv2, ok2)

	cond, err := parseCond("cgw route 172.31.1.0/24 via tunnel2", 1, true)
	if err != nil {
		t.Fatal(err)
	}
	held, seen := w.eval(cond, time.Time{})
	if held || seen != "cgw: via tunnel1" {
		t.Fatalf("decided route: held %v, seen %q (want the last seen cgw: via tunnel1)", held, seen)
	}
	cond, _ = parseCond("cgw route 172.31.1.0/24 carried by tunnel2", 1, true)
	held, seen = w.eval(cond, time.Time{})
	if !held || !strings.Contains(seen, "carried by tunnel2 (decided via tunnel1)") {
		t.Fatalf("carrying: held %v, seen %q", held, seen)
	}
	cond, _ = parseCond("cgw route 172.31.1.0/24 carried by none", 1, true)
	if held, _ = w.eval(cond, time.Time{}); held {
		t.Fatal("carried by none held while tunnel2 carries")
	}
}

// A failed event count lists the matching events (time, from, to, reason).
func TestEventCountFailureListsTheEvents(t *testing.T) {
	w := newWorld(nil)
	for i, to := range []string{"tunnel2", "tunnel1"} {
		w.addEvent(report.Event{Time: w.start.Add(time.Duration(i+1) * time.Second), Source: "vgw", Type: "route",
			Detail: map[string]string{"kind": "best-moved", "prefix": "10.10.1.0/24", "from": "x", "to": to, "reason": "r" + to}})
	}
	c, err := parseCond("vgw event route kind=best-moved count == 1", 1, false)
	if err != nil {
		t.Fatal(err)
	}
	held, seen := w.eval(c, time.Time{})
	want := "2 route kind=best-moved events: [1.0s vgw kind=best-moved prefix=10.10.1.0/24 from=x to=tunnel2 reason=rtunnel2] [2.0s vgw kind=best-moved prefix=10.10.1.0/24 from=x to=tunnel1 reason=rtunnel1]"
	if held || seen != want {
		t.Fatalf("held %v\nseen %s\nwant %s", held, seen, want)
	}
}

// Counting from a named step leaves out the start-up phase (whichever BGP
// session came up first got the route, then the tie-break moved it).
func TestEventCountSinceAStep(t *testing.T) {
	w := newWorld(nil)
	moved := func(at time.Duration, to string) {
		w.addEvent(report.Event{Time: w.start.Add(at), Source: "cgw", Type: "route",
			Detail: map[string]string{"kind": "best-moved", "prefix": "172.31.1.0/24", "to": to}})
	}
	moved(time.Second, "tunnel1") // start-up: tunnel2's session came first
	w.addEvent(report.Event{Time: w.start.Add(5 * time.Second), Source: "runner", Type: "step-start", Detail: map[string]string{"name": "steady state"}})
	moved(6*time.Second, "tunnel2") // the failover
	all, _ := parseCond("cgw event route kind=best-moved count == 1", 1, false)
	if held, seen := w.eval(all, time.Time{}); held {
		t.Fatalf("whole run: held with %s", seen)
	}
	c, err := parseCond(`cgw event route kind=best-moved since "steady state" count == 1`, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if held, seen := w.eval(c, time.Time{}); !held {
		t.Fatalf("since the step: %s", seen)
	}
	c, _ = parseCond(`cgw event route since later`, 1, false)
	if held, seen := w.eval(c, time.Time{}); held || seen != "0 route since step \"later\" events (the step has not started)" {
		t.Fatalf("step not started: %v %s", held, seen)
	}
}

// user_* leave out the link-local (BGP) share the data path counts apart.
func TestUserTrafficFields(t *testing.T) {
	w := newWorld(nil)
	c := &childsa.Counters{PacketsOut: 10, BytesOut: 1000, ControlPacketsOut: 4, ControlBytesOut: 200, PacketsIn: 3, ControlPacketsIn: 3}
	w.store("cgw", &status.Snapshot{Tunnels: []status.Tunnel{{Name: "tunnel2", SAs: []status.SA{{Counters: c}}}}}, nil, true)
	for cond, want := range map[string]bool{
		"cgw tunnel2 user_packets_out == 6": true, "cgw tunnel2 user_data_out == 800": true,
		"cgw tunnel2 user_packets_in == 0": true, "cgw tunnel2 control_packets_out == 4": true, "cgw tunnel2 packets_out == 10": true,
	} {
		cd, err := parseCond(cond, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		if held, seen := w.eval(cd, time.Time{}); held != want {
			t.Errorf("%s: %v (seen %s)", cond, held, seen)
		}
	}
}
