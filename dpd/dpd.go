// Package dpd is the dead-peer detection state machine of RFC 3706 for one
// ISAKMP SA, without I/O or timers of its own: the IKE engine tells it what
// it saw (traffic from the peer, an R-U-THERE-ACK) and asks it what to do
// next at the time it returns.
//
// The model is the one AWS and strongSwan use for IKEv1:
//
//   - Idle probing: only when nothing has arrived from the peer for Delay
//     (AWS: 10 s) does the monitor send an R-U-THERE, and again every Delay
//     while the silence lasts (RFC 3706 section 5.4: DPD is on demand, any
//     inbound traffic proves liveness).
//   - The peer is dead Timeout after the last thing it sent (AWS
//     DPDTimeoutSeconds, default 40 s: dead 30 s after the first unanswered
//     probe; strongSwan's dpd_timeout behaves the same).
//   - Sequence numbers (RFC 3706 section 7): the first is random, each
//     R-U-THERE takes the next one, and an R-U-THERE-ACK counts only if it
//     carries the number of a probe we sent in the current round.
package dpd

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// State is what the monitor believes about the peer.
type State int

const (
	// Alive: the peer sent something within Delay, or answered our probe.
	Alive State = iota
	// Probing: the peer has been silent for Delay; R-U-THEREs are out.
	Probing
	// Dead: silent for Timeout. Terminal until Seen is called again.
	Dead
)

func (s State) String() string {
	switch s {
	case Probing:
		return "probing"
	case Dead:
		return "dead"
	}
	return "alive"
}

// Action is what the caller should do now.
type Action int

const (
	// Wait: nothing to do until the returned time.
	Wait Action = iota
	// Probe: send an R-U-THERE with the returned sequence number.
	Probe
	// DeclareDead: the peer is dead; apply the DPD timeout action.
	DeclareDead
)

// Monitor watches one peer. The zero value is not usable; use New. A
// Monitor is not safe for concurrent use: it belongs to the engine loop.
type Monitor struct {
	delay, timeout time.Duration

	state     State
	lastSeen  time.Time // last proof of life
	lastProbe time.Time // last R-U-THERE sent in this round (zero: none)
	firstSeq  uint32    // sequence number of this round's first probe
	seq       uint32    // the last sequence number used
	probes    int       // probes sent in this round
}

// New returns a monitor that counts the peer alive as of now. delay must be
// positive and less than timeout.
func New(delay, timeout time.Duration, now time.Time) *Monitor {
	var b [4]byte
	_, _ = rand.Read(b[:])
	// Start in the lower half so the sequence does not wrap in any
	// realistic session (RFC 3706 section 7 only asks for a random start).
	return &Monitor{delay: delay, timeout: timeout, lastSeen: now, seq: binary.BigEndian.Uint32(b[:]) >> 1}
}

// State returns the current state.
func (m *Monitor) State() State { return m.state }

// Late reports whether seq is one we sent in an earlier round (an ACK
// that arrived after other traffic had already ended the round).
func (m *Monitor) Late(seq uint32) bool { return m.seq-seq < 1<<16 }

// Revive undoes a Dead verdict that the caller chose not to act on yet
// (it will ask Next again after handling queued input).
func (m *Monitor) Revive() {
	if m.state == Dead {
		m.state = Probing
	}
}

// Reprobe returns the sequence number for another R-U-THERE to a peer
// already declared dead whose SAs are kept (DPD action none): its ACK
// (Ack) or any traffic (Seen) makes it alive again.
func (m *Monitor) Reprobe(now time.Time) uint32 {
	m.seq++
	m.firstSeq, m.probes, m.lastProbe = m.seq, 1, now
	return m.seq
}

// LastSeen returns the last proof of life.
func (m *Monitor) LastSeen() time.Time { return m.lastSeen }

// Probes returns how many R-U-THEREs the current round has sent.
func (m *Monitor) Probes() int { return m.probes }

// Seen records traffic from the peer at t (an authenticated IKE message or
// an ESP/AH packet that verified). Anything newer than the last proof of
// life ends a probing round. It reports the state left when that changes
// the state (Probing or Dead back to Alive).
func (m *Monitor) Seen(t time.Time) (from State, changed bool) {
	if !t.After(m.lastSeen) {
		return m.state, false
	}
	m.lastSeen = t
	if m.state == Alive {
		return Alive, false
	}
	from = m.state
	m.reset()
	return from, true
}

// Ack records an R-U-THERE-ACK with sequence number seq received at t. It
// reports whether the number belongs to one of this round's probes; only
// then is it proof of life.
func (m *Monitor) Ack(seq uint32, t time.Time) (ok bool, from State, changed bool) {
	if m.probes == 0 || seq-m.firstSeq >= uint32(m.probes) {
		return false, m.state, false
	}
	if t.After(m.lastSeen) {
		m.lastSeen = t
	}
	from = m.state
	m.reset()
	return true, from, from != Alive
}

func (m *Monitor) reset() {
	m.state, m.lastProbe, m.probes = Alive, time.Time{}, 0
}

// Next says what to do at now, and when to ask again (zero for Dead: ask
// again only after Seen).
func (m *Monitor) Next(now time.Time) (a Action, seq uint32, at time.Time) {
	if m.state == Dead {
		return Wait, 0, time.Time{}
	}
	deadAt := m.lastSeen.Add(m.timeout)
	if !now.Before(deadAt) {
		m.state = Dead
		return DeclareDead, 0, time.Time{}
	}
	probeAt := m.lastSeen.Add(m.delay)
	if m.probes > 0 {
		probeAt = m.lastProbe.Add(m.delay)
	}
	if !now.Before(probeAt) {
		m.seq++
		if m.probes == 0 {
			m.firstSeq = m.seq
		}
		m.probes++
		m.lastProbe = now
		m.state = Probing
		next := now.Add(m.delay)
		if deadAt.Before(next) {
			next = deadAt
		}
		return Probe, m.seq, next
	}
	if deadAt.Before(probeAt) {
		probeAt = deadAt
	}
	return Wait, 0, probeAt
}
