package gwconfig

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// AWS tunnel-option defaults and limits (AWS Site-to-Site VPN User Guide,
// "Tunnel options for your Site-to-Site VPN connection", VPNTunnels.md).
const (
	AWSPhase1Lifetime    = 28800 * time.Second
	AWSPhase1LifetimeMin = 900 * time.Second
	AWSPhase2Lifetime    = 3600 * time.Second
	AWSPhase2LifetimeMin = 900 * time.Second
	AWSRekeyMargin       = 270 * time.Second
	AWSRekeyMarginMin    = 60 * time.Second
	AWSRekeyFuzz         = 100
	AWSReplayWindow      = 1024
	AWSReplayWindowMin   = 64
	AWSReplayWindowMax   = 2048
	AWSDPDTimeout        = 40 * time.Second
	AWSDPDTimeoutMin     = 30 * time.Second
	// AWSDPDDelay: AWS sends an R-U-THERE after 10 s without traffic from
	// the peer (AWS knowledge center, vpn-tunnel-instability-inactivity).
	AWSDPDDelay = 10 * time.Second
)

// NAT keepalive settings (policy.Tunnel.NATKeepalive).
const (
	// DefaultNATKeepalive is RFC 3948's and strongSwan's 20 s.
	DefaultNATKeepalive = policy.DefaultNATKeepalive
	// NATKeepaliveOff is the value for no NAT keepalives (nat_keepalive: 0
	// or off): the engine takes a negative interval as none.
	NATKeepaliveOff time.Duration = -1
)

// AWS tunnel-option value lists, in AWS's order. Phase 1 encryption lists
// only AES-CBC: AWS offers AES-GCM in phase 1 with IKEv2 only.
var (
	AWSPhase1Encryption = []string{"AES128", "AES256"}
	AWSPhase1Integrity  = []string{"SHA1", "SHA2-256", "SHA2-384", "SHA2-512"}
	AWSPhase1DHGroups   = []uint16{2, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}
	AWSPhase2Encryption = []string{"AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"}
	AWSPhase2Integrity  = []string{"SHA1", "SHA2-256", "SHA2-384", "SHA2-512"}
	AWSPhase2DHGroups   = []uint16{2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}
)

// Customer gateway defaults (strongSwan-like).
var (
	CGWPhase1Proposals = []string{"aes128-sha1-modp2048"}
	CGWPhase2Proposals = []string{"esp-aes128-sha1-modp2048"}
)

var (
	cgwPhase1Encryption = []string{"AES128", "AES192", "AES256"}
	cgwPhase2Encryption = []string{"AES128", "AES192", "AES256", "AES128-GCM-16", "AES192-GCM-16", "AES256-GCM-16", "NULL"}
	allDHGroups         = func() []uint16 {
		var g []uint16
		for _, x := range dhGroups {
			g = append(g, x.num)
		}
		return g
	}()
)

var tunnelNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// pskRE is AWS's pre-shared key rule: 8-64 characters of [A-Za-z0-9._],
// not starting with 0.
var pskRE = regexp.MustCompile(`^[A-Za-z0-9._]{8,64}$`)

// CheckAWSPSK reports whether psk follows AWS's rules for a pre-shared key:
// 8-64 characters from A-Z a-z 0-9 . _, not starting with 0. The error never
// contains the key.
func CheckAWSPSK(psk []byte) error {
	switch {
	case len(psk) < 8:
		return fmt.Errorf("pre-shared key is too short (AWS: 8-64 characters)")
	case len(psk) > 64:
		return fmt.Errorf("pre-shared key is too long (AWS: 8-64 characters)")
	case !pskRE.Match(psk):
		return fmt.Errorf("pre-shared key has characters other than A-Z a-z 0-9 . _ (AWS rule)")
	case psk[0] == '0':
		return fmt.Errorf("pre-shared key starts with 0 (AWS rule)")
	}
	return nil
}

func formatGroups(g []uint16) string {
	var parts []string
	for i := 0; i < len(g); {
		j := i
		for j+1 < len(g) && g[j+1] == g[j]+1 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, fmt.Sprintf("%d-%d", g[i], g[j]))
		case j == i:
			parts = append(parts, strconv.Itoa(int(g[i])))
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, strconv.Itoa(int(g[k])))
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

func containsGroup(l []uint16, g uint16) bool {
	for _, x := range l {
		if x == g {
			return true
		}
	}
	return false
}

