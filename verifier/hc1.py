"""Verify an EU DCC "HC1:" QR (text or image) offline against a trust store.

    >>> import datetime as dt
    >>> from verifier.trust import load_trust
    >>> from verifier.hc1 import verify_qr_text
    >>> # trust = load_trust(["dsc.pem"], now=dt.datetime.now(dt.UTC))
    >>> # verdict = verify_qr_text("HC1:NCF...", trust, now=dt.datetime.now(dt.UTC))
    >>> # verdict.valid, verdict.stage_failed, verdict.reasons

Structural stages (qr, prefix, base45, zlib, cose, cwt) gate each other;
once the CWT decoded, the four semantic checks (signature, expiry,
key_usage, schema) are all evaluated and reported on their own.
Untrusted input never raises: every problem becomes a reason in the
:class:`~verifier.result.Verdict`.

References: eHealth Network "Electronic Health Certificate Container
Format" (hcert) 1.x, sections 2 (CWT/COSE), 3 (transport) and 5.1.1 (EKU);
RFC 9052 (COSE), RFC 8392 (CWT), RFC 9285 (base45).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from typing import Any

from verifier import codec
from verifier.crypto import verify_signature
from verifier.errors import CodecError
from verifier.image import read_qr_text
from verifier.result import Reason, Stage, Verdict, VerdictError
from verifier.schema import NOT_JSON, schema_problems
from verifier.trust import EKU_TRUST_LIST_SIGNER, DscEntry, TrustStore, signature_failure

#: hcert 1.x section 3.3.2: the algorithms a DCC may be signed with.
DCC_ALGORITHMS = (codec.CoseAlgorithm.ES256, codec.CoseAlgorithm.PS256)
#: The DCC types (certificate groups) of the EU DCC schema.
DCC_TYPES = ("v", "t", "r")


class _Fail(Exception):
    """Unwinds one structural stage to the single catch in :func:`_verify_text`."""

    def __init__(self, stage: Stage, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.stage, self.reason, self.message = stage, reason, message


def _reason(code: str, default: Reason) -> Reason:
    try:
        return Reason(code)
    except ValueError:
        return default


def qr_text_from_file(data: bytes) -> str:
    """The QR text a file holds: UTF-8 (a byte-order mark is the encoding's,
    not the text's), one final line ending ("\\n" or "\\r\\n") dropped, and
    nothing else: a space is a base45 character (RFC 9285 section 4), so
    spaces around the text are part of it and make it invalid rather than
    being stripped. Undecodable bytes become U+FFFD and fail the checks."""
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    return data.decode("utf-8-sig", errors="replace")


def verify_qr_text(text: str, trust: TrustStore, *, now: dt.datetime) -> Verdict:
    """Verify an ``HC1:`` text exactly as given (nothing stripped); the ``qr``
    check is None (no image involved)."""
    return _guarded(text, trust, now, qr=None)


def verify_qr_image(
    data_or_path: bytes | str | os.PathLike[str], trust: TrustStore, *, now: dt.datetime
) -> Verdict:
    """Decode the QR in an image (bytes or file path) with zxing-cpp, then verify it."""
    read = read_qr_text(data_or_path)
    if read.text is None:
        return Verdict.failed(Stage.QR, read.reason or Reason.NO_QR_CODE, read.message)
    return _guarded(read.text, trust, now, qr=True)


def verify_cose(cose: bytes, trust: TrustStore, *, now: dt.datetime) -> Verdict:
    """Verify decompressed COSE_Sign1 bytes (stages cose onward; earlier ones are None)."""
    try:
        return _verify_cose(cose, trust, _aware(now), {}, qr_text=None)
    except _Fail as fail:
        return _structural_failure(fail, {}, qr_text=None)
    except Exception as err:  # last line of defence: never raise
        return _internal(err, None)


def _aware(now: dt.datetime) -> dt.datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)


def _guarded(text: object, trust: TrustStore, now: dt.datetime, *, qr: bool | None) -> Verdict:
    qr_text = text if isinstance(text, str) else None
    try:
        return _verify_text(text, trust, _aware(now), qr=qr)
    except Exception as err:  # last line of defence: never raise
        return _internal(err, qr_text)


def _internal(err: Exception, qr_text: str | None) -> Verdict:
    """A bug caught at the boundary: invalid, every check unknown (CLI exit 2)."""
    message = f"internal error ({type(err).__name__})"
    return Verdict(
        valid=False,
        stage_failed=Stage.QR.value,
        errors=(VerdictError(Stage.QR, Reason.INTERNAL, message),),
        qr_text=qr_text,
    )


def _structural_failure(
    fail: _Fail, checks: Mapping[str, bool | None], *, qr_text: str | None
) -> Verdict:
    done = dict(checks)
    done[fail.stage] = False
    return Verdict.build(
        checks=done,
        errors=(VerdictError(fail.stage, fail.reason, fail.message),),
        payload=None,
        qr_text=qr_text,
    )


def _verify_text(text: object, trust: TrustStore, now: dt.datetime, *, qr: bool | None) -> Verdict:
    checks: dict[str, bool | None] = {Stage.QR: qr}
    qr_text = text if isinstance(text, str) else None
    try:
        # 1. prefix: "HC1:" context identifier (hcert 3.1), length capped.
        if not isinstance(text, str):
            raise _Fail(Stage.PREFIX, Reason.PREFIX_MISSING, "QR content is not text")
        try:
            body = codec.strip_prefix(text)
        except CodecError as err:
            raise _Fail(
                Stage.PREFIX, _reason(err.reason, Reason.PREFIX_MISSING), err.message
            ) from None
        checks[Stage.PREFIX] = True
        # 2. base45 (RFC 9285).
        try:
            compressed = codec.b45decode(body)
        except CodecError as err:
            raise _Fail(Stage.BASE45, Reason.BASE45_INVALID, err.message) from None
        checks[Stage.BASE45] = True
        # 3. zlib, with a cap on the inflated size (hcert 3.2).
        try:
            cose = codec.decompress(compressed)
        except CodecError as err:
            raise _Fail(Stage.ZLIB, _reason(err.reason, Reason.ZLIB_INVALID), err.message) from None
        checks[Stage.ZLIB] = True
        return _verify_cose(cose, trust, now, checks, qr_text=qr_text)
    except _Fail as fail:
        return _structural_failure(fail, checks, qr_text=qr_text)


def _verify_cose(
    cose: bytes,
    trust: TrustStore,
    now: dt.datetime,
    checks: dict[str, bool | None],
    *,
    qr_text: str | None,
) -> Verdict:
    # 4. cose: a COSE_Sign1 (tag 18, or untagged, or inside CWT tag 61).
    try:
        sign1 = codec.decode_sign1(cose)
    except CodecError as err:
        raise _Fail(Stage.COSE, _reason(err.reason, Reason.COSE_MALFORMED), err.message) from None
    checks[Stage.COSE] = True
    # 5. cwt: a claims map with the hcert claim (-260) holding an EU DCC v1.
    try:
        claims = codec.decode_cwt(sign1.payload)
    except CodecError as err:
        raise _Fail(Stage.CWT, _reason(err.reason, Reason.CWT_MALFORMED), err.message) from None
    checks[Stage.CWT] = True

    dcc, problems = _payload_and_schema(claims.dcc)
    errors: list[VerdictError] = []
    signature, dsc = _check_signature(sign1, dcc, trust, now, errors)
    checks[Stage.SIGNATURE] = signature
    checks[Stage.EXPIRY] = _check_expiry(claims, now, errors)
    checks[Stage.KEY_USAGE] = _check_key_usage(dsc, dcc, errors)
    checks[Stage.SCHEMA] = _check_schema(problems, errors)
    payload: dict[str, Any] = {
        "iss": claims.iss,
        "iat": claims.iat,
        "exp": claims.exp,
        "hcert": dcc,
    }
    return Verdict.build(checks=checks, errors=tuple(errors), payload=payload, qr_text=qr_text)


def _json_view(obj: Any, depth: int = 0) -> Any:
    """The DCC as JSON sees it: maps as dicts, arrays as lists (cbor2 6
    decodes the contents of tags as immutable mappings and tuples), CBOR date
    tags (0, 1, 100, 1004) back to text.

    hcert 1.x 2.6.4 asks decoders to be permissive ("acceptance of any
    reasonable type conversion is strongly encouraged"); Sweden encodes
    ``sc`` as a tagged date-time (tag 0), which cbor2 turns into a datetime.
    """
    if depth > codec.MAX_CBOR_DEPTH:
        return obj
    if isinstance(obj, Mapping):
        return {k: _json_view(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_view(x, depth + 1) for x in obj]
    if isinstance(obj, dt.datetime):
        text = obj.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj


def _check_signature(
    sign1: codec.Sign1,
    dcc: Mapping[str, Any],
    trust: TrustStore,
    now: dt.datetime,
    errors: list[VerdictError],
) -> tuple[bool, DscEntry | None]:
    """Signature checklist; returns (ok, the DSC that signed or the kid's first DSC)."""

    def fail(
        reason: Reason, message: str, dsc: DscEntry | None = None
    ) -> tuple[bool, DscEntry | None]:
        errors.append(VerdictError(Stage.SIGNATURE, reason, message))
        return False, dsc

    # 6.1 The algorithm comes from the protected header only and is ES256 or PS256.
    alg = sign1.alg
    if type(alg) is not int or alg not in DCC_ALGORITHMS:
        fail(Reason.UNSUPPORTED_ALG, f"algorithm {_short(alg)} is not ES256 or PS256")
        alg = None
    # 6.2 kid from the protected header, else the unprotected one (protected wins).
    kid = sign1.kid
    if kid is None:
        return fail(Reason.KID_MISSING, "no kid in the COSE headers")
    # 6.3 The kid names a DSC in the trust store.
    candidates = trust.candidates(kid)
    if not candidates:
        return fail(Reason.UNKNOWN_KID, f"no trusted DSC with kid {kid.hex()}")
    if alg is None:
        return False, candidates[0]
    # 6.4 The signature verifies with one of those DSCs (Sig_structure, RFC 9052 4.4).
    to_check = codec.sig_structure(sign1.protected_bytes, sign1.payload)
    dsc = None
    for candidate in candidates:  # hcert 3.3.1: kids may collide, try every DSC
        if verify_signature(candidate.info.public_key, alg, to_check, sign1.signature):
            dsc = candidate
            break
    if dsc is None:  # why: a DSC that cannot sign DCCs, a PSS salt, or plainly bad
        code, message = signature_failure(candidates, alg, to_check, sign1.signature)
        return fail(_reason(code, Reason.BAD_SIGNATURE), message, candidates[0])
    ok = True
    if dsc.listed:
        # 6.5 A DSC from a trust list chains to a CSCA of the list.
        if not dsc.chain_ok:
            ok = fail(Reason.DSC_UNTRUSTED, "DSC is not issued by a trusted CSCA")[0]
        # 6.6 ... is valid at the time of verification.
        if not dsc.info.valid_at(now):
            ok = fail(Reason.DSC_EXPIRED, "DSC is outside its validity period")[0]
    # 6.7 The DSC is not revoked (revokedDscs, CRLs of a verified list; these
    # apply to a DSC given as a file too).
    if dsc.revoked_at is not None and now >= dsc.revoked_at:
        ok = fail(Reason.DSC_REVOKED, "DSC is revoked")[0]
    # 6.8 The certificate identifier (UVCI) is not revoked.
    if trust.revoked_uvci_hashes:
        for uvci in _uvcis(dcc):
            if trust.uvci_revoked(uvci):
                ok = fail(Reason.UVCI_REVOKED, "certificate identifier (UVCI) is revoked")[0]
                break
    return ok, dsc


def _uvcis(dcc: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for group in DCC_TYPES:
        entries = dcc.get(group)
        if isinstance(entries, list | tuple):
            out.extend(
                e["ci"] for e in entries if isinstance(e, Mapping) and isinstance(e.get("ci"), str)
            )
    return out


def _short(value: object, limit: int = 40) -> str:
    """``repr`` cut to ``limit`` characters, for values from untrusted input in messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _finite(value: float) -> bool:
    """NaN and infinities are not dates; integers of any size are (compared exactly)."""
    return not isinstance(value, float) or math.isfinite(value)


def _check_expiry(claims: codec.Claims, now: dt.datetime, errors: list[VerdictError]) -> bool:
    """7. iat <= now <= exp, bounds inclusive, integer or float seconds (hcert 2.6.2)."""
    t = now.timestamp()
    problems: list[tuple[Reason, str]] = []
    if claims.exp is None:
        problems.append((Reason.EXP_MISSING, "CWT has no expiry (exp)"))
    elif not _finite(claims.exp):  # NaN would compare false both ways
        problems.append((Reason.TIME_INVALID, "CWT expiry (exp) is not a finite number"))
    elif t > claims.exp:
        problems.append((Reason.EXPIRED, "certificate expired"))
    if claims.iat is None:
        problems.append((Reason.IAT_MISSING, "CWT has no issue time (iat)"))
    elif not _finite(claims.iat):
        problems.append((Reason.TIME_INVALID, "CWT issue time (iat) is not a finite number"))
    elif t < claims.iat:
        problems.append((Reason.NOT_YET_VALID, "certificate issued in the future"))
    errors.extend(VerdictError(Stage.EXPIRY, r, m) for r, m in problems)
    return not problems


def _check_key_usage(
    dsc: DscEntry | None, dcc: Mapping[str, Any], errors: list[VerdictError]
) -> bool | None:
    """8. The DSC's EKU allows the DCC's type (hcert 5.1.1); no DCC EKU = any type.

    A certificate with the trust-list-signing EKU never signs a DCC
    (docs/trust-list.md), even when given as a plain signing certificate.
    """
    if dsc is None:
        return None
    if dsc.info.ekus and EKU_TRUST_LIST_SIGNER in dsc.info.ekus:
        errors.append(
            VerdictError(
                Stage.KEY_USAGE, Reason.DSC_WRONG_USAGE, "signed by a trust-list signing key"
            )
        )
        return False
    present = {t for t in DCC_TYPES if t in dcc}
    if not present:
        errors.append(
            VerdictError(
                Stage.KEY_USAGE, Reason.NO_CERTIFICATE_TYPE, "payload has no v, t or r group"
            )
        )
        return False
    allowed = dsc.info.dcc_types
    if allowed is not None and not present <= allowed:
        errors.append(
            VerdictError(
                Stage.KEY_USAGE,
                Reason.WRONG_CERTIFICATE_TYPE,
                f"DSC may sign {'/'.join(sorted(allowed))} certificates, "
                f"not {'/'.join(sorted(present))}",
            )
        )
        return False
    return True


def _payload_and_schema(dcc: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[str]]:
    """The DCC (as JSON sees it) and its schema problems, validated once.

    Fast path: validate the decoded CBOR as it is. Only when it holds
    non-JSON values is it converted (CBOR date tags back to text) and
    validated again.
    """
    problems = schema_problems(dcc)
    if problems == [NOT_JSON]:
        view = _json_view(dcc)
        return view, schema_problems(view)
    return dcc, problems


def _check_schema(problems: list[str], errors: list[VerdictError]) -> bool:
    """9. The payload is valid against the EU DCC JSON schema 1.3.x."""
    if problems:
        errors.append(VerdictError(Stage.SCHEMA, Reason.SCHEMA_INVALID, "; ".join(problems)))
        return False
    return True
