#!/usr/bin/env python3
"""Generate testvectors/ikev1_keymat.json.

An implementation of the IKEv1 Quick Mode key derivation of RFC 2409
section 5.5 that is independent of vpnlab's Go code: it uses only Python's
hmac and hashlib modules.

    without PFS: KEYMAT = prf(SKEYID_d, protocol | SPI | Ni_b | Nr_b)
    with PFS:    KEYMAT = prf(SKEYID_d, g(qm)^xy | protocol | SPI | Ni_b | Nr_b)

and, when more keying material is needed than one prf output:

    KEYMAT = K1 | K2 | K3 | ...
    K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
    K2 = prf(SKEYID_d, K1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
    K3 = prf(SKEYID_d, K2 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)

truncated to the wanted length. prf is HMAC with the phase 1 hash, protocol
a single octet (2 = AH, 3 = ESP), SPI the 4-octet SPI of the SA.

Two kinds of vectors:

* synthetic: inputs are pseudo-random but fixed (SHA-256 in counter mode
  over a label), covering sha1/sha256/sha384/sha512, ESP and AH, with and
  without PFS, and lengths that need 1, 2 and 3 or more prf outputs;
* strongSwan: the two ESP SAs of a real strongSwan 5.9.8 exchange from the
  vpnlab reference lab (shared/lab/capture.sh with CHARON_KEYLOG=1, IKE and CHILD
  log level 4). SKEYID_d, the Quick Mode DH secret, SPI and nonces are
  copied from charon's key log (the "SA seed" dumps are exactly
  g(qm)^xy | protocol | SPI | Ni_b | Nr_b); the expected KEYMAT is charon's
  "encryption ... key" followed by its "integrity ... key". The script
  asserts that its own computation gives the same bytes.

Re-running the script reproduces the file byte for byte:

    python3 testvectors/tools/gen_ikev1_keymat.py > testvectors/ikev1_keymat.json
"""
import hashlib
import hmac
import json

PROTO = {"ah": 2, "esp": 3}


def det_bytes(label, n):
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(("vpnlab-ikev1-keymat|%s|%d" % (label, i)).encode()).digest()
        i += 1
    return out[:n]


def prf(h, key, *data):
    return hmac.new(key, b"".join(data), h).digest()


def keymat(h, skeyid_d, gqm, protocol, spi, ni, nr, n):
    seed = (gqm or b"") + bytes([protocol]) + spi + ni + nr
    out = b""
    k = b""
    while len(out) < n:
        k = prf(h, skeyid_d, k, seed)
        out += k
    return out[:n]


# (hash, protocol, Ni length, Nr length, g(qm)^xy length or None (no PFS),
#  KEYMAT length, what the length is for)
CASES = [
    ("sha1", "ah", 16, 16, None, 20, "HMAC-SHA1-96 key (AH); exactly 1 prf output"),
    ("sha1", "esp", 16, 16, None, 36, "AES-128-CBC + HMAC-SHA1-96 keys; 2 prf outputs"),
    ("sha1", "esp", 20, 32, 128, 52, "AES-256-CBC + HMAC-SHA1-96 keys, PFS MODP-1024; 3 prf outputs"),
    ("sha1", "esp", 8, 8, None, 44, "3DES-CBC + HMAC-SHA1-96 keys, minimum nonces; 3 prf outputs"),
    ("sha1", "esp", 32, 32, 256, 96, "AES-256-CBC + HMAC-SHA2-512-256 keys, PFS MODP-2048; 5 prf outputs"),
    ("sha256", "esp", 32, 32, None, 48, "AES-128-CBC + HMAC-SHA2-256-128 keys; 2 prf outputs"),
    ("sha256", "esp", 32, 32, 256, 64, "AES-256-CBC + HMAC-SHA2-256-128 keys, PFS MODP-2048; exactly 2 prf outputs"),
    ("sha256", "ah", 16, 24, 32, 32, "HMAC-SHA2-256-128 key (AH), PFS ECP-256; exactly 1 prf output"),
    ("sha256", "esp", 16, 16, None, 20, "AES-GCM-16 128-bit key + 4-byte salt; 1 prf output"),
    ("sha256", "esp", 64, 64, 48, 96, "AES-256-CBC + HMAC-SHA2-512-256 keys, PFS ECP-384; exactly 3 prf outputs"),
    ("sha256", "esp", 256, 256, None, 100, "maximum (256-byte) nonces; 4 prf outputs"),
    ("sha384", "esp", 32, 32, None, 80, "AES-256-CBC + HMAC-SHA2-384-192 keys; 2 prf outputs"),
    ("sha384", "esp", 48, 16, 384, 36, "AES-GCM-16 256-bit key + salt, PFS MODP-3072; 1 prf output"),
    ("sha384", "ah", 32, 32, None, 48, "HMAC-SHA2-384-192 key (AH); exactly 1 prf output"),
    ("sha384", "esp", 32, 32, 66, 160, "PFS ECP-521; 4 prf outputs"),
    ("sha512", "esp", 32, 32, None, 96, "AES-256-CBC + HMAC-SHA2-512-256 keys; 2 prf outputs"),
    ("sha512", "esp", 64, 48, 512, 200, "PFS MODP-4096; 4 prf outputs"),
    ("sha512", "ah", 16, 16, 32, 64, "HMAC-SHA2-512-256 key (AH), PFS ECP-256; exactly 1 prf output"),
    ("sha512", "esp", 16, 16, None, 16, "AES-128 key only; 1 prf output"),
    ("sha512", "ah", 20, 20, 1024, 130, "PFS MODP-8192; 3 prf outputs"),
]

