"""The verdict of one QR verification: machine-readable, immutable, JSON-ready.

    >>> from verifier.result import Verdict, Stage, Reason
    >>> v = Verdict.failed(Stage.PREFIX, Reason.PREFIX_MISSING, "no HC1: prefix", qr_text="X")
    >>> v.valid, v.stage_failed
    (False, 'prefix')
    >>> v.to_dict()["checks"]["base45"] is None
    True

Stages (issue 2, "verifier/"): ``qr, prefix, base45, zlib, cose, cwt`` are
structural, each gating the next; ``signature, expiry, key_usage, schema``
are independent and all evaluated once decoding succeeded.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple


class Stage(StrEnum):
    """Verification stages, in reporting order."""

    QR = "qr"
    PREFIX = "prefix"
    BASE45 = "base45"
    ZLIB = "zlib"
    COSE = "cose"
    CWT = "cwt"
    SIGNATURE = "signature"
    EXPIRY = "expiry"
    KEY_USAGE = "key_usage"
    SCHEMA = "schema"
    #: business rules (verifier.rules): reported only when rules were given, so not in STAGES
    RULES = "rules"


STAGES: tuple[Stage, ...] = tuple(s for s in Stage if s is not Stage.RULES)
STRUCTURAL: tuple[Stage, ...] = STAGES[:6]
SEMANTIC: tuple[Stage, ...] = STAGES[6:]
_STAGE_NAMES: tuple[str, ...] = tuple(s.value for s in STAGES)
_SEMANTIC_NAMES: tuple[str, ...] = tuple(s.value for s in SEMANTIC)


class Reason(StrEnum):
    """Machine-readable reasons; tests assert these, never message text."""

    # qr
    IMAGE_UNREADABLE = "image_unreadable"
    NO_QR_CODE = "no_qr_code"
    # prefix
    TOO_LONG = "too_long"
    PREFIX_MISSING = "prefix_missing"
    # base45
    BASE45_INVALID = "base45_invalid"
    # zlib
    ZLIB_INVALID = "zlib_invalid"
    ZLIB_TOO_LARGE = "zlib_too_large"
    # cose
    COSE_MALFORMED = "cose_malformed"
    COSE_WRONG_TAG = "cose_wrong_tag"
    CRIT_UNSUPPORTED = "crit_unsupported"
    CRIT_MALFORMED = "crit_malformed"
    # cose or cwt: strict CBOR (verifier.strict_cbor)
    DUPLICATE_MAP_KEY = "duplicate_map_key"
    TRAILING_BYTES = "trailing_bytes"
    INTEGER_OUT_OF_RANGE = "integer_out_of_range"
    # cwt
    CWT_MALFORMED = "cwt_malformed"
    CWT_NO_HCERT = "cwt_no_hcert"
    # signature
    UNSUPPORTED_ALG = "unsupported_alg"
    KID_MISSING = "kid_missing"
    UNKNOWN_KID = "unknown_kid"
    BAD_SIGNATURE = "bad_signature"
    DSC_UNTRUSTED = "dsc_untrusted"
    DSC_EXPIRED = "dsc_expired"
    DSC_REVOKED = "dsc_revoked"
    DSC_KEY_UNSUPPORTED = "dsc_key_unsupported"
    DSC_MALFORMED = "dsc_malformed"
    PSS_SALT_LENGTH = "pss_salt_length"
    UVCI_REVOKED = "uvci_revoked"
    # expiry
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    EXP_MISSING = "exp_missing"
    IAT_MISSING = "iat_missing"
    TIME_INVALID = "time_invalid"
    # key_usage
    WRONG_CERTIFICATE_TYPE = "wrong_certificate_type"
    DSC_WRONG_USAGE = "dsc_wrong_usage"
    NO_CERTIFICATE_TYPE = "no_certificate_type"
    # schema
    SCHEMA_INVALID = "schema_invalid"
    # rules (verifier.rules): a rule returned false; could not be evaluated; none applied
    RULE_FAILED = "rule_failed"
    RULE_OPEN = "rule_open"
    NO_RULES = "no_rules"
    # any stage: a bug caught at the boundary (never expected)
    INTERNAL = "internal_error"


class VerdictError(NamedTuple):
    """One failed check: ``(stage, reason, message)``."""

    stage: Stage
    reason: Reason
    message: str


def _empty_checks() -> Mapping[str, bool | None]:
    return MappingProxyType(dict.fromkeys(STAGES))


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """Outcome of verifying one HC1 QR (text or image).

    ``valid`` is true only when every structural stage that ran passed and
    all four semantic checks are true. ``stage_failed`` is the first failed
    stage in :data:`STAGES` order. ``payload`` holds ``iss``, ``iat``,
    ``exp`` and ``hcert`` (the EU DCC v1 JSON payload, claim -260 key 1)
    once the CWT decoded, even when the verdict is invalid.
    """

    valid: bool
    stage_failed: str | None
    errors: tuple[VerdictError, ...] = ()
    checks: Mapping[str, bool | None] = field(default_factory=_empty_checks)
    payload: Mapping[str, Any] | None = None
    qr_text: str | None = None
    #: rule results (verifier.rules.RuleResult.to_dict), None when no rules were given
    rules: tuple[Mapping[str, Any], ...] | None = None

    @classmethod
    def build(
        cls,
        *,
        checks: Mapping[str, bool | None],
        errors: tuple[VerdictError, ...],
        payload: Mapping[str, Any] | None,
        qr_text: str | None,
    ) -> Verdict:
        """Derive ``valid`` and ``stage_failed`` from the checks."""
        full = {name: checks.get(name) for name in _STAGE_NAMES}
        failed: str | None = None
        for name in _STAGE_NAMES:
            if full[name] is False:
                failed = name
                break
        valid = failed is None and all(full[name] is True for name in _SEMANTIC_NAMES)
        if failed is None and not valid:
            failed = next(name for name in _SEMANTIC_NAMES if full[name] is not True)
        return cls(
            valid=valid,
            stage_failed=failed,
            errors=errors,
            checks=MappingProxyType(full),
            payload=payload,
            qr_text=qr_text,
        )

    @classmethod
    def failed(
        cls,
        stage: Stage,
        reason: Reason,
        message: str,
        *,
        qr_text: str | None = None,
        from_image: bool = False,
    ) -> Verdict:
        """A verdict for a structural failure at ``stage``: earlier stages passed."""
        checks: dict[str, bool | None] = {}
        for s in STRUCTURAL:
            if s == stage:
                checks[s] = False
                break
            checks[s] = True if (s != Stage.QR or from_image) else None
        return cls.build(
            checks=checks,
            errors=(VerdictError(stage, reason, message),),
            payload=None,
            qr_text=qr_text,
        )

    @property
    def reasons(self) -> tuple[Reason, ...]:
        """The reason codes, in the order found."""
        return tuple(e.reason for e in self.errors)

    def to_dict(self) -> dict[str, Any]:
        """The CLI's ``--json`` object (issue 2, command-line contract); with
        rules (issue 11) also ``checks.rules`` and ``rules``."""
        out: dict[str, Any] = {
            "valid": self.valid,
            "stage_failed": self.stage_failed,
            "errors": [
                {"stage": str(e.stage), "reason": str(e.reason), "message": e.message}
                for e in self.errors
            ],
            "checks": {str(s): self.checks.get(s) for s in STAGES},
            "payload": None if self.payload is None else jsonable(self.payload),
            "qr_text": self.qr_text,
        }
        if self.rules is not None:
            out["checks"]["rules"] = self.checks.get(Stage.RULES)
            out["rules"] = [dict(r) for r in self.rules]
        return out

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON text; never raises on odd payloads.

        UTF-8 text as a rule; escaped (``\\udcff``) when a text holds lone
        surrogates (a QR text given on a command line of undecodable bytes),
        which no UTF-8 output could print. Should the payload still not
        serialise (a bug), it is left out rather than the whole verdict.
        """
        data = self.to_dict()
        try:
            text = json.dumps(data, ensure_ascii=False, indent=indent, allow_nan=False)
        except (ValueError, TypeError, RecursionError):
            data["payload"] = None
            text = json.dumps(data, ensure_ascii=False, indent=indent, allow_nan=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(data, ensure_ascii=True, indent=indent, allow_nan=False)
        return text


#: Larger integers are shown in hex: Python refuses to turn an int of more
#: than 4,300 decimal digits into text. The verifier's decoder already
#: refuses integers beyond 64 bits (verifier.strict_cbor); this keeps the
#: JSON view safe for any payload it is given.
_MAX_INT_BITS = 14_000


def jsonable(obj: Any, _depth: int = 0) -> Any:
    """Best-effort JSON view of decoded CBOR: bytes as base64, odd keys as text.

    Payloads come from untrusted input, so this never raises: anything JSON
    cannot hold is turned into a string. Mappings and arrays of any kind
    (cbor2 6 decodes the contents of tags as immutable mappings and tuples).
    """
    if _depth > 64:
        return None
    if isinstance(obj, int) and not isinstance(obj, bool) and obj.bit_length() > _MAX_INT_BITS:
        return hex(obj)  # str() and json.dumps refuse ints beyond 4300 digits
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, Mapping):
        return {_key_text(k, _depth): jsonable(v, _depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(x, _depth + 1) for x in obj]
    if hasattr(obj, "isoformat"):
        return _text(obj.isoformat)
    return _text(obj.__str__)


def _key_text(key: Any, depth: int) -> str:
    """A map key as JSON object key text (JSON keys are strings)."""
    if isinstance(key, str):
        return key
    value = jsonable(key, depth + 1)
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return "?"


def _text(render: Any) -> str:
    try:
        text = render()
    except Exception:  # an odd object from untrusted input must not break the view
        return "?"
    return text if isinstance(text, str) else "?"
