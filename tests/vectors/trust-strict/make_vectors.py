"""Build the trust-strict vectors (issue 8, point 4): PSS salt lengths, key types, CA-only trust.

    $ .venv/bin/python tests/vectors/trust-strict/make_vectors.py            # rewrite this folder
    $ .venv/bin/python tests/vectors/trust-strict/make_vectors.py --out DIR  # elsewhere (the test does)

Every private key is generated here, used, and dropped: only certificates,
trust lists and signed QR texts are written, never a key. Everything else is
fixed (clock, payload, names, serials, validity), so a new run gives the same
folders, files and expected results; only keys, and so signatures and kids,
differ. Each folder holds ``qr.txt`` (the HC1 text), its trust files and
``expected.json``; README.md is written from the same table.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
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

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

from keys.software import SoftwareKey  # noqa: E402
from keys.trustlist import build_trust_list  # noqa: E402
from verifier import codec  # noqa: E402
from verifier.crypto import ecdsa_der_to_raw  # noqa: E402

HERE = Path(__file__).resolve().parent
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
AT = "2026-06-01T12:00:00Z"
NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2028, 1, 1, tzinfo=dt.UTC)
EKU_TRUST_LIST_SIGNER = "2.25.214375089251405394580617312245409632127"
ES256, ES384, EDDSA, PS256 = -7, -35, -8, -37

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
            "ci": "URN:UVCI:01:VN:TRUSTSTRICT1#M",
        }
    ],
}


# --------------------------------------------------------------------------
# Certificates and signatures (keys live only in memory)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "trust-strict vectors"),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, cn),
        ]
    )


def _ku(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def cert(
    cn: str,
    public_key: Any,
    *,
    serial: int,
    issuer: tuple[x509.Name, Any] | None = None,
    signing_key: Any = None,
    ca: bool = False,
    sign: bool = True,
    ekus: tuple[str, ...] = (),
) -> x509.Certificate:
    """A certificate with fixed names, serial and validity; self-signed unless ``issuer``."""
    issuer_name, issuer_key = issuer if issuer is not None else (_name(cn), signing_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(_ku(sign=sign, ca=ca), critical=True)
    )
    if ekus:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(o) for o in ekus]), critical=False
        )
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


def der(c: x509.Certificate) -> bytes:
    return c.public_bytes(Encoding.DER)


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def kid(cert_der: bytes) -> bytes:
    return hashlib.sha256(cert_der).digest()[:8]


Signer = Callable[[bytes], bytes]


def ecdsa(key: ec.EllipticCurvePrivateKey, hash_alg: hashes.HashAlgorithm) -> Signer:
    size = (key.curve.key_size + 7) // 8
    return lambda data: ecdsa_der_to_raw(key.sign(data, ec.ECDSA(hash_alg)), size)


def pss(
    key: rsa.RSAPrivateKey, salt: int | Any, mgf_hash: hashes.HashAlgorithm | None = None
) -> Signer:
    mgf = padding.MGF1(mgf_hash or hashes.SHA256())
    return lambda data: key.sign(data, padding.PSS(mgf=mgf, salt_length=salt), hashes.SHA256())


def qr(*, alg: int, kid_bytes: bytes, sign: Signer) -> str:
    """A DCC signed as COSE_Sign1 (alg and kid protected), as HC1 text."""
    protected = codec.encode_protected(alg, kid_bytes)
    payload = codec.encode_cwt(
        iss="VN",
        issued_at=int((NOW - dt.timedelta(days=1)).timestamp()),
        expires_at=int((NOW + dt.timedelta(days=365)).timestamp()),
        dcc=DCC,
    )
    signature = sign(codec.sig_structure(protected, payload))
    return codec.to_qr_text(codec.encode_sign1(protected, payload, signature))


# --------------------------------------------------------------------------
# The vectors


@dataclass
class Vector:
    name: str
    how: str
    files: dict[str, bytes]
    trust: list[str]
    qr: str
    valid: bool = False
    stage_failed: str | None = "signature"
    reasons: tuple[str, ...] = ()
    exit: int = 1

    def expected(self) -> dict[str, Any]:
        return {
            "description": self.how,
            "at": AT,
            "trust": self.trust,
            "exit": self.exit,
            "valid": self.valid,
            "stage_failed": self.stage_failed,
            "reasons": list(self.reasons),
        }


def _invalid(name: str, how: str, files: dict[str, bytes], text: str, *reasons: str) -> Vector:
    return Vector(name, how, files, sorted(files), text, reasons=reasons)


def _valid(name: str, how: str, files: dict[str, bytes], text: str) -> Vector:
    return Vector(name, how, files, sorted(files), text, True, None, (), 0)


def build() -> list[Vector]:
    out: list[Vector] = []
    serial = iter(range(0x7E5700, 0x7E5800))

    # A throwaway CSCA issues the plain DSCs (only their certificates are kept).
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = cert(
        "trust-strict CSCA",
        ca_key.public_key(),
        serial=next(serial),
        signing_key=ca_key,
        ca=True,
        sign=False,
    )
    ca = (ca_cert.subject, ca_key)

    def dsc(cn: str, public_key: Any) -> x509.Certificate:
        return cert(cn, public_key, serial=next(serial), issuer=ca)

    # PS256 salt lengths (RFC 8230 section 2: salt length = hash length = 32).
    rsa_key = rsa.generate_private_key(65537, 2048)
    rsa_dsc = dsc("RSA-2048 DSC", rsa_key.public_key())
    rsa_files = {"trust.pem": pem(rsa_dsc)}
    rsa_kid = kid(der(rsa_dsc))
    out.append(
        _valid(
            "pss-salt-32",
            "PS256, RSA-2048 DSC, PSS salt 32 bytes, MGF1-SHA-256 (control: valid)",
            rsa_files,
            qr(alg=PS256, kid_bytes=rsa_kid, sign=pss(rsa_key, 32)),
        )
    )
    for salt, label in (
        (0, "0"),
        (20, "20 (SHA-1's length)"),
        (31, "31"),
        (33, "33"),
        (padding.PSS.MAX_LENGTH, "the maximum, 222"),
    ):
        name = "pss-salt-max" if salt is padding.PSS.MAX_LENGTH else f"pss-salt-{salt}"
        text = qr(alg=PS256, kid_bytes=rsa_kid, sign=pss(rsa_key, salt))
        out.append(
            _invalid(
                name,
                f"PS256 signature with a PSS salt of {label} bytes: genuine RSA-PSS, but not PS256",
                rsa_files,
                text,
                "pss_salt_length",
            )
        )
    out.append(
        _invalid(
            "pss-mgf1-sha1",
            "PS256 with salt 32 but MGF1-SHA-1: not PS256, and not a salt problem",
            rsa_files,
            qr(alg=PS256, kid_bytes=rsa_kid, sign=pss(rsa_key, 32, hashes.SHA1())),
            "bad_signature",
        )
    )

    # Key types hcert 1.x 3.3.2 does not allow for a DSC (only P-256 and RSA >= 2048).
    p256 = ec.generate_private_key(ec.SECP256R1())
    p256_dsc = dsc("P-256 DSC", p256.public_key())
    out.append(
        _valid(
            "key-p256",
            "ES256 with a P-256 DSC (control: valid)",
            {"trust.pem": pem(p256_dsc)},
            qr(alg=ES256, kid_bytes=kid(der(p256_dsc)), sign=ecdsa(p256, hashes.SHA256())),
        )
    )

    ed = ed25519.Ed25519PrivateKey.generate()
    ed_dsc = dsc("Ed25519 DSC", ed.public_key())
    ed_files = {"trust.pem": pem(ed_dsc)}
    out.append(
        _invalid(
            "key-ed25519",
            "Ed25519 DSC; the QR says ES256 and holds the Ed25519 signature of the Sig_structure",
            ed_files,
            qr(alg=ES256, kid_bytes=kid(der(ed_dsc)), sign=ed.sign),
            "dsc_key_unsupported",
        )
    )
    out.append(
        _invalid(
            "key-ed25519-eddsa",
            "Ed25519 DSC; the QR says EdDSA (-8), an algorithm hcert does not allow",
            ed_files,
            qr(alg=EDDSA, kid_bytes=kid(der(ed_dsc)), sign=ed.sign),
            "unsupported_alg",
        )
    )

    small = rsa.generate_private_key(65537, 1024)
    small_dsc = dsc("RSA-1024 DSC", small.public_key())
    out.append(
        _invalid(
            "key-rsa-1024",
            "RSA-1024 DSC, a correct PS256 signature (salt 32): the key is too short",
            {"trust.pem": pem(small_dsc)},
            qr(alg=PS256, kid_bytes=kid(der(small_dsc)), sign=pss(small, 32)),
            "dsc_key_unsupported",
        )
    )

    for curve, label, hash_alg, alg in (
        (ec.SECP384R1(), "p384", hashes.SHA384(), ES384),
        (ec.SECP521R1(), "p521", hashes.SHA512(), -36),
    ):
        key = ec.generate_private_key(curve)
        c = dsc(f"{label.upper()} DSC", key.public_key())
        files = {"trust.pem": pem(c)}
        how = f"{label.upper()} DSC; the QR says ES256 and holds ECDSA-SHA-256 by that key"
        text = qr(alg=ES256, kid_bytes=kid(der(c)), sign=ecdsa(key, hashes.SHA256()))
        if label == "p384":  # as real issuers signed (official vectors ES/401-403): valid
            out.append(_valid(f"key-{label}", how + " (as issued in Spain: valid)", files, text))
        else:
            out.append(_invalid(f"key-{label}", how, files, text, "dsc_key_unsupported"))
        out.append(
            _invalid(
                f"key-{label}-own-alg",
                f"{label.upper()} DSC with its own algorithm ({alg}), which hcert does not allow",
                files,
                qr(alg=alg, kid_bytes=kid(der(c)), sign=ecdsa(key, hash_alg)),
                "unsupported_alg",
            )
        )

    # CA certificates as the only trust material (plain-certificate mode).
    dsc_key = ec.generate_private_key(ec.SECP256R1())
    issued = dsc("DSC not given", dsc_key.public_key())
    out.append(
        _invalid(
            "ca-only-other-signer",
            "the trust file holds only the CSCA; the QR is "
            "signed by a DSC it issued, which is not given (the QR carries only its "
            "kid)",
            {"trust.pem": pem(ca_cert)},
            qr(alg=ES256, kid_bytes=kid(der(issued)), sign=ecdsa(dsc_key, hashes.SHA256())),
            "unknown_kid",
        )
    )
    out.append(
        _valid(
            "ca-signs-directly",
            "the trust file holds only a CSCA (CA:TRUE, keyUsage "
            "keyCertSign and cRLSign only) and the CSCA key signed the QR: hcert Appendix "
            "A lets a CSCA be its own DSC",
            {"trust.pem": pem(ca_cert)},
            qr(alg=ES256, kid_bytes=kid(der(ca_cert)), sign=ecdsa(ca_key, hashes.SHA256())),
        )
    )
    self_key = ec.generate_private_key(ec.SECP256R1())
    self_dsc = cert(
        "self-signed CA:TRUE DSC",
        self_key.public_key(),
        serial=next(serial),
        signing_key=self_key,
        ca=True,
        sign=True,
    )
    out.append(
        _valid(
            "ca-self-signed-dsc",
            "a self-signed CA:TRUE certificate used as DSC, as some official EU test DSCs are",
            {"trust.pem": pem(self_dsc)},
            qr(alg=ES256, kid_bytes=kid(der(self_dsc)), sign=ecdsa(self_key, hashes.SHA256())),
        )
    )

    # Unreadable certificates: they stay in the store under their kid.
    other = ec.generate_private_key(ec.SECP256R1())
    junk = b"\x30\x03\x02\x01\x01"
    out.append(
        _invalid(
            "cert-malformed-der",
            "trust.der is DER but no certificate; the QR names its kid (SHA-256 of those bytes)",
            {"trust.der": junk},
            qr(alg=ES256, kid_bytes=kid(junk), sign=ecdsa(other, hashes.SHA256())),
            "dsc_malformed",
        )
    )
    out.append(
        _invalid(
            "cert-malformed-der-other-kid",
            "the same unreadable trust.der; the QR names another kid",
            {"trust.der": junk},
            qr(alg=ES256, kid_bytes=kid(der(p256_dsc)), sign=ecdsa(p256, hashes.SHA256())),
            "unknown_kid",
        )
    )
    cut = der(p256_dsc)[:200]
    cut_pem = (
        b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(cut) + b"-----END CERTIFICATE-----\n"
    )
    out.append(
        _invalid(
            "cert-truncated-pem",
            "a PEM CERTIFICATE block holding the first 200 "
            "bytes of a DSC; the QR names the kid of those bytes",
            {"trust.pem": cut_pem},
            qr(alg=ES256, kid_bytes=kid(cut), sign=ecdsa(p256, hashes.SHA256())),
            "dsc_malformed",
        )
    )

    # Trust-list mode: a listed Ed25519 DSC, and the CSCA only as anchor.
    tl_key = ec.generate_private_key(ec.SECP256R1())
    tl_cert = cert(
        "trust-strict list signer",
        tl_key.public_key(),
        serial=next(serial),
        issuer=ca,
        ekus=(EKU_TRUST_LIST_SIGNER,),
    )
    trust_list = build_trust_list(
        signer=SoftwareKey(private_key=tl_key, certificate=tl_cert, chain=(ca_cert,)),
        cscas=[ca_cert],
        dscs=[ed_dsc, p256_dsc],
        revoked_dscs=[],
        revoked_uvcis=[],
        crls=[],
        seq=1,
        now=NOW - dt.timedelta(days=1),
        country="VN",
        next_update=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    )
    list_files = {"trustlist.cbor": trust_list, "csca.pem": pem(ca_cert)}
    out.append(
        _invalid(
            "list-ed25519-dsc",
            "a signed trust list (anchor: csca.pem) lists an Ed25519 DSC; the QR names it",
            list_files,
            qr(alg=ES256, kid_bytes=kid(der(ed_dsc)), sign=ed.sign),
            "dsc_key_unsupported",
        )
    )
    out.append(
        _valid(
            "list-p256-dsc",
            "the same trust list; a QR of its P-256 DSC (control: valid)",
            list_files,
            qr(alg=ES256, kid_bytes=kid(der(p256_dsc)), sign=ecdsa(p256, hashes.SHA256())),
        )
    )
    out.append(
        _invalid(
            "list-csca-signs-directly",
            "the same trust list; the CSCA key signed the "
            "QR: with a trust list the CSCA is its anchor only",
            list_files,
            qr(alg=ES256, kid_bytes=kid(der(ca_cert)), sign=ecdsa(ca_key, hashes.SHA256())),
            "unknown_kid",
        )
    )

    # File-level problems stay usage errors: exit 2, one line on stderr, no JSON.
    text = qr(alg=ES256, kid_bytes=kid(der(p256_dsc)), sign=ecdsa(p256, hashes.SHA256()))
    out.append(
        Vector(
            "trust-file-missing",
            "--trust names a file that does not exist",
            {},
            ["absent.pem"],
            text,
            False,
            None,
            (),
            2,
        )
    )
    out.append(
        Vector(
            "trust-file-garbage",
            "--trust names a text file that is no certificate nor trust list",
            {"trust.txt": b"not a certificate\n"},
            ["trust.txt"],
            text,
            False,
            None,
            (),
            2,
        )
    )
    return out


def write(vectors: list[Vector], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {v.name for v in vectors}
    for stale in out_dir.glob("*/expected.json"):
        if stale.parent.name not in names:
            shutil.rmtree(stale.parent)
    for v in vectors:
        folder = out_dir / v.name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        for name, data in v.files.items():
            (folder / name).write_bytes(data)
        (folder / "qr.txt").write_text(v.qr + "\n", encoding="ascii")
        (folder / "expected.json").write_text(
            json.dumps(v.expected(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    (out_dir / "README.md").write_text(readme(vectors), encoding="utf-8")


def readme(vectors: list[Vector]) -> str:
    rows = "\n".join(
        f"| `{v.name}` | {v.how} | {'exit 2, no JSON' if v.exit == 2 else ('valid' if v.valid else ', '.join(v.reasons))} |"
        for v in vectors
    )
    return f"""# trust-strict vectors (issue 8, point 4)