# Cases whose g(qm)^xy gets a leading zero octet: a MODP shared secret is
# left-padded to the prime length and the padding is part of the prf input.
LEADING_ZERO = {3, 7}

# ---- a real strongSwan 5.9.8 exchange -------------------------------------
#
# vpnlab reference lab, shared/lab/capture.sh (CHARON_KEYLOG=1), tunnel t1, IKEv1 main
# mode AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048, quick mode
# ESP AES_CBC-128/HMAC_SHA2_256_128 with PFS MODP_2048. Values copied from
# shared/lab/results/capture/charon-cgw.log (initiator, cgw; the responder's
# charon-vgw.log has identical dumps):
#   SKEYID_d                 line 84
#   DH secret (g(qm)^xy)     line 243
#   initiator SA seed        line 260  = g(qm)^xy | 03 | ad8c3188 | Ni_b | Nr_b
#   responder SA seed        line 282  = g(qm)^xy | 03 | ef5ebbd9 | Ni_b | Nr_b
#   encryption initiator key line 304, integrity initiator key line 308
#   encryption responder key line 306, integrity responder key line 311
# Ni_b and Nr_b are also the Quick Mode nonce payloads in
# shared/lab/captures/ikev1-natt-public.decrypted-V.txt (tshark, decrypted).
SS_SKEYID_D = "f61cc16ca6407def09313313ac4c108f198117d22d6a5de43c7a1b5329254ff8"
SS_GQM = (
    "0f6c6d8c41dadff7e65516c17a8c7ab8130882fcff0f08844b978b4b22f11c49"
    "f1eb5557c004cf87fefe08c62016a1c2048ea7aadf8ccd11cf46159827e65b31"
    "ebf8a4d0839e9d1d9b3036003fbc64ae541eaa62b02be65ffafe6f74846c2bbc"
    "49dfcc988cf2aae401bc11bc89d999299759b1a91cc692f1c83ef002df3463bd"
    "53f9e8069e04cd45f0b48a527e53540b6ff04b5165637a3388d53ba64bcd6133"
    "df570be114b99ee6a64e33efa8ad1ad638a557e0144be8201e286f62ed97215d"
    "37235db042c4bc7cbb9d0c4375a954a51648b8df51489c0c99336a70f195acdf"
    "a39bc091ac8c72365b9b026db4279d88fe53c73d6848fe835debfede9cd0f94e"
)
SS_NI = "205454ac7af0a8aa2ce6efafe172d96d34348dfcb4c5827fd5057d732948b717"
SS_NR = "8ed684fc1f29443e63c0d9e3c366d9f35e69ef91213bfccd9af3cf55bf16e3e9"
# (SPI, direction, charon's encryption key, charon's integrity key, log lines)
SS_SAS = [
    ("ad8c3188", "cgw->vgw (initiator to responder; charon 'initiator' keys)",
     "63d04efd5cc6109a96ccab49cda10bf1",
     "8d8474d30bef0c7d734b7170e4e51530a6b564a262c4a01a537d87632ba350f1", "260, 304, 308"),
    ("ef5ebbd9", "vgw->cgw (responder to initiator; charon 'responder' keys)",
     "6ce61a48aefedcb9f3a92b06fb804b24",
     "3c5777079f0bdca37dcd230493f89b84fa07655ce52d811d63c352b9752bc885", "282, 306, 311"),
]


