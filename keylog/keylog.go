// Package keylog is the opt-in export of IKEv1, IKEv2 and ESP keys for
// Wireshark (status.KeyLogger, status.IKEv2KeyLogger). It writes one text file
// whose record lines are Wireshark UAT records prefixed with their table name:
//
//	ikev1_decryption_table:<icookie hex>,<encryption key hex>
//	ikev2_decryption_table:<SPIi>,<SPIr>,<SK_ei>,<SK_er>,"<encryption>",<SK_ai>,<SK_ar>,"<integrity>"
//	esp_sa:"IPv4","<src>","<dst>","0x<spi>","<encryption>","0x<key>","<authentication>","0x<key>"
//
// i.e. each record line is exactly what follows "-o uat:" on a tshark command
// line. Lines starting with '#' are comments. TsharkOptions turns the file
// into tshark arguments, WriteWiresharkUAT installs it into a Wireshark
// profile for the GUI. See docs/key-export.md.
//
// The file holds live session keys: it is created with mode 0600, and this
// package never logs or prints key material (it has no logger, and its errors
// name line numbers, never line contents).
package keylog

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/status"
)

// UAT table names (Wireshark 4.0: packet-isakmp.c and packet-ipsec.c).
const (
	TableIKEv1 = "ikev1_decryption_table"
	TableESP   = "esp_sa"
)

// Writer appends key records to a key log file. It implements status.KeyLogger
// and is safe for concurrent use. Write errors are kept and returned by Err
// and Close (the KeyLogger methods have no error result).
type Writer struct {
	mu   sync.Mutex
	f    *os.File
	path string
	err  error
	now  func() time.Time
}

var _ status.KeyLogger = (*Writer)(nil)

const fileHeader = `# vpnlab key log for Wireshark - SECRET: contains session keys of live SAs.
# Record lines are "<uat table>:<record>", i.e. the text after "-o uat:" on a
# tshark command line; '#' lines are comments. See docs/key-export.md.
`

// Open creates (or truncates) the key log at path with mode 0600 and writes
// the header.
func Open(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keylog: %w", err)
	}
	// O_CREATE's mode only applies to a new file: tighten an existing one.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("keylog: %w", err)
	}
	w := &Writer{f: f, path: path, now: time.Now}
	w.write(fileHeader)
	if w.err != nil {
		f.Close()
		return nil, w.err
	}
	return w, nil
}

// String never shows key material.
func (w *Writer) String() string { return "keylog.Writer(" + w.path + ")" }

// GoString never shows key material.
func (w *Writer) GoString() string { return w.String() }

func (w *Writer) write(s string) {
	if w.f == nil || w.err != nil {
		return
	}
	if _, err := w.f.WriteString(s); err != nil {
		w.err = fmt.Errorf("keylog: write %s: %w", w.path, err)
	}
}

// IKEv1Keys records an ISAKMP SA: its initiator cookie and the key of the
// phase 1 cipher as used for encryption (for AES-256 the 32-byte key, after
// any RFC 2409 appendix B expansion of SKEYID_e).
func (w *Writer) IKEv1Keys(icookie [8]byte, encKey []byte) {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s ISAKMP SA icookie %x\n", w.now().UTC().Format(time.RFC3339), icookie[:])
	fmt.Fprintf(&b, "%s:%s,%s\n", TableIKEv1, hex.EncodeToString(icookie[:]), hex.EncodeToString(encKey))
	w.mu.Lock()
	defer w.mu.Unlock()
	w.write(b.String())
}

// ChildKeys records both SAs of a pair: the outbound SA from pair.Local to
// pair.Remote, the inbound one from pair.Remote to pair.Local. Only ESP SAs
// are recorded (Wireshark's AH dissector needs no keys); an algorithm that
// Wireshark does not know gets a comment instead of a record.
func (w *Writer) ChildKeys(pair childsa.Pair) {
	var b strings.Builder
	encap := ""
	if pair.UDPEncap {
		encap = " udp-encap"
	}
	fmt.Fprintf(&b, "# %s tunnel %s %s%s local %s remote %s\n", w.now().UTC().Format(time.RFC3339),
		sanitize(pair.Tunnel), pair.Mode, encap, pair.Local, pair.Remote)
	b.WriteString(espRecord(pair.Outbound, pair.Local.Addr(), pair.Remote.Addr(), "outbound"))
	b.WriteString(espRecord(pair.Inbound, pair.Remote.Addr(), pair.Local.Addr(), "inbound"))
	w.mu.Lock()
	defer w.mu.Unlock()
	w.write(b.String())
}

