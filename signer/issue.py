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
4. zlib, base45 (RFC 9285), prefix ``HC1:`` (the steps of
   :func:`verifier.codec.to_qr_text`, batched; stored deflate blocks by
   default, :data:`DEFAULT_DEFLATE_LEVEL`).

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cbor2
from cryptography.hazmat.primitives.serialization import Encoding

from keys.base import SigningKey
from signer.payload import DccBuilder, VaccineTable, dcc_validator, load_vaccines, validate_dcc
from signer.records import Record, is_verified
from signer.uvci import check_country, new_uvcis
from verifier.codec import (
    HC1_PREFIX,
    HCERT_EU_DCC_V1,
    CoseAlgorithm,
    CwtClaim,
    b45encode_many,
    cbor_bstr,
    encode_protected,
    zlib_compress,
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


@dataclass(slots=True)
class Issued:
    """One signed certificate.

    Not a frozen dataclass: the signer makes one per certificate, and a frozen
    dataclass costs about 0.7 us more to build (docs/benchmarks.md); treat it
    as read-only all the same.
    """

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


def cwt_payloads(
    *, iss: str, issued_at: int, expires_at: int, dccs: Sequence[Mapping[str, Any]]
) -> list[bytes | None]:
    """``[cwt_payload(..., dcc=d) for d in dccs]`` for one batch, ``None`` for a
    payload CBOR cannot encode. The claims other than hcert are the same for
    the whole batch: their bytes are made once."""
    head = _claims_head(iss, int(issued_at), int(expires_at))
    out: list[bytes | None] = []
    for dcc in dccs:
        try:
            out.append(head + _cbor_dumps(dcc))
        except (cbor2.CBOREncodeError, ValueError, TypeError):
            out.append(None)
    return out


@lru_cache(maxsize=16)
def _claims_head(iss: str, issued_at: int, expires_at: int) -> bytes:
    """The CWT claims up to the DCC itself (which is the last item)."""
    head = cwt_payload(iss=iss, issued_at=issued_at, expires_at=expires_at, dcc=None)  # type: ignore[arg-type]
    if head[-1] != 0xF6:  # CBOR null, the placeholder of the DCC
        raise AssertionError("unexpected CWT claims encoding")
    return head[:-1]


#: Default deflate level of the QR's zlib stream: 0, stored blocks (RFC 1951
#: section 3.2.4; :func:`verifier.codec.zlib_compress`), a standard zlib
#: stream that every inflater reads. A COSE of a DCC (signature, random UVCI,
#: short distinct strings) hardly compresses: on 3,000 synthetic records level
#: 9 saves 7 of 565 QR characters (1.3 %) and keeps 1 QR in 9 one version
#: smaller, for about 16 us per certificate, as much as all the rest of the
#: encoding. Levels 1-9 are a choice (``deflate_level``, ``sign
#: --deflate-level``); docs/hc1.md, step 6.
DEFAULT_DEFLATE_LEVEL = 0


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

    ``validity_days`` sets exp = iat + validity_days days (at least 1);
    ``deflate_level`` the zlib level of the QR text (0 = stored blocks, the
    default: see :data:`DEFAULT_DEFLATE_LEVEL`). Raises :class:`ConfigError`
    for an unusable configuration.
    """

    def __init__(
        self,
        key: SigningKey,
        *,
        issuer_name: str,
        country: str = "VN",
        validity_days: int = DEFAULT_VALIDITY_DAYS,
        vaccines: VaccineTable | None = None,
        deflate_level: int = DEFAULT_DEFLATE_LEVEL,
    ) -> None:
        if validity_days < 1:
            raise ConfigError("validity must be at least one day")
        if deflate_level not in range(10):
            raise ConfigError("deflate level must be 0 (stored) to 9")
        self.vaccines = vaccines or load_vaccines()
        try:  # the issuer name and the country, checked once here, not per record
            self._builder = DccBuilder(issuer=issuer_name, vaccines=self.vaccines, country=country)
            check_country(country)
        except InputError as err:
            raise ConfigError(str(err)) from None
        if key.alg not in HCERT_ALGORITHMS:
            raise ConfigError(
                f"the key's algorithm {key.alg.name} is not allowed for DCCs (ES256 or PS256 only)"
            )
        self.key = key
        self.issuer_name = issuer_name
        self.country = country
        self.validity_seconds = validity_days * 86400
        self.deflate_level = deflate_level
        cert = key.certificate
        cert_der = cert.public_bytes(Encoding.DER)
        check_document_signer(cert_der)
        self.kid = kid_for_certificate(cert_der)
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
        self._clock_for(now)

    def _clock_for(self, now: dt.datetime) -> tuple[int, dt.date]:
        """(epoch seconds, local date) of ``now``; :class:`ConfigError` when the
        DSC is not valid then."""
        last_now, iat, today = self._clock  # one attribute: consistent across threads
        if now is not last_now:  # a batch usually signs with one clock reading
            iat = _epoch(now)
            today = now.astimezone(VN_TZ).date()
            self._clock = (now, iat, today)
        if iat < self.not_before or iat >= self.not_after:
            raise ConfigError("the document signer certificate is not valid at the signing time")
        return iat, today

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
        (result,) = self.issue_many(
            (record,), now=now, uvcis=None if uvci is None else (uvci,), allow_unverified=allow_unverified
        )
        if isinstance(result, InputError):
            raise result
        return result

    def issue_many(
        self,
        records: Sequence[Record],
        *,
        now: dt.datetime,
        uvcis: Sequence[str | None] | None = None,
        allow_unverified: bool = False,
    ) -> list[Issued | InputError]:
        """Sign a batch of records: one result per record, in order, either the
        :class:`Issued` certificate or the :class:`InputError` saying why that
        record was not signed (a bad record does not stop the others).

        ``uvcis`` (optional, one per record, ``None`` = fresh) gives the UVCIs.
        Raises :class:`ConfigError` when the DSC is not valid at ``now``, and
        whatever the key backend raises (the whole batch then fails).

        Each stage runs over the whole batch before the next starts (checks and
        payloads, CBOR, signatures, COSE + zlib, base45): the same bytes as
        signing one by one, but each stage's code and tables stay in the CPU
        caches (docs/benchmarks.md, HC1 section).
        """
        iat, today = self._clock_for(now)
        today_iso = today.isoformat()
        exp = iat + self.validity_seconds
        clamped = exp > self.not_after
        if clamped:
            exp = self.not_after
        if uvcis is not None and len(uvcis) != len(records):
            raise ConfigError("issue_many: one UVCI (or None) per record")
        results: list[Issued | InputError | None] = [None] * len(records)
        missing = len(records) if uvcis is None else sum(not u for u in uvcis)
        fresh = iter(new_uvcis(missing, self.country, made_at=iat))  # a ledger run gives them all
        validator, build = dcc_validator(), self._builder.build
        index: list[int] = []  # the records that passed the checks, by position
        dccs: list[dict[str, Any]] = []
        for i, record in enumerate(records):
            try:
                if not allow_unverified and not is_verified(record):
                    raise InputError("record has no current verification stamp (run the checks first)")
                dcc = build(record, (uvcis[i] if uvcis is not None else None) or next(fresh), today_iso)
                if not validator.is_valid(dcc):
                    validate_dcc(dcc)  # raises with the schema's reasons
            except InputError as err:
                results[i] = err
                continue
            index.append(i)
            dccs.append(dcc)
        payloads = cwt_payloads(iss=self.country, issued_at=iat, expires_at=exp, dccs=dccs)
        signed: list[tuple[int, dict[str, Any], bytes]] = []
        for i, dcc, payload in zip(index, dccs, payloads, strict=True):
            if payload is None:
                results[i] = InputError("payload cannot be encoded as CBOR")
            else:
                signed.append((i, dcc, cbor_bstr(payload)))
        sign, head = self.key.sign, self._to_be_signed_head
        signatures = [sign(head + payload) for _, _, payload in signed]
        sign1_head, compress, level = self._sign1_head, zlib_compress, self.deflate_level
        deflated = [
            compress(sign1_head + payload + cbor_bstr(signature), level)
            for (_, _, payload), signature in zip(signed, signatures, strict=True)
        ]
        texts = b45encode_many(deflated, prefix=HC1_PREFIX)
        kid = self.kid
        for (i, dcc, _), text in zip(signed, texts, strict=True):
            results[i] = Issued(
                record_id=records[i].record_id,
                hc1=text,
                uvci=dcc["v"][0]["ci"],
                kid=kid,
                iat=iat,
                exp=exp,
                exp_clamped=clamped,
                dcc=dcc,
            )
        return results  # type: ignore[return-value]  # every slot is filled


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
