package keymat_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// A charonCase is one IKEv2 connection between two charons and the
// transforms we expect it to negotiate.
type charonCase struct {
	name, ike, esp string
	proposal       string // as swanctl --list-sas shows the IKE SA's
	suite          keymat.Suite
	child          keymat.Suite // Encr and Integ of the ESP SAs
}

const charonPSK = "v2kdf-charon-psk"

// swanctlIKEv2 is a swanctl.conf with IKEv2 PSK connections, one per case,
// each with a tunnel-mode CHILD_SA "NAME-net" whose ESP proposal has a DH
// group, so that a CHILD_SA rekey (CREATE_CHILD_SA) uses PFS. The first
// CHILD_SA (in IKE_AUTH) never has its own DH.
func swanctlIKEv2(local, remote string, cases []charonCase) string {
	var b strings.Builder
	b.WriteString("connections {\n")
	for _, c := range cases {
		fmt.Fprintf(&b, `  %[1]s {
    version = 2
    local_addrs = %[2]s
    remote_addrs = %[3]s
    proposals = %[4]s
    encap = yes
    reauth_time = 0s
    rekey_time = 0s
    local {
      auth = psk
      id = %[2]s
    }
    remote {
      auth = psk
      id = %[3]s
    }
    children {
      %[1]s-net {
        local_ts = 0.0.0.0/0
        remote_ts = 0.0.0.0/0
        mode = tunnel
        esp_proposals = %[5]s
        rekey_time = 0s
      }
    }
  }
`, c.name, local, remote, c.ike, c.esp)
	}
	fmt.Fprintf(&b, "}\nsecrets {\n  ike-1 {\n    id-1 = %s\n    id-2 = %s\n    secret = %q\n  }\n}\n", local, remote, charonPSK)
	return b.String()
}

func charonCases(t *testing.T) []charonCase {
	s := func(prf, encr uint16, bits int, integ uint16) keymat.Suite {
		k := keymat.Suite{Encr: mustEncr(t, encr, bits), Integ: mustInteg(t, integ)}
		if prf != 0 { // 0: an ESP transform set, keyed with the IKE SA's prf
			k.PRF = mustPRF(t, prf)
		}
		return k
	}
	return []charonCase{
		{"cbc", "aes256-sha256-modp2048", "aes128-sha256-modp2048", "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
			s(keymat.PRFHMACSHA2256, keymat.EncrAESCBC, 256, keymat.AuthHMACSHA2256128),
			s(0, keymat.EncrAESCBC, 128, keymat.AuthHMACSHA2256128)},
		{"gcm", "aes128gcm16-prfsha384-ecp256", "aes256gcm16-ecp256", "AES_GCM_16-128/PRF_HMAC_SHA2_384/ECP_256",
			s(keymat.PRFHMACSHA2384, keymat.EncrAESGCM16, 128, keymat.AuthNone),
			s(0, keymat.EncrAESGCM16, 256, keymat.AuthNone)},
		{"sha512", "aes128-sha512-prfsha512-modp3072", "aes256-sha384-modp2048", "AES_CBC-128/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/MODP_3072",
			s(keymat.PRFHMACSHA2512, keymat.EncrAESCBC, 128, keymat.AuthHMACSHA2512256),
			s(0, keymat.EncrAESCBC, 256, keymat.AuthHMACSHA2384192)},
	}
}

