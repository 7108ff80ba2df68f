package ike

import (
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// A tunnel that allows both versions may list AES-GCM phase 1 proposals
// (IKEv2 only): IKEv1's SA payload leaves them out instead of offering
// them as AES-CBC transforms.
func TestIKEv1SkipsGCMPhase1Proposals(t *testing.T) {
	ps := []Phase1Proposal{
		{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 14},
		{EncKeyBits: 128, Hash: crypto.SHA256, DHGroup: 14, GCM: true},
		{EncKeyBits: 256, Hash: crypto.SHA384, DHGroup: 20, GCM: true},
		{EncKeyBits: 256, Hash: crypto.SHA384, DHGroup: 20},
	}
	sa := phase1SA(ps, time.Hour, 0)
	trs := sa.Proposals[0].Transforms
	if len(trs) != 2 {
		t.Fatalf("IKEv1 offers %d transforms, want the 2 AES-CBC ones", len(trs))
	}
	for i, want := range []uint16{128, 256} {
		for _, a := range trs[i].Attributes {
			if a.Type == isakmp.AttrKeyLength && a.Value != want {
				t.Errorf("transform %d: key length %d, want %d", i+1, a.Value, want)
			}
		}
	}
	if got := phase1SA(ps, time.Hour, 20).Proposals[0].Transforms; len(got) != 1 {
		t.Errorf("aggressive mode with group 20 offers %d transforms, want 1", len(got))
	}
}

func TestGCMOnlyPhase1NeedsIKEv2(t *testing.T) {
	gcm := []Phase1Proposal{{EncKeyBits: 256, Hash: crypto.SHA256, DHGroup: 14, GCM: true}}
	for _, c := range []struct {
		versions []policy.Version
		ok       bool
	}{
		{nil, false},
		{[]policy.Version{policy.IKEv1}, false},
		{[]policy.Version{policy.IKEv1, policy.IKEv2}, false},
		{[]policy.Version{policy.IKEv2}, true},
	} {
		tc := baseTunnel(harnessC, harnessV, Ports{})
		tc.Phase1.Proposals, tc.IKEVersions = gcm, c.versions
		err := validateTunnel(&tc)
		if c.ok && err != nil {
			t.Errorf("versions %v: %v", c.versions, err)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), "IKEv2 only")) {
			t.Errorf("versions %v: error %v, want one that says AES-GCM in phase 1 is IKEv2 only", c.versions, err)
		}
	}
}
