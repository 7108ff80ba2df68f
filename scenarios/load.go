package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem of a scenario file, at a line.
type Error struct {
	File string
	Line int // 0 when the problem has no single place
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ErrorList is every problem found, in line order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Options select the variables of a run.
type Options struct {
	Profile string            // a key of the scenario's profiles
	Set     map[string]string // --set name=value
}

// Load reads, substitutes variables in, decodes and validates a scenario
// file. Every problem is reported with file and line (an ErrorList).
func Load(path string, o Options) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path, o)
}

// Parse is Load on data already read; file names it in errors.
func Parse(data []byte, file string, o Options) (*Scenario, error) {
	el := &errList{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			el.add(0, "empty scenario file")
		} else {
			el.addYAML(err)
		}
		return nil, el.err()
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		el.add(root.Line, "a scenario is a mapping (name, topology, steps, ...)")
		return nil, el.err()
	}
	// Variables first: they are substituted into every other value.
	eff := el.variables(root, o)
	substitute(root, eff, el)
	checkKeys(root, reflect.TypeOf(Scenario{}), "", el)
	if len(el.l) > 0 {
		return nil, el.err()
	}
	s := &Scenario{File: file, Effective: eff}
	if err := root.Decode(s); err != nil {
		el.addYAML(err)
		return nil, el.err()
	}
	s.File, s.Effective = file, eff
	validate(s, root, el)
	if len(el.l) > 0 {
		return nil, el.err()
	}
	return s, nil
}

// errList collects Errors.
type errList struct {
	file string
	l    ErrorList
}

