#!/usr/bin/env python3
"""Transcribe NIST CAVP SP 800-135 IKEv2 KDF known answers (the "ikev2"
section of the KDF135 component test vectors, CAVS 17.3 file ikev2.fax) into
vpnlab's ikev2-kdf vector format. Values are copied, never computed.

The file used is the copy NSS ships for its FIPS tests:
  repository https://github.com/nss-dev/nss
  path       tests/fips/cavs_samples/IKE/fax/ikev2.fax
  commit     ecde5131b5d3c35aa3e2f1c16e8bd388083e766f (last change of the file;
             identical at 9d75dfde2e791c38fdf5ea7f3da9609c46d8a4f8)

    git -C nss show ecde5131b5d3c35aa3e2f1c16e8bd388083e766f:tests/fips/cavs_samples/IKE/fax/ikev2.fax > ikev2.fax
    python3 testvectors/tools/transcribe_cavp_ikev2.py ikev2.fax > testvectors/ikev2_kdf_cavp.json

PER_SECTION vectors (COUNT 0, 1, ...) are taken from every [g^ir length,
SHA, Ni length, DKM length] section of the file.
"""
import json
import re
import sys

PER_SECTION = 4
HASHES = {"SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
FIELDS = [  # CAVP name -> vector field
    ("Ni", "ni"), ("Nr", "nr"), ("g^ir", "gir"), ("g^ir (new)", "gir_new"),
    ("SPIi", "spii"), ("SPIr", "spir"), ("SKEYSEED", "skeyseed"), ("DKM", "dkm"),
    ("DKM(Child SA)", "dkm_child"), ("DKM(Child SA D-H)", "dkm_child_dh"),
    ("SKEYSEED(Rekey)", "skeyseed_rekey"),
]
CAVP_NAMES = dict(FIELDS)

sections = {}   # bracket name -> value of the current section
vectors = []
case = None


def flush():
    global case
    if case is None:
        return
    missing = [c for c, _ in FIELDS if c not in case["values"]]
    if missing:
        sys.exit("COUNT %s: missing %s" % (case["count"], missing))
    if case["count"] < PER_SECTION:
        s = case["section"]
        v = {
            "name": "CAVP ikev2 %s g^ir %s bits, Ni/Nr %s bits, DKM %s bits, COUNT = %d" % (
                s["hash"], s["g^ir length"], s["Ni length"], s["DKM length"], case["count"]),
            "hash": HASHES[s["hash"]],
        }
        for c, f in FIELDS:
            val = case["values"][c]
            if not re.fullmatch(r"[0-9a-f]+", val):
                sys.exit("COUNT %d: %s is not lowercase hex" % (case["count"], c))
            v[f] = val
        # The section header's lengths must agree with the values.
        for c, key in (("Ni", "Ni length"), ("Nr", "Nr length"), ("g^ir", "g^ir length"),
                       ("DKM", "DKM length"), ("DKM(Child SA)", "Child SA DKM length")):
            if len(case["values"][c]) * 4 != int(s[key]):
                sys.exit("COUNT %d: %s has %d bits, section says %s" % (case["count"], c, len(case["values"][c]) * 4, s[key]))
        vectors.append(v)
    case = None


for line in open(sys.argv[1], encoding="ascii"):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    m = re.fullmatch(r"\[(.+?)( = (\d+))?\]", line)
    if m:
        flush()
        if m.group(3) is None:
            sections["hash"] = m.group(1)
        else:
            sections[m.group(1)] = m.group(3)
        continue
    name, _, val = line.partition(" = ")
    if name == "COUNT":
        flush()
        case = {"count": int(val), "section": dict(sections), "values": {}}
    elif name in CAVP_NAMES:
        case["values"][name] = val
    else:
        sys.exit("unknown line %r" % line)
flush()

json.dump({
    "kind": "ikev2-kdf",
    "source": "NIST CAVP SP 800-135 KDF component test vectors, IKEv2 section (CAVS 17.3, file ikev2.fax, 'Generated on Mon Feb 09 19:38:19 2015'), "
              "as shipped by NSS: https://github.com/nss-dev/nss tests/fips/cavs_samples/IKE/fax/ikev2.fax at commit ecde5131b5d3c35aa3e2f1c16e8bd388083e766f. "
              "COUNT 0-%d of each section, transcribed by testvectors/tools/transcribe_cavp_ikev2.py (values copied, lengths checked against the section headers)." % (PER_SECTION - 1),
    "notes": "CAVP field -> vector field: Ni -> ni, Nr -> nr, g^ir -> gir, g^ir (new) -> gir_new, SPIi -> spii, SPIr -> spir, SKEYSEED -> skeyseed, DKM -> dkm, "
             "DKM(Child SA) -> dkm_child, DKM(Child SA D-H) -> dkm_child_dh, SKEYSEED(Rekey) -> skeyseed_rekey. NSS's copy of the file ends after the first "
             "g^ir 8192-bit section (SHA-1, 64-bit nonces); its 2048-bit g^ir sections are not in it. COUNT 0 of the first section is also quoted in libreswan's "
             "programs/pluto/ike_alg_test_prf.c (hmac_sha1_kdf_tests, 'CAVP: IKEv2 key derivation with HMAC-SHA1').",
    "vectors": vectors,
}, sys.stdout, indent=1)
sys.stdout.write("\n")
