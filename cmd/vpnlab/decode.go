package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/vpnlab/vpnlab/decode"
)

func newDecodeCmd() *cobra.Command {
	var keyFiles, pskFiles, configFiles []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "decode CAPTURE",
		Short: "Tell the story of the IKEv1/IKEv2/IPsec traffic in a capture and why a negotiation failed",
		Long: `Decode a pcap or pcapng capture (Ethernet, raw IP, Linux cooked v1/v2):
every ISAKMP SA and quick mode (proposals, choice, IDs, NAT-D, notifies),
every IKEv2 SA (IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA rekeys, INFORMATIONAL
DELETEs and liveness checks, notifies), decrypted with the keys given, the
reason a negotiation failed in plain words, and a summary of the ESP/AH
flows (docs/decode.md).

--keys FILE (repeatable): our key log (a scenario run's keys.log,
cgw-keys.log/vgw-keys.log: ikev1_decryption_table:, ikev2_decryption_table:
and esp_sa: lines), strongSwan's save-keys files or Wireshark's UAT files
ikev1_decryption_table (IKEv1: cookie and encryption key),
ikev2_decryption_table (IKEv2: SPIi, SPIr, SK_ei, SK_er, encryption,
SK_ai, SK_ar, integrity; AES-CBC with HMAC-SHA1/SHA2 or AES-GCM-16 are
decrypted and their ICV checked) and esp_sa. The format is recognised per
line.
--psk FILE (repeatable): candidate pre-shared keys, one per line, to verify
IKEv1 HASH_I/HASH_R (an IKEv2 AUTH payload needs SK_pi/SK_pr, which no key
file holds: an IKEv2 PSK mismatch is told from AUTHENTICATION_FAILED).
Keys are never printed; they are named by file:line.
--config FILE (repeatable): a gateway configuration (a run's vgw.yaml or
cgw.yaml): a refused proposal is set against what that side allows.

Exit status: 0 everything decoded and no negotiation failed; 1 a failed
negotiation, an encrypted message or ESP packet that could not be
decrypted, or damaged packets (the report lists them under Verdict);
2 bad usage, an unreadable key file or a file that is not a capture.`,
		Example: "  vpnlab decode vpnlab-out/psk-mismatch/wan.pcap --keys vpnlab-out/psk-mismatch/keys.log\n  vpnlab decode capture.pcapng --keys keys.log --psk psk.txt --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys := decode.NewKeys()
			for _, f := range keyFiles {
				if err := keys.LoadKeyFile(f); err != nil {
					return fmt.Errorf("--keys: %w", err)
				}
			}
			for _, f := range pskFiles {
				if err := keys.LoadPSKFile(f); err != nil {
					return fmt.Errorf("--psk: %w", err)
				}
			}
			pol := &decode.Policy{}
			for _, f := range configFiles {
				if err := pol.LoadPolicyFile(f); err != nil {
					return fmt.Errorf("--config: %w", err)
				}
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			rep, err := decode.DecodeWithPolicy(f, args[0], keys, pol)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if asJSON {
				err = rep.WriteJSON(cmd.OutOrStdout())
			} else {
				err = rep.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if c := rep.ExitCode(); c != 0 {
				return exitError{code: c}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyFiles, "keys", nil, "key file (key log, strongSwan save-keys or Wireshark UAT file: ikev1_decryption_table, ikev2_decryption_table, esp_sa); repeatable")
	cmd.Flags().StringArrayVar(&pskFiles, "psk", nil, "file of candidate pre-shared keys, one per line; repeatable")
	cmd.Flags().StringArrayVar(&configFiles, "config", nil, "a gateway configuration (vgw.yaml, cgw.yaml): what it allows is set against a refused proposal; repeatable")
	cmd.Flags().BoolVar(&asJSON, "json", false, "write the report as JSON")
	return cmd
}
