package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/scenarios"
)

// TestCleanAfterSIGKILL: a `vpnlab run` of a shipped scenario killed with
// SIGKILL mid-run leaves its namespaces and gateway processes behind;
// `vpnlab clean --dry-run` lists them and removes nothing; `vpnlab clean`
// removes them all (no namespace, no process, no run directory, no marker
// left), and leaves alone a live lab on the same machine.
func TestCleanAfterSIGKILL(t *testing.T) {
	if err := scenarios.Preflight(); err != nil {
		t.Skipf("scenario runs: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "vpnlab")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// A live lab: ours, with a process inside.
	live, err := netlab.New(t)
	if err != nil {
		t.Fatal(err)
	}
	liveNS, err := live.AddNS("live")
	if err != nil {
		t.Fatal(err)
	}
	liveProc, err := liveNS.Start(context.Background(), "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "run", "--out", t.TempDir(), "../../scenarios/basic.yaml")
	var buf syncBuf
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(buf.String(), "step 3/") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the run did not reach step 3:\n%s", buf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL: no cleanup of its own
	cmd.Wait()

	id, runDirs := labOf(t, cmd.Process.Pid)
	nss, _ := filepath.Glob("/run/netns/" + id + "-*")
	var pids []int
	for _, ns := range nss {
		out, _ := exec.Command("ip", "netns", "pids", filepath.Base(ns)).Output()
		for _, f := range strings.Fields(string(out)) {
			p, _ := strconv.Atoi(f)
			pids = append(pids, p)
		}
	}
	if len(nss) < 5 || len(pids) < 2 {
		t.Fatalf("the killed run left %d namespaces and processes %v; the test needs its gateways left running:\n%s", len(nss), pids, buf.String())
	}

	code, out, errOut := runCLI("clean", "--dry-run")
	if code != 0 || !strings.Contains(out, "lab "+id+": owner pid "+strconv.Itoa(cmd.Process.Pid)+" is gone") ||
		!strings.Contains(out, "would remove  namespace "+id+"-cgw") || !strings.Contains(out, "would kill    pid ") {
		t.Errorf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	if left, _ := filepath.Glob("/run/netns/" + id + "-*"); len(left) != len(nss) {
		t.Fatalf("the dry run removed namespaces: %d of %d left", len(left), len(nss))
	}

	code, out, errOut = runCLI("clean")
	if code != 0 {
		t.Errorf("clean: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"removed   namespace " + id + "-wan", "killed    pid ", "removed   marker ",
		"lab " + live.ID() + ": left alone, its owner runs"} {
		if !strings.Contains(out, want) {
			t.Errorf("clean output lacks %q:\n%s", want, out)
		}
	}
	if left, _ := filepath.Glob("/run/netns/" + id + "-*"); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	for _, p := range pids {
		if st, ok := running(p); ok {
			t.Errorf("process %d still runs: %s", p, st)
		}
	}
	for _, d := range append(runDirs, filepath.Join(netlab.MarkerDir, id)) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left", d)
		}
	}
	if _, err := os.Stat("/run/netns/" + liveNS.Name()); err != nil {
		t.Errorf("the live lab's namespace was removed: %v", err)
	}
	if ok, _ := liveProc.Exited(); ok {
		t.Error("the live lab's process was killed")
	}
}

// running reports whether pid exists and is not a zombie (a killed child of
// the dead run waits for init to reap it), with its /proc stat line.
func running(pid int) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", false
	}
	st := string(b)
	i := strings.LastIndexByte(st, ')')
	return st, i < 0 || !strings.HasPrefix(st[i+1:], " Z")
}

// labOf finds the lab whose marker names pid and returns its ID and run
// directories.
func labOf(t *testing.T, pid int) (string, []string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(netlab.MarkerDir, "vl*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var m struct {
			ID   string   `json:"id"`
			PID  int      `json:"pid"`
			Dirs []string `json:"dirs"`
		}
		if json.Unmarshal(b, &m) == nil && m.PID == pid {
			return m.ID, m.Dirs
		}
	}
	t.Fatalf("no marker names pid %d", pid)
	return "", nil
}

// syncBuf is a bytes.Buffer safe for a child's output and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
