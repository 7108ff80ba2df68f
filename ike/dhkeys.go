package ike

import (
	"io"

	"github.com/vpnlab/vpnlab/ike/dh"
)

// dhKeySource, when an engine has one, supplies the engine's Diffie-Hellman
// key pairs instead of fresh ones. Only the fuzz harness sets it (fixed,
// precomputed keys per group, so that an execution does not pay for key
// generation); an engine built by NewEngine has none.
type dhKeySource func(g dh.Group) (dh.Key, error)

// newDHKey returns a new key pair of group g for one exchange: from the
// engine's key source if it has one, else generated from r.
func (e *Engine) newDHKey(g dh.Group, r io.Reader) (dh.Key, error) {
	if e.dhKeys != nil {
		return e.dhKeys(g)
	}
	return g.Generate(r)
}
