package netlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The marker: proof that a lab is vpnlab's and of whether its run is alive.
//
// Open writes MarkerDir/ID (root-only, JSON) before the lab creates its first
// namespace; Close removes it after the last namespace is gone. It names the
// owning process by PID and by that process's start time (field 22 of
// /proc/PID/stat, clock ticks since boot), so that a PID reused by another
// process does not make a dead run look alive. A run killed with SIGKILL
// leaves its marker, namespaces and processes behind; `vpnlab clean`
// (Leftovers, Leftover.Remove) finds them by the namespace name pattern and
// the marker together and removes them, and leaves alone a lab whose owner
// still runs and a namespace that merely looks like one of ours.

// MarkerDir holds one marker file per lab. /run is a tmpfs: markers do not
// outlive a reboot, and neither do namespaces.
var MarkerDir = "/run/vpnlab/labs"

// nsPattern is the name of every lab namespace: "vl", the lab's 6 hex
// digits, "-", its role (AddNS).
var nsPattern = regexp.MustCompile(`^(vl[0-9a-f]{6})-[a-z0-9]{1,6}$`)

// labIDPattern is a lab ID, as in marker file names.
var labIDPattern = regexp.MustCompile(`^vl[0-9a-f]{6}$`)

// marker is the content of a marker file.
type marker struct {
	ID       string    `json:"id"`
	PID      int       `json:"pid"`
	PIDStart uint64    `json:"pid_start"` // /proc/PID/stat starttime of the owner
	Command  string    `json:"command"`   // the owner's command line, for the report
	Created  time.Time `json:"created"`
	// Dirs are directories of the run that Close does not remove but a
	// cleanup of the dead run should (OwnDir).
	Dirs []string `json:"dirs,omitempty"`
}

func markerPath(id string) string { return filepath.Join(MarkerDir, id) }

// writeMarker records that the calling process owns lab id.
func writeMarker(m *marker) error {
	// /run/vpnlab also holds control sockets (readable); labs/ is root's.
	if err := os.MkdirAll(filepath.Dir(MarkerDir), 0o755); err != nil {
		return fmt.Errorf("netlab: marker directory: %w", err)
	}
	if err := os.Mkdir(MarkerDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("netlab: marker directory: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	// Write and rename: a reader never sees half a marker.
	tmp := markerPath(m.ID) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("netlab: marker: %w", err)
	}
	if err := os.Rename(tmp, markerPath(m.ID)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("netlab: marker: %w", err)
	}
	return nil
}

// newMarker describes the calling process as the owner of lab id.
func newMarker(id string) (*marker, error) {
	pid := os.Getpid()
	start, err := procStart(pid)
	if err != nil {
		return nil, fmt.Errorf("netlab: marker: %w", err)
	}
	return &marker{ID: id, PID: pid, PIDStart: start, Command: strings.Join(os.Args, " "), Created: time.Now()}, nil
}

// readMarker reads the marker of lab id.
func readMarker(id string) (*marker, error) {
	b, err := os.ReadFile(markerPath(id))
	if err != nil {
		return nil, err
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("marker %s: %v", markerPath(id), err)
	}
	if m.ID != id || m.PID <= 0 {
		return nil, fmt.Errorf("marker %s: id %q pid %d do not fit", markerPath(id), m.ID, m.PID)
	}
	return &m, nil
}

// alive reports whether the marker's owner still runs: its PID exists, was
// started when the marker says, and has not exited (a zombie has).
func (m *marker) alive() bool {
	start, state, err := procStat(m.PID)
	return err == nil && start == m.PIDStart && state != "Z" && state != "X"
}

// procStart returns a process's start time (clock ticks after boot).
func procStart(pid int) (uint64, error) {
	start, _, err := procStat(pid)
	return start, err
}

// procStat returns a process's start time and state (R, S, Z...).
func procStat(pid int) (start uint64, state string, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", err
	}
	// The command name (field 2) is in parentheses and may contain
	// spaces: count fields after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, "", fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, "", fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0], err
}

// OwnDir records dir (absolute; its name starts with "vpnlab-", like
// os.MkdirTemp("", "vpnlab-...") makes) as part of the lab: Close leaves it
// to its creator, but cleaning up after a dead run removes it.
func (l *Lab) OwnDir(dir string) error {
	if !filepath.IsAbs(dir) || !strings.HasPrefix(filepath.Base(dir), "vpnlab-") {
		return fmt.Errorf("netlab: OwnDir %q: want an absolute path whose name starts with vpnlab-", dir)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.marker == nil {
		return errors.New("netlab: lab is closed")
	}
	l.marker.Dirs = append(l.marker.Dirs, filepath.Clean(dir))
	return writeMarker(l.marker)
}

// removeMarker deletes the lab's marker (Close, after the namespaces).
func (l *Lab) removeMarker() error {
	l.mu.Lock()
	m := l.marker
	l.marker = nil
	l.mu.Unlock()
	if m == nil {
		return nil
	}
	if err := os.Remove(markerPath(m.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netlab: marker: %w", err)
	}
	return nil
}
