package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The JSON Schema for editors (scenario.schema.json) must describe exactly
// the keys the runner accepts: these tests walk the Go types of format.go
// by reflection next to the schema, without a schema library.

const schemaFile = "scenario.schema.json"

// jsonSchema is the parsed schema with $ref resolution.
type jsonSchema struct {
	root map[string]any
}

func loadSchema(t *testing.T) *jsonSchema {
	t.Helper()
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	if root["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("%s: $schema is %v, want draft 2020-12", schemaFile, root["$schema"])
	}
	return &jsonSchema{root: root}
}

// ref returns the node a "#/$defs/..." reference names.
func (s *jsonSchema) ref(t *testing.T, r string) any {
	t.Helper()
	if !strings.HasPrefix(r, "#/") {
		t.Fatalf("%s: only local references are supported, not %q", schemaFile, r)
	}
	var n any = s.root
	for _, p := range strings.Split(strings.TrimPrefix(r, "#/"), "/") {
		m, ok := n.(map[string]any)
		if !ok {
			t.Fatalf("%s: reference %q does not resolve", schemaFile, r)
		}
		if n, ok = m[p]; !ok {
			t.Fatalf("%s: reference %q does not resolve", schemaFile, r)
		}
	}
	return n
}

// objects returns the object schemas (those with properties) that a value
// described by n can be: through $ref, anyOf/oneOf/allOf branches and, for
// lists, their items.
func (s *jsonSchema) objects(t *testing.T, n any) []map[string]any {
	t.Helper()
	m, ok := n.(map[string]any)
	if !ok {
		return nil // true/false schemas
	}
	var out []map[string]any
	if r, ok := m["$ref"].(string); ok {
		out = append(out, s.objects(t, s.ref(t, r))...)
	}
	if _, ok := m["properties"]; ok {
		out = append(out, m)
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if l, ok := m[k].([]any); ok {
			for _, b := range l {
				out = append(out, s.objects(t, b)...)
			}
		}
	}
	if it, ok := m["items"]; ok {
		out = append(out, s.objects(t, it)...)
	}
	return out
}

// enum collects the enum values n allows (through $ref and branches).
func (s *jsonSchema) enum(t *testing.T, n any) []string {
	t.Helper()
	m, ok := n.(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	if r, ok := m["$ref"].(string); ok {
		out = append(out, s.enum(t, s.ref(t, r))...)
	}
	if l, ok := m["enum"].([]any); ok {
		for _, v := range l {
			out = append(out, fmt.Sprint(v))
		}
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if l, ok := m[k].([]any); ok {
			for _, b := range l {
				out = append(out, s.enum(t, b)...)
			}
		}
	}
	return out
}

// property returns the schemas of key in any of the object schemas.
func property(nodes []map[string]any, key string) []any {
	var out []any
	for _, n := range nodes {
		if p, ok := n["properties"].(map[string]any)[key]; ok {
			out = append(out, p)
		}
	}
	return out
}

// yamlKeys are the keys a struct accepts (its yaml tags), as the key
// check sees them.
func yamlKeys(t reflect.Type) []string { return fieldNames(t) }

// structType is the struct a field holds (through pointers and slices),
// or nil for values the key check does not descend into.
func structType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	switch t {
	case reflect.TypeOf(yaml.Node{}), reflect.TypeOf(StringList{}), reflect.TypeOf(Duration(0)):
		return nil
	}
	return t
}

// checkStruct compares the keys of struct typ with the properties of the
// object schemas nodes (which together describe the value at path), then
// recurses into every field that is itself a struct.
func (s *jsonSchema) checkStruct(t *testing.T, typ reflect.Type, nodes []map[string]any, path string) {
	t.Helper()
	if len(nodes) == 0 {
		t.Errorf("%s: no object schema for %s (Go type %s)", schemaFile, path, typ.Name())
		return
	}
	have := map[string]bool{}
	for _, n := range nodes {
		if n["additionalProperties"] != false {
			t.Errorf("%s: %s: additionalProperties must be false (the runner rejects unknown keys)", schemaFile, path)
		}
		for k := range n["properties"].(map[string]any) {
			have[k] = true
		}
		if req, ok := n["required"].([]any); ok {
			for _, r := range req {
				if _, ok := n["properties"].(map[string]any)[r.(string)]; !ok {
					t.Errorf("%s: %s: required %q is not a property", schemaFile, path, r)
				}
			}
		}
	}
	want := map[string]bool{}
	for _, k := range yamlKeys(typ) {
		want[k] = true
		if !have[k] {
			t.Errorf("%s: %s: key %q of %s is missing from the schema", schemaFile, path, k, typ.Name())
		}
	}
	for k := range have {
		if !want[k] {
			t.Errorf("%s: %s: the schema has %q, which %s does not accept", schemaFile, path, k, typ.Name())
		}
	}
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		key := strings.Split(f.Tag.Get("yaml"), ",")[0]
		ft := structType(f.Type)
		if key == "" || key == "-" || ft == nil {
			continue
		}
		var child []map[string]any
		for _, p := range property(nodes, key) {
			child = append(child, s.objects(t, p)...)
		}
		s.checkStruct(t, ft, child, join(path, key))
	}
}

