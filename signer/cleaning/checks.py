"""The record checks of issue 4, as pure functions returning reason codes.

    >>> import datetime as dt
    >>> from signer.records import Record, Dose
    >>> from signer.cleaning.checks import check_record
    >>> rec = Record("r1", "Trần Văn Đức", "1962", "M", "VN", "001062004567",
    ...              (Dose("2021-09-10", "Sinopharm", dose_number=1, series_doses=2),))
    >>> check_record(rec, today=dt.date(2026, 6, 1))
    ()
    >>> check_record(rec.__class__("r2", "Trần Văn Đức", "1962", "F", "VN", "001062004567"),
    ...              today=dt.date(2026, 6, 1))
    ('cccd_sex_mismatch', 'dose_missing')

Checklist (each item has its own code in templates/reason-codes.json):

1. Citizen ID. Missing, or a placeholder (``-``, ``N/A``, ``Không có``,
   ``NULL``, ...: ``id_missing``). Vietnamese citizens: 12 digits (CCCD, and
   the 12-digit CMND with the same layout) or 9 digits (CMND); digits of
   another length are ``id_wrong_length`` (a leading zero lost in a
   spreadsheet, a digit dropped or doubled), letters, symbols or non-ASCII
   digits ``id_invalid_characters``; digits split by spaces, dots or hyphens
   are repaired for the other checks and the registry, and reported as
   ``id_separators`` with the repaired ID as the suggestion. A 12-digit ID is ``PPP G YY NNNNNN`` (Circular 07/2016/TT-BCA
   Art. 7): PPP one of the 63 province codes (``cccd_province_unknown``); G
   the sex and century, even = male, odd = female, 0/1 = 1900s ... 8/9 =
   2300s (``cccd_sex_mismatch``); YY the last two digits of the birth year
   (with G, ``cccd_birth_year_mismatch``). Foreigners (nationality an ISO
   3166-1 alpha-2 or alpha-3 code other than VN/VNM; anything else, e.g.
   empty or "Việt Nam", is a citizen): a passport number, 6-20 letters/digits
   (``passport_format``), never looked up in the registry.
2. Name: present (``name_missing``); letters, spaces, ``' - .`` only
   (``name_invalid``). Case, whitespace and NFC are normalised, never flagged.
3. Sex present for citizens (``sex_missing``: the CCCD check needs it).
4. Date of birth: ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` (``dob_missing``,
   ``dob_format``), a real date (``dob_invalid_date``), at most 120 years
   ago (``dob_implausible``), not after today (``dob_future``).
5. Doses: at least one (``dose_missing``); date ``YYYY-MM-DD`` and real
   (``dose_date_invalid``), not after today (``dose_future``), not before birth
   (``dose_before_birth``); dose numbers strictly ascending in date order
   (``dose_order``); dose number <= doses in the series
   (``dose_number_exceeds_series``); a known product (``vaccine_unknown``);
   consecutive doses at least the product's minimum interval apart, or
   ``booster_min_days`` for a dose past the previous series
   (``dose_interval_short``).

Registry comparison (:func:`compare_with_registry`) adds the ``registry_*``
codes. Each list of codes comes back sorted in this checklist's order.
"""

from __future__ import annotations

import datetime as dt
import itertools
import operator
import re
from dataclasses import dataclass

from signer.records import DOSE_FIELDS, Record

from .tables import Tables, load_tables
from .text import fold, name_fold, name_is_valid, name_key, tone_key

MAX_AGE_YEARS = 120
# re.ASCII: \d would also accept full-width and other Unicode digits ("１９８５"),
# which int() reads but the DCC schema and the registry do not
_DIGITS = re.compile(r"\d+", re.ASCII)
_PASSPORT = re.compile(r"[A-Z0-9]{6,20}")
_PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", re.ASCII)
_FULL_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)


@dataclass(frozen=True)
class PartialDate:
    """A date of birth at the precision given: (year, month or 0, day or 0)."""

    year: int
    month: int = 0
    day: int = 0

    @property
    def earliest(self) -> dt.date:
        return dt.date(self.year, self.month or 1, self.day or 1)

    def after(self, today: dt.date) -> bool:
        """True when every date this stands for is after ``today``."""
        if self.day:
            return dt.date(self.year, self.month, self.day) > today
        if self.month:
            return (self.year, self.month) > (today.year, today.month)
        return self.year > today.year


