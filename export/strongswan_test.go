package export

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/policy"
)

func TestStrongSwan(t *testing.T) {
	p := writeVGW(t, testVGW)
	fs := files(t, "strongswan", p, Options{Connections: []string{"vpn-a"}, CustomerAddress: "10.99.0.2", IKEVersion: policy.IKEv1})
	want := map[string]uint32{
		"a1/strongswan.conf": 0o644, "a1/swanctl.conf": 0o644, "a1/updown.sh": 0o755, "a1/secrets.conf.example": 0o644,
		"a2/strongswan.conf": 0o644, "a2/swanctl.conf": 0o644, "a2/updown.sh": 0o755, "a2/secrets.conf.example": 0o644,
	}
	if len(fs) != len(want) {
		t.Errorf("files %v, want %d", keys(fs), len(want))
	}
	for n, mode := range want {
		if f, ok := fs[n]; !ok || uint32(f.Mode) != mode {
			t.Errorf("%s: present %v mode %o, want %o", n, ok, f.Mode, mode)
		}
	}
	noSecrets(t, fs)

	// Tunnel a1: AWS defaults (every proposal, 28800/3600 s, margin 270 s,
	// fuzz 100 %, DPD 10/40 s), behind NAT (sends from 10.99.0.2, id = the
	// address the vgw expects).
	a1 := string(fs["a1/swanctl.conf"].Data)
	hasLines(t, "a1/swanctl.conf", a1,
		"version = 1", "aggressive = no", "local_addrs = 10.99.0.2", "remote_addrs = 203.0.113.10",
		"encap = yes", "dpd_delay = 10s", "dpd_timeout = 40s",
		"rekey_time = 0s", "reauth_time = 28530s", "over_time = 270s", "rand_time = 270s", "keyingtries = 0",
		"id = 198.51.100.2", "id = 203.0.113.10",
		"local_ts = 0.0.0.0/0", "remote_ts = 0.0.0.0/0", "mode = tunnel",
		"life_time = 3600s", "rekey_time = 3330s", "replay_window = 1024",
		"start_action = start", "dpd_action = restart", "close_action = start",
		"updown = /etc/swanctl/a1/updown.sh",
		"ike-a1 {", "id-1 = 198.51.100.2", "id-2 = 203.0.113.10", "include secrets.conf",
	)
	props := lineValue(a1, "proposals")
	if n := len(strings.Split(props, ",")); n != 2*4*12 || !strings.HasPrefix(props, "aes128-sha1-modp1024,") || !strings.Contains(props, ",aes256-sha512-modp2048s256") {
		t.Errorf("a1 proposals: %d: %s", n, props)
	}
	esp := lineValue(a1, "esp_proposals")
	if n := len(strings.Split(esp, ",")); n != (2*4+2)*13 || !strings.Contains(esp, "aes128-sha256-modp1536,") || !strings.Contains(esp, ",aes256gcm16-ecp384,") {
		t.Errorf("a1 esp_proposals: %d: %s", n, esp)
	}
	// Tunnel a2: narrowed, its own lifetimes, margin 120 s with 50 % fuzz.
	a2 := string(fs["a2/swanctl.conf"].Data)
	hasLines(t, "a2/swanctl.conf", a2,
		"proposals = aes256-sha256-modp2048", "esp_proposals = aes256gcm16-modp2048",
		"reauth_time = 14280s", "over_time = 120s", "rand_time = 60s",
		"life_time = 1800s", "rekey_time = 1680s", "dpd_timeout = 30s", "dpd_delay = 10s")

	// One charon per tunnel: its own ports, routing table, vici socket.
	hasLines(t, "a1/strongswan.conf", string(fs["a1/strongswan.conf"].Data),
		"port = 500", "port_nat_t = 4500", "routing_table = 220", "routing_table_prio = 32800",
		"socket = unix:///etc/swanctl/a1/charon.vici", "install_routes = yes")
	s2 := string(fs["a2/strongswan.conf"].Data)
	hasLines(t, "a2/strongswan.conf", s2, "port = 1500", "port_nat_t = 14500", "routing_table = 221", "routing_table_prio = 32801")
	if l := lineValue(s2, "load"); !strings.Contains(l, "kernel-libipsec kernel-netlink") || !strings.Contains(l, "updown") {
		t.Errorf("load list %q", l)
	}

	// updown: the inside address, no static routes in BGP mode, valid sh.
	up := string(fs["a2/updown.sh"].Data)
	hasLines(t, "a2/updown.sh", up, `INSIDE="169.254.11.2/30"`, `ROUTES=""`, "#!/bin/sh")
	shSyntax(t, up)
	if ex := string(fs["a1/secrets.conf.example"].Data); !strings.Contains(ex, "a1.psk (the vgw's psk_file)") {
		t.Errorf("secrets.conf.example does not say where the key is:\n%s", ex)
	}

	// With secrets: secrets.conf, mode 0600, holds the key.
	fs = files(t, "strongswan", p, Options{Connections: []string{"vpn-b"}, IncludeSecrets: true})
	sec, ok := fs["b1/secrets.conf"]
	if !ok || sec.Mode != 0o600 || !strings.Contains(string(sec.Data), `secret = "`+pskB1+`"`) {
		t.Errorf("b1/secrets.conf: present %v mode %o:\n%s", ok, sec.Mode, sec.Data)
	}
	if strings.Contains(string(fs["b1/swanctl.conf"].Data), pskB1) {
		t.Error("the key is in swanctl.conf too")
	}
	if !strings.Contains(string(fs["b1/swanctl.conf"].Data), "environment variable EXPORT_TEST_PSK") {
		t.Errorf("b1/swanctl.conf does not name the key's source:\n%s", fs["b1/swanctl.conf"].Data)
	}
}

func TestStrongSwanStatic(t *testing.T) {
	p := writeVGW(t, staticVGW)
	fs := files(t, "strongswan", p, Options{})
	hasLines(t, "s1/swanctl.conf", string(fs["s1/swanctl.conf"].Data), "local_ts = 0.0.0.0/0", "remote_ts = 172.31.0.0/16", "local_addrs = 198.51.100.2")
	up := string(fs["s2/updown.sh"].Data)
	hasLines(t, "s2/updown.sh", up, `INSIDE=""`, `ROUTES="172.31.0.0/16"`, "METRIC=101")
	shSyntax(t, up)
}

func TestStrongSwanRefuses(t *testing.T) {
	for _, c := range []struct{ extra, want string }{
		{"    nat_traversal: false\n", "nat_traversal is off"},
		{"    phase2: {protocol: AH}\n", "ESP only"},
		{"  - name: ..\n    local_address: 203.0.113.40\n    remote_address: 198.51.100.2\n    psk_file: a1.psk\n", `tunnel "..": the name is a directory`},
	} {
		p := writeVGW(t, staticVGW+c.extra)
		if _, err := Export("strongswan", p, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.extra, err, c.want)
		}
	}
}

// lineValue returns the value of the first "key = value" line.
func lineValue(text, key string) string {
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, key+" = "); ok {
			if i := strings.Index(v, "  #"); i >= 0 {
				v = v[:i]
			}
			return v
		}
	}
	return ""
}

// shSyntax checks a shell script with sh -n.
func shSyntax(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
}
