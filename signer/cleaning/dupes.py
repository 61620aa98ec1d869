"""Record IDs repeated across the workers' ranges of one export.

    >>> fix_cross_duplicates(part_paths, summary, firsts)   # doctest: +SKIP
    3

Each worker flags a record ID it has already met in its own range
(``record_id_duplicate``). An ID met by two workers is found here, after
the workers are done, from their ``seen`` tables: the occurrence with the
later line (always in the later range) becomes a ``record_id_duplicate``,
as it would with one worker: its row in the worker's flagged table is
re-coded, or, if it had passed, its line leaves the worker's verified files
and a flagged row takes its place; the summary counters move with it
(also "unchanged, reused" becomes "re-checked", as one worker counts a
duplicate, and the count of foreigners verified without the registry).
Its row staged for the results store is dropped, so the store keeps the
earlier line's verdict, or the earlier run's if that line reused it (see
:func:`.store.merge_staged`). Usually there is nothing to do: an export in record ID
order gives ranges whose IDs do not meet (every ID of the earlier ranges
below the least of the later one, read from the primary keys), and no join
is made; otherwise one indexed join per worker.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from json.decoder import scanstring  # type: ignore[attr-defined]  # (C speed-up, not in typeshed)
from pathlib import Path

from signer.records import Record, record_from_mapping

from .checks import is_citizen
from .outputs import Summary
from .private import open_private
from .scratch import FLAGGED_INSERT, flagged_row
from .store import drop_staged

DUPLICATE = ("record_id_duplicate",)
_HEAD = '{"record_id": '


def fix_cross_duplicates(parts: list[dict[str, Path]], summary: Summary, firsts: Sequence[bool]) -> int:
    """Re-code the later occurrences; returns how many there were. ``firsts``: which workers met an empty results
    store (and wrote no new part: every verified line is new)."""
    if len(parts) < 2:
        return 0
    conn = sqlite3.connect(":memory:", isolation_level=None)
    fixed = 0
    try:
        for i, p in enumerate(parts):
            conn.execute(f"ATTACH DATABASE ? AS s{i}", (str(p["scratch"]),))
        for k in range(1, len(parts)):
            if not _ranges_meet(conn, k):
                continue
            earlier = " UNION ".join(f"SELECT record_id FROM s{j}.seen" for j in range(k))
            found = conn.execute(f"SELECT record_id, line, reused FROM s{k}.seen WHERE record_id IN ({earlier})")
            dups: dict[str, int] = {}
            for rid, line, reused in found:
                dups[rid] = line
                if reused:  # one worker re-checks nothing for a duplicate: it counts as re-checked
                    summary.reused -= 1
                    summary.rechecked += 1
            if not dups:
                continue
            fixed += len(dups)
            drop_staged(parts[k]["results"], dups)
            passed: dict[str, int] = {}
            soft: dict[str, int] = {}  # verified with soft reasons: listed and in the verified files
            conn.execute("BEGIN")
            for rid, line in dups.items():
                row = conn.execute(
                    f"SELECT codes, province, commune, doses FROM s{k}.flagged WHERE line = ? AND record_id = ?",
                    (line, rid),
                ).fetchone()
                if row is None:
                    passed[rid] = line
                    continue
                conn.execute(
                    f"UPDATE s{k}.flagged SET codes = ?, fields = '', suggestion = '', registry_id = '' "
                    "WHERE line = ? AND record_id = ?",
                    (DUPLICATE[0], line, rid),
                )
                old = tuple(row[0].split(";")) if row[0] else ()
                summary.recategorise(row[1], row[2], row[3].count("; ") + 1 if row[3] else 0, old, DUPLICATE)
                if not summary.tables.hard(old):
                    soft[rid] = line
                    summary.soft_verified -= 1
            # no "new" part: the worker met an empty results store, every verified line is new (signer.cleaning.run)
            has_new = not firsts[k]
            if soft:
                gone = _remove(parts[k]["verified"], soft)
                summary.newly_verified -= len(_remove(parts[k]["new"], soft) if has_new else gone)
            if passed:
                removed = _remove(parts[k]["verified"], passed)
                summary.newly_verified -= len(_remove(parts[k]["new"], passed) if has_new else removed)
                for rid, text in removed.items():
                    rec = record_from_mapping(json.loads(text), passed[rid])
                    assert isinstance(rec, Record)
                    conn.execute(FLAGGED_INSERT.replace("INTO flagged", f"INTO s{k}.flagged"),
                                 flagged_row(rec, DUPLICATE, (), "", "", len(parts)))  # fmt: skip
                    summary.recategorise(rec.province, rec.commune, len(rec.doses), (), DUPLICATE)
                    if not is_citizen(rec):  # counted by Summary.add as a foreigner verified
                        summary.foreign_verified -= 1
            conn.execute("COMMIT")
    finally:
        conn.close()
    return fixed


def _ranges_meet(conn: sqlite3.Connection, k: int) -> bool:
    """Whether a record ID of worker ``k``'s ``seen`` may also be in an earlier worker's: not when the greatest ID of
    the earlier ones is below the least of ``k``'s (an export in record ID order), or one side has none.

    Each bound comes from the primary key of a table under ``seen`` (a view of the staged results and the
    reused rows, or a table, see :class:`.scratch.Scratch`): MIN and MAX over the view would scan it (about
    0.3 s for 500,000 people, as long as the join itself). Compared by SQLite, in the join's order.
    """
    least = _bound(conn, k, "MIN")
    greatest = _extreme(conn, "MAX", [_bound(conn, j, "MAX") for j in range(k)])
    if least is None or greatest is None:
        return False
    return not conn.execute("SELECT ? < ?", (greatest, least)).fetchone()[0]


def _bound(conn: sqlite3.Connection, j: int, fn: str) -> str | None:
    """MIN or MAX (``fn``) of the record IDs of worker ``j``'s ``seen``, None when it has none."""
    kind = conn.execute(f"SELECT type FROM s{j}.sqlite_master WHERE name = 'seen'").fetchone()
    tables = ["result", "reused"] if kind is not None and kind[0] == "view" else ["seen"]
    return _extreme(conn, fn, [conn.execute(f"SELECT {fn}(record_id) FROM s{j}.{t}").fetchone()[0] for t in tables])


def _extreme(conn: sqlite3.Connection, fn: str, values: list[str | None]) -> str | None:
    """MIN or MAX of the values that are not None, in SQLite's order (None when there are none)."""
    found = [v for v in values if v is not None]
    if not found:
        return None
    row = conn.execute(f"SELECT {fn}(x) FROM (" + " UNION ALL ".join(["SELECT ? AS x"] * len(found)) + ")", found)
    return str(row.fetchone()[0])


def _remove(path: Path, ids: dict[str, int]) -> dict[str, str]:
    """Drop the lines of these record IDs from a JSON Lines file; returns them by ID."""
    removed: dict[str, str] = {}
    tmp = path.with_name(path.name + ".dedup")
    with path.open(encoding="utf-8") as src, open_private(tmp, "w", encoding="utf-8") as dst:
        for line in src:
            if line.startswith(_HEAD):
                rid, _ = scanstring(line, len(_HEAD) + 1)
                if rid in ids and rid not in removed:
                    removed[rid] = line
                    continue
            dst.write(line)
    os.replace(tmp, path)
    return removed
