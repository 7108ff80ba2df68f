package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

// newCleanCmd: vpnlab clean [--dry-run]
func newCleanCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "clean [--dry-run]",
		Short: "Remove what killed scenario runs and tests left behind (needs root): namespaces, processes, state",
		Long: `Finds the labs (network namespaces of vpnlab run and of the tests) whose owner
died without cleaning up, e.g. killed with SIGKILL, and removes them: the
processes inside their namespaces (gateways, peers) are killed, the namespaces
deleted (with the nftables rules, veth pairs and TUN devices inside them), the
run's temporary directory and the lab's marker removed.

A namespace is removed only when its name is a lab's (vlXXXXXX-ROLE) and the
lab's marker (/run/vpnlab/labs/vlXXXXXX) names an owner process that no
longer runs. Labs of running runs are left alone, and so are namespaces that
only look like a lab's (no marker): they are listed.

--dry-run lists what would be removed and removes nothing.

Exit status: 0 nothing left to clean, 1 something could not be removed,
3 not root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := netlab.Usable(); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "vpnlab clean: %v\n", err)
				return exitError{exitEnvironment}
			}
			sv, err := netlab.Leftovers()
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "vpnlab clean: %v\n", err)
				return exitError{exitFail}
			}
			if !clean(cmd.OutOrStdout(), cmd.ErrOrStderr(), sv, dryRun) {
				return exitError{exitFail}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be removed, remove nothing")
	return cmd
}

// clean reports the survey and removes the dead labs (unless dryRun); false
// if something could not be removed.
func clean(out, errOut io.Writer, sv *netlab.Survey, dryRun bool) bool {
	ok := true
	for _, l := range sv.Dead {
		fmt.Fprintf(out, "lab %s: owner pid %d is gone (%s, started %s)\n", l.ID, l.Owner, shorten(l.Command), l.Created.Local().Format(time.DateTime))
		if dryRun {
			for _, p := range l.Processes {
				fmt.Fprintf(out, "  would kill    pid %d (%s) in %s\n", p.PID, p.Command, p.Namespace)
			}
			for _, ns := range l.Namespaces {
				fmt.Fprintf(out, "  would remove  namespace %s\n", ns)
			}
			for _, d := range l.Dirs {
				fmt.Fprintf(out, "  would remove  directory %s\n", d)
			}
			fmt.Fprintf(out, "  would remove  marker %s\n", l.Marker)
			continue
		}
		if err := l.Remove(func(s string) { fmt.Fprintf(out, "  %s\n", s) }); err != nil {
			fmt.Fprintf(errOut, "vpnlab clean: %v\n", err)
			ok = false
		}
	}
	for _, l := range sv.Live {
		fmt.Fprintf(out, "lab %s: left alone, its owner runs (pid %d, %s): %d namespaces\n", l.ID, l.Owner, shorten(l.Command), len(l.Namespaces))
	}
	for _, ns := range sv.Unmarked {
		fmt.Fprintf(out, "namespace %s: left alone, no marker proves it is vpnlab's and unused (if it is: ip netns del %s)\n", ns, ns)
	}
	for _, m := range sv.BadMarkers {
		fmt.Fprintf(out, "marker %s: unreadable, left alone\n", m)
	}
	switch {
	case len(sv.Dead) == 0:
		fmt.Fprintln(out, "nothing to clean")
	case dryRun:
		fmt.Fprintf(out, "dry run: %d dead lab(s) would be removed\n", len(sv.Dead))
	case ok:
		fmt.Fprintf(out, "removed %d dead lab(s)\n", len(sv.Dead))
	}
	return ok
}

// shorten keeps a command line readable in one line.
func shorten(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return strings.TrimSpace(s)
}
