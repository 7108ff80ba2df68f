package exchange

import (
	"net/netip"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// awsOffer is what a customer gateway configured with all of AWS's phase 1
// options proposes: one CBC proposal and one GCM proposal, each with every
// algorithm and group.
func awsOffer() *wire.SA {
	var dhs []wire.Transform
	for _, g := range AWSIKE().DH {
		dhs = append(dhs, wire.DH(g))
	}
	cbc := append([]wire.Transform{cbc128, cbc256, sha1, sha2i, wire.Integ(wire.IntegHMACSHA2384192), sha512,
		prf1, prf256, prf384, wire.PRF(wire.PRFHMACSHA2512)}, dhs...)
	gcm := append([]wire.Transform{gcm128, gcm256, prf1, prf256, prf384, wire.PRF(wire.PRFHMACSHA2512)}, dhs...)
	return sa(ike(cbc...), ike(gcm...))
}

func BenchmarkSelectAWS(b *testing.B) {
	offer, pol := awsOffer(), AWSIKE()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Select(offer, pol, Options{Rule: LowestValue, KEGroup: wire.DHECP256}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNarrow(b *testing.B) {
	tsi := tsOf(false, rng("10.1.2.3", "10.1.2.3", 6, 443, 443), pfx("10.1.0.0/16"), pfx("10.5.0.0/16"))
	tsr := tsOf(true, rng("192.0.2.7", "192.0.2.7", 6, 80, 80), pfx("0.0.0.0/0"))
	local := []wire.Selector{pfx("192.0.2.0/24"), pfx("198.51.100.0/24")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Narrow(tsi, tsr, AWSSelectors(), local); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCookie(b *testing.B) {
	c, _ := NewCookies(CookieConfig{})
	ni, ip, spi := make([]byte, 32), netip.MustParseAddr("192.0.2.1"), [8]byte{1}
	ck, _ := c.Make(ni, ip, spi)
	b.ReportAllocs()
	for b.Loop() {
		if !c.Valid(ck, ni, ip, spi) {
			b.Fatal("invalid")
		}
	}
}
