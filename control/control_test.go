package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/ike/status"
)

// fakeBackend is an in-memory Backend.
type fakeBackend struct {
	mu       sync.Mutex
	tunnels  []status.Tunnel
	calls    []string
	failWith error // returned by every action when set
	subs     map[int]chan status.Event
	nextSub  int
	unsubbed chan int
}

func newFake() *fakeBackend {
	return &fakeBackend{
		tunnels: []status.Tunnel{
			{Name: "tunnel1", LocalAddr: "198.51.100.2", RemoteAddr: "203.0.113.10", Phase1State: "Established", Phase2State: "Established",
				ICookie: "069cf174ba04d16c", SAs: []status.SA{{Protocol: "esp", Mode: "tunnel", UDPEncap: true, InboundSPI: "ef5ebbd9", OutboundSPI: "ad8c3188"}},
				Counters: status.Counters{MessagesIn: 7, MessagesOut: 8}},
			{Name: "tunnel2", LocalAddr: "198.51.100.2", RemoteAddr: "203.0.113.20", Phase1State: "Down", Phase2State: "Down"},
		},
		subs:     map[int]chan status.Event{},
		unsubbed: make(chan int, 16),
	}
}

func (f *fakeBackend) Status() status.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return status.Snapshot{Tunnels: append([]status.Tunnel(nil), f.tunnels...), Counters: status.EngineCounters{Received: 42}}
}

func (f *fakeBackend) Subscribe() (<-chan status.Event, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextSub
	f.nextSub++
	ch := make(chan status.Event, 64)
	f.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, id)
			f.mu.Unlock()
			f.unsubbed <- id
		})
	}
}

func (f *fakeBackend) publish(ev status.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		ch <- ev
	}
}

func (f *fakeBackend) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeBackend) action(call, tunnel string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if f.failWith != nil {
		return f.failWith
	}
	for _, t := range f.tunnels {
		if t.Name == tunnel {
			return nil
		}
	}
	return fmt.Errorf("%w %q", ErrUnknownTunnel, tunnel)
}

func (f *fakeBackend) Initiate(t string) error  { return f.action("initiate "+t, t) }
func (f *fakeBackend) Terminate(t string) error { return f.action("terminate "+t, t) }
func (f *fakeBackend) Rekey(t string, phase int) error {
	return f.action(fmt.Sprintf("rekey %s %d", t, phase), t)
}

func (f *fakeBackend) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// startUnix serves fb on a unix socket in a temp dir; the returned cancel
// stops the server and waits for Serve to return.
func startUnix(t *testing.T, fb *fakeBackend) (sock string, stop func() error) {
	t.Helper()
	sock = filepath.Join(t.TempDir(), "run", "ctl.sock") // parent dir does not exist yet
	ln, err := Listen("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer(fb, nil).ServeListener(ctx, ln) }()
	var once sync.Once
	var serr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serr = <-done:
			case <-time.After(10 * time.Second):
				serr = errors.New("Serve did not return within 10s")
			}
		})
		return serr
	}
	t.Cleanup(func() { _ = stop() })
	return sock, stop
}

