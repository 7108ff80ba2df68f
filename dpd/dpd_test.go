package dpd

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// step drives the monitor the way the engine does: ask Next at now, and
// return what it said.
type step struct {
	now    float64
	action Action
	next   float64 // -1: zero time
	state  State
}

func run(t *testing.T, m *Monitor, steps []step) []uint32 {
	t.Helper()
	var seqs []uint32
	for i, s := range steps {
		a, seq, next := m.Next(at(s.now))
		if a != s.action {
			t.Fatalf("step %d (t=%v): action %v, want %v", i, s.now, a, s.action)
		}
		if s.next < 0 {
			if !next.IsZero() {
				t.Fatalf("step %d: next %v, want none", i, next.Sub(t0))
			}
		} else if !next.Equal(at(s.next)) {
			t.Fatalf("step %d (t=%v): next at %v, want %vs", i, s.now, next.Sub(t0), s.next)
		}
		if m.State() != s.state {
			t.Fatalf("step %d: state %v, want %v", i, m.State(), s.state)
		}
		if a == Probe {
			seqs = append(seqs, seq)
		}
	}
	return seqs
}

// TestAWSTimeline: delay 10 s, timeout 40 s, peer silent from t=0: probes
// at 10, 20 and 30 s (three unanswered R-U-THEREs), dead at 40 s, i.e. 30 s
// after the first failed probe, as AWS describes its 40 s DPD timeout.
func TestAWSTimeline(t *testing.T) {
	m := New(10*time.Second, 40*time.Second, at(0))
	seqs := run(t, m, []step{
		{0, Wait, 10, Alive},
		{5, Wait, 10, Alive},
		{10, Probe, 20, Probing},
		{15, Wait, 20, Probing},
		{20, Probe, 30, Probing},
		{30, Probe, 40, Probing},
		{39.9, Wait, 40, Probing},
		{40, DeclareDead, -1, Dead},
		{50, Wait, -1, Dead},
	})
	if len(seqs) != 3 || seqs[1] != seqs[0]+1 || seqs[2] != seqs[1]+1 {
		t.Fatalf("sequence numbers %v, want three consecutive", seqs)
	}
	if m.Probes() != 3 {
		t.Fatalf("probes %d, want 3", m.Probes())
	}
}

// TestTrafficPostponesProbes: inbound traffic is proof of life (RFC 3706
// section 5.4); no R-U-THERE while it keeps arriving.
func TestTrafficPostponesProbes(t *testing.T) {
	m := New(10*time.Second, 30*time.Second, at(0))
	for s := 1.0; s < 100; s += 3 {
		m.Seen(at(s))
		if a, _, next := m.Next(at(s + 1)); a != Wait || !next.Equal(at(s+10)) {
			t.Fatalf("t=%v: %v next %v, want Wait until %v", s+1, a, next.Sub(t0), s+10)
		}
	}
}

func TestAckEndsRound(t *testing.T) {
	m := New(10*time.Second, 30*time.Second, at(0))
	_, seq1, _ := m.Next(at(10))
	_, seq2, _ := m.Next(at(20))
	if ok, _, _ := m.Ack(seq1-1, at(21)); ok {
		t.Fatal("an ACK with a sequence number we never sent was accepted")
	}
	if ok, _, _ := m.Ack(seq2+1, at(21)); ok {
		t.Fatal("an ACK with a future sequence number was accepted")
	}
	if m.State() != Probing {
		t.Fatalf("state %v after bad ACKs, want probing", m.State())
	}
	// An ACK of the first probe of the round still proves life (it was
	// late, not wrong).
	ok, from, changed := m.Ack(seq1, at(22))
	if !ok || from != Probing || !changed || m.State() != Alive {
		t.Fatalf("Ack(seq1) = %v %v %v, state %v; want accepted, probing -> alive", ok, from, changed, m.State())
	}
	// The round is over: the old numbers are no longer accepted, and the
	// next probe comes Delay after the ACK.
	if ok, _, _ := m.Ack(seq2, at(23)); ok {
		t.Fatal("an ACK of a finished round was accepted")
	}
	if !m.Late(seq2) || m.Late(seq2+1) {
		t.Fatal("Late: an old sequence number must be late, a future one not")
	}
	run(t, m, []step{{25, Wait, 32, Alive}, {32, Probe, 42, Probing}, {52, DeclareDead, -1, Dead}})
}

func TestSeenRevivesDead(t *testing.T) {
	m := New(time.Second, 3*time.Second, at(0))
	run(t, m, []step{{1, Probe, 2, Probing}, {2, Probe, 3, Probing}, {3, DeclareDead, -1, Dead}})
	if from, changed := m.Seen(at(2.5)); !changed || from != Dead || m.State() != Alive {
		t.Fatalf("Seen = %v %v, state %v; want dead -> alive", from, changed, m.State())
	}
	// Stale traffic (older than the last proof of life) changes nothing.
	if _, changed := m.Seen(at(1)); changed {
		t.Fatal("stale traffic changed the state")
	}
	run(t, m, []step{{3, Wait, 3.5, Alive}, {3.5, Probe, 4.5, Probing}})
}

// TestDeadlineBeforeNextProbe: with a timeout that is not a multiple of
// the delay, the verdict comes at lastSeen + timeout, not at a probe time.
func TestDeadlineBeforeNextProbe(t *testing.T) {
	m := New(10*time.Second, 25*time.Second, at(0))
	run(t, m, []step{{10, Probe, 20, Probing}, {20, Probe, 25, Probing}, {25, DeclareDead, -1, Dead}})
}

// TestReprobeRevives: a dead peer (action none) is probed again; the ACK of
// that probe makes it alive.
func TestReprobeRevives(t *testing.T) {
	m := New(time.Second, 3*time.Second, at(0))
	run(t, m, []step{{1, Probe, 2, Probing}, {2, Probe, 3, Probing}, {3, DeclareDead, -1, Dead}})
	seq := m.Reprobe(at(4))
	if m.State() != Dead {
		t.Fatal("Reprobe changed the state")
	}
	if ok, from, changed := m.Ack(seq, at(4.1)); !ok || from != Dead || !changed || m.State() != Alive {
		t.Fatalf("Ack of the reprobe = %v %v %v, state %v", ok, from, changed, m.State())
	}
}
