package netlab

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

func havePing(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("ping (iputils-ping) not installed")
	}
}

// Two namespaces, one veth pair, a ping each way, a background process that
// Close must kill, and no namespace left afterwards.
func TestLinkPingCleanup(t *testing.T) {
	havePing(t)
	l, err := New(t)
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddNS("b")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.Name(), l.ID()) || a.Name() == b.Name() {
		t.Fatalf("names not unique to the run: %s %s (id %s)", a.Name(), b.Name(), l.ID())
	}
	if err := l.Link(a, "eth0", netip.MustParsePrefix("10.99.0.2/24"), b, "eth0", netip.MustParsePrefix("10.99.0.1/24")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := a.Run(ctx, "ping", "-c1", "-W2", "10.99.0.1"); err != nil {
		t.Fatalf("ping a->b: %v\n%s", err, out)
	}
	if out, err := b.Run(ctx, "ping", "-c1", "-W2", "10.99.0.2"); err != nil {
		t.Fatalf("ping b->a: %v\n%s", err, out)
	}
	// The veth must not exist in the root namespace.
	if out, _ := exec.Command("ip", "-o", "link", "show").Output(); strings.Contains(string(out), l.ID()) {
		t.Fatalf("lab interface visible in the root namespace:\n%s", out)
	}
	p, err := b.Start(context.Background(), "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := p.Exited(); ok {
		t.Fatalf("sleep exited at once: %s", p.Tail(5))
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("background process still running after Close")
	}
	for _, ns := range []*NS{a, b} {
		if _, err := os.Stat("/run/netns/" + ns.Name()); !os.IsNotExist(err) {
			t.Fatalf("namespace %s left after Close (stat: %v)", ns.Name(), err)
		}
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), l.ID()) {
		t.Fatalf("namespaces left after Close:\n%s", out)
	}
	if _, err := l.AddNS("c"); err == nil {
		t.Fatal("AddNS after Close succeeded")
	}
}

// cgw -- wan (router, SNAT) -- vgw: the vgw sees the SNAT address, and the
// blackhole set cuts the path.
func TestRouterSNATBlackhole(t *testing.T) {
	havePing(t)
	l, err := New(t)
	if err != nil {
		t.Fatal(err)
	}
	cgw, _ := l.AddNS("cgw")
	wan, _ := l.AddNS("wan")
	vgw, err := l.AddNS("vgw")
	if err != nil {
		t.Fatal(err)
	}
	P, A := netip.MustParsePrefix, netip.MustParseAddr
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.Link(cgw, "wan0", P("10.99.0.2/24"), wan, "cgw0", P("10.99.0.1/24")))
	must(l.Link(wan, "vgw0", P("203.0.113.1/24"), vgw, "wan0", P("203.0.113.10/24")))
	must(wan.EnableForwarding())
	must(cgw.AddRoute(P("0.0.0.0/0"), A("10.99.0.1")))
	must(vgw.AddRoute(P("0.0.0.0/0"), A("203.0.113.1")))
	must(wan.SNAT("vgw0", P("10.99.0.0/24"), A("198.51.100.2")))
	// Count echo requests arriving at vgw from the SNAT address.
	must(vgw.Nft(`table ip count {
  chain input {
    type filter hook input priority filter; policy accept;
    ip saddr 198.51.100.2 icmp type echo-request counter
  }
}
`))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := cgw.Run(ctx, "ping", "-c1", "-W2", "203.0.113.10"); err != nil {
		t.Fatalf("ping through the router: %v\n%s", err, out)
	}
	out, err := vgw.Run(ctx, "nft", "list", "table", "ip", "count")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`counter packets (\d+)`).FindStringSubmatch(string(out)); m == nil || m[1] == "0" {
		t.Fatalf("vgw did not see the SNAT source address:\n%s", out)
	}
	must(wan.Blackhole(A("203.0.113.10")))
	if out, err := cgw.Run(ctx, "ping", "-c1", "-W1", "203.0.113.10"); err == nil {
		t.Fatalf("ping passed the blackhole:\n%s", out)
	}
	must(wan.Unblackhole(A("203.0.113.10")))
	if out, err := cgw.Run(ctx, "ping", "-c1", "-W2", "203.0.113.10"); err != nil {
		t.Fatalf("ping after Unblackhole: %v\n%s", err, out)
	}
}
