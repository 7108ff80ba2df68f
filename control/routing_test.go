package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// routingFake adds a RoutingBackend to the fake engine.
type routingFake struct {
	*fakeBackend
	rmu   sync.Mutex
	calls []string
}

func (r *routingFake) RoutingStatus() any {
	return map[string]any{"mode": "bgp", "routes": []map[string]any{{"prefix": "10.10.0.0/16", "tunnels": []string{"tunnel1", "tunnel2"}}}}
}
func (r *routingFake) record(s string) { r.rmu.Lock(); r.calls = append(r.calls, s); r.rmu.Unlock() }
func (r *routingFake) Advertise(p netip.Prefix) error {
	r.record("advertise " + p.String())
	return nil
}
func (r *routingFake) Withdraw(p netip.Prefix) error {
	r.record("withdraw " + p.String())
	return errors.New("10.1.0.0/16 is not advertised")
}
func (r *routingFake) SetNeighborPolicy(tunnel string, med uint32, prepend int) error {
	if tunnel != "tunnel1" {
		return fmt.Errorf("%w %q", ErrUnknownTunnel, tunnel)
	}
	r.record(fmt.Sprintf("policy %s med=%d prepend=%d", tunnel, med, prepend))
	return nil
}

func TestRoutingAPI(t *testing.T) {
	rf := &routingFake{fakeBackend: newFake()}
	srv := httptest.NewServer(NewServer(rf, nil))
	defer srv.Close()
	c := Dial(strings.TrimPrefix(srv.URL, "http://"))
	ctx := context.Background()
	var st struct {
		Mode   string `json:"mode"`
		Routes []struct {
			Prefix  string   `json:"prefix"`
			Tunnels []string `json:"tunnels"`
		} `json:"routes"`
	}
	if err := c.Routing(ctx, &st); err != nil || st.Mode != "bgp" || st.Routes[0].Tunnels[1] != "tunnel2" {
		t.Fatalf("Routing: %+v %v", st, err)
	}
	if err := c.Advertise(ctx, netip.MustParsePrefix("10.20.0.0/16")); err != nil {
		t.Fatal(err)
	}
	if err := c.Withdraw(ctx, netip.MustParsePrefix("10.1.0.0/16")); err == nil || !strings.Contains(err.Error(), "not advertised") {
		t.Fatalf("Withdraw error %v, want the backend's message", err)
	}
	if err := c.SetNeighborPolicy(ctx, "tunnel1", 200, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.SetNeighborPolicy(ctx, "tunnel9", 0, 0); !errors.Is(err, ErrUnknownTunnel) {
		t.Fatalf("unknown tunnel: %v", err)
	}
	want := "advertise 10.20.0.0/16|withdraw 10.1.0.0/16|policy tunnel1 med=200 prepend=2"
	if got := strings.Join(rf.calls, "|"); got != want {
		t.Fatalf("calls %q, want %q", got, want)
	}
	for _, bad := range []string{"/v1/routing/advertise?prefix=10.20.0.1/16", "/v1/routing/advertise?prefix=x", "/v1/routing/neighbors/tunnel1?med=1&prepend=11"} {
		resp, err := http.Post(srv.URL+bad, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("POST %s: %d, want 400", bad, resp.StatusCode)
		}
	}
	// A gateway without routing answers 404 with a message.
	plain := httptest.NewServer(NewServer(newFake(), nil))
	defer plain.Close()
	_, err := Dial(strings.TrimPrefix(plain.URL, "http://")).Raw(ctx, "GET", "/v1/routing")
	if err == nil || !strings.Contains(err.Error(), "no dynamic routing") {
		t.Fatalf("no routing backend: %v", err)
	}
}