def blocks(h, n):
    size = hashlib.new(h).digest_size
    return (n + size - 1) // size


def main():
    vectors = []
    for idx, (h, proto, nil, nrl, gl, n, what) in enumerate(CASES, 1):
        lab = "%s-%d" % (h, idx)
        size = hashlib.new(h).digest_size
        skeyid_d = det_bytes(lab + "-skeyid_d", size)
        spi = det_bytes(lab + "-spi", 4)
        ni = det_bytes(lab + "-ni", nil)
        nr = det_bytes(lab + "-nr", nrl)
        gqm = None
        if gl is not None:
            gqm = det_bytes(lab + "-gqm", gl)
            if idx in LEADING_ZERO:
                gqm = b"\x00" + gqm[1:]
                what += "; g(qm)^xy has a leading zero octet"
        km = keymat(h, skeyid_d, gqm, PROTO[proto], spi, ni, nr, n)
        v = {
            "name": "keymat-%s-%d (%s, %s, %d bytes = %d x %d-byte prf)" % (
                h, idx, proto.upper(), "PFS %d-byte g(qm)^xy" % gl if gl else "no PFS", n, blocks(h, n), size),
            "notes": what,
            "hash": h,
            "skeyid_d": skeyid_d.hex(),
            "protocol": PROTO[proto],
            "spi": spi.hex(),
            "ni_b": ni.hex(),
            "nr_b": nr.hex(),
        }
        if gqm is not None:
            v["g_qm_xy"] = gqm.hex()
        v["length"] = n
        v["keymat"] = km.hex()
        vectors.append(v)

    for spi, direction, enc, integ, lines in SS_SAS:
        want = bytes.fromhex(enc + integ)
        got = keymat("sha256", bytes.fromhex(SS_SKEYID_D), bytes.fromhex(SS_GQM), 3,
                     bytes.fromhex(spi), bytes.fromhex(SS_NI), bytes.fromhex(SS_NR), len(want))
        if got != want:
            raise SystemExit("strongSwan SPI %s: computed KEYMAT %s, charon logged %s" % (spi, got.hex(), want.hex()))
        vectors.append({
            "name": "strongswan-5.9.8 ESP SPI %s %s (sha256, PFS MODP-2048, 48 bytes)" % (spi, direction.split(" ")[0]),
            "source": "strongSwan 5.9.8 charon key log of a real exchange in the vpnlab reference lab "
                      "(shared/lab/capture.sh, CHARON_KEYLOG=1): shared/lab/results/capture/charon-cgw.log SKEYID_d line 84, "
                      "DH secret line 243, SA seed / encryption key / integrity key lines %s "
                      "(identical in charon-vgw.log)" % lines,
            "notes": "%s. ESP AES_CBC-128/HMAC_SHA2_256_128; KEYMAT = 16-byte encryption key | 32-byte "
                     "integrity key as installed by charon; recomputed and matched by gen_ikev1_keymat.py" % direction,
            "hash": "sha256",
            "skeyid_d": SS_SKEYID_D,
            "protocol": 3,
            "spi": spi,
            "ni_b": SS_NI,
            "nr_b": SS_NR,
            "g_qm_xy": SS_GQM,
            "length": len(want),
            "keymat": want.hex(),
        })

    doc = {
        "kind": "ikev1-keymat",
        "source": "RFC 2409 section 5.5 (IKEv1 Quick Mode KEYMAT with and without PFS, K1 | K2 | ... expansion). "
                  "Generated by testvectors/tools/gen_ikev1_keymat.py (python3, hmac + hashlib only, independent "
                  "of vpnlab's Go code); synthetic inputs are deterministic SHA-256 counter-mode bytes. The two "
                  "strongswan-5.9.8 vectors are a real exchange from charon's key log (see their own source), "
                  "matched by the script's computation. Regenerate: python3 testvectors/tools/gen_ikev1_keymat.py "
                  "> testvectors/ikev1_keymat.json",
        "vectors": vectors,
    }
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
