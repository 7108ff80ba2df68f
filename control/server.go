// Package control is the status and control API of a gateway process: HTTP/1.1
// with JSON bodies, served on a unix socket or a loopback TCP address. People
// use it with curl, the scenario runner with Client. See docs/control-api.md.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/status"
)

// ErrUnknownTunnel is the sentinel a Backend wraps (fmt.Errorf("%w ...")) when
// a control call names a tunnel that is not configured; the server answers
// such errors with 404. It is the same value as status.ErrUnknownTunnel, so the
// engine's errors match it with errors.Is. Client methods return errors that
// match it too when the server answered 404 for a tunnel.
var ErrUnknownTunnel = status.ErrUnknownTunnel

// Backend is what the control API drives; *ike.Engine implements it.
type Backend interface {
	Status() status.Snapshot
	// Subscribe returns a channel of events and a function that ends the
	// subscription (after which the channel may be closed).
	Subscribe() (<-chan status.Event, func())
	Initiate(tunnel string) error
	Terminate(tunnel string) error
	Rekey(tunnel string, phase int) error
}

// shutdownTimeout bounds how long Serve waits for in-flight requests once its
// context is cancelled.
const shutdownTimeout = 5 * time.Second

// Server serves the control API. It is an http.Handler, so it can also be
// mounted elsewhere (tests use httptest with it).
type Server struct {
	b   Backend
	log logrus.FieldLogger
	mux *http.ServeMux
}

