package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// node is any XML element, for walking the SVG.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []node     `xml:",any"`
}

func (n *node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n *node) num(t *testing.T, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(n.attr(name), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.XMLName.Local, name, n.attr(name), err)
	}
	return v
}

// title is the text of the element's <title> child.
func (n *node) title() string {
	for _, c := range n.Nodes {
		if c.XMLName.Local == "title" {
			return c.Text
		}
	}
	return ""
}

func (n *node) walk(f func(*node)) {
	f(n)
	for i := range n.Nodes {
		n.Nodes[i].walk(f)
	}
}

// parseSVG checks that the document is well-formed XML and returns its root.
func parseSVG(t *testing.T, doc string) *node {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(doc))
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("not well-formed: %v\n%s", err, doc)
		}
	}
	var root node
	if err := xml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	if root.XMLName.Local != "svg" {
		t.Fatalf("root <%s>", root.XMLName.Local)
	}
	return &root
}

func svgOf(t *testing.T, r *Run) (*node, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSVG(&buf, r); err != nil {
		t.Fatal(err)
	}
	return parseSVG(t, buf.String()), buf.String()
}

func texts(root *node) []string {
	var out []string
	root.walk(func(n *node) {
		if n.XMLName.Local == "text" {
			out = append(out, n.Text)
		}
	})
	return out
}

// rectsTitled are the <rect>s whose tooltip starts with prefix.
func rectsTitled(root *node, prefix string) []*node {
	var out []*node
	root.walk(func(n *node) {
		if n.XMLName.Local == "rect" && strings.HasPrefix(n.title(), prefix) {
			out = append(out, n)
		}
	})
	return out
}

// xAt is where the picture of failoverRun (0..20 s) puts a time.
func xAt(sec float64) float64 { return plotLeft + (plotRight-plotLeft)*sec/20 }

func near(a, b float64) bool { return math.Abs(a-b) < 0.2 }

