package ike

import (
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Replayed and stale quick mode messages. A quick mode is kept in its
// ISAKMP SA's quick map only for a while after it ends (as long as the peer
// may retransmit, retransmitSpan: about 165 s with the defaults, to answer
// a duplicate of the last message), so without more memory a QM1
// replayed later would decrypt with a fresh IV, pass HASH(1) (it is the
// peer's own authentic message) and be negotiated again. Each ISAKMP SA
// therefore remembers the message IDs of its quick modes, its own and the
// peer's, once they are authentic (ours when sent, the peer's once HASH(1)
// verified).
//
// The memory is bounded: the last usedQuickIDsKept IDs per ISAKMP SA
// (4 bytes each in a slice plus a map entry, some 40 KB at most per SA).
// An ISAKMP SA normally carries one quick mode per phase 2 rekey (hours
// apart); only a replay older than the 1024 newest quick modes of the same
// ISAKMP SA would be negotiated again, and that needs a peer that ran 1024
// quick modes on one ISAKMP SA.
//
// A message of a quick mode the SA still keeps but that has ended (done,
// on either side), and which is not a byte-exact duplicate of the last
// message received (that one is answered from the cache), is stale. Stale
// and replayed messages are dropped without decryption, without an answer
// (they must not advance the exchange's IV chain, nor draw a
// PAYLOAD-MALFORMED from a decryption with the wrong IV), logged and
// counted in EngineCounters.Drops.

// usedQuickIDsKept bounds the quick mode message IDs an ISAKMP SA remembers.
const usedQuickIDsKept = 1024

// Drop reasons of quick mode messages (EngineCounters.Drops).
const (
	dropQuickReplay      = "quick-mode-replay" // ID of a forgotten quick mode of this SA
	dropQuickStale       = "quick-mode-stale"  // message of a quick mode that has ended
	dropQuickEarly       = "quick-mode-before-phase1-established"
	dropQuickPlain       = "quick-mode-unencrypted"
	dropQuickUndecrypted = "quick-mode-undecryptable"
)

// usedIDs is a bounded set of message IDs, oldest evicted first.
type usedIDs struct {
	set   map[uint32]struct{}
	order []uint32 // ring of at most usedQuickIDsKept
	next  int      // next slot of order to overwrite once full
}

func (u *usedIDs) add(mid uint32) {
	if _, ok := u.set[mid]; ok {
		return
	}
	if u.set == nil {
		u.set = map[uint32]struct{}{}
	}
	if len(u.order) < usedQuickIDsKept {
		u.order = append(u.order, mid)
	} else {
		delete(u.set, u.order[u.next])
		u.order[u.next] = mid
		u.next = (u.next + 1) % usedQuickIDsKept
	}
	u.set[mid] = struct{}{}
}

func (u *usedIDs) has(mid uint32) bool {
	_, ok := u.set[mid]
	return ok
}

// rememberQuickID records a quick mode message ID of this ISAKMP SA.
func (sa *ikeSA) rememberQuickID(mid uint32) { sa.usedQuick.add(mid) }

// staleQuick reports whether a quick mode message that is not a duplicate
// of the last one received must be dropped unread: its quick mode has
// ended or been forgotten. It logs and counts the drop.
func (sa *ikeSA) staleQuick(m *isakmp.Message, qm *quickMode) bool {
	mid := m.Header.MessageID
	switch {
	case qm == nil && sa.usedQuick.has(mid):
		sa.dropQuick(dropQuickReplay, mid, "quick mode message ID already used on this ISAKMP SA (a replay): dropped")
		return true
	case qm != nil && (qm.state == qmDone || qm.state == qmFailed):
		sa.dropQuick(dropQuickStale, mid, "message of a quick mode that has ended (stale): dropped")
		return true
	}
	return false
}

// dropQuick logs and counts a quick mode message dropped without an answer.
// Anyone who saw the cookies can replay old messages, so the warning is
// rate-limited: the first drop of a reason and every 100th are warnings
// (with the count so far), the others debug lines.
func (sa *ikeSA) dropQuick(reason string, mid uint32, msg string) {
	sa.e.countDrop(reason)
	n := sa.e.counters.Drops[reason]
	log := sa.logger().WithFields(logrus.Fields{"msgid": fmt.Sprintf("%08x", mid), "drop": reason, "count": n})
	if n == 1 || n%100 == 0 {
		log.Warn(msg)
		return
	}
	log.Debug(msg)
}
