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

With several workers, every worker must read the store as it was before the
run: a row another worker wrote in this run (say for a later copy of a record
ID) is not an earlier verdict, and reading it would make the result depend on
which worker ran first. So a worker opened with ``staging`` reads the shared
store but writes its rows to its own staging file, and :func:`merge_staged`
applies the staging files in range order after the workers are done.

A run's verdicts are stored while it runs (each chunk's, or each worker's
part), before its outputs are written; :func:`mark_delivered` marks the run
once they are in place (table ``run``, column ``delivered``). The verdicts of
a run never marked (killed, or failed) describe records whose lines reached no
``verified-new.jsonl``: the next run deletes them when it opens the store (see
:class:`ResultStore`), so that those records are new to it, as they are to
the signer. A store from before the mark: its runs are taken as delivered.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier.errors import ConfigError

from .private import connect_private, make_private_dir

TIME_DEPENDENT = frozenset({"dob_future", "dose_future"})
_COLUMNS = "record_id, fingerprint, context, run, codes, fields, suggestion, line, registry_name"
#: A record ID met twice in one run (two workers): the earlier line's verdict stays, whoever writes last.
_ON_CONFLICT = (
    " ON CONFLICT(record_id) DO UPDATE SET "
    "fingerprint = excluded.fingerprint, context = excluded.context, run = excluded.run, "
    "codes = excluded.codes, fields = excluded.fields, suggestion = excluded.suggestion, line = excluded.line, "
    "registry_name = excluded.registry_name "
    "WHERE result.run != excluded.run OR excluded.line < result.line"
)
_UPSERT = f"INSERT INTO result({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)" + _ON_CONFLICT
#: The staging table of a worker (see :func:`merge_staged`); :class:`.scratch.Scratch` may hold it in its file.
#: The store's columns but ``context`` and ``run``, the same for every row a worker stages (its store's):
#: :func:`merge_staged` gives them. 500,000 rows: 69 -> 47 MB, 1.26 -> 0.87 CPU-s to stage (/tmp/clean9/ins2.py).
STAGED_TABLE = (
    "CREATE TABLE IF NOT EXISTS result(record_id TEXT PRIMARY KEY, fingerprint TEXT, "
    "codes TEXT, fields TEXT, suggestion TEXT, line INTEGER, registry_name TEXT) WITHOUT ROWID;"
)
_STAGED_COLUMNS = "record_id, fingerprint, codes, fields, suggestion, line, registry_name"
#: _UPSERT within one worker's staged rows, all of one run: the earlier line's verdict stays.
_STAGED_UPSERT = (
    f"INSERT INTO result({_STAGED_COLUMNS}) VALUES (?,?,?,?,?,?,?) ON CONFLICT(record_id) DO UPDATE SET "
    "fingerprint = excluded.fingerprint, codes = excluded.codes, fields = excluded.fields, "
    "suggestion = excluded.suggestion, line = excluded.line, registry_name = excluded.registry_name "
    "WHERE excluded.line < result.line"
)
_STAGED_SCHEMA = "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; " + STAGED_TABLE
#: A staged row as the store's _COLUMNS: the context and run bound by merge_staged.
_MERGED = "record_id, fingerprint, ? AS context, ? AS run, codes, fields, suggestion, line, registry_name"


@dataclass(frozen=True)
class Stored:
    fingerprint: str
    codes: tuple[str, ...]
    fields: tuple[str, ...]
    suggestion: str
    run: int
    context: str
    registry_name: str = ""  # the registry's spelling, for a name verified with a soft reason


