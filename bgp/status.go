package bgp

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/vpnlab/vpnlab/routes"
)

// SessionState is a BGP session's RFC 4271 state.
type SessionState string

const (
	Idle        SessionState = "Idle"
	Connect     SessionState = "Connect"
	Active      SessionState = "Active"
	OpenSent    SessionState = "OpenSent"
	OpenConfirm SessionState = "OpenConfirm"
	Established SessionState = "Established"
)

func sessionState(s api.PeerState_SessionState) SessionState {
	switch s {
	case api.PeerState_CONNECT:
		return Connect
	case api.PeerState_ACTIVE:
		return Active
	case api.PeerState_OPENSENT:
		return OpenSent
	case api.PeerState_OPENCONFIRM:
		return OpenConfirm
	case api.PeerState_ESTABLISHED:
		return Established
	}
	return Idle
}

// NeighborStatus is one tunnel's BGP session, as the status API shows it.
type NeighborStatus struct {
	Tunnel  string       `json:"tunnel"`
	Local   netip.Addr   `json:"local"`
	Peer    netip.Addr   `json:"peer"`
	PeerASN uint32       `json:"peer_asn"`
	State   SessionState `json:"state"`
	// AdminState is "up", "down" (DisableNeighbor) or "limit" (reset for
	// going over the route limit, until it may come back).
	AdminState string    `json:"admin_state"`
	LastChange time.Time `json:"last_state_change,omitzero"`
	UpSince    time.Time `json:"up_since,omitzero"`
	Uptime     string    `json:"uptime,omitempty"`
	Flaps      int       `json:"flaps"`
	// AcceptedRouteCount is the number of prefixes accepted from the
	// neighbor (AWS VgwTelemetry acceptedRouteCount).
	AcceptedRouteCount int            `json:"accepted_route_count"`
	LimitExceeded      int            `json:"limit_exceeded"`
	Received           []netip.Prefix `json:"received"`
	Advertised         []netip.Prefix `json:"advertised"`
	MED                uint32         `json:"med,omitempty"`
	Prepend            int            `json:"prepend,omitempty"`
}

// Status is the speaker's state: sessions, the route decision and the
// recent route changes.
type Status struct {
	ASN        uint32           `json:"asn"`
	RouterID   netip.Addr       `json:"router_id,omitzero"`
	ECMP       bool             `json:"ecmp"`
	RouteLimit int              `json:"route_limit"` // 0: none
	Originated []netip.Prefix   `json:"originated"`
	Neighbors  []NeighborStatus `json:"neighbors"`
	Routes     []routes.Route   `json:"routes"`
	Changes    []routes.Change  `json:"changes"`
	// ChangeCounts counts every route change since the speaker started,
	// by kind (Changes keeps only the last 256).
	ChangeCounts map[routes.ChangeKind]uint64 `json:"change_counts"`
}

// Status reports the sessions and the route table.
func (s *Speaker) Status() Status {
	now := time.Now()
	st := Status{ASN: s.cfg.ASN, RouterID: s.cfg.RouterID, ECMP: s.cfg.ECMP, RouteLimit: s.cfg.RouteLimit}
	s.mu.Lock()
	for p := range s.advertised {
		st.Originated = append(st.Originated, p)
	}
	st.Routes = slices.Clone(s.routes)
	st.Changes = slices.Clone(s.recent)
	st.ChangeCounts = maps.Clone(s.changeN)
	s.mu.Unlock()
	slices.SortFunc(st.Originated, comparePrefix)
	running := s.running()

	for _, nb := range s.neighbors {
		nb.mu.Lock()
		ns := NeighborStatus{
			Tunnel: nb.n.Tunnel, Local: nb.n.Local, Peer: nb.n.Peer, PeerASN: nb.n.PeerASN,
			State: nb.state, LastChange: nb.lastChange, UpSince: nb.upSince, Flaps: nb.flaps,
			LimitExceeded: nb.limitHits, MED: nb.n.MED, Prepend: nb.n.Prepend,
			AdminState: strings.ToLower(nb.admin.String()),
		}
		nb.mu.Unlock()
		if ns.AdminState == "pfx_ct" {
			ns.AdminState = "limit"
		}
		if !ns.UpSince.IsZero() {
			ns.Uptime = now.Sub(ns.UpSince).Truncate(time.Second).String()
		}
		for _, p := range s.table.TunnelPaths(ns.Tunnel, routes.BGP) {
			ns.Received = append(ns.Received, p.Prefix)
		}
		ns.AcceptedRouteCount = len(ns.Received)
		if running && ns.State == Established {
			ns.Advertised = s.advertisedTo(ns.Peer)
		}
		st.Neighbors = append(st.Neighbors, ns)
	}
	return st
}

// advertisedTo lists the prefixes in GoBGP's adj-RIB-out for a neighbor.
func (s *Speaker) advertisedTo(peer netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	err := s.server.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_ADJ_OUT, Name: peer.String(), Family: ipv4Unicast,
	}, func(d *api.Destination) {
		if p, err := netip.ParsePrefix(d.Prefix); err == nil {
			out = append(out, p)
		}
	})
	if err != nil {
		return nil
	}
	slices.SortFunc(out, comparePrefix)
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
