package keylog

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Record is one record line of a key log: a UAT table name and the record in
// that table's UAT syntax.
type Record struct {
	Table string // TableIKEv1, TableIKEv2 or TableESP
	Value string
}

// ESPPreferences are the ESP dissector preferences decryption needs: without
// enable_encryption_decode Wireshark ignores the esp_sa table;
// enable_authentication_check makes it verify (and show) each ICV.
var ESPPreferences = []string{
	"esp.enable_encryption_decode:TRUE",
	"esp.enable_authentication_check:TRUE",
}

// ReadFile parses a key log. Errors name the line number only, never the
// line (it may hold keys).
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keylog: %w", err)
	}
	defer f.Close()
	var recs []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		table, value, ok := strings.Cut(line, ":")
		if !ok || !isTable(table) {
			return nil, fmt.Errorf("keylog: %s line %d: not a %q, %q or %q record", path, n, TableIKEv1, TableIKEv2, TableESP)
		}
		if err := checkRecord(table, value); err != nil {
			return nil, fmt.Errorf("keylog: %s line %d: %v", path, n, err)
		}
		recs = append(recs, Record{Table: table, Value: value})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("keylog: reading %s: %w", path, err)
	}
	return recs, nil
}

// checkRecord is a light syntax check (field count, no quotes in the
// unquoted IKEv1 fields); its messages never include the value.
func checkRecord(table, value string) error {
	switch table {
	case TableIKEv1:
		f := strings.Split(value, ",")
		if len(f) != 2 || len(f[0]) != 16 || !isHex(f[0]) || !isHex(f[1]) || len(f[1]) == 0 {
			return fmt.Errorf("%s record needs <16 hex digit icookie>,<hex key>", TableIKEv1)
		}
	case TableIKEv2:
		return checkIKEv2Record(value)
	case TableESP:
		if strings.Count(value, `","`) != 7 || !strings.HasPrefix(value, `"`) || !strings.HasSuffix(value, `"`) {
			return fmt.Errorf("%s record needs 8 quoted fields", TableESP)
		}
	}
	return nil
}

// tables are the UAT tables a key log holds, in the order they are
// installed into a Wireshark profile.
var tables = []string{TableIKEv1, TableIKEv2, TableESP}

func isTable(t string) bool {
	for _, x := range tables {
		if x == t {
			return true
		}
	}
	return false
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// TsharkOptions reads the key log at path and returns tshark arguments that
// decrypt with it: "-o", "esp.enable_encryption_decode:TRUE", "-o",
// "esp.enable_authentication_check:TRUE", then "-o", "uat:<record>" for every
// record. Pass them to exec.Command unchanged (each value is one argv entry;
// no shell quoting is involved).
func TsharkOptions(path string) ([]string, error) {
	recs, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	args := make([]string, 0, 2*(len(ESPPreferences)+len(recs)))
	for _, p := range ESPPreferences {
		args = append(args, "-o", p)
	}
	for _, r := range recs {
		args = append(args, "-o", "uat:"+r.Table+":"+r.Value)
	}
	return args, nil
}

// WriteWiresharkUAT installs the key log at path into the Wireshark
// configuration or profile directory dir (created 0700 if missing; e.g.
// ~/.config/wireshark, ~/.config/wireshark/profiles/vpnlab, or any directory
// used with WIRESHARK_CONFIG_DIR=dir): it adds the records to dir's
// ikev1_decryption_table, ikev2_decryption_table and esp_sa files (existing entries are kept,
// duplicates are not added again; files are written 0600) and makes sure
// dir's preferences file enables ESP decryption and ICV checking.
func WriteWiresharkUAT(path, dir string) error {
	recs, err := ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keylog: %w", err)
	}
	for _, table := range tables {
		var add []string
		for _, r := range recs {
			if r.Table == table {
				add = append(add, r.Value)
			}
		}
		if err := mergeLines(filepath.Join(dir, table), add,
			"# Wireshark UAT "+table+" (vpnlab keylog entries appended). SECRET: contains session keys.\n"); err != nil {
			return err
		}
	}
	return ensurePreferences(filepath.Join(dir, "preferences"))
}

// mergeLines appends the lines of add not yet in file, writing the result
// atomically with mode 0600.
func mergeLines(file string, add []string, header string) error {
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("keylog: %w", err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(old), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	var b strings.Builder
	if len(old) == 0 {
		b.WriteString(header)
	} else {
		b.Write(old)
		if !strings.HasSuffix(string(old), "\n") {
			b.WriteByte('\n')
		}
	}
	for _, l := range add {
		if !have[l] {
			b.WriteString(l + "\n")
			have[l] = true
		}
	}
	return writeFileAtomic(file, b.String())
}

// ensurePreferences appends "esp.enable_encryption_decode: TRUE" and
// "esp.enable_authentication_check: TRUE" unless an active line already sets
// them to TRUE (later lines win in Wireshark's preferences file).
func ensurePreferences(file string) error {
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("keylog: %w", err)
	}
	set := map[string]string{}
	for _, l := range strings.Split(string(old), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if k, v, ok := strings.Cut(l, ":"); ok {
			set[strings.TrimSpace(k)] = strings.ToUpper(strings.TrimSpace(v))
		}
	}
	var add strings.Builder
	for _, p := range ESPPreferences {
		k, v, _ := strings.Cut(p, ":")
		if set[k] != v {
			fmt.Fprintf(&add, "%s: %s\n", k, v)
		}
	}
	if add.Len() == 0 {
		return nil
	}
	content := string(old)
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	content += "# added by vpnlab keylog.WriteWiresharkUAT\n" + add.String()
	return writeFileAtomic(file, content)
}

func writeFileAtomic(file, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp*")
	if err != nil {
		return fmt.Errorf("keylog: %w", err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("keylog: %w", err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		return fmt.Errorf("keylog: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keylog: %w", err)
	}
	if err := os.Rename(name, file); err != nil {
		return fmt.Errorf("keylog: %w", err)
	}
	ok = true
	return nil
}