class ResultStore:
    def __init__(self, path: str | Path, *, context: str, run: int | None = None, staging: Path | None = None,
                 fresh_staging: bool = True):  # fmt: skip
        """Open (or create) the store; a new run number unless ``run`` is given (workers), the verdicts of runs
        never marked delivered deleted (:meth:`_new_run`).

        With ``staging`` (a worker of a run with several), :meth:`flush` writes
        to that file instead of the store, see :func:`merge_staged`: a new file,
        unless ``fresh_staging`` is False (the caller has just made it, e.g. the
        worker's :class:`.scratch.Scratch` file, which then holds the table too).
        """
        self.path = Path(path)
        self.context = context
        self._staged: sqlite3.Connection | None = None
        try:
            make_private_dir(self.path.parent)
            self._conn = connect_private(self.path, isolation_level=None, timeout=120)
            self._conn.executescript(
                """
                PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
                CREATE TABLE IF NOT EXISTS result(
                    record_id TEXT PRIMARY KEY, fingerprint TEXT, context TEXT, run INTEGER,
                    codes TEXT, fields TEXT, suggestion TEXT, line INTEGER, registry_name TEXT) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS run(id INTEGER PRIMARY KEY, at TEXT, delivered TEXT);
                """
            )
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(result)")}
            if "line" not in columns:  # a store from before the line column
                self._conn.execute("ALTER TABLE result ADD COLUMN line INTEGER DEFAULT 0")
            if "registry_name" not in columns:  # a store from before the soft name verdicts
                self._conn.execute("ALTER TABLE result ADD COLUMN registry_name TEXT DEFAULT ''")
            if "delivered" not in {r[1] for r in self._conn.execute("PRAGMA table_info(run)")}:
                self._add_delivered()
            if run is None:
                run = self._new_run()
            self.run = run
            #: No verdict in the store when this run (worker) opened it: :meth:`get` finds none then (a record ID
            #: is put once per run, and rows of this run are never looked up: a record ID met again is a duplicate).
            self.empty = self._conn.execute("SELECT 1 FROM result LIMIT 1").fetchone() is None
            if staging is not None:
                if fresh_staging:
                    staging.unlink(missing_ok=True)
                self._staged = connect_private(staging, isolation_level=None)
                self._staged.executescript(_STAGED_SCHEMA)
        except sqlite3.Error as err:
            raise ConfigError(f"results store {self.path}: {err}") from None
        self._pending: list[tuple[str, ...] | tuple[object, ...]] = []

    def _add_delivered(self) -> None:
        """A store from before the delivery mark: add the column, every run in it delivered (one transaction:
        a run killed in between must not leave them undelivered, which would drop their verdicts)."""
        with self._immediate():
            if "delivered" not in {r[1] for r in self._conn.execute("PRAGMA table_info(run)")}:  # (another did)
                self._conn.execute("ALTER TABLE run ADD COLUMN delivered TEXT")
                self._conn.execute("UPDATE run SET delivered = coalesce(at, datetime('now'))")

    def _new_run(self) -> int:
        """Number a new run, and delete the verdicts of every earlier run never marked delivered (killed or
        failed: no ``verified-new.jsonl`` of theirs holds the records they verified), with their run rows.

        Those verdicts may have replaced a delivered run's: the records are then new to this run whatever they
        were before (they may be delivered twice, never not at all). Usually there is none: one query of the
        small run table.
        """
        with self._immediate():
            cur = self._conn.execute("INSERT INTO run(at) VALUES (datetime('now'))")
            run = int(cur.lastrowid or 0)
            undelivered = [r[0] for r in self._conn.execute(
                "SELECT id FROM run WHERE delivered IS NULL AND id < ?", (run,))]  # fmt: skip
            if undelivered:
                marks = ",".join("?" * len(undelivered))
                self._conn.execute(f"DELETE FROM result WHERE run IN ({marks})", undelivered)
                self._conn.execute(f"DELETE FROM run WHERE id IN ({marks})", undelivered)
        return run

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[None]:
        """One write transaction of the store (BEGIN IMMEDIATE ... COMMIT), rolled back on any error."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:  # (SQLite may have rolled it back itself)
                self._conn.execute("ROLLBACK")
            raise

    def get(self, ids: Sequence[str]) -> dict[str, Stored]:
        """The stored verdicts of these record IDs (none when the store was empty at open, see ``empty``)."""
        out: dict[str, Stored] = {}
        if self.empty:
            return out
        for i in range(0, len(ids), 1000):
            part = list(ids[i : i + 1000])
            q = (
                "SELECT record_id, fingerprint, codes, fields, suggestion, run, context, registry_name FROM result "
                "WHERE record_id IN (" + ",".join("?" * len(part)) + ")"
            )
            for rid, fp, codes, fields, sugg, run, ctx, name in self._conn.execute(q, part):
                out[rid] = Stored(fp, _split(codes), _split(fields), sugg or "", run, ctx, name or "")
        return out

    def reusable(self, stored: Stored | None, fingerprint: str) -> bool:
        return (
            stored is not None
            and stored.fingerprint == fingerprint
            and stored.context == self.context
            and not TIME_DEPENDENT.intersection(stored.codes)
        )

    def put(self, record_id: str, fingerprint: str, codes: Iterable[str], fields: Iterable[str], suggestion: str,
            line: int = 0, registry_name: str = "") -> None:  # fmt: skip
        self._pending.append(
            (record_id, fingerprint, ";".join(codes), ";".join(fields), suggestion, line, registry_name)
        )  # fmt: skip

    def put_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """:meth:`put` of many rows, each already as (record ID, fingerprint, codes, fields, suggestion, line,
        registry name), codes and fields joined by ";" (the store adds :attr:`context` and :attr:`run`)."""
        self._pending += rows

    def flush(self) -> None:
        if self._staged is not None:  # staged rows hold no context and run: merge_staged adds them
            conn, upsert, rows = self._staged, _STAGED_UPSERT, self._pending
        else:
            context, run = self.context, self.run
            conn, upsert, rows = self._conn, _UPSERT, [(r[0], r[1], context, run, *r[2:]) for r in self._pending]
        try:
            conn.execute("BEGIN IMMEDIATE")
            if rows:
                conn.executemany(upsert, rows)
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            raise ConfigError(f"results store {self.path}: {err}") from None
        self._pending.clear()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._staged is not None:
                self._staged.close()
            self._conn.close()


def drop_staged(staged: Path, ids: Iterable[str]) -> None:
    """Forget a worker's staged rows of these record IDs (later occurrences of IDs met in an earlier range)."""
    try:
        conn = sqlite3.connect(staged, isolation_level=None)
        try:
            conn.execute("BEGIN")
            conn.executemany("DELETE FROM result WHERE record_id = ?", ((rid,) for rid in ids))
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise ConfigError(f"results staging {staged}: {err}") from None


