package gwconfig

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a configuration file: where it is and which field.
// Its text is "FILE:LINE: PATH: MESSAGE", e.g.
// "vgw.yaml:12: tunnels[0].phase1.dh_groups: 7 is not allowed (allowed: 2, 14-24)".
// No Error ever contains a pre-shared key.
type Error struct {
	File string
	Line int    // 0 when unknown
	Path string // field path, e.g. "tunnels[0].phase1.lifetime"; "" for the whole file
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every error found in one file, in line order. Its text has
// one error per line.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Warning is a problem that does not stop loading (e.g. a customer gateway
// PSK that AWS would refuse). Same layout as Error.
type Warning Error

func (w *Warning) String() string { return (*Error)(w).Error() }

// decoder walks a yaml.Node tree, collecting errors with lines and paths.
type decoder struct {
	file  string
	errs  ErrorList
	warns []*Warning
}

func line(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

func (d *decoder) errf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line(n), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) warnf(n *yaml.Node, path, format string, args ...any) {
	d.warns = append(d.warns, &Warning{File: d.file, Line: line(n), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) sorted() ErrorList {
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
	return d.errs
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		}
		return "a string"
	}
	return "something else"
}

// object is a YAML mapping whose keys have been checked against a schema.
type object struct {
	d    *decoder
	path string
	node *yaml.Node
	vals map[string]*yaml.Node
}

// hint gives a better message for keys people are likely to try.
var hints = map[string]string{
	"psk":        "inline pre-shared keys are not supported: use psk_file or psk_env",
	"secret":     "inline pre-shared keys are not supported: use psk_file or psk_env",
	"pre_shared": "inline pre-shared keys are not supported: use psk_file or psk_env",
}

// object checks that n is a mapping with only the known keys (each once).
// A missing or null n gives an empty object.
func (d *decoder) object(n *yaml.Node, path string, known ...string) *object {
	o := &object{d: d, path: path, node: n, vals: map[string]*yaml.Node{}}
	n = resolve(n)
	if isNull(n) {
		return o
	}
	if n.Kind != yaml.MappingNode {
		d.errf(n, path, "expected a mapping, got %s", kindName(n))
		return o
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		key := k.Value
		ok := false
		for _, kn := range known {
			if kn == key {
				ok = true
				break
			}
		}
		switch {
		case !ok && hints[key] != "":
			d.errf(k, joinPath(path, key), "%s", hints[key])
		case !ok:
			d.errf(k, joinPath(path, key), "unknown field (known: %s)", strings.Join(known, ", "))
		case o.vals[key] != nil:
			d.errf(k, joinPath(path, key), "duplicate field (first on line %d)", o.vals[key].Line)
		default:
			if v == nil {
				v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: k.Line}
			}
			o.vals[key] = v
		}
	}
	return o
}

// get returns the value node of key, nil when absent or null.
func (o *object) get(key string) *yaml.Node {
	n := o.vals[key]
	if isNull(n) {
		return nil
	}
	return n
}

func (o *object) has(key string) bool { return o.get(key) != nil }

func (o *object) p(key string) string { return joinPath(o.path, key) }

// line of key's value, else of the object.
func (o *object) line(key string) *yaml.Node {
	if n := o.vals[key]; n != nil {
		return n
	}
	return o.node
}

func (o *object) scalar(key string) (*yaml.Node, bool) {
	n := o.get(key)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.ScalarNode {
		o.d.errf(n, o.p(key), "expected a single value, got %s", kindName(n))
		return nil, false
	}
	return n, true
}

func (o *object) str(key, def string) string {
	n, ok := o.scalar(key)
	if !ok {
		return def
	}
	return n.Value
}

// enum reads a string that must be one of allowed (case-insensitive); it
// returns the canonical (allowed) spelling.
func (o *object) enum(key, def string, allowed ...string) string {
	n, ok := o.scalar(key)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(a, n.Value) {
			return a
		}
	}
	o.d.errf(n, o.p(key), "%q is not allowed (allowed: %s)", n.Value, strings.Join(allowed, ", "))
	return def
}

func (o *object) boolean(key string, def bool) bool {
	n, ok := o.scalar(key)
	if !ok {
		return def
	}
	var b bool
	if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		o.d.errf(n, o.p(key), "expected true or false, got %q", n.Value)
		return def
	}
	return b
}

func parseInt(n *yaml.Node) (int64, bool) {
	if n.ShortTag() != "!!int" {
		return 0, false
	}
	var v int64
	if n.Decode(&v) != nil {
		return 0, false
	}
	return v, true
}

// integer reads an integer in [min, max].
func (o *object) integer(key string, def, min, max int64) int64 {
	n, ok := o.scalar(key)
	if !ok {
		return def
	}
	v, ok := parseInt(n)
	if !ok {
		o.d.errf(n, o.p(key), "expected an integer, got %q", n.Value)
		return def
	}
	if v < min || v > max {
		o.d.errf(n, o.p(key), "%d is out of range (allowed: %s)", v, rangeText(min, max))
		return def
	}
	return v
}

func rangeText(min, max int64) string {
	if max == math.MaxInt64 {
		return fmt.Sprintf(">= %d", min)
	}
	return fmt.Sprintf("%d-%d", min, max)
}

func (o *object) float(key string, def float64) (float64, bool) {
	n, ok := o.scalar(key)
	if !ok {
		return def, false
	}
	var v float64
	if t := n.ShortTag(); (t != "!!int" && t != "!!float") || n.Decode(&v) != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		o.d.errf(n, o.p(key), "expected a number, got %q", n.Value)
		return def, false
	}
	return v, true
}

// duration reads a Go duration string ("40s", "8h") or an integer number of
// seconds. Negative durations are refused. set is false when absent or bad.
func (o *object) duration(key string, def time.Duration) (v time.Duration, set bool) {
	n, ok := o.scalar(key)
	if !ok {
		return def, false
	}
	if i, isInt := parseInt(n); isInt {
		if i < 0 || i > math.MaxInt64/int64(time.Second) {
			o.d.errf(n, o.p(key), "%d is out of range", i)
			return def, false
		}
		return time.Duration(i) * time.Second, true
	}
	s := strings.TrimSpace(n.Value)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil && i >= 0 && i <= math.MaxInt64/int64(time.Second) {
		return time.Duration(i) * time.Second, true
	}
	dv, err := time.ParseDuration(s)
	if err != nil {
		o.d.errf(n, o.p(key), "expected a duration such as 40s, 1h or an integer number of seconds, got %q", n.Value)
		return def, false
	}
	if dv < 0 {
		o.d.errf(n, o.p(key), "%s is negative", n.Value)
		return def, false
	}
	return dv, true
}

// item is one element of a list with its node (for line numbers).
type item struct {
	n *yaml.Node
	s string
}

// list reads a list of scalars. A single scalar is a one-element list, and a
// scalar with commas ("a,b") is split, strongSwan style. set is true when the
// key is present, even with an empty list ([]).
func (o *object) list(key string) (items []item, set bool) {
	n := o.vals[key]
	if n == nil {
		return nil, false
	}
	if isNull(n) {
		return nil, true
	}
	switch n.Kind {
	case yaml.ScalarNode:
		for _, s := range strings.Split(n.Value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, item{n, s})
			}
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			c = resolve(c)
			if c.Kind != yaml.ScalarNode || isNull(c) {
				o.d.errf(c, o.p(key), "expected a list of values, got %s in it", kindName(c))
				continue
			}
			items = append(items, item{c, strings.TrimSpace(c.Value)})
		}
	default:
		o.d.errf(n, o.p(key), "expected a list, got %s", kindName(n))
	}
	return items, true
}
