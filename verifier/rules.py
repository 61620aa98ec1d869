"""Business rules in the EU DCC Gateway format, evaluated with :mod:`verifier.certlogic`.

    >>> import datetime as dt
    >>> from verifier.rules import load_rules, check_certificate
    >>> rules = load_rules(default_rules_path())
    >>> dcc = {"ver": "1.3.0", "dob": "1990-01-02", "nam": {"fnt": "NGUYEN"},
    ...        "v": [{"tg": "840539006", "vp": "J07BX03", "mp": "EU/1/20/1528",
    ...               "ma": "ORG-100030215", "dn": 2, "sd": 2, "dt": "2021-09-01",
    ...               "co": "VN", "is": "MoH", "ci": "URN:UVCI:01:VN:X#Y"}]}
    >>> at = dt.datetime(2021, 10, 1, tzinfo=dt.UTC)
    >>> report = check_certificate(rules, dcc, country="VN", profile="primary", at=at)
    >>> report.passed, [r.result.value for r in report.results][:2]
    (True, ['passed', 'passed'])

A rule (``<country>/<rule id>/rule.json``) is one JSON object with the fields
of the Gateway's validation-rule schema (``Identifier``, ``Type``,
``Country``, ``Version``, ``SchemaVersion``, ``Engine``, ``EngineVersion``,
``CertificateType``, ``Description``, ``ValidFrom``, ``ValidTo``,
``AffectedFields``, ``Logic``). A rule set is a folder of such files, or one
JSON file holding a rule or an array of rules. A ``profiles.json`` in a
country folder names policy profiles (lists of rule identifiers); see
docs/rules.md.

What the EU verifier apps do, and so what this module does
(eu-digital-green-certificates/dgc-certlogic-android, ``DefaultCertLogicEngine``):

1. Rules are selected by country of arrival, ``Type`` Acceptance,
   ``CertificateType`` General or the certificate's type, and the validation
   clock within [``ValidFrom``, ``ValidTo``); of several versions of one
   identifier the highest applies.
2. The data is ``{"payload": <DCC JSON>, "external": {...}}`` with
   ``external`` = ``validationClock`` (ISO 8601 with offset), ``valueSets``
   (value-set id -> codes), ``countryCode``, ``exp`` and ``iat`` (UTC dates
   ``YYYY-MM-DD``), ``issuerCountryCode``, ``kid`` (base64) and ``region``.
3. A rule for another engine, a newer CertLogic, or a DCC schema version it
   does not match is *open*; so is one that raises or does not return a
   boolean.

Fail closed: a certificate passes only when at least one rule of its own
type (not only General rules) applied and every applied rule returned
``true``; *open* counts as failure, and no applicable rule is a refusal
(``no_rules``), never a pass.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Final

from verifier import certlogic
from verifier.certlogic import CertLogicError
from verifier.errors import ConfigError

#: Largest rule, test or profile file read; value sets make test files ~30 KB.
MAX_RULE_FILE_BYTES: Final = 4 * 1024 * 1024
#: Largest single-file rule set (an array of rules).
MAX_BUNDLE_BYTES: Final = 32 * 1024 * 1024
MAX_RULES: Final = 10_000
#: Languages a result carries descriptions in (the staff's, and English).
RESULT_LANGS: Final = ("en", "vi")


class RuleFormatError(ConfigError):
    """A rule, rule-test or profile file that is not in the expected format."""


class CertificateType(StrEnum):
    GENERAL = "General"
    VACCINATION = "Vaccination"
    TEST = "Test"
    RECOVERY = "Recovery"


class RuleType(StrEnum):
    ACCEPTANCE = "Acceptance"
    INVALIDATION = "Invalidation"


class Outcome(StrEnum):
    """The EU apps' ``Result``: PASSED, FAIL, OPEN (could not be evaluated)."""

    PASSED = "passed"
    FAILED = "failed"
    OPEN = "open"


#: DCC group -> rule certificate type.
GROUP_TYPES: Final = {
    "v": CertificateType.VACCINATION,
    "t": CertificateType.TEST,
    "r": CertificateType.RECOVERY,
}
_SEMVER: Final = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)")
_RULE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_COUNTRY: Final = re.compile(r"[A-Z]{2}")
_GATEWAY_TIME: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _version(text: str) -> tuple[int, int, int] | None:
    m = _SEMVER.match(text)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


