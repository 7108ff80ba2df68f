package childsa

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRandomSPI(t *testing.T) {
	used := map[uint32]bool{}
	for range 1000 {
		spi, err := RandomSPI(func(s uint32) bool { return used[s] })
		if err != nil {
			t.Fatal(err)
		}
		if spi < 256 {
			t.Fatalf("SPI %d is in the reserved range 1-255 (RFC 4303 section 2.1)", spi)
		}
		if used[spi] {
			t.Fatalf("SPI %08x handed out twice", spi)
		}
		used[spi] = true
	}
	if _, err := RandomSPI(func(uint32) bool { return true }); err == nil || !strings.Contains(err.Error(), "no free SPI") {
		t.Fatalf("every SPI in use: %v, want \"no free SPI\"", err)
	}
}

func TestModeString(t *testing.T) {
	if ModeTunnel.String() != "tunnel" || ModeTransport.String() != "transport" {
		t.Fatalf("%v %v", ModeTunnel, ModeTransport)
	}
}

// TestCountersJSON: the field names are the status API's (docs/control-api.md).
func TestCountersJSON(t *testing.T) {
	b, err := json.Marshal(Counters{PacketsIn: 1, Drops: map[string]uint64{"icv": 2}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"packets_in":1`, `"drops":{"icv":2}`, `"control_bytes_out":0`} {
		if !strings.Contains(string(b), k) {
			t.Fatalf("%s lacks %s", b, k)
		}
	}
	if strings.Contains(string(b), "last_inbound") || strings.Contains(string(b), "mss_clamped") {
		t.Fatalf("%s shows zero optional fields", b)
	}
}
