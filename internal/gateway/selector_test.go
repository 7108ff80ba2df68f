package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/gwconfig"
)

// With static routes (or BGP) the route decision routes the prefixes into
// the TUN, so AWS's 0.0.0.0/0 selectors are skipped quietly; without a
// route decision the same selector is worth a warning.
func TestSelectorRoutesWarnOnlyWithoutRouteDecision(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t.psk"), []byte(psk+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := `data_path: {tun: vl0, routes: true}
tunnels:
  - name: t1
    local_address: 10.99.0.2
    remote_address: 203.0.113.10
    psk_file: ` + filepath.Join(dir, "t.psk") + `
    remote_ts: 0.0.0.0/0
`
	for _, c := range []struct {
		name, extra string
		warn        bool
	}{
		{"static routes", "    static_routes: [172.31.1.0/24]\n", false},
		{"no route decision", "", true},
	} {
		cfg, err := gwconfig.Parse([]byte("routing: {mode: static}\n"+base+c.extra), gwconfig.CGW, "t.yaml")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		srs := selectorRoutes(cfg)
		if len(srs) != 1 || srs[0].skip == "" || srs[0].warn != c.warn {
			t.Fatalf("%s: %+v", c.name, srs)
		}
		if c.warn && !strings.Contains(srs[0].skip, "contains the peer's outside address 203.0.113.10") {
			t.Errorf("%s: %q", c.name, srs[0].skip)
		}
	}
}
