package dh

import (
	"crypto/ecdh"
	"fmt"
	"io"
)

// ecpGroup is an RFC 5903 ECP group backed by crypto/ecdh.
//
// RFC 5903 section 7: the KE payload data is x|y, each coordinate a
// fixed-length big-endian octet string (no 0x04 point-format prefix); the
// shared secret g^ir is the x coordinate of the shared point only, fixed
// length.
type ecpGroup struct {
	id       uint16
	name     string
	curve    ecdh.Curve
	coordLen int
}

func ecpGroups() []*ecpGroup {
	return []*ecpGroup{
		// RFC 5903 section 3.1 / RFC 5114 section 2.6: 256-bit random ECP group (P-256).
		{id: 19, name: "ecp256", curve: ecdh.P256(), coordLen: 32},
		// RFC 5903 section 3.2 / RFC 5114 section 2.7: 384-bit random ECP group (P-384).
		{id: 20, name: "ecp384", curve: ecdh.P384(), coordLen: 48},
		// RFC 5903 section 3.3 / RFC 5114 section 2.8: 521-bit random ECP group (P-521).
		{id: 21, name: "ecp521", curve: ecdh.P521(), coordLen: 66},
	}
}

func (g *ecpGroup) ID() uint16     { return g.id }
func (g *ecpGroup) Name() string   { return g.name }
func (g *ecpGroup) PublicLen() int { return 2 * g.coordLen }

func (g *ecpGroup) Generate(rand io.Reader) (Key, error) {
	priv, err := g.curve.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("dh: group %d (%s): %w", g.id, g.name, err)
	}
	return g.newKey(priv), nil
}

func (g *ecpGroup) KeyFromPrivate(priv []byte) (Key, error) {
	// Accept scalars printed without leading zero bytes.
	if len(priv) > g.coordLen {
		return nil, fmt.Errorf("%w: group %d (%s) scalar is %d bytes, max %d", ErrInvalidPrivate, g.id, g.name, len(priv), g.coordLen)
	}
	k, err := g.curve.NewPrivateKey(leftPad(priv, g.coordLen))
	if err != nil {
		return nil, fmt.Errorf("%w: group %d (%s): %v", ErrInvalidPrivate, g.id, g.name, err)
	}
	return g.newKey(k), nil
}

func (g *ecpGroup) newKey(k *ecdh.PrivateKey) *ecpKey {
	// Bytes() of a NIST curve public key is the uncompressed point 0x04|x|y.
	raw := k.PublicKey().Bytes()
	return &ecpKey{g: g, priv: k, pub: raw[1:]}
}

type ecpKey struct {
	g    *ecpGroup
	priv *ecdh.PrivateKey
	pub  []byte
}

func (k *ecpKey) Public() []byte { return append([]byte(nil), k.pub...) }

func (k *ecpKey) SharedSecret(peer []byte) ([]byte, error) {
	g := k.g
	if len(peer) != g.PublicLen() {
		return nil, fmt.Errorf("%w: group %d (%s) KE data is %d bytes, want %d (x|y)", ErrInvalidPublic, g.id, g.name, len(peer), g.PublicLen())
	}
	uncompressed := make([]byte, 1+len(peer))
	uncompressed[0] = 4
	copy(uncompressed[1:], peer)
	// NewPublicKey checks coordinates are < p and the point is on the curve
	// (and not the point at infinity).
	pub, err := g.curve.NewPublicKey(uncompressed)
	if err != nil {
		return nil, fmt.Errorf("%w: group %d (%s): %v", ErrInvalidPublic, g.id, g.name, err)
	}
	z, err := k.priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: group %d (%s): %v", ErrInvalidPublic, g.id, g.name, err)
	}
	return z, nil
}
