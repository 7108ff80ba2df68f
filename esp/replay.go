package esp

import "fmt"

// replayWindow is the RFC 4303 section 3.4.3 sliding window (32-bit
// sequence numbers, no ESN) as a ring of 64-bit words: bit (seq mod size)
// tells whether seq was seen. Check and Update are split so the window only
// moves after the ICV has been verified.
type replayWindow struct {
	size   uint64 // packets, multiple of 64
	top    uint64 // highest sequence number accepted (0: none yet)
	bitmap []uint64
}

func newReplayWindow(size int) (*replayWindow, error) {
	if size < MinReplayWindow || size > MaxReplayWindow || size%64 != 0 {
		return nil, fmt.Errorf("esp: replay window %d must be a multiple of 64 in %d..%d", size, MinReplayWindow, MaxReplayWindow)
	}
	return &replayWindow{size: uint64(size), bitmap: make([]uint64, size/64)}, nil
}

// check reports whether seq may be accepted: it is new and not left of the
// window. Sequence number 0 is never valid (the first packet carries 1).
func (w *replayWindow) check(seq uint32) bool {
	s := uint64(seq)
	switch {
	case s == 0:
		return false
	case s > w.top:
		return true
	case s+w.size <= w.top: // left of the window
		return false
	}
	i := s % w.size
	return w.bitmap[i/64]&(1<<(i%64)) == 0
}

// update marks seq as received, sliding the window if seq is new on the
// right. Call only after check(seq) and ICV verification succeeded.
func (w *replayWindow) update(seq uint32) {
	s := uint64(seq)
	if s > w.top {
		// Clear the bits of the numbers the window slides over
		// (top+1 .. s), at most a whole window.
		if s-w.top >= w.size {
			clear(w.bitmap)
		} else {
			for n := w.top + 1; n <= s; {
				i := n % w.size
				if i%64 == 0 && n+64 <= s+1 {
					w.bitmap[i/64] = 0
					n += 64
					continue
				}
				w.bitmap[i/64] &^= 1 << (i % 64)
				n++
			}
		}
		w.top = s
	}
	i := s % w.size
	w.bitmap[i/64] |= 1 << (i % 64)
}
