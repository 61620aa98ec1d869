"""Vaccination records: the model and streaming readers for JSON Lines and CSV.

    >>> from signer.records import read_records, Record
    >>> for item in read_records("examples/records.jsonl"):   # doctest: +SKIP
    ...     if isinstance(item, Record): ...
    ...     else: print(item.line, item.reason)               # a RowProblem

One person per record. Reading checks structure only (columns, numbers,
encoding); what the values mean is checked by :mod:`signer.cleaning` and,
for what the certificate needs, by :mod:`signer.payload`. The format is
documented in docs/records.md with examples in examples/.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import logging
import operator
import os
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from verifier.errors import ConfigError

log = logging.getLogger("signer.records")

FIELDS = (
    "record_id",
    "full_name",
    "date_of_birth",
    "sex",
    "nationality",
    "id_number",
    "province",
    "commune",
)
DOSE_FIELDS = ("date", "vaccine", "lot", "dose_number", "series_doses", "site")
#: Contact data read with the record but not part of its content (:data:`FIELDS`):
#: not in the fingerprint, so a changed phone number never re-issues a certificate.
CONTACT_FIELDS = ("phone",)
#: A line (JSON Lines) or physical CSV line longer than this is a bad row
#: (``line_too_long``), skipped in constant memory: it is never held whole.
MAX_LINE_BYTES = 1 << 20
#: A field longer than this (in characters) is a bad row (``field_too_long``):
#: names, IDs, dates, products, lots and sites are far shorter.
MAX_FIELD_CHARS = 1000


@dataclass(frozen=True)
class Dose:
    date: str  # ISO 8601 YYYY-MM-DD
    vaccine: str  # key of templates/vaccines.json, e.g. "AstraZeneca"
    lot: str = ""
    dose_number: int = 0  # dn; 0 = unknown
    series_doses: int = 0  # sd; 0 = unknown
    site: str = ""  # vaccination site (health facility)


@dataclass(frozen=True)
class Record:
    record_id: str
    full_name: str
    date_of_birth: str  # YYYY, YYYY-MM or YYYY-MM-DD
    sex: str  # "M", "F", "X" or "" (unknown)
    nationality: str  # ISO 3166-1 alpha-2, "VN" for citizens
    id_number: str  # CCCD (12 digits), CMND (9), passport no. for foreigners; "" if missing
    doses: tuple[Dose, ...] = ()
    province: str = ""
    commune: str = ""
    line: int = 0  # line in the source file (1-based), for messages
    #: Set by the registry checks (signer.cleaning): the record's fingerprint at
    #: the time it passed them. "" = not verified. The signer signs a record only
    #: when this equals :func:`record_fingerprint` of the record as read.
    verified: str = ""
    #: Rows of the export this record was read from: 1, or its dose rows when the
    #: export has one row per dose (not part of the content or the fingerprint).
    rows: int = 1
    #: Contact data, not content (not in :data:`FIELDS` nor the fingerprint): the
    #: mobile number in E.164 (:func:`normalise_phone`), "" when none or unusable.
    #: Personal data: never logged, never in an error report.
    phone: str = ""
    #: A phone number was given but is not usable (it was dropped: ``phone`` is "").
    #: Set by the readers so that the checks can count such records; not written out.
    phone_unusable: bool = False

    def to_json(self) -> dict[str, Any]:
        """The JSON Lines form (inverse of :func:`record_from_mapping`); ``phone`` only when known."""
        out: dict[str, Any] = {name: getattr(self, name) for name in FIELDS}
        if self.phone:
            out["phone"] = self.phone
        out["doses"] = [{name: getattr(dose, name) for name in DOSE_FIELDS} for dose in self.doses]
        if self.verified:
            out["verified"] = self.verified
        return out


#: The readers' hot path builds a person's Dose and Record objects without the frozen dataclasses'
#: ``__init__`` (one ``object.__setattr__`` per field): the same objects, about twice as fast to make.
#: tests/cleaning/test_records_fast.py checks that they equal those of the constructors.
_new = object.__new__
_set = object.__setattr__


def _make_dose(date: str, vaccine: str, lot: str, dose_number: int, series_doses: int, site: str) -> Dose:
    """``Dose(date, vaccine, lot, dose_number, series_doses, site)``, faster (the fields as given)."""
    dose = _new(Dose)
    _set(dose, "__dict__", {"date": date, "vaccine": vaccine, "lot": lot, "dose_number": dose_number,
                            "series_doses": series_doses, "site": site})  # fmt: skip
    return dose


def _make_record(record_id: str, full_name: str, date_of_birth: str, sex: str, nationality: str, id_number: str,
                 doses: tuple[Dose, ...], province: str, commune: str, line: int, rows: int, phone: str,
                 phone_unusable: bool) -> Record:  # fmt: skip
    """``Record(...)`` with these fields (``verified`` ""), faster."""
    rec = _new(Record)
    _set(rec, "__dict__", {"record_id": record_id, "full_name": full_name, "date_of_birth": date_of_birth, "sex": sex,
                           "nationality": nationality, "id_number": id_number, "doses": doses, "province": province,
                           "commune": commune, "line": line, "verified": "", "rows": rows, "phone": phone,
                           "phone_unusable": phone_unusable})  # fmt: skip
    return rec


#: record_fingerprint's fast path: attribute getters built once (this runs
#: for every record the signer signs).
_fp_values = operator.attrgetter(*FIELDS)
_dose_values = operator.attrgetter(*DOSE_FIELDS)
#: The text fields and the number fields of a dose, in the fingerprint's order.
_DOSE_TEXT = ("date", "vaccine", "lot", "site")
_DOSE_NUMBERS = ("dose_number", "series_doses")
_dose_text = operator.attrgetter(*_DOSE_TEXT)
_dose_numbers = operator.attrgetter(*_DOSE_NUMBERS)
_FP_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_sha256 = hashlib.sha256


def fingerprint_form(record: Record) -> bytes:
    """The bytes hashed by :func:`record_fingerprint` (see there for the format)."""
    texts = list(_fp_values(record))
    numbers: list[int] = []
    doses = record.doses
    for dose in doses:
        texts += _dose_text(dose)
        numbers += _dose_numbers(dose)
    try:
        content = "".join(texts)  # TypeError unless every text field is a str
        header = bytes((len(doses), *numbers, *map(len, texts)))  # ValueError above 255
    except (TypeError, ValueError):
        as_json: dict[str, Any] = dict(zip(FIELDS, _fp_values(record), strict=True))
        as_json["doses"] = [list(_dose_values(d)) for d in doses]
        return b"J" + _FP_ENCODER.encode(as_json).encode("utf-8", "surrogatepass")
    return b"B" + header + content.encode("utf-8", "surrogatepass")


def record_fingerprint(record: Record) -> str:
    """SHA-256 (hex) over the record's content, without ``line`` and ``verified``.

    The checks (:mod:`signer.cleaning`) stamp it into ``verified`` and key
    their results store by it; editing any field afterwards makes the stamp
    stale, and the signer then treats the record as unverified.

    Hashed bytes (:func:`fingerprint_form`, format "B", since 2026-11; the
    earlier JSON-text stamps are no longer current): ``b"B"``, then one byte
    each for the number of doses, each dose's ``dose_number`` and
    ``series_doses``, and the length in code points of each text field
    (:data:`FIELDS` in order, then per dose ``date``, ``vaccine``, ``lot``,
    ``site``), then those text fields concatenated in the same order, UTF-8
    (lone surrogates as ``surrogatepass``). The header has a fixed size for a
    given number of doses and the lengths split the text, so the record's
    content can be read back from the bytes: distinct records never share
    them (tests/signer/test_fingerprint.py parses them back). A record that
    does not fit (a count, number or length above 255, or a field of another
    type) is hashed as ``b"J"`` + the compact key-sorted JSON text
    (``ensure_ascii=False``) of :data:`FIELDS` plus ``doses`` (each the list of
    its :data:`DOSE_FIELDS` values), UTF-8; the first byte keeps the two
    forms apart.
    """
    return _sha256(fingerprint_form(record)).hexdigest()


def is_verified(record: Record) -> bool:
    """True when the record carries a current verification stamp."""
    return bool(record.verified) and record.verified == record_fingerprint(record)


@dataclass(frozen=True)
class RowProblem:
    """A row that could not be read; the run goes on without it."""

    line: int
    reason: str  # machine-readable: bad_json, bad_encoding, column_count, bad_number, ...
    message: str
    record_id: str = ""


@dataclass(frozen=True)
class _ColumnMap:
    fields: Mapping[str, tuple[str, ...]]
    dose: Mapping[str, tuple[str, ...]]  # aliases with "{i}": one person per row, doses side by side
    sex_values: Mapping[str, str]
    #: aliases without "{i}": one row per dose (rows of one person grouped)
    dose_row: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: the vaccination site's province/commune (one row per dose): the record's place when
    #: the export has no residence columns
    site_place: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    where: str = "templates/columns.json"


def _norm_header(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


def _aliases(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(a, str) and a.strip() for a in value):
        raise ConfigError(f"column mapping {where}: {key!r} must be a list of column names")
    return tuple(value)


@lru_cache(maxsize=4)
def load_column_map(path: str | None = None) -> _ColumnMap:
    """Load templates/columns.json (or another mapping file), checked before any row is read.

    Dose aliases with ``{i}`` name the columns of dose *i* in a one-person-per-row
    export; dose aliases without it name the columns of a one-row-per-dose export.
    Raises :class:`ConfigError` for a mapping that cannot work.
    """
    where = path or "templates/columns.json"
    try:
        if path is None:
            raw = resources.files("templates").joinpath("columns.json").read_text("utf-8")
        else:
            raw = Path(path).read_text("utf-8")
        data = json.loads(raw)
    except (OSError, ValueError) as err:
        raise ConfigError(f"column mapping {where}: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("dose"), dict):
        raise ConfigError(f"column mapping {where}: expected an object with the record fields and 'dose'")
    fields = {k: _aliases(data, k, where) for k in FIELDS}
    fields.update({k: _aliases(data, k, where) for k in CONTACT_FIELDS if k in data})  # optional
    dose: dict[str, tuple[str, ...]] = {}
    dose_row: dict[str, tuple[str, ...]] = {}
    for k in DOSE_FIELDS:
        for alias in _aliases(data["dose"], k, where):
            n = alias.count("{i}")
            if n > 1 or ("{" in alias.replace("{i}", "")):
                raise ConfigError(f"column mapping {where}: dose {k!r}: {alias!r} (use {{i}} once for the dose index)")
            (dose if n else dose_row).setdefault(k, ())
            if n:
                dose[k] += (alias,)
            else:
                dose_row[k] += (alias,)
    for k, aliases in fields.items():
        if any("{i}" in a for a in aliases):
            raise ConfigError(f"column mapping {where}: {k!r}: '{{i}}' is only for dose columns")
    site = data.get("site_place", {})
    if not isinstance(site, dict) or set(site) - {"province", "commune"}:
        raise ConfigError(f"column mapping {where}: 'site_place' takes 'province' and 'commune'")
    site_place = {k: _aliases(site, k, where) for k in site}
    sex = data.get("sex_values", {})
    if not isinstance(sex, dict):
        raise ConfigError(f"column mapping {where}: 'sex_values' must be an object")
    sex_values = {_norm_header(alias): canon for canon, aliases in sex.items() for alias in _aliases(sex, canon, where)}
    return _ColumnMap(fields=fields, dose=dose, sex_values=sex_values, dose_row=dose_row,
                      site_place=site_place, where=where)  # fmt: skip


def normalize_sex(value: str, column_map: _ColumnMap | None = None) -> str | None:
    """Canonical sex code, "" for empty, None for an unknown spelling."""
    cmap = column_map or load_column_map()
    key = (id(cmap), value)
    try:
        return _SEX_CACHE[key]
    except KeyError:
        pass
    text = _norm_header(value)
    found = cmap.sex_values.get(text) if text else ""
    if len(_SEX_CACHE) < 1000:  # a handful of spellings; bounded anyway
        _SEX_CACHE[key] = found
    return found


_SEX_CACHE: dict[tuple[int, str], str | None] = {}

#: The 9 digits after +84 of a Vietnamese mobile number (03x, 05x, 07x, 08x, 09x since 2018).
_VN_MOBILE = re.compile(r"[35789][0-9]{8}")
#: E.164 after the "+": a country code (no leading 0) and the number, 8-15 digits in all.
_E164_DIGITS = re.compile(r"[1-9][0-9]{7,14}")
_PHONE_PUNCTUATION = str.maketrans("", "", ".-()")


def normalise_phone(text: str) -> str:
    """A mobile number in E.164 (``+84`` and 9 digits for Viet Nam), or "" when unusable.

    Pure: the citizen portal sends one-time codes to this number, so anything
    doubtful is refused ("") rather than guessed (the portal then falls back
    to a claim code). Spaces, dots, dashes and parentheses are separators.

    >>> [normalise_phone(t) for t in ("0912 345 678", "0912.345.678", "+84912345678", "84912345678")]
    ['+84912345678', '+84912345678', '+84912345678', '+84912345678']
    >>> normalise_phone("(+84) 0912-345-678"), normalise_phone("912345678")  # a 0 too many; Excel dropped the 0
    ('+84912345678', '+84912345678')
    >>> normalise_phone("+44 20 7946 0958"), normalise_phone("0044 20 7946 0958")  # another country: E.164
    ('+442079460958', '+442079460958')
    >>> [normalise_phone(t) for t in ("", "-", "091234567", "0212345678", "+84 24 3825 1234", "0912345678 ext 2",
    ...                               "0912345678/0987654321", "+123", "+0912345678", "９１２３４５６７８")]
    ['', '', '', '', '', '', '', '', '', '']
    """
    compact = "".join(text.split()).translate(_PHONE_PUNCTUATION)
    if not compact.isascii():
        return ""
    if compact.startswith(("+", "00")):
        digits = compact[1:] if compact[0] == "+" else compact[2:]
        if not _E164_DIGITS.fullmatch(digits):
            return ""
        if not digits.startswith("84"):
            return "+" + digits
        national = digits[2:]
        if len(national) == 10 and national[0] == "0":  # "+84 0912 ...": the trunk 0 written too
            national = national[1:]
    elif len(compact) == 11 and compact.startswith("84"):
        national = compact[2:]
    elif len(compact) == 10 and compact[0] == "0":
        national = compact[1:]
    elif len(compact) == 9:  # a mobile number whose leading 0 a spreadsheet dropped
        national = compact
    else:
        return ""
    return "+84" + national if _VN_MOBILE.fullmatch(national) else ""


def _phone(text: str) -> tuple[str, bool]:
    """(the phone in E.164 or "", whether a phone was given but is unusable)."""
    if not text:
        return "", False
    phone = normalise_phone(text)
    return phone, not phone


def read_records(
    path: str | Path, *, column_map: str | None = None, warn: bool = True, regroup_dir: Path | None = None
) -> Iterator[Record | RowProblem]:
    """Stream records from a ``.jsonl``/``.json`` or ``.csv`` file.

    Raises :class:`ConfigError` for a missing or unreadable file or an
    unusable CSV header; bad rows are yielded as :class:`RowProblem`. Memory
    stays bounded whatever the input: a line longer than
    :data:`MAX_LINE_BYTES` is skipped as it is read (``line_too_long``), a
    field longer than :data:`MAX_FIELD_CHARS` makes its row a
    ``field_too_long``, JSON nested too deeply a ``bad_json``.

    A CSV export has one person per row (doses in numbered columns) or one
    row per dose; consecutive dose rows of one person (same record ID, or
    citizen ID + name + date of birth) become one record (``Record.rows``),
    and a row that gives another person under the same record ID starts a new
    record (a duplicate record ID for the checks).
    With ``regroup_dir``, a person's rows need not be consecutive (they are
    grouped through a temporary file in that directory).
    Header columns no field takes are logged once as a warning (``warn``).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"records file not found: {p}")
    suffix = p.suffix.lower()
    if suffix not in _JSONL_SUFFIXES + _CSV_SUFFIXES:
        raise ConfigError(f"{p}: unknown records format (use .jsonl or .csv)")
    yield from read_records_range(p, 0, None, 1, column_map=column_map, warn=warn, regroup_dir=regroup_dir)


