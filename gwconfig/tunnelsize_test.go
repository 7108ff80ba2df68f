package gwconfig

import "testing"

func TestTunnelSizes(t *testing.T) {
	for _, c := range []struct {
		extra    string
		mss, mtu int
	}{
		{"", 0, 0},
		{"    mss_clamp: 1360\n", 1360, 0},
		{"    mss_clamp: aws\n    outside_mtu: 1400\n", 1379, 1400},
		{"    mss_clamp: AWS\n", 1379, 0},
		{"    mss_clamp: off\n", 0, 0},
		{"    mss_clamp: 0\n", 0, 0},
	} {
		for _, p := range []Profile{VGW, CGW} {
			cfg := mustParse(t, p, minimal(c.extra))
			if got := cfg.Tunnels[0]; got.MSSClamp != c.mss || got.OutsideMTU != c.mtu {
				t.Errorf("%s %q: mss %d mtu %d, want %d %d", p, c.extra, got.MSSClamp, got.OutsideMTU, c.mss, c.mtu)
			}
		}
	}
	wantErr(t, CGW, minimal("    mss_clamp: 20\n"), "test.yaml:6", "tunnels[0].mss_clamp: 20 is out of range (allowed: 88-65495)")
	wantErr(t, CGW, minimal("    mss_clamp: big\n"), "test.yaml:6", "tunnels[0].mss_clamp", `expected an integer, got "big"`)
	wantErr(t, VGW, minimal("    outside_mtu: 100\n"), "test.yaml:6", "tunnels[0].outside_mtu: 100 is out of range (allowed: 576-9000)")
}
