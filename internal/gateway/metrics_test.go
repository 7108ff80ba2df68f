package gateway

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsFlag: --metrics serves GET /metrics alone, with the engine's
// metrics and the Go runtime's, until the gateway stops; a bad address is a
// startup error.
func TestMetricsFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	port := 20000 + rand.IntN(20000)
	p := writeConfig(t, fmt.Sprintf("ike:\n  port: %d\n  natt_port: %d\ntunnels:\n  - name: t1\n    local_address: 127.0.0.1\n    remote_address: 127.0.0.2\n    psk_file: t.psk\n", port, port+1))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code int
		errs string
	}
	done := make(chan result, 1)
	go func() {
		code, _, errs := run(ctx, "--config", p, "--metrics", addr)
		done <- result{code, errs}
	}()
	get := func(path string) (int, string, error) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	deadline := time.Now().Add(10 * time.Second)
	var code int
	var body string
	for {
		code, body, err = get("/metrics")
		if err == nil && code == http.StatusOK {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("gateway exited %d before serving metrics: %s", r.code, r.errs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics on %s: %d %v", addr, code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{`vpnlab_tunnel_phase1_state{state="Down",tunnel="t1"} 1`, `vpnlab_tunnel_up{tunnel="t1"} 0`, "go_goroutines ", "process_open_fds "} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if code, _, err := get("/v1/status"); err != nil || code != http.StatusNotFound {
		t.Errorf("GET /v1/status on the metrics listener: %d %v, want 404", code, err)
	}
	cancel()
	select {
	case r := <-done:
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.errs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not stop")
	}
	if _, _, err := get("/metrics"); err == nil {
		t.Error("metrics still served after the gateway stopped")
	}

	code, _, errs := run(context.Background(), "--config", p, "--metrics", "nonsense")
	if code != ExitError || !strings.Contains(errs, "--metrics nonsense: want host:port") {
		t.Errorf("bad address: exit %d %q", code, errs)
	}
}
