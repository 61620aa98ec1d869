"""Record -> EU DCC 1.3.x vaccination payload (the JSON inside the hcert claim).

    >>> from signer.payload import build_dcc, load_vaccines
    >>> from signer.records import Dose, Record
    >>> rec = Record(record_id="R1", full_name="Nguyễn Thị Thanh Hương",
    ...              date_of_birth="1985-03-14", sex="F", nationality="VN",
    ...              id_number="079185001234",
    ...              doses=(Dose("2021-08-02", "AstraZeneca", "ABV5811", 1, 2),
    ...                     Dose("2021-10-25", "Vaxzevria", "ABX1504", 2, 2)))
    >>> dcc = build_dcc(rec, uvci="URN:UVCI:01:NL:187/37512422923#Z",
    ...                 issuer="Ministry of Health of Viet Nam", vaccines=load_vaccines())
    >>> dcc["nam"]["gnt"], dcc["v"][0]["mp"], dcc["v"][0]["dn"]
    ('THI<THANH<HUONG', 'EU/1/21/1529', 2)

The certificate holds one ``v`` entry, the latest dose (schema ``v``:
``maxItems`` 1; eHN guidelines: the latest dose supersedes earlier ones).
The citizen ID, sex, address and vaccination site never enter the payload
(Decision 5772/QĐ-BYT; the DCC schema has no field for them anyway).

Codes: ``tg`` 840539006 (COVID-19, disease-agent-targeted value set);
``vp``/``mp``/``ma`` from ``templates/vaccines.json`` (see its note). Every
payload is validated against the official schema (the verifier's copy in
``verifier/data/schema``, compiled once) before it is signed; problems raise
:class:`verifier.errors.InputError` with a one-line reason.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs

from signer.names import name_group
from signer.records import Dose, Record
from verifier.errors import ConfigError, InputError
from verifier.schema import schema as verifier_schema

DCC_VERSION = "1.3.0"
#: SNOMED CT "COVID-19" (disease-agent-targeted value set).
TG_COVID19 = "840539006"
#: DCC schema ``issuer``/``certificate_id`` maxLength.
MAX_ISSUER = 80

_DOB = re.compile(r"(19|20)[0-9]{2}(-[0-9]{2}){0,2}")  # ASCII digits: \d would take any script's
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: No COVID-19 vaccine was given before this date (first EUA: December 2020).
EARLIEST_DOSE = "2020-01-01"


# --------------------------------------------------------------------------
# Vaccine table (templates/vaccines.json)


@dataclass(frozen=True)
class Vaccine:
    """One product with its EU DCC codes."""

    key: str  # canonical name in records, e.g. "AstraZeneca"
    mp: str  # vaccine-medicinal-product
    ma: str  # vaccine-mah-manf
    vp: str  # vaccine-prophylaxis (SNOMED CT)
    name_en: str
    name_vi: str
    encoding_instruction: str  # entry name in vaccine-encoding-instructions.json
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class VaccineTable:
    """Vaccines by canonical name, with alias lookup."""

    vaccines: Mapping[str, Vaccine]
    by_alias: Mapping[str, Vaccine]

    def lookup(self, name: str) -> Vaccine | None:
        """The vaccine a record names (canonical name or alias), or None."""
        hit = self.vaccines.get(name)
        return hit if hit is not None else self.by_alias.get(vaccine_key(name))


_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_FILLER_WORDS = re.compile(r"vacxin|vaccine")


def vaccine_key(name: str) -> str:
    """Lookup form of a vaccine name: no diacritics, case, punctuation, 'vắc xin'."""
    text = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return _FILLER_WORDS.sub("", _NOT_ALNUM.sub("", text))


def parse_vaccines(data: Mapping[str, Any], *, where: str = "vaccines.json") -> VaccineTable:
    """Build the table from the JSON document; raises ConfigError if malformed."""
    try:
        vaccines: dict[str, Vaccine] = {}
        by_alias: dict[str, Vaccine] = {}
        for key, entry in data["vaccines"].items():
            vac = Vaccine(
                key=key,
                mp=str(entry["mp"]),
                ma=str(entry["ma"]),
                vp=str(entry["vp"]),
                name_en=str(entry["name_en"]),
                name_vi=str(entry["name_vi"]),
                encoding_instruction=str(entry["encoding_instruction"]),
                aliases=tuple(str(a) for a in entry.get("aliases", ())),
            )
            vaccines[key] = vac
            for alias in (key, *vac.aliases):
                norm = vaccine_key(alias)
                other = by_alias.get(norm)
                if not norm or (other is not None and other is not vac):
                    raise ConfigError(f"{where}: alias {alias!r} is empty or ambiguous")
                by_alias[norm] = vac
    except (KeyError, TypeError, AttributeError) as err:
        raise ConfigError(f"{where}: malformed vaccine table ({err!r})") from None
    return VaccineTable(vaccines=vaccines, by_alias=by_alias)


@lru_cache(maxsize=4)
def load_vaccines(path: str | None = None) -> VaccineTable:
    """Load ``templates/vaccines.json`` (or another file), once per process."""
    try:
        if path is None:
            raw = resources.files("templates").joinpath("vaccines.json").read_text("utf-8")
        else:
            raw = Path(path).read_text("utf-8")
        data = json.loads(raw)
    except (OSError, ValueError) as err:
        raise ConfigError(f"vaccine table {path or 'templates/vaccines.json'}: {err}") from None
    return parse_vaccines(data, where=path or "templates/vaccines.json")


# --------------------------------------------------------------------------
# Schema


@lru_cache(maxsize=1)
def dcc_validator() -> Any:
    """The compiled schema validator (compiled once per process).

    The schema is the verifier's copy of the official one
    (:func:`verifier.schema.schema`), so signer and verifier never disagree
    on the version. Unlike the verifier, the signer also asserts ``format``
    (``dt`` must be a real date): we never sign what a stricter verifier
    could reject.
    """
    try:
        return jsonschema_rs.validator_for(verifier_schema(), validate_formats=True)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load the DCC schema: {err}") from None


def validate_dcc(dcc: Mapping[str, Any]) -> None:
    """Raise :class:`InputError` unless ``dcc`` is valid against the DCC schema."""
    validator = dcc_validator()
    if validator.is_valid(dcc):
        return
    problems = sorted(
        f"{'/'.join(str(p) for p in err.instance_path) or '(root)'}: {err.message}"
        for err in validator.iter_errors(dcc)
    )
    raise InputError("payload not valid against the DCC schema: " + "; ".join(problems[:3]))


# --------------------------------------------------------------------------
# Record checks


@lru_cache(maxsize=65536)
def check_date_of_birth(value: str) -> str:
    """DCC ``dob``: YYYY, YYYY-MM or YYYY-MM-DD in 1900-2099, a real date.

    Cached (pure; at most about 73,000 valid values); errors are not cached.
    """
    if not value:
        raise InputError("date of birth is missing")
    if not _DOB.fullmatch(value):
        raise InputError("date of birth is not YYYY, YYYY-MM or YYYY-MM-DD (1900-2099)")
    parts = [int(p) for p in value.split("-")]
    try:
        dt.date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except ValueError:
        raise InputError("date of birth is not a real date") from None
    return value


def check_dose_date(value: str, index: int) -> str:
    """A dose date: a real YYYY-MM-DD date, not before 2020."""
    if value in _GOOD_DOSE_DATES:
        return value
    if not _DATE.fullmatch(value):
        raise InputError(f"dose {index}: date {value!r} is not YYYY-MM-DD")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"dose {index}: date {value!r} is not a real date") from None
    if value < EARLIEST_DOSE:
        raise InputError(f"dose {index}: date {value} is before any COVID-19 vaccine")
    if len(_GOOD_DOSE_DATES) < 65536:
        _GOOD_DOSE_DATES.add(value)
    return value


#: Dose dates that passed :func:`check_dose_date` (a few thousand days at most;
#: the check runs for every dose of every record signed).
_GOOD_DOSE_DATES: set[str] = set()


def latest_dose(record: Record) -> tuple[int, Dose]:
    """(1-based index, dose) of the most recent dose: latest date, then highest
    number, then the first listed. Every dose date must pass :func:`check_dose_date`."""
    doses = record.doses
    if not doses:
        raise InputError("record has no doses")
    good = _GOOD_DOSE_DATES
    for i, dose in enumerate(doses, start=1):
        if dose.date not in good:
            check_dose_date(dose.date, i)
    best, best_key = 0, (doses[0].date, doses[0].dose_number)
    for i in range(1, len(doses)):
        key = (doses[i].date, doses[i].dose_number)
        if key > best_key:
            best, best_key = i, key
    return best + 1, doses[best]


def _check_dose(
    dose: Dose, index: int, vaccines: VaccineTable, dob: str, today: dt.date | str | None
) -> Vaccine:
    vaccine = vaccines.lookup(dose.vaccine)
    if vaccine is None:
        raise InputError(f"dose {index}: unknown vaccine {dose.vaccine!r} (see templates/vaccines.json)")
    if dose.dose_number < 1:
        raise InputError(f"dose {index}: dose number is missing")
    if dose.series_doses < 1:
        raise InputError(f"dose {index}: number of doses in the series is missing")
    if dose.dose_number > dose.series_doses:
        raise InputError(
            f"dose {index}: dose number {dose.dose_number} exceeds the series total {dose.series_doses}"
        )
    if dose.date < dob:
        raise InputError(f"dose {index}: date {dose.date} is before the date of birth")
    if today is not None and dose.date > (today if isinstance(today, str) else today.isoformat()):
        raise InputError(f"dose {index}: date {dose.date} is in the future")
    return vaccine


def _nationality(value: str) -> str:
    """The record's nationality as ISO 3166-1 alpha-2 ("" = VN, docs/records.md).

    Exports write alpha-2 (``VN``) or alpha-3 (``VNM``, ``KOR``); alpha-3 is
    mapped through templates/countries.json. It decides which word is the
    family name (:mod:`signer.names`): a value such as "Việt Nam" would
    silently swap ``fn`` and ``gn``, so anything else is refused.
    """
    known = _GOOD_NATIONALITIES.get(value)
    if known is not None:
        return known
    if len(value) == 3 and value.isascii() and value.isupper():
        alpha2 = _alpha3_to_alpha2().get(value)
        if alpha2 is None:
            raise InputError("nationality is not an ISO 3166-1 alpha-3 code such as VNM")
    elif len(value) == 2 and value.isascii() and value.isalpha() and value.isupper():
        alpha2 = value
    else:
        raise InputError("nationality is not an ISO 3166-1 code such as VN or VNM")
    _GOOD_NATIONALITIES[value] = alpha2  # at most 26 x 26 + 249 values
    return alpha2


_GOOD_NATIONALITIES = {"": "VN", "VN": "VN", "VNM": "VN"}


@lru_cache(maxsize=1)
def _alpha3_to_alpha2() -> dict[str, str]:
    raw = resources.files("templates").joinpath("countries.json").read_text("utf-8")
    table: dict[str, str] = json.loads(raw)["alpha3_to_alpha2"]
    return table


class DccBuilder:
    """Builds payloads for one issuer (:func:`build_dcc` with the issuer's
    settings checked and bound once: the signer's per-record path)."""

    __slots__ = ("country", "issuer", "latest_only", "vaccines")

    def __init__(
        self, *, issuer: str, vaccines: VaccineTable, country: str = "VN", latest_only: bool = True
    ) -> None:
        if not issuer or len(issuer) > MAX_ISSUER:
            raise InputError(f"issuer name must have 1 to {MAX_ISSUER} characters")
        self.issuer = issuer
        self.vaccines = vaccines
        self.country = country
        self.latest_only = latest_only

    def build(self, record: Record, uvci: str, today: str | None) -> dict[str, Any]:
        """The payload of ``record`` (not schema-validated; :func:`build_dcc`
        says what is checked). ``today``: ISO date, or None."""
        dob = check_date_of_birth(record.date_of_birth)
        index, dose = latest_dose(record)
        vaccines = self.vaccines
        if not self.latest_only:
            for i, other in enumerate(record.doses, start=1):
                _check_dose(other, i, vaccines, dob, today)
        vaccine = _check_dose(dose, index, vaccines, dob, today)
        # Keys in CBOR canonical order (RFC 8949 4.2.3: shorter first, then
        # bytewise), so that plain cbor2.dumps already gives the canonical bytes.
        return {
            "v": [
                {
                    "ci": uvci,
                    "co": self.country,
                    "dn": dose.dose_number,
                    "dt": dose.date,
                    "is": self.issuer,
                    "ma": vaccine.ma,
                    "mp": vaccine.mp,
                    "sd": dose.series_doses,
                    "tg": TG_COVID19,
                    "vp": vaccine.vp,
                }
            ],
            "dob": dob,
            "nam": name_group(record.full_name, nationality=_nationality(record.nationality)),
            "ver": DCC_VERSION,
        }


def build_dcc(
    record: Record,
    *,
    uvci: str,
    issuer: str,
    vaccines: VaccineTable,
    latest_only: bool = True,
    country: str = "VN",
    today: dt.date | str | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """The EU DCC 1.3.0 vaccination payload for ``record`` (pure function).

    ``v`` holds the latest dose only (schema: exactly one entry). With
    ``latest_only=True`` only that dose's content is checked; with
    ``latest_only=False`` every dose of the record must pass the same
    checks (known vaccine, dose/series numbers, dates), as for a passport
    that lists the whole history. ``today`` (optional; a date or its ISO
    form) rejects dose dates in the future. ``validate=False`` skips the
    schema validation (only for callers that validate themselves).
    """
    builder = DccBuilder(issuer=issuer, vaccines=vaccines, country=country, latest_only=latest_only)
    today_iso = today if today is None or isinstance(today, str) else today.isoformat()
    dcc = builder.build(record, uvci, today_iso)
    if validate:
        validate_dcc(dcc)
    return dcc
