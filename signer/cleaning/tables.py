"""Rule tables of the checks, loaded once from templates/ (data, not code).

    >>> from signer.cleaning.tables import load_tables
    >>> t = load_tables()
    >>> t.provinces["079"], t.canonical_vaccine("vắc xin Vero Cell"), t.min_days("Pfizer")
    ('Hồ Chí Minh', 'Sinopharm', 21)

- ``templates/provinces.json``: the 63 CCCD province codes (Circular 07/2016/TT-BCA).
- ``templates/dose-intervals.json``: minimum days between doses, each with its
  source (the product's label or the Ministry's guidance), the booster minimum
  and the minimum applied to an unknown product (never 0).
- ``templates/reason-codes.json``: reason codes with Vietnamese/English labels.
- ``templates/vaccines.json`` (the signer's value-set mapping): known products,
  recognised by canonical name, alias, EU product code (``mp``, e.g.
  ``EU/1/21/1529``) or display name. Without it the products of the interval
  table are known.

Loading checks the files (a broken table is a :class:`ConfigError`, raised
before any record is read). ``fingerprint`` hashes all of them: the results
store re-checks every record when a rule table changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from verifier.errors import ConfigError

from .text import fold

CATEGORIES = ("row", "id", "personal", "dose", "soft")  # soft: listed for correction, still verified
_VACCINE_NOISE = re.compile(r"vac[\s-]*xin|vaccine|[^a-z0-9]")


@dataclass(frozen=True)
class Reason:
    code: str
    category: str  # one of CATEGORIES
    vi: str
    en: str
    fix_vi: str = ""  # how to correct it, for the commune police
    fix_en: str = ""


@dataclass(frozen=True)
class Tables:
    provinces: dict[str, str]  # CCCD code -> short name
    reasons: dict[str, Reason]
    intervals: dict[str, int]  # canonical product -> minimum days
    interval_sources: dict[str, str]  # canonical product -> where its minimum comes from
    booster_min_days: int
    id_placeholders: frozenset[str]  # folded texts that stand for "no ID" (reason-codes.json)
    unknown_min_days: int  # minimum after a dose of an unrecognised product (never 0)
    vaccine_aliases: dict[str, str]  # vaccine_key(alias) -> canonical product
    fingerprint: str
    _cache: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    @property
    def known_vaccines(self) -> dict[str, str | None]:
        """The names :meth:`canonical_vaccine` answered already, with its answers (read-only: a cache)."""
        return self._cache

    def canonical_vaccine(self, name: str) -> str | None:
        """The canonical product for a name or alias; None when unknown."""
        cache = self._cache
        if name in cache:
            return cache[name]
        if len(cache) > 4096:
            cache.clear()
        found = cache[name] = self.vaccine_aliases.get(vaccine_key(name))
        return found

    def hard(self, codes: tuple[str, ...]) -> bool:
        """Whether any of the codes blocks verification (every category but ``soft``)."""
        if not codes:
            return False
        reasons = self.reasons
        return any(reasons[c].category != "soft" for c in codes)

    def min_days(self, product: str | None) -> int:
        """Minimum days after a dose of ``product``; :attr:`unknown_min_days` when it is not known."""
        if product is None:
            return self.unknown_min_days
        return self.intervals.get(product, self.unknown_min_days)


def vaccine_key(name: str) -> str:
    """Matching form of a vaccine name, as templates/vaccines.json describes."""
    return _VACCINE_NOISE.sub("", fold(name))


def _read(name: str) -> tuple[Any, bytes]:
    try:
        raw = resources.files("templates").joinpath(name).read_bytes()
    except (OSError, FileNotFoundError) as err:
        raise ConfigError(f"templates/{name}: {err}") from None
    try:
        return json.loads(raw), raw
    except ValueError as err:
        raise ConfigError(f"templates/{name}: not valid JSON: {err}") from None


def _optional(name: str) -> tuple[Any, bytes] | None:
    try:
        if not resources.files("templates").joinpath(name).is_file():
            return None
    except OSError:
        return None
    return _read(name)


@lru_cache(maxsize=1)
def load_tables() -> Tables:
    """Load and check every rule table (cached: the files are package data)."""
    digest = hashlib.sha256()
    try:
        prov, raw = _read("provinces.json")
        digest.update(raw)
        provinces = {p["code"]: p["name"] for p in prov["provinces"]}
        if len(provinces) != 63 or not all(re.fullmatch(r"\d{3}", c) for c in provinces):
            raise ConfigError("templates/provinces.json: expected 63 three-digit codes")

        rc, raw = _read("reason-codes.json")
        digest.update(raw)
        reasons = {}
        for code, r in rc["codes"].items():
            if r["category"] not in CATEGORIES:
                raise ConfigError(f"templates/reason-codes.json: {code}: bad category")
            reasons[code] = Reason(code, r["category"], r["vi"], r["en"], r.get("fix_vi", ""), r.get("fix_en", ""))
        placeholders = frozenset(" ".join(fold(str(p)).split()) for p in rc["id_placeholders"])

        di, raw = _read("dose-intervals.json")
        digest.update(raw)
        intervals = {name: int(v["min_days"]) for name, v in di["products"].items()}
        sources = {name: str(v["source"]) for name, v in di["products"].items()}
        booster = int(di["booster_min_days"])
        unknown = int(di["unknown_product_min_days"])
        if not all(sources.values()) or min([booster, unknown, *intervals.values()]) <= 0:
            raise ConfigError("templates/dose-intervals.json: every minimum must be > 0 and have a source")

        aliases: dict[str, str] = {}
        vac = _optional("vaccines.json")
        if vac is not None:
            digest.update(vac[1])
            for canon, entry in vac[0]["vaccines"].items():
                aliases[vaccine_key(canon)] = canon
                names = [*entry.get("aliases", []), entry.get("mp"), entry.get("name_en"), entry.get("name_vi")]
                for alias in names:
                    key = vaccine_key(alias) if isinstance(alias, str) else ""
                    if key and aliases.setdefault(key, canon) != canon:
                        raise ConfigError(f"templates/vaccines.json: {alias!r} names two products")
        else:
            aliases = {vaccine_key(name): name for name in intervals}
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ConfigError(f"cleaning tables in templates/: {err!r}") from None
    missing = sorted(set(aliases.values()) - set(intervals))
    if missing:
        raise ConfigError(f"templates/dose-intervals.json lacks products: {', '.join(missing)}")
    return Tables(
        provinces=provinces,
        reasons=reasons,
        intervals=intervals,
        interval_sources=sources,
        booster_min_days=booster,
        id_placeholders=placeholders,
        unknown_min_days=unknown,
        vaccine_aliases=aliases,
        fingerprint=digest.hexdigest()[:16],
    )