func containsFold(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// tb builds one tunnel.
type tb struct {
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
	b := &tb{d: d, c: c, vgw: c.Profile == VGW, lab: c.LabTimers, path: path}
	r.path = path
	if isNull(n) {
		d.errf(n, path, "empty tunnel")
		return t
	}
	o := d.object(n, path, "name", "connection", "local_address", "local_id", "remote_address", "remote_id",
		"remote_port", "remote_natt_port", "psk_file", "psk_env", "startup_action", "ike_mode",
		"allow_aggressive", "phase1", "phase2", "local_ts", "remote_ts", "rekey_margin",
		"rekey_fuzz", "replay_window", "dpd", "nat_traversal", "nat_keepalive", "force_encap",
		"inside_cidr", "bgp", "static_routes", "mss_clamp", "outside_mtu")
	if n.Kind != yaml.MappingNode {
		return t
	}
	r.node = n

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
	t.LocalID = t.LocalAddr
	if o.has("local_id") {
		t.LocalID = b.addr(o, "local_id", false)
	}
	t.RemoteID = t.RemoteAddr
	if nn, ok := o.scalar("remote_id"); ok {
		if v := strings.ToLower(nn.Value); v == "any" || v == "%any" {
			t.RemoteID = netip.Addr{}
		} else {
			t.RemoteID = b.addr(o, "remote_id", false)
		}
	}
	t.RemotePorts.IKE = uint16(o.integer("remote_port", int64(policy.DefaultPorts.IKE), 1, 65535))
	t.RemotePorts.NATT = uint16(o.integer("remote_natt_port", int64(policy.DefaultPorts.NATT), 1, 65535))

	t.PSK = b.psk(o, base)

	defStart := "add"
	if !b.vgw {
		defStart = "start"
	}
	if o.enum("startup_action", defStart, "add", "start") == "start" {
		t.StartupAction = policy.StartupStart
		if b.vgw {
			d.warnf(o.line("startup_action"), o.p("startup_action"), "AWS supports startup action start only with IKEv2; an AWS IKEv1 tunnel waits for the customer gateway")
		}
	}
	if o.enum("ike_mode", "main", "main", "aggressive") == "aggressive" {
		t.Phase1.Exchange = policy.AggressiveMode
		if b.vgw {
			d.warnf(o.line("ike_mode"), o.p("ike_mode"), "AWS uses IKEv1 main mode only")
		}
	}
	t.Phase1.AllowAggressive = o.boolean("allow_aggressive", false)
	if t.Phase1.AllowAggressive && b.vgw {
		d.warnf(o.line("allow_aggressive"), o.p("allow_aggressive"), "AWS accepts IKEv1 main mode only")
	}

	b.phase1(&t, d.object(o.get("phase1"), o.p("phase1"), "proposals", "encryption", "integrity", "dh_groups", "lifetime", "selection"))
	b.phase2(&t, d.object(o.get("phase2"), o.p("phase2"), "proposals", "encryption", "integrity", "pfs_groups", "protocol", "lifetime", "lifetime_kb", "mode", "selection"))

	t.Phase2.LocalTS = b.prefix(o, "local_ts")
	t.Phase2.RemoteTS = b.prefix(o, "remote_ts")
	if t.Phase2.LocalTS.IsValid() && t.Phase2.RemoteTS.IsValid() && t.Phase2.LocalTS.Addr().Is4() != t.Phase2.RemoteTS.Addr().Is4() {
		d.errf(o.line("remote_ts"), o.p("remote_ts"), "%s and local_ts %s are of different IP versions", t.Phase2.RemoteTS, t.Phase2.LocalTS)
	}

	b.rekey(&t, o)

	if b.vgw {
		t.Phase2.ReplayWindow = int(o.integer("replay_window", AWSReplayWindow, AWSReplayWindowMin, AWSReplayWindowMax))
	} else {
		t.Phase2.ReplayWindow = int(o.integer("replay_window", AWSReplayWindow, 0, math.MaxInt32))
	}

	b.dpd(&t, d.object(o.get("dpd"), o.p("dpd"), "delay", "timeout", "action"))

	t.NATT = o.boolean("nat_traversal", true)
	t.NATKeepalive = b.natKeepalive(o)
	t.ForceEncap = o.boolean("force_encap", false)
	if t.ForceEncap && !t.NATT {
		d.errf(o.line("force_encap"), o.p("force_encap"), "needs nat_traversal: true")
	}

	b.tunnelRouting(o, r)
	b.tunnelSizes(o, r)
	r.ext.Name = t.Name
	r.remote = t.RemoteAddr
	r.ok = len(d.errs) == before
	return t
}

// natKeepalive reads nat_keepalive: a positive duration, or 0 / off for
// none (NATKeepaliveOff).
func (b *tb) natKeepalive(o *object) time.Duration {
	if n, ok := o.scalar("nat_keepalive"); ok && strings.EqualFold(strings.TrimSpace(n.Value), "off") {
		return NATKeepaliveOff
	}
	v, set := o.duration("nat_keepalive", DefaultNATKeepalive)
	if set && v == 0 {
		return NATKeepaliveOff
	}
	return v
}

func (b *tb) addr(o *object, key string, required bool) netip.Addr {
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

func (b *tb) prefix(o *object, key string) netip.Prefix {
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

// psk reads the pre-shared key from psk_file or psk_env. No message names
// the key itself.
func (b *tb) psk(o *object, base string) policy.Secret {
	fn, hasFile := o.scalar("psk_file")
	en, hasEnv := o.scalar("psk_env")
	var psk []byte
	var where *yaml.Node
	var wherePath string
	switch {
	case hasFile && hasEnv:
		b.d.errf(en, o.p("psk_env"), "set either psk_file or psk_env, not both")
		return nil
	case !hasFile && !hasEnv:
		b.d.errf(o.node, o.path, "a pre-shared key is required: set psk_file or psk_env")
		return nil
	case hasFile:
		where, wherePath = fn, o.p("psk_file")
		p := fn.Value
		if p == "" {
			b.d.errf(fn, wherePath, "empty path")
			return nil
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			b.d.errf(fn, wherePath, "cannot read the pre-shared key: %v", unwrapPathError(err, p))
			return nil
		}
		if strings.HasSuffix(string(data), "\r\n") {
			data = data[:len(data)-2]
		} else if strings.HasSuffix(string(data), "\n") {
			data = data[:len(data)-1]
		}
		psk = data
		if len(psk) == 0 {
			b.d.errf(fn, wherePath, "%s is empty", p)
			return nil
		}
	default:
		where, wherePath = en, o.p("psk_env")
		v, ok := os.LookupEnv(en.Value)
		if !ok || en.Value == "" {
			b.d.errf(en, wherePath, "environment variable %q is not set", en.Value)
			return nil
		}
		if v == "" {
			b.d.errf(en, wherePath, "environment variable %q is empty", en.Value)
			return nil
		}
		psk = []byte(v)
	}
	if err := CheckAWSPSK(psk); err != nil {
		if b.vgw {
			b.d.errf(where, wherePath, "%v", err)
			return nil
		}
		b.d.warnf(where, wherePath, "%v: an AWS virtual private gateway would refuse it", err)
	}
	return policy.Secret(psk)
}

// unwrapPathError keeps the OS reason ("no such file or directory") with the
// path, whatever the error type.
func unwrapPathError(err error, path string) string {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Sprintf("%s: %v", path, pe.Err)
	}
	return err.Error()
}

func (b *tb) selection(o *object) policy.Selection {
	def := "lowest-value"
	if !b.vgw {
		def = "initiator-order"
	}
	if o.enum("selection", def, "lowest-value", "initiator-order") == "lowest-value" {
		return policy.SelectLowestValue
	}
	return policy.SelectInitiatorOrder
}

// lifetime reads a lifetime that must be whole seconds in [min, max].
func (b *tb) lifetime(o *object, def, min, max time.Duration) time.Duration {
	v, set := o.duration("lifetime", def)
	if !set {
		return v
	}
	n := o.line("lifetime")
	switch {
	case v%time.Second != 0:
		b.d.errf(n, o.p("lifetime"), "%s is not a whole number of seconds", v)
	case v < min || v > max:
		b.d.errf(n, o.p("lifetime"), "%s is out of range (allowed: %s)", v, durRange(min, max))
		if b.vgw && !b.lab && v < min && v > 0 {
			b.d.errs[len(b.d.errs)-1].Msg += "; set lab_timers: true for shorter test timers"
		}
	default:
		return v
	}
	return def
}

func durRange(min, max time.Duration) string {
	if max == time.Duration(math.MaxInt64) {
		return ">= " + secs(min)
	}
	return secs(min) + " to " + secs(max)
}

func secs(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return d.String()
}

func (b *tb) phase1(t *policy.Tunnel, o *object) {
	t.Phase1.Selection = b.selection(o)
	min, max := time.Second, time.Duration(math.MaxInt64)
	if b.vgw {
		max = AWSPhase1Lifetime
		if !b.lab {
			min = AWSPhase1LifetimeMin
		}
	}
	t.Phase1.Lifetime = b.lifetime(o, AWSPhase1Lifetime, min, max)

	props, pset := o.list("proposals")
	encs, eset := o.list("encryption")
	integs, iset := o.list("integrity")
	groups, gset := o.list("dh_groups")
	encAllowed, groupAllowed := cgwPhase1Encryption, allDHGroups
	if b.vgw {
		encAllowed, groupAllowed = AWSPhase1Encryption, AWSPhase1DHGroups
	}
	switch {
	case pset && (eset || iset || gset):
		b.d.errf(o.line("proposals"), o.p("proposals"), "use either proposals or the encryption/integrity/dh_groups lists, not both")
	case pset:
		if len(props) == 0 {
			b.d.errf(o.line("proposals"), o.p("proposals"), "must not be empty")
		}
		seen := map[policy.Phase1Proposal]bool{}
		for _, it := range props {
			p, err := ParsePhase1Proposal(it.s)
			if err != nil {
				b.d.errf(it.n, o.p("proposals"), "%v", err)
				continue
			}
			ok := true
			if enc := fmt.Sprintf("AES%d", p.EncKeyBits); !containsFold(encAllowed, enc) {
				b.d.errf(it.n, o.p("proposals"), "%s: %s is not allowed (allowed: %s)", it.s, enc, strings.Join(encAllowed, ", "))
				ok = false
			}
			if !containsGroup(groupAllowed, p.DHGroup) {
				b.d.errf(it.n, o.p("proposals"), "%s: DH group %d is not allowed (allowed: %s)", it.s, p.DHGroup, formatGroups(groupAllowed))
				ok = false
			}
			if seen[p] {
				b.d.errf(it.n, o.p("proposals"), "%s is listed twice", it.s)
				ok = false
			}
			seen[p] = true
			if ok {
				t.Phase1.Proposals = append(t.Phase1.Proposals, p)
			}
		}
	case eset || iset || gset || b.vgw:
		encBits := b.p1Encryption(o, encs, eset, encAllowed)
		hs := b.integrity(o, integs, iset, false)
		gs := b.groups(o, "dh_groups", groups, gset, AWSPhase1DHGroups, groupAllowed, false)
		for _, e := range encBits {
			for _, h := range hs {
				for _, g := range gs {
					t.Phase1.Proposals = append(t.Phase1.Proposals, policy.Phase1Proposal{EncKeyBits: e, Hash: hashes[h].h, DHGroup: g})
				}
			}
		}
	default:
		for _, s := range CGWPhase1Proposals {
			p, _ := ParsePhase1Proposal(s)
			t.Phase1.Proposals = append(t.Phase1.Proposals, p)
		}
	}
}

func (b *tb) p1Encryption(o *object, items []item, set bool, allowed []string) []int {
	if !set {
		var bits []int
		for _, s := range AWSPhase1Encryption {
			_, k, _ := parseAWSEnc(s)
			bits = append(bits, k)
		}
		return bits
	}
	if len(items) == 0 {
		b.d.errf(o.line("encryption"), o.p("encryption"), "must not be empty")
	}
	var bits []int
	seen := map[string]bool{}
	for _, it := range items {
		enc, k, ok := parseAWSEnc(it.s)
		switch {
		case ok && enc == isakmp.ESPAESGCM16:
			b.d.errf(it.n, o.p("encryption"), "%s is not available in IKEv1 phase 1: AWS offers AES-GCM in phase 1 only with IKEv2 (allowed: %s)", it.s, strings.Join(allowed, ", "))
		case !ok || !containsFold(allowed, it.s):
			b.d.errf(it.n, o.p("encryption"), "%s is not allowed (allowed: %s)", it.s, strings.Join(allowed, ", "))
		case seen[strings.ToUpper(it.s)]:
			b.d.errf(it.n, o.p("encryption"), "%s is listed twice", it.s)
		default:
			seen[strings.ToUpper(it.s)] = true
			bits = append(bits, k)
		}
	}
	return bits
}

// integrity returns indexes into hashes. emptyOK allows an explicit empty list.
func (b *tb) integrity(o *object, items []item, set, emptyOK bool) []int {
	if !set {
		return []int{0, 1, 2, 3}
	}
	if len(items) == 0 && !emptyOK {
		b.d.errf(o.line("integrity"), o.p("integrity"), "must not be empty")
	}
	var r []int
	seen := map[int]bool{}
	for _, it := range items {
		i, ok := parseAWSIntegrity(it.s)
		switch {
		case !ok:
			b.d.errf(it.n, o.p("integrity"), "%s is not allowed (allowed: %s)", it.s, strings.Join(AWSPhase1Integrity, ", "))
		case seen[i]:
			b.d.errf(it.n, o.p("integrity"), "%s is listed twice", it.s)
		default:
			seen[i] = true
			r = append(r, i)
		}
	}
	return r
}

// groups reads a DH group list (numbers or names such as modp2048). An
// explicit empty list gives [0] (no PFS) when emptyOK.
func (b *tb) groups(o *object, key string, items []item, set bool, def, allowed []uint16, emptyOK bool) []uint16 {
	if !set {
		return def
	}
	if len(items) == 0 {
		if emptyOK {
			return []uint16{0}
		}
		b.d.errf(o.line(key), o.p(key), "must not be empty")
	}
	var r []uint16
	seen := map[uint16]bool{}
	for _, it := range items {
		g, ok := uint16(0), false
		if v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(it.s), "group"), 10, 16); err == nil {
			g, ok = uint16(v), true
		} else if gn, found := dhGroupByName(strings.ToLower(it.s)); found {
			g, ok = gn, true
		}
		switch {
		case !ok:
			b.d.errf(it.n, o.p(key), "%q is not a DH group number (allowed: %s)", it.s, formatGroups(allowed))
		case !containsGroup(allowed, g):
			b.d.errf(it.n, o.p(key), "%s is not allowed (allowed: %s)", it.s, formatGroups(allowed))
		case seen[g]:
			b.d.errf(it.n, o.p(key), "%s is listed twice", it.s)
		default:
			seen[g] = true
			r = append(r, g)
		}
	}
	return r
}

