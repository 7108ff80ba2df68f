package interop

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/keylog"
)

// TestWiresharkDecryptsOurESP: our gateways write a pcap of their outside
// traffic (capture option) and export their keys (key_log); tshark must
// decrypt every ESP packet with a good ICV, find the inner ICMP and TCP,
// and report no expert warnings or errors. AH carries no secret, so there
// tshark must show the inner packets and no errors.
func TestWiresharkDecryptsOurESP(t *testing.T) {
	if err := netlab.Usable(); err != nil {
		t.Skipf("wireshark: %v", err)
	}
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install tshark; .ci/run installs it)")
	}
	vgwBin, cgwBin := buildGateway(t, "vgw"), buildGateway(t, "cgw")
	cases := []struct {
		name, p2, extra string
		tp              topo
		ah              bool
	}{
		{"udp-aes128gcm16", "esp-aes128gcm16-modp2048", "    force_encap: true\n", topologies[0], false},
		{"raw-aes256gcm16", "esp-aes256gcm16", "", topologies[0], false},
		{"raw-aes256-sha256", "esp-aes256-sha256-modp2048", "", topologies[0], false},
		{"raw-aes128-sha1", "esp-aes128-sha1", "", topologies[0], false},
		{"nat-aes192-sha512", "esp-aes192-sha512-modp2048", "", topologies[1], false},
		{"raw-null-sha384", "esp-null-sha384", "", topologies[0], false},
		{"ah-sha256", "ah-sha256", "", topologies[0], true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.tp)
			onprem, vpc := e.addHosts()
			dir := e.lab.LogDir()
			pcap := filepath.Join(dir, "cgw-outside.pcap")
			vgw := vgwBin
			if tc.ah || strings.Contains(tc.p2, "null") || strings.Contains(tc.p2, "aes192") {
				vgw = cgwBin // the vgw profile allows only AWS's algorithms
			}
			cg, _ := e.startOurGateways(vgw, cgwBin, tc.p2, tc.extra, "capture: "+pcap+"\n")
			waitOurUp(t, cg)
			pingUntil(t, onprem, vpcHost)
			tcpTransfer(t, onprem, vpc, vpcHost, 256<<10)
			// The capture is flushed when the gateway stops.
			if err := cg.proc.Stop(5 * time.Second); err != nil {
				t.Logf("stopping the cgw: %v", err)
			}
			keys := filepath.Join(dir, "cgw-keys.log")
			opts, err := keylog.TsharkOptions(keys)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			args := append(append([]string{"-n", "-r", pcap}, opts...), "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE")
			fields := append(append([]string{}, args...), "-T", "fields", "-E", "separator=|", "-Y", "esp || ah",
				"-e", "frame.number", "-e", "ip.proto", "-e", "esp.spi", "-e", "esp.icv_good", "-e", "esp.icv_bad", "-e", "_ws.col.Protocol", "-e", "ip.src")
			out, err := exec.CommandContext(ctx, tshark, fields...).CombinedOutput()
			if err != nil {
				t.Fatalf("tshark: %v\n%s", err, out)
			}
			var n, inner, icvGood int
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if line == "" || strings.HasPrefix(line, "Running as user") {
					continue
				}
				f := strings.Split(line, "|")
				if len(f) < 7 {
					t.Fatalf("tshark line %q", line)
				}
				n++
				proto := f[5]
				if proto == "TCP" || proto == "ICMP" || proto == "iperf3" {
					inner++
				} else {
					t.Errorf("frame %s: protocol column %q: the inner packet was not decoded", f[0], proto)
				}
				if !tc.ah {
					if f[3] != "1" || f[4] == "1" {
						t.Errorf("frame %s: ICV not verified good (good=%q bad=%q)", f[0], f[3], f[4])
					} else {
						icvGood++
					}
				}
				if !strings.Contains(f[6], ",") {
					t.Errorf("frame %s: one IP header only (%s): no inner packet", f[0], f[6])
				}
			}
			if n < 20 {
				t.Fatalf("only %d ESP/AH frames in the capture:\n%s", n, out)
			}
			expert, err := exec.CommandContext(ctx, tshark, append(args, "-q", "-z", "expert,warn")...).CombinedOutput()
			if err != nil {
				t.Fatalf("tshark expert: %v\n%s", err, expert)
			}
			if strings.Contains(string(expert), "Warnings (") || strings.Contains(string(expert), "Errors (") {
				t.Errorf("tshark expert info:\n%s", expert)
			}
			t.Logf("tshark: %d ESP/AH frames, %d inner packets decoded, %d ICVs good", n, inner, icvGood)
		})
	}
}
