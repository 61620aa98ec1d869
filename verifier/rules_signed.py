"""Signed rule sets: a rule bundle in the trust list's envelope, with an issue time and a
sequence number (docs/rules.md "Signed rule sets").

    >>> import datetime as dt
    >>> from verifier.rules_signed import AgePolicy, freshness
    >>> issued = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    >>> freshness(issued, issued + dt.timedelta(days=20), AgePolicy(warn_days=14, refuse_days=60))
    (<Freshness.OLD: 'old'>, 20)
    >>> # rule_set, info = load_signed_rules("rules-vn.cbor", anchors=trust.anchors, now=now)

The envelope is the trust list's (docs/trust-list.md "Envelope"): a tagged COSE_Sign1 signed
by the trust-list signer (a certificate issued by the CSCA with the trust-list-signing EKU),
verified against a pinned CSCA by :func:`verifier.trust.verify_envelope`. Its protected
header also carries the content type (label 3) ``application/vnd.vn-dcc.rules+cbor``, and
its payload has no ``v``, so a rule set is never taken for a trust list (and the other way
round). The payload is a CBOR map:

    {"format": "vn-dcc-rules", "version": 1, "seq": uint, "iat": uint (seconds, UTC),
     "country": "VN", "bundle": tstr (the JSON of verifier.rules.bundle)}

Rollback: the highest ``seq`` accepted per pinned CSCA is kept in ``rules-seq.json`` of the
verifier's state folder (as ``trustlist-seq.json`` for trust lists); a lower one is refused.

Age: a rule set does not expire at a fixed date (no 48-hour cliff). Like trust lists on the
scanner page, it is *old* after ``warn_days`` (a warning) and refused after ``refuse_days``
(:class:`AgePolicy`, default 14 and 60 days). All problems raise
:class:`verifier.errors.TrustError` with a ``rules_*`` reason: a configuration error (exit 2),
checked before any QR is looked at.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from verifier import codec
from verifier.errors import CodecError, ConfigError, TrustError
from verifier.rules import MAX_BUNDLE_BYTES, RuleSet, loads_json, rule_set_from_json
from verifier.trust import (
    RULE_SET_CONTENT_TYPE,
    CertInfo,
    certificates_in,
    check_rollback,
    default_state_dir,
    parse_certificate,
    pinned_cscas,
    verify_envelope,
)

RULE_SET_FORMAT: Final = "vn-dcc-rules"
RULE_SET_VERSION: Final = 1
SEQ_FILE: Final = "rules-seq.json"
#: A signed rule set file is at most this large (the bundle inside is capped by MAX_BUNDLE_BYTES).
MAX_SIGNED_BYTES: Final = MAX_BUNDLE_BYTES + 1024 * 1024
#: How far in the future an issue time may lie before the clock is called wrong.
CLOCK_SKEW: Final = dt.timedelta(minutes=5)


class Freshness(StrEnum):
    FRESH = "fresh"
    OLD = "old"  # past warn_days: a warning
    TOO_OLD = "too_old"  # past refuse_days: refused
    FUTURE = "future"  # issued after `now`: the clock (or --at) is wrong


@dataclass(frozen=True, kw_only=True)
class AgePolicy:
    """Warn after ``warn_days``, refuse after ``refuse_days`` (1 <= warn < refuse <= 3650):
    the scanner page's defaults and limits (scanner/app/browser-state.js)."""

    warn_days: int = 14
    refuse_days: int = 60

    def __post_init__(self) -> None:
        if not 1 <= self.warn_days < self.refuse_days <= 3650:
            raise ConfigError(
                "rule-set ages: need 1 <= warn days < refuse days <= 3650, "
                f"got {self.warn_days} and {self.refuse_days}"
            )


