package testvectors

import (
	"bytes"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Hex is a binary value written as a lowercase hex string in vector files.
// A missing field decodes to nil, "" to an empty non-nil slice.
type Hex []byte

// UnmarshalJSON implements json.Unmarshaler.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("hex value must be a JSON string: %v", err)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'F' {
			return fmt.Errorf("hex value %q must be lowercase", abbrev(s))
		}
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("bad hex value %q: %v", abbrev(s), err)
	}
	if v == nil {
		v = []byte{}
	}
	*h = v
	return nil
}

// MarshalJSON implements json.Marshaler.
func (h Hex) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

func abbrev(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Common holds the fields every vector may have.
type Common struct {
	Name   string `json:"name"`
	Source string `json:"source,omitempty"`
	Notes  string `json:"notes,omitempty"`
}

// DecodeVector decodes raw into v (a pointer to a struct that should embed
// Common), rejecting unknown fields so that typos in vector files are
// reported instead of silently ignored.
func DecodeVector(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid vector: %v", err)
	}
	return nil
}

// Require returns an error naming the first field whose value is nil.
// Pairs are field name, value.
func Require(pairs ...any) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		name := pairs[i].(string)
		switch v := pairs[i+1].(type) {
		case Hex:
			if v == nil {
				return fmt.Errorf("invalid vector: missing %q", name)
			}
		case string:
			if v == "" {
				return fmt.Errorf("invalid vector: missing %q", name)
			}
		default:
			panic(fmt.Sprintf("Require: unsupported type %T", v))
		}
	}
	return nil
}

// Mismatch is the error for a computed value that differs from the expected
// one.
type Mismatch struct {
	Field         string
	Expected, Got []byte
}

func (m *Mismatch) Error() string {
	return fmt.Sprintf("%s: expected %x got %x", m.Field, m.Expected, m.Got)
}

// Expect returns a *Mismatch if got != want.
func Expect(field string, want, got []byte) error {
	if len(want) != len(got) || subtle.ConstantTimeCompare(want, got) != 1 {
		return &Mismatch{Field: field, Expected: want, Got: got}
	}
	return nil
}
