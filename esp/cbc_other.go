//go:build !amd64 || purego

package esp

import "crypto/cipher"

type cbcKeys struct{}

func newCBCKeys([]byte) *cbcKeys { return nil }

func newCBCModes(b cipher.Block, _ *cbcKeys) (enc, dec cbcMode, ok bool) { return stdCBCModes(b) }

func encrypt4(*cbcKeys, *[4][16]byte, *[4][]byte) bool { return false }
