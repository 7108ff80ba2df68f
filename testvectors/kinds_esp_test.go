package testvectors

import "testing"

// TestESPKindsShipped makes sure the esp, ah and replay kinds have passing
// vectors (TestShippedVectors fails on any failing one).
func TestESPKindsShipped(t *testing.T) {
	results, err := RunPaths([]string{"esp_rfc3602.json", "esp_rfc4106_gcm.json", "esp_scapy.json", "ah_scapy.json", "replay_rfc4303.json"})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, r := range results {
		if !r.Pass {
			t.Errorf("FAIL %s %s: %s", r.File, r.Name, r.Detail)
		}
		n[r.Kind]++
	}
	if n["esp"] < 40 || n["ah"] < 8 || n["replay"] < 5 {
		t.Errorf("vector counts %v", n)
	}
	t.Logf("%v", n)
}
