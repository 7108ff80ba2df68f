package ike

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkFuzzTargets runs each stateful fuzz target's body over its seed
// corpus in ike/testdata/fuzz: the cost of one execution, which is what
// bounds how many a coverage-guided run gets through (profile with
// go test -run '^$' -bench FuzzTargets -cpuprofile).

// fuzzBodies are the bodies of the stateful fuzz targets, by target name.
var fuzzBodies = map[string]func(testing.TB, []byte){
	"FuzzQM1":           fuzzQM1Body,
	"FuzzMM5":           func(t testing.TB, d []byte) { closeIf(runPhase1Fuzz(t, d, phase1Targets["MM5"])) },
	"FuzzMM6":           func(t testing.TB, d []byte) { closeIf(runPhase1Fuzz(t, d, phase1Targets["MM6"])) },
	"FuzzAM2":           func(t testing.TB, d []byte) { closeIf(runPhase1Fuzz(t, d, phase1Targets["AM2"])) },
	"FuzzAM3":           func(t testing.TB, d []byte) { closeIf(runPhase1Fuzz(t, d, phase1Targets["AM3"])) },
	"FuzzQM2":           func(t testing.TB, d []byte) { closeIf(runQMFuzz(t, 2, d)) },
	"FuzzQM3":           func(t testing.TB, d []byte) { closeIf(runQMFuzz(t, 3, d)) },
	"FuzzInformational": func(t testing.TB, d []byte) { closeIf(runInfoFuzz(t, d)) },
	"FuzzFirstMessage":  fuzzFirstBody,
}

// closeIf closes a harness a target body returned (nil: input out of range).
func closeIf(h *qmHarness) {
	if h != nil {
		h.close()
	}
}

// corpusInputs reads the []byte inputs of a target's corpus directory (the
// "go test fuzz v1" format, one []byte value per file).
func corpusInputs(tb testing.TB, target string) [][]byte {
	dir := filepath.Join("testdata", "fuzz", target)
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			tb.Fatalf("%s: not a one-[]byte corpus file", e.Name())
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			tb.Fatalf("%s: %v", e.Name(), err)
		}
		out = append(out, []byte(s))
	}
	return out
}

func BenchmarkFuzzTargets(b *testing.B) {
	names := make([]string, 0, len(fuzzBodies))
	for n := range fuzzBodies {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		body, inputs := fuzzBodies[n], corpusInputs(b, n)
		b.Run(n, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				body(b, inputs[i%len(inputs)])
			}
		})
	}
}
