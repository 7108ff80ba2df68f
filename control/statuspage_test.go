package control

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// getPage serves one GET on srv and decodes a page (or fails on a code
// other than want).
func getPage(t *testing.T, srv http.Handler, path string, want int) ike.StatusPage {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != want {
		t.Fatalf("GET %s: %d %s, want %d", path, rec.Code, rec.Body.String(), want)
	}
	var p ike.StatusPage
	if want == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return p
}

func pageNames(p ike.StatusPage) []string {
	var out []string
	for _, t := range p.Tunnels {
		out = append(out, t.Name)
	}
	return out
}

// TestStatusPagesOfAFullStatus: a backend without pages has its full
// status cut into pages; bad parameters are refused.
func TestStatusPagesOfAFullStatus(t *testing.T) {
	fb := newFake()
	for i := 3; i <= 5; i++ {
		fb.tunnels = append(fb.tunnels, ike.TunnelStatus{Name: fmt.Sprintf("tunnel%d", i)})
	}
	srv := NewServer(fb, nil)
	p := getPage(t, srv, "/v1/status?offset=1&limit=2", http.StatusOK)
	if got := fmt.Sprint(pageNames(p)); got != "[tunnel2 tunnel3]" || p.Total != 5 || p.Offset != 1 || p.NextOffset != 3 || p.Counters.Received != 42 {
		t.Fatalf("page 2: %s total %d offset %d next %d counters %+v", got, p.Total, p.Offset, p.NextOffset, p.Counters)
	}
	p = getPage(t, srv, "/v1/status?offset=3&limit=2", http.StatusOK)
	if got := fmt.Sprint(pageNames(p)); got != "[tunnel4 tunnel5]" || p.NextOffset != 0 {
		t.Fatalf("last page: %s next %d", got, p.NextOffset)
	}
	if p := getPage(t, srv, "/v1/status?offset=9", http.StatusOK); len(p.Tunnels) != 0 || p.Total != 5 {
		t.Fatalf("past the end: %+v", p)
	}
	if p := getPage(t, srv, "/v1/status", http.StatusOK); len(p.Tunnels) != 5 || p.Total != 0 {
		t.Fatalf("unpaged: %d tunnels, total %d (want every tunnel, no page fields)", len(p.Tunnels), p.Total)
	}
	for _, bad := range []string{"offset=-1", "offset=x", "limit=0", "limit=10001", "limit=y"} {
		getPage(t, srv, "/v1/status?"+bad, http.StatusBadRequest)
	}
}

// countingEngine is an engine backend that counts full Status() calls.
type countingEngine struct {
	*ike.Engine
	full atomic.Int64
}

func (c *countingEngine) Status() ike.Status { c.full.Add(1); return c.Engine.Status() }

// TestStatusPagesOfAnEngine: an engine builds only the page asked for and
// finds one tunnel by name: neither a page nor a tunnel's status, nor an
// action on a tunnel, builds the status of every tunnel.
func TestStatusPagesOfAnEngine(t *testing.T) {
	const n = 250
	local := netip.AddrFrom4([4]byte{127, 253, byte(rand.IntN(250)), 1})
	p := uint16(40000 + 2*rand.IntN(5000))
	cfg := ike.Config{Ports: ike.Ports{IKE: p, NATT: p + 1}}
	for i := 0; i < n; i++ {
		cfg.Tunnels = append(cfg.Tunnels, ike.TunnelConfig{
			Name: fmt.Sprintf("vpn-%03d-tunnel1", i), LocalAddr: local, RemoteAddr: netip.AddrFrom4([4]byte{127, 254, byte(i / 250), byte(i%250 + 1)}),
			PSK:    []byte("status-page-test"),
			Phase1: ike.Phase1Policy{Proposals: []ike.Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 19}}},
			Phase2: ike.Phase2Policy{Proposals: []ike.Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKeyBits: 128, PFSGroup: 19}}},
		})
	}
	lg := logrus.New()
	lg.SetLevel(logrus.WarnLevel)
	e, err := ike.NewEngine(cfg, ike.WithLogger(lg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	be := &countingEngine{Engine: e}
	srv := NewServer(be, nil)

	var names []string
	offset := 0
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		pg := getPage(t, srv, fmt.Sprintf("/v1/status?offset=%d&limit=64", offset), http.StatusOK)
		if pg.Total != n || pg.Offset != offset || len(pg.Tunnels) > 64 {
			t.Fatalf("page at %d: total %d offset %d, %d tunnels", offset, pg.Total, pg.Offset, len(pg.Tunnels))
		}
		for _, tu := range pg.Tunnels {
			if tu.SAs == nil || tu.Phase1State != "Down" {
				t.Fatalf("tunnel %s: %+v", tu.Name, tu)
			}
		}
		names = append(names, pageNames(pg)...)
		if pg.NextOffset == 0 {
			break
		}
		offset = pg.NextOffset
	}
	if len(names) != n || names[0] != "vpn-000-tunnel1" || names[n-1] != fmt.Sprintf("vpn-%03d-tunnel1", n-1) {
		t.Fatalf("the pages hold %d tunnels from %v to %v, want all %d in configuration order", len(names), names[0], names[len(names)-1], n)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/tunnels/vpn-123-tunnel1", nil))
	var one ike.TunnelStatus
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &one) != nil || one.Name != "vpn-123-tunnel1" {
		t.Fatalf("one tunnel: %d %s", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/tunnels/nope", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("unknown tunnel: %d %s", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/tunnels/vpn-007-tunnel1/terminate", nil))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("terminate: %d %s", rec.Code, rec.Body.String())
	}
	if c := be.full.Load(); c != 0 {
		t.Fatalf("%d full Status() calls for pages and single tunnels, want 0", c)
	}
}
