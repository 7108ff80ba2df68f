package export

import (
	"fmt"
	"strings"

	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// The IKE version of the exported files, per tunnel (Options.IKEVersion).
//
// An AWS tunnel permits ikev1, ikev2 or both (its ike_versions; both by
// default), and AWS "strongly recommends" IKEv2 for customer gateways that
// support it (AWS Site-to-Site VPN User Guide, cgw-best-practice). So by
// default every tunnel that allows IKEv2 gets IKEv2 files and the others
// IKEv1; Options.IKEVersion (vpnlab export --ike-version) asks for one
// version, and a tunnel that does not allow it is an error.
// Options.PreferIKEv1 turns the default around (IKEv1 where allowed):
// vpnlab run's strongSwan customer gateway uses it, so that a scenario's
// AWS side without ike_versions meets the customer it met before IKEv2.

// chooseVersion returns the IKE version of tunnel t's files.
func chooseVersion(t *tunnel, opts Options) (policy.Version, error) {
	v := t.vgw
	switch {
	case opts.IKEVersion != 0 && !v.Allows(opts.IKEVersion):
		return 0, fmt.Errorf("tunnel %s: IKE version %s was asked for, but the vgw tunnel allows %s only (its ike_versions)", t.name, opts.IKEVersion, strings.Join(gwconfig.VersionNames(v.Versions()), ", "))
	case opts.IKEVersion != 0:
		return opts.IKEVersion, nil
	case opts.PreferIKEv1 && v.Allows(policy.IKEv1):
		return policy.IKEv1, nil
	case v.Allows(policy.IKEv2):
		return policy.IKEv2, nil
	}
	return policy.IKEv1, nil
}

// checkIKEVersion checks Options.IKEVersion.
func checkIKEVersion(v policy.Version) error {
	switch v {
	case 0, policy.IKEv1, policy.IKEv2:
		return nil
	}
	return fmt.Errorf("IKE version %s: want ikev1 or ikev2", v)
}

// phase1For returns the vgw's phase 1 proposals usable with the tunnel's
// exported version: with IKEv1 not the AES-GCM ones (RFC 5282 defines
// AES-GCM for the IKEv2 SA only; AWS offers it with IKEv2).
func (t *tunnel) phase1For() []policy.Phase1Proposal {
	var ps []policy.Phase1Proposal
	for _, p := range t.vgw.Phase1.Proposals {
		if p.GCM && t.version != policy.IKEv2 {
			continue
		}
		ps = append(ps, p)
	}
	return ps
}

// versionWhy says why the tunnel's files use their version, for comments.
func (t *tunnel) versionWhy(opts Options) string {
	allowed := strings.Join(gwconfig.VersionNames(t.vgw.Versions()), ", ")
	switch {
	case opts.IKEVersion != 0:
		return fmt.Sprintf("%s as asked (--ike-version); the AWS tunnel allows %s", t.version, allowed)
	case len(t.vgw.Versions()) == 1:
		return fmt.Sprintf("%s: the only version the AWS tunnel allows", t.version)
	case t.version == policy.IKEv2:
		return fmt.Sprintf("IKEv2, which AWS recommends; the AWS tunnel allows %s (--ike-version ikev1 for IKEv1)", allowed)
	}
	return fmt.Sprintf("IKEv1, preferred; the AWS tunnel allows %s", allowed)
}

// awsStarts reports whether AWS initiates the tunnel too (startup action
// start, which AWS does with IKEv2 only).
func (t *tunnel) awsStarts() bool {
	return t.vgw.StartupAction == policy.StartupStart && t.version == policy.IKEv2
}

// startComment explains the customer gateway's own start.
func (t *tunnel) startComment() string {
	switch {
	case t.awsStarts():
		return "AWS initiates too (startup action start); either side may bring the tunnel up"
	case t.version == policy.IKEv1:
		return "AWS IKEv1 tunnels wait for the customer gateway"
	}
	return "AWS waits for the customer gateway (startup action add)"
}
