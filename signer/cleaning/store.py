"""The results store: one row per record ID with the fingerprint it was checked at.

    >>> from signer.cleaning.store import ResultStore
    >>> store = ResultStore("state/results.sqlite", context="tables+registry")  # doctest: +SKIP
    >>> store.get(["R1", "R2"])                                                  # doctest: +SKIP
    {'R1': Stored(fingerprint='9f..', codes=(), fields=(), suggestion='', run=3)}

This is how corrections flow back (issue 4): re-running the checks on a
corrected export re-checks only the records whose content changed (their
:func:`signer.records.record_fingerprint` differs from the stored one) or
whose stored verdict depends on the date (``*_future``); every other record
keeps its stored verdict and its ``verified`` stamp, untouched. A change of
the rule tables or of the registry extract changes ``context`` and so
re-checks everything.

The store holds reason codes and registry *field names*, never registry
values, and lives in the state directory next to the registry index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from verifier.errors import ConfigError

TIME_DEPENDENT = frozenset({"dob_future", "dose_future"})
#: A record ID met twice in one run (two workers): the earlier line's verdict stays, whoever writes last.
_UPSERT = (
    "INSERT INTO result VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(record_id) DO UPDATE SET "
    "fingerprint = excluded.fingerprint, context = excluded.context, run = excluded.run, "
    "codes = excluded.codes, fields = excluded.fields, suggestion = excluded.suggestion, line = excluded.line "
    "WHERE result.run != excluded.run OR excluded.line < result.line"
)


@dataclass(frozen=True)
class Stored:
    fingerprint: str
    codes: tuple[str, ...]
    fields: tuple[str, ...]
    suggestion: str
    run: int
    context: str


class ResultStore:
    def __init__(self, path: str | Path, *, context: str, run: int | None = None):
        """Open (or create) the store; a new run number unless ``run`` is given (workers)."""
        self.path = Path(path)
        self.context = context
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=120)
            self._conn.executescript(
                """
                PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
                CREATE TABLE IF NOT EXISTS result(
                    record_id TEXT PRIMARY KEY, fingerprint TEXT, context TEXT, run INTEGER,
                    codes TEXT, fields TEXT, suggestion TEXT, line INTEGER) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS run(id INTEGER PRIMARY KEY, at TEXT);
                """
            )
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(result)")}
            if "line" not in columns:  # a store from before the line column
                self._conn.execute("ALTER TABLE result ADD COLUMN line INTEGER DEFAULT 0")
            if run is None:
                self._conn.execute("BEGIN IMMEDIATE")
                cur = self._conn.execute("INSERT INTO run(at) VALUES (datetime('now'))")
                run = int(cur.lastrowid or 0)
                self._conn.execute("COMMIT")
            self.run = run
        except sqlite3.Error as err:
            raise ConfigError(f"results store {self.path}: {err}") from None
        self._pending: list[tuple[str, ...] | tuple[object, ...]] = []

    def get(self, ids: Sequence[str]) -> dict[str, Stored]:
        out: dict[str, Stored] = {}
        for i in range(0, len(ids), 1000):
            part = list(ids[i : i + 1000])
            q = (
                "SELECT record_id, fingerprint, codes, fields, suggestion, run, context FROM result "
                "WHERE record_id IN (" + ",".join("?" * len(part)) + ")"
            )
            for rid, fp, codes, fields, sugg, run, ctx in self._conn.execute(q, part):
                out[rid] = Stored(fp, _split(codes), _split(fields), sugg or "", run, ctx)
        return out

    def reusable(self, stored: Stored | None, fingerprint: str) -> bool:
        return (
            stored is not None
            and stored.fingerprint == fingerprint
            and stored.context == self.context
            and not TIME_DEPENDENT.intersection(stored.codes)
        )

    def put(self, record_id: str, fingerprint: str, codes: Iterable[str], fields: Iterable[str], suggestion: str,
            line: int = 0) -> None:  # fmt: skip
        self._pending.append(
            (record_id, fingerprint, self.context, self.run, ";".join(codes), ";".join(fields), suggestion, line)
        )

    def flush(self) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            if self._pending:
                self._conn.executemany(_UPSERT, self._pending)
            self._conn.execute("COMMIT")
        except sqlite3.Error as err:
            raise ConfigError(f"results store {self.path}: {err}") from None
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._conn.close()


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(text.split(";")) if text else ()
