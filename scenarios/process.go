package scenarios

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/netlab"
)

// gwProc is one gateway of a run: its process (restarted as the steps
// say), its files, and the reader of its event file.
type gwProc struct {
	name   string // cgw or vgw
	binary string // profile: cgw or vgw
	ns     *netlab.NS
	exe    string // the vpnlab binary ("vpnlab gateway PROFILE ...")
	env    []string
	files  gatewayFiles

	clientOnce sync.Once
	cl         *control.Client

	mu   sync.Mutex
	proc *netlab.Proc
	logs []string // one log file per start

	// foreign is set for a customer gateway that is not a vpnlab process
	// (kind strongswan): the methods below act on its daemons instead.
	foreign *foreignCGW
}

// logFiles are the gateway's logs so far.
func (g *gwProc) logFiles() []string {
	if g.foreign != nil {
		return g.foreign.logFiles()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.logs...)
}

// start runs the gateway and waits until its control API answers.
func (g *gwProc) start(ctx context.Context) error {
	if g.foreign != nil {
		return g.foreign.start(ctx)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc != nil {
		if ok, _ := g.proc.Exited(); !ok {
			return fmt.Errorf("%s is already running", g.name)
		}
	}
	cmd := g.ns.Command(context.Background(), g.exe, "gateway", g.binary, "--config", g.files.Config, "--events", g.files.Events)
	cmd.Env = append(os.Environ(), g.env...)
	p, err := g.ns.StartCmd(cmd, g.name)
	if err != nil {
		return err
	}
	g.proc = p
	g.logs = append(g.logs, p.Log)
	c := control.Dial("unix:" + g.files.Control)
	deadline := time.Now().Add(15 * time.Second)
	for {
		hctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := c.Health(hctx)
		cancel()
		if err == nil {
			return nil
		}
		if ok, exitErr := p.Exited(); ok {
			return fmt.Errorf("%s exited at start (%v); the end of its log (%s):\n%s", g.name, exitErr, p.Log, shortTail(p.Log))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: control API not answering after 15s: %v; the end of its log (%s):\n%s", g.name, err, p.Log, shortTail(p.Log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the gateway with SIGTERM (it sends DELETEs and removes its
// routes), or with SIGKILL when kill is set (nothing is said to the peer).
func (g *gwProc) stop(kill bool) error {
	if g.foreign != nil {
		return g.foreign.stop(kill)
	}
	g.mu.Lock()
	p := g.proc
	g.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s is not running", g.name)
	}
	if ok, _ := p.Exited(); ok {
		return fmt.Errorf("%s is not running (it exited)", g.name)
	}
	if kill {
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		select {
		case <-p.Done():
			return nil
		case <-time.After(5 * time.Second):
			return fmt.Errorf("%s did not exit after SIGKILL", g.name)
		}
	}
	err := p.Stop(5 * time.Second)
	if err != nil {
		if ee, ok := err.(interface{ ExitCode() int }); ok && ee.ExitCode() == 0 {
			return nil
		}
		return fmt.Errorf("%s: %v (log %s)", g.name, err, p.Log)
	}
	return nil
}

func (g *gwProc) running() bool {
	if g.foreign != nil {
		return g.foreign.running()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc == nil {
		return false
	}
	ok, _ := g.proc.Exited()
	return !ok
}

// client is the gateway's control client, one for the whole run: a new
// one per call (the runner polls every 200 ms) left each call's connection
// idle in a transport of its own until the server's idle timeout, some 600
// open sockets per gateway (seen in scripts/soak.sh).
func (g *gwProc) client() *control.Client {
	g.clientOnce.Do(func() { g.cl = control.Dial("unix:" + g.files.Control) })
	return g.cl
}

// followEvents reads the gateway's event file as it grows (across
// restarts: the file is appended to) and hands each event to add, until
// ctx ends; then it reads what is left once more.
func followEvents(ctx context.Context, path string, add func(status.Event)) {
	var f *os.File
	var r *bufio.Reader
	var partial []byte
	read := func() {
		if f == nil {
			var err error
			if f, err = os.Open(path); err != nil {
				f = nil
				return
			}
			r = bufio.NewReader(f)
		}
		for {
			line, err := r.ReadBytes('\n')
			if err == io.EOF {
				partial = append(partial, line...)
				return
			}
			if err != nil {
				return
			}
			if len(partial) > 0 {
				line = append(partial, line...)
				partial = nil
			}
			var ev status.Event
			if json.Unmarshal(line, &ev) == nil {
				add(ev)
			}
		}
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			read()
			if f != nil {
				f.Close()
			}
			return
		case <-t.C:
			read()
		}
	}
}

// shortTail is the end of a log for an error message: the last lines, each
// cut to a readable length (JSON log lines can be kilobytes long).
func shortTail(path string) string {
	lines := strings.Split(netlab.TailFile(path, 6), "\n")
	for i, l := range lines {
		if len(l) > 240 {
			lines[i] = l[:237] + "..."
		}
		lines[i] = "  " + lines[i]
	}
	return strings.Join(lines, "\n")
}
