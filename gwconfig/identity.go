package gwconfig

import (
	"net/netip"
	"strings"

	"github.com/vpnlab/vpnlab/ike/policy"
)

// identities reads the tunnel's IKE identities, local_id and remote_id
// (after ike_versions): an IP address (default: local_address /
// remote_address), or, for IKEv2 only, an FQDN (vpn.example.com or
// @vpn.example.com) or a KEY_ID (keyid:HEX or @#HEX); remote_id may also be
// any (%any). An address sets LocalID/RemoteID (both IKE versions); an
// FQDN or KEY_ID sets LocalIdentity/RemoteIdentity and is refused on a
// tunnel that allows IKEv1 (whose engine sends ID_IPV4_ADDR only).
func (b *tunnelDecoder) identities(t *policy.Tunnel, o *object) {
	t.LocalID = t.LocalAddr
	if _, ok := o.scalar("local_id"); ok {
		if a, id, ok := b.identity(t, o, "local_id"); id.IsSet() {
			t.LocalIdentity = id
		} else if ok {
			t.LocalID = a
		}
	}
	t.RemoteID = t.RemoteAddr
	if nn, ok := o.scalar("remote_id"); ok {
		if v := strings.ToLower(strings.TrimSpace(nn.Value)); v == "any" || v == "%any" {
			t.RemoteID = netip.Addr{}
		} else if a, id, ok := b.identity(t, o, "remote_id"); id.IsSet() {
			t.RemoteIdentity, t.RemoteID = id, netip.Addr{}
		} else if ok {
			t.RemoteID = a
		}
	}
}

// identity reads one identity option: an address (returned as a, with id
// unset), or an FQDN or KEY_ID (id). ok is false after an error.
func (b *tunnelDecoder) identity(t *policy.Tunnel, o *object, key string) (a netip.Addr, id policy.Identity, ok bool) {
	d := b.d
	n, _ := o.scalar(key)
	v := strings.TrimSpace(n.Value)
	if _, err := netip.ParseAddr(v); err == nil {
		a = b.addr(o, key, false)
		return a, policy.Identity{}, a.IsValid()
	}
	id, err := policy.ParseIdentity(v)
	if err != nil {
		d.errf(n, o.p(key), "%v", err)
		return a, policy.Identity{}, false
	}
	if t.Allows(policy.IKEv1) {
		d.errf(n, o.p(key), "%s (%s) needs IKEv2: the tunnel allows IKEv1, whose identities are addresses (ID_IPV4_ADDR) here; set ike_versions: [ikev2] or use an IP address",
			id, map[policy.IdentityType]string{policy.IdentityFQDN: "ID_FQDN", policy.IdentityKeyID: "ID_KEY_ID"}[id.Type])
		return a, policy.Identity{}, false
	}
	return a, id, true
}