def parse_partial_date(text: str) -> PartialDate | str:
    """A PartialDate, or the reason code why not (dob_format/dob_invalid_date)."""
    m = _PARTIAL_DATE.fullmatch(text)
    if not m:
        return "dob_format"
    year = int(m.group(1))
    month = int(m.group(2) or 0)
    day = int(m.group(3) or 0)
    try:
        dt.date(year, month or 1, day or 1)
    except ValueError:
        return "dob_invalid_date"
    if (m.group(2) and month == 0) or (m.group(3) and day == 0):
        return "dob_invalid_date"
    return PartialDate(year, month, day)


_DATES: dict[str, dt.date | None] = {}  # dose dates repeat: a small bounded cache


def parse_date(text: str) -> dt.date | None:
    """A real ``YYYY-MM-DD`` date, else None."""
    try:
        return _DATES[text]
    except KeyError:
        pass
    if len(_DATES) > 20000:
        _DATES.clear()
    found = _DATES[text] = _parse_date(text)
    return found


def _parse_date(text: str) -> dt.date | None:
    m = _FULL_DATE.fullmatch(text)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


_FOREIGN = re.compile(r"[A-Z]{2,3}", re.ASCII)
_VIETNAMESE = frozenset({"VN", "VNM"})


def is_citizen(record: Record) -> bool:
    """Not provably foreign: an ISO 3166-1 alpha-2 or alpha-3 code other than VN/VNM is foreign.

    Anything else (empty, "Việt Nam", "VIETNAM") is a citizen: a citizen's ID is
    checked, a foreigner's passport is not looked up.
    """
    nat = record.nationality
    try:
        return _CITIZEN[nat]
    except KeyError:
        return citizen_nationality(nat)


def citizen_nationality(nat: str) -> bool:
    """:func:`is_citizen` of a record with this nationality."""
    try:
        return _CITIZEN[nat]
    except KeyError:
        pass
    found = nat in _VIETNAMESE or _FOREIGN.fullmatch(nat) is None
    if len(_CITIZEN) < 1000:  # a handful of spellings; bounded anyway
        _CITIZEN[nat] = found
    return found


_CITIZEN: dict[str, bool] = {}


#: Separators people type inside an ID ("010 200 280776", "010.200.280776"): repaired for
#: matching, and reported (``id_separators``) so that the source gets corrected.
_SEPARATORS = re.compile(r"[\s.\-]+")
_UNUSABLE_ID = frozenset({"id_missing", "id_wrong_length", "id_invalid_characters"})


def repaired_id(ident: str) -> str:
    """The ID without separators when that leaves 9 or 12 ASCII digits, else ``ident`` itself."""
    if _DIGITS.fullmatch(ident):
        return ident
    compact = _SEPARATORS.sub("", ident)
    return compact if len(compact) in (9, 12) and _DIGITS.fullmatch(compact) else ident


def lookup_id(record: Record) -> str:
    """The ID to look up in the registry (separators removed)."""
    return repaired_id(record.id_number)


def needs_registry(record: Record, codes: tuple[str, ...]) -> bool:
    """Whether the registry can be asked about this record's ID."""
    if not is_citizen(record) or not record.id_number:
        return False
    return not _UNUSABLE_ID.intersection(codes)


def is_placeholder(ident: str, tables: Tables) -> bool:
    """``-``, ``N/A``, ``Không có``, ``NULL``, all zeros, punctuation only: no ID was given."""
    if not any(c.isalnum() for c in ident) or set(ident) == {"0"}:
        return True
    return " ".join(fold(ident).split()) in tables.id_placeholders


def check_id(record: Record, dob: PartialDate | None, tables: Tables) -> list[str]:
    return _check_id(record.id_number, record.sex, is_citizen(record), dob, tables)