// Err returns the first write error, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close flushes to disk and closes the file; it returns the first write
// error if there was one. Later KeyLogger calls are ignored.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return w.err
	}
	serr := w.f.Sync()
	cerr := w.f.Close()
	w.f = nil
	return errors.Join(w.err, wrap(serr), wrap(cerr))
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("keylog: %w", err)
}

// sanitize keeps a configured name on one comment line.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// Wireshark 4.0's esp_encryption_type_vals / esp_authentication_type_vals
// names (the UAT stores the name, not the number).
var espEncryptionNames = map[uint8]string{
	isakmp.ESPNull:     "NULL",
	3:                  "TripleDES-CBC [RFC2451]", // ESP_3DES
	isakmp.ESPAESCBC:   "AES-CBC [RFC3602]",
	13:                 "AES-CTR [RFC3686]", // ESP_AES-CTR
	isakmp.ESPAESGCM8:  "AES-GCM with 8 octet ICV [RFC4106]",
	isakmp.ESPAESGCM12: "AES-GCM with 12 octet ICV [RFC4106]",
	isakmp.ESPAESGCM16: "AES-GCM with 16 octet ICV [RFC4106]",
}

var espAuthenticationNames = map[uint16]string{
	0:                      "NULL",
	isakmp.AuthHMACMD5:     "HMAC-MD5-96 [RFC2403]",
	isakmp.AuthHMACSHA1:    "HMAC-SHA-1-96 [RFC2404]",
	isakmp.AuthHMACSHA2256: "HMAC-SHA-256-128 [RFC4868]",
	isakmp.AuthHMACSHA2384: "HMAC-SHA-384-192 [RFC4868]",
	isakmp.AuthHMACSHA2512: "HMAC-SHA-512-256 [RFC4868]",
}

// uatAddr is an esp_sa address field: the address, or "*" (any) when the
// engine did not know it.
func uatAddr(a netip.Addr) (proto, addr string) {
	a = a.Unmap()
	switch {
	case !a.IsValid() || a.IsUnspecified():
		return "", "*"
	case a.Is4():
		return "IPv4", a.String()
	default:
		return "IPv6", a.WithZone("").String()
	}
}

func hexKey(k []byte) string {
	if len(k) == 0 {
		return ""
	}
	return "0x" + hex.EncodeToString(k)
}

func espRecord(sa childsa.SA, src, dst netip.Addr, dir string) string {
	if sa.Protocol != isakmp.ProtoESP {
		return fmt.Sprintf("# %s SPI 0x%08x protocol %d: not ESP, no record\n", dir, sa.SPI, sa.Protocol)
	}
	enc, ok := espEncryptionNames[sa.Encryption]
	if !ok {
		return fmt.Sprintf("# %s SPI 0x%08x: ESP transform %d unknown to Wireshark, no record\n", dir, sa.SPI, sa.Encryption)
	}
	auth, ok := espAuthenticationNames[sa.Integrity]
	if !ok {
		return fmt.Sprintf("# %s SPI 0x%08x: integrity algorithm %d unknown to Wireshark, no record\n", dir, sa.SPI, sa.Integrity)
	}
	p1, s := uatAddr(src)
	p2, d := uatAddr(dst)
	proto := p1
	if proto == "" {
		proto = p2
	}
	if proto == "" || (p1 != "" && p2 != "" && p1 != p2) {
		return fmt.Sprintf("# %s SPI 0x%08x: no usable addresses (%s -> %s), no record\n", dir, sa.SPI, src, dst)
	}
	integKey := sa.IntegKey
	if sa.Integrity == 0 {
		integKey = nil
	}
	return fmt.Sprintf("%s:%s,%s,%s,%s,%s,%s,%s,%s\n", TableESP,
		quote(proto), quote(s), quote(d), quote(fmt.Sprintf("0x%08x", sa.SPI)),
		quote(enc), quote(hexKey(sa.EncKey)), quote(auth), quote(hexKey(integKey)))
}

// quote is a UAT string field. All our values are printable ASCII without
// '"' or '\\', which need no escaping.
func quote(s string) string { return `"` + s + `"` }