Made by `make_vectors.py` in this folder (`.venv/bin/python
tests/vectors/trust-strict/make_vectors.py`); do not edit by hand. Every
private key is generated by that run and dropped: the folders hold
certificates, trust lists and signed QR texts only, never a key. Names,
serials, validity (2026-01-01 .. 2028-01-01), the payload and the clock
(`{AT}`) are fixed; a new run changes only keys, signatures and kids, and
`tests/verifier/test_trust_strict.py` re-runs it and checks the new folders
give the same results as these.

Each folder: `qr.txt` (the HC1 text), the trust files listed in
`expected.json` (`trust`, in `--trust` order), and the expected `valid`,
`stage_failed`, reason codes (`reasons`) and exit code of `python -m verifier
qr --trust F... --json --at {AT} 'HC1:...'`. The test walks every folder
through `verify_qr_text` and through the CLI.

Rules they pin down (hcert 1.x section 3.3.2 and Appendix A, RFC 8230
section 2):

- PS256 is RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt; any other
  salt is `pss_salt_length` (signature stage).
- A DSC signs with ES256 (P-256, or P-384 as Spain's Illes Balears issued:
  the official vectors ES/401-403 expect those to verify) or PS256 (RSA, 2048
  to 16384 bits). Other keys (Ed25519, P-521, RSA-1024) load, and a QR naming
  them is `dsc_key_unsupported`; a QR using their own algorithm (ES384 by a
  P-384 key included) is `unsupported_alg`.
- A certificate that cannot be read at all still has a kid (SHA-256 of its
  bytes): `dsc_malformed`.
- Without a trust list, a CA certificate given with `--trust` is a plain
  signing certificate (a CSCA may be its own DSC); with a trust list it is
  the list's anchor only.
- A missing file, or one that is neither a certificate nor a trust list, is
  a usage error: exit 2, one line on stderr, nothing on stdout.

| vector | how it was made | expected |
|---|---|---|
{rows}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write (default: here)")
    args = parser.parse_args(argv)
    write(build(), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
