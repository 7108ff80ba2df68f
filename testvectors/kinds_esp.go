package testvectors

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/esp"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// Kinds of the ESP/AH data path (package esp). They live here rather than in
// esp so that esp does not depend on the vector runner; testvectors importing
// esp creates no cycle (esp imports only ike, ike/isakmp and ike/keymat).
func init() {
	Register("esp", checkESP)
	Register("ah", checkAH)
	Register("replay", checkReplay)
}

// saParams are the SA fields shared by the esp and ah kinds.
type saParams struct {
	Mode       string `json:"mode"`
	Encryption string `json:"encryption,omitempty"`
	EncKey     Hex    `json:"enc_key,omitempty"`
	Integrity  string `json:"integrity,omitempty"`
	IntegKey   Hex    `json:"integ_key,omitempty"`
	SPI        Hex    `json:"spi"`
	Seq        uint32 `json:"seq"`
}

var encByName = map[string]uint8{"aes-cbc": isakmp.ESPAESCBC, "aes-gcm-16": isakmp.ESPAESGCM16, "null": isakmp.ESPNull}

// integrityID maps keymat's integrity names (hmac-sha1-96, ...) and "none"
// to IPsec DOI authentication algorithm values.
func integrityID(name string) (uint16, error) {
	if name == "" || name == "none" {
		return 0, nil
	}
	for _, id := range []uint16{isakmp.AuthHMACSHA1, isakmp.AuthHMACSHA2256, isakmp.AuthHMACSHA2384, isakmp.AuthHMACSHA2512} {
		if i, err := keymat.IntegrityByIKE(id); err == nil && i.Name == strings.ToLower(name) {
			return id, nil
		}
	}
	return 0, fmt.Errorf("invalid vector: unknown integrity %q (hmac-sha1-96, hmac-sha2-256-128, hmac-sha2-384-192, hmac-sha2-512-256, none)", name)
}

// configs returns the outbound and inbound esp.Config of the vector.
func (p saParams) configs(proto uint8, iv []byte) (out, in esp.Config, err error) {
	var mode childsa.Mode
	switch p.Mode {
	case "tunnel":
		mode = childsa.ModeTunnel
	case "transport":
		mode = childsa.ModeTransport
	default:
		return out, in, fmt.Errorf("invalid vector: mode must be tunnel or transport, got %q", p.Mode)
	}
	if len(p.SPI) != 4 {
		return out, in, errors.New("invalid vector: spi must be 4 bytes")
	}
	if p.Seq == 0 {
		return out, in, errors.New("invalid vector: seq must be >= 1")
	}
	c := childsa.SA{SPI: binary.BigEndian.Uint32(p.SPI), Protocol: proto, EncKey: p.EncKey, IntegKey: p.IntegKey}
	if c.Integrity, err = integrityID(p.Integrity); err != nil {
		return out, in, err
	}
	if proto == isakmp.ProtoESP {
		var ok bool
		if c.Encryption, ok = encByName[p.Encryption]; !ok {
			return out, in, fmt.Errorf("invalid vector: encryption must be aes-cbc, aes-gcm-16 or null, got %q", p.Encryption)
		}
	} else if p.Encryption != "" || p.EncKey != nil {
		return out, in, errors.New("invalid vector: AH has no encryption")
	}
	out = esp.Config{SA: c, Direction: esp.Outbound, Mode: mode, LastSeq: p.Seq - 1, AllowEncryptionOnly: true}
	if iv != nil {
		out.IVFunc = func(_ uint32, dst []byte) { copy(dst, iv) }
	}
	in = esp.Config{SA: c, Direction: esp.Inbound, Mode: mode, AllowEncryptionOnly: true}
	return out, in, nil
}

// outerParams describe a tunnel-mode outer IPv4 header built with
// esp.PutOuterIPv4.
type outerParams struct {
	OuterSrc string  `json:"outer_src,omitempty"`
	OuterDst string  `json:"outer_dst,omitempty"`
	OuterID  *uint16 `json:"outer_id,omitempty"`
}