func (b *tb) phase2(t *policy.Tunnel, o *object) {
	t.Phase2.Selection = b.selection(o)
	min, max := time.Second, time.Duration(math.MaxInt64)
	if b.vgw {
		max = AWSPhase2Lifetime
		if !b.lab {
			min = AWSPhase2LifetimeMin
		}
	}
	t.Phase2.Lifetime = b.lifetime(o, AWSPhase2Lifetime, min, max)
	if b.vgw && t.Phase2.Lifetime >= t.Phase1.Lifetime {
		what := ""
		if !o.has("lifetime") {
			what = "the default "
		}
		b.d.errf(o.line("lifetime"), o.p("lifetime"), "%s%s must be less than the phase 1 lifetime (%s)", what, secs(t.Phase2.Lifetime), secs(t.Phase1.Lifetime))
	}
	kb := o.integer("lifetime_kb", 0, 0, math.MaxInt64)
	t.Phase2.LifetimeKB = uint64(kb)
	if kb != 0 && b.vgw {
		b.d.warnf(o.line("lifetime_kb"), o.p("lifetime_kb"), "AWS has no volume lifetime")
	}
	if o.enum("mode", "tunnel", "tunnel", "transport") == "transport" {
		t.Phase2.Mode = childsa.ModeTransport
		if b.vgw {
			b.d.warnf(o.line("mode"), o.p("mode"), "AWS uses tunnel mode only")
		}
	}

	props, pset := o.list("proposals")
	encs, eset := o.list("encryption")
	integs, iset := o.list("integrity")
	groups, gset := o.list("pfs_groups")
	_, protoSet := o.scalar("protocol")
	encAllowed, groupAllowed := cgwPhase2Encryption, allDHGroups
	if b.vgw {
		encAllowed, groupAllowed = AWSPhase2Encryption, AWSPhase2DHGroups
	}
	switch {
	case pset && (eset || iset || gset || protoSet):
		b.d.errf(o.line("proposals"), o.p("proposals"), "use either proposals or the encryption/integrity/pfs_groups/protocol lists, not both")
	case pset:
		if len(props) == 0 {
			b.d.errf(o.line("proposals"), o.p("proposals"), "must not be empty")
		}
		seen := map[policy.Phase2Proposal]bool{}
		for _, it := range props {
			p, err := ParsePhase2Proposal(it.s)
			if err != nil {
				b.d.errf(it.n, o.p("proposals"), "%v", err)
				continue
			}
			ok := true
			if p.Protocol == isakmp.ProtoAH && b.vgw {
				b.d.errf(it.n, o.p("proposals"), "%s: AH is not allowed (AWS uses ESP only)", it.s)
				ok = false
			}
			if enc := p2EncAWSName(p.Encryption, p.EncKeyBits); p.Protocol == isakmp.ProtoESP && !containsFold(encAllowed, enc) {
				b.d.errf(it.n, o.p("proposals"), "%s: %s is not allowed (allowed: %s)", it.s, enc, strings.Join(encAllowed, ", "))
				ok = false
			}
			if p.PFSGroup != 0 && !containsGroup(groupAllowed, p.PFSGroup) {
				b.d.errf(it.n, o.p("proposals"), "%s: PFS group %d is not allowed (allowed: %s)", it.s, p.PFSGroup, formatGroups(groupAllowed))
				ok = false
			}
			if seen[p] {
				b.d.errf(it.n, o.p("proposals"), "%s is listed twice", it.s)
				ok = false
			}
			seen[p] = true
			if ok {
				t.Phase2.Proposals = append(t.Phase2.Proposals, p)
			}
		}
		if b.vgw {
			for _, p := range t.Phase2.Proposals {
				if p.PFSGroup == 0 {
					b.d.warnf(o.line("proposals"), o.p("proposals"), "%s has no PFS group: AWS requires PFS in phase 2", FormatPhase2(p))
					break
				}
			}
		}
	case eset || iset || gset || protoSet || b.vgw:
		proto := o.enum("protocol", "esp", "esp", "ah")
		if proto == "ah" && b.vgw {
			b.d.errf(o.line("protocol"), o.p("protocol"), "ah is not allowed (AWS uses ESP only)")
			return
		}
		gs := b.groups(o, "pfs_groups", groups, gset, AWSPhase2DHGroups, groupAllowed, true)
		if b.vgw && len(gs) == 1 && gs[0] == 0 {
			b.d.warnf(o.line("pfs_groups"), o.p("pfs_groups"), "empty: AWS requires PFS in phase 2")
		}
		if proto == "ah" {
			if eset {
				b.d.errf(o.line("encryption"), o.p("encryption"), "must not be set with protocol ah (AH does not encrypt)")
			}
			for _, h := range b.integrity(o, integs, iset, false) {
				for _, g := range gs {
					t.Phase2.Proposals = append(t.Phase2.Proposals, policy.Phase2Proposal{Protocol: isakmp.ProtoAH, Integrity: hashes[h].auth, PFSGroup: g})
				}
			}
			return
		}
		type enc struct {
			id   uint8
			bits int
		}
		var es []enc
		if !eset {
			for _, s := range AWSPhase2Encryption {
				id, k, _ := parseAWSEnc(s)
				es = append(es, enc{id, k})
			}
		} else {
			if len(encs) == 0 {
				b.d.errf(o.line("encryption"), o.p("encryption"), "must not be empty")
			}
			seen := map[enc]bool{}
			for _, it := range encs {
				id, k, ok := parseAWSEnc(it.s)
				switch {
				case !ok || !containsFold(encAllowed, it.s):
					b.d.errf(it.n, o.p("encryption"), "%s is not allowed (allowed: %s)", it.s, strings.Join(encAllowed, ", "))
				case seen[enc{id, k}]:
					b.d.errf(it.n, o.p("encryption"), "%s is listed twice", it.s)
				default:
					seen[enc{id, k}] = true
					es = append(es, enc{id, k})
				}
			}
		}
		needInteg := false
		for _, e := range es {
			needInteg = needInteg || e.id != isakmp.ESPAESGCM16
		}
		hs := b.integrity(o, integs, iset, !needInteg)
		for _, e := range es {
			if e.id == isakmp.ESPAESGCM16 {
				// GCM carries its own integrity: one proposal per group.
				for _, g := range gs {
					t.Phase2.Proposals = append(t.Phase2.Proposals, policy.Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: e.id, EncKeyBits: e.bits, PFSGroup: g})
				}
				continue
			}
			for _, h := range hs {
				for _, g := range gs {
					t.Phase2.Proposals = append(t.Phase2.Proposals, policy.Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: e.id, EncKeyBits: e.bits, Integrity: hashes[h].auth, PFSGroup: g})
				}
			}
		}
	default:
		for _, s := range CGWPhase2Proposals {
			p, _ := ParsePhase2Proposal(s)
			t.Phase2.Proposals = append(t.Phase2.Proposals, p)
		}
	}
}

