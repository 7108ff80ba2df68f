package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/control"
)

// startMetrics serves the Prometheus metrics alone (GET /metrics, nothing
// else) on addr, for --metrics. addr is "host:port" (any host: the
// metrics are read-only, unlike the control API) or "unix:/path". The
// listener is opened before it returns, so a bind failure is a startup
// error; wait blocks until the server has stopped after ctx ended.
func startMetrics(ctx context.Context, addr string, be control.Backend, log logrus.FieldLogger) (wait func() error, err error) {
	var ln net.Listener
	if strings.HasPrefix(addr, "unix:") {
		ln, err = control.Listen(addr)
	} else {
		if _, _, serr := net.SplitHostPort(addr); serr != nil {
			return nil, fmt.Errorf("want host:port or unix:/path: %w", serr)
		}
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", control.MetricsHandler(be, log))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "only GET /metrics is served here", http.StatusNotFound)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.WithField("metrics", ln.Addr().String()).Info("serving Prometheus metrics on /metrics")
	done := make(chan error, 1)
	go func() {
		select {
		case err := <-errc:
			done <- err
			return
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
		done <- err
	}()
	return func() error { return <-done }, nil
}
