"""One cleaning run: stream an export through the checks and the registry.

    >>> import datetime as dt
    >>> from signer.cleaning.run import CheckOptions, run_checks
    >>> summary = run_checks(CheckOptions(records="records.csv", registry="registry.csv",
    ...                      out_dir="out", now=dt.datetime.now(dt.UTC)))  # doctest: +SKIP
    >>> summary["totals"]["subjects"]["verified"]                           # doctest: +SKIP

Records are read with :func:`signer.records.read_records` and handled in
chunks of :data:`CHUNK`: pure checks (:mod:`.checks`), one batched registry
look-up per chunk, one batched results-store look-up (:mod:`.store`). The
run keeps in memory only the chunk and per-commune counters, so memory
does not grow with the input. Flagged records go to a scratch SQLite file
and become the per-commune reconciliation lists at the end (:mod:`.outputs`).

Outputs in ``out_dir`` (each written to a temp name, then renamed):
``verified.jsonl`` (every verified record, ``verified`` stamped),
``verified-new.jsonl`` (those not verified by an earlier run),
``reconciliation/<province>/<commune>.csv|.xlsx``,
``reconciliation/_unreadable-rows.csv``, ``summary.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

from signer.records import Record, RowProblem, read_records, record_fingerprint

from .checks import (
    DIFFERING_FIELD,
    RegistryEntry,
    check_record,
    compare_with_registry,
    dates_agree,
    is_citizen,
    needs_registry,
)
from .outputs import Summary, write_reconciliation
from .registry import Registry, open_registry, place_of
from .store import ResultStore
from .tables import Tables, load_tables
from .text import name_fold

log = logging.getLogger("signer.cleaning")
CHUNK = 2000
CHECKS_VERSION = "1"
ROW_REASONS = {"column_count", "bad_encoding", "bad_json", "bad_csv", "bad_number", "bad_sex", "bad_doses"}
_SUGGEST_WHEN = frozenset(
    {"id_missing", "id_format", "cccd_province_unknown", "cccd_sex_mismatch", "cccd_birth_year_mismatch",
     "registry_not_found", "registry_name_mismatch", "registry_dob_mismatch"}
)  # fmt: skip
_NO_SUGGESTION_WHEN = frozenset({"name_missing", "dob_missing", "dob_format", "dob_invalid_date"})


@dataclass(frozen=True)
class CheckOptions:
    records: str | Path
    registry: str
    out_dir: str | Path
    now: dt.datetime
    registry_table: str | None = None
    state_dir: str | Path | None = None  # default: out_dir/state
    column_map: str | None = None
    show_registry_values: bool = False  # authorised staff only: registry values in the lists
    formats: tuple[str, ...] = ("csv", "xlsx")
    rebuild_index: bool = False


@dataclass
class _Verdict:
    codes: tuple[str, ...]
    fields: tuple[str, ...] = ()
    suggestion: str = ""
    reused: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _chunks(items: Iterator[Record | RowProblem], size: int) -> Iterator[list[Record | RowProblem]]:
    while True:
        chunk = list(islice(items, size))
        if not chunk:
            return
        yield chunk


def _suggest(rec: Record, codes: tuple[str, ...], registry: Registry) -> str:
    if not is_citizen(rec) or not _SUGGEST_WHEN.intersection(codes) or _NO_SUGGESTION_WHEN.intersection(codes):
        return ""
    found = [
        c
        for c in registry.candidates(rec.province, rec.commune, name_fold(rec.full_name))
        if c.id_number != rec.id_number and dates_agree(rec.date_of_birth, c.date_of_birth)
    ]
    return found[0].id_number if len(found) == 1 else ""


class _Scratch:
    """Flagged records on disk until the reconciliation lists are written."""

    def __init__(self, path: Path):
        path.unlink(missing_ok=True)
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE flagged(place TEXT, province TEXT, commune TEXT, line INTEGER, record_id TEXT, "
            "record TEXT, codes TEXT, fields TEXT, suggestion TEXT, registry_id TEXT);"
        )
        self.rows: list[tuple[Any, ...]] = []

    def add(self, province: str, commune: str, *row: Any) -> None:
        place = place_of(province, commune) if province or commune else ""
        self.rows.append((place, province, commune, *row))

    def flush(self) -> None:
        if self.rows:
            self.conn.execute("BEGIN")
            self.conn.executemany("INSERT INTO flagged VALUES (?,?,?,?,?,?,?,?,?,?)", self.rows)
            self.conn.execute("COMMIT")
            self.rows.clear()

    def close(self) -> None:
        self.conn.close()
        self.path.unlink(missing_ok=True)


def _check_chunk(
    records: list[Record], registry: Registry, tables: Tables, today: dt.date
) -> dict[int, _Verdict]:
    """Checks + registry for records needing a (re-)check; keyed by list index."""
    verdicts: dict[int, _Verdict] = {}
    base: dict[int, tuple[str, ...]] = {}
    for i, rec in enumerate(records):
        base[i] = check_record(rec, today=today, tables=tables)
    wanted = [rec.id_number for i, rec in enumerate(records) if needs_registry(rec, base[i])]
    found = registry.lookup(wanted)
    for i, rec in enumerate(records):
        codes = base[i]
        fields: tuple[str, ...] = ()
        if needs_registry(rec, codes):
            entry: RegistryEntry | None = found.get(rec.id_number)
            if entry is None:
                codes += ("registry_not_found",)
            else:
                extra = compare_with_registry(rec, entry)
                codes += extra
                fields = tuple(dict.fromkeys(DIFFERING_FIELD[c] for c in extra))
        suggestion = _suggest(rec, codes, registry) if codes else ""
        verdicts[i] = _Verdict(codes, fields, suggestion)
    return verdicts


def run_checks(opts: CheckOptions) -> dict[str, Any]:
    """Run every check; write the outputs; return the summary (also in summary.json).

    Raises :class:`verifier.errors.ConfigError` for a missing/unreadable file or
    an unusable registry; bad rows are reported in the outputs, never raised.
    """
    tables = load_tables()
    today = opts.now.astimezone(dt.UTC).date()
    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_dir = Path(opts.state_dir) if opts.state_dir else out / "state"
    items = read_records(opts.records, column_map=opts.column_map)  # raises on a missing file
    registry = open_registry(opts.registry, state_dir=state_dir, table=opts.registry_table, rebuild=opts.rebuild_index)
    with registry:
        return _run(opts, tables, today, out, state_dir, items, registry)


def _run(
    opts: CheckOptions,
    tables: Tables,
    today: dt.date,
    out: Path,
    state_dir: Path,
    items: Iterator[Record | RowProblem],
    registry: Registry,
) -> dict[str, Any]:
    log.info("registry index: %d people (%s)", registry.info.rows, "reused" if registry.info.reused else "built")
    context = f"{CHECKS_VERSION}:{tables.fingerprint}:{registry.signature}"
    store = ResultStore(state_dir / "results.sqlite", context=context)
    scratch = _Scratch(out / f".flagged-{os.getpid()}.sqlite")
    summary = Summary(tables)
    tmp = f".tmp-{os.getpid()}"
    verified_path, new_path = out / "verified.jsonl", out / "verified-new.jsonl"
    seen_in_chunk: set[str] = set()
    try:
        with (
            open(verified_path.with_name(verified_path.name + tmp), "w", encoding="utf-8") as vfh,
            open(new_path.with_name(new_path.name + tmp), "w", encoding="utf-8") as nfh,
        ):
            for chunk in _chunks(items, CHUNK):
                problems = [x for x in chunk if isinstance(x, RowProblem)]
                records = [x for x in chunk if isinstance(x, Record)]
                for p in problems:
                    code = f"row_{p.reason}" if p.reason in ROW_REASONS else "row_other"
                    scratch.add("", "", p.line, p.record_id, json.dumps({"message": p.message}), code, "", "", "")
                    summary.add("", "", (code,), 0)
                fps = [record_fingerprint(r) for r in records]
                stored = store.get([r.record_id for r in records if r.record_id])
                seen_in_chunk.clear()
                to_check: list[int] = []
                verdicts: dict[int, _Verdict] = {}
                for i, rec in enumerate(records):
                    rid = rec.record_id
                    prev = stored.get(rid) if rid else None
                    if not rid:
                        verdicts[i] = _Verdict(("record_id_missing",))
                    elif rid in seen_in_chunk or (prev is not None and prev.run == store.run):
                        verdicts[i] = _Verdict(("record_id_duplicate",))
                    elif prev is not None and store.reusable(prev, fps[i]):
                        verdicts[i] = _Verdict(prev.codes, prev.fields, prev.suggestion, reused=True)
                        store.touch(rid)
                    else:
                        to_check.append(i)
                    seen_in_chunk.add(rid)
                if to_check:
                    sub = [records[i] for i in to_check]
                    for j, v in _check_chunk(sub, registry, tables, today).items():
                        verdicts[to_check[j]] = v
                for i, rec in enumerate(records):
                    v = verdicts[i]
                    rid = rec.record_id
                    if not v.reused and v.codes not in (("record_id_missing",), ("record_id_duplicate",)):
                        store.put(rid, fps[i], v.codes, v.fields, v.suggestion)
                    summary.add(rec.province, rec.commune, v.codes, len(rec.doses), reused=v.reused,
                                foreign=not is_citizen(rec))  # fmt: skip
                    if not v.codes:
                        line = json.dumps(replace(rec, verified=fps[i]).to_json(), ensure_ascii=False) + "\n"
                        vfh.write(line)
                        prev = stored.get(rid)
                        if prev is None or prev.codes or prev.fingerprint != fps[i]:
                            nfh.write(line)
                            summary.newly_verified += 1
                    else:
                        scratch.add(
                            rec.province, rec.commune, rec.line, rid,
                            json.dumps(rec.to_json(), ensure_ascii=False),
                            ";".join(v.codes), ";".join(v.fields), v.suggestion,
                            rec.id_number if needs_registry(rec, v.codes) else "",
                        )  # fmt: skip
                store.flush()
                scratch.flush()
        os.replace(verified_path.with_name(verified_path.name + tmp), verified_path)
        os.replace(new_path.with_name(new_path.name + tmp), new_path)
        files = write_reconciliation(
            scratch.conn, out / "reconciliation", tables, registry,
            formats=opts.formats, show_registry_values=opts.show_registry_values,
        )  # fmt: skip
    except BaseException:
        for path in (verified_path, new_path):
            path.with_name(path.name + tmp).unlink(missing_ok=True)
        raise
    finally:
        scratch.close()
        store.close()
    result = summary.to_json(
        now=opts.now,
        records=str(opts.records),
        registry={"rows": registry.info.rows, "reused_index": registry.info.reused,
                  "index_seconds": round(registry.info.seconds, 2)},
        files=files,
    )  # fmt: skip
    summary_path = out / "summary.json"
    tmp_summary = summary_path.with_name(summary_path.name + tmp)
    tmp_summary.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp_summary, summary_path)
    return result