_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
_CSV_SUFFIXES = (".csv", ".txt")


def _has_bad_encoding(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _too_long(lineno: int) -> RowProblem:
    return RowProblem(lineno, "line_too_long", f"line longer than {MAX_LINE_BYTES:,} bytes (skipped)")


def _read_jsonl(
    fh: Iterable[str | None], cmap: _ColumnMap, line_offset: int = 0
) -> Iterator[Record | RowProblem]:
    for lineno, line in enumerate(fh, start=1 + line_offset):
        if line is None:
            yield _too_long(lineno)
            continue
        if not line.strip():
            continue
        if _has_bad_encoding(line):
            yield RowProblem(lineno, "bad_encoding", "line is not valid UTF-8")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            yield RowProblem(lineno, "bad_json", f"not valid JSON: {err.msg}")
            continue
        except RecursionError:
            yield RowProblem(lineno, "bad_json", "not valid JSON: nested too deeply")
            continue
        if not isinstance(obj, dict):
            yield RowProblem(lineno, "bad_json", "line is not a JSON object")
            continue
        if "\\ud" in line or "\\uD" in line:  # maybe an escaped lone surrogate (\ud800-\udfff): valid JSON, not text
            try:
                surrogate = _has_bad_encoding(json.dumps(obj, ensure_ascii=False))
            except RecursionError:
                yield RowProblem(lineno, "bad_json", "not valid JSON: nested too deeply")
                continue
            if surrogate:  # as a byte that is not UTF-8; named by its record ID when that one is text
                rid = obj.get("record_id")
                if not isinstance(rid, str) or len(rid) > MAX_FIELD_CHARS or _has_bad_encoding(rid):
                    rid = ""
                yield RowProblem(lineno, "bad_encoding", "line holds an escaped lone surrogate: not valid Unicode", rid)
                continue
        yield record_from_mapping(obj, lineno, cmap)


def record_from_mapping(
    obj: Mapping[str, Any], lineno: int = 0, cmap: _ColumnMap | None = None
) -> Record | RowProblem:
    """Build a Record from its JSON form; problems become a RowProblem."""
    cmap = cmap or load_column_map()
    rid = _text(obj.get("record_id")) if _scalar(obj.get("record_id")) else ""
    if len(rid) > MAX_FIELD_CHARS:
        return RowProblem(lineno, "field_too_long", f"'record_id' is longer than {MAX_FIELD_CHARS} characters")
    for k in FIELDS:
        if not _scalar(obj.get(k)):
            return RowProblem(lineno, "bad_json", f"'{k}' must be text or a number", rid)
    doses_raw = obj.get("doses", [])
    if not isinstance(doses_raw, list):
        return RowProblem(lineno, "bad_doses", "'doses' must be a list", rid)
    doses = []
    for i, d in enumerate(doses_raw, start=1):
        if not isinstance(d, dict):
            return RowProblem(lineno, "bad_doses", f"dose {i} is not an object", rid)
        if not all(_scalar(d.get(k)) for k in DOSE_FIELDS):
            return RowProblem(lineno, "bad_doses", f"dose {i}: fields must be text or numbers", rid)
        dose = _dose(
            {k: _text(d.get(k)) for k in DOSE_FIELDS},
            i,
            lineno,
            rid,
        )
        if isinstance(dose, RowProblem):
            return dose
        doses.append(dose)
    if not _scalar(obj.get("phone")):
        return RowProblem(lineno, "bad_json", "'phone' must be text", rid)
    values = {k: _text(obj.get(k)) for k in FIELDS}
    values["phone"] = _text(obj.get("phone"))
    rec = _record(values, tuple(doses), lineno, cmap)
    if not _scalar(obj.get("verified")):
        return RowProblem(lineno, "bad_json", "'verified' must be text", rid)
    verified = _text(obj.get("verified"))
    if verified and isinstance(rec, Record):
        rec = replace(rec, verified=verified)
    return rec


def _scalar(value: Any) -> bool:
    """A JSON value a record field can hold: text, a number, a boolean or null (not a list/object)."""
    return not isinstance(value, list | dict)


def _text(value: Any) -> str:
    if type(value) is str:  # the usual case first (same result as below)
        if value.isascii():  # dates, IDs, numbers, lots: NFC changes no ASCII text
            return value.strip()
        return unicodedata.normalize("NFC", value).strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return unicodedata.normalize("NFC", str(value)).strip()


_SMALL_INT = re.compile(r"[0-9]{1,3}")


def _int(value: str) -> int | None:
    value = value.strip()
    if not value:
        return 0
    return int(value) if _SMALL_INT.fullmatch(value) else None


def _field_too_long(values: Mapping[str, str], lineno: int, rid: str) -> RowProblem | None:
    if values and max(map(len, values.values())) <= MAX_FIELD_CHARS:
        return None
    for name, value in values.items():
        if len(value) > MAX_FIELD_CHARS:
            return RowProblem(
                lineno, "field_too_long", f"{name!r} is longer than {MAX_FIELD_CHARS} characters",
                rid if len(rid) <= MAX_FIELD_CHARS else "",
            )
    return None


def _dose(values: Mapping[str, str], index: int, lineno: int, rid: str) -> Dose | RowProblem:
    too_long = _field_too_long(values, lineno, rid)
    if too_long is not None:
        return too_long
    number = _int(values.get("dose_number", ""))
    series = _int(values.get("series_doses", ""))
    if number is None or series is None:
        return RowProblem(
            lineno, "bad_number", f"dose {index}: dose number and series must be whole numbers", rid
        )
    return _make_dose(values.get("date", ""), values.get("vaccine", ""), values.get("lot", ""), number, series,
                      values.get("site", ""))


def _record(
    values: Mapping[str, str], doses: tuple[Dose, ...], lineno: int, cmap: _ColumnMap, rows: int = 1
) -> Record | RowProblem:
    rid = values.get("record_id", "")
    too_long = _field_too_long(values, lineno, rid)
    if too_long is not None:
        return too_long
    sex = normalize_sex(values.get("sex", ""), cmap)
    if sex is None:
        return RowProblem(lineno, "bad_sex", "sex must be M/F/X (Nam/Nữ/Khác) or empty", rid)
    phone, unusable = _phone(values.get("phone", ""))
    return _make_record(
        rid,
        " ".join(values.get("full_name", "").split()),
        values.get("date_of_birth", ""),
        sex,
        values.get("nationality", "").upper() or "VN",
        values.get("id_number", ""),  # as written: signer.cleaning reports separators (id_separators)
        doses,
        values.get("province", ""),
        values.get("commune", ""),
        lineno,
        rows,
        phone,
        unusable,
    )


@dataclass(frozen=True)
class Header:
    """How a CSV header maps to record fields (see :func:`resolve_header`)."""

    fields: dict[str, int]  # record field -> column
    doses: dict[int, dict[str, int]]  # dose index -> dose field -> column (one person per row)
    dose_row: dict[str, int]  # dose field -> column (one row per dose)
    site_place: dict[str, int]  # province/commune of the vaccination site (one row per dose)
    unused: tuple[str, ...]  # header names no field takes, as written
    width: int = 0  # columns of the header

    @property
    def shape(self) -> str:
        """``person_rows`` (one person per row) or ``dose_rows`` (one row per dose)."""
        return "dose_rows" if self.dose_row else "person_rows"


def resolve_header(header: Sequence[str], cmap: _ColumnMap, where: str) -> Header:
    """Map a CSV header to the record fields; :class:`ConfigError` when it cannot work."""
    normalized = [_norm_header(h) for h in header]
    taken: dict[int, str] = {}

    def find(aliases: tuple[str, ...], name: str) -> int | None:
        for alias in aliases:
            key = _norm_header(alias)
            if key in normalized:
                col = normalized.index(key)
                if col in taken and taken[col] != name:
                    raise ConfigError(f"{where}: column {header[col]!r} is mapped to both {taken[col]!r} and {name!r}")
                taken[col] = name
                return col
        return None

    fields: dict[str, int] = {}
    for name, aliases in cmap.fields.items():
        col = find(aliases, name)
        if col is not None:
            fields[name] = col
    dose_row: dict[str, int] = {}
    for name, aliases in cmap.dose_row.items():
        col = find(aliases, f"dose {name}")
        if col is not None:
            dose_row[name] = col
    site_place: dict[str, int] = {}
    for name, aliases in cmap.site_place.items():
        col = find(aliases, f"site {name}")
        if col is not None:
            site_place[name] = col
    doses: dict[int, dict[str, int]] = {}
    for name, aliases in cmap.dose.items():
        for alias in aliases:
            pattern = re.compile(re.escape(_norm_header(alias)).replace(r"\{i\}", r"([0-9]{1,2})") + "$")
            for col, h in enumerate(normalized):
                m = pattern.match(h)
                if m and col not in taken:
                    doses.setdefault(int(m.group(1)), {}).setdefault(name, col)
                    taken[col] = f"dose {m.group(1)} {name}"
    for required in ("full_name", "date_of_birth"):
        if required not in fields:
            raise ConfigError(
                f"{where}: CSV header lacks a column for {required!r} "
                f"(accepted: {', '.join(cmap.fields[required])}); see {cmap.where}"
            )
    if dose_row and doses:
        raise ConfigError(
            f"{where}: CSV header has both numbered dose columns and one-dose-per-row columns "
            f"({', '.join(header[c] for c in dose_row.values())}); see {cmap.where}"
        )
    if dose_row and "date" not in dose_row:
        raise ConfigError(f"{where}: one-row-per-dose CSV lacks the dose date column "
                          f"(accepted: {', '.join(cmap.dose_row.get('date', ()))}); see {cmap.where}")  # fmt: skip
    unused = tuple(h for col, h in enumerate(header) if col not in taken and h.strip())
    return Header(fields, doses, dose_row, site_place, unused, len(header))


def inspect_header(path: str | Path, *, column_map: str | None = None) -> Header | None:
    """The header of a CSV export (None for JSON Lines); :class:`ConfigError` when it cannot work."""
    p = Path(path)
    if p.suffix.lower() not in _CSV_SUFFIXES:
        return None
    cmap = load_column_map(column_map)
    try:
        with p.open("rb") as fh:
            line = next(_range_lines(fh, 0, None), "")
    except OSError as err:
        raise ConfigError(f"cannot read {p}: {err.strerror}") from None
    if line is None:
        raise ConfigError(f"{p}: CSV header longer than {MAX_LINE_BYTES:,} bytes")
    try:
        header = next(csv.reader([line]), [])
    except csv.Error as err:
        raise ConfigError(f"{p}: unreadable CSV header: {err}") from None
    return resolve_header(header, cmap, str(p)) if header else None


def warn_header(header: Header, where: str) -> None:
    if header.unused:
        log.warning("warning: %s: %d column(s) not used: %s", where, len(header.unused),
                    ", ".join(repr(h[:60]) for h in header.unused[:20]))  # fmt: skip
    if header.shape == "person_rows" and not header.doses:
        log.warning("warning: %s: no dose columns found: every record will have no dose", where)


def _read_csv(
    fh: Iterable[str | None], cmap: _ColumnMap, where: str, line_offset: int = 0, *, warn: bool = True,
    regroup_dir: Path | None = None, runs: PersonRuns | None = None, person: PersonReader | None = None,
    undecoded: Sized | None = None, plain: list[bool] | None = None,
) -> Iterator[Record | RowProblem]:
    """Records of CSV lines (``undecoded``: grows by one whenever ``fh`` yields a line it could not decode as
    UTF-8, see :func:`_range_lines`; None: not known, every row's text is tested; ``plain[0]``: whether the line
    ``fh`` yielded last is :func:`_plain`, kept by ``fh``, see :func:`_range_lines`)."""
    too_long: list[int] = []  # physical lines skipped as too long, not yet reported

    def lines() -> Iterator[str]:
        for i, line in enumerate(fh, start=1):
            if line is None:
                too_long.append(i + line_offset)
                line = "\n"  # keeps csv's line count; the row is reported below
            yield line

    reader = csv.reader(lines())
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as err:
        raise ConfigError(f"{where}: unreadable CSV header: {err}") from None
    if too_long:
        raise ConfigError(f"{where}: CSV header longer than {MAX_LINE_BYTES:,} bytes")
    if _has_bad_encoding("".join(header)):
        raise ConfigError(f"{where}: CSV header is not valid UTF-8")
    hdr = resolve_header(header, cmap, where)
    if warn:
        warn_header(hdr, where)
    rows = _csv_rows(reader, hdr, cmap, len(header), too_long, line_offset, undecoded, plain)
    if hdr.shape == "dose_rows":
        if regroup_dir is not None:
            rows = _sorted_by_person(rows, _DoseLayout(hdr), regroup_dir)
            runs = None
        yield from _group_dose_rows(rows, hdr, cmap, runs, person)
    else:
        for item in rows:
            assert type(item) is not tuple
            yield item  # type: ignore[misc]


#: A dose row as read: (line, cells). The cells are the row's values, stripped and NFC
#: (as :func:`_text` makes them), plus one "" at the end that stands for a missing column,
#: and a second one when the row is long enough to hold a field too long (:func:`_cells`).
_DoseRow = tuple[int, list[str]]
#: Makes a person's item from their dose rows, the row layout and the column map (:func:`person_record`'s signature).
PersonReader = Callable[[list[_DoseRow], "_DoseLayout", "_ColumnMap"], Any]
_NUMBERS: dict[str, int | None] = {}  # dose numbers as written -> _int (a handful of spellings)


def _number(text: str) -> int | None:
    """``_int(text)``, remembered in :data:`_NUMBERS` (bounded)."""
    found = _int(text)
    if len(_NUMBERS) < 1000:
        _NUMBERS[text] = found
    return found


def _cells(row: list[str], maybe_undecoded: bool = True) -> list[str] | None:
    """The row's values as :func:`_text` makes them, + "" for missing columns; None if not UTF-8.

    One test for the whole row instead of one per value: ASCII, or UTF-8 and NFC
    already (the usual Vietnamese row; ``\\x00`` is a starter that composes with
    nothing, so the joined text is NFC exactly when every value is); only
    other rows are normalised value by value. ``maybe_undecoded`` False: every line
    of the row was decoded as UTF-8 (:func:`_range_lines` says which were not), so
    it holds no lone surrogate and the UTF-8 test is left out.
    """
    joined = "\x00".join(row)
    if not joined.isascii():
        if maybe_undecoded:
            try:
                joined.encode("utf-8")
            except UnicodeEncodeError:  # a byte that was not UTF-8, kept as a lone surrogate
                return None
        if not unicodedata.is_normalized("NFC", joined):
            cells = [_text(v) for v in row]
        else:
            cells = list(map(str.strip, row))
    else:
        cells = list(map(str.strip, row))
    cells.append("")
    if len(joined) > MAX_FIELD_CHARS:  # may hold a field too long: marked, so that no other row is measured
        cells.append("")
    return cells


def _csv_rows(
    reader: Any, hdr: Header, cmap: _ColumnMap, width: int, too_long: list[int], line_offset: int,
    undecoded: Sized | None = None, plain: list[bool] | None = None,
) -> Iterator[Record | RowProblem | _DoseRow]:
    fields, dose_cols = hdr.fields, hdr.doses
    dose_shape = hdr.shape == "dose_rows"
    rid_col = fields.get("record_id")
    decoded_up_to = 0  # the lines of undecoded whose rows were tested
    if plain is None:
        plain = [False]
    strip = str.strip
    while True:
        before = reader.line_num
        try:
            row = next(reader)
        except StopIteration:
            for lineno in too_long:
                yield _too_long(lineno)
            return
        except csv.Error as err:
            yield RowProblem(reader.line_num + line_offset, "bad_csv", f"malformed CSV: {err}")
            continue
        lineno = reader.line_num + line_offset
        if too_long:  # this row holds a skipped line (or is one): not a record
            for skipped in too_long:
                yield _too_long(skipped)
            too_long.clear()
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            rid = row[rid_col].strip() if rid_col is not None and len(row) > rid_col else ""
            yield RowProblem(lineno, "column_count", f"expected {width} columns, found {len(row)}",
                             rid if len(rid) <= MAX_FIELD_CHARS else "")  # fmt: skip
            continue
        cells: list[str] | None
        if plain[0] and reader.line_num - before == 1:  # one line, _plain: what _cells gives, without its tests
            cells = list(map(strip, row))
            cells.append("")
        elif undecoded is None:
            cells = _cells(row)
        else:  # csv.reader reads the lines of this row only: a line not UTF-8 among them grew undecoded
            cells = _cells(row, len(undecoded) != decoded_up_to)
            decoded_up_to = len(undecoded)
        if cells is None:
            yield RowProblem(lineno, "bad_encoding", "row is not valid UTF-8", "")
            continue
        if dose_shape:
            yield (lineno, cells)
            continue
        values = {name: cells[col] for name, col in fields.items()}
        doses = []
        problem: RowProblem | None = None
        for index in sorted(dose_cols):
            cols = dose_cols[index]
            dvalues = {name: cells[col] for name, col in cols.items()}
            if not any(dvalues.values()):
                continue
            dose = _dose(dvalues, index, lineno, values.get("record_id", ""))
            if isinstance(dose, RowProblem):
                problem = dose
                break
            doses.append(dose)
        if problem:
            yield problem
            continue
        yield _record(values, tuple(doses), lineno, cmap)


def _sorted_by_person(
    rows: Iterable[Record | RowProblem | _DoseRow], layout: _DoseLayout, work_dir: Path
) -> Iterator[Record | RowProblem | _DoseRow]:
    """The rows again, each person's dose rows together, people in the order of their first row.

    For exports whose rows of one person are not consecutive (sorted by date,
    say): the rows go through a temporary SQLite file (mode 0600, deleted at
    the end), so memory does not grow with the export.
    """
    work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = work_dir / f".regroup-{os.getpid()}.sqlite"
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE;"
                           "CREATE TABLE r(k TEXT, line INTEGER, data TEXT);")  # fmt: skip
        it = iter(rows)
        while batch := list(itertools.islice(it, 20_000)):
            out = []
            for row in batch:
                if type(row) is tuple:
                    line, cells = row
                    # the person too: another person's rows under a reused record ID stay apart
                    key = json.dumps([layout.key(cells), layout.person_key(cells)], ensure_ascii=False)
                    out.append((key, line, json.dumps(["d", cells], ensure_ascii=False)))
                elif isinstance(row, RowProblem):
                    data = ["p", row.reason, row.message, row.record_id]
                    out.append((f"p{row.line}", row.line, json.dumps(data, ensure_ascii=False)))
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO r VALUES (?, ?, ?)", out)
            conn.execute("COMMIT")
        conn.execute("CREATE INDEX r_k ON r(k, line)")
        cur = conn.execute(
            "SELECT r.line, r.data FROM r JOIN (SELECT k, MIN(line) AS first FROM r GROUP BY k) g ON g.k = r.k "
            "ORDER BY g.first, r.line"
        )
        while fetched := cur.fetchmany(5000):
            for line, data in fetched:
                item = json.loads(data)
                if item[0] == "d":
                    yield (line, item[1])
                else:
                    yield RowProblem(line, item[1], item[2], item[3])
    except sqlite3.Error as err:
        raise ConfigError(f"cannot group the dose rows in {work_dir}: {err}") from None
    finally:
        conn.close()
        path.unlink(missing_ok=True)