def merge_staged(path: str | Path, staged: Sequence[Path], context: str, run: int) -> None:
    """Apply the workers' staging files to the store, in range order (the earlier line's verdict stays), every row
    with the ``context`` and ``run`` of the workers' stores (the staged rows do not hold them).

    The result is the store one worker would have left, which stores only
    the first line of a record ID: :mod:`.dupes` drops the staged rows of
    later occurrences in other ranges first (:func:`drop_staged`); were one
    left, the earlier line's row of this run would still win.
    """
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=120)
        try:
            for part in staged:
                conn.execute("ATTACH DATABASE ? AS staged", (str(part),))
                conn.execute("BEGIN IMMEDIATE")
                # "WHERE true": an upsert after INSERT ... SELECT needs a WHERE (SQLite parsing rule)
                conn.execute(
                    f"INSERT INTO main.result({_COLUMNS}) SELECT {_MERGED} FROM staged.result WHERE true"
                    + _ON_CONFLICT, (context, run)
                )  # fmt: skip
                conn.execute("COMMIT")
                conn.execute("DETACH DATABASE staged")
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise ConfigError(f"results store {path}: {err}") from None


def mark_delivered(path: str | Path, run: int) -> None:
    """Mark ``run`` delivered: its outputs are in place (call it after the last one is renamed into place).
    Its verdicts are then an earlier run's to the next runs; until then, the next run deletes them."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=120)
        try:
            conn.execute("UPDATE run SET delivered = datetime('now') WHERE id = ?", (run,))
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise ConfigError(f"results store {path}: {err}") from None


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(text.split(";")) if text else ()