// NewServer returns a server for b. log may be nil.
func NewServer(b Backend, log logrus.FieldLogger) *Server {
	if log == nil {
		l := logrus.New()
		l.SetOutput(discard{})
		log = l
	}
	s := &Server{b: b, log: log.WithField("component", "control"), mux: http.NewServeMux()}
	s.routes()
	return s
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve listens on listen ("unix:/run/vpnlab/gw.sock" or a loopback
// "127.0.0.1:9500" / "[::1]:9500" / "localhost:9500") and serves until ctx is
// cancelled; it then shuts down (open event streams end), removes the unix
// socket and returns nil. Any other failure is returned.
func (s *Server) Serve(ctx context.Context, listen string) error {
	ln, err := Listen(listen)
	if err != nil {
		return err
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener serves on an already open listener (see Listen) until ctx is
// cancelled, then closes it (a unix listener created by Listen removes its
// socket file on close).
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	// Request contexts derive from baseCtx, so cancelling ctx also ends
	// long-lived event streams and Shutdown does not have to wait for them.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	s.log.WithField("listen", listenerName(ln)).Info("control API listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		removeSocket(ln)
		return fmt.Errorf("control: serve: %w", err)
	case <-ctx.Done():
	}
	cancelBase()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
	}
	<-errc
	removeSocket(ln)
	s.log.Info("control API stopped")
	if err != nil {
		return fmt.Errorf("control: shutdown: %w", err)
	}
	return nil
}

func listenerName(ln net.Listener) string {
	if ln.Addr().Network() == "unix" {
		return "unix:" + ln.Addr().String()
	}
	return ln.Addr().String()
}

func removeSocket(ln net.Listener) {
	if ln.Addr().Network() != "unix" {
		return
	}
	path := ln.Addr().String()
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
}

// Listen opens the listener Serve would use. For "unix:PATH" it creates the
// parent directory (0750) if needed, removes a stale socket file (refusing if
// a server still answers on it or if PATH is not a socket) and makes the
// socket mode 0600. TCP addresses must be loopback: a host that is not a
// loopback IP literal or "localhost" (including an empty host, which would
// bind every interface) is refused, because the API has no authentication.
func Listen(listen string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(listen, "unix:"); ok {
		return listenUnix(path)
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("control: listen address %q: want unix:/path or a loopback host:port: %w", listen, err)
	}
	if err := checkLoopback(host); err != nil {
		return nil, fmt.Errorf("control: listen address %q: %w", listen, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	return ln, nil
}

func checkLoopback(host string) error {
	if host == "localhost" {
		return nil
	}
	if host == "" {
		return errors.New("refusing to listen on all interfaces: the control API is unauthenticated, use a loopback address (127.0.0.1, [::1]) or unix:/path")
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("refusing host %q: only loopback IP literals or localhost are allowed (the control API is unauthenticated)", host)
	}
	if !ip.IsLoopback() {
		return fmt.Errorf("refusing non-loopback address %s: the control API is unauthenticated, use a loopback address (127.0.0.1, [::1]) or unix:/path", host)
	}
	return nil
}

func listenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("control: empty unix socket path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("control: socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control: %s exists and is not a socket; not removing it", path)
		}
		c, derr := net.DialTimeout("unix", path, time.Second)
		if derr == nil {
			c.Close()
			return nil, fmt.Errorf("control: %s: another process is serving on this socket", path)
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) && !errors.Is(derr, syscall.ENOENT) {
			return nil, fmt.Errorf("control: %s: checking existing socket: %w", path, derr)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("control: removing stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: chmod socket: %w", err)
	}
	return ln, nil
}

// ---- routes ------------------------------------------------------------------

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /v1/health", s.handleHealth)
	m.HandleFunc("GET /v1/status", s.handleStatus)
	m.HandleFunc("GET /v1/tunnels/{name}", s.handleTunnel)
	m.HandleFunc("POST /v1/tunnels/{name}/initiate", s.handleAction("initiate"))
	m.HandleFunc("POST /v1/tunnels/{name}/terminate", s.handleAction("terminate"))
	m.HandleFunc("POST /v1/tunnels/{name}/rekey", s.handleAction("rekey"))
	m.HandleFunc("GET /v1/events", s.handleEvents)
	m.Handle("GET /metrics", MetricsHandler(s.b, s.log))
	s.routingRoutes()
	s.impairRoutes()

	// The same paths without a method answer 405 with a JSON body (the
	// mux's own 405 is plain text).
	for path, allow := range map[string]string{
		"/v1/health":                     "GET, HEAD",
		"/v1/status":                     "GET, HEAD",
		"/v1/tunnels/{name}":             "GET, HEAD",
		"/v1/tunnels/{name}/initiate":    "POST",
		"/v1/tunnels/{name}/terminate":   "POST",
		"/v1/tunnels/{name}/rekey":       "POST",
		"/v1/events":                     "GET",
		"/v1/routing":                    "GET, HEAD",
		"/v1/routing/advertise":          "POST",
		"/v1/routing/withdraw":           "POST",
		"/v1/routing/neighbors/{tunnel}": "POST",
		"/v1/impair":                     "GET, HEAD, POST, DELETE",
		"/metrics":                       "GET, HEAD",
	} {
		m.HandleFunc(path, methodNotAllowed(allow))
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
	}
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// ActionResponse is the body of a successful initiate/terminate/rekey.
type ActionResponse struct {
	Tunnel string `json:"tunnel"`
	Action string `json:"action"` // initiate, terminate, rekey
	Phase  int    `json:"phase,omitempty"`
	Result string `json:"result"` // always "accepted": progress shows in /v1/events and /v1/status
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorResponse{Error: "encoding response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: msg})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// normalize makes nil slices empty so the JSON shows [] instead of null.
func normalize(t status.Tunnel) status.Tunnel {
	if t.SAs == nil {
		t.SAs = []status.SA{}
	}
	return t
}

func (s *Server) status() status.Snapshot {
	st := s.b.Status()
	tunnels := make([]status.Tunnel, 0, len(st.Tunnels))
	for _, t := range st.Tunnels {
		tunnels = append(tunnels, normalize(t))
	}
	st.Tunnels = tunnels
	return st
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	offset, limit, paged, err := pageParams(r) // statuspage.go
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	case paged:
		writeJSON(w, http.StatusOK, s.statusPage(offset, limit))
	default:
		writeJSON(w, http.StatusOK, s.status())
	}
}

func (s *Server) findTunnel(name string) (status.Tunnel, bool) { return s.tunnelStatus(name) }

func unknownTunnel(name string) string { return fmt.Sprintf("unknown tunnel %q", name) }

func (s *Server) handleTunnel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	t, ok := s.findTunnel(name)
	if !ok {
		writeError(w, http.StatusNotFound, unknownTunnel(name))
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) handleAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		phase := 0
		if action == "rekey" {
			p := r.URL.Query().Get("phase")
			n, err := strconv.Atoi(p)
			if err != nil || (n != 1 && n != 2) {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("bad phase %q: want ?phase=1 (ISAKMP SA) or ?phase=2 (IPsec SAs)", p))
				return
			}
			phase = n
		}
		if _, ok := s.findTunnel(name); !ok {
			writeError(w, http.StatusNotFound, unknownTunnel(name))
			return
		}
		var err error
		switch action {
		case "initiate":
			err = s.b.Initiate(name)
		case "terminate":
			err = s.b.Terminate(name)
		case "rekey":
			err = s.b.Rekey(name, phase)
		}
		log := s.log.WithFields(logrus.Fields{"tunnel": name, "action": action})
		if phase != 0 {
			log = log.WithField("phase", phase)
		}
		switch {
		case errors.Is(err, ErrUnknownTunnel):
			log.WithError(err).Info("control request for unknown tunnel")
			writeError(w, http.StatusNotFound, err.Error())
		case err != nil:
			log.WithError(err).Warn("control request failed")
			writeError(w, http.StatusInternalServerError, err.Error())
		default:
			log.Info("control request accepted")
			writeJSON(w, http.StatusAccepted, ActionResponse{Tunnel: name, Action: action, Phase: phase, Result: "accepted"})
		}
	}
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	ch, cancel := s.b.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		s.log.WithError(err).Warn("event stream: flush not supported")
		return
	}
	s.log.Debug("event stream opened")
	defer s.log.Debug("event stream closed")
	enc := json.NewEncoder(w) // Encode appends the newline
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if err := enc.Encode(ev); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}
