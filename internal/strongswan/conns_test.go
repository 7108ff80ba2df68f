package strongswan

import (
	"reflect"
	"testing"
)

// TestParseListConns: `swanctl --list-conns --raw` of a charon loaded with
// vpnlab export's swanctl.conf (strongSwan 5.9.8), and one with two children.
func TestParseListConns(t *testing.T) {
	out := []byte(`list-conn event {tunnel1 {local_addrs=[10.99.0.2] remote_addrs=[203.0.113.10] version=IKEv1 reauth_time=28530 rekey_time=0 unique=UNIQUE_NO dpd_delay=10 dpd_timeout=40 local-1 {id=10.99.0.2 class=pre-shared key groups=[] cert_policy=[] certs=[] cacerts=[]} remote-1 {id=203.0.113.10 class=pre-shared key groups=[] cert_policy=[] certs=[] cacerts=[]} children {tunnel1 {mode=TUNNEL rekey_time=3330 rekey_bytes=0 rekey_packets=0 dpd_action=start close_action=start local-ts=[0.0.0.0/0] remote-ts=[0.0.0.0/0]}}}}
list-conn event {t2 {local_addrs=[10.99.0.2] remote_addrs=[203.0.113.20] version=IKEv1 local-1 {id=10.99.0.2 class=pre-shared key groups=[]} remote-1 {id=203.0.113.20 class=pre-shared key groups=[]} children {t2-bgp {mode=TUNNEL local-ts=[169.254.11.2/32] remote-ts=[169.254.11.1/32]} t2-net {mode=TUNNEL local-ts=[10.10.0.0/16] remote-ts=[172.31.0.0/16]}}}}
list-conns reply {}
`)
	got := ParseListConns(out)
	want := map[string][]string{"tunnel1": {"tunnel1"}, "t2": {"t2-bgp", "t2-net"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
