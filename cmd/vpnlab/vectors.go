package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vpnlab/vpnlab/testvectors"
)

func newVectorsCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "vectors PATH...",
		Short: "Run JSON known-answer test vectors",
		Long: `Run known-answer test vectors stored as JSON files (format: docs/testvectors.md).

Each PATH is a vector file or a directory, searched recursively for *.json.
One line is printed per vector, then a summary. The exit status is 1 if any
vector fails or any file cannot be read, is not valid, or has an unknown kind.

Known kinds: ` + strings.Join(testvectors.Kinds(), ", "),
		Example: "  vpnlab vectors testvectors/\n  vpnlab vectors testvectors/prf_rfc4868.json my-vectors/",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			results, runErr := testvectors.RunPaths(args)
			passed, failed := 0, 0
			for _, r := range results {
				if r.Pass {
					passed++
					if !quiet {
						fmt.Fprintf(out, "PASS  %s  %s  %s\n", r.Kind, filepath.Base(r.File), r.Name)
					}
					continue
				}
				failed++
				fmt.Fprintf(out, "FAIL  %s  %s  %s : %s\n", r.Kind, filepath.Base(r.File), r.Name, r.Detail)
			}
			var fileErrs []error
			if runErr != nil {
				if j, ok := runErr.(interface{ Unwrap() []error }); ok {
					fileErrs = j.Unwrap()
				} else {
					fileErrs = []error{runErr}
				}
				for _, e := range fileErrs {
					fmt.Fprintf(errOut, "ERROR %v\n", e)
				}
			}
			summary := fmt.Sprintf("%d passed, %d failed", passed, failed)
			if len(fileErrs) > 0 {
				summary += fmt.Sprintf(", %d file error(s)", len(fileErrs))
			}
			fmt.Fprintln(out, summary)
			if failed > 0 || len(fileErrs) > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only failures and the summary")
	return cmd
}
