package gwconfig

import (
	"strings"

	"github.com/vpnlab/vpnlab/ike/policy"
)

// IKE versions (tunnel option ike_versions, AWS's IKEVersions).
//
// AWS permits both versions on a tunnel unless told otherwise: "IKE
// versions ... ikev1, ikev2" is the AWS-provided default (AWS Site-to-Site
// VPN User Guide, VPNTunnels.md). A vgw tunnel without ike_versions
// therefore answers an IKEv1 or an IKEv2 peer; it lists ikev1 first, so
// where it initiates without startup_action start (a DPD restart) it does
// what it did before IKEv2 existed.
//
// A cgw tunnel without ike_versions speaks IKEv1 only: the customer device
// is what its configuration says, and a configuration written before
// IKEv2 existed keeps its meaning (it starts main mode, and a peer's IKEv2
// IKE_SA_INIT finds no IKEv2 there, as with an IKEv1-only device). Write
// ike_versions: [ikev2] (or [ikev2, ikev1]) to make it an IKEv2 device.
var (
	AWSIKEVersions = []policy.Version{policy.IKEv1, policy.IKEv2}
	CGWIKEVersions = []policy.Version{policy.IKEv1}
)

// ikeVersionNames are the spellings ike_versions accepts (AWS's values).
var ikeVersionNames = []string{"ikev1", "ikev2"}

// ParseIKEVersion parses "ikev1" or "ikev2" (case-insensitive).
func ParseIKEVersion(s string) (policy.Version, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "ikev1":
		return policy.IKEv1, true
	case "ikev2":
		return policy.IKEv2, true
	}
	return 0, false
}

// VersionNames returns the names of vs (ikev1, ikev2).
func VersionNames(vs []policy.Version) []string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return s
}

// ikeVersions reads ike_versions: a non-empty list of ikev1/ikev2 without
// repeats (a single scalar or "ikev1,ikev2" also works, as for every list).
// Absent: AWS's both on a vgw, IKEv1 only on a cgw.
func (b *tunnelDecoder) ikeVersions(o *object) []policy.Version {
	items, set := o.list("ike_versions")
	if !set {
		if b.vgw {
			return append([]policy.Version(nil), AWSIKEVersions...)
		}
		return append([]policy.Version(nil), CGWIKEVersions...)
	}
	if len(items) == 0 {
		b.d.errf(o.line("ike_versions"), o.p("ike_versions"), "must not be empty (allowed: %s)", strings.Join(ikeVersionNames, ", "))
	}
	var vs []policy.Version
	for _, it := range items {
		v, ok := ParseIKEVersion(it.s)
		switch {
		case !ok:
			b.d.errf(it.n, o.p("ike_versions"), "%q is not an IKE version (allowed: %s)", it.s, strings.Join(ikeVersionNames, ", "))
		case containsVersion(vs, v):
			b.d.errf(it.n, o.p("ike_versions"), "%s is listed twice", it.s)
		default:
			vs = append(vs, v)
		}
	}
	return vs
}

func containsVersion(vs []policy.Version, v policy.Version) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// awsInitiatorOrder puts IKEv2 first: AWS initiates (startup action start)
// with IKEv2 only ("IKE initiation (startup action) from the AWS side of
// the VPN connection is supported for IKEv2 only", AWS Site-to-Site VPN
// User Guide, initiate-vpn-tunnels.md), and AWS's IKEVersions is a set,
// not an order. As responder the tunnel still answers every listed version.
func awsInitiatorOrder(vs []policy.Version) []policy.Version {
	r := []policy.Version{policy.IKEv2}
	for _, v := range vs {
		if v != policy.IKEv2 {
			r = append(r, v)
		}
	}
	return r
}