def _run_key(record_id: str, id_number: str, full_name: str, date_of_birth: str) -> int:
    """A dose row's key for :class:`PersonRuns` and :func:`dose_rows_are_grouped`: its record ID and person as
    written, the values as the reader's cells hold them (stripped, NFC; "" for a missing column)."""
    return hash((record_id, id_number, full_name, date_of_birth))


def dose_rows_are_grouped(path: str | Path, *, column_map: str | None = None) -> bool:
    """Whether each person's rows of a one-row-per-dose CSV are consecutive (True for other files).

    One streaming pass over the key columns, holding a 64-bit hash per person.
    """
    p = Path(path)
    header = inspect_header(p, column_map=column_map)
    if header is None or header.shape != "dose_rows":
        return True
    layout = _DoseLayout(header)
    rid, ident, name, dob = layout.rid, layout.ident, layout.name, layout.dob  # -1: the "" appended below
    closed: set[int] = set()
    last: int | None = None
    try:
        with p.open("rb") as fh:
            lines = (x for x in _range_lines(fh, 0, None) if x is not None)
            reader = csv.reader(lines)
            width = len(next(reader, []))
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return True
                except csv.Error:
                    continue
                if len(row) != width:  # unreadable rows belong to nobody
                    continue
                # the key values as the reader's cells hold them (_cells: stripped, NFC), as PersonRuns sees them
                joined = "".join(row)
                if joined.isascii():
                    text: Callable[[str], str] = str.strip
                elif _has_bad_encoding(joined):
                    continue
                else:
                    text = _text  # NFC value by value: what _cells gives, for a row NFC or not
                row.append("")
                # the record ID and person: a reused ID of another person is no reopening (spelling
                # noise between one person's rows at worst makes this answer False: the rows get sorted)
                key = _run_key(text(row[rid]), text(row[ident]), text(row[name]), text(row[dob]))
                if key != last:
                    if key in closed:
                        return False
                    if last is not None:
                        closed.add(last)
                    last = key
    except OSError as err:
        raise ConfigError(f"cannot read {p}: {err.strerror}") from None


