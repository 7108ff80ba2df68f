package decode

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/keylog"
)

// Keys are the secrets the decoder may use. Nothing here is ever printed:
// reports name a key by its source (file:line).
type Keys struct {
	IKE   map[[8]byte][]IKEKey    // by initiator cookie
	IKEv2 map[[16]byte][]IKEv2Key // by SPIi|SPIr
	ESP   []ESPKey
	PSKs  []PSK
	// Ignored counts records of other tables by table name.
	Ignored map[string]int
}

// IKEKey is a phase 1 encryption key (Wireshark's IKEv1 decryption table:
// initiator cookie and the cipher key as used, after RFC 2409 appendix B
// expansion). It decrypts; it cannot verify HASH_I/HASH_R or quick mode
// hashes (those need SKEYID / SKEYID_a).
type IKEKey struct {
	Key    []byte
	Source string
}

// ESPKey is one ESP SA (Wireshark's esp_sa table).
type ESPKey struct {
	Src, Dst   string // address or "*"
	SPI        uint32
	Encryption uint8 // ESP transform ID (RFC 2407 / IANA), 0 if unknown
	EncName    string
	EncKey     []byte // GCM: key followed by the 4-byte salt
	Integrity  uint16 // IPsec DOI authentication algorithm, 0 for none/GCM
	AuthName   string
	AuthKey    []byte
	Source     string
}

// String never shows the key.
func (k IKEKey) String() string { return "IKEKey(" + k.Source + ")" }

// String never shows the keys.
func (k ESPKey) String() string {
	return fmt.Sprintf("ESPKey(SPI 0x%08x %s -> %s, %s)", k.SPI, k.Src, k.Dst, k.Source)
}

// PSK is a candidate pre-shared key (one line of a --psk file).
type PSK struct {
	Secret []byte
	Source string
}

// String never shows the secret.
func (p PSK) String() string { return "PSK(" + p.Source + ")" }

// NewKeys returns an empty key set.
func NewKeys() *Keys {
	return &Keys{IKE: map[[8]byte][]IKEKey{}, IKEv2: map[[16]byte][]IKEv2Key{}, Ignored: map[string]int{}}
}

// LoadKeyFile reads one key file in any of the formats: our key log
// (docs/key-export.md: "ikev1_decryption_table:" / "ikev2_decryption_table:"
// / "esp_sa:" prefixed lines), strongSwan's save-keys files and Wireshark's
// UAT files (the ikev1_decryption_table file: "<icookie>,<key>" lines; the
// ikev2_decryption_table file: "<SPIi>,<SPIr>,<SK_ei>,<SK_er>,"<encryption>",
// <SK_ai>,<SK_ar>,"<integrity>"" lines; the esp_sa file: eight quoted
// fields). Errors name the line, never its content.
func (k *Keys) LoadKeyFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return k.loadKeys(f, path)
}

func (k *Keys) loadKeys(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		src := fmt.Sprintf("%s:%d", name, n)
		if err := k.addRecord(line, src); err != nil {
			return fmt.Errorf("%s: %v", src, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return nil
}

func (k *Keys) addRecord(line, src string) error {
	if table, rest, ok := strings.Cut(line, ":"); ok && isTableName(table) {
		switch table {
		case keylog.TableIKEv1:
			return k.addIKE(rest, src)
		case keylog.TableIKEv2:
			return k.addIKEv2(rest, src)
		case keylog.TableESP:
			return k.addESP(rest, src)
		}
		k.Ignored[table]++
		return nil
	}
	fields := splitUAT(line)
	switch {
	case len(fields) == 8 && (fields[0] == "IPv4" || fields[0] == "IPv6"):
		return k.addESP(line, src)
	case len(fields) == 2:
		return k.addIKE(line, src)
	case len(fields) == 8 && len(fields[0]) == 16 && len(fields[1]) == 16:
		return k.addIKEv2(line, src) // IKEv2: two SPIs and SK_* keys
	}
	return fmt.Errorf("not an IKEv1 decryption table, ESP SA or key log record (%d fields)", len(fields))
}

func isTableName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// splitUAT splits a UAT record on commas outside double quotes and removes
// the quotes ("\\" and "\"" escapes are not used by any of the writers).
func splitUAT(s string) []string {
	var out []string
	var cur strings.Builder
	inQ := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQ = !inQ
		case c == ',' && !inQ:
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, strings.TrimSpace(cur.String()))
}

func parseHex(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	s = strings.ReplaceAll(s, ":", "")
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hexadecimal")
	}
	return b, nil
}