// TestCharonKeys runs IKEv2 between two strongSwan charons in namespaces
// (IKE_SA_INIT + IKE_AUTH with PSK, a CHILD_SA rekey with PFS, an IKE SA
// rekey) for three transform sets, captures IKE_SA_INIT and reads charon's
// level-4 log of the initiator, which prints the DH secrets, SKEYSEED, the
// seven SK_*, the AUTH inputs and outputs and the ESP keys. Our derivation
// from the captured nonces and SPIs and charon's g^ir must give charon's
// values byte for byte.
func TestCharonKeys(t *testing.T) {
	if err := strongswan.Available(nil); err != nil {
		t.Skip(err)
	}
	_, cgwNS, vgwNS := netlab.NewPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	capture, err := startCapture(cgwNS, "wan0")
	if err != nil {
		t.Fatal(err)
	}
	vgw, err := strongswan.Start(ctx, vgwNS, strongswan.Options{LogLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	cgw, err := strongswan.Start(ctx, cgwNS, strongswan.Options{LogLevel: 4, KeyLog: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- vgw charon.log (tail):\n%s\n(cgw log: %s)", vgw.LogTail(40), cgw.LogPath())
		}
	})
	cases := charonCases(t)
	for _, x := range []struct {
		c    *strongswan.Charon
		l, r string
	}{{vgw, "10.99.0.1", "10.99.0.2"}, {cgw, "10.99.0.2", "10.99.0.1"}} {
		f := filepath.Join(x.c.Dir(), "swanctl-ikev2.conf")
		if err := os.WriteFile(f, []byte(swanctlIKEv2(x.l, x.r, cases)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := x.c.LoadFile(ctx, f); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	spis := map[string][2][]byte{} // case -> SPIi, SPIr of the first IKE SA
	rekeyed := map[string][2][]byte{}
	for _, c := range cases {
		first, next, err := runCharonCase(ctx, cgw, vgw, c)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		spis[c.name], rekeyed[c.name] = first, next
	}
	msgs := capture.stop()
	if err := cgw.Stop(); err != nil {
		t.Errorf("stop cgw: %v", err)
	}
	_ = vgw.Stop()
	dumps, err := parseCharonLog(cgw.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x, err := findIKESAInit(msgs, spis[c.name][0], spis[c.name][1])
			if err != nil {
				t.Fatal(err)
			}
			checkCharonCase(t, c, x, rekeyed[c.name], newCharonValues(dumps, c.name))
		})
	}
}

// runCharonCase establishes case c from cgw, rekeys its CHILD_SA (PFS) and
// then its IKE SA, and returns the SPIs of the first and of the rekeyed
// IKE SA.
func runCharonCase(ctx context.Context, cgw, vgw *strongswan.Charon, c charonCase) (first, next [2][]byte, err error) {
	if out, err := cgw.Initiate(ctx, c.name+"-net", 15*time.Second); err != nil {
		return first, next, fmt.Errorf("initiate: %v\n%s", err, out)
	}
	sa, _, err := cgw.WaitEstablished(ctx, c.name, c.name+"-net", 10*time.Second)
	if err != nil {
		return first, next, err
	}
	if sa.Version != 2 || sa.Proposal() != c.proposal {
		return first, next, fmt.Errorf("IKE version %d proposal %q, want 2 %q", sa.Version, sa.Proposal(), c.proposal)
	}
	if first, err = saSPIs(sa); err != nil {
		return first, next, err
	}
	seedRE := regexp.MustCompile(`\[CHD\] <` + regexp.QuoteMeta(c.name) + `\|\d+> seed =>`)
	seeds := func() int { b, _ := os.ReadFile(cgw.LogPath()); return len(seedRE.FindAll(b, -1)) }
	before := seeds()
	if out, err := cgw.Swanctl(ctx, "--rekey", "--child", c.name+"-net"); err != nil {
		return first, next, fmt.Errorf("%v\n%s", err, out)
	}
	if err := waitLog(ctx, func() bool { return seeds() > before }); err != nil {
		return first, next, fmt.Errorf("CHILD_SA rekey: %v", err)
	}
	if out, err := cgw.Swanctl(ctx, "--rekey", "--ike", c.name); err != nil {
		return first, next, fmt.Errorf("%v\n%s", err, out)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		sas, err := cgw.ListSAs(ctx)
		if err != nil {
			return first, next, err
		}
		for _, s := range sas {
			if s.Name == c.name && s.State == "ESTABLISHED" && s.InitiatorSPI != hex.EncodeToString(first[0]) {
				next, err = saSPIs(s)
				return first, next, err
			}
		}
		if time.Now().After(deadline) {
			return first, next, fmt.Errorf("no rekeyed IKE SA after 10 s: %s", strongswan.Summary(sas))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func saSPIs(sa strongswan.IKESA) ([2][]byte, error) {
	i, err1 := hex.DecodeString(sa.InitiatorSPI)
	r, err2 := hex.DecodeString(sa.ResponderSPI)
	if err1 != nil || err2 != nil || len(i) != 8 || len(r) != 8 {
		return [2][]byte{}, fmt.Errorf("bad SPIs %q %q", sa.InitiatorSPI, sa.ResponderSPI)
	}
	return [2][]byte{i, r}, nil
}

func waitLog(ctx context.Context, cond func() bool) error {
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			return fmt.Errorf("not in charon's log after 10 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