#: A range with more runs whose record ID is below the one before's is not taken as in record ID order.
MAX_ODD_RUNS = 10_000


class PersonRuns:
    """Whether each person's dose rows are consecutive, learnt while the rows are grouped.

    What :func:`dose_rows_are_grouped` finds out in a pass of its own, without
    one: the readers of the byte ranges (:func:`split_for_parallel`) each see
    the key of every row (``_DoseLayout.run_key``: the record ID and the person's
    ID, name and date of birth as the reader makes them, stripped and NFC, as
    hashed by the process that forked them all; a row that continues its group
    with the group's first values is not hashed again), and
    :func:`runs_are_consecutive` joins their answers. Consecutive in these keys,
    sorting the rows (``regroup_dir``) would leave them as they are. The same
    keys of the same rows as :func:`dose_rows_are_grouped` (not case- or
    space-folded: that cost about 1 us a person, and a record ID met again under
    another spelling of its name then looked reopened to two workers but not to
    one, and only two workers sorted).

    In an export in record ID order (each run's record ID at or above the run
    before's, in string order; a record ID given to two people makes two runs with
    one ID) another range's runs can only meet this one's where the two ranges of
    record IDs meet, at their ends. Such a range is sent back to the main process
    without its set of keys (about 40 MB a 500,000 people, unpickled and joined
    there), only with its first and last record ID, the keys of the runs with those
    two (``head``, ``tail``), of the runs without a record ID (``blank``) and of the
    runs whose record ID is below the one before (``odd``: a record ID copied from
    an earlier person, with that ID; :func:`runs_are_consecutive` cannot tell when
    one falls inside another range's record IDs). More than :data:`MAX_ODD_RUNS`
    of those, and the range is not in record ID order (``rids_rise``): it is sent
    with its keys.
    """

    def __init__(self) -> None:
        self.first: int | None = None
        self.last: int | None = None
        self.closed: set[int] | None = set()  # None once sent back without it (rids_rise)
        self.reopened = False  # a key met again after another: not consecutive
        self.rids_rise = True  # every run with a record ID has one at or above the one before's (string order)
        self.first_rid: str | None = None  # the first and the last run's record IDs, of the runs with one
        self.last_rid: str | None = None
        self.odd: list[tuple[str, int]] = []  # (record ID, key) of the runs with an ID below the one before
        self.head: set[int] = set()  # the keys of the runs with first_rid
        self.tail_key: int | None = None  # the key of the first run with last_rid; with more: all in tail
        self.tail: set[int] | None = None
        self.blank: set[int] = set()  # the keys of the runs without a record ID

    def see(self, key: int, rid: str) -> None:
        if key == self.last:
            return
        if self.last is None:
            self.first = key
        else:
            self.closed.add(self.last)  # type: ignore[union-attr]  # (None only in a copy sent back)
        if key in self.closed:  # type: ignore[operator]
            self.reopened = True
        self.last = key
        if not rid:
            self.blank.add(key)
        elif self.last_rid is None:
            self.first_rid = self.last_rid = rid
            self.head.add(key)
            self.tail_key = key
        elif rid > self.last_rid:
            self.last_rid = rid
            self.tail_key = key
            self.tail = None
        elif rid == self.last_rid:  # the record ID of another person, or of the same written otherwise
            if self.tail is None:
                self.tail = {self.tail_key}  # type: ignore[arg-type]
            self.tail.add(key)
            if rid == self.first_rid:
                self.head.add(key)
        elif self.rids_rise:
            self.odd.append((rid, key))
            if len(self.odd) > MAX_ODD_RUNS:
                self.rids_rise = False
                self.odd = []

    def ends(self) -> set[int]:
        """The keys that can meet another range's when the record IDs rise: the runs without a record ID, those
        with the first or the last record ID, and the odd ones."""
        tail = self.tail if self.tail is not None else {self.tail_key} if self.tail_key is not None else set()
        return self.blank | self.head | tail | {key for _, key in self.odd}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.rids_rise:
            state["closed"] = None  # see the class's text: the ends stand for them
        else:
            state.update(blank=set(), head=set(), tail=None, odd=[])  # (in closed, with the others)
        return state


