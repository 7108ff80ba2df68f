package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Allow is one line of the allow-list of skips that CI accepts: a test that
// skips for a reason other than a missing package, root or peer (a skip that
// the machine's load forced, say). Each entry says why.
//
// Format, one entry a line, '#' starts a comment:
//
//	PACKAGE-SUFFIX  TEST-REGEXP  REASON...
//
// PACKAGE-SUFFIX matches the end of the import path ("ike" matches
// github.com/vpnlab/vpnlab/ike, "ike/dh" its subpackage; "*" any package);
// TEST-REGEXP must match the whole test name (subtests included, "Top/sub").
type Allow struct {
	Package string
	Test    *regexp.Regexp
	Reason  string
	Line    int
}

// Covers reports whether the entry allows the skip.
func (a Allow) Covers(s Skip) bool {
	if a.Package != "*" && s.Package != a.Package && !strings.HasSuffix(s.Package, "/"+a.Package) {
		return false
	}
	return a.Test.MatchString(s.Test)
}

// ParseAllow reads an allow-list; name is used in error messages.
func ParseAllow(r io.Reader, name string) ([]Allow, error) {
	var out []Allow
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("%s:%d: want PACKAGE TEST-REGEXP REASON, got %q", name, n, line)
		}
		re, err := regexp.Compile("^(?:" + f[1] + ")$")
		if err != nil {
			return nil, fmt.Errorf("%s:%d: test pattern: %v", name, n, err)
		}
		out = append(out, Allow{Package: f[0], Test: re, Reason: strings.Join(f[2:], " "), Line: n})
	}
	return out, sc.Err()
}
