package exchange

import (
	"errors"
	"testing"
)

// TestRequests: our requests, one at a time, IDs from 0 up.
func TestRequests(t *testing.T) {
	var r Requests
	id, err := r.Next()
	if err != nil || id != 0 {
		t.Fatalf("first ID %d %v", id, err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrWindowFull) {
		t.Errorf("second request while the first is outstanding: %v", err)
	}
	if out, ok := r.Outstanding(); !ok || out != 0 {
		t.Errorf("outstanding %d %v", out, ok)
	}
	for _, bad := range []uint32{1, 0xffffffff, 7} {
		if r.Response(bad) {
			t.Errorf("response %d accepted for request 0", bad)
		}
	}
	if !r.Response(0) || r.Response(0) {
		t.Fatal("response 0 not accepted exactly once")
	}
	// IKE_SA_INIT answered with a cookie: again as message ID 0.
	if err := r.RestartInit(); err != nil {
		t.Fatal(err)
	}
	if id, _ := r.Next(); id != 0 {
		t.Fatalf("restarted IKE_SA_INIT has ID %d", id)
	}
	r.Response(0)
	if id, _ := r.Next(); id != 1 {
		t.Fatalf("IKE_AUTH has ID %d", id)
	}
	if err := r.RestartInit(); err == nil {
		t.Error("restart after IKE_AUTH")
	}
	r.Response(1)
	r.next = 0xffffffff
	if id, err := r.Next(); err != nil || id != 0xffffffff {
		t.Fatalf("last ID %x %v", id, err)
	}
	r.Response(0xffffffff)
	if _, err := r.Next(); !errors.Is(err, ErrIDsExhausted) {
		t.Errorf("ID after 0xffffffff: %v", err)
	}
}

// TestResponses: the peer's requests: the next one is processed, the last
// one again gets the cached response, everything else is dropped.
func TestResponses(t *testing.T) {
	var r Responses
	req0, resp0 := []byte("IKE_SA_INIT request"), [][]byte{[]byte("IKE_SA_INIT response")}
	steps := []struct {
		name string
		id   uint32
		req  []byte
		want Verdict
	}{
		{"old ID before anything", 5, req0, Drop},
		{"first request", 0, req0, Process},
		{"duplicate while processing", 0, req0, Drop},
	}
	for _, s := range steps {
		if v, _, why := r.Receive(s.id, s.req); v != s.want {
			t.Fatalf("%s: %s (%s), want %s", s.name, v, why, s.want)
		}
	}
	if err := r.Answered(1, req0, resp0); err == nil {
		t.Error("answered an ID not being processed")
	}
	if err := r.Answered(0, req0, resp0); err != nil {
		t.Fatal(err)
	}
	v, cached, _ := r.Receive(0, req0)
	if v != Retransmit || len(cached) != 1 || string(cached[0]) != "IKE_SA_INIT response" {
		t.Fatalf("retransmitted request: %s %q", v, cached)
	}
	if v, _, why := r.Receive(0, []byte("another request with ID 0")); v != Drop {
		t.Errorf("different bytes under the answered ID: %s", v)
	} else if why == "" {
		t.Error("drop without a reason")
	}
	for _, id := range []uint32{2, 100, 0xffffffff} {
		if v, _, _ := r.Receive(id, req0); v != Drop {
			t.Errorf("ID %d outside the window: %s", id, v)
		}
	}
	req1 := []byte("IKE_AUTH request")
	if v, _, _ := r.Receive(1, req1); v != Process {
		t.Fatalf("request 1: %s", v)
	}
	r.Abandon() // e.g. it failed a check before any response
	if v, _, _ := r.Receive(1, req1); v != Process {
		t.Fatalf("request 1 after abandon: %s", v)
	}
	frags := [][]byte{[]byte("fragment 1"), []byte("fragment 2")}
	if err := r.Answered(1, req1, frags); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := r.Receive(0, req0); v != Drop {
		t.Errorf("request 0 after request 1 was answered: %s", v)
	}
	if v, c, _ := r.Receive(1, req1); v != Retransmit || len(c) != 2 {
		t.Errorf("request 1 again: %s with %d datagrams", v, len(c))
	}
	if r.Expected() != 2 {
		t.Errorf("expecting %d", r.Expected())
	}
	r.expected = 0xffffffff
	r.busy = false
	if v, _, _ := r.Receive(0xffffffff, req1); v != Process {
		t.Fatal("last ID not processed")
	}
	_ = r.Answered(0xffffffff, req1, nil)
	if v, _, _ := r.Receive(0, req1); v != Drop {
		t.Error("ID space wrapped")
	}
}
