//go:build amd64 && !purego

package esp

import (
	"crypto/cipher"

	"golang.org/x/sys/cpu"
)

// AES-CBC with AES-NI in one assembly loop per call (cbc_amd64.s). Go's
// crypto/cipher runs CBC on amd64 block by block through the generic code
// (one call into the AES assembly and one XOR call per 16 bytes); profiles
// of the gateways under load showed that overhead as the largest part of the
// AES-CBC cost. Encryption is serial by nature (one block after the other);
// decryption works on four blocks at once, which hides the latency of the
// AESDEC instruction. The round keys come from expandKey (aeskey_amd64.go);
// the tests compare the results with crypto/cipher's CBC for every key size,
// length and IV chaining across calls.

var haveAESNI = cpu.X86.HasAES && cpu.X86.HasSSE41

//go:noescape
func cbcEncAsm(xk *byte, nr int, iv *byte, dst, src *byte, blocks int)

//go:noescape
func cbcDecAsm(xk *byte, nr int, iv *byte, dst, src *byte, blocks int)

// cbcKeys are the expanded encryption and decryption round keys of one AES
// key, shared (read-only) by the SA's CBC modes.
type cbcKeys struct {
	nr  int // rounds: 10, 12 or 14
	enc [15 * 16]byte
	dec [15 * 16]byte
}

func newCBCKeys(key []byte) *cbcKeys {
	if !haveAESNI {
		return nil
	}
	k := &cbcKeys{}
	k.nr = expandKey(key, k.enc[:], k.dec[:])
	return k
}

// fastCBC is a cipher.BlockMode with SetIV over cbcKeys.
type fastCBC struct {
	keys    *cbcKeys
	iv      [16]byte
	decrypt bool
}

func (c *fastCBC) BlockSize() int { return 16 }

func (c *fastCBC) SetIV(iv []byte) {
	if len(iv) != 16 {
		panic("esp: CBC IV must be 16 bytes")
	}
	copy(c.iv[:], iv)
}

// CryptBlocks follows cipher.BlockMode: len(src) a multiple of 16, dst at
// least as long, dst and src overlapping entirely or not at all.
func (c *fastCBC) CryptBlocks(dst, src []byte) {
	if len(src)%16 != 0 {
		panic("esp: CBC input not full blocks")
	}
	if len(dst) < len(src) {
		panic("esp: CBC output smaller than input")
	}
	n := len(src) / 16
	if n == 0 {
		return
	}
	if c.decrypt {
		cbcDecAsm(&c.keys.dec[0], c.keys.nr, &c.iv[0], &dst[0], &src[0], n)
	} else {
		cbcEncAsm(&c.keys.enc[0], c.keys.nr, &c.iv[0], &dst[0], &src[0], n)
	}
}

// newCBCModes returns an encrypter and a decrypter (IV to be set) for the
// block cipher b with the expanded keys k (nil: crypto/cipher's CBC).
func newCBCModes(b cipher.Block, k *cbcKeys) (enc, dec cbcMode, ok bool) {
	if k != nil {
		return &fastCBC{keys: k}, &fastCBC{keys: k, decrypt: true}, true
	}
	return stdCBCModes(b)
}

//go:noescape
func cbcEnc4Asm(xk *byte, nr int, ivs *byte, bufs *[4]*byte, blocks int)

// encrypt4 encrypts the four buffers in place with CBC under k, each with
// its IV (ivs[i]); the buffers are whole blocks, of any lengths. The common
// length runs interleaved (four AESENC chains at once), the rest of each
// buffer on its own.
func encrypt4(k *cbcKeys, ivs *[4][16]byte, bufs *[4][]byte) bool {
	if k == nil {
		return false
	}
	m := len(bufs[0])
	for _, b := range bufs[1:] {
		m = min(m, len(b))
	}
	m /= 16
	if m > 0 {
		ptrs := [4]*byte{&bufs[0][0], &bufs[1][0], &bufs[2][0], &bufs[3][0]}
		cbcEnc4Asm(&k.enc[0], k.nr, &ivs[0][0], &ptrs, m)
	}
	for i, b := range bufs {
		if rest := len(b)/16 - m; rest > 0 {
			cbcEncAsm(&k.enc[0], k.nr, &ivs[i][0], &b[16*m], &b[16*m], rest)
		}
	}
	return true
}
