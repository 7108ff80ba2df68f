package gwconfig

import (
	"crypto"
	"reflect"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/policy"
)

var (
	v1   = []policy.Version{policy.IKEv1}
	v2   = []policy.Version{policy.IKEv2}
	v12  = []policy.Version{policy.IKEv1, policy.IKEv2}
	v21  = []policy.Version{policy.IKEv2, policy.IKEv1}
	cbc  = func(p policy.Phase1Proposal) bool { return !p.GCM }
	none = func(ps []policy.Phase1Proposal, f func(policy.Phase1Proposal) bool) bool {
		for _, p := range ps {
			if !f(p) {
				return false
			}
		}
		return true
	}
)

func TestIKEVersionsDefaultsAndForms(t *testing.T) {
	cases := []struct {
		name    string
		profile Profile
		extra   string
		want    []policy.Version
	}{
		{"vgw default: AWS's both", VGW, "", v12},
		{"cgw default: IKEv1 only", CGW, "", v1},
		{"list", CGW, "    ike_versions: [ikev2]\n", v2},
		{"order kept", CGW, "    ike_versions: [ikev2, ikev1]\n", v21},
		{"scalar", VGW, "    ike_versions: ikev2\n", v2},
		{"comma scalar, any case", VGW, "    ike_versions: IKEv1,IKEV2\n", v12},
		{"vgw start puts IKEv2 first", VGW, "    startup_action: start\n", v21},
		{"vgw start, explicit order", VGW, "    ike_versions: [ikev1, ikev2]\n    startup_action: start\n", v21},
		{"vgw start, IKEv2 only", VGW, "    ike_versions: [ikev2]\n    startup_action: start\n", v2},
		{"cgw start keeps the order", CGW, "    ike_versions: [ikev1, ikev2]\n    startup_action: start\n", v12},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.profile, minimal(tc.extra))
			tn := &c.IKE.Tunnels[0]
			if !reflect.DeepEqual(tn.IKEVersions, tc.want) {
				t.Errorf("IKEVersions = %v, want %v", tn.IKEVersions, tc.want)
			}
			if tn.InitiatorVersion() != tc.want[0] {
				t.Errorf("InitiatorVersion = %v", tn.InitiatorVersion())
			}
			if len(c.Warnings) != 0 {
				t.Errorf("warnings: %v", c.Warnings)
			}
			if w := "ike_versions:     " + strings.Join(VersionNames(tc.want), ", ") + " (initiates with " + tc.want[0].String() + ")"; !strings.Contains(c.Summary(), w) {
				t.Errorf("Summary lacks %q", w)
			}
			if w := " ike_versions=" + strings.Join(VersionNames(tc.want), ",") + " "; !strings.Contains(DescribeTunnel(tn), w) {
				t.Errorf("DescribeTunnel lacks %q", w)
			}
		})
	}
}

// TestStartupStartVGW: AWS initiates only with IKEv2, so a vgw tunnel with
// startup_action start is an error without ikev2 and fine with it (no
// longer the old warning).
func TestStartupStartVGW(t *testing.T) {
	c := mustParse(t, VGW, minimal("    startup_action: start\n"))
	if tn := c.IKE.Tunnels[0]; tn.StartupAction != policy.StartupStart || tn.InitiatorVersion() != policy.IKEv2 || !tn.Allows(policy.IKEv1) {
		t.Errorf("start: %v %v", tn.StartupAction, tn.IKEVersions)
	}
	wantErr(t, VGW, minimal("    ike_versions: ikev1\n    startup_action: start\n"), "startup_action: start needs IKEv2")
	// A cgw may initiate with either version.
	c = mustParse(t, CGW, minimal("    startup_action: start\n"))
	if tn := c.IKE.Tunnels[0]; tn.StartupAction != policy.StartupStart || tn.InitiatorVersion() != policy.IKEv1 {
		t.Errorf("cgw start: %v %v", tn.StartupAction, tn.IKEVersions)
	}
}

// TestPhase1GCMFollowsVersions: the AWS default phase 1 list has AES-GCM
// only where the tunnel allows IKEv2; with GCM the integrity list gives
// the PRF.
func TestPhase1GCMFollowsVersions(t *testing.T) {
	c := mustParse(t, VGW, minimal("    ike_versions: [ikev1]\n"))
	ps := c.IKE.Tunnels[0].Phase1.Proposals
	if len(ps) != 96 || !none(ps, cbc) {
		t.Errorf("IKEv1-only vgw: %d proposals, want the 96 AES-CBC ones: %v", len(ps), Phase1Names(ps))
	}
	c = mustParse(t, VGW, minimal("    ike_versions: [ikev2]\n"))
	if ps := c.IKE.Tunnels[0].Phase1.Proposals; len(ps) != 192 || none(ps, cbc) {
		t.Errorf("IKEv2 vgw: %d proposals", len(ps))
	}

	c = mustParse(t, VGW, minimal("    ike_versions: [ikev2]\n    phase1:\n      encryption: [AES256-GCM-16, AES128]\n      integrity: [SHA2-384, SHA1]\n      dh_groups: [20]\n"))
	got := strings.Join(Phase1Names(c.IKE.Tunnels[0].Phase1.Proposals), " ")
	want := "aes256gcm16-prfsha384-ecp384 aes256gcm16-prfsha1-ecp384 aes128-sha384-ecp384 aes128-sha1-ecp384"
	if got != want {
		t.Errorf("lists:\n got %s\nwant %s", got, want)
	}
	p := c.IKE.Tunnels[0].Phase1.Proposals[0]
	if p != (policy.Phase1Proposal{EncKeyBits: 256, GCM: true, Hash: crypto.SHA384, DHGroup: 20}) {
		t.Errorf("first: %+v", p)
	}

	c = mustParse(t, CGW, minimal("    ike_versions: [ikev2, ikev1]\n    phase1:\n      proposals: [aes192gcm16-prfsha512-ecp521, aes128-sha1-modp2048]\n"))
	if got := strings.Join(Phase1Names(c.IKE.Tunnels[0].Phase1.Proposals), " "); got != "aes192gcm16-prfsha512-ecp521 aes128-sha1-modp2048" {
		t.Errorf("cgw proposals: %s", got)
	}
	// The cgw's own default proposal works with either version.
	c = mustParse(t, CGW, minimal("    ike_versions: [ikev2]\n"))
	if got := strings.Join(Phase1Names(c.IKE.Tunnels[0].Phase1.Proposals), " "); got != "aes128-sha1-modp2048" {
		t.Errorf("cgw default: %s", got)
	}
}

func TestPhase1GCMNamesRoundTrip(t *testing.T) {
	for _, e := range []string{"aes128gcm16", "aes192gcm16", "aes256gcm16"} {
		for _, h := range []string{"sha1", "sha256", "sha384", "sha512"} {
			for _, g := range dhGroups {
				s := e + "-prf" + h + "-" + g.name
				p, err := ParsePhase1Proposal(s)
				if err != nil {
					t.Fatalf("%s: %v", s, err)
				}
				if !p.GCM || FormatPhase1(p) != s || p.String() != s {
					t.Errorf("%s: %+v formats as %q / %q", s, p, FormatPhase1(p), p.String())
				}
			}
		}
	}
	p, err := ParsePhase1Proposal("AESGCM16-PRFSHA256-ECP256")
	if err != nil || p != (policy.Phase1Proposal{EncKeyBits: 128, GCM: true, Hash: crypto.SHA256, DHGroup: 19}) {
		t.Errorf("alias: %+v %v", p, err)
	}
}
