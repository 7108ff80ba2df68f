package control

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/ike/impair"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// The engine must stay an ImpairBackend, or /v1/impair would silently
// disappear from the gateways.
var _ ImpairBackend = (*ike.Engine)(nil)

// runEngine runs a real engine (one tunnel, nothing initiated) on loopback.
func runEngine(t *testing.T) *ike.Engine {
	t.Helper()
	x, y := byte(rand.IntN(250)+1), byte(rand.IntN(250)+1)
	port := uint16(20000 + rand.IntN(20000))
	lg := logrus.New()
	lg.SetOutput(discard{})
	cfg := policy.Config{Ports: policy.Ports{IKE: port, NATT: port + 1}, Tunnels: []policy.Tunnel{{
		Name: "tunnel1", LocalAddr: netip.AddrFrom4([4]byte{127, x, y, 1}), RemoteAddr: netip.AddrFrom4([4]byte{127, x, y, 2}),
		PSK:    policy.Secret("test.psk_for_vpnlab_1"),
		Phase1: policy.Phase1{Proposals: []policy.Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA1, DHGroup: 14}}},
		Phase2: policy.Phase2{Proposals: []policy.Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESCBC, EncKeyBits: 128, Integrity: isakmp.AuthHMACSHA1}}},
	}}}
	e, err := ike.NewEngine(cfg, ike.WithLogger(lg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// TestImpairAPI drives /v1/impair of a real engine through the Client and
// with plain HTTP.
func TestImpairAPI(t *testing.T) {
	e := runEngine(t)
	srv := httptest.NewServer(NewServer(e, nil))
	defer srv.Close()
	c := Dial(strings.TrimPrefix(srv.URL, "http://"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if got, err := c.Impairments(ctx); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Impairments() at start = %#v, %v; want an empty list", got, err)
	}
	for _, spec := range []string{"tunnel1/drop:main:3", "SEND-TWICE", "no-delete"} {
		if err := c.Impair(ctx, spec); err != nil {
			t.Fatalf("Impair(%q): %v", spec, err)
		}
	}
	want := []string{"tunnel1/drop:main:3", "send-twice", "no-delete"}
	if got, err := c.Impairments(ctx); err != nil || !slices.Equal(got, want) {
		t.Fatalf("Impairments() = %q, %v; want %q", got, err, want)
	}
	if got := e.Impairments(); !slices.Equal(got, want) {
		t.Fatalf("the engine has %q, want %q", got, want)
	}

	// A bad spec: 400 with the parser's message, nothing changes.
	err := c.Impair(ctx, "drop:main:9")
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest ||
		!strings.Contains(ae.Message, "out of range for main mode (allowed: 1-6") {
		t.Fatalf("Impair(drop:main:9) = %v, want a 400 with the parser's message", err)
	}
	_, perr := impair.Parse("drop:main:9")
	if ae.Message != perr.Error() {
		t.Fatalf("message %q, want the parser's %q", ae.Message, perr)
	}
	if err := c.Impair(ctx, ""); !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || !strings.Contains(ae.Message, "allowed:") {
		t.Fatalf("Impair(\"\") = %v", err)
	}
	// An unknown tunnel: 404 that matches ErrUnknownTunnel.
	if err := c.Impair(ctx, "tunnel9/no-delete"); !errors.Is(err, ErrUnknownTunnel) {
		t.Fatalf("Impair(tunnel9/...) = %v, want ErrUnknownTunnel", err)
	}
	// Well formed, but tunnel1 speaks IKEv1 only: 409 with the reason.
	if err := c.Impair(ctx, "tunnel1/drop:ike_auth:1"); !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict || !strings.Contains(ae.Message, "IKEv1 only") {
		t.Fatalf("Impair(tunnel1/drop:ike_auth:1) = %v, want a 409 that says the tunnel speaks IKEv1 only", err)
	}
	if got, _ := c.Impairments(ctx); !slices.Equal(got, want) {
		t.Fatalf("refused requests changed the impairments: %q", got)
	}

	// "none" for one tunnel through POST, then DELETE for the rest.
	if err := c.Impair(ctx, "tunnel1/none"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Impairments(ctx); !slices.Equal(got, []string{"send-twice", "no-delete"}) {
		t.Fatalf("after tunnel1/none: %q", got)
	}
	if err := c.ClearImpairments(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.Impairments(); len(got) != 0 {
		t.Fatalf("after DELETE the engine still has %q", got)
	}

	// Plain HTTP: bodies, escaping, methods.
	resp, err := http.Post(srv.URL+"/v1/impair?spec=tunnel1%2Fomit-ke%3Aquick", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var body ImpairResponse
	decodeBody(t, resp, &body)
	if resp.StatusCode != http.StatusOK || !slices.Equal(body.Impairments, []string{"tunnel1/omit-ke:quick"}) {
		t.Fatalf("POST: %d %+v", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v1/impair", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	decodeBody(t, resp, &raw)
	if l, ok := raw["impairments"].([]any); resp.StatusCode != http.StatusOK || !ok || len(l) != 0 {
		t.Fatalf("DELETE: %d %v, want 200 {\"impairments\": []}", resp.StatusCode, raw)
	}
	req, _ = http.NewRequest(http.MethodPut, srv.URL+"/v1/impair", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, POST, DELETE" {
		t.Fatalf("PUT: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestImpairAPIWithoutSupport: a backend that cannot impair answers 404.
func TestImpairAPIWithoutSupport(t *testing.T) {
	srv := httptest.NewServer(NewServer(newFake(), nil))
	defer srv.Close()
	c := Dial(strings.TrimPrefix(srv.URL, "http://"))
	err := c.Impair(context.Background(), "send-twice")
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound || ae.Message != ErrNoImpair.Error() || errors.Is(err, ErrUnknownTunnel) {
		t.Fatalf("Impair on a backend without impairments: %v", err)
	}
	if _, err := c.Impairments(context.Background()); !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
		t.Fatalf("Impairments: %v", err)
	}
}

func decodeBody(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
