//go:build amd64 && !purego

package esp

// The AES key schedule (FIPS-197 section 5.2) for the AES-NI CBC code of
// cbc_amd64.s, which needs the round keys themselves (crypto/aes keeps them
// private). Decryption uses the equivalent inverse cipher (FIPS-197 section
// 5.3.5): the encryption round keys in reverse order, the inner ones through
// InvMixColumns, as the AESDEC instruction expects.

var sbox = makeSbox()

// makeSbox computes the AES S-box: the multiplicative inverse in GF(2^8)
// followed by the affine transformation. p walks the field's elements as
// powers of the generator 3 while q walks their inverses (powers of 3^-1).
func makeSbox() (s [256]byte) {
	rotl := func(x byte, n uint) byte { return x<<n | x>>(8-n) }
	p, q := byte(1), byte(1)
	for {
		p = p ^ p<<1 ^ (p>>7)*0x1b // p *= 3
		q ^= q << 1                // q /= 3
		q ^= q << 2
		q ^= q << 4
		if q&0x80 != 0 {
			q ^= 0x09
		}
		s[p] = q ^ rotl(q, 1) ^ rotl(q, 2) ^ rotl(q, 3) ^ rotl(q, 4) ^ 0x63
		if p == 1 {
			break
		}
	}
	s[0] = 0x63
	return s
}

// gmul multiplies in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
func gmul(a, b byte) byte {
	var r byte
	for b != 0 {
		if b&1 != 0 {
			r ^= a
		}
		a = a<<1 ^ (a>>7)*0x1b
		b >>= 1
	}
	return r
}

// expandKey writes the round keys of key (16, 24 or 32 bytes) to enc and
// the decryption round keys to dec (each 16 * (rounds+1) bytes, in the
// state's byte order) and returns the number of rounds.
func expandKey(key []byte, enc, dec []byte) int {
	nk := len(key) / 4
	nr := nk + 6
	n := 4 * (nr + 1)
	w := make([][4]byte, n)
	for i := 0; i < nk; i++ {
		copy(w[i][:], key[4*i:])
	}
	rcon := byte(1)
	for i := nk; i < n; i++ {
		t := w[i-1]
		switch {
		case i%nk == 0: // SubWord(RotWord(t)) xor Rcon
			t = [4]byte{sbox[t[1]] ^ rcon, sbox[t[2]], sbox[t[3]], sbox[t[0]]}
			rcon = gmul(rcon, 2)
		case nk > 6 && i%nk == 4:
			t = [4]byte{sbox[t[0]], sbox[t[1]], sbox[t[2]], sbox[t[3]]}
		}
		for j := range 4 {
			w[i][j] = w[i-nk][j] ^ t[j]
		}
	}
	for i := range n {
		copy(enc[4*i:], w[i][:])
	}
	copy(dec[0:16], enc[16*nr:16*nr+16])
	for r := 1; r < nr; r++ {
		invMixColumns(dec[16*r:16*r+16], enc[16*(nr-r):16*(nr-r)+16])
	}
	copy(dec[16*nr:16*nr+16], enc[0:16])
	return nr
}

// invMixColumns applies InvMixColumns to the four columns of src.
func invMixColumns(dst, src []byte) {
	for c := 0; c < 16; c += 4 {
		a0, a1, a2, a3 := src[c], src[c+1], src[c+2], src[c+3]
		dst[c] = gmul(a0, 14) ^ gmul(a1, 11) ^ gmul(a2, 13) ^ gmul(a3, 9)
		dst[c+1] = gmul(a0, 9) ^ gmul(a1, 14) ^ gmul(a2, 11) ^ gmul(a3, 13)
		dst[c+2] = gmul(a0, 13) ^ gmul(a1, 9) ^ gmul(a2, 14) ^ gmul(a3, 11)
		dst[c+3] = gmul(a0, 11) ^ gmul(a1, 13) ^ gmul(a2, 9) ^ gmul(a3, 14)
	}
}