def runs_are_consecutive(parts: Sequence[PersonRuns]) -> bool | None:
    """Whether the ranges' keys, in range order, are consecutive as one stream; None: cannot tell from what the
    ranges sent back (some rose in record ID order and some did not, or two ranges' record IDs meet), then
    :func:`dose_rows_are_grouped` answers."""
    if any(runs.reopened for runs in parts):
        return False
    rising = [runs.rids_rise for runs in parts]
    if all(rising):
        top: str | None = None
        for runs in parts:  # the ranges' record IDs meet at most at their ends: only the ends' runs can meet
            if runs.first_rid is None:
                continue
            if top is not None and runs.first_rid < top:
                return None
            top = runs.last_rid
        bounds = [(j, runs.first_rid, runs.last_rid) for j, runs in enumerate(parts) if runs.first_rid is not None]
        for k, runs in enumerate(parts):  # an odd run inside another range's record IDs may be one of its runs
            for rid, _ in runs.odd:
                if any(j != k and low < rid < high for j, low, high in bounds):  # type: ignore[operator]
                    return None
        return _keys_consecutive([(runs.first, runs.last, runs.ends()) for runs in parts])
    if any(rising):
        return None
    return _keys_consecutive([(runs.first, runs.last, runs.closed or set()) for runs in parts])


