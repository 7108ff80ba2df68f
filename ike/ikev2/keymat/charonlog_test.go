package keymat_test

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// A charonDump is one binary value charon printed at log level 4: its
// label ("SKEYSEED", "Sk_d secret", "shared Diffie Hellman secret", ...,
// "NONCE sent" / "NONCE received" for the data of Nonce payloads it
// generated or parsed) and the bytes.
type charonDump struct {
	Conn  string // the connection name of charon's "<name|N>" log tag
	Label string
	Data  []byte
}

var (
	// 2026-12-01 15:00:35.547 16[IKE] <t|1> SKEYSEED => 32 bytes @ 0x5650d768ae80
	dumpHeadRE = regexp.MustCompile(`^\S+ \S+ (\d+)\[(\w+)\] (?:<([^|>]*)\|\d+> )?\s*(.*?)\s*=> (\d+) bytes @ 0x[0-9a-f]+$`)
	// ... 16[IKE] <t|1>   16: F7 D3 B9 63 ...  ascii
	dumpLineRE = regexp.MustCompile(`^\S+ \S+ (\d+)\[(\w+)\] (?:<[^>]*> )?\s*\d+: ((?:[0-9A-F]{2} )*[0-9A-F]{2})`)
	threadRE   = regexp.MustCompile(`^\S+ \S+ (\d+)\[`)
	payloadRE  = regexp.MustCompile(`^\S+ \S+ (\d+)\[ENC\] (?:<[^>]*> )?(?:generating payload of type (\S+)|parsing (\S+) payload, \d+ bytes left)$`)
	ruleRE     = regexp.MustCompile(`^\S+ \S+ (\d+)\[ENC\] (?:<[^>]*> )?\s*(generating|parsing) rule \d+ (\S+)$`)
)

// parseCharonLog returns the values charon dumped, in log order.
func parseCharonLog(path string) ([]charonDump, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	payload := map[string]string{} // thread -> payload being generated/parsed
	rule := map[string]string{}    // thread -> "generating CHUNK_DATA" etc.
	var (
		out  []charonDump
		cur  *charonDump
		need int
		thr  string
	)
	for sc.Scan() {
		line := sc.Text()
		if cur != nil {
			if t := threadRE.FindStringSubmatch(line); t == nil || t[1] != thr {
				continue // another thread's line in between
			}
			m := dumpLineRE.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("%s: dump %q ends after %d of %d bytes at %q", path, cur.Label, len(cur.Data), need, line)
			}
			for _, h := range strings.Fields(m[3]) {
				if len(cur.Data) < need {
					b, err := hex.DecodeString(h)
					if err != nil {
						return nil, err
					}
					cur.Data = append(cur.Data, b...)
				}
			}
			if len(cur.Data) == need {
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		if m := payloadRE.FindStringSubmatch(line); m != nil {
			payload[m[1]] = m[2] + m[3]
			continue
		}
		if m := ruleRE.FindStringSubmatch(line); m != nil {
			rule[m[1]] = m[2] + " " + m[3]
			continue
		}
		m := dumpHeadRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[5])
		label := m[4]
		if label == "" {
			r := rule[m[1]]
			if payload[m[1]] != "NONCE" || !strings.HasSuffix(r, " CHUNK_DATA") {
				label = "?"
			} else if strings.HasPrefix(r, "generating") {
				label = "NONCE sent"
			} else {
				label = "NONCE received"
			}
			rule[m[1]] = ""
		}
		cur, need, thr = &charonDump{Conn: m[3], Label: label}, n, m[1]
		if n == 0 {
			out = append(out, *cur)
			cur = nil
		}
	}
	return out, sc.Err()
}

// charonValues is a cursor over the dumps of one connection in a charon
// log.
type charonValues struct {
	dumps []charonDump
	pos   int
}

func newCharonValues(all []charonDump, conn string) *charonValues {
	c := &charonValues{}
	for _, d := range all {
		if d.Conn == conn {
			c.dumps = append(c.dumps, d)
		}
	}
	return c
}

// next returns the next dump with label (after the last one returned).
func (c *charonValues) next(label string) ([]byte, error) {
	for i := c.pos; i < len(c.dumps); i++ {
		if c.dumps[i].Label == label {
			c.pos = i + 1
			return c.dumps[i].Data, nil
		}
	}
	return nil, fmt.Errorf("no further %q in charon's log", label)
}
