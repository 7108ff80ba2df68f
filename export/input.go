package export

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// sniff says what kind of file path looks like from its top-level keys:
// InputScenario (topology or steps), InputVGW (tunnels) or "" (neither, or
// not a YAML mapping: the format's own loader then says what is wrong).
func sniff(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var doc map[string]yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return "", nil
	}
	_, topo := doc["topology"]
	_, steps := doc["steps"]
	_, tunnels := doc["tunnels"]
	switch {
	case topo || steps:
		return InputScenario, nil
	case tunnels:
		return InputVGW, nil
	}
	return "", nil
}

// checkInput refuses a file of the other kind with a message that says
// which formats take it.
func checkInput(format, want, path string) error {
	got, err := sniff(path)
	if err != nil {
		return fmt.Errorf("%s: %w", want, err)
	}
	if got == "" || got == want {
		return nil
	}
	var takers []string
	for _, f := range Formats() {
		if Input(f) == got {
			takers = append(takers, f)
		}
	}
	why := "it has tunnels"
	if got == InputScenario {
		why = "it has a topology or steps"
	}
	return fmt.Errorf("%s is a %s (%s), but --format %s takes a %s; the formats that take a %s: %s",
		path, got, why, format, want, got, strings.Join(takers, ", "))
}

// vgwOptionsOK refuses the options of the containerlab format.
func vgwOptionsOK(o Options) error {
	var bad []string
	if o.Profile != "" {
		bad = append(bad, "--profile")
	}
	if len(o.Set) > 0 {
		bad = append(bad, "--set")
	}
	if o.Image != "" {
		bad = append(bad, "--image")
	}
	if o.LabName != "" {
		bad = append(bad, "--lab-name")
	}
	if o.Machine != "" || o.VXLANRemote != "" || o.VNI != 0 {
		bad = append(bad, "--machine/--vxlan-remote/--vni")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: only used by --format containerlab (a scenario file)", strings.Join(bad, ", "))
	}
	return nil
}
