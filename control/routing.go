package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"

	"github.com/sirupsen/logrus"
)

// RoutingBackend is implemented by gateways that route with BGP or static
// routes. The server offers /v1/routing only when the Backend implements it.
//
//	GET  /v1/routing                                  routing status (JSON of RoutingStatus's value)
//	POST /v1/routing/advertise?prefix=CIDR            start advertising a prefix
//	POST /v1/routing/withdraw?prefix=CIDR             stop advertising it
//	POST /v1/routing/neighbors/{tunnel}?med=N&prepend=N  MED and AS_PATH prepend towards one tunnel's neighbor
type RoutingBackend interface {
	RoutingStatus() any
	Advertise(prefix netip.Prefix) error
	Withdraw(prefix netip.Prefix) error
	SetNeighborPolicy(tunnel string, med uint32, prepend int) error
}

// ErrNoRouting is answered (404) when the gateway has no routing backend.
var ErrNoRouting = errors.New("this gateway has no dynamic routing (no bgp section and no static routes)")

func (s *Server) routingRoutes() {
	m := s.mux
	m.HandleFunc("GET /v1/routing", s.withRouting(func(rb RoutingBackend, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, rb.RoutingStatus())
	}))
	prefixAction := func(name string, fn func(RoutingBackend, netip.Prefix) error) http.HandlerFunc {
		return s.withRouting(func(rb RoutingBackend, w http.ResponseWriter, r *http.Request) {
			p, err := netip.ParsePrefix(r.URL.Query().Get("prefix"))
			if err != nil || p != p.Masked() {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("bad prefix %q: want ?prefix=CIDR without host bits, e.g. 10.20.0.0/16", r.URL.Query().Get("prefix")))
				return
			}
			s.routingResult(w, fn(rb, p), logrus.Fields{"action": name, "prefix": p.String()})
		})
	}
	m.HandleFunc("POST /v1/routing/advertise", prefixAction("advertise", RoutingBackend.Advertise))
	m.HandleFunc("POST /v1/routing/withdraw", prefixAction("withdraw", RoutingBackend.Withdraw))
	m.HandleFunc("POST /v1/routing/neighbors/{tunnel}", s.withRouting(func(rb RoutingBackend, w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		med, err1 := strconv.ParseUint(q.Get("med"), 10, 32)
		prepend, err2 := strconv.Atoi(q.Get("prepend"))
		if err1 != nil || err2 != nil || prepend < 0 || prepend > 10 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad med %q or prepend %q: want ?med=0..4294967295&prepend=0..10", q.Get("med"), q.Get("prepend")))
			return
		}
		tunnel := r.PathValue("tunnel")
		err := rb.SetNeighborPolicy(tunnel, uint32(med), prepend)
		if errors.Is(err, ErrUnknownTunnel) {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		s.routingResult(w, err, logrus.Fields{"action": "neighbor-policy", "tunnel": tunnel, "med": med, "prepend": prepend})
	}))
}

func (s *Server) withRouting(h func(RoutingBackend, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rb, ok := s.b.(RoutingBackend)
		if !ok {
			writeError(w, http.StatusNotFound, ErrNoRouting.Error())
			return
		}
		h(rb, w, r)
	}
}

func (s *Server) routingResult(w http.ResponseWriter, err error, f logrus.Fields) {
	log := s.log.WithFields(f)
	if err != nil {
		log.WithError(err).Warn("routing request failed")
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	log.Info("routing request done")
	writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
}

// Raw GETs or POSTs path and returns the body (for tools and tests that
// read parts of a response, such as /v1/routing, without its Go type).
func (c *Client) Raw(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("control API: %w", err)
	}
	defer resp.Body.Close()
	if err := checkResponse(resp); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// Routing returns the routing status decoded into out.
func (c *Client) Routing(ctx context.Context, out any) error {
	b, err := c.Raw(ctx, http.MethodGet, "/v1/routing")
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// Advertise starts advertising prefix over BGP.
func (c *Client) Advertise(ctx context.Context, prefix netip.Prefix) error {
	return c.do(ctx, http.MethodPost, "/v1/routing/advertise?prefix="+url.QueryEscape(prefix.String()), nil)
}

// Withdraw stops advertising prefix.
func (c *Client) Withdraw(ctx context.Context, prefix netip.Prefix) error {
	return c.do(ctx, http.MethodPost, "/v1/routing/withdraw?prefix="+url.QueryEscape(prefix.String()), nil)
}

// SetNeighborPolicy sets the MED and AS_PATH prepend we advertise on one
// tunnel's BGP session.
func (c *Client) SetNeighborPolicy(ctx context.Context, tunnel string, med uint32, prepend int) error {
	return c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/routing/neighbors/%s?med=%d&prepend=%d", url.PathEscape(tunnel), med, prepend), nil)
}