def freshness(issued_at: dt.datetime, now: dt.datetime, policy: AgePolicy) -> tuple[Freshness, int]:
    """The state of a document issued at ``issued_at`` and its age in whole days at ``now``.

    Same thresholds as scanner/src/verify/age.js: old when the age is more than
    ``warn_days``, refused when more than ``refuse_days``.
    """
    if issued_at > now + CLOCK_SKEW:
        return Freshness.FUTURE, 0
    days = max(0, (now - issued_at) // dt.timedelta(days=1))
    if days > policy.refuse_days:
        return Freshness.TOO_OLD, days
    if days > policy.warn_days:
        return Freshness.OLD, days
    return Freshness.FRESH, days


@dataclass(frozen=True, kw_only=True)
class RuleSetInfo:
    """What a verified signed rule set says about itself."""

    path: str
    seq: int
    issued_at: dt.datetime
    country: str
    signer: CertInfo
    anchor: CertInfo
    rules: int

    def describe(self, now: dt.datetime) -> str:
        days = max(0, (now - self.issued_at) // dt.timedelta(days=1))
        return (
            f"rule set {self.path}: seq {self.seq}, {self.country}, {self.rules} rules, "
            f"issued {self.issued_at:%Y-%m-%d %H:%M}Z ({days} days old), "
            f"signed by {self.signer.describe()}"
        )


def is_signed_rule_set(data: bytes) -> bool:
    """True for a COSE_Sign1 (tag 18, untagged, tag 61); rule JSON starts otherwise."""
    return data[:1] in (b"\xd2", b"\x84", b"\xd8")


def _fail(where: str, message: str, reason: str = "rules_invalid") -> TrustError:
    return TrustError(reason, f"{where}: {message}")


def _uint(payload: Mapping[Any, Any], key: str, where: str) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _fail(where, f"field {key!r} must be an unsigned integer")
    return value


def verify_rule_set(
    data: bytes, *, where: str, anchors: Sequence[CertInfo], now: dt.datetime
) -> tuple[RuleSet, RuleSetInfo]:
    """Check a signed rule set (envelope, content type, payload) and parse its rules.

    Raises ``TrustError`` (``rules_invalid``, ``rules_untrusted``, ``rules_bad_signature``);
    rollback and age are the caller's (:func:`load_signed_rules`).
    """
    envelope = verify_envelope(
        data, where=where, anchors=anchors, now=now, what="rule-set", reason_prefix="rules"
    )
    if envelope.content_type != RULE_SET_CONTENT_TYPE:
        raise _fail(
            where,
            "not a signed rule set (no rule-set content type: a trust list? give it with --trust)",
        )
    try:
        payload = codec.cbor_loads(envelope.payload, reason="rules_invalid")
    except CodecError as err:
        raise _fail(where, err.message) from None
    if not isinstance(payload, Mapping):
        raise _fail(where, "payload is not a map")
    version = payload.get("version")
    if payload.get("format") != RULE_SET_FORMAT or type(version) is not int or version != 1:
        raise _fail(where, f"not a {RULE_SET_FORMAT} version {RULE_SET_VERSION} payload")
    seq = _uint(payload, "seq", where)
    iat = _uint(payload, "iat", where)
    country = payload.get("country")
    if not isinstance(country, str) or len(country) != 2 or not country.isupper():
        raise _fail(where, "field 'country' must be an ISO 3166-1 alpha-2 code")
    text = payload.get("bundle")
    if not isinstance(text, str):
        raise _fail(where, "field 'bundle' must be text (the rule bundle's JSON)")
    try:
        rule_set = rule_set_from_json(loads_json(text.encode("utf-8"), source=where), source=where)
    except ConfigError as err:
        raise _fail(where, f"bundle: {err}") from None
    try:
        issued_at = dt.datetime.fromtimestamp(iat, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise _fail(where, "field 'iat' is out of range") from None
    info = RuleSetInfo(
        path=where,
        seq=seq,
        issued_at=issued_at,
        country=country,
        signer=envelope.signer,
        anchor=envelope.anchor,
        rules=len(rule_set.rules),
    )
    return rule_set, info


def load_signed_rules(
    path: str | os.PathLike[str],
    *,
    anchors: Sequence[CertInfo],
    now: dt.datetime,
    policy: AgePolicy | None = None,
    state_dir: str | os.PathLike[str] | None = None,
) -> tuple[RuleSet, RuleSetInfo, Freshness]:
    """Read, verify, check rollback and age; raises ``TrustError`` (``rules_*``) or ConfigError.

    A rule set older than ``policy.refuse_days`` is refused (``rules_too_old``); the
    returned :class:`Freshness` says whether to warn (``old``, ``future``).
    """
    where = os.fspath(path)
    data = _read(where)
    rule_set, info = verify_rule_set(data, where=where, anchors=anchors, now=now)
    policy = policy or AgePolicy()
    state_now, days = freshness(info.issued_at, now, policy)
    if state_now is Freshness.TOO_OLD:
        raise _fail(
            where,
            f"rule set seq {info.seq} is {days} days old, more than the {policy.refuse_days} "
            "accepted: get a newer one from the issuing authority",
            "rules_too_old",
        )
    # after the age check: a refused set leaves the state as it was
    state = Path(state_dir) if state_dir is not None else default_state_dir()
    check_rollback(
        state,
        info.anchor,
        info.seq,
        where=where,
        seq_file=SEQ_FILE,
        what="rule set",
        reason="rules_rollback",
    )
    return rule_set, info, state_now


def _read(where: str) -> bytes:
    try:
        with open(where, "rb") as fh:
            data = fh.read(MAX_SIGNED_BYTES + 1)
    except (OSError, ValueError) as err:
        why = getattr(err, "strerror", None) or "invalid path"
        raise ConfigError(f"cannot read {where[:160]}: {why}") from None
    if len(data) > MAX_SIGNED_BYTES:
        raise _fail(where, "file is too large")
    return data


def anchors_from_files(
    paths: Sequence[str | os.PathLike[str]], *, state_dir: str | os.PathLike[str] | None = None
) -> list[CertInfo]:
    """The CSCAs a signed rule set may chain to: pinned ones and the CA certificates among
    ``paths`` (the ``--trust`` files; trust lists among them are skipped, not verified)."""
    state = Path(state_dir) if state_dir is not None else default_state_dir()
    out = list(pinned_cscas(state))
    for raw in paths:
        where = os.fspath(raw)
        data = _read(where)
        if is_signed_rule_set(data) or not data.strip():
            continue
        for der in certificates_in(data, where=where):
            try:
                info = parse_certificate(der)
            except TrustError:
                continue
            if info.is_ca and info.cert is not None:
                out.append(info)
    return out