func TestSVGFailover(t *testing.T) {
	root, raw := svgOf(t, failoverRun())
	if root.XMLName.Space != "http://www.w3.org/2000/svg" || !strings.HasPrefix(raw, "<?xml ") {
		t.Errorf("not a standalone SVG: %v", root.XMLName)
	}
	all := texts(root)
	has := func(s string) bool { return slices.Contains(all, s) }
	for _, want := range []string{"FAIL", "failover-dpd", "steps", "runner", "tunnel state",
		"cgw tunnel1", "cgw tunnel2", "vgw tunnel1", "vgw tunnel2",
		"Routes: the decided route (via) and the tunnel carrying the packets (carried by)",
		"cgw 172.31.0.0/16 via", "vgw 10.10.0.0/16 via", "  ↳ carried by",
		"ping", "icmp host-a → host-b", "lost 40 of 140 (28.6%)", "outage 4.0 s",
		"impair tunnel1: blackhole", "restore tunnel1", "start cgw", "start vgw",
		"0 s", "10 s", "20 s", "seconds from start",
		"up", "DPD: peer dead", "route via tunnel1", "route via tunnel2", "lost", "longest gap",
		"step 5 check outage fail: expected max_gap < 3s, seen 4.0s",
		"✗ 5 check outage", // a failed step too short for its label
	} {
		if !has(want) {
			t.Errorf("no text %q", want)
		}
	}

	// One band per gateway and tunnel: cgw's tunnel1 is dead from +8 s
	// (DPD) until phase 1 is up again at +15.5 s.
	for _, b := range []string{"cgw tunnel1: ", "cgw tunnel2: ", "vgw tunnel1: ", "vgw tunnel2: "} {
		if len(rectsTitled(root, b)) == 0 {
			t.Errorf("no band %q", b)
		}
	}
	dead := rectsTitled(root, "cgw tunnel1: DPD: peer dead")
	if len(dead) != 1 {
		t.Fatalf("%d dead segments on cgw tunnel1", len(dead))
	}
	if x, w := dead[0].num(t, "x"), dead[0].num(t, "width"); !near(x, xAt(8)) || !near(x+w, xAt(15.5)) || dead[0].attr("fill") != styleOf(stateDeadRetry).fill {
		t.Errorf("dead segment x %v..%v fill %s, want %v..%v", x, x+w, dead[0].attr("fill"), xAt(8), xAt(15.5))
	}
	if !strings.Contains(dead[0].title(), "+8.000s .. +15.500s (7.50s)") {
		t.Errorf("tooltip %q", dead[0].title())
	}
	if len(rectsTitled(root, "cgw tunnel2: DPD")) != 0 {
		t.Errorf("tunnel2 shown dead")
	}

	// The route band: tunnel1, then tunnel2 from +8.1 s, then tunnel1 again.
	via2 := rectsTitled(root, "cgw 172.31.0.0/16 via tunnel2")
	if len(via2) != 1 {
		t.Fatalf("%d tunnel2 segments", len(via2))
	}
	if x, w := via2[0].num(t, "x"), via2[0].num(t, "width"); !near(x, xAt(8.1)) || !near(x+w, xAt(19)) || via2[0].attr("fill") != tunnelColor([]string{"tunnel1", "tunnel2"}, "tunnel2") {
		t.Errorf("tunnel2 segment %v..%v fill %s", x, x+w, via2[0].attr("fill"))
	}
	if n := len(rectsTitled(root, "cgw 172.31.0.0/16 via tunnel1")); n != 2 {
		t.Errorf("%d tunnel1 segments, want 2", n)
	}
	// The carrying band moves at the DPD verdict (+8 s), not with BGP.
	by2 := rectsTitled(root, "cgw 172.31.0.0/16 carried by tunnel2")
	if len(by2) != 1 {
		t.Fatalf("%d carried-by-tunnel2 segments", len(by2))
	}
	if x, w := by2[0].num(t, "x"), by2[0].num(t, "width"); !near(x, xAt(8)) || !near(x+w, xAt(19)) {
		t.Errorf("carried by tunnel2 %v..%v, want %v..%v", x, x+w, xAt(8), xAt(19))
	}

	// The flow: four buckets all lost, the outage shaded from +5 s to +9 s.
	lost := 0
	root.walk(func(n *node) {
		if n.XMLName.Local == "rect" && n.attr("fill") == "#e53935" && strings.HasPrefix(n.title(), "ping ") {
			lost++
		}
	})
	if lost != 4 {
		t.Errorf("%d lost bars, want 4", lost)
	}
	gap := rectsTitled(root, "ping: longest gap")
	if len(gap) != 1 || !near(gap[0].num(t, "x"), xAt(5)) || !near(gap[0].num(t, "x")+gap[0].num(t, "width"), xAt(9)) {
		t.Errorf("outage shading %+v", gap)
	}

	// Vertical markers for the impairment and the restore.
	var lines []float64
	root.walk(func(n *node) {
		if n.XMLName.Local == "g" && n.attr("class") == "vl-marker" && strings.Contains(n.title(), "impair tunnel1: blackhole") {
			for _, c := range n.Nodes {
				if c.XMLName.Local == "line" {
					lines = append(lines, c.num(t, "x1"))
				}
			}
		}
	})
	if len(lines) != 1 || !near(lines[0], xAt(5)) {
		t.Errorf("impair marker at %v, want %v", lines, xAt(5))
	}
	if strings.Contains(raw, "NaN") || strings.Contains(raw, "Inf") {
		t.Errorf("bad number in the SVG")
	}
}

func TestHTMLFailover(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, failoverRun()); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	checkSelfContained(t, page)
	for _, want := range []string{
		"<title>FAIL failover-dpd</title>",
		`<span class="verdict FAIL">FAIL</span> failover-dpd`,
		"outage 4.0 s",
		"expected max_gap &lt; 3s, seen 4.0s",
		"line 21: flow ping max_gap &lt; 3s — expected &lt; 3s, seen 4.0s",
		"<td>ping</td><td>icmp</td>",
		`<td class="num">140</td><td class="num">100</td><td class="num">40</td><td class="num">28.6%</td>`,
		"route 172.31.0.0/16: tunnel1 -&gt; tunnel2 (only path)",
		`<a href="captures/outside.pcap">captures/outside.pcap</a>`,
		"dpd_timeout",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	root := parseSVG(t, embeddedSVG(t, page))
	if len(rectsTitled(root, "cgw tunnel1: ")) == 0 || len(rectsTitled(root, "vgw 10.10.0.0/16 via tunnel2")) != 1 {
		t.Errorf("embedded picture lacks the bands")
	}
}

