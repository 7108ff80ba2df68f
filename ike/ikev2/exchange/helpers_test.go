package exchange

import (
	"errors"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// Transform shorthands.
var (
	cbc128  = wire.Encr(wire.EncrAESCBC, 128)
	cbc256  = wire.Encr(wire.EncrAESCBC, 256)
	cbc192  = wire.Encr(wire.EncrAESCBC, 192)
	gcm128  = wire.Encr(wire.EncrAESGCM16, 128)
	gcm256  = wire.Encr(wire.EncrAESGCM16, 256)
	des3    = wire.Encr(3, 0) // ENCR_3DES
	sha1    = wire.Integ(wire.IntegHMACSHA196)
	sha2i   = wire.Integ(wire.IntegHMACSHA2256128)
	sha512  = wire.Integ(wire.IntegHMACSHA2512256)
	inone   = wire.Integ(wire.IntegNone)
	prf1    = wire.PRF(wire.PRFHMACSHA1)
	prf256  = wire.PRF(wire.PRFHMACSHA2256)
	prf384  = wire.PRF(wire.PRFHMACSHA2384)
	dh2     = wire.DH(wire.DHModp1024)
	dh5     = wire.DH(wire.DHModp1536)
	dh14    = wire.DH(wire.DHModp2048)
	dh19    = wire.DH(wire.DHECP256)
	dh20    = wire.DH(wire.DHECP384)
	dhnone  = wire.DH(wire.DHNone)
	esnNo   = wire.ESNTransform(wire.ESNNo)
	esnYes  = wire.ESNTransform(wire.ESNYes)
	espSPI  = []byte{0xc0, 0x01, 0x02, 0x03}
	ikeSPI8 = []byte{1, 2, 3, 4, 5, 6, 7, 8}
)

func ike(ts ...wire.Transform) wire.Proposal {
	return wire.Proposal{Protocol: wire.ProtoIKE, Transforms: ts}
}

func esp(ts ...wire.Transform) wire.Proposal {
	return wire.Proposal{Protocol: wire.ProtoESP, SPI: espSPI, Transforms: ts}
}

// sa numbers the proposals 1, 2, ... as the wire requires.
func sa(ps ...wire.Proposal) *wire.SA {
	for i := range ps {
		if ps[i].Number == 0 {
			ps[i].Number = uint8(i + 1)
		}
	}
	return &wire.SA{Proposals: ps}
}

// notifyOf returns the notify type of an *Error (0 for nil, fatal for
// another error type).
func notifyOf(t *testing.T, err error) wire.NotifyType {
	t.Helper()
	if err == nil {
		return 0
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is no *Error", err)
	}
	return e.Notify
}
