package ike

import (
	"fmt"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// IKEv2 identities (RFC 7296 section 3.5): the ID payload we send (the
// tunnel's LocalIdentity, or its LocalID address when that is unset) and
// the check of the peer's against RemoteIdentity (or RemoteID). The AUTH
// payload signs the ID payload's body (section 2.15), so both sides must
// use the same bytes: v2IDBody of the payload sent.

// localV2ID is our IDi (or IDr with responder).
func (t *tunnel) localV2ID(responder bool) (*wire.ID, error) {
	id := t.cfg.LocalIdentity
	if !id.IsSet() {
		return wire.IDFromAddr(t.cfg.LocalID, responder), nil
	}
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("local identity: %w", err)
	}
	return wireID(id, responder), nil
}

// wireID is the ID payload of a (valid, set) identity.
func wireID(id policy.Identity, responder bool) *wire.ID {
	switch id.Type {
	case policy.IdentityFQDN:
		return &wire.ID{Responder: responder, IDType: wire.IDFQDN, Data: []byte(id.Name)}
	case policy.IdentityKeyID:
		return &wire.ID{Responder: responder, IDType: wire.IDKeyID, Data: append([]byte(nil), id.KeyID...)}
	}
	return wire.IDFromAddr(id.Addr, responder)
}

// peerIdentity reads an ID payload as a policy.Identity; ok is false for
// types other than address, FQDN and KEY_ID, or malformed data.
func peerIdentity(id *wire.ID) (policy.Identity, bool) {
	if a, ok := id.Addr(); ok {
		return policy.Identity{Type: policy.IdentityAddr, Addr: a}, true
	}
	switch id.IDType {
	case wire.IDFQDN:
		return policy.Identity{Type: policy.IdentityFQDN, Name: string(id.Data)}, len(id.Data) > 0
	case wire.IDKeyID:
		return policy.Identity{Type: policy.IdentityKeyID, KeyID: id.Data}, len(id.Data) > 0
	}
	return policy.Identity{}, false
}

// checkPeerIdentity compares the peer's ID payload with the tunnel's
// RemoteIdentity (set): the type and the value must match.
func checkPeerIdentity(id *wire.ID, want policy.Identity) error {
	got, ok := peerIdentity(id)
	if !ok || !got.Equal(want) {
		return fmt.Errorf("peer identity %s is not the configured %s %s", describeID(id), v2IDTypeName(want), want)
	}
	return nil
}

// v2IDTypeName is the ID type an identity is sent as.
func v2IDTypeName(id policy.Identity) string {
	if id.Type == policy.IdentityAddr && id.Addr.Is6() {
		return wire.IDIPv6Addr.String()
	}
	return map[policy.IdentityType]wire.IDType{policy.IdentityAddr: wire.IDIPv4Addr,
		policy.IdentityFQDN: wire.IDFQDN, policy.IdentityKeyID: wire.IDKeyID}[id.Type].String()
}
