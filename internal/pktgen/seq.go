package pktgen

import "encoding/binary"

// HeaderLen is the size of the header at the start of every payload; the
// smallest payload size.
const HeaderLen = 16

var magic = [4]byte{'V', 'P', 'K', 'G'}

// putHeader writes the header of datagram seq of stream into b (len >= HeaderLen).
func putHeader(b []byte, seq uint64, stream uint32) {
	binary.BigEndian.PutUint64(b[0:8], seq)
	binary.BigEndian.PutUint32(b[8:12], stream)
	copy(b[12:16], magic[:])
}

// parseHeader reads the header of a received payload; ok is false for a
// datagram that is not ours (too short or wrong magic).
func parseHeader(b []byte) (seq uint64, stream uint32, ok bool) {
	if len(b) < HeaderLen || [4]byte(b[12:16]) != magic {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b[0:8]), binary.BigEndian.Uint32(b[8:12]), true
}

// seqWindow is how far behind the highest sequence number a late datagram can
// still be told apart as reordered or duplicate.
const seqWindow = 4096

// seqTracker accounts for the sequence numbers of one stream.
type seqTracker struct {
	started    bool
	highest    uint64
	unique     uint64 // distinct sequence numbers received
	reordered  uint64 // arrived after a higher sequence number (within the window)
	duplicates uint64 // a sequence number seen before (within the window)
	late       uint64 // arrived more than seqWindow behind the highest
	seen       [seqWindow / 64]uint64
}

func (t *seqTracker) bit(seq uint64) (word *uint64, mask uint64) {
	i := seq % seqWindow
	return &t.seen[i/64], 1 << (i % 64)
}

// add records one received sequence number.
func (t *seqTracker) add(seq uint64) {
	switch {
	case !t.started || seq > t.highest:
		from := uint64(0)
		if t.started {
			from = t.highest + 1
		}
		if seq-from >= seqWindow {
			t.seen = [seqWindow / 64]uint64{}
		} else {
			for s := from; s < seq; s++ { // the gap: not seen yet
				w, m := t.bit(s)
				*w &^= m
			}
		}
		w, m := t.bit(seq)
		*w |= m
		t.started, t.highest = true, seq
		t.unique++
	case t.highest-seq >= seqWindow:
		t.late++
		t.unique++ // cannot tell; counted as received so it is not also "lost"
	default:
		w, m := t.bit(seq)
		if *w&m != 0 {
			t.duplicates++
			return
		}
		*w |= m
		t.reordered++
		t.unique++
	}
}

// lost is the number of sequence numbers below the highest never received.
func (t *seqTracker) lost() uint64 {
	if !t.started || t.unique > t.highest+1 {
		return 0
	}
	return t.highest + 1 - t.unique
}