#: CertLogic version this evaluator implements (rules with a higher EngineVersion are open).
ENGINE_VERSION: Final = _version(certlogic.SPEC_VERSION) or (0, 0, 0)


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One Gateway validation rule, checked when loaded."""

    identifier: str
    type: RuleType
    country: str
    version: str
    schema_version: str
    engine: str
    engine_version: str
    certificate_type: CertificateType
    descriptions: Mapping[str, str]
    valid_from: dt.datetime
    valid_to: dt.datetime
    affected_fields: tuple[str, ...]
    logic: Any
    source: str = ""
    #: the rule's JSON as read (for :func:`bundle`)
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def version_key(self) -> tuple[int, int, int]:
        return _version(self.version) or (0, 0, 0)

    def description(self, lang: str = "en") -> str:
        """The description in ``lang``, else English, else any."""
        return (
            self.descriptions.get(lang)
            or self.descriptions.get("en")
            or next(iter(self.descriptions.values()), "")
        )

    def applies_at(self, at: dt.datetime) -> bool:
        return self.valid_from <= at < self.valid_to


def _field(obj: Mapping[str, Any], name: str, source: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise RuleFormatError(f"{source}: {name} must be a string")
    return value


def _gateway_time(obj: Mapping[str, Any], name: str, source: str) -> dt.datetime:
    text = _field(obj, name, source)
    if not _GATEWAY_TIME.fullmatch(text):
        raise RuleFormatError(f"{source}: {name} {text[:40]!r} is not an ISO 8601 timestamp")
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise RuleFormatError(f"{source}: {name} {text[:40]!r} is not a valid time") from None


def parse_rule(obj: Any, *, source: str = "<rule>") -> Rule:
    """A :class:`Rule` from its JSON; raises :class:`RuleFormatError`.

    Only the format is checked here. ``Logic`` is checked as CertLogic when the
    rule is evaluated, so that a rule using an unknown operation fails closed
    with its reason instead of making the whole rule set unusable.
    """
    if not isinstance(obj, dict):
        raise RuleFormatError(f"{source}: a rule must be a JSON object")
    identifier = _field(obj, "Identifier", source)
    if not _RULE_ID.fullmatch(identifier):
        raise RuleFormatError(f"{source}: Identifier {identifier[:70]!r} is not a rule identifier")
    where = f"{source} ({identifier})"
    try:
        rule_type = RuleType(_field(obj, "Type", where))
        cert_type = CertificateType(_field(obj, "CertificateType", where))
    except ValueError as err:
        raise RuleFormatError(f"{where}: {err}") from None
    country = _field(obj, "Country", where)
    if not _COUNTRY.fullmatch(country):
        raise RuleFormatError(f"{where}: Country {country[:10]!r} is not an ISO 3166 alpha-2 code")
    version = _field(obj, "Version", where)
    if _version(version) is None:
        raise RuleFormatError(f"{where}: Version {version[:20]!r} is not a semantic version")
    descriptions_json = obj.get("Description", [])
    if not isinstance(descriptions_json, list) or not all(
        isinstance(d, dict) and isinstance(d.get("lang"), str) and isinstance(d.get("desc"), str)
        for d in descriptions_json
    ):
        raise RuleFormatError(f"{where}: Description must be a list of {{lang, desc}}")
    affected = obj.get("AffectedFields", [])
    if not isinstance(affected, list) or not all(isinstance(f, str) for f in affected):
        raise RuleFormatError(f"{where}: AffectedFields must be a list of strings")
    if "Logic" not in obj:
        raise RuleFormatError(f"{where}: no Logic")
    valid_from = _gateway_time(obj, "ValidFrom", where)
    valid_to = _gateway_time(obj, "ValidTo", where)
    return Rule(
        identifier=identifier,
        type=rule_type,
        country=country,
        version=version,
        schema_version=_field(obj, "SchemaVersion", where),
        engine=_field(obj, "Engine", where),
        engine_version=_field(obj, "EngineVersion", where),
        certificate_type=cert_type,
        descriptions={d["lang"]: d["desc"] for d in descriptions_json},
        valid_from=valid_from,
        valid_to=valid_to,
        affected_fields=tuple(affected),
        logic=obj["Logic"],
        source=source,
        raw=obj,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json(path: Path, *, limit: int = MAX_RULE_FILE_BYTES) -> Any:
    """JSON from a file, refusing huge files, NaN, bad UTF-8 and absurd nesting."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as err:
        raise RuleFormatError(f"cannot read {path}: {err.strerror}") from None
    if len(data) > limit:
        raise RuleFormatError(f"{path}: larger than {limit} bytes")
    return loads_json(data, source=str(path))


