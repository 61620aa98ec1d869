"""Build HC1 texts and trust material for the verifier tests (keys made here, never stored).

Uses verifier.codec with keys.software.SoftwareKey, the same path the signer
takes, with knobs to build the malformed variants the verifier must reject.
"""

from __future__ import annotations

import copy
import datetime as dt
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from keys.base import kid_of
from keys.software import SoftwareKey
from verifier import codec

DCC: dict[str, Any] = {
    "ver": "1.3.0",
    "nam": {
        "fn": "Nguyễn",
        "fnt": "NGUYEN",
        "gn": "Thị Thanh Hương",
        "gnt": "THI<THANH<HUONG",
    },
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
            "ci": "URN:UVCI:01:VN:7Q2M9K4D1HX3#K",
        }
    ],
}

TEST_DCC: dict[str, Any] = {
    "ver": "1.3.0",
    "nam": {"fn": "Trần", "fnt": "TRAN", "gn": "Văn An", "gnt": "VAN<AN"},
    "dob": "1985",
    "t": [
        {
            "tg": "840539006",
            "tt": "LP6464-4",
            "nm": "Roche LightCycler qPCR",
            "sc": "2026-05-30T08:00:00Z",
            "tr": "260415000",
            "tc": "Trung tâm Y tế Quận 1",
            "co": "VN",
            "is": "Ministry of Health of Viet Nam",
            "ci": "URN:UVCI:01:VN:T3ST0001ABCD#Q",
        }
    ],
}


def dcc(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(DCC)
    out.update(changes)
    return out


def make_cose(
    key: SoftwareKey,
    *,
    now: dt.datetime,
    payload: Mapping[str, Any] | None = None,
    iat: float | None = None,
    exp: float | None = None,
    kid_protected: bytes | bool | None = True,
    kid_unprotected: bytes | None = None,
    alg: int | None = None,
    claims: Mapping[int, Any] | None = None,
    tag: int | None = codec.COSE_SIGN1_TAG,
) -> bytes:
    """A signed COSE_Sign1 holding a CWT with the DCC (valid unless told otherwise)."""
    iat_v = now.timestamp() - 3600 if iat is None else iat
    exp_v = now.timestamp() + 365 * 86400 if exp is None else exp
    if claims is None:
        claims = {1: "VN", 6: iat_v, 4: exp_v, -260: {1: dict(payload or DCC)}}
        claims = {
            k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in claims.items()
        }
    body = cbor2.dumps(dict(claims))
    header: dict[int, Any] = {1: int(key.alg) if alg is None else alg}
    if kid_protected is True:
        header[4] = kid_of(key)
    elif isinstance(kid_protected, bytes):
        header[4] = kid_protected
    protected = cbor2.dumps(header)
    signature = key.sign(codec.sig_structure(protected, body))
    unprotected = {} if kid_unprotected is None else {4: kid_unprotected}
    array = [protected, unprotected, body, signature]
    return cbor2.dumps(array if tag is None else cbor2.CBORTag(tag, array))


def hc1(cose: bytes) -> str:
    return codec.to_qr_text(cose)


def make_hc1(key: SoftwareKey, *, now: dt.datetime, **kw: Any) -> str:
    return hc1(make_cose(key, now=now, **kw))


def raw_hc1(payload: bytes) -> str:
    """Wrap arbitrary bytes as if they were a COSE structure."""
    return "HC1:" + codec.b45encode(zlib.compress(payload))


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def leaf_with_ekus(
    csca: x509.Certificate,
    csca_key: Any,
    key: Any,
    *,
    now: dt.datetime,
    ekus: Sequence[str] | None,
) -> x509.Certificate:
    """A DSC with exactly these EKU OIDs (None: no EKU extension at all)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "VN"),
                    x509.NameAttribute(x509.NameOID.COMMON_NAME, "EKU test DSC"),
                ]
            )
        )
        .issuer_name(csca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
    )
    if ekus is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(o) for o in ekus]), critical=False
        )
    return builder.sign(csca_key, hashes.SHA256())
