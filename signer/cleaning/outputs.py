"""Reconciliation lists per commune (CSV + XLSX) and the Ministry's summary.

    >>> from signer.cleaning.outputs import format_summary
    >>> print(format_summary(summary_json))   # doctest: +SKIP

**Reconciliation lists** go to the commune police (Decision 5772/QĐ-BYT,
step 1): ``reconciliation/<province>/<commune>.csv`` and ``.xlsx``, one row
per flagged record: the record as exported, the reason codes with their
Vietnamese and English labels, the registry fields that differ, and the
suggested registry ID when exactly one registry person of that commune has
the same name (diacritics aside) and date of birth. The registry's *values*
(name, date of birth, sex of the registry entry and of the suggestion) are
added only with ``show_registry_values`` (authorised staff); they never go
to logs. Unreadable rows are listed in ``reconciliation/_unreadable-rows.csv``
with their line number and reason.

**Summary** in the Ministry's terms: subjects (people) and doses checked,
verified, with wrong personal information, with a missing or wrongly
formatted ID, with wrong vaccination data, unreadable; in total, by province
and by commune. A record falls in one category, the first that applies in
the order row > id > personal > dose (reason categories in
templates/reason-codes.json).
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import io
import itertools
import re
import sqlite3
from collections.abc import Iterator
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Any, NamedTuple

from signer.records import PersonRuns

from .private import make_private_dir, open_private
from .tables import Tables
from .text import fold
from .xlsx import XlsxWriter, cells, text_cells

CATEGORY_KEYS = {
    "row": "unreadable",
    "id": "id_missing_or_malformed",
    "personal": "wrong_information",
    "dose": "wrong_vaccination_data",
}
COUNT_KEYS = ("checked", "verified", "wrong_information", "id_missing_or_malformed", "wrong_vaccination_data", "unreadable")
LABELS = {
    "checked": ("Đã kiểm tra", "checked"),
    "verified": ("Đã xác thực", "verified"),
    "wrong_information": ("Sai thông tin cá nhân", "wrong information"),
    "id_missing_or_malformed": ("Thiếu/sai định dạng CCCD", "missing/malformed ID"),
    "wrong_vaccination_data": ("Sai thông tin tiêm", "wrong vaccination data"),
    "unreadable": ("Dòng lỗi", "unreadable rows"),
}
SHEET_NAME = "Đối chiếu"
RECORD_COLUMNS = ("record_id", "full_name", "date_of_birth", "sex", "nationality", "id_number", "province", "commune")


def _zero() -> dict[str, dict[str, int]]:
    return {"subjects": dict.fromkeys(COUNT_KEYS, 0), "doses": dict.fromkeys(COUNT_KEYS, 0)}


class Summary:
    """Counters by province and commune (bounded by the number of communes)."""

    def __init__(self, tables: Tables):
        self.tables = tables
        self.total = _zero()
        self.places: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
        self.reasons: dict[str, int] = {}
        self.reused = 0
        self.rechecked = 0
        self.newly_verified = 0
        self.foreign_verified = 0
        self.peak_rss_mb = 0.0
        self.rows_read = 0  # export rows (dose rows of one person count one each)
        self.soft_verified = 0  # verified with a soft reason (listed for correction too)
        self.people_read = 0  # records read (a person's dose rows grouped)
        self.phones = 0  # records with a usable phone number (E.164)
        self.phones_unusable = 0  # records whose phone number was given but unusable (dropped)
        self.person_runs: PersonRuns | None = None  # a worker's answer: are a person's dose rows consecutive?
        self.first_run = False  # a worker's: it met an empty results store and wrote no new part (signer.cleaning.run)
        self._cat_cache: dict[tuple[str, ...], str] = {}
        self._pending: dict[tuple[str, str, tuple[str, ...], int, bool, bool], int] = {}

    def category(self, codes: tuple[str, ...]) -> str:
        cat = self._cat_cache.get(codes)
        if cat is None:
            cats = {self.tables.reasons[c].category for c in codes}
            cat = next((CATEGORY_KEYS[k] for k in CATEGORY_KEYS if k in cats), "verified")
            if len(self._cat_cache) < 10000:
                self._cat_cache[codes] = cat
        return cat

    def add(self, province: str, commune: str, codes: tuple[str, ...], doses: int,
            *, reused: bool = False, foreign: bool = False) -> None:  # fmt: skip
        """Count one record (or unreadable row). Counted in batches: read the counters after :meth:`settle`."""
        key = (province, commune, codes, doses, reused, foreign)
        pending = self._pending
        pending[key] = pending.get(key, 0) + 1
        if len(pending) > 20_000:  # bounded: distinct (place, codes, doses) seen since the last settle
            self.settle()

    def add_verified(self, counts: dict[tuple[str, str, int], int]) -> None:
        """:meth:`add` of citizens checked now and verified without a code, counted by (province, commune, doses)
        (a chunk's clean people at once)."""
        pending = self._pending
        for (province, commune, doses), n in counts.items():
            key = (province, commune, (), doses, False, False)
            pending[key] = pending.get(key, 0) + n
        if len(pending) > 20_000:
            self.settle()

    def settle(self) -> None:
        """Apply the records counted by :meth:`add` to the counters."""
        pending, self._pending = self._pending, {}
        for (province, commune, codes, doses, reused, foreign), n in pending.items():
            self._apply(province, commune, codes, doses, reused, foreign, n)

    def _apply(self, province: str, commune: str, codes: tuple[str, ...], doses: int,
               reused: bool, foreign: bool, n: int) -> None:  # fmt: skip
        cat = self.category(codes)
        prov = self.places.setdefault(province, {})
        comm = prov.get(commune)
        if comm is None:
            comm = prov[commune] = _zero()
        for counters in (self.total, comm):
            counters["subjects"]["checked"] += n
            counters["subjects"][cat] += n
            counters["doses"]["checked"] += doses * n
            counters["doses"][cat] += doses * n
        for c in codes:
            self.reasons[c] = self.reasons.get(c, 0) + n
        if cat == "unreadable" and not doses and codes and codes[0].startswith("row_"):
            return
        if reused:
            self.reused += n
        else:
            self.rechecked += n
        if foreign and not codes:
            self.foreign_verified += n

    def recategorise(self, province: str, commune: str, doses: int,
                     old: tuple[str, ...], new: tuple[str, ...]) -> None:  # fmt: skip
        """Move one counted record from the category of ``old`` codes to that of ``new``."""
        self.settle()
        was, now = self.category(old), self.category(new)
        for counters in (self.total, self.places[province][commune]):
            counters["subjects"][was] -= 1
            counters["subjects"][now] += 1
            counters["doses"][was] -= doses
            counters["doses"][now] += doses
        for c in old:
            self.reasons[c] -= 1
            if not self.reasons[c]:
                del self.reasons[c]
        for c in new:
            self.reasons[c] = self.reasons.get(c, 0) + 1

    def merge(self, other: Summary) -> None:
        """Add another worker's counters."""
        self.settle()
        other.settle()
        for unit in ("subjects", "doses"):
            for k in COUNT_KEYS:
                self.total[unit][k] += other.total[unit][k]
        for prov, communes in other.places.items():
            mine = self.places.setdefault(prov, {})
            for comm, counts in communes.items():
                if comm not in mine:
                    mine[comm] = counts
                    continue
                for unit in ("subjects", "doses"):
                    for k in COUNT_KEYS:
                        mine[comm][unit][k] += counts[unit][k]
        for c, n in other.reasons.items():
            self.reasons[c] = self.reasons.get(c, 0) + n
        self.reused += other.reused
        self.rechecked += other.rechecked
        self.newly_verified += other.newly_verified
        self.foreign_verified += other.foreign_verified
        self.rows_read += other.rows_read
        self.soft_verified += other.soft_verified
        self.people_read += other.people_read
        self.phones += other.phones
        self.phones_unusable += other.phones_unusable

    def to_json(
        self, *, now: dt.datetime, records: str, registry: dict[str, Any], files: dict[str, int], workers: int = 1
    ) -> dict[str, Any]:
        self.settle()
        provinces = []
        for prov in sorted(self.places):
            communes = self.places[prov]
            ptotal = _zero()
            for counts in communes.values():
                for unit in ("subjects", "doses"):
                    for k in COUNT_KEYS:
                        ptotal[unit][k] += counts[unit][k]
            provinces.append(
                {
                    "province": prov,
                    **ptotal,
                    "communes": [{"commune": c, **communes[c]} for c in sorted(communes)],
                }
            )
        return {
            "checked_at": now.astimezone(dt.UTC).isoformat(),
            "records_file": records,
            "registry": registry,
            "totals": self.total,
            "foreigners_verified_without_registry": self.foreign_verified,
            "verified_with_soft_reasons": self.soft_verified,
            "incremental": {
                "rechecked": self.rechecked,
                "unchanged_reused": self.reused,
                "newly_verified": self.newly_verified,
            },
            # most frequent first, ties by code: not the order first met, which with
            # 2 workers differs from 1 (each worker meets them in its own order)
            "reasons": dict(sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            "files": files,
            "workers": workers,
            "by_province": provinces,
        }


def format_summary(result: dict[str, Any]) -> str:
    """The printed summary: totals, reasons and one line per province."""
    keys = COUNT_KEYS
    lines = ["Tổng hợp rà soát dữ liệu tiêm chủng / Vaccination data check summary"]
    head = f"{'':28}" + "".join(f"{LABELS[k][1][:14]:>15}" for k in keys)
    lines.append(head)
    for unit, label in (("subjects", "Đối tượng / subjects"), ("doses", "Mũi tiêm / doses")):
        lines.append(f"{label:28}" + "".join(f"{result['totals'][unit][k]:>15,}" for k in keys))
    inp = result.get("input")
    if inp and inp["shape"] == "dose_rows":
        lines.append(f"one row per dose: {inp['rows']:,} rows grouped into {inp['people']:,} people")
    inc = result["incremental"]
    lines.append(
        f"re-checked {inc['rechecked']:,}, unchanged (reused) {inc['unchanged_reused']:,}, "
        f"newly verified {inc['newly_verified']:,}; foreigners verified without registry "
        f"{result['foreigners_verified_without_registry']:,}"
    )
    if result["reasons"]:
        lines.append("Reasons: " + ", ".join(f"{c} {n:,}" for c, n in result["reasons"].items()))
    lines.append("By province (subjects):")
    lines.append(f"{'':28}" + "".join(f"{LABELS[k][1][:14]:>15}" for k in keys))
    for prov in result["by_province"]:
        name = prov["province"] or "(unreadable rows)"
        lines.append(f"{name[:28]:28}" + "".join(f"{prov['subjects'][k]:>15,}" for k in keys))
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")[:80] or "_unknown"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _no_formula(value: Any) -> Any:
    """A CSV cell a spreadsheet would run as a formula, quoted (OWASP "CSV injection")."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


#: in "\x1f" + the row's texts joined by "\x1f": a text that starts with one of _FORMULA_START (or a
#: "\x1f" inside a text; no alternation with "^": a pattern that starts with a literal is searched fast)
_FORMULA_CELL = re.compile("\x1f[=+\\-@\t\r]")


def _no_formula_cells(values: list[Any]) -> bool:
    """True when no text of the row starts as a formula, by one search over the row (the first cell
    may be a number, the line); False also when that cannot be told so (then each cell is looked at)."""
    if not values:
        return True
    try:
        joined = "\x1f" + "\x1f".join(values[1:] if type(values[0]) is int else values)
    except TypeError:  # a cell that is not a text
        return False
    return _FORMULA_CELL.search(joined) is None


class _Writers:
    def __init__(self, base: Path, header: list[str], formats: tuple[str, ...], engine: str = "fast"):
        self.base = base
        make_private_dir(base.parent)
        self.fh = None
        self.lines: list[str] = []  # CSV lines made by flagged(), written 256 at a time
        self.wb: Any = None
        self.xlsx: XlsxWriter | None = None
        if "csv" in formats:
            self.fh = open_private(base.with_suffix(".csv"), "w", encoding="utf-8-sig", newline="")
            self.csv = csv.writer(self.fh)
            self.csv.writerow(header)
        if "xlsx" in formats and engine == "openpyxl":
            from openpyxl import Workbook

            self.wb = Workbook(write_only=True)
            self.ws = self.wb.create_sheet(SHEET_NAME)
            self.ws.append(header)
        elif "xlsx" in formats:
            self.xlsx = XlsxWriter(base.with_suffix(".xlsx"), sheet=SHEET_NAME)
            self.xlsx.row(header)

    def row(self, values: list[Any], *, xlsx: bool = True) -> None:
        if self.fh is not None:
            self._csv_flush()
            if _no_formula_cells(values):
                self.csv.writerow(values)
            else:
                self.csv.writerow([("'" + v) if type(v) is str and v.startswith(_FORMULA_START) else v for v in values])
        if not xlsx:
            return
        if self.xlsx is not None:
            self.xlsx.row(values)  # inline strings: never a formula
        elif self.wb is not None:
            self.ws.append([self._text_cell(v) for v in values])

    def flagged(self, line: int, var: list[str], t: _RowTexts) -> None:
        """A flagged record's row: ``line``, the texts of ``var`` (the record's 9, the differing fields and
        the suggestion, [the 6 registry values]) and the reason texts ``t`` between them, CSV and XLSX made
        from pieces: ``t``'s made once per code string, the record's texts joined in one go when they need
        no quoting or escaping (most rows), else cell by cell as :meth:`row` does."""
        if self.wb is not None:
            self.row(t.values(line, var))
            return
        if self.fh is not None:
            try:
                joined = "\x1f" + "\x1f".join(var)
            except TypeError:  # a value that is not a text
                joined = ","
            if type(line) is not int or "," in joined or '"' in joined or "\n" in joined or "\r" in joined \
                    or _FORMULA_CELL.search(joined):  # fmt: skip
                self._csv_flush()
                self.row(t.values(line, var), xlsx=False)
            else:
                self.lines.append(",".join((str(line), *var[:9], t.csv_mid, var[9], var[10], t.csv_tail, *var[11:]))
                                  + "\r\n")  # fmt: skip
                if len(self.lines) >= 256:
                    self._csv_flush()
        if self.xlsx is not None:
            rec, mid, extra = text_cells(var[:9]), text_cells(var[9:11]), text_cells(var[11:])
            if rec is None or mid is None or extra is None or type(line) is not int:
                self.xlsx.row(t.values(line, var))
            else:
                self.xlsx.row_cells(f"<c><v>{line}</v></c>" + rec + t.xml_mid + mid + t.xml_tail + extra)

    def _csv_flush(self) -> None:
        if self.lines:
            assert self.fh is not None
            self.fh.write("".join(self.lines))
            self.lines.clear()

    def _text_cell(self, value: Any) -> Any:
        """openpyxl makes a "=..." string a formula: keep it text (as our writer does)."""
        if isinstance(value, str) and value.startswith("="):
            from openpyxl.cell import WriteOnlyCell

            cell = WriteOnlyCell(self.ws, value=value)
            cell.data_type = "s"
            return cell
        return value

    def close(self) -> int:
        n = 0
        if self.fh is not None:
            self._csv_flush()
            self.fh.close()
            n += 1
        if self.xlsx is not None:
            self.xlsx.close()
            n += 1
        elif self.wb is not None:
            with open_private(self.base.with_suffix(".xlsx"), "wb") as fh:
                self.wb.save(fh)
            n += 1
        return n


def _rows(scratches: list[Path], part: int) -> Iterator[tuple[Any, ...]]:
    """Flagged rows of one part in (place, line) order: each worker's file is read in index
    order (no sort in memory) and the files are merged."""
    conns = [sqlite3.connect(f"file:{p}?mode=ro", uri=True) for p in scratches]

    def one(conn: sqlite3.Connection) -> Iterator[tuple[Any, ...]]:
        cur = conn.execute(
            "SELECT place, line, record_id, full_name, date_of_birth, sex, nationality, id_number, province, "
            "commune, doses, codes, fields, suggestion, registry_id, message "
            "FROM flagged WHERE part = ? ORDER BY place, line",
            (part,),
        )
        while batch := cur.fetchmany(2000):
            yield from batch

    try:
        # by (place, line): the rows' own order, as the lines of two workers' ranges never meet (no key
        # function call per row)
        yield from heapq.merge(*(one(c) for c in conns))
    finally:
        for c in conns:
            c.close()


def write_reconciliation(
    scratches: list[Path],
    target: Path,
    tables: Tables,
    registry: Any,
    *,
    part: int = 0,
    formats: tuple[str, ...] = ("csv", "xlsx"),
    show_registry_values: bool = False,
    xlsx_engine: str = "fast",
) -> dict[str, int]:
    """Write the lists of one share of the communes into the directory ``target``.

    ``scratches`` are the workers' flagged-record files; communes are shared
    out by the ``part`` column (a hash of the place), row problems go with
    part 0. Returns file counts.
    """
    header = ["line", *RECORD_COLUMNS, "doses", "reason_codes", "reasons_vi", "reasons_en",
              "differing_fields", "suggested_id", "fix_vi", "fix_en"]  # fmt: skip
    if show_registry_values:
        header += ["registry_full_name", "registry_date_of_birth", "registry_sex",
                   "suggested_full_name", "suggested_date_of_birth", "suggested_sex"]  # fmt: skip
    counts = {"communes": 0, "files": 0, "flagged_records": 0, "unreadable_rows": 0}
    texts = _code_texts(tables)
    for place, group in groupby(_rows(scratches, part), key=lambda r: r[0]):
        if place == "":
            counts["files"] += _write_unreadable(target / "_unreadable-rows.csv", group, tables, counts)
            continue
        first = next(group)
        writers = _Writers(target / _slug(first[8]) / _slug(first[9]), header, formats, xlsx_engine)
        counts["communes"] += 1
        stream = itertools.chain([first], group)  # noqa: B031  (group is read once, through stream)
        while rows := list(itertools.islice(stream, 1000)):  # a big commune is streamed, not held
            entries: dict[str, Any] = {}
            if show_registry_values:
                entries = registry.lookup([r[14] for r in rows if r[14]] + [r[13] for r in rows if r[13]])
            for r in rows:
                fields, sugg = r[12], r[13]
                var: list[Any] = [*r[2:11], fields.replace(";", " "), sugg]
                if show_registry_values:
                    reg_id = r[14]
                    own = entries.get(reg_id) if reg_id and fields else None
                    other = entries.get(sugg) if sugg else None
                    var += [own.full_name if own else "", own.date_of_birth if own else "",
                            own.sex if own else "", other.full_name if other else "",
                            other.date_of_birth if other else "", other.sex if other else ""]  # fmt: skip
                writers.flagged(r[1], var, texts(r[11]))
            counts["flagged_records"] += len(rows)
        counts["files"] += writers.close()
    return counts


class _RowTexts(NamedTuple):
    """A list row's texts that come from its codes (the same for every row of those codes), as
    texts and already made into CSV fields and XLSX cells."""

    codes: str
    vi: str
    en: str
    fix_vi: str
    fix_en: str
    csv_mid: str  # codes, vi, en: three CSV fields
    csv_tail: str  # fix_vi, fix_en: two CSV fields
    xml_mid: str
    xml_tail: str

    def values(self, line: int, var: list[Any]) -> list[Any]:
        """The row's values in column order (:meth:`_Writers.flagged`'s ``line`` and ``var``)."""
        return [line, *var[:9], self.codes, self.vi, self.en, var[9], var[10], self.fix_vi, self.fix_en, *var[11:]]


def _csv_fields(texts: list[str]) -> str:
    """Several texts as csv.writer writes them in a row (a formula-like text quoted first, as
    :meth:`_Writers.row` does), without the line end."""
    assert len(texts) > 1  # csv.writer writes a row of one empty field as '""'
    buf = io.StringIO()
    csv.writer(buf).writerow([("'" + v) if v.startswith(_FORMULA_START) else v for v in texts])
    return buf.getvalue()[:-2]


def _code_texts(tables: Tables) -> Any:
    """``codes -> _RowTexts`` of a list row (codes repeat: cached)."""
    reasons = tables.reasons

    @lru_cache(maxsize=4096)
    def texts(codes: str) -> _RowTexts:
        code_list = codes.split(";") if codes else []
        mid = [" ".join(code_list), "; ".join(reasons[c].vi for c in code_list),
               "; ".join(reasons[c].en for c in code_list)]  # fmt: skip
        tail = ["; ".join(reasons[c].fix_vi for c in code_list if reasons[c].fix_vi),
                "; ".join(reasons[c].fix_en for c in code_list if reasons[c].fix_en)]  # fmt: skip
        return _RowTexts(mid[0], mid[1], mid[2], tail[0], tail[1], _csv_fields(mid), _csv_fields(tail), cells(mid),
                         cells(tail))

    return texts


def _write_unreadable(path: Path, rows: Iterator[tuple[Any, ...]], tables: Tables, counts: dict[str, int]) -> int:
    with open_private(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["line", "record_id", "reason_code", "reason_vi", "reason_en", "message"])
        for r in rows:
            code = r[11]
            w.writerow([r[1], _no_formula(r[2]), code, tables.reasons[code].vi, tables.reasons[code].en,
                        _no_formula(r[15])])  # fmt: skip
            counts["unreadable_rows"] += 1
    return 1
