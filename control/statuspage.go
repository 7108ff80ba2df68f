package control

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/vpnlab/vpnlab/ike/status"
)

// Paged status (docs/control-api.md): GET /v1/status?offset=N&limit=M
// answers tunnels [N, N+M) in configuration order with total, offset and
// next_offset; without either parameter it answers every tunnel as
// before. A backend that can build part of its status (StatusPager:
// *ike.Engine, the gateway's backend) builds only the page, and finds one
// tunnel by name without building the others; any other Backend's full
// status is cut.

// StatusPager is a Backend that builds its status in parts.
type StatusPager interface {
	StatusPage(offset, limit int) status.Page
	TunnelStatus(name string) (status.Tunnel, error)
}

// maxPageLimit bounds one page, so that a request cannot ask the engine
// loop for everything in one piece while claiming to page.
const maxPageLimit = 10000

// pageParams reads offset and limit; paged is false when neither is given.
func pageParams(r *http.Request) (offset, limit int, paged bool, err error) {
	q := r.URL.Query()
	if !q.Has("offset") && !q.Has("limit") {
		return 0, 0, false, nil
	}
	limit = 100
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, true, fmt.Errorf("bad offset %q: want a tunnel index >= 0", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxPageLimit {
			return 0, 0, true, fmt.Errorf("bad limit %q: want 1-%d tunnels per page", v, maxPageLimit)
		}
	}
	return offset, limit, true, nil
}

// statusPage builds one page, from the backend's pages or its full status.
func (s *Server) statusPage(offset, limit int) status.Page {
	var p status.Page
	if pg, ok := s.b.(StatusPager); ok {
		p = pg.StatusPage(offset, limit)
	} else {
		st := s.b.Status()
		p = status.Page{Snapshot: st, Total: len(st.Tunnels), Offset: offset}
		lo, hi := min(offset, p.Total), min(offset+limit, p.Total)
		if hi < p.Total {
			p.NextOffset = hi
		}
		p.Tunnels = st.Tunnels[lo:hi]
	}
	for i := range p.Tunnels {
		p.Tunnels[i] = normalize(p.Tunnels[i])
	}
	if p.Tunnels == nil {
		p.Tunnels = []status.Tunnel{}
	}
	return p
}

// tunnelStatus finds one tunnel, from the backend's lookup or its full
// status.
func (s *Server) tunnelStatus(name string) (status.Tunnel, bool) {
	pg, ok := s.b.(StatusPager)
	if !ok {
		for _, t := range s.b.Status().Tunnels {
			if t.Name == name {
				return normalize(t), true
			}
		}
		return status.Tunnel{}, false
	}
	t, err := pg.TunnelStatus(name)
	if err != nil { // ErrUnknownTunnel, or the engine stopped

		return status.Tunnel{}, false
	}
	return normalize(t), true
}