func TestSchemaKeys(t *testing.T) {
	s := loadSchema(t)
	root := s.objects(t, s.root)
	if len(root) != 1 {
		t.Fatalf("%s: the root must be one object schema", schemaFile)
	}
	s.checkStruct(t, reflect.TypeOf(Scenario{}), root, "scenario")
}

// A step is one of the actions: every branch of the step's oneOf has name,
// timeout and exactly one action key, which it requires; together the
// branches cover every action of Step.
func TestSchemaStepActions(t *testing.T) {
	s := loadSchema(t)
	step, ok := s.ref(t, "#/$defs/step").(map[string]any)
	if !ok {
		t.Fatalf("%s: no $defs/step", schemaFile)
	}
	branches, _ := step["oneOf"].([]any)
	var got []string
	for i, b := range branches {
		objs := s.objects(t, b)
		if len(objs) != 1 {
			t.Errorf("%s: step oneOf[%d]: want one object schema, have %d", schemaFile, i, len(objs))
			continue
		}
		props := objs[0]["properties"].(map[string]any)
		var action []string
		for k := range props {
			if k != "name" && k != "timeout" {
				action = append(action, k)
			}
		}
		if len(action) != 1 || props["name"] == nil || props["timeout"] == nil {
			t.Errorf("%s: step oneOf[%d]: properties must be name, timeout and one action, have %v", schemaFile, i, sortedKeys(props))
			continue
		}
		req, _ := objs[0]["required"].([]any)
		if len(req) != 1 || req[0] != action[0] {
			t.Errorf("%s: step oneOf[%d] (%s): required must be [%s], is %v", schemaFile, i, action[0], action[0], req)
		}
		got = append(got, action[0])
	}
	var want []string
	for _, k := range yamlKeys(reflect.TypeOf(Step{})) {
		if k != "name" && k != "timeout" {
			want = append(want, k)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: step actions %v, want %v (Step's keys but name and timeout)", schemaFile, got, want)
	}
}

// stepAction returns the object schemas of an action's value.
func (s *jsonSchema) stepAction(t *testing.T, action string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, p := range property(s.objects(t, s.ref(t, "#/$defs/step")), action) {
		out = append(out, s.objects(t, p)...)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no object schema for the %s action", schemaFile, action)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return reflect.DeepEqual(a, b)
}

// The enums are the runner's own lists.
func TestSchemaEnums(t *testing.T) {
	s := loadSchema(t)
	for _, c := range []struct {
		what string
		node []any
		want []string
	}{
		{"impair.fault", property(s.stepAction(t, "impair"), "fault"), impairFaults},
		{"flow.proto", property(s.stepAction(t, "flow"), "proto"), flowProtocols},
		{"$defs/gateway", []any{s.ref(t, "#/$defs/gateway")}, gatewayNames},
		{"customer gateway.binary", property(s.objects(t, s.ref(t, "#/$defs/customerSide/properties/gateway")), "binary"), gatewayNames},
		{"aws gateway.binary", property(s.objects(t, s.ref(t, "#/$defs/awsSide/properties/gateway")), "binary"), gatewayNames},
		{"customer gateway.kind", property(s.objects(t, s.ref(t, "#/$defs/customerSide/properties/gateway")), "kind"), gatewayKinds},
		{"customer gateway.bgp", property(s.objects(t, s.ref(t, "#/$defs/customerSide/properties/gateway")), "bgp"), foreignBGPs},
	} {
		if len(c.node) != 1 {
			t.Errorf("%s: %s: not found", schemaFile, c.what)
			continue
		}
		if got := s.enum(t, c.node[0]); !sameSet(got, c.want) {
			t.Errorf("%s: %s enum %v, the runner allows %v", schemaFile, c.what, got, c.want)
		}
	}
	// Every action that names a gateway uses the gateway definition.
	for _, a := range []string{"start", "stop", "kill", "restart"} {
		p := property(s.objects(t, s.ref(t, "#/$defs/step")), a)
		if len(p) != 1 || !sameSet(s.enum(t, p[0]), gatewayNames) {
			t.Errorf("%s: %s: want the gateway enum %v", schemaFile, a, gatewayNames)
		}
	}
	for _, a := range []string{"ike_impair", "rekey", "initiate", "terminate", "bgp"} {
		p := property(s.stepAction(t, a), "gateway")
		if len(p) != 1 || !sameSet(s.enum(t, p[0]), gatewayNames) {
			t.Errorf("%s: %s.gateway: want the gateway enum %v", schemaFile, a, gatewayNames)
		}
	}
	// The NAT modes have no list in the runner: each one the schema
	// allows must load, and a value it does not allow must not.
	nat := property(s.objects(t, s.ref(t, "#/$defs/topology/properties/wan")), "nat")
	if len(nat) != 1 {
		t.Fatalf("%s: topology.wan.nat: not found", schemaFile)
	}
	modes := s.enum(t, nat[0])
	if len(modes) == 0 {
		t.Errorf("%s: topology.wan.nat has no enum", schemaFile)
	}
	for _, m := range append(modes, "cgnat") {
		src := "topology: {wan: {nat: " + m + "}}\nsteps: [{sleep: 1s}]\n"
		_, err := Parse([]byte(src), "x.yaml", Options{})
		if allowed := m != "cgnat"; allowed != (err == nil) {
			t.Errorf("topology.wan.nat %q: schema allows it: %v; the runner: %v", m, allowed, err)
		}
	}
}