// checkSelfContained: one inline <svg>, nothing loaded from elsewhere.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	if n := strings.Count(page, "<svg"); n != 1 {
		t.Errorf("%d <svg> elements", n)
	}
	lower := strings.ToLower(page)
	for _, bad := range []string{"http://", "https://", "//", "<script", "<link", "<img", "<iframe", "src=", "url(", "@import", "javascript:"} {
		if bad == "//" {
			if regexp.MustCompile(`(href|src)="//`).MatchString(lower) {
				t.Errorf("protocol-relative reference")
			}
			continue
		}
		if strings.Contains(lower, bad) {
			t.Errorf("page has %q", bad)
		}
	}
}

func embeddedSVG(t *testing.T, page string) string {
	t.Helper()
	i, j := strings.Index(page, "<svg"), strings.Index(page, "</svg>")
	if i < 0 || j < i {
		t.Fatal("no <svg> in the page")
	}
	return page[i : j+len("</svg>")]
}

func TestEmptyAndAbortedRender(t *testing.T) {
	for name, r := range map[string]*Run{"empty": {}, "aborted": abortedRun()} {
		root, _ := svgOf(t, r)
		if !slices.Contains(texts(root), "Nothing was recorded: no steps, events or flows.") {
			t.Errorf("%s: %v", name, texts(root))
		}
		var buf bytes.Buffer
		if err := WriteHTML(&buf, r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkSelfContained(t, buf.String())
		parseSVG(t, embeddedSVG(t, buf.String()))
		if r.Error != "" && !strings.Contains(buf.String(), "run aborted: setup: ip netns add vl-cgw: operation not permitted") {
			t.Errorf("%s: page lacks the error", name)
		}
		var sb strings.Builder
		if err := WriteSummary(&sb, r); err != nil {
			t.Fatal(err)
		}
	}
}

// A run cut short: no End, a gateway killed, ECMP, a flow without series,
// a tunnel the Run does not list, text that needs escaping.
func TestSVGEdgeCases(t *testing.T) {
	r := &Run{
		Scenario: `ecmp <"kill"> & 'more'` + "\x01",
		Start:    t0,
		Gateways: []string{"cgw"},
		Tunnels:  []string{"tunnel1", "tunnel2"},
		Events: []Event{
			{Time: at(1), Source: "cgw", Tunnel: "tunnel1", Type: "tunnel-status", Detail: map[string]string{"status": "UP"}},
			{Time: at(1), Source: "cgw", Tunnel: "tunnel3", Type: "phase1-state", Detail: map[string]string{"state": "Negotiating"}},
			{Time: at(2), Source: "cgw", Type: "route", Detail: map[string]string{"kind": "installed", "prefix": "10.0.0.0/8", "to": "tunnel1,tunnel2"}},
			{Time: at(3), Source: "runner", Type: "gateway-kill", Detail: map[string]string{"gateway": "cgw"}},
			{Time: at(4), Source: "runner", Type: "impair", Tunnel: "tunnel2", Detail: map[string]string{"what": "<drop & delay>"}},
		},
		Flows: []Flow{{Name: "tcp", Proto: "tcp", Start: at(0.5), End: at(3.5), Sent: 100, Received: 100}},
		Steps: []Step{{Index: 1, Name: "kill", Start: at(3), Status: StatusError, Message: "gateway did not come back"}},
	}
	root, raw := svgOf(t, r)
	all := texts(root)
	for _, want := range []string{r.Scenario[:len(r.Scenario)-1] + "\uFFFD", "cgw tunnel3", "kill cgw", "no per-interval series", "gateway stopped", "1 kill"} {
		if !slices.Contains(all, want) {
			t.Errorf("no text %q in %q", want, all)
		}
	}
	if st := rectsTitled(root, "step 1 kill: "); len(st) != 1 || st[0].attr("stroke") != "#e65100" {
		t.Errorf("step with an error not orange")
	}
	if len(rectsTitled(root, "cgw tunnel1: gateway stopped")) != 1 {
		t.Errorf("the kill does not stop cgw's tunnel1")
	}
	ecmp := rectsTitled(root, "cgw 10.0.0.0/8 via tunnel1 + tunnel2")
	if len(ecmp) != 2 || ecmp[0].num(t, "height") != bandHeight/2 || ecmp[0].attr("fill") == ecmp[1].attr("fill") {
		t.Errorf("ECMP segments: %d", len(ecmp))
	}
	if strings.Contains(raw, "NaN") || strings.Contains(raw, "Inf") {
		t.Errorf("bad number in the SVG")
	}
	// The picture ends at the last thing recorded.
	start, end, ok := timeRange(r)
	if !ok || !start.Equal(t0) || !end.Equal(at(4)) {
		t.Errorf("time range %v..%v %v", start, end, ok)
	}
}

func TestTunnelStates(t *testing.T) {
	r := failoverRun()
	start, end, _ := timeRange(r)
	bands := tunnelBands(r, sortedEvents(r), start, end)
	if len(bands) != 4 {
		t.Fatalf("%d bands", len(bands))
	}
	type seg struct {
		from  float64
		state string
	}
	got := func(b tunnelBand) []seg {
		var out []seg
		for _, s := range b.segs {
			out = append(out, seg{s.from.Sub(t0).Seconds(), s.state})
		}
		return out
	}
	want := []seg{{0, stateUnknown}, {0.05, stateDown}, {0.2, stateNegotiating}, {0.5, stateUpNoBGP}, {0.9, stateUp},
		{8, stateDeadRetry}, {15.5, stateDown}, {15.6, stateUpNoBGP}, {18.9, stateUp}}
	if b := bands[0]; b.gateway != "cgw" || b.tunnel != "tunnel1" || !slices.EqualFunc(got(b), want, func(a, b seg) bool { return near(a.from, b.from) && a.state == b.state }) {
		t.Errorf("cgw tunnel1: %+v\nwant %+v", got(b), want)
	}
	// DPD action clear: the vgw waits for the peer, it stays "peer dead";
	// action restart (the cgw above): "peer dead, renegotiating".
	if b := bands[2]; b.gateway != "vgw" || b.tunnel != "tunnel1" || !slices.ContainsFunc(got(b), func(s seg) bool { return s.state == stateDead }) ||
		slices.ContainsFunc(got(b), func(s seg) bool { return s.state == stateDeadRetry }) {
		t.Errorf("vgw tunnel1: %+v", got(b))
	}
	for _, b := range bands {
		if last := b.segs[len(b.segs)-1]; !last.to.Equal(at(20)) || last.state != stateUp {
			t.Errorf("%s %s ends %v %s", b.gateway, b.tunnel, last.to, last.state)
		}
		for i := 1; i < len(b.segs); i++ {
			if !b.segs[i].from.Equal(b.segs[i-1].to) || b.segs[i].state == b.segs[i-1].state {
				t.Errorf("%s %s: segments %d/%d do not follow", b.gateway, b.tunnel, i-1, i)
			}
		}
	}

	// Without tunnel-status events, phase2-up/down decide; a rekey's old
	// pair going away does not take the tunnel down.
	r = &Run{Start: t0, End: at(10), Gateways: []string{"gw"}, Tunnels: []string{"t"}, Events: []Event{
		{Time: at(1), Source: "gw", Tunnel: "t", Type: "phase2-up"},
		{Time: at(2), Source: "gw", Tunnel: "t", Type: "phase2-up"},
		{Time: at(3), Source: "gw", Tunnel: "t", Type: "phase2-down"},
		{Time: at(4), Source: "gw", Tunnel: "t", Type: "phase2-down"},
	}}
	bands = tunnelBands(r, r.Events, t0, at(10))
	var states []string
	for _, s := range bands[0].segs {
		states = append(states, s.state)
	}
	if !slices.Equal(states, []string{stateUnknown, stateUp, stateDown}) || !bands[0].segs[2].from.Equal(at(4)) {
		t.Errorf("rekey: %v", states)
	}
}

func TestRouteBands(t *testing.T) {
	r := failoverRun()
	bands := routeBands(r, sortedEvents(r), t0, at(20))
	// Per gateway and prefix the decided band, then the carrying band.
	if len(bands) != 4 || bands[0].gateway != "cgw" || bands[0].prefix != "172.31.0.0/16" || bands[0].carried ||
		!bands[1].carried || bands[1].prefix != "172.31.0.0/16" || bands[2].prefix != "10.10.0.0/16" || !bands[3].carried {
		t.Fatalf("bands %+v", bands)
	}
	segs := func(b routeBand) []string {
		var got []string
		for _, s := range b.segs {
			got = append(got, strings.Join(s.tunnels, "+")+"@"+s.from.Sub(t0).String())
		}
		return got
	}
	if got, want := segs(bands[0]), []string{"@0s", "tunnel1@1s", "tunnel2@8.1s", "tunnel1@19s"}; !slices.Equal(got, want) {
		t.Errorf("cgw route band %v, want %v", got, want)
	}
	// The packets moved with DPD's verdict (tunnel1's SAs gone), before BGP.
	if got, want := segs(bands[1]), []string{"@0s", "tunnel1@1s", "tunnel2@8s", "tunnel1@19s"}; !slices.Equal(got, want) || !bands[1].segs[0].unknown {
		t.Errorf("cgw carrying band %v, want %v", got, want)
	}
	// Changes at one instant that come back to where they were leave one
	// segment.
	r = &Run{Gateways: []string{"cgw"}, Events: []Event{
		{Time: at(1), Source: "cgw", Type: "route", Detail: map[string]string{"kind": "installed", "prefix": "p", "to": "tunnel1"}},
		{Time: at(2), Source: "cgw", Type: "route", Detail: map[string]string{"kind": "best-moved", "prefix": "p", "from": "tunnel1", "to": "tunnel2"}},
		{Time: at(2), Source: "cgw", Type: "route", Detail: map[string]string{"kind": "best-moved", "prefix": "p", "from": "tunnel2", "to": "tunnel1"}},
	}}
	bands = routeBands(r, r.Events, t0, at(10))
	if len(bands) != 1 || len(bands[0].segs) != 2 || !bands[0].segs[1].to.Equal(at(10)) {
		t.Errorf("flap at one instant: %+v", bands)
	}
	// A first event that moves a route tells what carried it before.
	r = &Run{Gateways: []string{"vgw"}, Events: []Event{{Time: at(5), Source: "vgw", Type: "route",
		Detail: map[string]string{"kind": "removed", "prefix": "10.0.0.0/16", "from": "tunnel2"}}}}
	bands = routeBands(r, r.Events, t0, at(10))
	if len(bands) != 1 || len(bands[0].segs) != 2 || !slices.Equal(bands[0].segs[0].tunnels, []string{"tunnel2"}) || bands[0].segs[1].tunnels != nil {
		t.Errorf("removed first: %+v", bands)
	}
}

func TestNiceTicks(t *testing.T) {
	for _, c := range []struct {
		total time.Duration
		step  float64
	}{{time.Second, 0.1}, {20 * time.Second, 2}, {90 * time.Second, 10}, {10 * time.Minute, 60}, {3 * time.Hour, 900}} {
		if got := niceStep(c.total.Seconds()); got != c.step {
			t.Errorf("%v: step %v, want %v", c.total, got, c.step)
		}
	}
}

// A long flow at a fine interval is drawn with a bounded number of bars,
// and its outage still shows.
func TestSVGLongSeries(t *testing.T) {
	r := &Run{Scenario: "soak", Start: t0, End: at(600), Passed: true}
	f := Flow{Name: "ping", Start: t0, End: at(600), MaxGap: 3 * time.Second, MaxGapFrom: at(300), MaxGapTo: at(303)}
	for i := range 6000 {
		b := Bucket{Start: at(float64(i) / 10), Sent: 1, Received: 1}
		if i >= 3000 && i < 3030 {
			b.Received = 0
		}
		f.Series = append(f.Series, b)
	}
	r.Flows = []Flow{f}
	root, raw := svgOf(t, r)
	green, red := 0, 0
	var sent, received uint64
	bars := map[string]bool{} // a bar is one or two rects with one title
	root.walk(func(n *node) {
		if n.XMLName.Local != "rect" || !strings.HasPrefix(n.title(), "ping +") {
			return
		}
		switch n.attr("fill") {
		case "#43a047":
			green++
		case "#e53935":
			red++
		}
		if !bars[n.title()] {
			bars[n.title()] = true
			var s, rcv uint64
			i := strings.Index(n.title(), ": sent ")
			if _, err := fmt.Sscanf(n.title()[i:], ": sent %d, received %d", &s, &rcv); err != nil {
				t.Fatal(err)
			}
			sent, received = sent+s, received+rcv
		}
	})
	if green > 500 || red == 0 || red > 5 {
		t.Errorf("%d green and %d red bars", green, red)
	}
	if sent != 6000 || received != 6000-30 {
		t.Errorf("the bars add up to %d sent, %d received", sent, received)
	}
	if len(raw) > 200_000 {
		t.Errorf("SVG of %d bytes", len(raw))
	}
	if !slices.Contains(texts(root), "outage 3.0 s") || !slices.Contains(texts(root), "PASS") {
		t.Errorf("texts %v", texts(root))
	}
}
