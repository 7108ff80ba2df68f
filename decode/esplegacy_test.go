package decode

import (
	"bytes"
	"crypto"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vpnlab/vpnlab/esp"
	"github.com/vpnlab/vpnlab/natt"
)

// legacyCapture writes n ESP packets (3DES-CBC, HMAC-MD5-96, tunnel mode
// with an inner ICMP echo) as a raw-IP pcap, built here with the standard
// library, and returns the file and the esp_sa record in strongSwan's
// save-keys spelling.
func legacyCapture(t *testing.T, n int) (string, string) {
	encKey, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f1011121314151617")
	authKey, _ := hex.DecodeString("f0e0d0c0b0a090807060504030201000")
	block, err := des.NewTripleDESCipher(encKey)
	if err != nil {
		t.Fatal(err)
	}
	src, dst := [4]byte{192, 0, 2, 1}, [4]byte{192, 0, 2, 2}
	path := filepath.Join(t.TempDir(), "legacy.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	for seq := 1; seq <= n; seq++ {
		inner := make([]byte, 20+8+32)
		inner[0], inner[2], inner[3], inner[8], inner[9] = 0x45, 0, byte(len(inner)), 64, 1
		copy(inner[12:], []byte{10, 10, 1, 10, 172, 31, 1, 10})
		binary.BigEndian.PutUint16(inner[10:], natt.Sum(inner[:20]))
		inner[20] = 8 // echo request
		binary.BigEndian.PutUint16(inner[26:], uint16(seq))
		binary.BigEndian.PutUint16(inner[22:], natt.Sum(inner[20:]))
		pt := append([]byte(nil), inner...)
		for i := 1; (len(pt)+2)%8 != 0; i++ {
			pt = append(pt, byte(i))
		}
		pt = append(pt, byte(len(pt)-len(inner)), 4)
		pkt := binary.BigEndian.AppendUint32(nil, 0x0000abcd)
		pkt = binary.BigEndian.AppendUint32(pkt, uint32(seq))
		iv := bytes.Repeat([]byte{byte(seq)}, 8)
		pkt = append(pkt, iv...)
		ct := make([]byte, len(pt))
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, pt)
		pkt = append(pkt, ct...)
		m := hmac.New(crypto.MD5.New, authKey)
		m.Write(pkt)
		pkt = append(pkt, m.Sum(nil)[:12]...)
		outer := make([]byte, 20)
		if err := esp.PutOuterIPv4(outer, netipFrom(src), netipFrom(dst), uint16(seq), protoESP, 20+len(pkt), inner); err != nil {
			t.Fatal(err)
		}
		frame := append(outer, pkt...)
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000+int64(seq), 0), CaptureLength: len(frame), Length: len(frame)}
		if err := w.WritePacket(ci, frame); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	rec := `"IPv4","192.0.2.1","192.0.2.2","0x0000abcd","TripleDes-CBC [RFC2451]","0x` + hex.EncodeToString(encKey) +
		`","HMAC-MD5-96 [RFC2403]","0x` + hex.EncodeToString(authKey) + `"`
	return path, rec
}

// 3DES-CBC with HMAC-MD5-96 ESP (old captures) is decrypted read-only;
// tshark agrees that the test's packets are valid (ICV correct, inner
// ICMP), so the decoder is checked against an independent implementation.
func TestLegacyESP3DESMD5(t *testing.T) {
	path, rec := legacyCapture(t, 4)
	keys := NewKeys()
	if err := keys.loadKeys(strings.NewReader(rec+"\n"), "esp_sa"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	rep, err := Decode(bytes.NewReader(b), "legacy", keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.ESP) != 1 || rep.ESP[0].Decrypted != 4 || len(rep.ESP[0].Flows) != 1 || rep.ESP[0].Flows[0].Proto != "ICMP" ||
		!strings.Contains(rep.ESP[0].Key, "legacy") || rep.ExitCode() != 0 {
		t.Fatalf("report %+v, problems %v", rep.ESP, rep.Problems)
	}
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatalf("tshark is needed to cross-check the test packets: %v", err)
	}
	wsRec := strings.Replace(rec, "TripleDes-CBC", "TripleDES-CBC", 1)
	out, err := exec.Command(tshark, "-n", "-r", path, "-o", "esp.enable_encryption_decode:TRUE",
		"-o", "esp.enable_authentication_check:TRUE", "-o", "uat:esp_sa:"+wsRec, "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "Internet Control Message Protocol"); n != 4 {
		t.Errorf("tshark decrypted %d of 4 packets to ICMP", n)
	}
	if strings.Count(string(out), "[correct]") < 4 {
		t.Errorf("tshark does not call the ICVs correct:\n%s", out)
	}
}

func netipFrom(a [4]byte) netip.Addr { return netip.AddrFrom4(a) }