func (b *tb) rekey(t *policy.Tunnel, o *object) {
	m, set := o.duration("rekey_margin", AWSRekeyMargin)
	n := o.line("rekey_margin")
	p2 := t.Phase2.Lifetime
	if b.vgw {
		min := AWSRekeyMarginMin
		if b.lab {
			min = time.Second
		}
		if set && (m < min || m > p2/2) {
			b.d.errf(n, o.p("rekey_margin"), "%s is out of range (allowed: %s to phase 2 lifetime / 2 = %s)", secs(m), secs(min), secs(p2/2))
			m = AWSRekeyMargin
		} else if !set && m > p2/2 {
			b.d.errf(n, o.p("rekey_margin"), "the default %s is more than phase 2 lifetime / 2 (%s): set a smaller rekey_margin", secs(m), secs(p2/2))
		}
		t.RekeyFuzz = int(o.integer("rekey_fuzz", AWSRekeyFuzz, 0, 100))
	} else {
		min := t.Phase2.Lifetime
		if t.Phase1.Lifetime < min {
			min = t.Phase1.Lifetime
		}
		if m >= min {
			what := "set a smaller rekey_margin"
			if set {
				what = ""
			}
			msg := fmt.Sprintf("%s must be less than the phase 1 and phase 2 lifetimes (%s)", secs(m), secs(min))
			if what != "" {
				msg = "the default " + msg + ": " + what
			}
			b.d.errf(n, o.p("rekey_margin"), "%s", msg)
		}
		t.RekeyFuzz = int(o.integer("rekey_fuzz", AWSRekeyFuzz, 0, 10000))
		if m < min && m+m*time.Duration(t.RekeyFuzz)/100 >= min {
			b.d.warnf(o.line("rekey_fuzz"), o.p("rekey_fuzz"), "rekey_margin plus %d%% fuzz can reach the lifetime (%s): a rekey may come too late", t.RekeyFuzz, secs(min))
		}
	}
	t.RekeyMargin = m
}