func unixHTTP(sock string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// raw does one request and returns status code and the decoded JSON body.
func raw(t *testing.T, hc *http.Client, method, path string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://unix"+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, body %s", method, path, ct, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, path, err, body)
	}
	return resp.StatusCode, resp.Header, m
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEndpointsOverUnixSocket(t *testing.T) {
	fb := newFake()
	sock, stop := startUnix(t, fb)
	ctx := ctxT(t)

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want socket 0600", fi.Mode())
	}

	c := Dial("unix:" + sock)
	if err := c.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Tunnels) != 2 || st.Tunnels[0].Name != "tunnel1" || st.Tunnels[0].SAs[0].OutboundSPI != "ad8c3188" || st.Counters.Received != 42 {
		t.Errorf("status = %+v", st)
	}

	tun, err := c.Tunnel(ctx, "tunnel1")
	if err != nil {
		t.Fatal(err)
	}
	if tun.RemoteAddr != "203.0.113.10" || tun.ICookie != "069cf174ba04d16c" || tun.Counters.MessagesOut != 8 {
		t.Errorf("tunnel1 = %+v", tun)
	}
	if _, err := c.Tunnel(ctx, "nope"); !errors.Is(err, ErrUnknownTunnel) {
		t.Errorf("Tunnel(nope) err = %v, want ErrUnknownTunnel", err)
	}

	if err := c.Initiate(ctx, "tunnel1"); err != nil {
		t.Error(err)
	}
	if err := c.Terminate(ctx, "tunnel2"); err != nil {
		t.Error(err)
	}
	if err := c.Rekey(ctx, "tunnel1", 1); err != nil {
		t.Error(err)
	}
	if err := c.Rekey(ctx, "tunnel1", 2); err != nil {
		t.Error(err)
	}
	want := []string{"initiate tunnel1", "terminate tunnel2", "rekey tunnel1 1", "rekey tunnel1 2"}
	if got := fb.takeCalls(); strings.Join(got, ";") != strings.Join(want, ";") {
		t.Errorf("backend calls = %q, want %q", got, want)
	}

	// Error mapping.
	err = c.Initiate(ctx, "nope")
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 404 || !errors.Is(err, ErrUnknownTunnel) {
		t.Errorf("Initiate(nope) = %v, want 404 matching ErrUnknownTunnel", err)
	}
	if err := c.Rekey(ctx, "tunnel1", 3); !errors.As(err, &ae) || ae.StatusCode != 400 || !strings.Contains(ae.Message, "phase") {
		t.Errorf("Rekey phase 3 = %v, want 400", err)
	}
	if len(fb.takeCalls()) != 0 {
		t.Error("backend called for a rejected request")
	}
	fb.mu.Lock()
	fb.failWith = errors.New("phase 1 already negotiating")
	fb.mu.Unlock()
	if err := c.Initiate(ctx, "tunnel1"); !errors.As(err, &ae) || ae.StatusCode != 500 || ae.Message != "phase 1 already negotiating" {
		t.Errorf("backend failure = %v, want 500 with the backend's message", err)
	}
	// A backend that knows less than its status (race with a config change)
	// still yields 404 through the wrapped sentinel.
	fb.mu.Lock()
	fb.failWith = fmt.Errorf("engine: %w %q", ErrUnknownTunnel, "tunnel2")
	fb.mu.Unlock()
	if err := c.Terminate(ctx, "tunnel2"); !errors.As(err, &ae) || ae.StatusCode != 404 {
		t.Errorf("wrapped sentinel = %v, want 404", err)
	}
	fb.mu.Lock()
	fb.failWith = nil
	fb.mu.Unlock()

	// Raw HTTP: codes, JSON bodies, Allow headers.
	hc := unixHTTP(sock)
	cases := []struct {
		method, path string
		code         int
		key, substr  string
	}{
		{"GET", "/v1/health", 200, "status", "ok"},
		{"POST", "/v1/tunnels/tunnel1/initiate", 202, "result", "accepted"},
		{"POST", "/v1/tunnels/tunnel1/rekey?phase=2", 202, "action", "rekey"},
		{"POST", "/v1/tunnels/tunnel1/rekey", 400, "error", "bad phase"},
		{"POST", "/v1/tunnels/tunnel1/rekey?phase=x", 400, "error", "bad phase"},
		{"GET", "/v1/tunnels/nope", 404, "error", `unknown tunnel "nope"`},
		{"POST", "/v1/tunnels/nope/terminate", 404, "error", "unknown tunnel"},
		{"GET", "/v1/tunnels/tunnel1/initiate", 405, "error", "not allowed"},
		{"POST", "/v1/status", 405, "error", "not allowed"},
		{"DELETE", "/v1/tunnels/tunnel1", 405, "error", "not allowed"},
		{"POST", "/v1/events", 405, "error", "not allowed"},
		{"GET", "/v2/whatever", 404, "error", "no such endpoint"},
		{"POST", "/v1/tunnels/tunnel1/explode", 404, "error", "no such endpoint"},
	}
	for _, tc := range cases {
		code, hdr, body := raw(t, hc, tc.method, tc.path)
		if code != tc.code {
			t.Errorf("%s %s: code %d, want %d (%v)", tc.method, tc.path, code, tc.code, body)
		}
		if s, _ := body[tc.key].(string); !strings.Contains(s, tc.substr) {
			t.Errorf("%s %s: body %v, want %s containing %q", tc.method, tc.path, body, tc.key, tc.substr)
		}
		if code == 405 && hdr.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow header", tc.method, tc.path)
		}
	}
	// The status JSON uses the ike field names and [] for empty SA lists.
	code, _, body := raw(t, hc, "GET", "/v1/status")
	if code != 200 {
		t.Fatalf("status code %d", code)
	}
	tunnels, _ := body["tunnels"].([]any)
	if len(tunnels) != 2 {
		t.Fatalf("status body %v", body)
	}
	if sas, ok := tunnels[1].(map[string]any)["sas"].([]any); !ok || len(sas) != 0 {
		t.Errorf("tunnel2 sas = %#v, want []", tunnels[1].(map[string]any)["sas"])
	}

	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still present after shutdown: %v", err)
	}
}