// put writes the outer header into pkt[:20]; pkt is the whole outer packet.
func (o outerParams) put(pkt []byte, proto uint8, inner []byte) error {
	src, err1 := netip.ParseAddr(o.OuterSrc)
	dst, err2 := netip.ParseAddr(o.OuterDst)
	if err1 != nil || err2 != nil || o.OuterID == nil {
		return errors.New("invalid vector: tunnel mode packet needs outer_src, outer_dst and outer_id")
	}
	return esp.PutOuterIPv4(pkt, src, dst, *o.OuterID, proto, len(pkt), inner)
}

// ---- esp ----

type espVector struct {
	Common
	saParams
	outerParams
	IV         Hex   `json:"iv,omitempty"`
	Payload    Hex   `json:"payload"`
	NextHeader *int  `json:"next_header"`
	ESP        Hex   `json:"esp"`
	IPHeader   Hex   `json:"ip_header,omitempty"`
	Packet     Hex   `json:"packet,omitempty"`
	Decap      *bool `json:"decap,omitempty"`
}

func checkESP(raw json.RawMessage) (string, error) {
	var v espVector
	if err := DecodeVector(raw, &v); err != nil {
		return "", err
	}
	if err := Require("mode", v.Mode, "encryption", v.Encryption, "spi", v.SPI, "payload", v.Payload, "esp", v.ESP); err != nil {
		return "", err
	}
	if v.NextHeader == nil || *v.NextHeader < 0 || *v.NextHeader > 255 {
		return "", errors.New("invalid vector: next_header missing or not 0..255")
	}
	nh := byte(*v.NextHeader)
	outCfg, inCfg, err := v.configs(isakmp.ProtoESP, v.IV)
	if err != nil {
		return "", err
	}
	out, err := esp.New(outCfg)
	if err != nil {
		return "", err
	}
	got, err := out.AppendESP(nil, v.Payload, nh)
	if err != nil {
		return "", err
	}
	if err := Expect("esp", v.ESP, got); err != nil {
		return "", err
	}
	if v.Packet != nil {
		var pkt []byte
		if v.Mode == "transport" {
			if len(v.IPHeader) < esp.IPv4HeaderLen {
				return "", errors.New("invalid vector: transport mode packet needs ip_header (the original IPv4 header)")
			}
			pkt = append(append([]byte(nil), v.IPHeader...), got...)
			if err := esp.RewriteIPv4(pkt[:len(v.IPHeader)], esp.ProtoESP, len(pkt)); err != nil {
				return "", err
			}
		} else {
			pkt = append(make([]byte, esp.IPv4HeaderLen), got...)
			if err := v.put(pkt, esp.ProtoESP, v.Payload); err != nil {
				return "", err
			}
		}
		if err := Expect("packet", v.Packet, pkt); err != nil {
			return "", err
		}
	}
	if v.Decap != nil && !*v.Decap {
		return "", nil
	}
	in, err := esp.New(inCfg)
	if err != nil {
		return "", err
	}
	pt, gotNH, err := in.OpenESP(nil, v.ESP)
	if err != nil {
		return "", fmt.Errorf("decapsulation: %v", err)
	}
	if gotNH != nh {
		return "", fmt.Errorf("decapsulation: next header: expected %d got %d", nh, gotNH)
	}
	return "", Expect("decapsulated payload", v.Payload, pt)
}

// ---- ah ----

type ahVector struct {
	Common
	saParams
	outerParams
	Input     Hex `json:"input"`
	Protected Hex `json:"protected"`
}

