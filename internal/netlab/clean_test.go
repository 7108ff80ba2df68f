package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMarker: a lab is marked from Open to Close, naming this process.
func TestMarker(t *testing.T) {
	l, err := New(t)
	if err != nil {
		t.Fatal(err)
	}
	m, err := readMarker(l.ID())
	if err != nil {
		t.Fatalf("no marker after Open: %v", err)
	}
	if m.PID != os.Getpid() || !m.alive() || m.Command == "" || m.Created.IsZero() {
		t.Errorf("marker %+v: want this process, alive", m)
	}
	if fi, err := os.Stat(markerPath(l.ID())); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("marker file: %v %v, want mode 0600", fi, err)
	}
	for _, bad := range []string{"relative/vpnlab-x", "/tmp/other"} {
		if err := l.OwnDir(bad); err == nil {
			t.Errorf("OwnDir(%q) accepted", bad)
		}
	}
	dir, _ := os.MkdirTemp("", "vpnlab-test-")
	defer os.RemoveAll(dir)
	if err := l.OwnDir(dir); err != nil {
		t.Fatal(err)
	}
	if m, _ := readMarker(l.ID()); m == nil || !slices.Equal(m.Dirs, []string{dir}) {
		t.Errorf("OwnDir not recorded: %+v", m)
	}
	// A reused PID (same number, another start time) is not the owner.
	if (&marker{PID: os.Getpid(), PIDStart: m.PIDStart + 1}).alive() {
		t.Error("a PID with another start time counts as the owner")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(markerPath(l.ID())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("marker left after Close: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("Close removed the owned directory (its creator's job): %v", err)
	}
}

// TestLeftovers: a lab whose owner is gone (its marker names this process's
// PID with another start time, as after PID reuse) is found and removed:
// the process inside is killed, the namespaces, the run directory and the
// marker go. A live lab and a namespace that only looks like a lab's are
// reported and left alone. Its markers live in a directory of its own, so
// that a `vpnlab clean` running meanwhile (another package's test) sees its
// labs as unmarked and leaves them alone. Not parallel: MarkerDir is global.
func TestLeftovers(t *testing.T) {
	if err := Usable(); err != nil {
		t.Skipf("netlab: %v", err)
	}
	defaultDir := MarkerDir
	MarkerDir = filepath.Join(t.TempDir(), "labs")
	t.Cleanup(func() { MarkerDir = defaultDir })
	live, err := New(t)
	if err != nil {
		t.Fatal(err)
	}
	liveNS, err := live.AddNS("live")
	if err != nil {
		t.Fatal(err)
	}

	dead, err := Open(t.TempDir(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dead.Close() }) // after a failure only
	a, err := dead.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dead.AddNS("b"); err != nil {
		t.Fatal(err)
	}
	sleeper, err := a.Start(context.Background(), "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	// `ip netns exec` becomes sleep a moment later.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(sleeper.Pid()) + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
	}
	runDir, _ := os.MkdirTemp("", "vpnlab-run-")
	defer os.RemoveAll(runDir)
	if err := dead.OwnDir(runDir); err != nil {
		t.Fatal(err)
	}
	dead.mu.Lock()
	dead.marker.PIDStart++ // the owner "died" and its PID was reused
	err = writeMarker(dead.marker)
	dead.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}

	var b [3]byte
	rand.Read(b[:])
	unmarked := "vl" + hex.EncodeToString(b[:]) + "-x"
	if out, err := exec.Command(ipBin, "netns", "add", unmarked).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command(ipBin, "netns", "del", unmarked).Run() })

	sv, err := Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	info := findLab(sv.Dead, dead.ID())
	if info == nil {
		t.Fatalf("the dead lab %s is not among the dead: %+v", dead.ID(), sv)
	}
	if !slices.Equal(info.Namespaces, []string{dead.ID() + "-a", dead.ID() + "-b"}) ||
		!slices.Equal(info.Dirs, []string{runDir}) || info.Owner != os.Getpid() {
		t.Errorf("dead lab: %+v", info)
	}
	if len(info.Processes) != 1 || info.Processes[0].PID != sleeper.Pid() || info.Processes[0].Command != "sleep" {
		t.Errorf("processes of the dead lab: %+v, want sleep pid %d", info.Processes, sleeper.Pid())
	}
	if l := findLab(sv.Live, live.ID()); l == nil || !slices.Equal(l.Namespaces, []string{liveNS.Name()}) {
		t.Errorf("the live lab is not reported live: %+v", sv.Live)
	}
	if findLab(sv.Dead, live.ID()) != nil {
		t.Error("the live lab is among the dead")
	}
	if !slices.Contains(sv.Unmarked, unmarked) {
		t.Errorf("unmarked %s not reported: %v", unmarked, sv.Unmarked)
	}

	var notes []string
	if err := info.Remove(func(s string) { notes = append(notes, s) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sleeper.Done():
	case <-time.After(5 * time.Second):
		t.Error("the process in the dead lab still runs")
	}
	for _, want := range []string{"killed    pid", "removed   namespace " + dead.ID() + "-a", "removed   namespace " + dead.ID() + "-b",
		"removed   directory " + runDir, "removed   marker "} {
		if !slices.ContainsFunc(notes, func(n string) bool { return strings.HasPrefix(n, want) }) {
			t.Errorf("no note %q in %q", want, notes)
		}
	}
	if left, _ := filepath.Glob("/run/netns/" + dead.ID() + "-*"); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	for _, p := range []string{runDir, markerPath(dead.ID())} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	for _, ns := range []string{liveNS.Name(), unmarked} {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			t.Errorf("namespace %s was removed: %v", ns, err)
		}
	}
	// A live lab is refused even when asked directly.
	if l := findLab(sv.Live, live.ID()); l != nil {
		if err := l.Remove(func(string) {}); err == nil || !strings.Contains(err.Error(), "is running") {
			t.Errorf("Remove of a live lab: %v", err)
		}
	}
}

func findLab(ls []LabInfo, id string) *LabInfo {
	for i := range ls {
		if ls[i].ID == id {
			return &ls[i]
		}
	}
	return nil
}