def _check_id(ident: str, sex: str, citizen: bool, dob: PartialDate | None, tables: Tables) -> list[str]:
    """:func:`check_id` of a record with this ID, sex and citizenship."""
    digits = ident.isascii() and ident.isdigit()  # = _DIGITS.fullmatch(ident): ASCII digits only, not empty
    if digits:  # is_placeholder for ASCII digits: all zeros, or a placeholder of the table
        if not ident.strip("0") or ident in tables.id_placeholders:
            return ["id_missing"]
    elif not ident or is_placeholder(ident, tables):
        return ["id_missing"]
    if not citizen:
        return [] if _PASSPORT.fullmatch(ident.upper()) else ["passport_format"]
    out = []
    if not digits:
        repaired = repaired_id(ident)
        if repaired == ident:  # letters, symbols or non-ASCII digits, or separators around a wrong length
            compact = _SEPARATORS.sub("", ident)
            return ["id_wrong_length"] if _DIGITS.fullmatch(compact) else ["id_invalid_characters"]
        out.append("id_separators")
        ident = repaired
    elif len(ident) not in (9, 12):
        return ["id_wrong_length"]
    if len(ident) == 9:
        return out
    if ident[:3] not in tables.provinces:
        out.append("cccd_province_unknown")
    g = ord(ident[3]) - 48  # = int(ident[3]): the ID is ASCII digits here
    if sex in ("M", "F") and sex != ("M" if g % 2 == 0 else "F"):
        out.append("cccd_sex_mismatch")
    if dob is not None and 1900 + (g // 2) * 100 + (ord(ident[4]) - 48) * 10 + ord(ident[5]) - 48 != dob.year:
        out.append("cccd_birth_year_mismatch")
    return out


def check_doses(record: Record, dob: PartialDate | None, today: dt.date, tables: Tables) -> list[str]:
    return _check_doses(list(map(_dose_values, record.doses)), dob.earliest if dob is not None else None, today,
                        tables)  # fmt: skip


#: A dose as a tuple of its :data:`signer.records.DOSE_FIELDS` (what :func:`signer.records.person_values` gives).
DoseValues = tuple[str, str, str, int, int, str]
_dose_values = operator.attrgetter(*DOSE_FIELDS)


def _check_doses(doses: list[DoseValues], birth: dt.date | None, today: dt.date, tables: Tables) -> list[str]:
    """:func:`check_doses` of these doses with the earliest birth date (None: not compared)."""
    if not doses:
        return ["dose_missing"]
    found: set[str] = set()
    dated: list[tuple[int, int, int, str | None]] = []  # (day ordinal, dose number, series, product)
    products = tables.known_vaccines  # the canonical_vaccine cache: names seen before
    days = _DAYS
    last = today.toordinal()
    first = birth.toordinal() if birth is not None else 0
    for date, vaccine, _lot, number, series, _site in doses:
        try:
            product = products[vaccine]
        except KeyError:
            product = tables.canonical_vaccine(vaccine)
        if product is None:
            found.add("vaccine_unknown")
        if number and series and number > series:
            found.add("dose_number_exceeds_series")
        try:
            day = days[date]
        except KeyError:
            day = _day(date)
        if day is None:
            found.add("dose_date_invalid")
            continue
        if day > last:
            found.add("dose_future")
        if day < first:
            found.add("dose_before_birth")
        dated.append((day, number, series, product))
    if len(dated) > 1:
        dated.sort(key=_first)
        intervals, unknown, booster_days = tables.intervals, tables.unknown_min_days, tables.booster_min_days
        for (d1, n1, s1, p1), (d2, n2, _s2, p2) in itertools.pairwise(dated):
            if n1 and n2 and n2 <= n1:
                found.add("dose_order")
            # a dose past the previous series is a booster; an unknown product takes the other dose's minimum,
            # else the table's minimum for unknowns: never 0 (Tables.min_days)
            if s1 and n2 and n2 > s1:
                minimum = booster_days
            else:
                product = p1 or p2
                minimum = unknown if product is None else intervals.get(product, unknown)
            if d2 - d1 < minimum:
                found.add("dose_interval_short")
    return [c for c in _DOSE_ORDER if c in found] if found else []


_DAYS: dict[str, int | None] = {}  # dose dates as day ordinals (parse_date), a bounded cache


def _day(text: str) -> int | None:
    """``parse_date(text).toordinal()``, or None; cached."""
    if len(_DAYS) > 20000:
        _DAYS.clear()
    day = parse_date(text)
    found = _DAYS[text] = day.toordinal() if day is not None else None
    return found


_first = operator.itemgetter(0)
_DOSE_ORDER = (
    "dose_date_invalid",
    "dose_future",
    "dose_before_birth",
    "dose_order",
    "dose_number_exceeds_series",
    "vaccine_unknown",
    "dose_interval_short",
)


def check_record(record: Record, *, today: dt.date, tables: Tables | None = None) -> tuple[str, ...]:
    """Every check that needs no registry; () when the record is clean."""
    return check_values(record.id_number, record.full_name, record.date_of_birth, record.sex, is_citizen(record),
                        list(map(_dose_values, record.doses)), today, tables or load_tables())  # fmt: skip


def check_values(ident: str, name: str, dob_text: str, sex: str, citizen: bool, doses: list[DoseValues],
                 today: dt.date, tables: Tables) -> tuple[str, ...]:  # fmt: skip
    """:func:`check_record` of a record with these values (``citizen``: :func:`is_citizen`)."""
    # a date of birth with its own code is not compared with the ID's digits or the doses again
    dob, birth, dob_codes = _dob_verdict(dob_text, today)
    codes = _check_id(ident, sex, citizen, dob, tables)
    if not name:
        codes.append("name_missing")
    else:
        try:
            valid = _VALID_NAMES[name]
        except KeyError:
            valid = _valid_name(name)
        if not valid:
            codes.append("name_invalid")
    if not sex and citizen:
        codes.append("sex_missing")
    codes += dob_codes
    codes += _check_doses(doses, birth, today, tables)
    return tuple(codes)


_VALID_NAMES: dict[str, bool] = {}  # names repeat: name_is_valid once per name, a bounded cache


def _valid_name(name: str) -> bool:
    if len(_VALID_NAMES) > 50_000:
        _VALID_NAMES.clear()
    valid = _VALID_NAMES[name] = name_is_valid(name)
    return valid


_DobVerdict = tuple["PartialDate | None", "dt.date | None", tuple[str, ...]]
_DOBS: dict[tuple[str, dt.date], _DobVerdict] = {}  # dates of birth repeat: a bounded cache


def _dob_verdict(text: str, today: dt.date) -> _DobVerdict:
    """(the date of birth to compare further, its earliest day, its own codes); no date when it has codes."""
    key = (text, today)
    try:
        return _DOBS[key]
    except KeyError:
        pass
    if len(_DOBS) > 50_000:
        _DOBS.clear()
    dob: PartialDate | None = None
    if not text:
        codes = ["dob_missing"]
    else:
        parsed = parse_partial_date(text)
        if isinstance(parsed, str):
            codes = [parsed]
        else:
            codes = []
            if parsed.year < today.year - MAX_AGE_YEARS:
                codes.append("dob_implausible")
            if parsed.after(today):
                codes.append("dob_future")
            dob = None if codes else parsed
    found = _DOBS[key] = (dob, dob.earliest if dob is not None else None, tuple(codes))
    return found


@dataclass(frozen=True)
class RegistryEntry:
    """One person in the population registry (values for authorised staff only)."""

    id_number: str
    full_name: str
    date_of_birth: str
    sex: str
    province: str = ""
    commune: str = ""


def registry_entry(id_number: str, full_name: str, date_of_birth: str, sex: str) -> RegistryEntry:
    """``RegistryEntry(id_number, full_name, date_of_birth, sex)`` without the frozen dataclass's ``__init__``
    (one ``object.__setattr__`` per field): the registry look-up makes one per record checked."""
    entry = object.__new__(RegistryEntry)
    object.__setattr__(entry, "__dict__", {"id_number": id_number, "full_name": full_name,
                                           "date_of_birth": date_of_birth, "sex": sex, "province": "", "commune": ""})  # fmt: skip
    return entry


def dates_agree(a: str, b: str) -> bool:
    """Same date at the precision both give ("1962" agrees with "1962-05-03")."""
    n = min(len(a), len(b))
    return n >= 4 and a[:n] == b[:n] and len(a) in (4, 7, 10) and len(b) in (4, 7, 10)


def compare_with_registry(
    record: Record, entry: RegistryEntry, *, name: bool = True, dob: bool = True
) -> tuple[str, ...]:
    """The ``registry_*`` codes for a record whose ID the registry knows (``name``/``dob``: compare them)."""
    return compare_values(record.full_name, record.date_of_birth, record.sex, entry.full_name, entry.date_of_birth,
                          entry.sex, name=name, dob=dob)  # fmt: skip


def compare_values(mine: str, date_of_birth: str, sex: str, theirs: str, their_date: str, their_sex: str, *,
                   name: bool = True, dob: bool = True) -> tuple[str, ...]:  # fmt: skip
    """:func:`compare_with_registry` of a record with this name, date of birth and sex, and a registry
    person with theirs."""
    codes = []
    if name and mine != theirs and name_key(mine) != name_key(theirs) and tone_key(mine) != tone_key(theirs):
        if name_fold(mine) == name_fold(theirs):
            codes.append("registry_name_diacritics")
        else:
            codes.append("registry_name_mismatch")
    if dob and not dates_agree(date_of_birth, their_date):
        codes.append("registry_dob_mismatch")
    if sex in ("M", "F") and their_sex in ("M", "F") and sex != their_sex:
        codes.append("registry_sex_mismatch")
    return tuple(codes)


#: The record's own date-of-birth codes: the date is wrong already, so it is not compared further.
DOB_CODES = frozenset({"dob_missing", "dob_format", "dob_invalid_date", "dob_implausible", "dob_future"})
NAME_CODES = frozenset({"name_missing", "name_invalid"})
CCCD_CODES = frozenset({"cccd_province_unknown", "cccd_sex_mismatch", "cccd_birth_year_mismatch"})


def with_registry(record: Record, codes: tuple[str, ...], entry: RegistryEntry | None) -> tuple[str, ...]:
    """The record's codes once the registry has answered for its ID: one cause, one reason (issue 9, point 4).

    - The registry does not know the ID: ``registry_not_found``, unless a
      ``cccd_*`` code already says why (a digit that cannot be right).
    - The registry knows the ID: the ID is real. A ``cccd_sex_mismatch`` or
      ``cccd_birth_year_mismatch`` whose digits agree with the registry's
      person is the record's sex or date of birth being wrong, reported once,
      as ``registry_sex_mismatch``/``registry_dob_mismatch``; a province code
      the table lacks is no reason to send the police after a real ID.
    - A name or date of birth with its own code (missing, malformed, ...) is
      not compared with the registry again.
    """
    if entry is None:
        if CCCD_CODES.intersection(codes):
            return codes
        return (*codes, "registry_not_found")
    if not codes:  # the usual record: nothing to drop, everything to compare
        return compare_with_registry(record, entry)
    ident = lookup_id(record)
    keep = set(codes)
    if len(ident) == 12:
        g = int(ident[3])
        keep.discard("cccd_province_unknown")
        if entry.sex not in ("M", "F") or entry.sex == ("M" if g % 2 == 0 else "F"):
            keep.discard("cccd_sex_mismatch")
        year = 1900 + (g // 2) * 100 + int(ident[4:6])
        if entry.date_of_birth[:4] == str(year):
            keep.discard("cccd_birth_year_mismatch")
    base = tuple(c for c in codes if c in keep)
    extra = compare_with_registry(record, entry, name=not NAME_CODES.intersection(codes),
                                  dob=not DOB_CODES.intersection(codes))  # fmt: skip
    return base + extra


#: The registry fields a ``registry_*`` code says differ.
DIFFERING_FIELD = {
    "registry_name_mismatch": "full_name",
    "registry_name_diacritics": "full_name",
    "registry_dob_mismatch": "date_of_birth",
    "registry_sex_mismatch": "sex",
}
