package decode

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteJSON writes the report as one indented JSON document.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteText writes the report as a story for people.
func (rep *Report) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "%s: %s, %d frames: %s\n", rep.File, rep.Format, rep.Frames, countLine(rep.Counts))
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(b, "  not IKE/IPsec: %s\n", countLine(rep.Skipped))
	}
	for _, d := range rep.Damaged {
		fmt.Fprintf(b, "  damaged: %s\n", d)
	}
	if rep.ReadError != "" {
		fmt.Fprintf(b, "  the file is damaged %s\n", rep.ReadError)
	}
	for i := range rep.IKE {
		writeIKE(b, &rep.IKE[i])
	}
	for i := range rep.IKEv2 {
		writeIKEv2(b, &rep.IKEv2[i])
	}
	for i := range rep.ESP {
		writeESP(b, &rep.ESP[i])
	}
	writeKeys(b, rep.Keys)
	if len(rep.Problems) == 0 {
		b.WriteString("\nVerdict: everything decoded, no failed negotiation.\n")
	} else {
		b.WriteString("\nVerdict:\n")
		for _, p := range rep.Problems {
			fmt.Fprintf(b, "  - %s\n", p)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func countLine(m map[string]int) string {
	var keys []string
	for k, v := range m {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func writeIKE(b *strings.Builder, r *IKEReport) {
	fmt.Fprintf(b, "\nISAKMP SA %s/%s, %s, initiator %s, responder %s: %s\n", r.ICookie, r.RCookie, r.Exchange, r.Initiator, r.Responder, strings.ToUpper(r.Status))
	if r.Offered != "" {
		fmt.Fprintf(b, "  offered: %s\n", r.Offered)
	}
	if r.Chosen != "" {
		fmt.Fprintf(b, "  chosen:  %s\n", r.Chosen)
	}
	if r.IDi != "" || r.IDr != "" {
		fmt.Fprintf(b, "  IDs:     initiator %s, responder %s\n", orDash(r.IDi), orDash(r.IDr))
	}
	for _, e := range r.Story {
		fmt.Fprintf(b, "  #%-5d %s %s %-5s %s\n", e.Frame, e.Time, e.Dir, e.Msg, e.Text)
	}
	for _, h := range r.Hashes {
		fmt.Fprintf(b, "  auth: %s\n", h.Message)
	}
	if r.Reason != "" {
		fmt.Fprintf(b, "  => %s\n", r.Reason)
	}
	for _, q := range r.Quick {
		fmt.Fprintf(b, "  quick mode %s: %s", q.MessageID, strings.ToUpper(q.Status))
		if len(q.Selectors) > 0 {
			fmt.Fprintf(b, ", selectors %s", strings.Join(q.Selectors, ", "))
		}
		if q.Chosen != "" {
			fmt.Fprintf(b, ", %s", q.Chosen)
		}
		if q.PFS {
			b.WriteString(", PFS")
		}
		if len(q.SPIs) > 0 {
			fmt.Fprintf(b, ", %s", strings.Join(q.SPIs, ", "))
		}
		b.WriteString("\n")
		if q.Reason != "" {
			fmt.Fprintf(b, "    => %s\n", q.Reason)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeESP(b *strings.Builder, r *ESPReport) {
	fmt.Fprintf(b, "\n%s SPI %s %s -> %s: %d packets, %d bytes, %s..%s, seq %d..%d",
		r.Protocol, r.SPI, r.Src, r.Dst, r.Packets, r.Bytes, r.First, r.Last, r.SeqFirst, r.SeqLast)
	fmt.Fprintf(b, ", %d missing, %d replayed, %d reordered\n", r.Gaps, r.Replays, r.Reordered)
	switch {
	case r.Key != "":
		fmt.Fprintf(b, "  key %s: %d decrypted, %d failed", r.Key, r.Decrypted, r.Failed)
		if r.FailReason != "" {
			fmt.Fprintf(b, " (last: %s)", r.FailReason)
		}
		b.WriteString("\n")
	case r.Note != "":
		fmt.Fprintf(b, "  %s\n", r.Note)
	}
	for _, f := range r.Flows {
		fmt.Fprintf(b, "  inner %-4s %s -> %s: %d packets, %d bytes, %s..%s\n", f.Proto, f.Src, f.Dst, f.Packets, f.Bytes, f.First, f.Last)
	}
}

func writeKeys(b *strings.Builder, k KeySummary) {
	fmt.Fprintf(b, "\nKeys: %d IKEv1, %d IKEv2, %d ESP, %d pre-shared\n", k.IKEv1Keys, k.IKEv2Keys, k.ESPKeys, k.PSKs)
	for _, s := range k.Ignored {
		fmt.Fprintf(b, "  ignored: %s\n", s)
	}
	for _, s := range k.Can {
		fmt.Fprintf(b, "  can: %s\n", s)
	}
	for _, s := range k.Cannot {
		fmt.Fprintf(b, "  cannot: %s\n", s)
	}
}

func writeIKEv2(b *strings.Builder, r *IKEv2Report) {
	fmt.Fprintf(b, "\nIKEv2 SA %s/%s, initiator %s, responder %s: %s\n", r.SPIi, r.SPIr, r.Initiator, r.Responder, strings.ToUpper(r.Status))
	for _, l := range [][2]string{{"offered", r.Offered}, {"chosen", r.Chosen}, {"NAT", r.NAT}} {
		if l[1] != "" {
			fmt.Fprintf(b, "  %-8s %s\n", l[0]+":", l[1])
		}
	}
	if r.IDi != "" || r.IDr != "" {
		fmt.Fprintf(b, "  IDs:     initiator %s, responder %s, AUTH %s\n", orDash(r.IDi), orDash(r.IDr), orDash(r.Auth))
	}
	for _, e := range r.Story {
		fmt.Fprintf(b, "  #%-5d %s %s %-6s %s\n", e.Frame, e.Time, e.Dir, e.Msg, e.Text)
	}
	if r.Reason != "" {
		fmt.Fprintf(b, "  => %s\n", r.Reason)
	}
	for _, c := range r.ChildFailures {
		fmt.Fprintf(b, "  => %s\n", c)
	}
}
