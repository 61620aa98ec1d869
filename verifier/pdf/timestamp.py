"""The signature timestamp of a PAdES signature (B-T/B-LT), read from the CMS.

    >>> from verifier.pdf.timestamp import read_signature_timestamp
    >>> # ts = read_signature_timestamp(embedded_sig.signer_info)
    >>> # ts is None (B-B) or ts.gen_time, ts.tsa_cert, ts.imprint_matches

ETSI EN 319 142-1 section 5.3: the SignerInfo carries, as the unsigned
attribute id-aa-signatureTimeStampToken (RFC 3161 appendix A), a
TimeStampToken whose TSTInfo message imprint is the hash of the
SignerInfo's signature value. This module only parses and compares; the
token's signature, the TSA's chain to a CSCA and its revocation are
validated by pyHanko (:mod:`verifier.pdf.signature`), the EKU rule of RFC
3161 section 2.3 (id-kp-timeStamping, the only EKU, critical) here.
Malformed input raises :class:`TimestampFormatError`; callers turn it into a
failed check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509

_HASHES = {"sha256", "sha384", "sha512"}


class TimestampFormatError(ValueError):
    """The timestamp attribute or token cannot be read."""


@dataclass(frozen=True)
class SignatureTimestamp:
    gen_time: dt.datetime
    hash_algorithm: str
    imprint_matches: bool
    tsa_cert: asn1_x509.Certificate | None
    serial: int
    policy: str


def read_signature_timestamp(signer_info: Any) -> SignatureTimestamp | None:
    """The (first) signature timestamp of a CMS SignerInfo; None when it has none."""
    try:
        unsigned = signer_info["unsigned_attrs"]
        # (not .native: that converts the whole token, ~0.2 s)
        attrs = [] if isinstance(unsigned, core.Void) else list(unsigned)
    except (ValueError, TypeError, KeyError) as err:
        raise TimestampFormatError(f"unsigned attributes unreadable ({type(err).__name__})") from None
    tokens = [a for a in attrs if a["type"].native == "signature_time_stamp_token"]
    if not tokens:
        return None
    try:
        values = list(tokens[0]["values"])
        if len(values) != 1:
            raise TimestampFormatError("the timestamp attribute must hold exactly one token")
        token: cms.ContentInfo = values[0]
        if token["content_type"].native != "signed_data":
            raise TimestampFormatError("the timestamp token is not a SignedData")
        signed_data = token["content"]
        encap = signed_data["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise TimestampFormatError("the timestamp token does not hold a TSTInfo")
        info = encap["content"].parsed
        if not isinstance(info, tsp.TSTInfo):
            raise TimestampFormatError("the timestamp token does not hold a TSTInfo")
        gen_time = info["gen_time"].native
        hash_alg = info["message_imprint"]["hash_algorithm"]["algorithm"].native
        hashed = info["message_imprint"]["hashed_message"].native
        signature = signer_info["signature"].native
        sid = signed_data["signer_infos"][0]["sid"]
        tsa_cert = _find_cert(signed_data, sid)
        serial = int(info["serial_number"].native)
        policy = str(info["policy"].native)
    except TimestampFormatError:
        raise
    except Exception as err:  # asn1crypto raises many types on hostile DER
        raise TimestampFormatError(f"the timestamp token is malformed ({type(err).__name__})") from None
    if not isinstance(gen_time, dt.datetime):
        raise TimestampFormatError("the timestamp has no genTime")
    if gen_time.tzinfo is None:
        gen_time = gen_time.replace(tzinfo=dt.UTC)
    matches = hash_alg in _HASHES and hashlib.new(hash_alg, signature).digest() == hashed
    return SignatureTimestamp(
        gen_time=gen_time, hash_algorithm=str(hash_alg), imprint_matches=matches,
        tsa_cert=tsa_cert, serial=serial, policy=policy,
    )  # fmt: skip


def _find_cert(signed_data: Any, sid: Any) -> asn1_x509.Certificate | None:
    certs = [c.chosen for c in (signed_data["certificates"] or ()) if c.name == "certificate"]
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            if cert.issuer == ias["issuer"] and cert.serial_number == ias["serial_number"].native:
                return cert
        elif sid.name == "subject_key_identifier" and cert.key_identifier == sid.chosen.native:
            return cert
    return None


def tsa_usage_problem(cert: asn1_x509.Certificate) -> str | None:
    """Why ``cert`` may not sign timestamps (RFC 3161 section 2.3), or None."""
    for ext in cert["tbs_certificate"]["extensions"] or ():
        if ext["extn_id"].native == "extended_key_usage":
            usages = set(ext["extn_value"].native or ())
            if usages != {"time_stamping"}:
                return "its extended key usage is not id-kp-timeStamping alone"
            if not ext["critical"].native:
                return "its id-kp-timeStamping extended key usage is not critical"
            return None
    return "it has no extended key usage id-kp-timeStamping"
