package esp

import "crypto/cipher"

// newCBCModes returns crypto/cipher's CBC encrypter and decrypter for b
// (crypto primitives come from the standard library: the project's rule).
func newCBCModes(b cipher.Block) (enc, dec cbcMode, ok bool) {
	var zeroIV [16]byte
	enc, ok1 := cipher.NewCBCEncrypter(b, zeroIV[:]).(cbcMode)
	dec, ok2 := cipher.NewCBCDecrypter(b, zeroIV[:]).(cbcMode)
	return enc, dec, ok1 && ok2
}
