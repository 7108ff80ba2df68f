package status

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/childsa"
)

// TestAddLive: a tunnel's sums add every live pair's counters to what is
// already there (the retired pairs' share).
func TestAddLive(t *testing.T) {
	st := Tunnel{DataIn: 10, PacketsOut: 1, Drops: map[string]uint64{"icv": 1}}
	st.AddLive(childsa.Counters{BytesIn: 5, BytesOut: 7, PacketsIn: 2, PacketsOut: 3, Drops: map[string]uint64{"icv": 2, "replay": 4}})
	st.AddLive(childsa.Counters{BytesIn: 1})
	if st.DataIn != 16 || st.DataOut != 7 || st.PacketsIn != 2 || st.PacketsOut != 4 || st.Drops["icv"] != 3 || st.Drops["replay"] != 4 {
		t.Fatalf("sums %+v", st)
	}
	var empty Tunnel
	empty.AddLive(childsa.Counters{Drops: map[string]uint64{"no-sa": 1}})
	if empty.Drops["no-sa"] != 1 {
		t.Fatalf("drops into a tunnel without a map: %+v", empty.Drops)
	}
}

// TestSnapshotJSON: the status API's field names (docs/control-api.md).
func TestSnapshotJSON(t *testing.T) {
	b, err := json.Marshal(Snapshot{Tunnels: []Tunnel{{Name: "tunnel1", Status: "UP", SAs: []SA{{Protocol: "esp", InboundSPI: "0000abcd"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"tunnels":[{"name":"tunnel1"`, `"status":"UP"`, `"sas":[{"protocol":"esp"`, `"inbound_spi":"0000abcd"`, `"counters":{"messages_in":0`, `"exchanges":{"main":{"sent":0`} {
		if !strings.Contains(string(b), k) {
			t.Fatalf("%s lacks %s", b, k)
		}
	}
}
