"""Flagged records of one worker, on disk until the reconciliation lists are written.

    >>> scratch = Scratch(Path("out/.part0-flagged.sqlite"), parts=2)   # doctest: +SKIP
    >>> scratch.add_record(rec, ("registry_not_found",), (), "", rec.id_number)  # doctest: +SKIP

A SQLite file per worker with two tables: ``flagged`` (one row per flagged
record or unreadable row, as the lists print it, plus ``part``: which list
writer takes its commune) and ``seen`` (every record ID of the worker's
range with its first line and whether that line's verdict was reused from
the results store: duplicates within the range, and across ranges in
:mod:`.dupes`). On close, ``flagged`` gets an index in list order, so
the writers read it without sorting in memory. A worker of a run with
several holds its staged results in the same file, and ``seen`` is then a
view of them (``seen_in_results``).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from signer.records import Record, RowProblem

from .private import connect_private
from .registry import place_of
from .store import STAGED_TABLE

FLAGGED_INSERT = "INSERT INTO flagged VALUES (" + ",".join("?" * 17) + ")"


def flagged_row(
    rec: Record, codes: tuple[str, ...], fields: tuple[str, ...], suggestion: str, registry_id: str, parts: int
) -> tuple[Any, ...]:
    """A row of the scratch table ``flagged`` (the reconciliation lists' source)."""
    # never "" (that is the unreadable rows' group): a record without province
    # and commune goes to the "_unknown" list
    place = place_of(rec.province, rec.commune)
    part = zlib.crc32(place.encode()) % parts if place else 0
    doses = "; ".join(f"{d.date} {d.vaccine} {d.dose_number}/{d.series_doses}" for d in rec.doses)
    return (part, place, rec.line, rec.record_id, rec.full_name, rec.date_of_birth, rec.sex, rec.nationality,
            rec.id_number, rec.province, rec.commune, doses, ";".join(codes), ";".join(fields), suggestion,
            registry_id, "")  # fmt: skip


class Scratch:
    """Flagged records on disk until the reconciliation lists are written.

    ``seen_in_results``: the file also holds the worker's staged results-store
    table (``result``, :data:`.store.STAGED_TABLE`, written by the worker's
    :class:`.store.ResultStore` opened with ``staging`` = this file): then
    ``seen`` is a view of it, since every record ID's first line is either
    staged there (with its line) or had its verdict reused (table ``reused``,
    :meth:`remember`), and a worker needs no second row per person.
    """

    def __init__(self, path: Path, parts: int, *, seen_in_results: bool = False):
        path.unlink(missing_ok=True)
        self.path = path
        self.parts = parts
        self.seen_in_results = seen_in_results
        self.conn = connect_private(path, isolation_level=None)
        self.conn.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE flagged(part INTEGER, place TEXT, line INTEGER, record_id TEXT, full_name TEXT, "
            "date_of_birth TEXT, sex TEXT, nationality TEXT, id_number TEXT, province TEXT, commune TEXT, "
            "doses TEXT, codes TEXT, fields TEXT, suggestion TEXT, registry_id TEXT, message TEXT);"
            + (
                STAGED_TABLE + "CREATE TABLE reused(record_id TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID;"
                "CREATE VIEW seen(record_id, line, reused) AS SELECT record_id, line, 0 FROM result "
                "UNION ALL SELECT record_id, line, 1 FROM reused;"
                if seen_in_results
                else "CREATE TABLE seen(record_id TEXT PRIMARY KEY, line INTEGER, reused INTEGER) WITHOUT ROWID;"
            )
        )
        self.rows: list[tuple[Any, ...]] = []
        #: Every record ID met so far (remembered, or staged in the results) is at most this (string order);
        #: None: not known. The caller keeps it (signer.cleaning.run), see :meth:`seen_before`.
        self.met_up_to: str | None = None

    def add_record(self, rec: Record, codes: tuple[str, ...], fields: tuple[str, ...], suggestion: str,
                   registry_id: str) -> None:  # fmt: skip
        self.rows.append(flagged_row(rec, codes, fields, suggestion, registry_id, self.parts))

    def add_problem(self, problem: RowProblem, code: str) -> None:
        self.rows.append((0, "", problem.line, problem.record_id, "", "", "", "", "", "", "", "", code,
                          "", "", "", problem.message))  # fmt: skip

    def seen_before(self, ids: Sequence[str]) -> set[str]:
        """Which of these record IDs were already met in this run by this worker (before this chunk; see
        :meth:`remember`). An ID above :attr:`met_up_to` cannot have been, and is not looked up (an export in
        record ID order needs no query at all)."""
        out: set[str] = set()
        top = self.met_up_to
        if top is not None:
            ids = [i for i in ids if i <= top]
        for i in range(0, len(ids), 1000):
            part = ids[i : i + 1000]
            q = "SELECT record_id FROM seen WHERE record_id IN (" + ",".join("?" * len(part)) + ")"
            out.update(r[0] for r in self.conn.execute(q, part))
        return out

    def remember(self, rows: Sequence[tuple[str, int, bool]]) -> None:
        """Remember a chunk's (record ID, first line, verdict reused) rows (the first line of an ID wins).

        With ``seen_in_results`` only the rows whose verdict was reused are needed (the others are staged in
        ``result``); the others may be left out.
        """
        self.conn.execute("BEGIN")
        if self.seen_in_results:
            self.conn.executemany("INSERT OR IGNORE INTO reused VALUES (?, ?)",
                                  [(rid, line) for rid, line, reused in rows if reused])  # fmt: skip
        else:
            self.conn.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", rows)
        self.conn.execute("COMMIT")

    def flush(self) -> None:
        if self.rows:
            self.conn.execute("BEGIN")
            self.conn.executemany(FLAGGED_INSERT, self.rows)
            self.conn.execute("COMMIT")
            self.rows.clear()

    def close(self) -> None:
        self.flush()
        self.conn.execute("CREATE INDEX flagged_order ON flagged(part, place, line)")
        self.conn.close()
