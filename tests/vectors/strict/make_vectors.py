"""Build the strict-decoding vectors (issue 8, points 4 and 5): CBOR, COSE and QR text.

    $ .venv/bin/python tests/vectors/strict/make_vectors.py            # rewrite this folder
    $ .venv/bin/python tests/vectors/strict/make_vectors.py --out DIR  # elsewhere (the test does)

Each vector is a signed HC1 text with exactly one defect (or none, for the
controls), so a verifier that ignores the rule would call it valid: the
COSE is assembled byte by byte (duplicate keys, trailing bytes, odd tags
and bignums are things no CBOR encoder writes on purpose) and signed with a
fresh ES256 DSC. The keys are generated here, used and dropped: only the
DSC certificate (``trust.pem``, public) and the texts are written. The
clock, payload, names and serials are fixed, so a new run gives the same
folders and expected results; only the keys, signatures and kids differ.
README.md is written from the same table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

import cbor2  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

from keys.certs import make_csca, make_dsc, new_private_key  # noqa: E402
from keys.software import SoftwareKey  # noqa: E402
from verifier import codec  # noqa: E402
from verifier.crypto import kid_for_certificate  # noqa: E402

HERE = Path(__file__).resolve().parent
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
AT = "2026-06-01T12:00:00Z"
IAT = int(NOW.timestamp()) - 86400
EXP = int(NOW.timestamp()) + 365 * 86400
HUGE = 10**5000  # beyond Python's 4,300-digit int-to-text limit

DCC: dict[str, Any] = {
    "ver": "1.3.0",
    "nam": {"fn": "Nguyễn", "fnt": "NGUYEN", "gn": "Văn Bình", "gnt": "VAN<BINH"},
    "dob": "1990-01-02",
    "v": [
        {
            "tg": "840539006",
            "vp": "J07BX03",
            "mp": "EU/1/20/1528",
            "ma": "ORG-100030215",
            "dn": 2,
            "sd": 2,
            "dt": "2021-09-01",
            "co": "VN",
            "is": "Ministry of Health of Viet Nam",
            "ci": "URN:UVCI:01:VN:STRICT0001#N",
        }
    ],
}


# --------------------------------------------------------------------------
# CBOR written by hand (RFC 8949 section 3): heads, maps from encoded pairs.

E = cbor2.dumps  # ordinary values: their preferred encoding


def head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError(n)


def bstr(data: bytes) -> bytes:
    return head(2, len(data)) + data


def array(*items: bytes) -> bytes:
    return head(4, len(items)) + b"".join(items)


def cmap(*pairs: tuple[bytes, bytes]) -> bytes:
    """A map of already-encoded (key, value) pairs, in this order, repeats allowed."""
    return head(5, len(pairs)) + b"".join(k + v for k, v in pairs)


def pairs(values: dict[Any, Any]) -> list[tuple[bytes, bytes]]:
    return [(E(k), E(v)) for k, v in values.items()]


def tag(number: int, body: bytes) -> bytes:
    return head(6, number) + body


def bignum(n: int) -> bytes:
    """Tag 2 (n >= 0) or 3 (n < 0) with the magnitude's bytes."""
    magnitude = n if n >= 0 else -1 - n
    raw = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "big")
    return tag(2 if n >= 0 else 3, bstr(raw))


def dcc_raw(
    *,
    top: tuple[tuple[bytes, bytes], ...] = (),
    entry: tuple[tuple[bytes, bytes], ...] = (),
    dose: bytes | None = None,
) -> bytes:
    """DCC with extra pairs appended at the top level or in its vaccination
    entry, or another (encoded) dose number ``dn``."""
    fields = {k: v for k, v in DCC.items() if k != "v"}
    v0_pairs = [(k, dose if dose is not None and k == E("dn") else val) for k, val in pairs(DCC["v"][0])]
    v0 = cmap(*v0_pairs, *entry)
    return cmap(*pairs(fields), (E("v"), array(v0)), *top)