func (k *Keys) addIKE(rec, src string) error {
	f := splitUAT(rec)
	if len(f) != 2 {
		return fmt.Errorf("IKEv1 record has %d fields, want 2 (initiator cookie, encryption key)", len(f))
	}
	c, err := parseHex(f[0])
	if err != nil || len(c) != 8 {
		return fmt.Errorf("IKEv1 record: the initiator cookie is not 16 hex digits")
	}
	key, err := parseHex(f[1])
	if err != nil {
		return fmt.Errorf("IKEv1 record: encryption key %v", err)
	}
	switch len(key) {
	case 8, 16, 24, 32:
	default:
		return fmt.Errorf("IKEv1 record: encryption key of %d bytes (want 8 DES, 16/24/32 AES or 24 3DES)", len(key))
	}
	cookie := [8]byte(c)
	for _, have := range k.IKE[cookie] {
		if bytes.Equal(have.Key, key) {
			return nil // the same key from both sides' logs
		}
	}
	k.IKE[cookie] = append(k.IKE[cookie], IKEKey{Key: key, Source: src})
	return nil
}

// Wireshark / strongSwan ESP algorithm names (packet-ipsec.c's UAT enum
// strings; strongSwan's save-keys plugin spells 3DES "TripleDes-CBC" and
// writes "AES-GCM [RFC4106]" with an "ANY n bit" authentication).
var espEncByName = map[string]uint8{
	"null": isakmp.ESPNull, "tripledes-cbc [rfc2451]": 3, "des-cbc [rfc2405]": 2,
	"aes-cbc [rfc3602]": isakmp.ESPAESCBC, "aes-ctr [rfc3686]": 13,
	"aes-gcm with 8 octet icv [rfc4106]":  isakmp.ESPAESGCM8,
	"aes-gcm with 12 octet icv [rfc4106]": isakmp.ESPAESGCM12,
	"aes-gcm with 16 octet icv [rfc4106]": isakmp.ESPAESGCM16,
	"aes-gcm [rfc4106]":                   isakmp.ESPAESGCM16, // ICV from the "ANY n bit" field
}

var espAuthByName = map[string]uint16{
	"null": 0, "hmac-md5-96 [rfc2403]": isakmp.AuthHMACMD5, "hmac-sha-1-96 [rfc2404]": isakmp.AuthHMACSHA1,
	"hmac-sha-256-128 [rfc4868]": isakmp.AuthHMACSHA2256, "hmac-sha-384-192 [rfc4868]": isakmp.AuthHMACSHA2384,
	"hmac-sha-512-256 [rfc4868]":              isakmp.AuthHMACSHA2512,
	"any 64 bit authentication [no checking]": 0, "any 96 bit authentication [no checking]": 0,
	"any 128 bit authentication [no checking]": 0, "any 192 bit authentication [no checking]": 0,
	"any 256 bit authentication [no checking]": 0,
}

func (k *Keys) addESP(rec, src string) error {
	f := splitUAT(rec)
	if len(f) != 8 {
		return fmt.Errorf("ESP SA record has %d fields, want 8", len(f))
	}
	spi, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(f[3]), "0x"), 16, 32)
	if err != nil {
		return fmt.Errorf("ESP SA record: SPI is not a 32-bit hex number")
	}
	e := ESPKey{Src: f[1], Dst: f[2], SPI: uint32(spi), EncName: f[4], AuthName: f[6], Source: src}
	enc, ok := espEncByName[strings.ToLower(f[4])]
	if ok {
		e.Encryption = enc
	}
	if e.Integrity, ok = espAuthByName[strings.ToLower(f[6])]; !ok {
		e.Integrity = 0xffff // unknown: reported per SA, not an error for the whole file
	}
	if enc == isakmp.ESPAESGCM16 && strings.HasPrefix(strings.ToLower(f[4]), "aes-gcm [") {
		switch strings.ToLower(f[6]) {
		case "any 64 bit authentication [no checking]":
			e.Encryption = isakmp.ESPAESGCM8
		case "any 96 bit authentication [no checking]":
			e.Encryption = isakmp.ESPAESGCM12
		}
	}
	if f[5] != "" {
		if e.EncKey, err = parseHex(f[5]); err != nil {
			return fmt.Errorf("ESP SA record: encryption key %v", err)
		}
	}
	if f[7] != "" {
		if e.AuthKey, err = parseHex(f[7]); err != nil {
			return fmt.Errorf("ESP SA record: authentication key %v", err)
		}
	}
	k.ESP = append(k.ESP, e)
	return nil
}

// LoadPSKFile reads candidate pre-shared keys, one per line, each line
// exactly as written (only the line end is removed; empty lines and lines
// starting with '#' are skipped).
func (k *Keys) LoadPSKFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	n := 0
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k.PSKs = append(k.PSKs, PSK{Secret: []byte(line), Source: fmt.Sprintf("%s:%d", path, i+1)})
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s: no pre-shared key in the file", path)
	}
	return nil
}

// espKeysFor returns the ESP keys for an SPI whose addresses match
// (a "*" address matches any).
func (k *Keys) espKeysFor(spi uint32, src, dst string) []ESPKey {
	var out []ESPKey
	for _, e := range k.ESP {
		if e.SPI == spi && (e.Src == "*" || e.Src == src) && (e.Dst == "*" || e.Dst == dst) {
			out = append(out, e)
		}
	}
	if len(out) == 0 { // NAT: the logged addresses may be the other side's view
		for _, e := range k.ESP {
			if e.SPI == spi {
				out = append(out, e)
			}
		}
	}
	return out
}