func checkAH(raw json.RawMessage) (string, error) {
	var v ahVector
	if err := DecodeVector(raw, &v); err != nil {
		return "", err
	}
	if err := Require("mode", v.Mode, "integrity", v.Integrity, "integ_key", v.IntegKey, "spi", v.SPI, "input", v.Input, "protected", v.Protected); err != nil {
		return "", err
	}
	outCfg, inCfg, err := v.configs(isakmp.ProtoAH, nil)
	if err != nil {
		return "", err
	}
	out, err := esp.New(outCfg)
	if err != nil {
		return "", err
	}
	src := []byte(v.Input)
	wantNH := byte(esp.ProtoIPv4)
	if v.Mode == "tunnel" {
		src = append(make([]byte, esp.IPv4HeaderLen), v.Input...)
		if err := v.put(src, esp.ProtoIPv4, v.Input); err != nil {
			return "", err
		}
	} else if len(src) >= esp.IPv4HeaderLen {
		wantNH = src[9]
	}
	got, err := out.ProtectAH(nil, src)
	if err != nil {
		return "", err
	}
	if err := Expect("protected", v.Protected, got); err != nil {
		return "", err
	}
	in, err := esp.New(inCfg)
	if err != nil {
		return "", err
	}
	back, nh, err := in.VerifyAH(nil, v.Protected)
	if err != nil {
		return "", fmt.Errorf("verification: %v", err)
	}
	if nh != wantNH {
		return "", fmt.Errorf("verification: next header: expected %d got %d", wantNH, nh)
	}
	return "", Expect("verified packet", v.Input, back)
}

// ---- replay ----

type replayStep struct {
	Seq    uint32 `json:"seq"`
	Forged bool   `json:"forged,omitempty"`
	Expect string `json:"expect"`
}

type replayVector struct {
	Common
	Window int          `json:"window"`
	Steps  []replayStep `json:"steps"`
}

// checkReplay sends real ESP packets (NULL / HMAC-SHA2-256-128) with the
// given sequence numbers to an inbound SA with the given window; a forged
// packet has a corrupted ICV and must not move the window.
func checkReplay(raw json.RawMessage) (string, error) {
	var v replayVector
	if err := DecodeVector(raw, &v); err != nil {
		return "", err
	}
	if v.Window == 0 || len(v.Steps) == 0 {
		return "", errors.New("invalid vector: missing \"window\" or \"steps\"")
	}
	c := childsa.SA{SPI: 0x1000, Protocol: isakmp.ProtoESP, Encryption: isakmp.ESPNull, Integrity: isakmp.AuthHMACSHA2256, IntegKey: make([]byte, 32)}
	in, err := esp.New(esp.Config{SA: c, Direction: esp.Inbound, ReplayWindow: v.Window})
	if err != nil {
		return "", fmt.Errorf("invalid vector: %v", err)
	}
	for i, s := range v.Steps {
		out, err := esp.New(esp.Config{SA: c, Direction: esp.Outbound, LastSeq: s.Seq - 1})
		if err != nil {
			return "", err
		}
		var pkt []byte
		if s.Seq == 0 {
			// Sequence number 0 is never sent; build the packet from seq 1.
			out, _ = esp.New(esp.Config{SA: c, Direction: esp.Outbound})
			pkt, _ = out.AppendESP(nil, []byte{0x45}, 4)
			binary.BigEndian.PutUint32(pkt[4:], 0)
			// Re-authenticate: an authentic packet with sequence number 0.
			m := hmac.New(sha256.New, c.IntegKey)
			m.Write(pkt[:len(pkt)-16])
			copy(pkt[len(pkt)-16:], m.Sum(nil)[:16])
		} else if pkt, err = out.AppendESP(nil, []byte{0x45}, 4); err != nil {
			return "", err
		}
		if s.Forged {
			pkt[len(pkt)-1] ^= 1
		}
		_, _, err = in.OpenESP(nil, pkt)
		got := "accept"
		if err != nil {
			r, ok := err.(esp.DropReason)
			if !ok {
				return "", err
			}
			got = r.String()
		}
		switch s.Expect {
		case "accept", "replay", "icv":
		default:
			return "", fmt.Errorf("invalid vector: step %d: expect must be accept, replay or icv", i+1)
		}
		if got != s.Expect {
			return "", fmt.Errorf("step %d (seq %d): expected %s got %s", i+1, s.Seq, s.Expect, got)
		}
	}
	return "", nil
}
