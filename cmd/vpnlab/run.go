package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/vpnlab/vpnlab/scenarios"
	"github.com/vpnlab/vpnlab/scenarios/report"
)

// Exit statuses of vpnlab run.
const (
	exitFail        = 1 // an assertion or step failed
	exitInvalid     = 2 // bad command line or scenario file
	exitEnvironment = 3 // not root, a tool missing, the lab could not be built
)

// newRunCmd: vpnlab run [--out DIR] [--profile P] [--set k=v] [--check] FILE...
func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [flags] SCENARIO.yaml...",
		Short: "Run scenario files end to end (needs root): lab, gateways, faults, traffic, verdict",
		Long: `Runs each scenario file (docs/scenarios.md): builds its network namespaces, runs a
cgw and a vgw as separate processes, plays the timeline (faults, traffic, rekeys,
BGP changes, waits, assertions) and cleans everything up, whatever happens.

Writes to --out/NAME/ (default ./vpnlab-out/NAME/): both gateways' configurations,
logs and events, wan.pcap with keys.log and a wireshark/ profile that decrypts
it, timeline.json, junit.xml, summary.txt and failover.html/.svg.

Exit status: 0 every assertion held, 1 something failed, 2 bad usage or an
invalid scenario file, 3 the machine cannot run a lab (not root, tool missing).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			return f.run(cmd, files)
		},
	}
	cmd.Flags().StringVar(&f.out, "out", "vpnlab-out", "output `folder` (one subfolder per scenario)")
	cmd.Flags().StringVar(&f.profile, "profile", "", "variable profile of the scenario, e.g. aws (AWS timers) or demo")
	cmd.Flags().StringArrayVar(&f.set, "set", nil, "set a scenario variable: `name=value` (repeatable)")
	cmd.Flags().BoolVar(&f.check, "check", false, "validate the files and the gateway configurations they make, run nothing")
	cmd.Flags().BoolVar(&f.color, "color", true, "colour the verdict on a terminal")
	return cmd
}

// runFlags are vpnlab run's flags.
type runFlags struct {
	out, profile string
	set          []string
	check, color bool
}

// run validates every file before running any; with --check it runs none.
func (f *runFlags) run(cmd *cobra.Command, files []string) error {
	o := scenarios.Options{Profile: f.profile, Set: map[string]string{}}
	for _, kv := range f.set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--set %q: expected name=value", kv)
		}
		o.Set[k] = v
	}
	// Validate every file before running any.
	var list []*scenarios.Scenario
	bad := false
	for _, file := range files {
		s, err := scenarios.Load(file, o)
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "%v\n", err)
			bad = true
			continue
		}
		list = append(list, s)
	}
	if bad {
		return exitError{exitInvalid}
	}
	if f.check {
		return checkScenarios(cmd, list)
	}
	return f.runScenarios(cmd, list)
}

// checkScenarios checks the gateway configurations the scenarios make and
// prints each one's verdict and warnings.
func checkScenarios(cmd *cobra.Command, list []*scenarios.Scenario) error {
	bad := false
	for _, s := range list {
		if err := s.Check(); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "%v\n", err)
			bad = true
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d steps)\n", s.File, len(s.Steps))
		for _, w := range s.Warnings {
			fmt.Fprintf(cmd.OutOrStdout(), "  warning: %s\n", w)
		}
	}
	if bad {
		return exitError{exitInvalid}
	}
	return nil
}

// runScenarios runs the scenarios one after the other, each into its
// folder under --out, and prints each verdict; the exit status is the
// worst.
func (f *runFlags) runScenarios(cmd *cobra.Command, list []*scenarios.Scenario) error {
	if err := scenarios.Preflight(); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "vpnlab run: %v\n", err)
		return exitError{exitEnvironment}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stdout := cmd.OutOrStdout()
	tty := false
	if file, ok := stdout.(*os.File); ok && isTerminal(file) {
		tty = true
	}
	code := 0
	for _, s := range list {
		dir := filepath.Join(f.out, s.Name)
		fmt.Fprintf(stdout, "=== %s (%s) -> %s\n", s.Name, s.File, dir)
		r, err := scenarios.Run(ctx, s, scenarios.RunOptions{OutDir: dir, Progress: stdout, TTY: tty})
		if errors.Is(err, scenarios.ErrEnvironment) {
			fmt.Fprintf(cmd.ErrOrStderr(), "vpnlab run: %s\n", strings.TrimPrefix(err.Error(), scenarios.ErrEnvironment.Error()+": "))
			return exitError{exitEnvironment}
		}
		report.WriteSummaryOptions(stdout, r, report.SummaryOptions{Color: f.color && tty})
		switch {
		case err != nil && ctx.Err() != nil:
			return exitError{130}
		case err != nil:
			code = max(code, exitEnvironment)
		case !r.Passed:
			code = max(code, exitFail)
		}
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}

// isTerminal reports whether f is a terminal (a TCGETS ioctl works).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
