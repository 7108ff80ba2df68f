package control

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/impair"
)

// ImpairBackend is implemented by backends whose IKE engine can be told to
// misbehave on purpose (*ike.Engine does; see impair.Parse for the
// specs). The server offers /v1/impair only when the Backend implements it.
//
//	GET    /v1/impair              the active impairments
//	POST   /v1/impair?spec=SPEC    add one ("none" or "TUNNEL/none" clears)
//	DELETE /v1/impair              clear them all
type ImpairBackend interface {
	Impair(impair.Spec) error
	Impairments() []string
}

// ErrNoImpair is answered (404) when the backend cannot impair.
var ErrNoImpair = errors.New("this gateway cannot be impaired (its backend has no IKE impairments)")

// ImpairResponse is the body of every successful /v1/impair answer: the
// impairments in force afterwards, as canonical specs ([] when none).
type ImpairResponse struct {
	Impairments []string `json:"impairments"`
}

func (s *Server) impairRoutes() {
	m := s.mux
	m.HandleFunc("GET /v1/impair", s.withImpair(func(ib ImpairBackend, w http.ResponseWriter, r *http.Request) {
		writeImpairments(w, ib)
	}))
	m.HandleFunc("POST /v1/impair", s.withImpair(func(ib ImpairBackend, w http.ResponseWriter, r *http.Request) {
		spec := r.URL.Query().Get("spec")
		imp, err := impair.Parse(spec)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.applyImpairment(ib, w, imp)
	}))
	m.HandleFunc("DELETE /v1/impair", s.withImpair(func(ib ImpairBackend, w http.ResponseWriter, r *http.Request) {
		s.applyImpairment(ib, w, impair.Spec{Verb: impair.None})
	}))
}

func (s *Server) applyImpairment(ib ImpairBackend, w http.ResponseWriter, imp impair.Spec) {
	log := s.log.WithFields(logrus.Fields{"action": "impair", "impairment": imp.String()})
	switch err := ib.Impair(imp); {
	case errors.Is(err, ErrUnknownTunnel):
		log.WithError(err).Info("impairment for an unknown tunnel")
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, impair.ErrNotApplicable):
		log.WithError(err).Info("impairment refused: no tunnel can use it")
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		log.WithError(err).Warn("impairment refused")
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		log.Warn("control request: impairment applied")
		writeImpairments(w, ib)
	}
}

func writeImpairments(w http.ResponseWriter, ib ImpairBackend) {
	list := ib.Impairments()
	if list == nil {
		list = []string{}
	}
	writeJSON(w, http.StatusOK, ImpairResponse{Impairments: list})
}

func (s *Server) withImpair(h func(ImpairBackend, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ib, ok := s.b.(ImpairBackend)
		if !ok {
			writeError(w, http.StatusNotFound, ErrNoImpair.Error())
			return
		}
		h(ib, w, r)
	}
}

// Impair adds an impairment to the gateway's IKE engine (spec as
// impair.Parse takes it; "none" clears). A bad spec is a 400
// *APIError with the parser's message; an unknown tunnel matches
// ErrUnknownTunnel.
func (c *Client) Impair(ctx context.Context, spec string) error {
	return c.do(ctx, http.MethodPost, "/v1/impair?spec="+url.QueryEscape(spec), nil)
}

// Impairments returns the active impairments as canonical specs.
func (c *Client) Impairments(ctx context.Context) ([]string, error) {
	var r ImpairResponse
	err := c.do(ctx, http.MethodGet, "/v1/impair", &r)
	return r.Impairments, err
}

// ClearImpairments removes every impairment.
func (c *Client) ClearImpairments(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/v1/impair", nil)
}
