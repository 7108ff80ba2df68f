package scenarios

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vpnlab/vpnlab/gwconfig"
)

// readConfigFile reads a gateway configuration named by config_file,
// relative to the scenario file.
func readConfigFile(scenarioFile, path string) (*yaml.Node, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(scenarioFile), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: expected a gateway configuration (a mapping)", path)
	}
	return doc.Content[0], nil
}

// randomPSK is an AWS-style pre-shared key: 32 characters of letters,
// digits, '.' and '_', not starting with 0.
func randomPSK() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._"
	b := make([]byte, 32)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		b[i] = alphabet[n.Int64()]
	}
	if b[0] == '0' {
		b[0] = 'a'
	}
	return string(b)
}

// pskEnv is the environment variable carrying a connection's key to one
// side's gateway process (keys never go into files or logs).
func pskEnv(side string, c *planConn) string {
	return "VPNLAB_PSK_" + strings.ToUpper(side) + "_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToUpper(c.Name))
}

// gatewayFiles are where a gateway's files go in a run.
type gatewayFiles struct {
	Config  string // generated configuration
	Control string // unix socket
	KeyLog  string
	Events  string // NDJSON of every event from start
	Log     string
}

// buildConfig generates gateway g's configuration: the lab's part
// (control socket, key log, data path, each tunnel's addresses, inside
// CIDR and key) with the scenario's tunnel_options and config merged over
// it. It returns the YAML and the environment with the keys.
func (p *plan) buildConfig(g *planGateway, f gatewayFiles) ([]byte, []string, error) {
	base := map[string]any{
		"log":        map[string]any{"format": "json", "level": "debug"},
		"control":    map[string]any{"listen": "unix:" + f.Control},
		"key_log":    f.KeyLog,
		"lab_timers": true,
		"data_path":  map[string]any{"tun": "vpnlab0", "mtu": 1400},
	}
	var env []string
	var tunnels []any
	for _, t := range p.tunnels {
		tm := map[string]any{"name": t.Name, "connection": t.Conn.Name, "inside_cidr": t.Inside.String()}
		key := t.Conn.PSK
		if g.Side == "customer" {
			key = t.Conn.CustomerPSK
			tm["local_address"] = p.cgwOutside.Addr().String()
			tm["remote_address"] = t.AWSOutside.String()
			if p.cgwPublic != p.cgwOutside.Addr() {
				tm["local_id"] = p.cgwPublic.String()
			}
			tm["startup_action"] = "start"
		} else {
			tm["local_address"] = t.AWSOutside.String()
			tm["remote_address"] = p.cgwPublic.String()
		}
		ev := pskEnv(g.Side, t.Conn)
		tm["psk_env"] = ev
		env = appendEnv(env, ev+"="+key)
		if g.TunnelOptions != nil {
			// Decoded per tunnel: merge shares src's nested maps with
			// dst, and each tunnel's own entry is merged into them next.
			var o map[string]any
			if err := g.TunnelOptions.Decode(&o); err != nil {
				return nil, nil, err
			}
			merge(tm, o)
		}
		tunnels = append(tunnels, tm)
	}
	if g.Config != nil {
		var user map[string]any
		if err := g.Config.Decode(&user); err != nil {
			return nil, nil, err
		}
		if ut, ok := user["tunnels"]; ok {
			ul, ok := ut.([]any)
			if !ok {
				return nil, nil, fmt.Errorf("config.tunnels: expected a list of tunnels (matched to the topology by name)")
			}
			for _, x := range ul {
				m, ok := x.(map[string]any)
				name, _ := m["name"].(string)
				if !ok || name == "" {
					return nil, nil, fmt.Errorf("config.tunnels: every entry needs the name of a tunnel of the topology (%s)", strings.Join(p.tunnelNames(), ", "))
				}
				found := false
				for _, t := range tunnels {
					if tm := t.(map[string]any); tm["name"] == name {
						merge(tm, m)
						found = true
					}
				}
				if !found {
					return nil, nil, fmt.Errorf("config.tunnels: %q is not a tunnel of the topology (%s)", name, strings.Join(p.tunnelNames(), ", "))
				}
			}
			delete(user, "tunnels")
		}
		merge(base, user)
	}
	// Transport mode protects the gateways' own traffic: the selectors are
	// the two outside addresses unless given.
	for _, t := range tunnels {
		tm := t.(map[string]any)
		if p2, ok := tm["phase2"].(map[string]any); ok && p2["mode"] == "transport" {
			// No inside addresses: the tunnel carries the gateways' own
			// traffic, routed by its selectors.
			delete(tm, "inside_cidr")
			if _, ok := tm["local_ts"]; !ok {
				tm["local_ts"] = tm["local_address"].(string) + "/32"
			}
			if _, ok := tm["remote_ts"]; !ok {
				tm["remote_ts"] = tm["remote_address"].(string) + "/32"
			}
		}
	}
	base["tunnels"] = tunnels
	// A BGP speaker advertises its side's host networks unless told (a
	// gateway runs BGP on its inside addresses unless routing.mode is
	// static, with or without a bgp section).
	if _, ok := base["bgp"]; !ok && !staticMode(base) {
		base["bgp"] = map[string]any{}
	}
	if b, ok := base["bgp"].(map[string]any); ok {
		if _, ok := b["advertise"]; !ok {
			var adv []any
			for _, h := range p.hosts {
				if h.Side == g.Side {
					adv = append(adv, h.Addr.Masked().String())
				}
			}
			b["advertise"] = adv
		}
	}
	out, err := yaml.Marshal(base)
	if err != nil {
		return nil, nil, err
	}
	hdr := fmt.Sprintf("# %s configuration generated by vpnlab run from the scenario (docs/scenarios.md);\n# pre-shared keys come from the environment (%s...).\n", g.Name, "VPNLAB_PSK_")
	return append([]byte(hdr), out...), env, nil
}

