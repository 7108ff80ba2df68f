package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func genConfig(t *testing.T, s *Scenario, gw string) (map[string]any, []string) {
	t.Helper()
	dir := t.TempDir()
	f := gatewayFiles{Config: filepath.Join(dir, gw+".yaml"), Control: filepath.Join(dir, gw+".sock"), KeyLog: filepath.Join(dir, "k"), Events: filepath.Join(dir, "e")}
	data, env, err := s.plan.buildConfig(s.plan.gateways[gw], f)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m, env
}

func tunnelOf(m map[string]any, name string) map[string]any {
	for _, x := range m["tunnels"].([]any) {
		if tm := x.(map[string]any); tm["name"] == name {
			return tm
		}
	}
	return nil
}

// A key and options per tunnel: tunnel1 gets its own key (a mismatch on
// the customer side) and its own DPD action on the customer gateway;
// tunnel2 keeps the connection's key and the gateway's options.
func TestPerTunnelKeysAndOptions(t *testing.T) {
	src := `topology:
  customer:
    gateway:
      tunnel_options: {dpd: {action: restart, timeout: 4s}}
  connections:
    - name: vpn-1
      psk: connection.key.1234
      tunnels:
        - name: tunnel1
          psk: tunnel1.key.5678
          customer_psk: wrong.key.5678
          customer_options: {dpd: {action: clear}}
        - name: tunnel2
steps:
  - wait: tunnel1 phase2 up
`
	s, err := Parse([]byte(src), "k.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	cgw, cenv := genConfig(t, s, "cgw")
	vgw, venv := genConfig(t, s, "vgw")
	t1, t2 := tunnelOf(cgw, "tunnel1"), tunnelOf(cgw, "tunnel2")
	if t1["psk_env"] != "VPNLAB_PSK_CUSTOMER_VPN_1__TUNNEL1" || t2["psk_env"] != "VPNLAB_PSK_CUSTOMER_VPN_1" {
		t.Fatalf("cgw psk_env %v %v", t1["psk_env"], t2["psk_env"])
	}
	for _, want := range []string{"VPNLAB_PSK_CUSTOMER_VPN_1__TUNNEL1=wrong.key.5678", "VPNLAB_PSK_CUSTOMER_VPN_1=connection.key.1234"} {
		if !strings.Contains(strings.Join(cenv, " "), want) {
			t.Errorf("cgw env %q lacks %s", cenv, want)
		}
	}
	if tunnelOf(vgw, "tunnel1")["psk_env"] != "VPNLAB_PSK_AWS_VPN_1__TUNNEL1" || !strings.Contains(strings.Join(venv, " "), "VPNLAB_PSK_AWS_VPN_1__TUNNEL1=tunnel1.key.5678") {
		t.Errorf("vgw tunnel1 key: %v %q", tunnelOf(vgw, "tunnel1")["psk_env"], venv)
	}
	d1, d2 := t1["dpd"].(map[string]any), t2["dpd"].(map[string]any)
	if d1["action"] != "clear" || d1["timeout"] != "4s" || d2["action"] != "restart" {
		t.Errorf("dpd tunnel1 %v tunnel2 %v", d1, d2)
	}
	if tunnelOf(vgw, "tunnel1")["dpd"] != nil {
		t.Errorf("customer_options reached the vgw: %v", tunnelOf(vgw, "tunnel1"))
	}
}

// A psk_file of one's own replaces the runner's psk_env (no psk_env: null);
// psk_env and psk_file together get an error that says what to write.
func TestOwnKeyFileReplacesTheRunnersEnv(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "t2.psk")
	if err := os.WriteFile(key, []byte("file.key.12345678\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `topology:
  customer:
    gateway:
      config:
        tunnels:
          - {name: tunnel2, psk_file: ` + key + `}
steps:
  - wait: tunnel1 phase2 up
`
	s, err := Parse([]byte(src), "f.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("psk_file for one tunnel: %v", err)
	}
	cgw, _ := genConfig(t, s, "cgw")
	if t2 := tunnelOf(cgw, "tunnel2"); t2["psk_env"] != nil || t2["psk_file"] != key {
		t.Errorf("tunnel2 %v", t2)
	}
	s, err = Parse([]byte(strings.Replace(src, "psk_file: "+key, "psk_file: "+key+", psk_env: MY_KEY", 1)), "f.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check()
	if err == nil || !strings.Contains(err.Error(), "set either psk_file or psk_env") ||
		!strings.Contains(err.Error(), "write psk/customer_psk in the scenario's connections[].tunnels[] entry") {
		t.Errorf("error %v", err)
	}
}
