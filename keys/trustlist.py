"""Build the signed trust list (producer side of docs/trust-list.md).

    >>> import datetime as dt
    >>> from keys.trustlist import build_trust_list
    >>> # data = build_trust_list(signer=tl_key, cscas=[csca], dscs=[dsc], revoked_dscs=[],
    >>> #                         revoked_uvcis=[], crls=[], seq=1, now=now, country="VN")
    >>> # Path("trustlist.cbor").write_bytes(data)

Pure apart from ``signer.sign``: the clock and all content are passed in.
The verifier side is :mod:`verifier.trust`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from keys.base import SigningKey
from verifier import codec
from verifier.crypto import kid_for_certificate
from verifier.errors import ConfigError
from verifier.trust import COSE_CONTENT_TYPE, TRUST_LIST_VERSION, uvci_hash

#: Unprotected header of the envelope: empty (docs/trust-list.md "Envelope").
_UNPROTECTED: dict[int, Any] = {}


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _epoch(when: dt.datetime) -> int:
    if when.tzinfo is None:
        raise ConfigError("trust-list times must be timezone-aware")
    return int(when.timestamp())


def _country(cert: x509.Certificate, default: str) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    return str(attrs[0].value) if attrs else default


def _serial_bytes(serial: int) -> bytes:
    return serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")


def build_trust_list(
    *,
    signer: SigningKey,
    cscas: Sequence[x509.Certificate],
    dscs: Sequence[x509.Certificate],
    revoked_dscs: Sequence[tuple[x509.Certificate, dt.datetime]],
    revoked_uvcis: Sequence[str],
    crls: Sequence[x509.CertificateRevocationList],
    seq: int,
    now: dt.datetime,
    country: str,
    next_update: dt.datetime | None = None,
) -> bytes:
    """A tagged COSE_Sign1 trust list (format version 1), signed by ``signer``.

    ``signer`` holds the trust-list-signer certificate (EKU
    ``keys.certs.EKU_TRUST_LIST_SIGNER``) issued by one of ``cscas``;
    ``seq`` must grow with every list (verifiers refuse rollback).
    UVCIs are stored as ``SHA-256(UVCI)[:16]``, never in clear.
    """
    if seq < 0:
        raise ConfigError("trust-list sequence number must be >= 0")
    if len(country) != 2 or not country.isalpha() or not country.isupper():
        raise ConfigError(f"country must be ISO 3166-1 alpha-2 (e.g. VN), not {country!r}")
    payload: dict[str, Any] = {
        "v": TRUST_LIST_VERSION,
        "seq": seq,
        "iat": _epoch(now),
        "country": country,
        "cscas": [_der(c) for c in cscas],
        "dscs": [
            {"kid": kid_for_certificate(_der(c)), "country": _country(c, country), "cert": _der(c)}
            for c in dscs
        ],
        "revokedDscs": [
            {
                "kid": kid_for_certificate(_der(c)),
                "serial": _serial_bytes(c.serial_number),
                "revokedAt": _epoch(at),
            }
            for c, at in revoked_dscs
        ],
        "revokedUvcis": sorted({uvci_hash(u) for u in revoked_uvcis}),
        "crls": [crl.public_bytes(Encoding.DER) for crl in crls],
    }
    if next_update is not None:
        payload["nextUpdate"] = _epoch(next_update)
    return sign_envelope(signer, cbor2.dumps(payload, canonical=True))


def sign_envelope(signer: SigningKey, body: bytes, *, content_type: str | None = None) -> bytes:
    """The envelope of docs/trust-list.md around ``body``: a tagged COSE_Sign1 whose
    protected header holds alg, kid and x5chain (the signer's certificate), and the
    content type (label 3) when given: a signed rule set names its own
    (``verifier.trust.RULE_SET_CONTENT_TYPE``), so neither is taken for the other."""
    signer_der = _der(signer.certificate)
    header: dict[int, Any] = {
        int(codec.CoseHeader.ALG): int(signer.alg),
        int(codec.CoseHeader.KID): kid_for_certificate(signer_der),
        int(codec.CoseHeader.X5CHAIN): [signer_der],
    }
    if content_type is not None:
        header[COSE_CONTENT_TYPE] = content_type
    protected = cbor2.dumps(header, canonical=True)
    signature = signer.sign(codec.sig_structure(protected, body))
    return codec.encode_sign1(protected, body, signature, _UNPROTECTED)
