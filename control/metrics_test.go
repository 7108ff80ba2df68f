package control

import (
	"bytes"
	"context"
	"crypto"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/sirupsen/logrus"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/vpnlab/vpnlab/bgp"
	"github.com/vpnlab/vpnlab/datapath"
	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/routes"
)

// routedBackend is a fake backend with a full status and BGP, so that every
// metric appears in a scrape.
type routedBackend struct {
	*fakeBackend
	st status.Snapshot
	bs bgp.Status
}

func (r *routedBackend) Status() status.Snapshot       { return r.st }
func (r *routedBackend) BGPStatus() (bgp.Status, bool) { return r.bs, true }

func fullStatus() *routedBackend {
	now := time.Now()
	st := status.Snapshot{
		Tunnels: []status.Tunnel{{
			Name: "tunnel1", Phase1State: "Established", Phase2State: "Rekeying", Status: "UP", DPDState: "alive",
			LastStatusChange: now, DataIn: 1000, DataOut: 2000, PacketsIn: 10, PacketsOut: 20,
			Drops: map[string]uint64{"replay": 3, "icv": 1},
			SAs:   []status.SA{{Protocol: "esp"}},
			Counters: status.Counters{DPDProbes: 4, DPDTimeouts: 1, Phase1Rekeys: 1, Phase2Rekeys: 2, NotifiesSent: 1,
				Exchanges: status.ExchangeCounters{Main: status.ExchangeCount{Sent: 3, Received: 3, Completed: 1}}},
		}, {Name: "tunnel2", Phase1State: "Down", Phase2State: "Down", Status: "DOWN", DPDState: "off"}},
		Counters: status.EngineCounters{Received: 9, Malformed: 1, HalfOpen: 2, HalfOpenRefused: 7, HalfOpenPeerRefused: 3,
			HalfOpenLimit: 1000, ZeroCookie: 4, CookieMismatch: 5, UnauthenticatedNotifies: 6},
		DataPathDrops: map[string]uint64{"no-sa": 5, "no-route": 0},
	}
	p := netip.MustParsePrefix("10.10.0.0/16")
	return &routedBackend{
		fakeBackend: newFake(), st: st,
		bs: bgp.Status{
			Neighbors: []bgp.NeighborStatus{
				{Tunnel: "tunnel1", State: bgp.Established, AcceptedRouteCount: 1, Advertised: []netip.Prefix{p}, Flaps: 1},
				{Tunnel: "tunnel2", State: bgp.Active},
			},
			Routes:       []routes.Route{{Prefix: p, Tunnels: []string{"tunnel1", "tunnel2"}, Active: 1}},
			ChangeCounts: map[routes.ChangeKind]uint64{routes.Learned: 2, routes.Installed: 1},
		},
	}
}

// TestMetricsLint: every metric the collector can produce passes
// client_golang's linter and promtool's.
func TestMetricsLint(t *testing.T) {
	b := fullStatus()
	problems, err := testutil.CollectAndLint(NewCollector(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(NewCollector(b)); n < 80 {
		t.Fatalf("%d series: the full status should give every metric", n)
	}

	body := scrape(t, NewServer(b, nil))
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus): only client_golang's lint ran")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestMetricsValues checks a scrape against the status it came from.
func TestMetricsValues(t *testing.T) {
	fams := parseMetrics(t, scrape(t, NewServer(fullStatus(), nil)))
	for _, c := range []struct {
		name   string
		labels string
		want   float64
	}{
		{"vpnlab_tunnel_up", "tunnel=tunnel1", 1},
		{"vpnlab_tunnel_up", "tunnel=tunnel2", 0},
		{"vpnlab_tunnel_phase1_state", "state=Established,tunnel=tunnel1", 1},
		{"vpnlab_tunnel_phase1_state", "state=Down,tunnel=tunnel1", 0},
		{"vpnlab_tunnel_phase2_state", "state=Rekeying,tunnel=tunnel1", 1},
		{"vpnlab_tunnel_dpd_state", "state=alive,tunnel=tunnel1", 1},
		{"vpnlab_ipsec_bytes_total", "direction=in,tunnel=tunnel1", 1000},
		{"vpnlab_ipsec_packets_total", "direction=out,tunnel=tunnel1", 20},
		{"vpnlab_ipsec_drops_total", "reason=replay,tunnel=tunnel1", 3},
		{"vpnlab_datapath_drops_total", "reason=no-sa", 5},
		{"vpnlab_dpd_probes_total", "tunnel=tunnel1", 4},
		{"vpnlab_dpd_timeouts_total", "tunnel=tunnel1", 1},
		{"vpnlab_ike_rekeys_total", "phase=2,tunnel=tunnel1", 2},
		{"vpnlab_ike_messages_total", "direction=sent,exchange=main,tunnel=tunnel1", 3},
		{"vpnlab_ike_exchanges_total", "exchange=main,result=completed,tunnel=tunnel1", 1},
		{"vpnlab_ike_datagrams_dropped_total", "reason=malformed", 1},
		{"vpnlab_ike_half_open_sas", "", 2},
		{"vpnlab_ike_half_open_sas_limit", "", 1000},
		{"vpnlab_ike_datagrams_dropped_total", "reason=half-open-limit", 4},
		{"vpnlab_ike_datagrams_dropped_total", "reason=half-open-peer-limit", 3},
		{"vpnlab_ike_datagrams_dropped_total", "reason=zero-cookie", 4},
		{"vpnlab_ike_datagrams_dropped_total", "reason=cookie-mismatch", 5},
		{"vpnlab_ike_unauthenticated_notifies_total", "", 6},
		{"vpnlab_bgp_session_state", "state=Established,tunnel=tunnel1", 1},
		{"vpnlab_bgp_session_state", "state=Active,tunnel=tunnel2", 1},
		{"vpnlab_bgp_accepted_routes", "tunnel=tunnel1", 1},
		{"vpnlab_bgp_advertised_routes", "tunnel=tunnel1", 1},
		{"vpnlab_routes_active", "tunnel=tunnel1", 1},
		{"vpnlab_routes_active", "tunnel=tunnel2", 0},
		{"vpnlab_route_changes_total", "kind=learned", 2},
	} {
		if got, ok := value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s{%s} = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// The metrics endpoint is GET only, like the rest of the API.
	rec := httptest.NewRecorder()
	NewServer(fullStatus(), nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/metrics", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /metrics: %d", rec.Code)
	}
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v\n%s", resp.StatusCode, err, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}
	return string(b)
}

func parseMetrics(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, body)
	}
	return fams
}

