package wire

import "testing"

// TestManyProposals: the 1-octet Proposal Num allows 255 proposals in one
// SA payload (RFC 7296 section 3.3.1), and a customer gateway configured
// from AWS's default lists (strongSwan with one proposal per combination:
// 192) sends that many; the decoder takes them all.
func TestManyProposals(t *testing.T) {
	for _, n := range []int{192, MaxProposals} {
		sa := &SA{}
		for i := 1; i <= n; i++ {
			sa.Proposals = append(sa.Proposals, Proposal{Number: uint8(i), Protocol: ProtoIKE, Transforms: []Transform{
				Encr(EncrAESCBC, 128), PRF(PRFHMACSHA2256), Integ(IntegHMACSHA2256128), DH(DHGroup(14)),
			}})
		}
		m := &Message{Header: Header{SPIi: [8]byte{1}, Exchange: ExchangeIKESAInit, Flags: FlagInitiator}, Payloads: []Payload{sa}}
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("%d proposals: encode: %v", n, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%d proposals: decode: %v", n, err)
		}
		if k := len(got.Payloads[0].(*SA).Proposals); k != n {
			t.Errorf("decoded %d proposals, want %d", k, n)
		}
	}
}
