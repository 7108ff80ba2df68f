package dh

import (
	"fmt"
	"io"
	"math/big"
)

// modpParam is the transcribed form of one MODP group (see params.go).
type modpParam struct {
	id       uint16
	name     string
	primeLen int
	p, g, q  string // hex; q is empty for the safe-prime groups
}

// Private exponent lengths (bits) for the safe-prime groups 2, 5, 14-18.
//
// Like strongSwan's "exp_len" table, a short random exponent is used instead
// of one as long as the prime: discrete-log attacks on a safe prime's
// q=(p-1)/2 subgroup cost about 2^(bits/2) for an exponent of "bits" bits, so
// an exponent of twice the group's symmetric-equivalent strength keeps the
// group's strength. Strength estimates are NIST SP 800-57 part 1 (1024->80,
// 2048->112, 3072->128) and interpolations for the other sizes (1536->96,
// 4096->152, 6144->176, 8192->200, in line with RFC 3526's ranges). The rule:
//
//	bits = max(256, roundUp64(2 * strength))
//
// giving 256 bits for groups 2, 5, 14 and 15, 320 for 16, 384 for 17 and 448
// for 18. The top bit of the exponent is always set, so its length is exact.
//
// Groups 22-24 (RFC 5114) have a small prime-order subgroup; their exponent is
// uniform in [1, q-1] instead.
var modpExpBits = map[uint16]int{
	2:  256,
	5:  256,
	14: 256,
	15: 256,
	16: 320,
	17: 384,
	18: 448,
}

type modpGroup struct {
	id       uint16
	name     string
	primeLen int
	p        *big.Int
	pMinus1  *big.Int
	g        *big.Int
	q        *big.Int // nil for safe primes
	expBits  int      // safe primes only
}

func mustHex(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("dh: bad hex constant " + s)
	}
	return v
}

func newMODP(pp *modpParam) *modpGroup {
	g := &modpGroup{
		id:       pp.id,
		name:     pp.name,
		primeLen: pp.primeLen,
		p:        mustHex(pp.p),
		g:        mustHex(pp.g),
	}
	if g.p.BitLen() != 8*g.primeLen {
		panic(fmt.Sprintf("dh: group %d prime is %d bits, want %d", g.id, g.p.BitLen(), 8*g.primeLen))
	}
	g.pMinus1 = new(big.Int).Sub(g.p, big.NewInt(1))
	if pp.q != "" {
		g.q = mustHex(pp.q)
	} else {
		g.expBits = modpExpBits[g.id]
		if g.expBits == 0 {
			panic(fmt.Sprintf("dh: no exponent length for group %d", g.id))
		}
	}
	return g
}

func (g *modpGroup) ID() uint16     { return g.id }
func (g *modpGroup) Name() string   { return g.name }
func (g *modpGroup) PublicLen() int { return g.primeLen }

var one = big.NewInt(1)

func (g *modpGroup) Generate(rand io.Reader) (Key, error) {
	var x *big.Int
	if g.q != nil {
		// Uniform in [1, q-1] (RFC 5114 section 2 / NIST SP 800-56A).
		qm1 := new(big.Int).Sub(g.q, one)
		r, err := randInt(rand, qm1)
		if err != nil {
			return nil, err
		}
		x = r.Add(r, one)
	} else {
		buf := make([]byte, (g.expBits+7)/8)
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("dh: reading random exponent: %w", err)
		}
		x = new(big.Int).SetBytes(buf)
		// Exactly expBits long: clear excess bits, set the top bit.
		x.SetBit(x, g.expBits-1, 1)
		for i := g.expBits; i < 8*len(buf); i++ {
			x.SetBit(x, i, 0)
		}
	}
	return g.newKey(x), nil
}

// randInt returns a uniform value in [0, max) by rejection sampling.
func randInt(rand io.Reader, max *big.Int) (*big.Int, error) {
	bits := max.BitLen()
	buf := make([]byte, (bits+7)/8)
	excess := uint(8*len(buf) - bits)
	for range 1000 {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("dh: reading random exponent: %w", err)
		}
		buf[0] &= byte(0xff >> excess)
		v := new(big.Int).SetBytes(buf)
		if v.Cmp(max) < 0 {
			return v, nil
		}
	}
	return nil, fmt.Errorf("dh: random source keeps producing out-of-range values")
}

func (g *modpGroup) KeyFromPrivate(priv []byte) (Key, error) {
	x := new(big.Int).SetBytes(priv)
	if g.q != nil {
		// [1, q-1]
		if x.Sign() <= 0 || x.Cmp(g.q) >= 0 {
			return nil, fmt.Errorf("%w: group %d (%s) exponent must be in [1, q-1]", ErrInvalidPrivate, g.id, g.name)
		}
	} else if x.Cmp(one) <= 0 || x.Cmp(g.pMinus1) >= 0 {
		return nil, fmt.Errorf("%w: group %d (%s) exponent must be in [2, p-2]", ErrInvalidPrivate, g.id, g.name)
	}
	return g.newKey(x), nil
}

func (g *modpGroup) newKey(x *big.Int) *modpKey {
	y := new(big.Int).Exp(g.g, x, g.p)
	return &modpKey{g: g, x: x, pub: leftPad(y.Bytes(), g.primeLen)}
}

type modpKey struct {
	g   *modpGroup
	x   *big.Int
	pub []byte
}

func (k *modpKey) Public() []byte { return append([]byte(nil), k.pub...) }

func (k *modpKey) SharedSecret(peer []byte) ([]byte, error) {
	g := k.g
	if len(peer) != g.primeLen {
		return nil, fmt.Errorf("%w: group %d (%s) KE data is %d bytes, want %d", ErrInvalidPublic, g.id, g.name, len(peer), g.primeLen)
	}
	y := new(big.Int).SetBytes(peer)
	// 1 < y < p-1 rejects 0, 1, p-1 (order 1 and 2 elements) and y >= p.
	if y.Cmp(one) <= 0 || y.Cmp(g.pMinus1) >= 0 {
		return nil, fmt.Errorf("%w: group %d (%s) value out of range (need 1 < y < p-1)", ErrInvalidPublic, g.id, g.name)
	}
	if g.q != nil {
		// RFC 5114 section 4 / SP 800-56A: y^q mod p must be 1.
		if new(big.Int).Exp(y, g.q, g.p).Cmp(one) != 0 {
			return nil, fmt.Errorf("%w: group %d (%s) value is not in the prime-order subgroup", ErrInvalidPublic, g.id, g.name)
		}
	}
	z := new(big.Int).Exp(y, k.x, g.p)
	if z.Cmp(one) == 0 {
		return nil, fmt.Errorf("%w: group %d (%s) shared secret is 1", ErrInvalidPublic, g.id, g.name)
	}
	return leftPad(z.Bytes(), g.primeLen), nil
}
