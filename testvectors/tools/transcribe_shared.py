#!/usr/bin/env python3
"""Transcribe RFC test vectors from the team's shared vector collection
(/work/shared/vectors, values taken from the cited RFCs and re-verified
there) into vpnlab's test vector format. Run once; the output files are
committed and may be edited by hand afterwards.

    python3 testvectors/tools/transcribe_shared.py /work/shared/vectors testvectors
"""
import json
import os
import sys

src_dir, out_dir = sys.argv[1], sys.argv[2]


def load(name):
    with open(os.path.join(src_dir, name)) as f:
        return json.load(f)


def write(name, doc):
    with open(os.path.join(out_dir, name), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


# ---- RFC 2202 (HMAC-MD5, HMAC-SHA-1) -> prf + integrity ----
d = load("rfc2202_rfc2404_hmac_md5_sha1.json")
prf, integ = [], []
for v in d["vectors"]:
    h = {"HMAC-MD5": "md5", "HMAC-SHA-1": "sha1"}[v["algorithm"]]
    sec = "2" if h == "md5" else "3"
    prf.append({
        "name": "%s test case %s" % (v["algorithm"], v["test_case"]),
        "source": "RFC 2202 section %s, test_case = %s" % (sec, v["test_case"]),
        "hash": h, "key": v["key"], "data": v["data"], "output": v["digest"],
    })
    icv = v.get("digest_96") or v["digest_96_derived"]
    e = {
        "name": "%s-96 test case %s" % (v["algorithm"], v["test_case"]),
        "source": "RFC 2202 section %s, test_case = %s; 96-bit truncation per %s" % (
            sec, v["test_case"], "RFC 2403" if h == "md5" else "RFC 2404"),
        "key": v["key"], "data": v["data"], "icv": icv,
    }
    if h == "sha1":
        e["algorithm"] = "hmac-sha1-96"
    else:
        e["hash"] = "md5"
        e["truncate_bits"] = 96
    if "digest_96" not in v:
        e["notes"] = "ICV = first 12 bytes of the printed digest (RFC 2202 prints digest-96 only for case 5)"
    integ.append(e)
write("prf_rfc2202.json", {
    "kind": "prf",
    "source": "RFC 2202 (Test Cases for HMAC-MD5 and HMAC-SHA-1) sections 2 and 3",
    "notes": "Full HMAC outputs. HMAC-MD5 is included because crypto/md5 is in the standard library; IKEv1 in vpnlab does not negotiate MD5.",
    "vectors": prf,
})
write("integrity_rfc2202_rfc2404.json", {
    "kind": "integrity",
    "source": "RFC 2202 sections 2 and 3; truncation to 96 bits per RFC 2403 (HMAC-MD5-96) and RFC 2404 (HMAC-SHA-1-96), which refer to RFC 2202 for test vectors",
    "notes": "SHA-1 cases go through keymat.IntegrityByIKE's HMAC-SHA1-96 (IPsec auth algorithm 2); MD5 cases use the generic hash + truncate_bits form.",
    "vectors": integ,
})

# ---- RFC 4868 (HMAC-SHA-256/384/512) -> prf + integrity ----
d = load("rfc4868_hmac_sha2.json")
prf, integ = [], []
for v in d["vectors"]:
    if v["kind"] == "prf":
        for h in ("sha256", "sha384", "sha512"):
            prf.append({
                "name": "%s (%s)" % (v["name"], h),
                "source": v["source"],
                "hash": h, "key": v["key"], "data": v["data"], "output": v["prf_hmac_" + h],
            })
    else:
        alg = {"HMAC-SHA-256-128": "hmac-sha2-256-128", "HMAC-SHA-384-192": "hmac-sha2-384-192",
               "HMAC-SHA-512-256": "hmac-sha2-512-256"}[v["algorithm"]]
        h = "sha" + alg.split("-")[2]
        e = {"name": v["name"], "source": v["source"], "algorithm": alg,
             "key": v["key"], "data": v["data"], "icv": v["icv"]}
        if "notes" in v:
            e["notes"] = v["notes"]
        integ.append(e)
        # The full (untruncated) PRF output is a prf vector too.
        prf.append({
            "name": "%s full output (%s)" % (v["name"], h), "source": v["source"],
            "hash": h, "key": v["key"], "data": v["data"], "output": v["prf_hmac_" + h],
        })
write("prf_rfc4868.json", {
    "kind": "prf",
    "source": "RFC 4868 section 2.7.1 (PRF-1..PRF-6, the RFC 4231 HMAC-SHA-2 test cases 1-4, 6, 7) and section 2.7.2 (full outputs of AUTH256/384/512-1..4)",
    "notes": "AUTH512-4 uses the corrected 64-byte key (the RFC prints an extra leading 0a0b0c0d0e0f10111213141516171819; known erratum).",
    "vectors": prf,
})
write("integrity_rfc4868.json", {
    "kind": "integrity",
    "source": "RFC 4868 section 2.7.2 (Authenticator Test Vectors AUTH256-1..4, AUTH384-1..4, AUTH512-1..4)",
    "notes": "HMAC-SHA-256-128, HMAC-SHA-384-192, HMAC-SHA-512-256 (IPsec auth algorithms 5, 6, 7). AUTH512-4 uses the corrected 64-byte key (RFC 4868 prints one with an extra leading 16 bytes; known erratum). AUTH384-1's output is labelled 'HMAC-SHA-384-128' in the RFC (typo).",
    "vectors": integ,
})

# ---- DH: RFC 5903 section 8, RFC 5114 appendix A ----
d = load("dh_groups_modp_ecp.json")
plen = {int(g["group"]): int(g.get("prime_len") or 0) for g in d["groups"]}
clen = {int(g["group"]): int(g.get("ke_component_len") or 0) for g in d["groups"]}
v5903, v5114 = [], []
for t in d["test_vectors"]:
    gid = int(t["group"])
    if gid in (25, 26):
        continue  # ECP groups 25/26 are not supported by vpnlab
    if t["source"].startswith("RFC 5903"):
        n = int(t["component_len"])
        v5903.append({
            "name": "RFC 5903 %s group %d" % (t["source"].split()[3], gid),
            "source": t["source"],
            "group": gid,
            "private": t["i"],
            "public": t["gix"].rjust(2 * n, "0") + t["giy"].rjust(2 * n, "0"),
            "peer_private": t["r"],
            "peer_public": t["grx"].rjust(2 * n, "0") + t["gry"].rjust(2 * n, "0"),
            "shared": t["shared_secret"].rjust(2 * n, "0"),
            "ikev2_ke_payload": t["kei_payload"],
            "peer_ikev2_ke_payload": t["ker_payload"],
        })
    elif t["type"] == "MODP":
        n = plen[gid]
        v5114.append({
            "name": "RFC 5114 %s group %d" % (t["source"].split()[3], gid),
            "source": t["source"],
            "group": gid,
            "private": t["xA"],
            "public": t["yA"].rjust(2 * n, "0"),
            "peer_private": t["xB"],
            "peer_public": t["yB"].rjust(2 * n, "0"),
            "shared": t["Z"].rjust(2 * n, "0"),
        })
    else:
        n = clen[gid]
        v5114.append({
            "name": "RFC 5114 %s group %d" % (t["source"].split()[3], gid),
            "source": t["source"],
            "group": gid,
            "private": t["dA"],
            "public": t["x_qA"].rjust(2 * n, "0") + t["y_qA"].rjust(2 * n, "0"),
            "peer_private": t["dB"],
            "peer_public": t["x_qB"].rjust(2 * n, "0") + t["y_qB"].rjust(2 * n, "0"),
            "shared": t["x_Z"].rjust(2 * n, "0"),
        })
write("dh_rfc5903.json", {
    "kind": "dh",
    "source": "RFC 5903 section 8.1-8.3 (IKE test vectors for ECP groups 19, 20, 21)",
    "notes": "public = g^i as x|y (the IKE KE payload data, RFC 5903 section 7), shared = x coordinate of g^ir. ikev2_ke_payload is the full IKEv2 KE payload printed in the RFC (4-byte generic header, 2-byte group, 2 reserved bytes, then the KE data); IKEv1 KE payload data is the same x|y.",
    "vectors": v5903,
})
write("dh_rfc5114.json", {
    "kind": "dh",
    "source": "RFC 5114 Appendix A.1-A.3 (groups 22, 23, 24) and A.6-A.8 (ECP groups 19, 20, 21)",
    "notes": "MODP values are left-padded with zeros to the prime length (the RFC omits leading zero bytes); ECP public values are x|y, shared = x coordinate (RFC 5903 encoding). Test data A.4/A.5 (ECP groups 25, 26) is omitted: those groups are not supported.",
    "vectors": v5114,
})