func (el *errList) add(line int, format string, args ...any) {
	el.l = append(el.l, &Error{File: el.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// addYAML turns yaml.v3's "line N: msg" errors into Errors.
func (el *errList) addYAML(err error) {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, m := range msgs {
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			n, _ := strconv.Atoi(g[1])
			el.add(n, "%s", cleanYAMLMsg(g[2]))
		} else {
			el.add(0, "%s", cleanYAMLMsg(strings.TrimPrefix(m, "yaml: ")))
		}
	}
}

func cleanYAMLMsg(m string) string {
	m = strings.ReplaceAll(m, "!!str", "a string")
	m = strings.ReplaceAll(m, "!!seq", "a list")
	m = strings.ReplaceAll(m, "!!map", "a mapping")
	m = strings.ReplaceAll(m, "!!int", "a number")
	m = strings.ReplaceAll(m, "!!float", "a number")
	m = strings.ReplaceAll(m, "scenarios.", "")
	return m
}

func (el *errList) err() error {
	sort.SliceStable(el.l, func(i, j int) bool { return el.l[i].Line < el.l[j].Line })
	return el.l
}

// lineMsg formats a message the way yaml.v3 does, so addYAML places it.
func lineMsg(line int, msg string) string { return fmt.Sprintf("line %d: %s", line, msg) }

func quote(s string) string { return strconv.Quote(s) }

// mapValue returns the value node of key in mapping n (nil if absent).
func mapValue(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

var varName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// variables computes the effective variables: vars, then the profile's
// overrides, then o.Set. Profiles and --set may only set declared vars.
func (el *errList) variables(root *yaml.Node, o Options) map[string]string {
	eff := map[string]string{}
	_, vars := mapValue(root, "vars")
	if vars != nil {
		if vars.Kind != yaml.MappingNode {
			el.add(vars.Line, "vars: expected a mapping of name: value")
		} else {
			for i := 0; i+1 < len(vars.Content); i += 2 {
				k, v := vars.Content[i], vars.Content[i+1]
				if !varName.MatchString(k.Value) {
					el.add(k.Line, "vars: bad name %q (lower case letters, digits, _; starting with a letter)", k.Value)
				}
				if v.Kind != yaml.ScalarNode {
					el.add(v.Line, "vars.%s: expected a single value", k.Value)
					continue
				}
				eff[k.Value] = v.Value
			}
		}
	}
	_, profiles := mapValue(root, "profiles")
	if profiles != nil && profiles.Kind != yaml.MappingNode {
		el.add(profiles.Line, "profiles: expected a mapping of profile name to variable overrides")
		profiles = nil
	}
	var names []string
	if profiles != nil {
		for i := 0; i+1 < len(profiles.Content); i += 2 {
			k, v := profiles.Content[i], profiles.Content[i+1]
			names = append(names, k.Value)
			if v.Kind != yaml.MappingNode {
				el.add(v.Line, "profiles.%s: expected a mapping of variable: value", k.Value)
				continue
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				if _, ok := eff[v.Content[j].Value]; !ok && vars != nil {
					el.add(v.Content[j].Line, "profiles.%s: %q is not a variable declared in vars (declared: %s)", k.Value, v.Content[j].Value, keys(eff))
				} else if vars == nil {
					el.add(v.Content[j].Line, "profiles.%s: %q: declare the variable and its default in vars first", k.Value, v.Content[j].Value)
				}
			}
		}
	}
	if o.Profile != "" {
		_, p := mapValue(profiles, o.Profile)
		if p == nil {
			el.add(0, "--profile %s: the scenario has no such profile (it has: %s)", o.Profile, orNone(names))
		} else if p.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(p.Content); j += 2 {
				eff[p.Content[j].Value] = p.Content[j+1].Value
			}
		}
	}
	for k, v := range o.Set {
		if _, ok := eff[k]; !ok {
			el.add(0, "--set %s: no such variable (declared: %s)", k, keys(eff))
			continue
		}
		eff[k] = v
	}
	return eff
}

func keys[V any](m map[string]V) string {
	var l []string
	for k := range m {
		l = append(l, k)
	}
	sort.Strings(l)
	return orNone(l)
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

var varRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// substitute replaces ${name} in every scalar outside vars and profiles.
func substitute(root *yaml.Node, eff map[string]string, el *errList) {
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.ScalarNode:
			if !strings.Contains(n.Value, "${") {
				return
			}
			n.Value = varRef.ReplaceAllStringFunc(n.Value, func(m string) string {
				name := m[2 : len(m)-1]
				v, ok := eff[name]
				if !ok {
					el.add(n.Line, "unknown variable ${%s} (declared in vars: %s)", name, keys(eff))
					return m
				}
				return v
			})
			// A substituted value is typed anew ("30" is a number again).
			n.Tag = ""
			n.Style = 0
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n == root && (n.Content[i].Value == "vars" || n.Content[i].Value == "profiles") {
					continue
				}
				walk(n.Content[i+1])
			}
		default:
			for _, c := range n.Content {
				walk(c)
			}
		}
	}
	walk(root)
}

// checkKeys reports keys of mappings that t (a struct) has no field for,
// with the allowed keys: the schema check. yaml.Node fields (inline
// gateway configurations) are checked later by the gateway's own parser.
func checkKeys(n *yaml.Node, t reflect.Type, path string, el *errList) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(yaml.Node{}) || t == reflect.TypeOf(StringList{}) || t == reflect.TypeOf(Duration(0)) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return
			}
			el.add(n.Line, "%s: expected a mapping with keys %s", orRoot(path), strings.Join(fieldNames(t), ", "))
			return
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				el.add(k.Line, "%s: unknown key %q (allowed: %s)", orRoot(path), k.Value, strings.Join(fieldNames(t), ", "))
				continue
			}
			if seen[k.Value] {
				el.add(k.Line, "%s: key %q given twice", orRoot(path), k.Value)
			}
			seen[k.Value] = true
			checkKeys(v, ft, join(path, k.Value), el)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return
			}
			el.add(n.Line, "%s: expected a list", path)
			return
		}
		for i, c := range n.Content {
			checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), el)
		}
	}
}

func orRoot(p string) string {
	if p == "" {
		return "scenario"
	}
	return p
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func fieldNames(t reflect.Type) []string {
	var l []string
	for i := 0; i < t.NumField(); i++ {
		name := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if name != "" && name != "-" {
			l = append(l, name)
		}
	}
	return l
}
