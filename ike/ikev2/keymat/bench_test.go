package keymat_test

import (
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
)

// BenchmarkSKEYSEEDAndDKM: SKEYSEED and the seven IKE SA keys (AES-CBC-256
// and the HMAC integrity of the prf's hash) for each prf, MODP-2048-sized
// g^ir and 32-byte nonces, as one IKE_SA_INIT costs.
func BenchmarkSKEYSEEDAndDKM(b *testing.B) {
	for _, tc := range []struct {
		name  string
		prf   uint16
		integ uint16
	}{
		{"sha1", keymat.PRFHMACSHA1, keymat.AuthHMACSHA196},
		{"sha256", keymat.PRFHMACSHA2256, keymat.AuthHMACSHA2256128},
		{"sha384", keymat.PRFHMACSHA2384, keymat.AuthHMACSHA2384192},
		{"sha512", keymat.PRFHMACSHA2512, keymat.AuthHMACSHA2512256},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := keymat.Suite{PRF: mustPRF(b, tc.prf), Encr: mustEncr(b, keymat.EncrAESCBC, 256), Integ: mustInteg(b, tc.integ)}
			ni, nr, gir := make([]byte, 32), make([]byte, 32), make([]byte, 256)
			spii, spir := make([]byte, 8), make([]byte, 8)
			for i := range gir {
				gir[i] = byte(i)
			}
			b.ReportAllocs()
			for b.Loop() {
				seed, err := keymat.SKEYSEED(s.PRF, ni, nr, gir)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := keymat.DeriveIKE(s, seed, ni, nr, spii, spir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
