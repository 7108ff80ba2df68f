package gateway

import (
	"encoding/json"
	"os"

	"github.com/vpnlab/vpnlab/ike"
)

// writeEvents appends every event of eng to path as one JSON object per
// line (the format of GET /v1/events), from before the engine starts, so a
// reader sees the first exchange too. The returned function stops it and
// waits until everything received was written.
func writeEvents(eng *ike.Engine, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	evs, unsub := eng.Subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		enc := json.NewEncoder(f)
		for ev := range evs {
			_ = enc.Encode(ev) // a full disk loses events, never blocks the engine
		}
	}()
	return func() {
		unsub()
		<-done
		f.Close()
	}, nil
}
