package exchange

import (
	"bytes"
	"errors"
	"fmt"
)

// Nonces are the two nonces of one CREATE_CHILD_SA exchange: Ni of its
// initiator, Nr of its responder.
type Nonces struct {
	Ni, Nr []byte
}

// Survivor says which of two SAs created by simultaneous rekeys is kept.
type Survivor int

const (
	OursSurvives   Survivor = iota // the SA of the exchange we initiated
	TheirsSurvives                 // the SA of the exchange the peer initiated
)

func (s Survivor) String() string {
	if s == TheirsSurvives {
		return "theirs"
	}
	return "ours"
}

// SimultaneousRekey resolves a rekey collision (section 2.8.1 for child
// SAs, 2.8.2 for the IKE SA): both ends rekeyed the same SA at once, ours
// is the exchange we initiated, theirs the one the peer initiated. The SA
// created by the exchange that holds the lowest of the four nonces is
// redundant and is deleted by the end that initiated that exchange; the
// other one survives (and, for the IKE SA, takes over the child SAs).
// It is called once both exchanges have completed: until then neither end
// can know which exchange holds the lowest nonce, so each answers the
// other's request as usual (section 2.8.1).
// Nonces compare as unsigned big-endian byte strings, a shorter one that
// is a prefix of the other being lower. Empty nonces, or a lowest nonce
// that both exchanges share (which no honest peer produces), are errors:
// then there is no defined survivor.
func SimultaneousRekey(ours, theirs Nonces) (Survivor, error) {
	for _, n := range [][]byte{ours.Ni, ours.Nr, theirs.Ni, theirs.Nr} {
		if len(n) == 0 {
			return 0, errors.New("ikev2: rekey collision with an empty nonce")
		}
	}
	lo, lt := lowest(ours), lowest(theirs)
	switch c := bytes.Compare(lo, lt); {
	case c < 0:
		return TheirsSurvives, nil
	case c > 0:
		return OursSurvives, nil
	}
	return 0, fmt.Errorf("ikev2: rekey collision: both exchanges hold the lowest nonce %x", lo)
}

func lowest(n Nonces) []byte {
	if bytes.Compare(n.Ni, n.Nr) <= 0 {
		return n.Ni
	}
	return n.Nr
}

// WeDelete reports whether we send the DELETE after a collision: we do
// when the redundant SA is the one our exchange created.
func (s Survivor) WeDelete() bool { return s == TheirsSurvives }
