package scenarios

import (
	"os"
	"path/filepath"

	"github.com/vpnlab/vpnlab/keylog"
	"github.com/vpnlab/vpnlab/scenarios/report"
)

// writeKeys merges both gateways' key logs into keys.log and a Wireshark
// profile directory, so that wan.pcap opens decrypted.
func (ru *runner) writeKeys() {
	out := ru.o.OutDir
	var all []byte
	for _, name := range []string{"cgw", "vgw"} {
		b, err := os.ReadFile(ru.gw[name].files.KeyLog)
		if err == nil {
			all = append(all, b...)
		}
	}
	if len(all) == 0 {
		return
	}
	keys := filepath.Join(out, "keys.log")
	if err := os.WriteFile(keys, all, 0o600); err != nil {
		return
	}
	ru.r.Artifacts = append(ru.r.Artifacts, report.Artifact{Name: "keys.log", Path: "keys.log", What: "IKE and ESP keys for Wireshark (SECRET; docs/key-export.md)"})
	prof := filepath.Join(out, "wireshark")
	os.RemoveAll(prof)
	if err := keylog.WriteWiresharkUAT(keys, prof); err == nil {
		ru.r.Artifacts = append(ru.r.Artifacts, report.Artifact{Name: "wireshark/", Path: "wireshark", What: "Wireshark profile with the keys: WIRESHARK_CONFIG_DIR=" + prof + " wireshark " + filepath.Join(out, "wan.pcap")})
	}
}

// clearOutDir removes what an earlier run of the scenario left in its
// output folder (only files a run writes).
func clearOutDir(dir string) {
	for _, pat := range []string{"*.log", "*.ndjson", "*.yaml", "wan.pcap", "failover.html", "failover.svg", "junit.xml", "timeline.json", "summary.txt", "wireshark"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, f := range m {
			os.RemoveAll(f)
		}
	}
}
