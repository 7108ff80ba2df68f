package ike

// Startup: tunnels whose startup action is start are initiated by the loop
// in batches of startBatch, each batch only when the inbox is empty. The
// loop therefore answers Status and peers' messages while thousands of
// tunnels start, the inbox never holds more than its fixed capacity, and
// the first messages leave at the pace the loop can carry (their replies
// are served between batches).

// startBatch is how many tunnels one loop turn initiates: small enough that
// a control call waits at most a few milliseconds behind it.
const startBatch = 32

// startNextBatch initiates up to startBatch queued tunnels.
func (e *Engine) startNextBatch() {
	for range min(startBatch, len(e.startQueue)) {
		// Taken off the queue before it starts: a panic in one initiate
		// (recovered by the loop) must not start the same batch again.
		t := e.startQueue[0]
		e.startQueue[0] = nil
		e.startQueue = e.startQueue[1:]
		if len(e.startQueue) == 0 {
			e.startQueue = nil
		}
		t.initiate("startup action start")
	}
}

// unqueueStart drops a tunnel that has not been started yet from the queue
// (a control Terminate before its turn).
func (e *Engine) unqueueStart(t *tunnel) {
	for i, q := range e.startQueue {
		if q == t {
			e.startQueue = append(e.startQueue[:i], e.startQueue[i+1:]...)
			return
		}
	}
}
