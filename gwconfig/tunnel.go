package gwconfig

import (
	"math"
	"net/netip"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vpnlab/vpnlab/ike/policy"
)

var tunnelNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// tunnelDecoder decodes one tunnel of a configuration.
type tunnelDecoder struct {
	d    *decoder
	c    *Config
	vgw  bool
	lab  bool
	path string
}

// tunnel reads one tunnel: its engine settings, and in r what the routing
// checks need (r.ok reports whether the whole tunnel decoded without error).
func (d *decoder) tunnel(c *Config, n *yaml.Node, path, base string, r *tunnelRaw) policy.Tunnel {
	var t policy.Tunnel
	before := len(d.errs)
	b := &tunnelDecoder{d: d, c: c, vgw: c.Profile == VGW, lab: c.LabTimers, path: path}
	r.path = path
	if isNull(n) {
		d.errf(n, path, "empty tunnel")
		return t
	}
	o := d.object(n, path, "name", "connection", "local_address", "local_id", "remote_address", "remote_id",
		"remote_port", "remote_natt_port", "psk_file", "psk_env", "ike_versions", "startup_action", "ike_mode",
		"allow_aggressive", "phase1", "phase2", "local_ts", "remote_ts", "rekey_margin",
		"rekey_fuzz", "replay_window", "dpd", "nat_traversal", "nat_keepalive", "force_encap",
		"inside_cidr", "bgp", "static_routes", "mss_clamp", "outside_mtu")
	if n.Kind != yaml.MappingNode {
		return t
	}
	r.node = n

	b.endpoints(&t, o)
	t.PSK = b.psk(o, base)
	t.IKEVersions = b.ikeVersions(o)
	b.exchange(&t, o)
	b.identities(&t, o) // identity.go

	b.phase1(&t, d.object(o.get("phase1"), o.p("phase1"), "proposals", "encryption", "integrity", "dh_groups", "lifetime", "selection"))
	b.phase2(&t, d.object(o.get("phase2"), o.p("phase2"), "proposals", "encryption", "integrity", "pfs_groups", "protocol", "lifetime", "lifetime_kb", "mode", "selection"))

	b.trafficSelectors(&t, o)
	b.rekey(&t, o)
	b.replayWindow(&t, o)
	b.dpd(&t, d.object(o.get("dpd"), o.p("dpd"), "delay", "timeout", "action"))
	b.natTraversal(&t, o)

	b.tunnelRouting(o, r)
	b.tunnelSizes(o, r)
	r.ext.Name = t.Name
	r.remote = t.RemoteAddr
	r.ok = len(d.errs) == before
	return t
}

// endpoints reads the tunnel's name, its outside addresses and the peer's
// IKE ports.
func (b *tunnelDecoder) endpoints(t *policy.Tunnel, o *object) {
	d := b.d
	if nn, ok := o.scalar("name"); !ok {
		d.errf(o.line("name"), o.p("name"), "required")
	} else if !tunnelNameRE.MatchString(nn.Value) {
		d.errf(nn, o.p("name"), "%q: use 1-64 characters from A-Z a-z 0-9 _ . -", nn.Value)
	} else {
		t.Name = nn.Value
	}

	t.LocalAddr = b.addr(o, "local_address", true)
	t.RemoteAddr = b.addr(o, "remote_address", true)
	if t.LocalAddr.IsValid() && t.RemoteAddr.IsValid() && t.LocalAddr.Is4() != t.RemoteAddr.Is4() {
		d.errf(o.line("remote_address"), o.p("remote_address"), "%s and local_address %s are of different IP versions", t.RemoteAddr, t.LocalAddr)
	}
	t.RemotePorts.IKE = uint16(o.integer("remote_port", int64(policy.DefaultPorts.IKE), 1, 65535))
	t.RemotePorts.NATT = uint16(o.integer("remote_natt_port", int64(policy.DefaultPorts.NATT), 1, 65535))
}

