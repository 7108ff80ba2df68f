// Package testvectors runs known-answer test vectors stored as JSON files
// against vpnlab's crypto code.
//
// Every file has the shape
//
//	{"kind": "...", "source": "...", "notes": "...", "vectors": [{"name": "...", ...}]}
//
// where kind selects a checker registered with Register, source cites where
// the values come from, notes is optional free text and every vector has a
// name plus kind-specific fields. Binary values are lowercase hex strings.
// See docs/testvectors.md for the kinds and their fields.
package testvectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Result is the outcome of one vector.
type Result struct {
	File   string // path of the vector file as passed to RunFile/RunPaths
	Kind   string
	Name   string // the vector's display name
	Pass   bool
	Detail string // why it failed (empty on success)
}

// CheckFunc verifies one vector of a kind. raw is the vector's JSON object.
// It returns a nil error if the vector passes and otherwise an error
// describing the mismatch (typically "expected X got Y") or why the vector is
// malformed. label, if not empty, replaces the vector's "name" as display
// name.
type CheckFunc func(raw json.RawMessage) (label string, err error)

var (
	mu       sync.RWMutex
	checkers = map[string]CheckFunc{}
)

// Register makes a vector kind available. It panics if kind is empty, fn is
// nil or the kind is already registered (registration happens in init
// functions, so this is a programming error).
func Register(kind string, fn CheckFunc) {
	if kind == "" || fn == nil {
		panic("testvectors: Register with empty kind or nil func")
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := checkers[kind]; dup {
		panic("testvectors: kind " + kind + " registered twice")
	}
	checkers[kind] = fn
}

// Kinds returns the registered kinds, sorted.
func Kinds() []string {
	mu.RLock()
	defer mu.RUnlock()
	ks := make([]string, 0, len(checkers))
	for k := range checkers {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func checker(kind string) (CheckFunc, bool) {
	mu.RLock()
	defer mu.RUnlock()
	fn, ok := checkers[kind]
	return fn, ok
}

type fileDoc struct {
	Kind    *string           `json:"kind"`
	Source  *string           `json:"source"`
	Notes   string            `json:"notes"`
	Vectors []json.RawMessage `json:"vectors"`
}

// RunFile runs every vector in one file. It returns an error (and no
// results) if the file cannot be read, is not valid JSON of the documented
// shape, or names a kind that is not registered; individual failing or
// malformed vectors are reported as failed Results instead.
func RunFile(path string) ([]Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read vector file: %w", path, err)
	}
	var doc fileDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: invalid vector file: %v", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: invalid vector file: trailing data after the JSON object", path)
	}
	switch {
	case doc.Kind == nil || *doc.Kind == "":
		return nil, fmt.Errorf("%s: invalid vector file: missing \"kind\" (known kinds: %s)", path, strings.Join(Kinds(), ", "))
	case doc.Source == nil || strings.TrimSpace(*doc.Source) == "":
		return nil, fmt.Errorf("%s: invalid vector file: missing \"source\" (say where the values come from)", path)
	case len(doc.Vectors) == 0:
		return nil, fmt.Errorf("%s: invalid vector file: no \"vectors\"", path)
	}
	kind := *doc.Kind
	fn, ok := checker(kind)
	if !ok {
		return nil, fmt.Errorf("%s: unknown vector kind %q (known kinds: %s)", path, kind, strings.Join(Kinds(), ", "))
	}
	results := make([]Result, 0, len(doc.Vectors))
	for i, raw := range doc.Vectors {
		results = append(results, runOne(path, kind, i, raw, fn))
	}
	return results, nil
}

func runOne(path, kind string, i int, raw json.RawMessage, fn CheckFunc) (r Result) {
	r = Result{File: path, Kind: kind, Name: fmt.Sprintf("vector #%d", i+1)}
	var head struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		r.Detail = fmt.Sprintf("invalid vector: %v", err)
		return r
	}
	if head.Name == "" {
		r.Detail = "invalid vector: missing \"name\""
		return r
	}
	r.Name = head.Name
	defer func() {
		if p := recover(); p != nil {
			r.Pass = false
			r.Detail = fmt.Sprintf("checker panicked: %v", p)
		}
	}()
	label, err := fn(raw)
	if label != "" {
		r.Name = label
	}
	if err != nil {
		r.Detail = err.Error()
		return r
	}
	r.Pass = true
	return r
}

// RunPaths runs files and directories. A directory contributes every *.json
// file below it (recursively, in lexical order; directories whose name starts
// with "." or "_" are skipped). Results of all files that could be run are
// returned; if some path or file could not be run, the returned error
// describes each of them (errors.Join).
func RunPaths(paths []string) ([]Result, error) {
	var (
		results []Result
		errs    []error
	)
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			rs, err := RunFile(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			results = append(results, rs...)
		}
	}
	return results, errors.Join(errs...)
}

func expand(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read: %w", p, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != p && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), ".json") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read directory: %w", p, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no *.json vector files in directory", p)
	}
	slices.Sort(files)
	return files, nil
}
