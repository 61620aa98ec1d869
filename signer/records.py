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
import itertools
import json
import operator
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from verifier.errors import ConfigError

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

    def to_json(self) -> dict[str, Any]:
        """The JSON Lines form (inverse of :func:`record_from_mapping`)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in FIELDS}
        out["doses"] = [{name: getattr(dose, name) for name in DOSE_FIELDS} for dose in self.doses]
        if self.verified:
            out["verified"] = self.verified
        return out


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
    dose: Mapping[str, tuple[str, ...]]
    sex_values: Mapping[str, str]
    _extra: dict[str, Any] = field(default_factory=dict)


def _norm_header(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


@lru_cache(maxsize=4)
def load_column_map(path: str | None = None) -> _ColumnMap:
    """Load templates/columns.json (or another mapping file)."""
    try:
        if path is None:
            raw = resources.files("templates").joinpath("columns.json").read_text("utf-8")
        else:
            raw = Path(path).read_text("utf-8")
        data = json.loads(raw)
        fields = {k: tuple(data[k]) for k in FIELDS}
        dose = {k: tuple(data["dose"][k]) for k in DOSE_FIELDS}
        sex_values = {
            _norm_header(alias): canon
            for canon, aliases in data.get("sex_values", {}).items()
            for alias in aliases
        }
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"column mapping {path or 'templates/columns.json'}: {err}") from None
    return _ColumnMap(fields=fields, dose=dose, sex_values=sex_values)


def normalize_sex(value: str, column_map: _ColumnMap | None = None) -> str | None:
    """Canonical sex code, "" for empty, None for an unknown spelling."""
    text = _norm_header(value)
    if not text:
        return ""
    return (column_map or load_column_map()).sex_values.get(text)


def read_records(
    path: str | Path, *, column_map: str | None = None
) -> Iterator[Record | RowProblem]:
    """Stream records from a ``.jsonl``/``.json`` or ``.csv`` file.

    Raises :class:`ConfigError` for a missing or unreadable file or an
    unusable CSV header; bad rows are yielded as :class:`RowProblem`. Memory
    stays bounded whatever the input: a line longer than
    :data:`MAX_LINE_BYTES` is skipped as it is read (``line_too_long``), a
    field longer than :data:`MAX_FIELD_CHARS` makes its row a
    ``field_too_long``, JSON nested too deeply a ``bad_json``.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"records file not found: {p}")
    suffix = p.suffix.lower()
    if suffix not in _JSONL_SUFFIXES + _CSV_SUFFIXES:
        raise ConfigError(f"{p}: unknown records format (use .jsonl or .csv)")
    yield from read_records_range(p, 0, None, 1, column_map=column_map)


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
    rec = _record({k: _text(obj.get(k)) for k in FIELDS}, tuple(doses), lineno, cmap)
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
    return Dose(
        date=values.get("date", ""),
        vaccine=values.get("vaccine", ""),
        lot=values.get("lot", ""),
        dose_number=number,
        series_doses=series,
        site=values.get("site", ""),
    )


def _record(
    values: Mapping[str, str], doses: tuple[Dose, ...], lineno: int, cmap: _ColumnMap
) -> Record | RowProblem:
    rid = values.get("record_id", "")
    too_long = _field_too_long(values, lineno, rid)
    if too_long is not None:
        return too_long
    sex = normalize_sex(values.get("sex", ""), cmap)
    if sex is None:
        return RowProblem(lineno, "bad_sex", "sex must be M/F/X (Nam/Nữ/Khác) or empty", rid)
    return Record(
        record_id=rid,
        full_name=" ".join(values.get("full_name", "").split()),
        date_of_birth=values.get("date_of_birth", ""),
        sex=sex,
        nationality=values.get("nationality", "").upper() or "VN",
        id_number=values.get("id_number", "").replace(" ", ""),
        doses=doses,
        province=values.get("province", ""),
        commune=values.get("commune", ""),
        line=lineno,
    )


def _resolve_header(
    header: list[str], cmap: _ColumnMap, where: str
) -> tuple[dict[str, int], dict[int, dict[str, int]]]:
    normalized = [_norm_header(h) for h in header]
    fields: dict[str, int] = {}
    for name, aliases in cmap.fields.items():
        for alias in aliases:
            key = _norm_header(alias)
            if key in normalized:
                fields[name] = normalized.index(key)
                break
    doses: dict[int, dict[str, int]] = {}
    for name, aliases in cmap.dose.items():
        for alias in aliases:
            pattern = re.compile(
                re.escape(_norm_header(alias)).replace(r"\{i\}", r"([0-9]{1,2})") + "$"
            )
            for col, h in enumerate(normalized):
                m = pattern.match(h)
                if m:
                    doses.setdefault(int(m.group(1)), {}).setdefault(name, col)
    for required in ("full_name", "date_of_birth"):
        if required not in fields:
            raise ConfigError(
                f"{where}: CSV header lacks a column for {required!r} "
                f"(accepted: {', '.join(cmap.fields[required])}); see templates/columns.json"
            )
    return fields, doses


