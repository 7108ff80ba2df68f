// Command cisummary reads `go test -json` on its standard input, prints the
// package results and the whole output of every failing test as they
// arrive, and ends with a summary of skipped tests (package, test, reason)
// and one closing line "tests: N passed, N failed, N skipped".
//
// It exits 1 when a test or package failed, and with -ci also when a test
// skipped that the allow-list (-allow FILE) does not cover: in CI a test
// that skips because root, a package or a peer is missing proves nothing,
// so it fails the run. .ci/run uses it:
//
//	go test -json ./... 2>&1 | cisummary -allow .ci/allowed-skips -ci
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, in io.Reader, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("cisummary", flag.ContinueOnError)
	fs.SetOutput(errOut)
	allowFile := fs.String("allow", "", "allow-list of skips CI accepts (PACKAGE TEST-REGEXP REASON per line)")
	ci := fs.Bool("ci", false, "fail when a test skipped that the allow-list does not cover")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var allow []Allow
	if *allowFile != "" {
		f, err := os.Open(*allowFile)
		if err != nil {
			fmt.Fprintf(errOut, "cisummary: %v\n", err)
			return 2
		}
		allow, err = ParseAllow(f, *allowFile)
		f.Close()
		if err != nil {
			fmt.Fprintf(errOut, "cisummary: %v\n", err)
			return 2
		}
	}
	s := newSummarizer(out, allow)
	if err := s.Consume(in); err != nil {
		fmt.Fprintf(errOut, "cisummary: reading the test stream: %v\n", err)
		return 2
	}
	return report(out, s.Summary(), *ci)
}

// report prints the skip summary and the closing line, and returns the exit
// status.
func report(out io.Writer, sum Summary, ci bool) int {
	code := 0
	var refused int
	fmt.Fprintf(out, "\n== skipped tests: %d\n", len(sum.Skipped))
	for _, sk := range sum.Skipped {
		verdict := "NOT ALLOWED"
		if sk.Allowed != nil {
			verdict = fmt.Sprintf("allowed (line %d: %s)", sk.Allowed.Line, sk.Allowed.Reason)
		} else {
			refused++
		}
		fmt.Fprintf(out, "SKIP %s %s\n     reason: %s\n     %s\n", sk.Package, sk.Test, sk.Reason, verdict)
	}
	for _, u := range sum.Unfinished {
		fmt.Fprintf(out, "UNFINISHED %s (counted as failed)\n", u)
	}
	for _, p := range sum.FailedPackages {
		fmt.Fprintf(out, "FAILED PACKAGE %s\n", p)
	}
	failed := sum.Failed + len(sum.Unfinished)
	if failed > 0 || len(sum.FailedPackages) > 0 {
		code = 1
	}
	if ci && refused > 0 {
		fmt.Fprintf(out, "CI=true: %d skipped test(s) are not on the allow-list: a skipped test proves nothing; install what it needs or fix it\n", refused)
		code = 1
	}
	fmt.Fprintf(out, "tests: %d passed, %d failed, %d skipped\n", sum.Passed, failed, len(sum.Skipped))
	return code
}
