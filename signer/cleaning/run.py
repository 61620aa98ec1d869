"""One cleaning run: stream an export through the checks and the registry.

    >>> import datetime as dt
    >>> from signer.cleaning.run import CheckOptions, run_checks
    >>> summary = run_checks(CheckOptions(records="records.csv", registry="registry.csv",
    ...                      out_dir="out", now=dt.datetime.now(dt.UTC)))  # doctest: +SKIP
    >>> summary["totals"]["subjects"]["verified"]                           # doctest: +SKIP

1. The registry is indexed (or the index reused), see :mod:`.registry`.
2. The export is cut into byte ranges (:func:`signer.records.split_for_parallel`),
   one per worker process (``workers``, default 2 for big files, 1 for small).
   Each worker streams its range with :func:`signer.records.read_records_range`
   in chunks of :data:`CHUNK`: the pure checks (:mod:`.checks`), one batched
   registry look-up and one batched results-store look-up (:mod:`.store`) per
   chunk. A worker keeps only the chunk and per-commune counters in memory,
   so memory does not grow with the input; flagged records go to a scratch
   SQLite file. With several workers, each one reads the results store as
   it was before the run and stages its own rows; they are merged in range
   order once the workers are done (:func:`.store.merge_staged`), so no
   worker ever sees another one's verdicts and the outputs do not depend
   on which worker runs first.
3. The parts are joined and the per-commune reconciliation lists written
   (:mod:`.outputs`), communes shared out between the workers.

Outputs in ``out_dir`` (each written under a temp name, then renamed):
``verified.jsonl`` (every verified record, ``verified`` stamped),
``verified-new.jsonl`` (those not verified by an earlier delivered run: what
the signer still has to sign), ``reconciliation/<province>/<commune>.csv|.xlsx``,
``reconciliation/_unreadable-rows.csv``, ``summary.json``. Once they are all in
place the run is marked delivered in the results store
(:func:`.store.mark_delivered`); the next run deletes the verdicts of a run
never marked (killed or failed: its records reached no ``verified-new.jsonl``),
so that they are new to it. In a first run (the results store empty when the
run opened it, such verdicts deleted) every verified line is new: the
workers write only the verified part and ``verified-new.jsonl`` is made a hard
link of ``verified.jsonl`` (a kernel copy where links fail). That is safe because
both names are always replaced by the next run (new files renamed over them),
never rewritten in place, so no run's change to one can show in the other.

A record ID repeated in two workers' ranges is re-coded as a duplicate after
the workers are done (:mod:`.dupes`), so that any number of workers gives
the same outputs as one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import logging
import multiprocessing
import operator
import os
import re
import resource
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any

from signer.pagecache import DropBehind, copy_dropping
from signer.pids import pid_alive
from signer.records import (
    DOSE_FIELDS,
    FIELDS,
    PersonRuns,
    Record,
    RowProblem,
    dose_rows_are_grouped,
    inspect_header,
    read_records_range,
    record_fingerprint,
    runs_are_consecutive,
    split_for_parallel,
    warn_header,
)
from verifier.errors import ConfigError

from .checks import (
    DIFFERING_FIELD,
    RegistryEntry,
    check_record,
    compare_values,
    dates_agree,
    is_citizen,
    lookup_id,
    needs_registry,
    with_registry,
)
from .dupes import fix_cross_duplicates
from .fast import Checked, Fast, fast_reader, line_of
from .outputs import Summary, write_reconciliation
from .private import make_private_dir, open_private
from .registry import IndexInfo, Registry, open_registry
from .scratch import Scratch
from .store import ResultStore, mark_delivered, merge_staged
from .tables import Tables, load_tables
from .text import name_fold

log = logging.getLogger("signer.cleaning")
CHUNK = 2000
CHECKS_VERSION = "4"  # bump when a check changes: stored verdicts of older rules are re-checked
PARALLEL_MIN_BYTES = 4 << 20
ROW_REASONS = {"column_count", "bad_encoding", "bad_json", "bad_csv", "bad_number", "bad_sex", "bad_doses",
               "line_too_long", "field_too_long"}  # fmt: skip
_SUGGEST_WHEN = frozenset(
    {"id_missing", "id_wrong_length", "id_invalid_characters", "cccd_province_unknown", "cccd_sex_mismatch",
     "cccd_birth_year_mismatch", "registry_not_found"}
)  # fmt: skip
#: The registry knows the ID but its person differs in two of name, date of birth and sex: probably
#: someone else's ID. One of them alone is the record's name, date or sex being wrong.
_OTHER_PERSON = frozenset({"registry_name_mismatch", "registry_dob_mismatch", "registry_sex_mismatch"})
_NO_SUGGESTION_WHEN = frozenset({"name_missing", "dob_missing", "dob_format", "dob_invalid_date"})
_ID_ONLY = (("record_id_missing",), ("record_id_duplicate",))
_JSON = json.JSONEncoder(ensure_ascii=False).encode  # = json.dumps(x, ensure_ascii=False), without a new encoder per call
_fields = operator.attrgetter(*FIELDS)
_dose_fields = operator.attrgetter(*DOSE_FIELDS)


def verified_line(rec: Record, fingerprint: str) -> str:
    """The JSON Lines form of the stamped record: ``json.dumps(to_json(), ensure_ascii=False)``.

    Written directly for the usual types (every field ``str``, dose numbers
    ``int``), about twice as fast; anything else goes through the encoder.
    """
    text = line_of(_fields(rec), list(map(_dose_fields, rec.doses)), rec.phone, fingerprint)
    if text is not None:
        return text
    obj = rec.to_json()
    obj["verified"] = fingerprint
    return _JSON(obj) + "\n"


def row_code(reason: str) -> str:
    """Reason code of a row the reader could not use (RowProblem.reason)."""
    return f"row_{reason}" if reason in ROW_REASONS else "row_other"


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
    workers: int = 0  # 0 = automatic
    xlsx_engine: str = "fast"  # or "openpyxl" (about 10x slower, see signer/cleaning/xlsx.py)
    fast_path: bool = True  # clean people of a one-row-per-dose export without a Record (signer.cleaning.fast)


@dataclass(frozen=True)
class _Task:
    part: int
    parts: int
    start: int
    end: int
    first_line: int
    opts: CheckOptions
    index: IndexInfo
    context: str
    run: int
    store_path: Path
    today: dt.date
    regroup: bool = False  # one row per dose, a person's rows scattered: read whole and grouped
    learn_runs: bool = False  # one row per dose, several ranges: find out whether they are scattered


@dataclass
class _Verdict:
    codes: tuple[str, ...]
    fields: tuple[str, ...] = ()
    suggestion: str = ""
    reused: bool = False
    registry_name: str = ""  # the registry's spelling of a name verified with a soft reason


#: The verdict of every freshly checked clean record (shared: only verdicts with codes get a suggestion set).
_CLEAN = _Verdict(())


def _named_key(rec: Record, codes: tuple[str, ...]) -> tuple[str, str] | None:
    """The (folded name, birth year) whose registry people :func:`_suggest` needs, or None."""
    if not codes or "id_separators" in codes:
        return None
    wanted = _SUGGEST_WHEN.intersection(codes) or len(_OTHER_PERSON.intersection(codes)) >= 2
    if not is_citizen(rec) or not wanted or _NO_SUGGESTION_WHEN.intersection(codes):
        return None
    return name_fold(rec.full_name), rec.date_of_birth[:4]


def _suggest(rec: Record, codes: tuple[str, ...], registry: Registry,
             named: dict[tuple[str, str], list[RegistryEntry]] | None = None) -> str:  # fmt: skip
    """The registry ID this record most likely means, or "" (issue 9, point 8).

    Asked for when the ID is unusable, inconsistent or unknown, or points to a
    person who differs in two of name, date of birth and sex. Candidates: everyone
    in the registry with the same name (diacritics
    aside), a date of birth that agrees and the same sex (when both give one),
    wherever they live, other than the ID given. Exactly one: that is the
    suggestion. Several: the one whose ID is one edit away from the ID typed
    (a digit changed, added, dropped or two swapped), else the one of the
    record's commune, when exactly one is. ``named``: the registry's people by
    (folded name, year), fetched for a whole chunk (else asked here).
    """
    if "id_separators" in codes:
        return lookup_id(rec)  # the repaired ID (issue 9, point 6)
    key = _named_key(rec, codes)
    if key is None:
        return ""
    folded = key[0]
    typed = lookup_id(rec)
    people = named[key] if named is not None else registry.by_name_and_year(*key)
    found = [
        c
        for c in people
        if c.id_number != typed and dates_agree(rec.date_of_birth, c.date_of_birth)
        and not (rec.sex in ("M", "F") and c.sex in ("M", "F") and rec.sex != c.sex)
    ]  # fmt: skip
    if len(found) > 1 and typed:
        near = [c for c in found if one_edit_apart(typed, c.id_number)]
        found = near or found
    if len(found) > 1:
        local = {c.id_number for c in registry.candidates(rec.province, rec.commune, folded)}
        found = [c for c in found if c.id_number in local] or found
    return found[0].id_number if len(found) == 1 else ""


def one_edit_apart(typed: str, ident: str) -> bool:
    """One character changed, added or dropped, or two neighbours swapped (a typing slip)."""
    if typed == ident:
        return False
    if len(typed) == len(ident):
        diff = [i for i, (a, b) in enumerate(zip(typed, ident, strict=True)) if a != b]
        if len(diff) == 1:
            return True
        i = diff[0]
        return len(diff) == 2 and diff[1] == i + 1 and typed[i] == ident[i + 1] and typed[i + 1] == ident[i]
    if abs(len(typed) - len(ident)) != 1:
        return False
    short, long_ = sorted((typed, ident), key=len)
    i = next((k for k, (a, b) in enumerate(zip(short, long_, strict=False)) if a != b), len(short))
    return short[i:] == long_[i + 1 :]


def _check_chunk(records: list[Record], registry: Registry, tables: Tables, today: dt.date,
                 known: list[tuple[str, ...] | None] | None = None) -> list[_Verdict]:  # fmt: skip
    """Checks + registry for records needing a (re-)check (``known``: a record's :func:`check_record` codes
    when the fast path found them already, else None)."""
    if known is None:
        known = [None] * len(records)
    base = [check_record(rec, today=today, tables=tables) if codes is None else codes
            for rec, codes in zip(records, known, strict=True)]  # fmt: skip
    ids = [lookup_id(rec) if needs_registry(rec, codes) else None for rec, codes in zip(records, base, strict=True)]
    found = registry.lookup([i for i in ids if i is not None])
    out = []
    for rec, codes, ident in zip(records, base, ids, strict=True):
        fields: tuple[str, ...] = ()
        name = ""
        if ident is not None:
            entry = found.get(ident)
            codes = with_registry(rec, codes, entry)
            if codes:
                fields = _differing_fields(codes)
                if entry is not None and "registry_name_diacritics" in codes:
                    name = entry.full_name  # the certificate carries the registry's spelling (issue 9, point 7)
        out.append(_Verdict(codes, fields, registry_name=name) if codes else _CLEAN)
    # suggestions: the registry's people of every name and year asked for, in one batch per chunk
    named = registry.by_names_and_years(k for rec, v in zip(records, out, strict=True)
                                        if (k := _named_key(rec, v.codes)) is not None)  # fmt: skip
    for rec, v in zip(records, out, strict=True):
        if v.codes:
            v.suggestion = _suggest(rec, v.codes, registry, named)
    return out


@lru_cache(maxsize=4096)
def _differing_fields(codes: tuple[str, ...]) -> tuple[str, ...]:
    """The registry fields the codes say differ (codes repeat: cached)."""
    return tuple(dict.fromkeys(DIFFERING_FIELD[c] for c in codes if c in DIFFERING_FIELD))


def _part_paths(out: Path, part: int) -> dict[str, Path]:
    # one file for the flagged rows and the staged results: its "seen" table is a view of the staged rows
    # (Scratch(seen_in_results=True), used when the run has several parts)
    return {
        "verified": out / f".part{part}-verified.jsonl",
        "new": out / f".part{part}-verified-new.jsonl",
        "scratch": out / f".part{part}-flagged.sqlite",
        "results": out / f".part{part}-flagged.sqlite",
    }


#: Container allocations between two young-generation collections while a worker checks (default 700).
GC_THRESHOLD = 100_000


@contextlib.contextmanager
def _rare_gc() -> Iterator[None]:
    """Let the cyclic garbage collector run rarely (:data:`GC_THRESHOLD`), then as before.

    A worker makes several tuples and lists per person, nearly all freed by
    their reference count, but every 700 of them the collector ran and moved
    the chunk's live objects to older generations, whose collections then
    walked every cache: about 7% of a worker's CPU (one worker on 10% of the
    1M dose rows, 4 pairs run together: 66.8 -> 61.5 us a person). Memory does
    not depend on it: the per-person objects hold no reference cycles, and any
    that appear are still collected.
    """
    before = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _work(task: _Task) -> Summary:
    """Check one range of the export (runs in a worker process or inline)."""
    with _rare_gc():
        return _check_range(task)


def _check_range(task: _Task) -> Summary:
    opts = task.opts
    tables = load_tables()
    out = Path(opts.out_dir)
    paths = _part_paths(out, task.part)
    registry = Registry(task.index)
    # Several workers: stage this range's verdicts, see merge_staged (a worker must not read another's), in the
    # scratch file, whose "seen" table is then a view of them (no second row per person).
    staging = paths["results"] if task.parts > 1 else None
    scratch = Scratch(paths["scratch"], task.parts, seen_in_results=staging is not None)
    store = ResultStore(task.store_path, context=task.context, run=task.run, staging=staging,
                        fresh_staging=False)  # fmt: skip
    summary = Summary(tables)
    runs = summary.person_runs = PersonRuns() if task.learn_runs else None
    items = read_records_range(opts.records, task.start, task.end, task.first_line, column_map=opts.column_map,
                               warn=False, regroup_dir=out if task.regroup else None, runs=runs,
                               person=fast_reader(task.today, tables) if opts.fast_path else None)  # fmt: skip
    # A first run (no verdict in the store when this worker opened it): every verified line is new, so only the
    # verified part is written and run_checks makes verified-new.jsonl a hard link of verified.jsonl.
    first = summary.first_run = store.empty  # run_checks and fix_cross_duplicates go by this, not by the files
    if first:
        paths["new"].unlink(missing_ok=True)  # (left by a run killed hard: not this run's)
    try:
        # the parts are written through DropBehind: see signer.pagecache (the page cache would grow by them)
        with (
            open_private(paths["verified"], "wb") as vfile,
            contextlib.nullcontext(None) if first else open_private(paths["new"], "wb") as nfile,
            DropBehind(vfile) as vfh,
            contextlib.nullcontext(None) if nfile is None else DropBehind(nfile) as nfh,
        ):
            while chunk := list(islice(items, CHUNK)):
                if runs is not None and runs.reopened:
                    break  # the run starts again with one worker that sorts the rows (run_checks)
                _do_chunk(chunk, task, registry, store, scratch, summary, tables, vfh, nfh)
                store.flush()
                scratch.flush()
    finally:
        scratch.close()
        store.close()
        registry.close()
    summary.settle()
    summary.peak_rss_mb = _peak_rss_mb()
    return summary


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _do_chunk(
    chunk: Sequence[Record | Fast | Checked | RowProblem],
    task: _Task,
    registry: Registry,
    store: ResultStore,
    scratch: Scratch,
    summary: Summary,
    tables: Tables,
    vfh: Any,
    nfh: Any,
) -> None:
    """Check one chunk; write its verified lines to ``vfh`` and the new ones to ``nfh`` (None: a first run, where
    every verified line is new and only ``vfh`` is written)."""
    records: list[Record | Fast] = []
    known: dict[int, tuple[str, ...]] = {}  # check_record's codes of a record, when the fast path found them
    fps: dict[int, str] = {}  # the fingerprints of the records that are not (or no longer) Fast items
    append = records.append
    for x in chunk:
        if type(x) is Fast:
            append(x)
        elif type(x) is Checked:
            known[len(records)] = x.codes
            if x.fingerprint is not None:
                fps[len(records)] = x.fingerprint
            append(x.record)
        elif isinstance(x, Record):
            append(x)
        else:
            assert isinstance(x, RowProblem)
            summary.rows_read += 1
            code = row_code(x.reason)
            scratch.add_problem(x, code)
            summary.add("", "", (code,), 0)
    summary.rows_read += sum([r.rows for r in records])
    summary.people_read += len(records)
    phones = [r.phone_unusable for r in records if not r.phone]
    summary.phones += len(records) - len(phones)
    summary.phones_unusable += phones.count(True)
    ids = [r.record_id for r in records if r.record_id]
    stored = store.get(ids)
    earlier = scratch.seen_before(ids)
    if ids:  # every record ID of the chunk is remembered or staged below (or is a duplicate of one that is)
        top = max(ids)
        scratch.met_up_to = top if scratch.met_up_to is None else max(scratch.met_up_to, top)
    seen: set[str] = set()
    to_check: list[int] = []
    fast: list[int] = []  # people of the fast path (signer.cleaning.fast) that only the registry may still flag
    verdicts: dict[int, _Verdict] = {}  # of the records that are not (or no longer) Fast items
    for i, rec in enumerate(records):
        rid = rec.record_id
        if type(rec) is Fast:
            if rid not in seen and rid not in earlier and rid not in stored:  # a Fast item always has a record ID
                fast.append(i)
                seen.add(rid)
                continue
            fps[i] = rec.fingerprint
            rec = records[i] = rec.record()  # anything else: the full path
            known[i] = ()  # the fast path's checks found nothing
        elif i not in fps:  # (a Checked item's fingerprint is known)
            fps[i] = record_fingerprint(rec)  # type: ignore[arg-type]
        prev = stored.get(rid) if rid else None
        if not rid:
            verdicts[i] = _Verdict(_ID_ONLY[0])
        elif rid in seen or rid in earlier:
            verdicts[i] = _Verdict(_ID_ONLY[1])
        elif prev is not None and store.reusable(prev, fps[i]):
            verdicts[i] = _Verdict(prev.codes, prev.fields, prev.suggestion, reused=True,
                                   registry_name=prev.registry_name)  # fmt: skip
        else:
            to_check.append(i)
        seen.add(rid)
    if fast:
        # the fast path's people are citizens whose ID has only ASCII digits: the ID is its own look-up ID
        items: list[Fast] = [records[i] for i in fast]  # type: ignore[misc]
        found = registry.lookup_rows([r.values[5] for r in items])
        for i, r in zip(fast, items, strict=True):
            values = r.values
            row = found.get(values[5])
            if row is not None and (
                (row[1] == values[1] and row[2] == values[2] and row[3] == values[3])  # the same: compare_values ()
                or not compare_values(values[1], values[2], values[3], row[1], row[2], row[3])
            ):
                continue  # clean: stays a Fast item
            records[i] = r.record()
            known[i] = ()
            fps[i] = r.fingerprint
            to_check.append(i)
        to_check.sort()
    if to_check:
        checked = _check_chunk([records[i] for i in to_check], registry, tables, task.today,  # type: ignore[misc]
                               [known.get(i) for i in to_check])  # fmt: skip
        verdicts.update(zip(to_check, checked, strict=True))
    reused = {records[i].record_id for i, v in verdicts.items() if v.reused}
    if not scratch.seen_in_results:
        scratch.remember([(r.record_id, r.line, r.record_id in reused) for r in records if r.record_id])
    elif reused:  # the others' first lines are in the staged results (Scratch.seen_in_results)
        scratch.remember([(r.record_id, r.line, True) for r in records if r.record_id in reused])
    if len(verdicts) < len(records):  # clean people of the fast path: checked now, no earlier verdict
        clean: list[Fast] = [r for r in records if type(r) is Fast]
        store.put_rows([(r.record_id, r.fingerprint, "", "", "", r.line, "") for r in clean])
        summary.add_verified(Counter([(v[6], v[7], len(v[8])) for v in [r.values for r in clean]]))
        summary.newly_verified += len(records) - len(verdicts)
    if not verdicts:  # every person of the chunk is a clean Fast item (the usual chunk)
        data = "".join([r.text for r in records]).encode("utf-8")  # type: ignore[union-attr]
        vfh.write(data)
        if nfh is not None:
            nfh.write(data)  # every line is new (a clean Fast item has no stored verdict)
        return
    verified: list[str] = []  # the chunk's lines, written at once
    new: list[str] = []
    for i, rec in enumerate(records):
        if type(rec) is Fast:  # what the full path below does for a clean person checked now, without a verdict
            verified.append(rec.text)
            new.append(rec.text)
            continue
        assert isinstance(rec, Record)
        v = verdicts[i]
        rid = rec.record_id
        fp = fps[i]
        if not v.reused and v.codes not in _ID_ONLY:
            store.put(rid, fp, v.codes, v.fields, v.suggestion, rec.line, v.registry_name)
        summary.add(rec.province, rec.commune, v.codes, len(rec.doses), reused=v.reused,
                    foreign=not v.codes and not is_citizen(rec))  # counted only when verified without codes
        hard = tables.hard(v.codes)
        if not hard:
            if v.codes:  # soft reasons only: verified as the registry spells the name, and listed for correction
                summary.soft_verified += 1
                signed = replace(rec, full_name=v.registry_name) if v.registry_name else rec
                line = verified_line(signed, record_fingerprint(signed))
            else:
                line = verified_line(rec, fp)
            verified.append(line)
            prev = stored.get(rid)
            if prev is None or tables.hard(prev.codes) or prev.fingerprint != fp:
                new.append(line)
                summary.newly_verified += 1
        if v.codes:
            scratch.add_record(rec, v.codes, v.fields, v.suggestion,
                               lookup_id(rec) if needs_registry(rec, v.codes) else "")
    data = "".join(verified).encode("utf-8")  # UTF-8 once: in a first run every verified line is new
    vfh.write(data)
    if nfh is not None:  # None in a first run: every verified line is new (the verified part is linked)
        nfh.write(data if len(new) == len(verified) else "".join(new).encode("utf-8"))


def _recon(args: tuple[CheckOptions, list[Path], Path, int, IndexInfo]) -> tuple[dict[str, int], float]:
    opts, scratches, tmp, part, index = args
    with _rare_gc(), Registry(index) as registry:
        counts = write_reconciliation(
            scratches, tmp, load_tables(), registry, part=part,
            formats=opts.formats, show_registry_values=opts.show_registry_values, xlsx_engine=opts.xlsx_engine,
        )  # fmt: skip
    return counts, _peak_rss_mb()


def _map(fn: Any, tasks: list[Any]) -> list[Any]:
    """Run ``fn`` over the tasks, in worker processes when there are several."""
    if len(tasks) == 1:
        return [fn(tasks[0])]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(len(tasks)) as pool:
        return pool.map(fn, tasks)


def _concat(parts: list[Path], target: Path) -> None:
    """Join the workers' files into ``target``: the first is renamed, the others appended."""
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    os.replace(parts[0], tmp)
    try:
        with tmp.open("r+b") as dst:  # not "ab": copy_file_range refuses a file opened for appending
            for p in parts[1:]:
                with p.open("rb") as src:
                    copy_dropping(src, dst)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _link_or_copy(src: Path, target: Path, *, link: bool = True) -> None:
    """Make ``target`` a hard link of ``src`` (a temp name, then renamed over ``target``), or a kernel copy where
    the file system refuses links (or ``link`` is False).

    Used for ``verified-new.jsonl`` in a first run, when it holds exactly the lines of ``verified.jsonl``:
    the two names then share one file. Every run replaces both names with new files (written under a temp name
    and renamed, never rewritten in place), so a change to one of a later run's files never reaches the other.
    """
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        linked = False
        if link:
            with contextlib.suppress(OSError):  # e.g. a file system without hard links
                os.link(src, tmp)
                linked = True
        if not linked:
            with src.open("rb") as s, open_private(tmp, "wb") as d:
                copy_dropping(s, d)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _stale_parts(out: Path, parts: int) -> list[int]:
    """The parts this run will write (0 .. parts-1) and any other part a run killed hard left in ``out``."""
    found = {int(m[1]) for p in out.glob(".part*-*") if (m := re.fullmatch(r"\.part([0-9]{1,4})-.*", p.name))}
    return sorted(found | set(range(parts)))