// value returns the sample of family name whose labels, sorted and joined
// as "k=v,k=v", are labels.
func value(fams map[string]*dto.MetricFamily, name, labels string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		var ls []string
		for _, l := range m.Label {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		if strings.Join(ls, ",") != labels {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// pairGW is one gateway of TestMetricsRealPair: an engine with a real data
// path on a memory wire and a channel TUN.
type pairGW struct {
	e   *ike.Engine
	dp  *datapath.DataPath
	tun *tuntest.ChannelTUN
}

func startPairGW(t *testing.T, w *datapath.MemoryWire, tc policy.Tunnel, ports policy.Ports) *pairGW {
	t.Helper()
	lg := logrus.New()
	lg.SetOutput(discard{})
	c := tuntest.NewChannelTUN()
	dp, err := datapath.New(datapath.Config{Device: c.TUN(), Wire: w, Log: lg})
	if err != nil {
		t.Fatal(err)
	}
	dpDone := make(chan error, 1)
	go func() { dpDone <- dp.RunInside() }()
	e, err := ike.NewEngine(policy.Config{Ports: ports, Tunnels: []policy.Tunnel{tc}}, ike.WithLogger(lg), ike.WithDataPath(dp))
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
	t.Cleanup(func() {
		cancel()
		<-done
		dp.Close()
		<-dpDone
	})
	return &pairGW{e: e, dp: dp, tun: c}
}

// TestMetricsRealPair scrapes two real engines with real data paths: the
// states move when the tunnel comes up, the byte and packet counters move
// with traffic, the IKE message counters match the exchanges.
func TestMetricsRealPair(t *testing.T) {
	x, y := byte(rand.IntN(250)+1), byte(rand.IntN(250)+1)
	a, b := netip.AddrFrom4([4]byte{127, x, y, 1}), netip.AddrFrom4([4]byte{127, x, y, 2})
	port := uint16(20000 + rand.IntN(20000))
	ports := policy.Ports{IKE: port, NATT: port + 1}
	tunnel := func(local, remote netip.Addr) policy.Tunnel {
		return policy.Tunnel{
			Name: "tunnel1", LocalAddr: local, RemoteAddr: remote, RemotePorts: ports, PSK: policy.Secret("test.psk_for_vpnlab_1"),
			Phase1: policy.Phase1{Proposals: []policy.Phase1Proposal{{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 14}}, Lifetime: time.Hour},
			Phase2: policy.Phase2{Proposals: []policy.Phase2Proposal{{Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPAESGCM16, EncKeyBits: 128, PFSGroup: 14}}, Lifetime: time.Hour},
		}
	}
	wa, wb := datapath.NewMemoryWires()
	vgw := startPairGW(t, wb, tunnel(b, a), ports)
	time.Sleep(20 * time.Millisecond)
	ct := tunnel(a, b)
	cgw := startPairGW(t, wa, ct, ports)
	cgwSrv, vgwSrv := NewServer(cgw.e, nil), NewServer(vgw.e, nil)

	before := parseMetrics(t, scrape(t, cgwSrv))
	if v, ok := value(before, "vpnlab_tunnel_phase1_state", "state=Down,tunnel=tunnel1"); !ok || v != 1 {
		t.Fatalf("before initiating: phase 1 Down = %v (%v)", v, ok)
	}
	if err := cgw.e.Initiate("tunnel1"); err != nil {
		t.Fatal(err)
	}
	var fams map[string]*dto.MetricFamily
	waitMetric := func(srv http.Handler, name, labels string, ok func(float64) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			fams = parseMetrics(t, scrape(t, srv))
			if v, present := value(fams, name, labels); present && ok(v) {
				return
			}
			if time.Now().After(deadline) {
				v, present := value(fams, name, labels)
				t.Fatalf("%s{%s} = %v (present %v) after 10 s", name, labels, v, present)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	one := func(v float64) bool { return v == 1 }
	waitMetric(cgwSrv, "vpnlab_tunnel_phase2_state", "state=Established,tunnel=tunnel1", one)
	waitMetric(vgwSrv, "vpnlab_tunnel_up", "tunnel=tunnel1", one)
	for _, c := range []struct {
		name, labels string
		want         float64
	}{
		{"vpnlab_tunnel_up", "tunnel=tunnel1", 1},
		{"vpnlab_tunnel_phase1_state", "state=Established,tunnel=tunnel1", 1},
		{"vpnlab_tunnel_ipsec_sa_pairs", "tunnel=tunnel1", 1},
		{"vpnlab_ike_messages_total", "direction=received,exchange=main,tunnel=tunnel1", 3},
		{"vpnlab_ike_exchanges_total", "exchange=quick,result=completed,tunnel=tunnel1", 1},
		{"vpnlab_ipsec_bytes_total", "direction=out,tunnel=tunnel1", 0},
	} {
		if v, ok := value(fams, c.name, c.labels); !ok || v != c.want {
			t.Errorf("vgw after up: %s{%s} = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}

	// 20 packets of 100 bytes from the cgw's inside to the vgw's.
	const n, size = 20, 100
	src, dst := netip.MustParseAddr("10.10.1.10"), netip.MustParseAddr("172.31.1.10")
	for i := 0; i < n; i++ {
		cgw.tun.Outbound <- ipv4UDP(src, dst, size-28)
		select {
		case <-vgw.tun.Inbound:
		case <-time.After(2 * time.Second):
			t.Fatalf("packet %d did not arrive", i)
		}
	}
	fams = parseMetrics(t, scrape(t, cgwSrv))
	if v, _ := value(fams, "vpnlab_ipsec_packets_total", "direction=out,tunnel=tunnel1"); v != n {
		t.Errorf("cgw packets out %v, want %d", v, n)
	}
	if v, _ := value(fams, "vpnlab_ipsec_bytes_total", "direction=out,tunnel=tunnel1"); v != n*size {
		t.Errorf("cgw bytes out %v, want %d", v, n*size)
	}
	fams = parseMetrics(t, scrape(t, vgwSrv))
	if v, _ := value(fams, "vpnlab_ipsec_packets_total", "direction=in,tunnel=tunnel1"); v != n {
		t.Errorf("vgw packets in %v, want %d", v, n)
	}
	if v, _ := value(fams, "vpnlab_ipsec_bytes_total", "direction=in,tunnel=tunnel1"); v != n*size {
		t.Errorf("vgw bytes in %v, want %d", v, n*size)
	}

	// A rekey keeps the totals (the retired pair's counters stay counted).
	if err := cgw.e.Rekey("tunnel1", 2); err != nil {
		t.Fatal(err)
	}
	waitMetric(cgwSrv, "vpnlab_ike_rekeys_total", "phase=2,tunnel=tunnel1", one)
	// The old pair goes once the new one carried traffic (make-before-break),
	// and the cgw, the rekey's initiator, sends on the new pair once the
	// vgw did or its grace period passed (ike/qmstaging.go): a packet every
	// 100 ms until the cgw holds one pair.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cgw.tun.Outbound <- ipv4UDP(src, dst, size-28)
		select {
		case <-vgw.tun.Inbound:
		case <-time.After(2 * time.Second):
			t.Fatal("a packet after the rekey did not arrive")
		}
		fams = parseMetrics(t, scrape(t, cgwSrv))
		if v, _ := value(fams, "vpnlab_tunnel_ipsec_sa_pairs", "tunnel=tunnel1"); v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cgw still holds two SA pairs 10 s after the rekey, under traffic")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, _ := value(fams, "vpnlab_ipsec_bytes_total", "direction=out,tunnel=tunnel1"); v < n*size {
		t.Errorf("cgw bytes out after the rekey %v, want at least %d", v, n*size)
	}
}

// ipv4UDP builds an IPv4/UDP packet with n payload bytes.
func ipv4UDP(src, dst netip.Addr, n int) []byte {
	p := make([]byte, 28+n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8], p[9] = 64, 17
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(p[20:], 5000)
	binary.BigEndian.PutUint16(p[22:], 6000)
	binary.BigEndian.PutUint16(p[24:], uint16(8+n))
	return p
}

// BenchmarkMetricsScrape: one scrape of 2,000 tunnels (docs/metrics.md,
// "Cost").
func BenchmarkMetricsScrape(b *testing.B) {
	fb := fullStatus()
	one := fb.st.Tunnels[0]
	fb.st.Tunnels = nil
	for i := range 2000 {
		t := one
		t.Name = "tunnel" + strconv.Itoa(i+1)
		fb.st.Tunnels = append(fb.st.Tunnels, t)
	}
	h := MetricsHandler(fb, nil)
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
	b.ReportMetric(float64(testutil.CollectAndCount(NewCollector(fb))), "series")
}