def claims_raw(
    *,
    dcc: bytes | None = None,
    iat: bytes | None = None,
    exp: bytes | None = None,
    hcert: bytes | None = None,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    hcert = hcert if hcert is not None else cmap((E(1), dcc if dcc is not None else E(DCC)))
    return cmap(
        (E(1), E("VN")),
        (E(4), exp if exp is not None else E(EXP)),
        (E(6), iat if iat is not None else E(IAT)),
        (E(-260), hcert),
        *extra,
    )


TAG18 = head(6, 18)
#: 256(["abcd", 25(0)]): a string namespace whose second item refers to the first.
STRINGREF = tag(256, array(E("abcd"), tag(25, E(0))))


@dataclass
class Ctx:
    key: SoftwareKey
    kid: bytes

    def protected(self, *extra: tuple[bytes, bytes]) -> bytes:
        return cmap((E(1), E(-7)), (E(4), bstr(self.kid)), *extra)

    def cose(
        self,
        *,
        protected: bytes | None = None,
        unprotected: bytes = b"\xa0",
        payload: bytes | None = None,
        prefix: bytes = TAG18,
        suffix: bytes = b"",
        signature: bytes | None = None,
    ) -> bytes:
        protected = self.protected() if protected is None else protected
        payload = claims_raw() if payload is None else payload
        if signature is None:
            signature = self.key.sign(codec.sig_structure(protected, payload))
        body = array(bstr(protected), unprotected, bstr(payload), bstr(signature))
        return prefix + body + suffix

    def text(self, **kw: Any) -> str:
        return codec.to_qr_text(self.cose(**kw), level=0)

    def file(self, **kw: Any) -> bytes:
        """qr.txt: the text and one line ending."""
        return (self.text(**kw) + "\n").encode("ascii")


# --------------------------------------------------------------------------
# The vectors


@dataclass(frozen=True)
class Vector:
    name: str
    how: str
    build: Callable[[Ctx], bytes]  # -> the bytes of qr.txt
    stage: str | None = None  # None: valid
    reasons: tuple[str, ...] = ()


def v(name: str, how: str, stage: str | None, reason: str | None, build: Callable[[Ctx], bytes]) -> Vector:
    return Vector(name, how, build, stage, () if reason is None else (reason,))


COSE, CWT = "cose", "cwt"
DUP, TRAIL, BIG = "duplicate_map_key", "trailing_bytes", "integer_out_of_range"
WRONG_TAG = "cose_wrong_tag"
UNPROCESSED, CRIT_BAD = "crit_unsupported", "crit_malformed"


def _kid_pair(c: Ctx) -> tuple[bytes, bytes]:
    return E(4), bstr(c.kid)


VECTORS: list[Vector] = [
    # controls
    v("valid-tag-18", "tag 18 COSE_Sign1, ES256, kid and alg protected", None, None, lambda c: c.file()),
    v("valid-untagged", "untagged COSE_Sign1 (hcert allows it; EU test vectors have it)", None, None,
      lambda c: c.file(prefix=b"")),
    v("valid-tag-61-18", "CWT tag 61 around tag 18 (RFC 8392 section 6)", None, None,
      lambda c: c.file(prefix=tag(61, TAG18))),
    v("valid-tag-18-long-head", "tag 18 written with a one-byte argument (d8 12): the same tag", None, None,
      lambda c: c.file(prefix=b"\xd8\x12")),
    v("valid-payload-tag-55799", "CWT payload 55799(claims): cbor2 6 decodes it to immutable maps and tuples",
      None, None, lambda c: c.file(payload=tag(55799, claims_raw()))),
    # duplicate keys
    v("dup-protected-alg", "protected header {1: -35, 4: kid, 1: -7}: a last-wins decoder sees ES256", COSE, DUP,
      lambda c: c.file(protected=cmap((E(1), E(-35)), _kid_pair(c), (E(1), E(-7))))),
    v("dup-protected-kid", "protected header with kid twice (a wrong kid first)", COSE, DUP,
      lambda c: c.file(protected=cmap((E(1), E(-7)), (E(4), bstr(b"WRONGKID")), _kid_pair(c)))),
    v("dup-protected-long-key", "protected header with label 1 as 01 and as 18 01 (equal keys, other bytes)", COSE,
      DUP, lambda c: c.file(protected=cmap((E(1), E(-35)), _kid_pair(c), (b"\x18\x01", E(-7))))),
    v("dup-unprotected-kid", "unprotected header {4: kid, 4: kid}, protected {1: -7}", COSE, DUP,
      lambda c: c.file(protected=cmap((E(1), E(-7))), unprotected=cmap(_kid_pair(c), _kid_pair(c)))),
    v("dup-claims-exp", "CWT claims with exp twice (long past, then next year)", CWT, DUP,
      lambda c: c.file(payload=claims_raw(exp=E(1), extra=((E(4), E(EXP)),)))),
    v("dup-hcert", "hcert claim map {1: DCC, 1: DCC}", CWT, DUP,
      lambda c: c.file(payload=claims_raw(hcert=cmap((E(1), E(DCC)), (E(1), E(DCC)))))),
    v("dup-dcc-top", "DCC with dob twice", CWT, DUP,
      lambda c: c.file(payload=claims_raw(dcc=dcc_raw(top=((E("dob"), E("1991-01-02")),))))),
    v("dup-dcc-deep", "DCC vaccination entry with ci twice", CWT, DUP,
      lambda c: c.file(payload=claims_raw(dcc=dcc_raw(entry=((E("ci"), E("URN:UVCI:01:VN:OTHER#1")),))))),
    v("dup-dcc-true-and-1", "DCC with keys true and 1 (one key to a Python dict)", CWT, DUP,
      lambda c: c.file(payload=claims_raw(dcc=dcc_raw(top=((b"\xf5", E(1)), (E(1), E(2))))))),
    # trailing bytes
    v("trailing-zero", "a 00 byte after the tag 18 COSE_Sign1", COSE, TRAIL, lambda c: c.file(suffix=b"\x00")),
    v("trailing-map", "an empty map after the COSE_Sign1", COSE, TRAIL, lambda c: c.file(suffix=b"\xa0")),
    v("trailing-untagged", "a 00 byte after an untagged COSE_Sign1", COSE, TRAIL,
      lambda c: c.file(prefix=b"", suffix=b"\x00")),
    v("trailing-in-protected", "protected header bytes: the map, then 00 (signed as such)", COSE, TRAIL,
      lambda c: c.file(protected=c.protected() + b"\x00")),
    v("trailing-in-payload", "CWT payload bytes: the claims map, then an empty map (signed)", CWT, TRAIL,
      lambda c: c.file(payload=claims_raw() + b"\xa0")),
    # crit (RFC 9052 section 3.1)
    v("crit-alg-kid", "crit [1, 4]: labels the verifier processes (valid)", None, None,
      lambda c: c.file(protected=c.protected((E(2), E([1, 4]))))),
    v("crit-unknown-int", "crit [99] with label 99 in the protected header", COSE, UNPROCESSED,
      lambda c: c.file(protected=c.protected((E(2), E([99])), (E(99), E(0))))),
    v("crit-unknown-text", 'crit ["vn-ext"] with that label in the protected header', COSE, UNPROCESSED,
      lambda c: c.file(protected=c.protected((E(2), E(["vn-ext"])), (E("vn-ext"), E(1))))),
    v("crit-x5chain", "crit [33]: an x5chain the DCC verifier does not process", COSE, UNPROCESSED,
      lambda c: c.file(protected=c.protected((E(2), E([4, 33])), (E(33), bstr(b"0"))))),
    v("crit-names-crit", "crit [2]", COSE, UNPROCESSED, lambda c: c.file(protected=c.protected((E(2), E([2]))))),
    v("crit-empty", "crit [] (must have at least one label)", COSE, CRIT_BAD,
      lambda c: c.file(protected=c.protected((E(2), E([]))))),
    v("crit-not-array", "crit 4 (not an array)", COSE, CRIT_BAD,
      lambda c: c.file(protected=c.protected((E(2), E(4))))),
    v("crit-true", "crit [true] (not a label)", COSE, CRIT_BAD,
      lambda c: c.file(protected=c.protected((E(2), E([True]))))),
    v("crit-unprotected", "crit [4] in the unprotected header", COSE, CRIT_BAD,
      lambda c: c.file(unprotected=cmap((E(2), E([4]))))),
    v("crit-label-absent", "crit [4] while kid is only in the unprotected header", COSE, CRIT_BAD,
      lambda c: c.file(protected=cmap((E(1), E(-7)), (E(2), E([4]))), unprotected=cmap(_kid_pair(c)))),
    # tag layouts
    v("tag-61-untagged", "CWT tag 61 around an untagged COSE_Sign1", COSE, WRONG_TAG,
      lambda c: c.file(prefix=tag(61, b""))),
    v("tag-61-61-18", "tag 61 twice around tag 18", COSE, WRONG_TAG, lambda c: c.file(prefix=tag(61, tag(61, TAG18)))),
    v("tag-18-18", "tag 18 twice", COSE, WRONG_TAG, lambda c: c.file(prefix=TAG18 + TAG18)),
    v("tag-18-61-18", "tag 18 around tag 61 around tag 18", COSE, WRONG_TAG,
      lambda c: c.file(prefix=TAG18 + tag(61, TAG18))),
    v("tag-55799-18", "self-described CBOR (tag 55799) around tag 18", COSE, WRONG_TAG,
      lambda c: c.file(prefix=tag(55799, TAG18))),
    v("tag-98", "tag 98 (COSE_Sign) around the COSE_Sign1 array", COSE, WRONG_TAG, lambda c: c.file(prefix=tag(98, b""))),
    v("tag-17", "tag 17 (COSE_Mac0) around the COSE_Sign1 array", COSE, WRONG_TAG, lambda c: c.file(prefix=tag(17, b""))),
    # header labels and claim keys: int or text
    v("label-true-alg", "protected header {true: -7, 4: kid}", COSE, "cose_malformed",
      lambda c: c.file(protected=cmap((b"\xf5", E(-7)), _kid_pair(c)))),
    v("claim-key-float", "CWT claims with exp under the key 4.0", CWT, "cwt_malformed",
      lambda c: c.file(payload=cmap((E(1), E("VN")), (E(4.0), E(EXP)), (E(6), E(IAT)),
                                    (E(-260), cmap((E(1), E(DCC))))))),
    # integers
    v("alg-huge-unsigned", "unsigned QR: alg a 5001-digit bignum (used to be an internal error)", COSE, BIG,
      lambda c: c.file(protected=cmap((E(1), bignum(HUGE)), _kid_pair(c)), signature=b"\x00" * 64)),
    v("alg-bignum-2-64", "alg = tag 2 bignum 2**64 (just beyond 64 bits)", COSE, BIG,
      lambda c: c.file(protected=cmap((E(1), bignum(2**64)), _kid_pair(c)))),
    v("alg-bignum-in-range", "alg = tag 3 bignum of -7 (in range: the integer -7)", None, None,
      lambda c: c.file(protected=cmap((E(1), bignum(-7)), _kid_pair(c)))),
    v("key-huge-unprotected", "unprotected header key a 5001-digit bignum", COSE, BIG,
      lambda c: c.file(unprotected=cmap((bignum(HUGE), E(0))))),
    v("key-huge-dcc", "DCC key a 5001-digit bignum (--json printed nothing)", CWT, BIG,
      lambda c: c.file(payload=claims_raw(dcc=dcc_raw(top=((bignum(HUGE), E(1)),))))),
    v("exp-bignum-2-64", "exp = tag 2 bignum 2**64", CWT, BIG, lambda c: c.file(payload=claims_raw(exp=bignum(2**64)))),
    v("iat-bignum-below", "iat = tag 3 bignum -2**64 - 1", CWT, BIG,
      lambda c: c.file(payload=claims_raw(iat=bignum(-(2**64) - 1)))),
    v("dn-bignum-huge", "dose number a 5001-digit bignum", CWT, BIG,
      lambda c: c.file(payload=claims_raw(dcc=dcc_raw(dose=bignum(HUGE))))),
    v("exp-uint64-max", "exp = 2**64 - 1 (1b ff..ff, the largest CBOR integer: valid)", None, None,
      lambda c: c.file(payload=claims_raw(exp=E(2**64 - 1)))),
    v("iat-nint64-min", "iat = -2**64 (3b ff..ff, the smallest CBOR integer: valid)", None, None,
      lambda c: c.file(payload=claims_raw(iat=E(-(2**64))))),
    v("bignum-leading-zeros", "exp as tag 2 with 20 leading zero bytes (in range: valid)", None, None,
      lambda c: c.file(payload=claims_raw(exp=tag(2, bstr(b"\x00" * 20 + EXP.to_bytes(8, "big")))))),
    # unbounded expansion
    v("stringref", "DCC value 256([\"abcd\", 25(0)]): string references refused", CWT, "cwt_malformed",
      lambda c: c.file(payload=claims_raw(dcc=dcc_raw(top=((E("x"), STRINGREF),))))),
    v("shared-cycle", "unprotected value 28([29(0) x 40]): an array holding itself 40 times", COSE, "cose_malformed",
      lambda c: c.file(unprotected=cmap((E(-70000), tag(28, array(*[tag(29, E(0))] * 40)))))),
    v("depth-20", "DCC value nested in 20 arrays", CWT, "cwt_malformed",
      lambda c: c.file(payload=claims_raw(dcc=dcc_raw(top=((E("x"), b"\x81" * 20 + E(0)),))))),
    # the QR text as read from a file (--qr-file): one final line ending dropped
    v("file-crlf", "qr.txt ends with CR LF (dropped: valid)", None, None,
      lambda c: c.text().encode() + b"\r\n"),
    v("file-no-line-ending", "qr.txt without a final line ending (valid)", None, None, lambda c: c.text().encode()),
    v("file-bom", "qr.txt starts with a UTF-8 byte-order mark (the encoding's, not the text's: valid)", None, None,
      lambda c: b"\xef\xbb\xbf" + c.text().encode() + b"\n"),
    v("file-two-line-endings", "qr.txt ends with two LF: the second is part of the text", "base45",
      "base45_invalid", lambda c: c.text().encode() + b"\n\n"),
    v("file-cr", "qr.txt ends with a lone CR (not a line ending here)", "base45", "base45_invalid",
      lambda c: c.text().encode() + b"\r"),
    v("space-trailing", "the text ends with a space (a base45 digit: 36)", "base45", "base45_invalid",
      lambda c: c.text().encode() + b" \n"),
    v("space-leading", "the text starts with a space", "prefix", "prefix_missing",
      lambda c: b" " + c.text().encode() + b"\n"),
]


# --------------------------------------------------------------------------


def _context() -> tuple[Ctx, bytes]:
    ca_key = new_private_key("ec-p256")
    csca = make_csca(ca_key, country="VN", name="strict vectors CSCA", now=NOW - dt.timedelta(days=400))
    key = new_private_key("ec-p256")
    cert = make_dsc(
        csca, ca_key, key.public_key(), name="strict vectors DSC", now=NOW - dt.timedelta(days=30), serial=0x5701
    )
    signer = SoftwareKey(private_key=key, certificate=cert, chain=(csca,))
    return Ctx(key=signer, kid=kid_for_certificate(cert.public_bytes(Encoding.DER))), cert.public_bytes(
        Encoding.PEM
    )


def expected(vec: Vector) -> dict[str, Any]:
    return {
        "description": vec.how,
        "at": AT,
        "trust": ["trust.pem"],
        "exit": 0 if vec.stage is None else 1,
        "valid": vec.stage is None,
        "stage_failed": vec.stage,
        "reasons": list(vec.reasons),
    }


README_HEAD = """\
# strict vectors (issue 8, points 4 and 5)

Made by `make_vectors.py` in this folder (`.venv/bin/python
tests/vectors/strict/make_vectors.py`); do not edit by hand. Each vector is
an HC1 text signed with a fresh ES256 DSC that carries exactly one defect
(or none: the controls), so a verifier that ignored the rule would call it
valid. The COSE_Sign1 is assembled byte by byte (`head`, `cmap`, `tag`,
`bignum` in the script): duplicate keys, trailing bytes, odd tag layouts and
bignums are what no CBOR encoder writes on purpose. The private keys are
generated by the run and dropped; a folder holds `qr.txt` (the file given
to `--qr-file`), `trust.pem` (the DSC certificate, public) and
`expected.json` (`valid`, `stage_failed`, the reason codes and the exit code
of `python -m verifier qr --trust trust.pem --json --at {at} --qr-file
qr.txt`). Clock, payload, names and serials are fixed; a new run changes only
keys, signatures and kids, and `tests/verifier/test_strict_vectors.py`
re-runs it and checks the new folders give the same results, with both of
the verifier's CBOR decoders (cbor2's own options, and the Python scan used
with cbor2 5).

Rules they pin down:

- Duplicate keys in any map (protected and unprotected header, CWT claims,
  hcert, DCC at any depth) are `duplicate_map_key`; keys compare as values
  (`1` written as `01` or `18 01`, `true` and `1`).
- Bytes after the COSE_Sign1 item, after the protected header's map inside
  its byte string, or after the claims map in the payload: `trailing_bytes`.
- `crit` (RFC 9052 section 3.1) may name only `alg` (1) and `kid` (4), the
  labels this verifier processes (`crit_unsupported` otherwise); it must be a
  non-empty array of labels in the protected header, each present there
  (`crit_malformed`).
- Tag layouts: tag 18, 61(18(...)) or none; anything else, 61 around the
  untagged array included, is `cose_wrong_tag`.
- Header labels and claim keys are int or text (`true` is not label 1).
- Integers must lie in [-2**64, 2**64 - 1] (CBOR's major types 0 and 1);
  bignums (tags 2, 3) beyond are `integer_out_of_range`, within it they are
  the integer.
- String references (tags 25, 256) are refused; shared values (tags 28, 29)
  may not expand beyond the data's size; at most 16 nested containers.
- The QR text is verified as read: spaces are base45 digits; a file loses
  one final LF or CR LF (and a UTF-8 byte-order mark), nothing else.

| vector | how it was made | expected |
|---|---|---|
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write (default: this one)")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # the vector folders of a previous run
        if old.is_dir() and (old / "expected.json").exists():
            shutil.rmtree(old)
    ctx, trust_pem = _context()
    rows = []
    for vec in VECTORS:
        folder = out / vec.name
        folder.mkdir()
        (folder / "qr.txt").write_bytes(vec.build(ctx))
        (folder / "trust.pem").write_bytes(trust_pem)
        (folder / "expected.json").write_text(
            json.dumps(expected(vec), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        rows.append(f"| `{vec.name}` | {vec.how} | {', '.join(vec.reasons) or 'valid'} |\n")
    (out / "README.md").write_text(README_HEAD.format(at=AT) + "".join(rows), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
