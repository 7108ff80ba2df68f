package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cleaning up after labs whose owner died (`vpnlab clean`).
//
// A namespace is a dead lab's leftover only when both hold: its name has the
// lab pattern (vl + 6 hex digits + "-" + role) and its lab's marker names an
// owner that no longer runs. A lab whose owner runs is left alone, and so is
// a namespace of the pattern without a marker (made by something else, or by
// a vpnlab from before markers: it is only reported). nftables rules, veth
// pairs, TUN devices and routes of a lab live inside its namespaces and go
// with them; the processes inside are killed first.

// Process is a process running inside a namespace.
type Process struct {
	PID       int
	Namespace string
	Command   string // /proc/PID/comm
}

// LabInfo describes one lab found on the machine.
type LabInfo struct {
	ID         string
	Owner      int    // PID of the process that opened the lab
	Command    string // its command line
	Created    time.Time
	Namespaces []string  // existing namespaces of the lab
	Processes  []Process // processes inside them
	Dirs       []string  // directories of the run that still exist (OwnDir)
	Marker     string    // the marker file
}

// Survey is what Leftovers found.
type Survey struct {
	Dead []LabInfo // owner gone: to clean
	Live []LabInfo // owner running: left alone
	// Unmarked are namespaces named like a lab's but without a marker:
	// left alone, as nothing proves they are ours.
	Unmarked []string
	// BadMarkers are marker files that could not be read (left alone).
	BadMarkers []string
}

// Leftovers surveys the machine's labs (needs root, see Usable).
func Leftovers() (*Survey, error) {
	byLab := map[string][]string{}
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("netlab: listing namespaces: %w", err)
	}
	for _, e := range entries {
		if m := nsPattern.FindStringSubmatch(e.Name()); m != nil {
			byLab[m[1]] = append(byLab[m[1]], e.Name())
		}
	}
	marks, err := os.ReadDir(MarkerDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("netlab: listing markers: %w", err)
	}
	sv := &Survey{}
	seen := map[string]bool{}
	for _, e := range marks {
		id := e.Name()
		if !labIDPattern.MatchString(id) {
			continue // a .tmp being written, or not ours
		}
		seen[id] = true
		m, err := readMarker(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // its lab closed meanwhile
		}
		if err != nil {
			sv.BadMarkers = append(sv.BadMarkers, fmt.Sprintf("%s (%v)", markerPath(id), err))
			continue
		}
		info := LabInfo{ID: id, Owner: m.PID, Command: m.Command, Created: m.Created,
			Namespaces: byLab[id], Marker: markerPath(id)}
		slices.Sort(info.Namespaces)
		for _, d := range m.Dirs {
			if _, err := os.Stat(d); err == nil {
				info.Dirs = append(info.Dirs, d)
			}
		}
		for _, ns := range info.Namespaces {
			info.Processes = append(info.Processes, processesIn(ns)...)
		}
		if m.alive() {
			sv.Live = append(sv.Live, info)
		} else {
			sv.Dead = append(sv.Dead, info)
		}
	}
	for id, nss := range byLab {
		if !seen[id] {
			sv.Unmarked = append(sv.Unmarked, nss...)
		}
	}
	slices.Sort(sv.Unmarked)
	for _, l := range [][]LabInfo{sv.Dead, sv.Live} {
		slices.SortFunc(l, func(a, b LabInfo) int { return strings.Compare(a.ID, b.ID) })
	}
	return sv, nil
}

// processesIn lists the processes inside namespace ns.
func processesIn(ns string) []Process {
	var ps []Process
	for _, pid := range nsPids(ns) {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		ps = append(ps, Process{PID: pid, Namespace: ns, Command: strings.TrimSpace(string(comm))})
	}
	return ps
}

// nsPids returns the PIDs inside namespace ns (not our own).
func nsPids(ns string) []int {
	out, err := exec.Command(ipBin, "netns", "pids", ns).Output()
	if err != nil {
		return nil
	}
	var ps []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil && p != os.Getpid() {
			ps = append(ps, p)
		}
	}
	return ps
}

// Remove cleans up a dead lab: kills the processes in its namespaces
// (SIGTERM, 2 s grace, SIGKILL), deletes the namespaces, removes its run
// directories and then its marker. note receives one line per thing done.
// It refuses a lab whose owner runs again (checked anew from the marker).
// The marker stays when something could not be removed, so a later clean
// finds the rest.
func (li *LabInfo) Remove(note func(string)) error {
	m, err := readMarker(li.ID)
	if err != nil {
		return fmt.Errorf("netlab: lab %s: %w", li.ID, err)
	}
	if m.alive() {
		return fmt.Errorf("netlab: lab %s: its owner (pid %d) is running", li.ID, m.PID)
	}
	var errs []error
	for _, ns := range li.Namespaces {
		if !nsPattern.MatchString(ns) || !strings.HasPrefix(ns, li.ID+"-") {
			return fmt.Errorf("netlab: %s is not a namespace of lab %s", ns, li.ID)
		}
		before := processesIn(ns)
		(&NS{name: ns}).killAll()
		left := map[int]bool{}
		for _, p := range nsPids(ns) {
			left[p] = true
		}
		for _, p := range before {
			if !left[p.PID] {
				note(fmt.Sprintf("killed    pid %d (%s) in %s", p.PID, p.Command, ns))
			}
		}
		if len(left) > 0 {
			errs = append(errs, fmt.Errorf("%s: processes %v survived SIGKILL", ns, keys(left)))
			continue
		}
		if err := run(context.Background(), ipBin, "netns", "del", ns); err != nil {
			errs = append(errs, err)
			continue
		}
		note("removed   namespace " + ns)
	}
	for _, d := range li.Dirs {
		if !filepath.IsAbs(d) || !strings.HasPrefix(filepath.Base(d), "vpnlab-") {
			errs = append(errs, fmt.Errorf("directory %q in the marker: not a run directory, left alone", d))
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
			continue
		}
		note("removed   directory " + d)
	}
	if len(errs) > 0 {
		return fmt.Errorf("netlab: lab %s: %w (marker %s kept)", li.ID, errors.Join(errs...), li.Marker)
	}
	if err := os.Remove(markerPath(li.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netlab: lab %s: %w", li.ID, err)
	}
	note("removed   marker " + markerPath(li.ID))
	return nil
}

func keys(m map[int]bool) []int {
	var k []int
	for p := range m {
		k = append(k, p)
	}
	slices.Sort(k)
	return k
}
