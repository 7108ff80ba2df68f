#!/usr/bin/env python3
"""Transcribe the ESP packet vectors of /work/shared/vectors into kind "esp".

  python3 testvectors/tools/transcribe_esp.py /work/shared/vectors testvectors/

esp_rfc3602.json: RFC 3602 section 4 cases 5-8 (AES-128-CBC, no ICV).
esp_rfc4106_gcm.json: draft-mcgrew-gcm-test-01 AES-GCM-ESP cases with 32-bit
sequence numbers (ESN cases and the GMAC case are skipped).
"""
import json, sys, os

src, dst = sys.argv[1], sys.argv[2]

def dump(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")

d = json.load(open(os.path.join(src, "rfc3602_aes_cbc_esp.json")))
vs = []
for v in d["vectors"]:
    if v.get("case", 0) < 5:
        continue
    pad = bytes.fromhex(v["padding"])
    assert pad == bytes(range(1, len(pad) + 1))
    ip = bytes.fromhex(v["esp_ip_header"])
    hdr = v["original_ip_header"]
    payload = v["original_data"] if v["esp_mode"] == "transport" else hdr + v["original_data"]
    x = {"name": "RFC 3602 case %d" % v["case"], "source": v["source"], "notes": v["description"],
         "mode": v["esp_mode"], "encryption": "aes-cbc", "enc_key": v["key"], "integrity": "none",
         "spi": v["spi"], "seq": v["seq"], "iv": v["iv"], "payload": payload,
         "next_header": int(v["next_header"], 16),
         "esp": v["esp_spi_seq"] + v["iv"] + v["ciphertext"]}
    if v["esp_mode"] == "transport":
        x["ip_header"] = hdr
    else:
        x["outer_src"] = "%d.%d.%d.%d" % tuple(ip[12:16])
        x["outer_dst"] = "%d.%d.%d.%d" % tuple(ip[16:20])
        x["outer_id"] = int.from_bytes(ip[4:6], "big")
    x["packet"] = v["esp_packet"]
    vs.append(x)
dump(os.path.join(dst, "esp_rfc3602.json"), {
    "kind": "esp",
    "source": "RFC 3602 section 4, cases #5-#8 (AES-128-CBC ESP packets), transcribed from the shared vector collection (/work/shared/vectors/rfc3602_aes_cbc_esp.json) by tools/transcribe_esp.py",
    "notes": "The RFC's packets have no ICV (encryption-only ESP), so integrity is none. payload is what ESP protects: transport mode the original data, tunnel mode the original IPv4 packet. packet is the whole IPv4 packet printed in the RFC: transport mode the original header rewritten by esp.RewriteIPv4 (protocol 50, total length, checksum), tunnel mode an outer header from esp.PutOuterIPv4 with the RFC's addresses and IP ID (TTL 64, TOS and DF copied from the inner packet).",
    "vectors": vs})

d = json.load(open(os.path.join(src, "rfc4106_gcm_esp_draft_mcgrew_gcm_test.json")))
vs, skipped = [], []
for v in d["vectors"]:
    if v["algorithm"] != "AES-GCM-ESP" or v["esn"]:
        skipped.append("#%d (%s%s)" % (v["index"], v["algorithm"], ", ESN" if v["esn"] else ""))
        continue
    if int(v["spi"], 16) < 256:
        skipped.append("#%d (SPI %d is reserved by RFC 4303 section 2.1; esp.New refuses it)" % (v["index"], int(v["spi"], 16)))
        continue
    pt = bytes.fromhex(v["plaintext"])
    pl, nh = pt[-2], pt[-1]
    assert pt[-2 - pl:-2] == bytes(range(1, pl + 1))
    vs.append({"name": "draft-mcgrew-gcm-test #%d (AES-%d)" % (v["index"], v["key_len"] * 8), "source": v["source"],
               "mode": "tunnel", "encryption": "aes-gcm-16", "enc_key": v["key"] + v["salt"],
               "spi": v["spi"], "seq": int(v["seq"], 16), "iv": v["iv"],
               "payload": pt[:len(pt) - 2 - pl].hex(), "next_header": nh, "esp": v["packet"]})
dump(os.path.join(dst, "esp_rfc4106_gcm.json"), {
    "kind": "esp",
    "source": "draft-mcgrew-gcm-test-01 section 4 (AES-GCM-ESP test cases for RFC 4106), transcribed from /work/shared/vectors/rfc4106_gcm_esp_draft_mcgrew_gcm_test.json by tools/transcribe_esp.py",
    "notes": "Only cases with 32-bit sequence numbers; skipped: " + ", ".join(skipped) + " (vpnlab does not implement extended sequence numbers; the GMAC case is RFC 4543, not negotiated). enc_key is KEYMAT = key | salt. payload and next_header are the plaintext without the ESP trailer; the draft's padding is the default 1, 2, 3, ... to 4-byte alignment. The draft's next header is 1 even where the payload is an IPv4 packet; it is reproduced as given. mode is irrelevant for ESP itself (no packet field).",
    "vectors": vs})
