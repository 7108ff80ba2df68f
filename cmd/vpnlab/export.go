package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vpnlab/vpnlab/export"
	"github.com/vpnlab/vpnlab/export/containerlab"
	"github.com/vpnlab/vpnlab/gwconfig"
)

// newExportCmd: vpnlab export --format F [--connection NAME]... [--include-secrets]
// [--out DIR] [--advertise CIDR]... [--customer-address IP] [--ike-version V] VGW.yaml
// or: vpnlab export --format containerlab [--profile P] [--set k=v]... [--image I]
// [--lab-name N] [--include-secrets] [--out DIR] SCENARIO.yaml
func newExportCmd() *cobra.Command {
	var (
		format, out string
		ikeVersion  string
		set         []string
		opts        export.Options
	)
	cmd := &cobra.Command{
		Use:   "export --format FORMAT [flags] VGW.yaml|SCENARIO.yaml",
		Short: "Generate a customer gateway's configuration from a vgw configuration (AWS's \"Download configuration\"), or a containerlab lab from a scenario",
		Long: `Reads a vgw configuration (with its AWS defaults and checks, as the vgw would) and
writes the configuration a customer gateway needs to connect to it, for one of the
formats: ` + strings.Join(vgwFormats(), ", ") + ` (docs/export.md).

--format containerlab reads a scenario file instead (with --profile and --set as
vpnlab run) and writes a containerlab topology of its lab, the gateways' files, the
Dockerfile of the vpnlab image and the steps as commands (docs/multihost.md).

Without --out the files are printed to stdout, each after a header line
"==> NAME <==". With --out DIR they are written into DIR (created if needed),
keeping their relative names and modes. Pre-shared keys are written only with
--include-secrets (into files of mode 0600); otherwise the files say where the
vgw configuration takes them from.

Exit status: 0 done, 2 bad usage, unknown format or connection, or an invalid
vgw configuration.`,
		Example: "  vpnlab export --format strongswan --customer-address 10.99.0.2 --out cgw/ examples/vgw.yaml\n" +
			"  vpnlab export --format bird --advertise 10.10.0.0/16 examples/vgw.yaml\n" +
			"  vpnlab export --format containerlab --include-secrets --out lab/ scenarios/failover.yaml",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format == "" {
				return fmt.Errorf("--format is required (formats: %s)", strings.Join(export.Formats(), ", "))
			}
			if ikeVersion != "" {
				v, ok := gwconfig.ParseIKEVersion(ikeVersion)
				if !ok {
					return fmt.Errorf("--ike-version %q: want ikev1 or ikev2", ikeVersion)
				}
				opts.IKEVersion = v
			}
			for _, kv := range set {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--set %q: expected name=value", kv)
				}
				if opts.Set == nil {
					opts.Set = map[string]string{}
				}
				opts.Set[k] = v
			}
			files, err := export.Export(format, args[0], opts)
			if err != nil {
				return err
			}
			if out == "" {
				w := cmd.OutOrStdout()
				for i, f := range files {
					if i > 0 {
						fmt.Fprintln(w)
					}
					fmt.Fprintf(w, "==> %s <==\n%s", f.Name, f.Data)
				}
				return nil
			}
			return writeFiles(out, files, cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "", "output format: "+strings.Join(export.Formats(), ", "))
	f.StringSliceVar(&opts.Connections, "connection", nil, "export only this VPN connection (repeatable or comma-separated; default all)")
	f.BoolVar(&opts.IncludeSecrets, "include-secrets", false, "put the pre-shared keys into the files")
	f.StringVar(&out, "out", "", "write the files into this directory instead of printing them")
	f.StringSliceVar(&opts.Advertise, "advertise", nil, "a customer prefix to announce (BGP) or route (static); repeatable, or comma-separated")
	f.StringVar(&opts.CustomerAddress, "customer-address", "", "the customer gateway's own outside address when AWS sees another one (behind NAT)")
	f.StringVar(&ikeVersion, "ike-version", "", "the IKE version of the files: ikev1 or ikev2 (default: per tunnel, ikev2 where the vgw tunnel allows it, as AWS recommends)")
	f.StringVar(&opts.Profile, "profile", "", "containerlab: the scenario profile to use")
	f.StringArrayVar(&set, "set", nil, "containerlab: set a scenario variable: `name=value` (repeatable)")
	f.StringVar(&opts.Image, "image", "", "containerlab: the image of every node (default "+containerlab.DefaultImage+")")
	f.StringVar(&opts.LabName, "lab-name", "", "containerlab: the lab's name (default vpnlab-SCENARIO)")
	f.StringVar(&opts.Machine, "machine", "", "containerlab: only this machine's part of a lab split over two: customer (wan, cgw, customer hosts) or aws (vgw, AWS hosts)")
	f.StringVar(&opts.VXLANRemote, "vxlan-remote", "", "containerlab with --machine: the other machine's IPv4 address (the VXLAN link's remote)")
	f.IntVar(&opts.VNI, "vni", 0, "containerlab with --machine: the VXLAN network identifier (default 4242; the same on both machines)")
	return cmd
}

// vgwFormats are the formats that read a vgw configuration.
func vgwFormats() []string {
	var l []string
	for _, f := range export.Formats() {
		if export.Input(f) == export.InputVGW {
			l = append(l, f)
		}
	}
	return l
}

// writeFiles writes files below dir with their modes and lists them.
func writeFiles(dir string, files []export.File, cmd *cobra.Command) error {
	for _, f := range files {
		if !filepath.IsLocal(filepath.FromSlash(f.Name)) {
			return fmt.Errorf("refusing to write %q outside %s", f.Name, dir)
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.Mode); err != nil { // an existing file keeps its mode otherwise
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", p)
	}
	return nil
}
