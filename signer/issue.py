"""Issue EU DCC "HC1:" certificates: record + signing key -> signed QR text.

    >>> import datetime as dt
    >>> from signer.issue import issue_hc1
    >>> # with key = keys.software.SoftwareKey(...) or a PKCS#11 key:
    >>> # issued = issue_hc1(record, key, now=dt.datetime.now(dt.UTC),
    >>> #                    issuer_name="Ministry of Health of Viet Nam")
    >>> # issued.hc1 -> "HC1:6BF...", issued.uvci, issued.kid, issued.iat, issued.exp

Structure (eHealth Network hcert 1.x, sections 2-3):

1. payload: :func:`signer.payload.build_dcc` (schema-validated, latest dose);
2. CWT claims: iss = issuing country, iat = ``now``, exp = iat +
   ``validity_days`` (365 = 12 months by default), never after the DSC's
   notAfter (clamped, reported in :attr:`Issued.exp_clamped`); claim -260
   -> 1 -> payload;
3. COSE_Sign1, tag 18, protected header {alg, kid}; kid = first 8 bytes of
   SHA-256 of the DSC's DER; the signature comes from ``key.sign``
   (any :class:`keys.base.SigningKey`: software file or PKCS#11 token);
4. zlib, base45 (RFC 9285), prefix ``HC1:`` (:func:`to_qr_text`: the same
   steps as :func:`verifier.codec.to_qr_text`, deflating with zlib-ng at
   level 1; a standard zlib stream that any inflater reads).

By default only records with a current verification stamp
(:func:`signer.records.is_verified`, set by the registry checks) are signed;
``allow_unverified=True`` is the caller's explicit, recorded override.

For many records, :class:`Hc1Issuer` prepares everything that does not
depend on the record once (kid, protected header, DSC validity, vaccine
table, compiled schema); :func:`issue_hc1` is the one-shot form.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives.serialization import Encoding
from zlib_ng import zlib_ng

from keys.base import SigningKey
from signer.payload import VaccineTable, build_dcc, dcc_validator, load_vaccines
from signer.records import Record, is_verified
from signer.uvci import new_uvci
from verifier.codec import (
    HC1_PREFIX,
    HCERT_EU_DCC_V1,
    CoseAlgorithm,
    CwtClaim,
    b45encode,
    cbor_bstr,
    encode_protected,
)
from verifier.crypto import kid_for_certificate
from verifier.errors import ConfigError, InputError, TrustError
from verifier.trust import EKU_TRUST_LIST_SIGNER, parse_certificate

#: hcert 1.x section 3.3.2: the signature algorithms a DCC may use.
HCERT_ALGORITHMS = (CoseAlgorithm.ES256, CoseAlgorithm.PS256)
#: Default QR validity: 12 months.
DEFAULT_VALIDITY_DAYS = 365
#: Dose dates are local dates in Viet Nam (UTC+7, no daylight saving time).
VN_TZ = dt.timezone(dt.timedelta(hours=7))


@dataclass(frozen=True)
class Issued:
    """One signed certificate."""

    record_id: str
    hc1: str  # "HC1:..." QR text
    uvci: str
    kid: bytes
    iat: int  # seconds since the epoch
    exp: int
    exp_clamped: bool  # exp was cut to the DSC's notAfter
    dcc: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def kid_b64(self) -> str:
        """kid as standard base64, as trust lists and EU gateways print it."""
        return base64.b64encode(self.kid).decode("ascii")


# --------------------------------------------------------------------------
# CBOR assembly for the hot path. Byte-identical to verifier.codec's
# encode_cwt / sig_structure / encode_sign1 (tests/signer/test_issue.py
# compares them), at a third of the cost: the fixed parts are prepared once.



#: Array(4) + text(10) "Signature1" (RFC 9052 section 4.4).
_SIGNATURE1 = b"\x84\x6aSignature1"
#: Tag 18 + array(4) (RFC 9052 section 4.2).
_SIGN1_HEAD = b"\xd2\x84"
_EMPTY_BSTR = b"\x40"
_EMPTY_MAP = b"\xa0"
_ISS, _EXP, _IAT, _HCERT = (int(c) for c in (CwtClaim.ISS, CwtClaim.EXP, CwtClaim.IAT, CwtClaim.HCERT))


_local = threading.local()


def _cbor_dumps(obj: Any) -> bytes:
    """``cbor2.dumps(obj)``, with one encoder per thread reused across calls.

    ``cbor2.dumps`` builds a new encoder and buffer each time, which costs
    more than encoding a DCC; the reused encoder gives the same bytes.
    """
    buffer: io.BytesIO
    try:
        buffer, encoder = _local.cbor
    except AttributeError:
        buffer = io.BytesIO()
        encoder = cbor2.CBOREncoder(buffer)
        _local.cbor = buffer, encoder
    buffer.seek(0)
    buffer.truncate()
    try:
        encoder.encode(obj)
    except BaseException:
        del _local.cbor  # never reuse an encoder left in an unknown state
        raise
    return buffer.getvalue()


def cwt_payload(*, iss: str, issued_at: int, expires_at: int, dcc: Mapping[str, Any]) -> bytes:
    """CWT claims; equals ``codec.encode_cwt`` when ``dcc`` is in canonical key order
    (as :func:`signer.payload.build_dcc` builds it): the claim keys are inserted
    in canonical order here, so no sorting pass is needed."""
    return _cbor_dumps(
        {_ISS: iss, _EXP: int(expires_at), _IAT: int(issued_at), _HCERT: {HCERT_EU_DCC_V1: dcc}}
    )


#: Deflate level for :func:`to_qr_text` (zlib-ng). Level 1 is zlib-ng's
#: "quick" strategy (LZ77 matches, fixed Huffman codes): in the signing loop
#: it costs about 10-15 us less than stdlib zlib at any level (the Huffman tree
#: building dominates there), and zlib-ng's levels 2-9 cost as much as stdlib's.
#: On a few-hundred-byte COSE the output is a few bytes larger than level 9
#: (docs/benchmarks.md, HC1 section).
ZLIB_NG_LEVEL = 1


def to_qr_text(cose: bytes) -> str:
    """COSE_Sign1 bytes -> zlib (zlib-ng, :data:`ZLIB_NG_LEVEL`) -> base45 -> ``HC1:`` text.

    hcert 1.x section 3.2 (zlib, then base45 RFC 9285, prefix ``HC1:``). The
    zlib stream is standard (RFC 1950/1951): :func:`verifier.codec.from_qr_text`
    (stdlib zlib) and any other inflater read it.
    """
    return HC1_PREFIX + b45encode(zlib_ng.compress(cose, ZLIB_NG_LEVEL))


def _epoch(now: dt.datetime) -> int:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ConfigError("now must be a timezone-aware datetime")
    return int(now.timestamp())


#: EKUs of the national operator's other keys (trust-list signer, TSA): never a DSC.
_NOT_A_DSC_EKUS = frozenset({EKU_TRUST_LIST_SIGNER, "1.3.6.1.5.5.7.3.8"})


def check_document_signer(cert_der: bytes) -> None:
    """Raise :class:`ConfigError` unless the certificate may sign vaccination DCCs.

    hcert 1.x section 5.1.1: a DSC whose EKU names DCC types may sign only
    those (verifiers reject the rest as a wrong certificate type), so a
    test-only DSC would sign a whole batch of certificates no one accepts.
    A CA certificate, one without the digitalSignature key usage, or the
    trust-list signer / TSA certificate is no DSC at all.
    """
    try:
        info = parse_certificate(cert_der)
    except TrustError as err:
        raise ConfigError(f"the signing certificate is not usable: {err}") from None
    if info.is_ca or info.digital_signature is False or (info.ekus or frozenset()) & _NOT_A_DSC_EKUS:
        raise ConfigError("the signing certificate is not a document signer certificate (DSC)")
    if info.dcc_types is not None and "v" not in info.dcc_types:
        allowed = "/".join(sorted(info.dcc_types))
        raise ConfigError(
            f"the DSC may sign only {allowed} certificates (extended key usage), not vaccination"
        )


class Hc1Issuer:
    """Signs records with one key; reuse it for a whole batch.

    ``validity_days`` sets exp = iat + validity_days days (at least 1).
    Raises :class:`ConfigError` for an unusable configuration.
    """

    def __init__(
        self,
        key: SigningKey,
        *,
        issuer_name: str,
        country: str = "VN",
        validity_days: int = DEFAULT_VALIDITY_DAYS,
        vaccines: VaccineTable | None = None,
    ) -> None:
        if validity_days < 1:
            raise ConfigError("validity must be at least one day")
        if not issuer_name or len(issuer_name) > 80:
            raise ConfigError("issuer name must have 1 to 80 characters")
        if key.alg not in HCERT_ALGORITHMS:
            raise ConfigError(
                f"the key's algorithm {key.alg.name} is not allowed for DCCs (ES256 or PS256 only)"
            )
        self.key = key
        self.issuer_name = issuer_name
        self.country = country
        self.validity_seconds = validity_days * 86400
        self.vaccines = vaccines or load_vaccines()
        cert = key.certificate
        check_document_signer(cert.public_bytes(Encoding.DER))
        self.kid = kid_for_certificate(cert.public_bytes(Encoding.DER))
        self.not_before = int(cert.not_valid_before_utc.timestamp())
        self.not_after = int(cert.not_valid_after_utc.timestamp())
        self.protected = encode_protected(int(key.alg), self.kid)
        protected_bstr = cbor_bstr(self.protected)
        self._to_be_signed_head = _SIGNATURE1 + protected_bstr + _EMPTY_BSTR
        self._sign1_head = _SIGN1_HEAD + protected_bstr + _EMPTY_MAP
        dcc_validator()  # compile the schema now, not on the first record
        # issue(): the last ``now`` seen, with its epoch seconds and local date.
        self._clock: tuple[dt.datetime | None, int, dt.date] = (None, 0, dt.date.min)

    def check_time(self, now: dt.datetime) -> None:
        """Raise :class:`ConfigError` unless the DSC is valid at ``now``."""
        iat = _epoch(now)
        if iat < self.not_before or iat >= self.not_after:
            raise ConfigError("the document signer certificate is not valid at the signing time")

    def issue(
        self,
        record: Record,
        *,
        now: dt.datetime,
        uvci: str | None = None,
        allow_unverified: bool = False,
    ) -> Issued:
        """Sign one record. Raises :class:`InputError` for a bad or unverified record,
        :class:`ConfigError` when the DSC is not valid at ``now``, and whatever the
        key backend raises (:class:`verifier.errors.KeyBackendError`)."""
        last_now, iat, today = self._clock  # one attribute: consistent across threads
        if now is not last_now:  # a batch usually signs with one clock reading
            iat = _epoch(now)
            today = now.astimezone(VN_TZ).date()
            self._clock = (now, iat, today)
        if iat < self.not_before or iat >= self.not_after:
            raise ConfigError("the document signer certificate is not valid at the signing time")
        if not allow_unverified and not is_verified(record):
            raise InputError("record has no current verification stamp (run the checks first)")
        uvci = uvci or new_uvci(self.country)
        dcc = build_dcc(
            record,
            uvci=uvci,
            issuer=self.issuer_name,
            vaccines=self.vaccines,
            country=self.country,
            today=today,
        )
        exp = iat + self.validity_seconds
        clamped = exp > self.not_after
        if clamped:
            exp = self.not_after
        payload = cbor_bstr(cwt_payload(iss=self.country, issued_at=iat, expires_at=exp, dcc=dcc))
        signature = self.key.sign(self._to_be_signed_head + payload)
        cose = self._sign1_head + payload + cbor_bstr(signature)
        return Issued(
            record_id=record.record_id,
            hc1=to_qr_text(cose),
            uvci=uvci,
            kid=self.kid,
            iat=iat,
            exp=exp,
            exp_clamped=clamped,
            dcc=dcc,
        )


def issue_hc1(
    record: Record,
    key: SigningKey,
    *,
    now: dt.datetime,
    issuer_name: str,
    validity_days: int = DEFAULT_VALIDITY_DAYS,
    country: str = "VN",
    uvci: str | None = None,
    allow_unverified: bool = False,
    vaccines: VaccineTable | None = None,
) -> Issued:
    """Sign one record (see :class:`Hc1Issuer` for batches and the errors raised).

    Successive calls with the same key object and settings reuse the prepared
    :class:`Hc1Issuer` (identity comparison; nothing is cached across keys).
    """
    global _last
    settings = (issuer_name, country, validity_days)
    cached = _last
    if cached is not None and cached[0] is key and cached[1] is vaccines and cached[2] == settings:
        issuer = cached[3]
    else:
        issuer = Hc1Issuer(
            key,
            issuer_name=issuer_name,
            country=country,
            validity_days=validity_days,
            vaccines=vaccines,
        )
        _last = (key, vaccines, settings, issuer)
    return issuer.issue(record, now=now, uvci=uvci, allow_unverified=allow_unverified)


_last: tuple[SigningKey, VaccineTable | None, tuple[str, str, int], Hc1Issuer] | None = None