func recvEvent(t *testing.T, ch <-chan status.Event) status.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed early")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return status.Event{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEventStream(t *testing.T) {
	fb := newFake()
	sock, _ := startUnix(t, fb)
	c := Dial("unix:" + sock)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Events returns after the response headers, i.e. after the server
	// subscribed: nothing published from now on may be lost.
	if n := fb.subscribers(); n != 1 {
		t.Fatalf("subscribers = %d, want 1", n)
	}
	t0 := time.Date(2026, 11, 21, 10, 55, 39, 0, time.UTC)
	var sent []status.Event
	for i, typ := range []string{"phase1-up", "phase2-up", "notify-received", "phase2-down", "phase1-down"} {
		ev := status.Event{Time: t0.Add(time.Duration(i) * time.Millisecond), Tunnel: "tunnel1", Type: typ}
		if typ == "notify-received" {
			ev.Detail = map[string]string{"notify": "R-U-THERE", "seq": fmt.Sprint(i)}
		}
		sent = append(sent, ev)
	}
	fb.publish(sent[0])
	// The first event arrives on its own: the server flushes per event.
	if got := recvEvent(t, ch); got.Type != "phase1-up" || !got.Time.Equal(t0) {
		t.Fatalf("first event = %+v", got)
	}
	for _, ev := range sent[1:] {
		fb.publish(ev)
	}
	for i, want := range sent[1:] {
		got := recvEvent(t, ch)
		if got.Type != want.Type || got.Tunnel != want.Tunnel || !got.Time.Equal(want.Time) || fmt.Sprint(got.Detail) != fmt.Sprint(want.Detail) {
			t.Errorf("event %d = %+v, want %+v", i+1, got, want)
		}
	}

	// The client cancels: its channel closes and the server unsubscribes.
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Error("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
	select {
	case <-fb.unsubbed:
	case <-time.After(5 * time.Second):
		t.Fatal("server did not unsubscribe after the client went away")
	}
	waitFor(t, "no subscribers", func() bool { return fb.subscribers() == 0 })
}

func TestEventStreamRaw(t *testing.T) {
	// curl's view: one JSON object per line, ndjson content type.
	fb := newFake()
	sock, _ := startUnix(t, fb)
	hc := unixHTTP(sock)
	hc.Timeout = 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://unix/v1/events", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("code %d content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	fb.publish(status.Event{Time: time.Unix(0, 0).UTC(), Tunnel: "tunnel1", Type: "phase1-up"})
	buf := make([]byte, 4096)
	n, err := resp.Body.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	line := string(buf[:n])
	if line != `{"time":"1970-01-01T00:00:00Z","tunnel":"tunnel1","type":"phase1-up"}`+"\n" {
		t.Errorf("stream line %q", line)
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	fb := newFake()
	sock, stop := startUnix(t, fb)
	c := Dial("unix:" + sock)
	ch, err := c.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown with an open stream took %v", d)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Error("unexpected event")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream not ended by shutdown")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed: %v", err)
	}
}

func TestServeRemovesStaleSocketAndRefusesLive(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	// A stale socket: bound, closed without unlinking (like a crashed process).
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("stale socket missing: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer(newFake(), nil).Serve(ctx, "unix:"+sock) }()
	c := Dial("unix:" + sock)
	waitFor(t, "server on the formerly stale socket", func() bool { return c.Health(context.Background()) == nil })

	// A second server must not steal the live socket.
	if _, err := Listen("unix:" + sock); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second Listen on a live socket: err = %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed: %v", err)
	}

	// A regular file is never removed.
	reg := filepath.Join(dir, "file")
	if err := os.WriteFile(reg, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen("unix:" + reg); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a regular file: err = %v", err)
	}
	if b, _ := os.ReadFile(reg); string(b) != "keep" {
		t.Error("regular file was touched")
	}
}

func TestNonLoopbackRefused(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9500", ":9500", "[::]:9500", "192.0.2.1:9500", "10.0.0.1:0", "example.com:9500", "no-port"} {
		err := NewServer(newFake(), nil).Serve(context.Background(), addr)
		if err == nil {
			t.Errorf("Serve(%q) succeeded", addr)
			continue
		}
		if addr != "no-port" && !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Serve(%q) error %q does not explain the loopback rule", addr, err)
		}
	}
}

func TestLoopbackTCP(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer(newFake(), nil).ServeListener(ctx, ln) }()
	c := Dial(ln.Addr().String())
	st, err := c.Status(ctxT(t))
	if err != nil || len(st.Tunnels) != 2 {
		t.Errorf("status over TCP: %+v, %v", st, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// The engine is the production Backend.
var _ Backend = (*ike.Engine)(nil)