func appendEnv(env []string, kv string) []string {
	for _, e := range env {
		if e == kv {
			return env
		}
	}
	return append(env, kv)
}

// merge copies src over dst: mappings merge key by key, anything else
// (lists included) replaces.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// checkConfig parses a generated configuration with the gateway's own
// parser, with the keys in the environment.
func checkConfig(binary string, data []byte, env []string, file string) error {
	prof := gwconfig.CGW
	if binary == "vgw" {
		prof = gwconfig.VGW
	}
	return withEnv(env, func() error {
		_, err := gwconfig.Parse(data, prof, file)
		return err
	})
}

// withEnv runs fn with the variables of env set in this process (the keys
// of a configuration that takes them from psk_env), then restores them.
func withEnv(env []string, fn func() error) error {
	restore := map[string]*string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if old, ok := os.LookupEnv(k); ok {
			restore[k] = &old
		} else {
			restore[k] = nil
		}
		os.Setenv(k, v)
	}
	defer func() {
		for k, v := range restore {
			if v == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *v)
			}
		}
	}()
	return fn()
}

// hostNets are the networks of one side's hosts.
func (p *plan) hostNets(side string) []netip.Prefix {
	var l []netip.Prefix
	for _, h := range p.hosts {
		if h.Side == side {
			l = append(l, h.Addr.Masked())
		}
	}
	return l
}

// Check generates both gateways' configurations into a temporary folder
// and checks them with the gateways' own parser, as a run does first.
func (s *Scenario) Check() error {
	dir, err := os.MkdirTemp("", "vpnlab-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var vgwConfig string
	var vgwEnv []string
	for _, name := range []string{"vgw", "cgw"} {
		pg := s.plan.gateways[name]
		if pg.kind == "strongswan" {
			if err := s.plan.exportForeign(pg, vgwConfig, vgwEnv, filepath.Join(dir, "cgw"), filepath.Join(dir, "out")); err != nil {
				return fmt.Errorf("%s:%d: the strongSwan customer gateway's configuration: %v", s.File, pg.kindLine, err)
			}
			continue
		}
		f := gatewayFiles{Config: filepath.Join(dir, name+".yaml"), Control: filepath.Join(dir, name+".sock"),
			KeyLog: filepath.Join(dir, name+"-keys.log"), Events: filepath.Join(dir, name+"-events.ndjson")}
		data, env, err := s.plan.buildConfig(pg, f)
		if err != nil {
			return fmt.Errorf("%s:%d: gateway %s: %v", s.File, pg.line, name, err)
		}
		if err := checkConfig(pg.Binary, data, env, name+".yaml (generated)"); err != nil {
			return fmt.Errorf("%s:%d: the %s configuration the scenario makes is invalid:\n%v", s.File, pg.line, name, err)
		}
		if err := os.WriteFile(f.Config, data, 0o600); err != nil {
			return err
		}
		vgwConfig, vgwEnv = f.Config, env
	}
	return nil
}

func staticMode(cfg map[string]any) bool {
	r, _ := cfg["routing"].(map[string]any)
	return r != nil && r["mode"] == "static"
}