def _keys_consecutive(parts: Sequence[tuple[int | None, int | None, set[int]]]) -> bool:
    """Each range's (first key, last key, keys closed in it), in range order: whether no key comes back after
    another, the ranges joined into one stream."""
    closed: set[int] = set()
    last: int | None = None
    for first, final, keys in parts:
        if first is None or final is None:
            continue
        if first != last and last is not None:
            closed.add(last)
        seen = keys | {first, final}
        if not closed.isdisjoint(seen) or (last is not None and last != first and last in seen):
            return False
        closed |= seen
        closed.discard(final)
        last = final
    return True


def group_key(values: Mapping[str, str]) -> tuple[str, ...]:
    """Which dose rows belong to one person: the record ID, or without one the citizen ID, name and birth date."""
    rid = values.get("record_id", "")
    if rid:
        return ("R", rid)
    return ("P", values.get("id_number", "").replace(" ", ""), " ".join(values.get("full_name", "").split()).casefold(),
            values.get("date_of_birth", ""))  # fmt: skip


_PERSON_FIELDS = ("full_name", "date_of_birth", "sex", "nationality", "id_number", "province", "commune")


def _getter(cols: Sequence[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """``operator.itemgetter`` that always returns a tuple (also for zero or one column)."""
    if len(cols) > 1:
        return operator.itemgetter(*cols)
    if cols:
        col = cols[0]
        return lambda cells: (cells[col],)
    return lambda cells: ()


class _DoseLayout:
    """Where a one-row-per-dose header keeps each value (-1: the "" after the row's cells)."""

    def __init__(self, hdr: Header):
        fields = hdr.fields
        site = {k: c for k, c in hdr.site_place.items() if k not in fields}  # the site's place stands in
        self.record = {**fields, **site}  # record field -> column, in the order _record checks them
        dose = dict(hdr.dose_row)
        if "site" not in dose and "commune" in hdr.site_place:
            dose["site"] = hdr.site_place["commune"]
        self.dose = dose
        self.compared = tuple(f for f in _PERSON_FIELDS if f in fields)  # the site's place may change per dose
        self.person = _getter([fields[f] for f in self.compared])
        self.dose_values = _getter([dose.get(f, -1) for f in DOSE_FIELDS])
        self.record_values = _getter([self.record.get(f, -1) for f in FIELDS])
        self.long = hdr.width + 1  # cells of a row marked as possibly holding a field too long: more
        self.rid, self.ident, self.name, self.dob, self.phone = (fields.get(f, -1) for f in (
            "record_id", "id_number", "full_name", "date_of_birth", "phone"))  # fmt: skip

    def phone_text(self, group: list[_DoseRow]) -> str:
        """The person's phone as written: the first non-empty one of their rows (usually the first row's)."""
        col = self.phone
        if col < 0:
            return ""
        for _line, cells in group:
            if cells[col]:
                return cells[col]
        return ""

    def key(self, cells: list[str]) -> tuple[str, ...]:
        """:func:`group_key` of the row."""
        rid = cells[self.rid]
        if rid:
            return ("R", rid)
        return ("P", cells[self.ident].replace(" ", ""), " ".join(cells[self.name].split()).casefold(),
                cells[self.dob])  # fmt: skip

    def run_key(self, cells: list[str]) -> int:
        """:func:`_run_key` of the row's cells."""
        return _run_key(cells[self.rid], cells[self.ident], cells[self.name], cells[self.dob])

    def person_key(self, cells: list[str]) -> tuple[str, ...]:
        return (cells[self.ident].replace(" ", ""), " ".join(cells[self.name].split()).casefold(), cells[self.dob])

    def values(self, cells: list[str]) -> dict[str, str]:
        return {name: cells[col] for name, col in self.record.items()}


def _group_dose_rows(rows: Iterable[Record | RowProblem | _DoseRow], hdr: Header, cmap: _ColumnMap,
                     runs: PersonRuns | None = None, make_person: PersonReader | None = None) -> Iterator[Any]:  # fmt: skip
    """Consecutive dose rows of one person -> one record.

    A row continues the record when it has the same :func:`group_key` and
    agrees about the person (name apart from case and spacing, date of birth,
    sex, nationality, ID); a row with the same record ID but another person
    starts a new record with that ID, which the checks report as a duplicate.
    ``runs`` learns whether the rows of each person are consecutive. ``make_person`` makes each
    person's item of their rows (default :func:`person_record`).
    """
    layout = _DoseLayout(hdr)
    make = make_person or person_record
    person, key_of, compared, rid_col = layout.person, layout.key, layout.compared, layout.rid
    run_key = layout.run_key
    cols = [hdr.fields[f] for f in compared]
    group: list[_DoseRow] = []
    key: Any = None
    first: Any = None
    first_run = 0  # run_key of the group's first row
    off = False  # runs last saw a key other than first_run (a row that continued the group in another spelling)
    for row in rows:
        if type(row) is not tuple:
            yield row
            continue
        cells = row[1]
        k = cells[rid_col] or key_of(cells)  # the record ID (group_key's ("R", ID), shorter), else the person's key
        if group:
            if k == key and person(cells) == first:  # the first row's run_key too
                if off and runs is not None:
                    runs.see(first_run, cells[rid_col])
                    off = False
                group.append(row)
                continue
            if k == key and all(_same(f, group[0][1][c], cells[c], cmap) for f, c in zip(compared, cols, strict=True)):
                if runs is not None:  # every row's key, as dose_rows_are_grouped takes them (see PersonRuns)
                    run = run_key(cells)
                    runs.see(run, cells[rid_col])
                    off = run != first_run
                group.append(row)
                continue
            yield make(group, layout, cmap)
        first = person(cells)
        if runs is not None:
            first_run = run_key(cells)
            runs.see(first_run, cells[rid_col])  # the person as written, see PersonRuns
            off = False
        key = k
        group = [row]
    if group:
        yield make(group, layout, cmap)


def _same(name: str, a: str, b: str, cmap: _ColumnMap) -> bool:
    if name == "full_name":
        return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()
    if name == "sex":
        return normalize_sex(a, cmap) == normalize_sex(b, cmap)
    if name == "id_number":
        return a.replace(" ", "") == b.replace(" ", "")
    return a == b


#: A person's values as :func:`person_values` reads them from their dose rows: the :data:`FIELDS` in order,
#: then the doses (each its :data:`DOSE_FIELDS` in order), the first row's line, the number of rows, the
#: phone (E.164 or "") and whether a phone given was unusable. :func:`record_of` makes the ``Record``.
PersonValues = tuple[str, str, str, str, str, str, str, str, list[tuple[str, str, str, int, int, str]], int, int, str,
                     bool]  # fmt: skip


def person_values(group: list[_DoseRow], layout: _DoseLayout, cmap: _ColumnMap) -> PersonValues | RowProblem | None:
    """The values of the record :func:`person_record` makes of a person's dose rows, or its row problem.

    None when a row may hold a field too long (:func:`person_record` then reads the group field by
    field, to report it exactly). The cleaning checks' fast path starts from these values
    (:mod:`signer.cleaning.fast`) and makes a ``Record`` only for a person it does not clear.
    """
    first_line, first = group[0]
    dose_values, long = layout.dose_values, layout.long
    doses = []
    for index, (line, cells) in enumerate(group, start=1):
        if len(cells) > long and max(map(len, cells)) > MAX_FIELD_CHARS:
            return None
        date, vaccine, lot, number, series, site = dose_values(cells)
        if not (date or vaccine or lot or number or series):
            continue  # a person row without a dose (the site's commune alone is no dose)
        try:
            dn = _NUMBERS[number]
        except KeyError:
            dn = _number(number)
        try:
            sd = _NUMBERS[series]
        except KeyError:
            sd = _number(series)
        if dn is None or sd is None:
            return RowProblem(line, "bad_number", f"dose {index}: dose number and series must be whole numbers",
                              first[layout.rid])  # fmt: skip
        doses.append((date, vaccine, lot, dn, sd, site))
    rid, name, dob, sex_text, nationality, ident, province, commune = layout.record_values(first)
    sex = normalize_sex(sex_text, cmap)
    if sex is None:
        return RowProblem(first_line, "bad_sex", "sex must be M/F/X (Nam/Nữ/Khác) or empty", rid)
    phone, unusable = _phone(layout.phone_text(group)) if layout.phone >= 0 else ("", False)
    return (rid, " ".join(name.split()), dob, sex, nationality.upper() or "VN", ident, province, commune, doses,
            first_line, len(group), phone, unusable)  # fmt: skip


def record_of(values: PersonValues) -> Record:
    """The ``Record`` of :func:`person_values`' values."""
    rid, name, dob, sex, nationality, ident, province, commune, doses, line, rows, phone, unusable = values
    return _make_record(rid, name, dob, sex, nationality, ident, tuple([_make_dose(*d) for d in doses]), province,
                        commune, line, rows, phone, unusable)  # fmt: skip


def person_record(group: list[_DoseRow], layout: _DoseLayout, cmap: _ColumnMap) -> Record | RowProblem:
    """One record from a person's dose rows (a row with a field too long: :func:`_person_slowly`)."""
    values = person_values(group, layout, cmap)
    if values is None:
        return _person_slowly(group, layout, cmap)
    if type(values) is tuple:
        return record_of(values)
    return values  # type: ignore[return-value]


def _person_slowly(group: list[_DoseRow], layout: _DoseLayout, cmap: _ColumnMap) -> Record | RowProblem:
    """:func:`person_record` field by field, for the rare group with a field too long (reported exactly)."""
    first_line, first = group[0]
    values = layout.values(first)
    if "phone" in values:
        values["phone"] = layout.phone_text(group)
    rid = values.get("record_id", "")
    doses = []
    for index, (line, cells) in enumerate(group, start=1):
        dose = {name: cells[col] for name, col in layout.dose.items()}
        if not any(v for k, v in dose.items() if k != "site"):
            continue
        found = _dose(dose, index, line, rid)
        if isinstance(found, RowProblem):
            return found
        doses.append(found)
    return _record(values, tuple(doses), first_line, cmap, rows=len(group))


def write_jsonl(records: Iterable[Record], fh: TextIO) -> int:
    """Write records as JSON Lines; returns the count."""
    n = 0
    for rec in records:
        fh.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
        n += 1
    return n


# -- parallel reading (added for signer.cleaning) ---------------------------


def split_for_parallel(
    path: str | Path, parts: int, *, column_map: str | None = None, group_rows: bool = True
) -> list[tuple[int, int, int]]:
    """Cut a records file into up to ``parts`` byte ranges ``(start, end, first_line)``.

    A CSV file is cut where csv.reader ends a row (:func:`_spans`: a line end outside a quoted value, as csv
    parses quotes, not by their count), a JSONL file at any line end, so that
    :func:`read_records_range` over all ranges yields what
    :func:`read_records` yields, with the same line numbers. Reads the file
    in blocks: memory does not depend on line lengths. In a one-row-per-dose
    CSV (``group_rows``), a cut never separates the rows of one person.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        fh = p.open("rb")
    except OSError as err:
        raise ConfigError(f"cannot open {p}: {err.strerror}") from None
    quoted = p.suffix.lower() not in _JSONL_SUFFIXES  # a JSON line holds no line end: each ends a record
    targets = [size * k // parts for k in range(1, parts)]
    cuts: list[tuple[int, int]] = [(0, 1)]
    starts: list[tuple[int, int]] = []  # (offset, line) of a row start in each block: where _align_cuts reads from
    with fh:
        lines = 0  # line ends before the block
        inq = False  # the block starts inside a quoted value
        for base, buf, length in _line_blocks(fh, 0):
            if not targets:
                break
            if not inq:
                starts.append((base, lines + 1))
            if buf is None:  # a line too long: csv reads it as an empty line
                lines += 1
                if not inq and base + length > targets[0] and base + length < size:
                    cuts.append((base + length, lines + 1))
                    while targets and targets[0] < base + length:
                        targets.pop(0)
                continue
            end = base + length
            if not inq and (not quoted or buf.find(b'"', 0, length) < 0):  # the usual block: each line end ends a row
                spans, inq_after = [(0, length)], False
            else:
                spans, inq_after = _spans(buf, length, inq, base == 0)
            if end > targets[0]:  # the first row end after each target in the block
                for a, b in spans:
                    while targets:
                        nl = buf.find(b"\n", max(a, targets[0] - base), b)
                        if nl < 0:
                            break
                        cut = base + nl + 1
                        if cut < size:
                            cuts.append((cut, lines + buf.count(b"\n", 0, nl + 1) + 1))
                        while targets and targets[0] < cut:
                            targets.pop(0)
            lines += buf.count(b"\n", 0, length)
            inq = inq_after
    if group_rows and len(cuts) > 1 and quoted:
        header = inspect_header(p, column_map=column_map)
        if header is not None and header.shape == "dose_rows":
            cuts = _align_cuts(p, cuts, header, starts)
    ranges = []
    for i, (start, first_line) in enumerate(cuts):
        end = cuts[i + 1][0] if i + 1 < len(cuts) else size
        if end > start:
            ranges.append((start, end, first_line))
    return ranges or [(0, size, 1)]


_BOM = b"\xef\xbb\xbf"
#: How far :func:`_align_cuts` reads back from a cut for the last readable row before it, and forward over
#: unreadable rows: a row of up to MAX_LINE_BYTES, after a skipped line too long.
_LOOK = 2 * (MAX_LINE_BYTES + (64 << 10))


def _line_blocks(fh: BinaryIO, start: int) -> Iterator[tuple[int, bytes | None, int]]:
    """``(offset, data, length)``: ``fh`` from ``start`` (a line start) in blocks of whole lines, ``data[:length]``
    (the bytes after are read again in the next block; the last block may end at the file's end without a line
    end); a line longer than :data:`MAX_LINE_BYTES` found at a block's end comes alone as ``data`` None (its
    bytes are not kept; :func:`_range_lines` gives it as None, csv reads it as an empty line). A longer line
    inside a block is :func:`_spans`'s to find."""
    pos = start
    while True:
        fh.seek(pos)
        data = fh.read(1 << 20)
        if not data:
            return
        nl = data.rfind(b"\n") + 1
        while not nl and len(data) <= MAX_LINE_BYTES:  # a line longer than a block (rare): read on
            more = fh.read(1 << 20)
            if not more:
                break
            i = more.find(b"\n") + 1
            nl = len(data) + i if i else 0
            data += more
        if nl:
            yield pos, data, nl
            pos += nl
        elif len(data) <= MAX_LINE_BYTES:  # the last line, without a line end
            yield pos, data, len(data)
            return
        else:  # a line too long: skipped up to its line end
            length = len(data)
            while True:
                more = fh.read(1 << 20)
                i = more.find(b"\n") + 1
                if not more or i:
                    length += i
                    break
                length += len(more)
            yield pos, None, length
            pos += length


def _spans(buf: bytes, end: int, inq: bool, file_start: bool) -> tuple[list[tuple[int, int]], bool]:
    """The stretches of ``buf[:end]`` (whole lines, ``inq``: its start is inside a quoted value) outside quoted values,
    where each line end ends a row as csv.reader reads them (default dialect, strict=False, as :func:`_read_csv`),
    and whether ``buf`` ends inside a quoted value.

    A ``"`` opens a quoted value only at the start of a value (a row's start or right after a comma outside
    quotes); inside, ``""`` is a quote and ``"`` then anything else closes it (what follows is text of the value,
    quotes too, up to the next comma). csv gives up a line at a lone CR outside quotes (csv.Error: its rest is
    read by nobody), and a line longer than :data:`MAX_LINE_BYTES` is read as an empty line: their quotes count
    for nothing. C-speed between quotes (``bytes.find``); Python steps only at each quote.
    """
    spans = []
    find, rfind = buf.find, buf.rfind
    pos = start = 0  # start: where the stretch outside quotes began
    ls = le = 0  # the line of the last quote seen: its start and its line end
    long_line = False
    bom = file_start and buf.startswith(_BOM)
    while True:
        q = find(b'"', pos, end)
        if q < 0:
            break
        if not ls <= q < le:
            ls = rfind(b"\n", 0, q) + 1
            le = find(b"\n", q, end)
            if le < 0:
                le = end
            long_line = le - ls > MAX_LINE_BYTES
        if long_line:
            pos = le
            continue
        if inq:
            if buf[q + 1 : q + 2] == b'"':  # a quote in the value
                pos = q + 2
                continue
            inq = False  # closed: the stretch outside quotes goes on from here
            start = pos = q + 1
            continue
        pos = q + 1
        if q == ls or buf[q - 1] == 44 or (bom and q == 3 and ls == 0):  # 44: a comma, 3: after the BOM
            if find(b"\r", max(start, ls), q) >= 0:  # csv gave this line up at the CR
                pos = le
                continue
            spans.append((start, q))
            inq = True
    if not inq:
        spans.append((start, end))
    return spans, inq


def _rows(fh: BinaryIO, start: int, stop: int | None = None) -> Iterator[tuple[int, int, int]]:
    """``(start, end, line ends)`` of each CSV row from ``start`` (a row start) on, as csv.reader ends them
    (:func:`_spans`), up to the first that ends at or after ``stop``; the last may end at the file's end."""
    row = start
    inq = False
    carry = 0  # line ends of the row in earlier blocks
    end = start
    for base, buf, length in _line_blocks(fh, start):
        end = base + length
        if buf is None:
            carry += 1
            if not inq:
                yield row, end, carry
                row, carry = end, 0
                if stop is not None and row >= stop:
                    return
            continue
        spans, inq_after = _spans(buf, length, inq, base == 0)
        prev = 0
        for a, b in spans:
            nl = buf.find(b"\n", a, b)
            while nl >= 0:
                yield row, base + nl + 1, carry + buf.count(b"\n", prev, nl + 1)
                row, carry, prev = base + nl + 1, 0, nl + 1
                if stop is not None and row >= stop:
                    return
                nl = buf.find(b"\n", nl + 1, b)
        carry += buf.count(b"\n", prev, length)
        inq = inq_after
    if end > row:
        yield row, end, carry


def _row_key(fh: BinaryIO, start: int, end: int, header: Header) -> tuple[str, ...] | None:
    """:func:`group_key` of the dose row ``fh[start:end]`` as the reader takes it (:func:`_csv_rows`); None for
    a row the reader gives as a row problem or skips (blank), which leaves a person's group open."""
    if end - start > 2 * MAX_LINE_BYTES:
        return None
    fh.seek(start)
    raw = fh.read(end - start)
    lines = []
    for line in io.BytesIO(raw):
        if len(line.rstrip(b"\n")) > MAX_LINE_BYTES:
            return None
        lines.append(line.decode("utf-8", "surrogateescape"))
    try:
        rows = list(csv.reader(lines))
    except csv.Error:
        return None
    if len(rows) != 1 or len(rows[0]) != header.width:
        return None
    cells = _cells(rows[0])
    if cells is None:
        return None
    return group_key({name: cells[col] for name, col in header.fields.items()})


def _align_cuts(p: Path, cuts: list[tuple[int, int]], header: Header,
                starts: list[tuple[int, int]]) -> list[tuple[int, int]]:  # fmt: skip
    """Move each cut after the dose rows that continue the person of the readable row before it.

    Rows as csv.reader ends them (:func:`_rows`), read back from a row start of ``starts`` at least
    :data:`_LOOK` before the cut (a long row before it, or a skipped line too long). Rows the reader gives as
    row problems (:func:`_row_key` None) leave a person's rows open, as :func:`_group_dose_rows` does: they are
    passed over back and forth. Lines moved over are counted for the line number of the next range.
    """
    out = [cuts[0]]
    size = p.stat().st_size
    with p.open("rb") as fh, p.open("rb") as rd:
        for offset, line in cuts[1:]:
            back = [s for s in starts if s[0] <= offset - _LOOK] or starts[:1]
            before = list(_rows(fh, back[-1][0], offset))
            if back[-1][0] == 0:
                before = before[1:]  # the header
            key = None
            for s, e, _n in reversed(before[-1000:]):
                key = _row_key(rd, s, e, header)
                if key is not None:
                    break
            if key is not None:
                passed = lines = 0  # bytes and line ends of the unreadable rows passed since the last move
                for s, e, n in _rows(fh, offset):
                    k = _row_key(rd, s, e, header)
                    if k is None:
                        passed += e - s
                        lines += n
                        if passed > _LOOK:
                            break
                        continue
                    if k != key:
                        break
                    offset, line = e, line + lines + n
                    passed = lines = 0
            if offset > out[-1][0] and offset < size:
                out.append((offset, line))
    return out


def _range_lines(fh: BinaryIO, start: int, end: int | None, undecoded: list[int] | None = None,
                 plain: list[bool] | None = None) -> Iterator[str | None]:  # fmt: skip
    """Decoded lines of ``fh`` from byte ``start`` up to ``end`` (None: the end of the file).

    A line longer than :data:`MAX_LINE_BYTES` comes out as ``None`` and is
    skipped block by block, never held whole. A byte-order mark at the start
    of the file is dropped. A line that is not UTF-8 keeps its bad bytes as lone
    surrogates (``surrogateescape``); its byte offset is added to ``undecoded``.
    ``plain[0]`` is set, before each line is given, to whether it is :func:`_plain`.
    """
    fh.seek(start)
    pos = start
    first = start == 0
    readline = fh.readline
    is_normalized = unicodedata.is_normalized
    while end is None or pos < end:
        raw = readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        pos += len(raw)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while True:
                more = readline(1 << 20)
                pos += len(more)
                if not more or more.endswith(b"\n"):
                    break
            first = False
            if plain is not None:
                plain[0] = False
            yield None
            continue
        try:
            line = raw.decode("utf-8")
            decoded = True
        except UnicodeDecodeError:
            line = raw.decode("utf-8", "surrogateescape")
            decoded = False
            if undecoded is not None:
                undecoded.append(pos - len(raw))
        if first:
            line = line.removeprefix("\ufeff")
            first = False
        if plain is not None:  # = _plain(line), inline (a call per line costs as much as the test)
            plain[0] = decoded and len(line) <= MAX_FIELD_CHARS and (
                line.isascii() or ('"' not in line and is_normalized("NFC", line)))
        yield line


def _plain(line: str) -> bool:
    """Whether a CSV row read from this line alone needs no more than ``str.strip`` of each value (:func:`_cells`):
    valid UTF-8 (decoded without lone surrogates), no longer than :data:`MAX_FIELD_CHARS` (the row's values
    joined are no longer than their line: no field too long) and NFC: ASCII (NFC whatever csv makes of it), or a
    line without ``"`` that is NFC as a whole (its values are the line cut at the commas, the line end dropped;
    the comma and the line ends compose with nothing, so the line is NFC exactly when every value is; the row
    test of :func:`_cells`, made once on the line instead of on the values joined again). A line with a quote
    is not: csv drops a closing quote and keeps what follows it in the value (``"Pha"\u0323m`` is an NFC line,
    its value ``Pha\u0323m`` is not)."""
    return (not _has_bad_encoding(line) and len(line) <= MAX_FIELD_CHARS
            and (line.isascii() or ('"' not in line and unicodedata.is_normalized("NFC", line))))  # fmt: skip


def read_records_range(
    path: str | Path, start: int, end: int | None, first_line: int, *, column_map: str | None = None,
    warn: bool = True, regroup_dir: Path | None = None, runs: PersonRuns | None = None,
    person: PersonReader | None = None,
) -> Iterator[Record | RowProblem]:
    """Stream the records of one range from :func:`split_for_parallel`.

    Same results and line numbers as :func:`read_records` over that part of
    the file; a CSV range after the first reads the header from the file's
    first line. ``warn``: log the CSV header's unused columns (once per
    file: the first range only). ``regroup_dir``: a one-row-per-dose CSV whose
    rows of one person are not consecutive (:func:`dose_rows_are_grouped`) is
    read whole (one range) and grouped through a temporary file there.
    ``runs``: learn whether the dose rows of each person are consecutive
    (:class:`PersonRuns`; without ``regroup_dir``). ``person``: what a person's dose rows
    become (default :func:`person_record`; the cleaning checks' fast path, :mod:`signer.cleaning.fast`).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"records file not found: {p}")
    suffix = p.suffix.lower()
    cmap = load_column_map(column_map)
    try:
        fh = p.open("rb")
    except OSError as err:
        raise ConfigError(f"cannot open {p}: {err.strerror}") from None
    try:
        with fh:
            if suffix in _JSONL_SUFFIXES:
                yield from _read_jsonl(_range_lines(fh, start, end), cmap, first_line - 1)
            elif suffix in _CSV_SUFFIXES:
                undecoded: list[int] = []  # lines not UTF-8 (the header's own test is _read_csv's)
                plain = [False]  # the last line given is _plain (see _csv_rows)
                if start == 0:
                    yield from _read_csv(_range_lines(fh, start, end, undecoded, plain), cmap, str(p), warn=warn,
                                         regroup_dir=regroup_dir, runs=runs, person=person,
                                         undecoded=undecoded, plain=plain)  # fmt: skip
                else:
                    header = next(_range_lines(fh, 0, 1), "")
                    lines = itertools.chain([header], _range_lines(fh, start, end, undecoded, plain))
                    yield from _read_csv(lines, cmap, str(p), first_line - 2, warn=False, runs=runs,
                                         person=person, undecoded=undecoded, plain=plain)
            else:
                raise ConfigError(f"{p}: unknown records format (use .jsonl or .csv)")
    except OSError as err:
        raise ConfigError(f"cannot read {p}: {err.strerror}") from None
