package ike

// forgetNegotiation drops what only the phase 1 exchange needed, once the
// ISAKMP SA is established (both HASHes are computed and checked by then):
// the DH private key, both public values and nonces, SKEYID (the derived
// SKEYID_d/a/e and the encryption key stay), and the SA payload and ID
// that went into the HASHes. An established SA then holds its keys and
// bounded per-exchange state only: a vgw with 10,000 tunnels keeps no
// handshake material (less memory, and no secret kept longer than needed).
func (sa *ikeSA) forgetNegotiation() {
	sa.dhKey = nil
	sa.gxi, sa.gxr, sa.ni, sa.nr = nil, nil, nil, nil
	sa.skeyid = nil
	sa.saiB, sa.idiB, sa.replySA = nil, nil, nil
}