#: The temp names the run's outputs are written under (then renamed): ``<name>.tmp-<pid>``.
_TEMP_NAME = re.compile(r"(?:verified\.jsonl|verified-new\.jsonl|summary\.json|reconciliation)\.tmp-([0-9]{1,10})")


def _remove_stale_temps(out: Path) -> None:
    """Remove what a run killed hard left under its temp names (``<output>.tmp-<pid>``, personal data), those of
    a process that is gone; a live one's (a run next to this one) stay."""
    for path in out.glob("*.tmp-*"):
        m = _TEMP_NAME.fullmatch(path.name)
        if m is None or int(m[1]) == os.getpid() or pid_alive(int(m[1])):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _remove_parts(part_paths: list[dict[str, Path]]) -> None:
    for p in part_paths:
        for path in p.values():
            path.unlink(missing_ok=True)


def run_checks(opts: CheckOptions) -> dict[str, Any]:
    """Run every check; write the outputs; return the summary (also in summary.json).

    Raises :class:`verifier.errors.ConfigError` for a missing/unreadable file or
    an unusable registry; bad rows are reported in the outputs, never raised.
    """
    tables = load_tables()
    today = opts.now.astimezone(dt.UTC).date()
    records = Path(opts.records)
    if not records.is_file():
        raise ConfigError(f"records file not found: {records}")
    if records.suffix.lower() not in (".jsonl", ".ndjson", ".json", ".csv", ".txt"):
        raise ConfigError(f"{records}: unknown records format (use .jsonl or .csv)")
    try:
        with records.open("rb") as fh:
            fh.read(1)
    except OSError as err:
        raise ConfigError(f"cannot read {records}: {err.strerror}") from None
    header = inspect_header(records, column_map=opts.column_map)  # a header that cannot work stops here
    if header is not None:
        warn_header(header, str(records))
    out = Path(opts.out_dir)
    try:
        make_private_dir(out)
    except OSError as err:
        raise ConfigError(f"cannot create {out}: {err.strerror}") from None
    state_dir = Path(opts.state_dir) if opts.state_dir else out / "state"
    with open_registry(
        opts.registry, state_dir=state_dir, table=opts.registry_table, rebuild=opts.rebuild_index
    ) as registry:
        index = registry.info
        context = f"{CHECKS_VERSION}:{tables.fingerprint}:{registry.signature}"
    log.info("registry index: %d people (%s)", index.rows, "reused" if index.reused else "built")
    store_path = state_dir / "results.sqlite"
    store = ResultStore(store_path, context=context)
    run = store.run
    store.close()

    workers = opts.workers or (min(2, os.cpu_count() or 1) if records.stat().st_size >= PARALLEL_MIN_BYTES else 1)
    # One row per dose in several ranges: the workers find out whether a person's rows are scattered
    # (PersonRuns) instead of a pass of its own over the export; if they are, the check starts again.
    ranges = split_for_parallel(records, workers, column_map=opts.column_map)
    learn = header is not None and header.shape == "dose_rows" and len(ranges) > 1
    grouped = learn or dose_rows_are_grouped(records, column_map=opts.column_map)
    if not grouped:  # one worker reads the whole export and groups each person's rows through a temp file
        log.warning("warning: %s: the dose rows of some people are not consecutive: grouping them first", records)
        ranges = [(0, records.stat().st_size, 1)]
    tasks = [
        _Task(k, len(ranges), s, e, first, opts, index, context, run, store_path, today, regroup=not grouped,
              learn_runs=learn)
        for k, (s, e, first) in enumerate(ranges)
    ]  # fmt: skip
    part_paths = [_part_paths(out, t.part) for t in tasks]
    recon_tmp = out / f"reconciliation.tmp-{os.getpid()}"
    timings = {"index": round(index.seconds, 2)}
    clock = time.perf_counter()
    try:
        _remove_parts([_part_paths(out, k) for k in _stale_parts(out, len(tasks))])  # left by a run killed hard
        _remove_stale_temps(out)
        summaries = _map(_work, tasks)
        consecutive = learn and runs_are_consecutive([x.person_runs for x in summaries if x.person_runs is not None])
        if consecutive is None:  # the ranges' answers do not tell (PersonRuns): a pass of its own over the export
            consecutive = dose_rows_are_grouped(records, column_map=opts.column_map)
        if learn and not consecutive:
            log.warning("warning: %s: the dose rows of some people are not consecutive: grouping them first", records)
            _remove_parts(part_paths)  # only staged: the results store is untouched
            grouped = False
            tasks = [_Task(0, 1, 0, records.stat().st_size, 1, opts, index, context, run, store_path, today,
                           regroup=True)]  # fmt: skip
            part_paths = [_part_paths(out, 0)]
            summaries = _map(_work, tasks)
        for x in summaries:
            x.person_runs = None  # the workers' key sets are not needed any more (nor copied into list writers)
        timings["check"] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()
        firsts = [x.first_run for x in summaries]  # a worker of a first run writes no new part
        summary: Summary = summaries[0]
        for other in summaries[1:]:
            summary.merge(other)
        fix_cross_duplicates(part_paths, summary, firsts)
        if len(tasks) > 1:
            merge_staged(store_path, [p["results"] for p in part_paths], context, run)
        shutil.rmtree(recon_tmp, ignore_errors=True)
        make_private_dir(recon_tmp)
        scratches = [p["scratch"] for p in part_paths]
        recon = _map(_recon, [(opts, scratches, recon_tmp, k, index) for k in range(len(tasks))])
        counts = [c for c, _ in recon]
        peak_rss = {"check_worker": max(x.peak_rss_mb for x in summaries),
                    "reconciliation_worker": max(rss for _, rss in recon)}  # fmt: skip
        timings["reconciliation"] = round(time.perf_counter() - clock, 2)
        if all(firsts):
            _concat([p["verified"] for p in part_paths], out / "verified.jsonl")
            _link_or_copy(out / "verified.jsonl", out / "verified-new.jsonl")
        else:  # (a worker met the store empty, another did not: a run next to this one stored verdicts)
            for p, first in zip(part_paths, firsts, strict=True):
                if first:  # a copy, not a link: _concat appends to the first part
                    _link_or_copy(p["verified"], p["new"], link=False)
            _concat([p["verified"] for p in part_paths], out / "verified.jsonl")
            _concat([p["new"] for p in part_paths], out / "verified-new.jsonl")
        target = out / "reconciliation"
        if target.exists():
            shutil.rmtree(target)
        os.replace(recon_tmp, target)
    finally:
        shutil.rmtree(recon_tmp, ignore_errors=True)
        _remove_parts(part_paths)
    files = {k: sum(c[k] for c in counts) for k in counts[0]}
    result = summary.to_json(
        now=opts.now,
        records=str(opts.records),
        registry={"rows": index.rows, "skipped_rows": index.skipped, "reused_index": index.reused,
                  "index_seconds": round(index.seconds, 2)},
        files=files,
        workers=len(tasks),
    )  # fmt: skip
    result["input"] = {
        "shape": header.shape if header is not None else "person_rows",
        "rows": summary.rows_read,
        "people": summary.people_read,
        "unused_columns": list(header.unused) if header is not None else [],
        "rows_of_a_person_consecutive": grouped,
        # contact data for the citizen portal: how many people have a usable mobile number, and how many
        # gave one that could not be read (dropped: the portal offers them a claim code instead)
        "phones": {"usable": summary.phones, "unusable": summary.phones_unusable},
    }
    result["seconds"] = timings
    result["peak_rss_mb"] = {**peak_rss, "main": _peak_rss_mb()}
    summary_path = out / "summary.json"
    tmp_summary = summary_path.with_name(f"{summary_path.name}.tmp-{os.getpid()}")
    with open_private(tmp_summary, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    os.replace(tmp_summary, summary_path)
    mark_delivered(store_path, run)  # the outputs are in place: this run's verdicts are a delivered run's
    return result