// exchange reads who starts the tunnel (startup_action) and the IKEv1
// phase 1 exchange: main or aggressive mode, and whether aggressive is
// accepted. On a vgw, startup_action start needs IKEv2 (AWS refuses it
// otherwise) and makes the tunnel initiate with IKEv2.
func (b *tunnelDecoder) exchange(t *policy.Tunnel, o *object) {
	d := b.d
	defStart := "add"
	if !b.vgw {
		defStart = "start"
	}
	if o.enum("startup_action", defStart, "add", "start") == "start" {
		t.StartupAction = policy.StartupStart
		switch {
		case b.vgw && len(t.IKEVersions) > 0 && !t.Allows(policy.IKEv2):
			d.errf(o.line("startup_action"), o.p("startup_action"), "start needs IKEv2: AWS initiates IKE (startup action start) with IKEv2 only, and ike_versions is [%s]; add ikev2 to ike_versions or use startup_action: add (the customer gateway initiates)", strings.Join(VersionNames(t.IKEVersions), ", "))
		case b.vgw:
			t.IKEVersions = awsInitiatorOrder(t.IKEVersions)
		}
	}
	ikev1 := len(t.IKEVersions) == 0 || t.Allows(policy.IKEv1)
	if o.enum("ike_mode", "main", "main", "aggressive") == "aggressive" {
		t.Phase1.Exchange = policy.AggressiveMode
		switch {
		case b.vgw && t.StartupAction == policy.StartupStart && t.Allows(policy.IKEv2):
			d.errf(o.line("ike_mode"), o.p("ike_mode"), "aggressive is an IKEv1 exchange, but with startup_action start AWS initiates with IKEv2")
		case len(t.IKEVersions) > 0 && t.InitiatorVersion() != policy.IKEv1:
			d.errf(o.line("ike_mode"), o.p("ike_mode"), "aggressive is an IKEv1 exchange, but the tunnel initiates with %s (the first of ike_versions)", t.InitiatorVersion())
		case b.vgw:
			d.warnf(o.line("ike_mode"), o.p("ike_mode"), "AWS uses IKEv1 main mode only")
		}
	}
	t.Phase1.AllowAggressive = o.boolean("allow_aggressive", false)
	switch {
	case t.Phase1.AllowAggressive && !ikev1:
		d.errf(o.line("allow_aggressive"), o.p("allow_aggressive"), "aggressive mode is IKEv1, and ike_versions has no ikev1")
	case t.Phase1.AllowAggressive && b.vgw:
		d.warnf(o.line("allow_aggressive"), o.p("allow_aggressive"), "AWS accepts IKEv1 main mode only")
	}
}

// trafficSelectors reads local_ts and remote_ts (default 0.0.0.0/0 each).
func (b *tunnelDecoder) trafficSelectors(t *policy.Tunnel, o *object) {
	t.Phase2.LocalTS = b.prefix(o, "local_ts")
	t.Phase2.RemoteTS = b.prefix(o, "remote_ts")
	if t.Phase2.LocalTS.IsValid() && t.Phase2.RemoteTS.IsValid() && t.Phase2.LocalTS.Addr().Is4() != t.Phase2.RemoteTS.Addr().Is4() {
		b.d.errf(o.line("remote_ts"), o.p("remote_ts"), "%s and local_ts %s are of different IP versions", t.Phase2.RemoteTS, t.Phase2.LocalTS)
	}
}

// replayWindow reads replay_window: within AWS's limits on a vgw.
func (b *tunnelDecoder) replayWindow(t *policy.Tunnel, o *object) {
	if b.vgw {
		t.Phase2.ReplayWindow = int(o.integer("replay_window", AWSReplayWindow, AWSReplayWindowMin, AWSReplayWindowMax))
	} else {
		t.Phase2.ReplayWindow = int(o.integer("replay_window", AWSReplayWindow, 0, math.MaxInt32))
	}
}

// natTraversal reads nat_traversal, nat_keepalive and force_encap.
func (b *tunnelDecoder) natTraversal(t *policy.Tunnel, o *object) {
	t.NATT = o.boolean("nat_traversal", true)
	t.NATKeepalive = b.natKeepalive(o)
	t.ForceEncap = o.boolean("force_encap", false)
	if t.ForceEncap && !t.NATT {
		b.d.errf(o.line("force_encap"), o.p("force_encap"), "needs nat_traversal: true")
	}
}

// addr reads a unicast IP address.
func (b *tunnelDecoder) addr(o *object, key string, required bool) netip.Addr {
	n, ok := o.scalar(key)
	if !ok {
		if required {
			b.d.errf(o.line(key), o.p(key), "required")
		}
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(strings.TrimSpace(n.Value))
	if err != nil || a.Zone() != "" {
		b.d.errf(n, o.p(key), "%q is not an IP address", n.Value)
		return netip.Addr{}
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() {
		b.d.errf(n, o.p(key), "%s is not a unicast address", a)
		return netip.Addr{}
	}
	return a
}

// prefix reads a traffic selector prefix (an address is a host prefix;
// absent: 0.0.0.0/0).
func (b *tunnelDecoder) prefix(o *object, key string) netip.Prefix {
	def := netip.MustParsePrefix("0.0.0.0/0")
	n, ok := o.scalar(key)
	if !ok {
		return def
	}
	s := strings.TrimSpace(n.Value)
	if !strings.Contains(s, "/") {
		if a, err := netip.ParseAddr(s); err == nil {
			return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		b.d.errf(n, o.p(key), "%q is not a CIDR prefix such as 10.0.0.0/16", n.Value)
		return def
	}
	if p.Masked() != p {
		b.d.errf(n, o.p(key), "%s has host bits set (did you mean %s?)", p, p.Masked())
		return def
	}
	return p
}