def loads_json(data: bytes, *, source: str) -> Any:
    """JSON from bytes (UTF-8, a BOM allowed), refusing NaN, bad UTF-8 and absurd nesting."""
    try:
        return json.loads(data.decode("utf-8-sig"), parse_constant=_reject_constant)
    except RecursionError:
        raise RuleFormatError(f"{source}: JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise RuleFormatError(f"{source}: not valid JSON ({err})") from None


def default_rules_path() -> Path:
    """The rule set shipped with the verifier (``verifier/data/rules``: the VN profiles)."""
    return Path(str(resources.files("verifier.data").joinpath("rules")))


@dataclass(frozen=True)
class Profile:
    """A named policy: the identifiers of the rules it applies (``profiles.json``)."""

    country: str
    name: str
    rules: frozenset[str]
    descriptions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleSet:
    """Rules and profiles loaded from one folder or file."""

    rules: tuple[Rule, ...]
    profiles: Mapping[tuple[str, str], Profile] = field(default_factory=dict)
    #: country -> the profile applied when none is asked for (``"default"`` of profiles.json)
    default_profiles: Mapping[str, str] = field(default_factory=dict)
    #: the profiles.json objects as read (for :func:`bundle`)
    raw_profiles: tuple[Any, ...] = ()

    def profile(self, country: str, name: str) -> Profile:
        try:
            return self.profiles[(country, name)]
        except KeyError:
            known = sorted(n for c, n in self.profiles if c == country)
            raise ConfigError(
                f"no profile {name!r} for {country}"
                + (f" (known: {', '.join(known)})" if known else " (no profiles.json)")
            ) from None


def _parse_profiles(obj: Any, source: str) -> tuple[list[Profile], str | None]:
    """``{"country": "VN", "default": "<name>", "profiles": {"<name>": {"rules": [ids],
    "description": {lang: text}}}}``: the profiles and the default's name."""
    if not isinstance(obj, dict) or not isinstance(obj.get("profiles"), dict):
        raise RuleFormatError(f"{source}: expected {{'country': ..., 'profiles': {{...}}}}")
    country = obj.get("country")
    if not isinstance(country, str) or not _COUNTRY.fullmatch(country):
        raise RuleFormatError(f"{source}: country must be an ISO 3166 alpha-2 code")
    out = []
    for name, spec in obj["profiles"].items():
        ids = spec.get("rules") if isinstance(spec, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise RuleFormatError(f"{source}: profile {name!r} needs a list of rule identifiers")
        desc = spec.get("description", {})
        if not isinstance(desc, dict) or not all(isinstance(v, str) for v in desc.values()):
            raise RuleFormatError(f"{source}: profile {name!r} description must map lang -> text")
        out.append(Profile(country, name, frozenset(ids), desc))
    default = obj.get("default")
    if default is not None and default not in obj["profiles"]:
        raise RuleFormatError(f"{source}: default profile {default!r} is not defined")
    return out, default if isinstance(default, str) else None


def load_rules(path: Path | str) -> RuleSet:
    """Load a rule set; raises :class:`ConfigError`.

    ``path`` is a folder (every ``**/rule.json`` and ``**/profiles.json``
    under it) or one file: a rule, an array of rules, or a bundle
    ``{"rules": [...], "profiles": [<profiles.json>...]}`` (:func:`bundle`).
    """
    path = Path(path)
    rule_objs: list[tuple[Any, str]] = []
    profile_objs: list[tuple[Any, str]] = []
    if path.is_dir():
        files = sorted(p for p in path.rglob("rule.json") if p.is_file())
        if len(files) > MAX_RULES:
            raise RuleFormatError(f"{path}: more than {MAX_RULES} rules")
        rule_objs = [(read_json(f), str(f)) for f in files]
        profile_objs = [(read_json(f), str(f)) for f in sorted(path.rglob("profiles.json"))]
    elif path.is_file():
        if _is_cose(path):
            raise ConfigError(
                f"{path}: a signed rule set; it is checked against the trust anchors "
                "(verifier qr --trust CSCA.pem --rules FILE)"
            )
        return rule_set_from_json(read_json(path, limit=MAX_BUNDLE_BYTES), source=str(path))
    else:
        raise ConfigError(f"no rules at {path}: not a file or folder")
    return _rule_set(rule_objs, profile_objs, where=str(path))


def _is_cose(path: Path) -> bool:
    """A COSE_Sign1 (tag 18, untagged array of 4, or tag 61), not JSON."""
    try:
        with path.open("rb") as fh:
            return fh.read(1) in (b"\xd2", b"\x84", b"\xd8")
    except OSError:
        return False


def rule_set_from_json(obj: Any, *, source: str) -> RuleSet:
    """A rule set from one JSON value: a bundle ``{"rules": [...], "profiles": [...]}``
    (:func:`bundle`), an array of rules, or one rule; raises :class:`ConfigError`."""
    profile_objs: list[tuple[Any, str]] = []
    if isinstance(obj, dict) and isinstance(obj.get("rules"), list):
        items, found = obj["rules"], obj.get("profiles", [])
        if not isinstance(found, list):
            raise RuleFormatError(f"{source}: profiles must be a list of profiles.json objects")
        profile_objs = [(p, f"{source} profiles[{i}]") for i, p in enumerate(found)]
    else:
        items = obj if isinstance(obj, list) else [obj]
    rule_objs = [(item, f"{source}[{i}]") for i, item in enumerate(items)]
    return _rule_set(rule_objs, profile_objs, where=source)


def _rule_set(
    rule_objs: list[tuple[Any, str]], profile_objs: list[tuple[Any, str]], *, where: str
) -> RuleSet:
    if len(rule_objs) > MAX_RULES:
        raise RuleFormatError(f"{where}: more than {MAX_RULES} rules")
    rules = [parse_rule(obj, source=source) for obj, source in rule_objs]
    if not rules:
        raise ConfigError(f"no rules at {where} (expected <country>/<rule id>/rule.json)")
    profiles: dict[tuple[str, str], Profile] = {}
    defaults: dict[str, str] = {}
    for obj, source in profile_objs:
        found_profiles, default = _parse_profiles(obj, source)
        for profile in found_profiles:
            profiles[(profile.country, profile.name)] = profile
            if default is not None:
                defaults[profile.country] = default
    for profile in profiles.values():
        known = {r.identifier for r in rules if r.country == profile.country}
        missing = sorted(profile.rules - known)
        if missing:
            raise RuleFormatError(
                f"profile {profile.name!r} of {profile.country} names unknown rules: "
                + ", ".join(missing)
            )
    raw_profiles = tuple(obj for obj, _ in profile_objs)
    return RuleSet(tuple(rules), profiles, defaults, raw_profiles)


def bundle(rule_set: RuleSet) -> dict[str, Any]:
    """One JSON object holding a whole rule set, for a checkpoint or the browser page:
    ``{"rules": [<rule.json>...], "profiles": [<profiles.json>...]}`` (rules as written)."""
    return {
        "rules": [r.raw for r in sorted(rule_set.rules, key=lambda r: (r.country, r.identifier))],
        "profiles": list(rule_set.raw_profiles),
    }


# --------------------------------------------------------------------------
# selection and external parameters


def certificate_type_of(dcc: Mapping[str, Any]) -> CertificateType | None:
    """The type of a DCC: the one group of ``v``, ``t``, ``r`` that is a non-empty array."""
    found = [t for g, t in GROUP_TYPES.items() if isinstance(dcc.get(g), list) and dcc.get(g)]
    return found[0] if len(found) == 1 else None


def select_rules(
    rules: Iterable[Rule],
    *,
    country: str,
    certificate_type: CertificateType | None,
    at: dt.datetime,
    profile: Profile | None = None,
    rule_type: RuleType = RuleType.ACCEPTANCE,
) -> tuple[Rule, ...]:
    """The rules that apply (module docstring, point 1), sorted by identifier.

    With a ``profile``, only its rules. A certificate of no single type gets
    the General rules only.
    """
    wanted = {CertificateType.GENERAL}
    if certificate_type is not None:
        wanted.add(certificate_type)
    newest: dict[str, Rule] = {}
    for rule in rules:
        if (
            rule.country == country
            and rule.type == rule_type
            and rule.certificate_type in wanted
            and rule.applies_at(at)
            and (profile is None or rule.identifier in profile.rules)
        ):
            held = newest.get(rule.identifier)
            if held is None or rule.version_key > held.version_key:
                newest[rule.identifier] = rule
    return tuple(newest[i] for i in sorted(newest))


def iso_clock(at: dt.datetime) -> str:
    """``validationClock`` as Java's ISO_OFFSET_DATE_TIME writes it (``Z`` for UTC)."""
    at = at.astimezone(dt.UTC)
    spec = "seconds" if at.microsecond == 0 else "milliseconds"
    return at.isoformat(timespec=spec).replace("+00:00", "Z")


def _utc_date(epoch: Any) -> str | None:
    if isinstance(epoch, bool) or not isinstance(epoch, int | float):
        return None
    try:
        return dt.datetime.fromtimestamp(epoch, dt.UTC).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def value_sets() -> dict[str, list[str]]:
    """The shipped EU value sets as the Gateway serves them to rules: id -> codes."""
    return {k: list(v) for k, v in _shipped_value_sets().items()}


@functools.cache
def _shipped_value_sets() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    folder = resources.files("verifier.data.valuesets")
    for entry in folder.iterdir():
        if not entry.name.endswith(".json"):
            continue
        data = json.loads(entry.read_text("utf-8"))
        set_id, values = data.get("valueSetId"), data.get("valueSetValues")
        if isinstance(set_id, str) and isinstance(values, dict) and "encoding" not in set_id:
            out[set_id] = tuple(sorted(values))
    return out


def external_parameters(
    *,
    at: dt.datetime,
    country: str,
    value_sets: Mapping[str, Sequence[str]],
    exp: Any = None,
    iat: Any = None,
    issuer_country: str | None = None,
    kid: bytes | None = None,
    region: str = "",
) -> dict[str, Any]:
    """The ``external`` object of the data context (module docstring, point 2)."""
    out: dict[str, Any] = {
        "validationClock": iso_clock(at),
        "valueSets": {k: list(v) for k, v in value_sets.items()},
        "countryCode": country,
        "exp": _utc_date(exp),
        "iat": _utc_date(iat),
        "issuerCountryCode": issuer_country or "",
        "region": region,
    }
    if kid is not None:
        out["kid"] = base64.b64encode(kid).decode("ascii")
    return out


# --------------------------------------------------------------------------
# evaluation


@dataclass(frozen=True, kw_only=True)
class RuleResult:
    """The outcome of one rule, JSON-ready (:meth:`to_dict`)."""

    rule: Rule
    result: Outcome
    reason: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.identifier,
            "country": self.rule.country,
            "version": self.rule.version,
            "certificate_type": str(self.rule.certificate_type),
            "result": str(self.result),
            "reason": self.reason,
            "message": self.message,
            "description": {
                lang: self.rule.descriptions[lang]
                for lang in RESULT_LANGS
                if lang in self.rule.descriptions
            },
            "affected_fields": list(self.rule.affected_fields),
        }


def _compatible(rule: Rule, dcc_version: str | None) -> tuple[str, str] | None:
    """Why the rule cannot run on this DCC (EU ``isCompatibleVersion``), or None."""
    if rule.engine != certlogic.ENGINE:
        return "engine_unsupported", f"engine {rule.engine[:40]!r} is not {certlogic.ENGINE}"
    engine = _version(rule.engine_version)
    if engine is None or engine > ENGINE_VERSION:
        return (
            "engine_unsupported",
            f"rule needs CertLogic {rule.engine_version[:20]}, this verifier has {certlogic.SPEC_VERSION}",
        )
    schema, ver = _version(rule.schema_version), _version(dcc_version or "")
    if schema is None or ver is None or ver[0] != schema[0] or ver < schema:
        return (
            "schema_version_mismatch",
            f"rule is for DCC schema {rule.schema_version[:20]}, certificate is {str(dcc_version)[:20]}",
        )
    return None


def evaluate_rule(
    rule: Rule,
    data: Mapping[str, Any],
    *,
    dcc_version: str | None = None,
    check_versions: bool = True,
) -> RuleResult:
    """Run one rule on ``{"payload": ..., "external": ...}``; never raises."""
    if check_versions:
        problem = _compatible(rule, dcc_version)
        if problem is not None:
            return RuleResult(rule=rule, result=Outcome.OPEN, reason=problem[0], message=problem[1])
    try:
        value = certlogic.evaluate(rule.logic, data)
    except CertLogicError as err:
        return RuleResult(rule=rule, result=Outcome.OPEN, reason=err.reason, message=err.message)
    except (ValueError, OverflowError, RecursionError) as err:  # absurd data; fail closed
        message = f"{type(err).__name__} while evaluating"
        return RuleResult(
            rule=rule, result=Outcome.OPEN, reason="evaluation_error", message=message
        )
    if value is True:
        return RuleResult(rule=rule, result=Outcome.PASSED)
    if value is False:
        return RuleResult(
            rule=rule, result=Outcome.FAILED, reason="rule_failed", message=rule.description("en")
        )
    return RuleResult(
        rule=rule,
        result=Outcome.OPEN,
        reason="not_boolean",
        message=f"rule evaluated to {certlogic.show(value)}, not a boolean",
    )


@dataclass(frozen=True, kw_only=True)
class RulesReport:
    """All rule results for one certificate; ``passed`` only if some rule ran and all passed."""

    country: str
    profile: str | None
    certificate_type: CertificateType | None
    results: tuple[RuleResult, ...]

    @property
    def passed(self) -> bool:
        return self.refusal is None and all(r.result is Outcome.PASSED for r in self.results)

    @property
    def refusal(self) -> str | None:
        """``no_rules`` when no rule of the certificate's own type applied.

        General rules alone say nothing about whether a vaccination, test or
        recovery is accepted, so they never make a pass by themselves: a
        profile without test rules refuses test certificates.
        """
        specific = self.certificate_type
        if specific is None or not any(r.rule.certificate_type == specific for r in self.results):
            return "no_rules"
        return None

    def to_list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.results]