def _read_csv(
    fh: Iterable[str | None], cmap: _ColumnMap, where: str, line_offset: int = 0
) -> Iterator[Record | RowProblem]:
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
    fields, dose_cols = _resolve_header(header, cmap, where)
    width = len(header)
    while True:
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
        rid = (
            row[fields["record_id"]].strip()
            if "record_id" in fields and len(row) > fields["record_id"]
            else ""
        )
        if len(rid) > MAX_FIELD_CHARS:
            rid = ""
        if len(row) != width:
            yield RowProblem(
                lineno, "column_count", f"expected {width} columns, found {len(row)}", rid
            )
            continue
        if _has_bad_encoding("".join(row)):
            yield RowProblem(lineno, "bad_encoding", "row is not valid UTF-8", "")
            continue
        values = {name: _text(row[col]) for name, col in fields.items()}
        doses = []
        problem: RowProblem | None = None
        for index in sorted(dose_cols):
            cols = dose_cols[index]
            dvalues = {name: _text(row[col]) for name, col in cols.items()}
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


def write_jsonl(records: Iterable[Record], fh: TextIO) -> int:
    """Write records as JSON Lines; returns the count."""
    n = 0
    for rec in records:
        fh.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
        n += 1
    return n


# -- parallel reading (added for signer.cleaning) ---------------------------


def split_for_parallel(path: str | Path, parts: int) -> list[tuple[int, int, int]]:
    """Cut a records file into up to ``parts`` byte ranges ``(start, end, first_line)``.

    Cuts fall at line starts outside quoted CSV fields (an even number of
    ``"`` before the cut, RFC 4180 quoting), so that
    :func:`read_records_range` over all ranges yields what
    :func:`read_records` yields, with the same line numbers. Reads the file
    in blocks: memory does not depend on line lengths.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        fh = p.open("rb")
    except OSError as err:
        raise ConfigError(f"cannot open {p}: {err.strerror}") from None
    targets = [size * k // parts for k in range(1, parts)]
    cuts: list[tuple[int, int]] = [(0, 1)]
    with fh:
        base = lines = quotes = 0  # base: file offset of block[0]
        while targets:
            block = fh.read(1 << 20)
            if not block:
                break
            if base + len(block) <= targets[0]:  # no cut can fall in this block
                lines += block.count(b"\n")
                quotes += block.count(b'"')
                base += len(block)
                continue
            start = 0
            while targets:
                nl = block.find(b"\n", start)
                if nl < 0:
                    quotes += block.count(b'"', start)
                    break
                quotes += block.count(b'"', start, nl + 1)
                lines += 1
                start = nl + 1
                cut = base + start
                if cut > targets[0] and quotes % 2 == 0:
                    if cut < size:
                        cuts.append((cut, lines + 1))
                    while targets and targets[0] < cut:
                        targets.pop(0)
            base += len(block)
    ranges = []
    for i, (start, first_line) in enumerate(cuts):
        end = cuts[i + 1][0] if i + 1 < len(cuts) else size
        if end > start:
            ranges.append((start, end, first_line))
    return ranges or [(0, size, 1)]


def _range_lines(fh: BinaryIO, start: int, end: int | None) -> Iterator[str | None]:
    """Decoded lines of ``fh`` from byte ``start`` up to ``end`` (None: the end of the file).

    A line longer than :data:`MAX_LINE_BYTES` comes out as ``None`` and is
    skipped block by block, never held whole. A byte-order mark at the start
    of the file is dropped.
    """
    fh.seek(start)
    pos = start
    first = start == 0
    readline = fh.readline
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
            yield None
            continue
        line = raw.decode("utf-8", "surrogateescape")
        if first:
            line = line.removeprefix("\ufeff")
            first = False
        yield line


def read_records_range(
    path: str | Path, start: int, end: int | None, first_line: int, *, column_map: str | None = None
) -> Iterator[Record | RowProblem]:
    """Stream the records of one range from :func:`split_for_parallel`.

    Same results and line numbers as :func:`read_records` over that part of
    the file; a CSV range after the first reads the header from the file's
    first line.
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
                if start == 0:
                    yield from _read_csv(_range_lines(fh, start, end), cmap, str(p))
                else:
                    header = next(_range_lines(fh, 0, 1), "")
                    lines = itertools.chain([header], _range_lines(fh, start, end))
                    yield from _read_csv(lines, cmap, str(p), first_line - 2)
            else:
                raise ConfigError(f"{p}: unknown records format (use .jsonl or .csv)")
    except OSError as err:
        raise ConfigError(f"cannot read {p}: {err.strerror}") from None