func (b *tb) dpd(t *policy.Tunnel, o *object) {
	defAction := "clear"
	if !b.vgw {
		defAction = "restart"
	}
	switch o.enum("action", defAction, "clear", "restart", "none") {
	case "restart":
		t.DPDAction = policy.DPDRestart
	case "none":
		t.DPDAction = policy.DPDNone
	default:
		t.DPDAction = policy.DPDClear
	}
	v, set := o.duration("timeout", AWSDPDTimeout)
	t.DPDTimeout = v
	if set {
		n := o.line("timeout")
		switch {
		case b.vgw && !b.lab && v < AWSDPDTimeoutMin:
			b.d.errf(n, o.p("timeout"), "%s is out of range (allowed: >= 30 s; set lab_timers: true for shorter test timers)", v)
		case v == 0 && t.DPDAction != policy.DPDNone:
			b.d.errf(n, o.p("timeout"), "must be positive (or set action: none)")
		}
	}

	// The delay: 10 s, or a third of a timeout shorter than 30 s (as the
	// engine's own default), so that short lab timeouts need no delay.
	delay, dset := o.duration("delay", AWSDPDDelay)
	if !dset && v > 0 {
		delay = min(AWSDPDDelay, v/3)
	}
	t.DPDDelay = delay
	if !dset {
		return
	}
	n := o.line("delay")
	switch {
	case delay == 0:
		b.d.errf(n, o.p("delay"), "must be positive (to turn DPD off set action: none)")
	case v > 0 && delay >= v:
		b.d.errf(n, o.p("delay"), "%s must be less than dpd.timeout (%s)", delay, v)
	case b.vgw && !b.lab && delay != AWSDPDDelay:
		b.d.warnf(n, o.p("delay"), "AWS sends R-U-THERE after 10 s without traffic (its delay is not configurable)")
	}
}