def check_certificate(
    rule_set: RuleSet,
    dcc: Mapping[str, Any],
    *,
    country: str,
    at: dt.datetime,
    profile: str | None = None,
    exp: Any = None,
    iat: Any = None,
    issuer_country: str | None = None,
    kid: bytes | None = None,
    sets: Mapping[str, Sequence[str]] | None = None,
) -> RulesReport:
    """Select and run the rules for a decoded DCC (JSON view); never raises on the DCC.

    Raises :class:`ConfigError` only for an unknown ``profile``.
    """
    chosen = rule_set.profile(country, profile) if profile is not None else None
    cert_type = certificate_type_of(dcc)
    rules = select_rules(
        rule_set.rules, country=country, certificate_type=cert_type, at=at, profile=chosen
    )
    data = {
        "payload": dcc,
        "external": external_parameters(
            at=at,
            country=country,
            value_sets=value_sets() if sets is None else sets,
            exp=exp,
            iat=iat,
            issuer_country=issuer_country,
            kid=kid,
        ),
    }
    version = dcc.get("ver") if isinstance(dcc.get("ver"), str) else None
    results = tuple(evaluate_rule(r, data, dcc_version=version) for r in rules)
    return RulesReport(
        country=country, profile=profile, certificate_type=cert_type, results=results
    )
