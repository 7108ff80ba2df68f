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

// tunnelPSKEnv names the variable of a tunnel's own key:
// VPNLAB_PSK_<SIDE>_<CONNECTION>__<TUNNEL>.
func tunnelPSKEnv(side string, t *planTunnel) string {
	return pskEnv(side, t.Conn) + "__" + envName(t.Name)
}

func envName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToUpper(s))
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
		key := t.key(g.Side)
		if g.Side == "customer" {
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
		if t.ownKey() {
			ev = tunnelPSKEnv(g.Side, t)
		}
		tm["psk_env"] = ev
		env = appendEnv(env, ev+"="+key)
		// Decoded per tunnel: merge shares src's nested maps with dst, and
		// the tunnel's own entries are merged into them next.
		for _, o := range []*yaml.Node{g.TunnelOptions, t.Options[g.Side]} {
			if o == nil {
				continue
			}
			var m map[string]any
			if err := o.Decode(&m); err != nil {
				return nil, nil, err
			}
			merge(tm, m)
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
	// A key of the user's own (psk_file, or psk where the profile allows
	// it) replaces the runner's psk_env: the gateway takes one source.
	for _, t := range tunnels {
		tm := t.(map[string]any)
		_, file := tm["psk_file"]
		_, inline := tm["psk"]
		if ev, _ := tm["psk_env"].(string); (file || inline) && strings.HasPrefix(ev, "VPNLAB_PSK_") {
			delete(tm, "psk_env")
		}
	}
	base["tunnels"] = tunnels
	// A BGP speaker advertises its side's host networks unless told (a
	// gateway runs BGP on its inside addresses unless routing.mode is
	// static, with or without a bgp section).
	// No tunnel with inside addresses (all in transport mode): no BGP
	// session to run, no bgp section (the gateway would warn it is ignored).
	inside := false
	for _, t := range tunnels {
		_, has := t.(map[string]any)["inside_cidr"]
		inside = inside || has
	}
	if _, ok := base["bgp"]; !ok && !staticMode(base) && inside {
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
// parser, with the keys in the environment. It returns the parser's
// warnings (what the gateway would log at its start), each with the
// generated file's line.
func checkConfig(binary string, data []byte, env []string, file string) (warnings []string, err error) {
	prof := gwconfig.CGW
	if binary == "vgw" {
		prof = gwconfig.VGW
	}
	err = withEnv(env, func() error {
		c, err := gwconfig.Parse(data, prof, file)
		if c != nil {
			for _, w := range c.Warnings {
				warnings = append(warnings, w.String())
			}
		}
		return err
	})
	if err != nil && strings.Contains(err.Error(), "set either psk_file or psk_env") {
		err = fmt.Errorf("%w\n(the runner gives every tunnel psk_env: VPNLAB_PSK_...; for a key of your own write psk/customer_psk "+
			"in the scenario's connections[].tunnels[] entry, or psk_file alone in the tunnel's options, which replaces the runner's psk_env; "+
			"do not set psk_env and psk_file together)", err)
	}
	return warnings, err
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
// and checks them with the gateways' own parser, as a run does first. The
// gateways' configuration warnings are left in s.Warnings.
func (s *Scenario) Check() error {
	s.Warnings = nil
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
		warns, err := checkConfig(pg.Binary, data, env, name+".yaml (generated)")
		if err != nil {
			return fmt.Errorf("%s:%d: the %s configuration the scenario makes is invalid:\n%v", s.File, pg.line, name, err)
		}
		for _, w := range warns {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s:%d: %s warns: %s", s.File, pg.line, name, w))
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
