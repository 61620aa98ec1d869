"""The ledger's database connection: SQLite (a file) or PostgreSQL (a URL).

    >>> import tempfile, pathlib
    >>> from signer.ledger.db import connect
    >>> db = connect(str(pathlib.Path(tempfile.mkdtemp()) / "ledger.sqlite"))
    >>> with db.transaction():
    ...     db.execute("CREATE TABLE t (x INTEGER)")
    ...     db.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    >>> db.fetchall("SELECT x FROM t ORDER BY x")
    [(1,), (2,)]
    >>> db.close()

Plain DB-API (``sqlite3``, psycopg 3), no ORM: the signing run writes a few
rows per certificate, and a batch of 256 certificates is a few
``executemany`` calls in two transactions (docs/ledger.md, "Why no ORM").
SQL is written once with ``?`` placeholders; for PostgreSQL they become
``%s``. Transactions are explicit (:meth:`Database.transaction`): SQLite runs
in autocommit mode with ``BEGIN IMMEDIATE`` (the write lock is taken at the
start, so a read-then-insert inside one transaction cannot race another
writer), PostgreSQL in autocommit mode with psycopg's ``transaction()``.

SQLite settings (each connection): WAL (readers never block the writer),
``synchronous=FULL`` (a commit is on disk when ``COMMIT`` returns, also
across a power cut: the ledger must never forget a reserved UVCI whose
signed files may already be on disk; it costs one fsync per commit, and a
run commits twice per batch of 256), ``busy_timeout`` 30 s,
``foreign_keys`` on. The database file is created 0600.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from verifier.errors import ConfigError

#: Busy timeout: how long a writer waits for another run's transaction.
BUSY_TIMEOUT_MS = 30_000

Row = tuple[Any, ...]


class IntegrityConflict(Exception):
    """A UNIQUE or CHECK constraint refused a write (both dialects)."""


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


@lru_cache(maxsize=256)
def _to_format(sql: str) -> str:
    """``?`` placeholders -> psycopg's ``%s`` (our SQL has no ``%`` or ``?`` in literals)."""
    if "%" in sql:
        raise AssertionError("ledger SQL must not contain '%'")
    return sql.replace("?", "%s")


class Database:
    """One connection. ``dialect`` is ``"sqlite"`` or ``"postgresql"``."""

    dialect: str
    target: str  # the file path, or the URL without its password (for messages)

    def __init__(self, conn: Any, dialect: str, target: str) -> None:
        self.conn, self.dialect, self.target = conn, dialect, target
        self._depth = 0
        self._checkpoints: _Checkpoints | None = None

    def checkpoint_in_background(self, commits: int = 8) -> None:
        """SQLite: copy the WAL back into the database file in a thread with a
        connection of its own, after every ``commits`` commits of this
        connection, instead of in the committing connection whenever the WAL
        has grown by 1,000 pages (SQLite's ``wal_autocheckpoint``: about once
        per batch of 256 certificates). A checkpoint writes the pages back and
        flushes the WAL and the database file (two waits for the disk), and the
        next commit starts the WAL again (one more flush, of its header): a
        signing run's process waited for them all. The commits stay as durable
        as before (``synchronous=FULL`` flushes the WAL at each commit; a
        checkpoint only moves committed pages). Stopped by :meth:`close` (the
        connection's own close checkpoints what is left). A PostgreSQL
        database has nothing to do.

        The connection keeps a safety net (:data:`WAL_SAFETY_PAGES`): SQLite
        starts the WAL again only when a commit finds it wholly copied back,
        and a commit that lands while the thread checkpoints leaves it not
        quite so, so the WAL could grow from checkpoint to checkpoint (a
        reviewer measured 127 MB for 20,000 records with none), and nothing
        would checkpoint at all were the thread to end on an error. With the
        net, the committing connection checkpoints itself once the WAL holds
        that many pages (the thread keeps it well below in the usual case),
        and a WAL grown past :data:`WAL_LIMIT_BYTES` is cut back to it."""
        if self.dialect != "sqlite" or self._checkpoints is not None:
            return
        self._checkpoints = _Checkpoints(self.target, commits)
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_SAFETY_PAGES}")
        self.conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")

    # -- statements ------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql if self.dialect == "sqlite" else _to_format(sql)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        try:
            with _database_errors(self.target):
                return int(self.conn.execute(self._sql(sql), params).rowcount)
        except _integrity_errors() as err:
            raise IntegrityConflict(str(err).splitlines()[0]) from err

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run ``sql`` once per row; returns the number of rows it changed."""
        rows = list(rows)
        if not rows:
            return 0
        try:
            with _database_errors(self.target):
                if self.dialect == "sqlite":
                    return int(self.conn.executemany(sql, rows).rowcount)
                with self.conn.cursor() as cur:
                    cur.executemany(_to_format(sql), rows)
                    return int(cur.rowcount)
        except _integrity_errors() as err:
            raise IntegrityConflict(str(err).splitlines()[0]) from err

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with _database_errors(self.target):
            if self.dialect == "sqlite":
                return list(self.conn.execute(sql, params).fetchall())
            with self.conn.cursor() as cur:
                cur.execute(_to_format(sql), params)
                return list(cur.fetchall())

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def script(self, sql: str) -> None:
        """Run several statements (a migration file), inside the current transaction."""
        if self.dialect == "postgresql":
            self.conn.execute(sql)  # no parameters: psycopg sends it as one simple query
            return
        buffer = ""
        for line in sql.splitlines(keepends=True):
            buffer += line
            if sqlite3.complete_statement(buffer):  # knows about CREATE TRIGGER ... END;
                if buffer.strip():
                    self.conn.execute(buffer)
                buffer = ""
        if buffer.strip() and not all(
            ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
        ):
            raise ConfigError("ledger migration ends with an incomplete SQL statement")

    # -- transactions ----------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        if self.dialect == "sqlite":
            with _database_errors(self.target):  # "database is locked" after the busy timeout
                self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            try:
                with _database_errors(self.target):
                    self.conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
            if self._checkpoints is not None:
                self._checkpoints.committed()
            return
        with self.conn.transaction():
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0

    def checkpoint_every(self, commits: int) -> None:
        """Change the interval of :meth:`checkpoint_in_background` (if started):
        a run near its end checkpoints after each commit, so that its close
        (which checkpoints what is left, in the closing thread) has little to copy."""
        if self._checkpoints is not None:
            self._checkpoints.every(commits)

    def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.stop()
            self._checkpoints = None
        with contextlib.suppress(Exception):
            self.conn.close()


#: The committing connection's own checkpoint threshold with the thread (pages; SQLite's default is 1,000).
WAL_SAFETY_PAGES = 4000
#: The thread checkpoints when the WAL holds about this many pages (at most every ``commits`` commits):
#: well below the safety net, which a checkpoint that misses the WAL's restart then does not reach.
CHECKPOINT_PAGES = 1500
#: A WAL grown past this is cut back to it when SQLite starts it again (PRAGMA journal_size_limit).
WAL_LIMIT_BYTES = 64 << 20


class _Checkpoints:
    """The thread of :meth:`Database.checkpoint_in_background`: a PASSIVE
    checkpoint (it never blocks the writer nor waits for readers) after every
    ``commits`` commits, or fewer once the commits are large (:meth:`_adapt`).
    (Not by the WAL file's size: it keeps its largest size when the WAL starts
    again.) An error (a busy or damaged file) is left to the connection's own
    close, which checkpoints again."""

    def __init__(self, path: str, commits: int) -> None:
        self.path = path
        self._most = commits
        self._every = 1  # the first checkpoint measures a commit's pages (_adapt)
        self._commits = 0  # since the last checkpoint (this thread and the committing one)
        self.done = 0  # checkpoints run (tests)
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ledger-checkpoint", daemon=True)
        self._owner = os.getpid()
        self._thread.start()

    def committed(self) -> None:
        self._commits += 1
        # the thread's interval, cut to the configured one: a checkpoint_every()
        # while the thread adapts cannot be undone by it
        if self._commits >= min(self._every, self._most):
            self._commits = 0
            self._wake.set()

    def every(self, commits: int) -> None:
        self._most = commits

    def _adapt(self, pages: int) -> None:
        """The next interval, from the WAL's length at this checkpoint (pages
        since it last started again): about :data:`CHECKPOINT_PAGES` pages,
        at most the configured number of commits. A signing run's commit of
        256 certificates writes ~150 pages into a young ledger and ~500 once
        it holds 90,000 (each new row lands on a page of its own in the indexes
        of keyed hashes): after a fixed 8 commits the WAL then passed the safety
        net, and every fourth or fifth commit copied ~4,000 pages back in the
        committing thread (50-90 ms; a 100,000-record run's last tenth, and its
        resume). The first interval is one commit, so that the first
        checkpoint finds the size of one before the WAL can reach the net. A
        checkpoint that missed the WAL's restart (a commit landed meanwhile)
        reports the older pages too: the interval only gets shorter."""
        if pages <= 0:
            return
        per_commit = pages / max(self._every, 1)
        self._every = max(1, min(self._most, int(CHECKPOINT_PAGES / per_commit)))

    def _run(self) -> None:
        conn = None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.execute("PRAGMA synchronous = FULL")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                with contextlib.suppress(sqlite3.Error):
                    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.done += 1
                    if row is not None:
                        self._adapt(int(row[1]))
        except Exception:  # any error: the committing connection's safety net (WAL_SAFETY_PAGES) checkpoints instead
            return
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> None:
        if os.getpid() != self._owner:  # a forked child's copy: the thread is not there
            return
        self._stopping = True
        self._wake.set()
        self._thread.join()


def _operational_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.OperationalError]
    with contextlib.suppress(ImportError):
        import psycopg

        errors.append(psycopg.OperationalError)
    return tuple(errors)


@contextlib.contextmanager
def _database_errors(target: str) -> Iterator[None]:
    """A locked, unreachable or full database is a one-line ConfigError, not a traceback."""
    try:
        yield
    except _operational_errors() as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"ledger {target}: {first}") from None


def _integrity_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.IntegrityError]
    with contextlib.suppress(ImportError):
        import psycopg

        errors.append(psycopg.errors.IntegrityError)
    return tuple(errors)


def connect(target: str, *, create: bool = True) -> Database:
    """Open the ledger database: a ``postgresql://`` URL, or a SQLite file path.

    ``create=False``: a missing SQLite file is a :class:`ConfigError` (the
    commands that only read or check a ledger never make an empty one).
    """
    if is_postgres_url(target):
        return _connect_postgres(target)
    return _connect_sqlite(Path(target), create=create)


def _connect_sqlite(path: Path, *, create: bool) -> Database:
    if path.is_dir():
        raise ConfigError(f"ledger {path} is a directory; give the database file, e.g. {path}/ledger.sqlite")
    if not path.exists():
        if not create:
            raise ConfigError(f"ledger not found: {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as err:
            raise ConfigError(f"cannot create ledger {path}: {err.strerror}") from None
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if not mode or str(mode[0]).lower() != "wal":
            raise ConfigError(f"ledger {path}: the file system does not support SQLite's WAL mode")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as err:
        raise ConfigError(f"cannot open ledger {path}: {err}") from None
    return Database(conn, "sqlite", str(path))


def redact_url(url: str) -> str:
    """The URL without a password (for messages)."""
    head, sep, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        cred, _, host = rest.partition("@")
        user = cred.split(":", 1)[0]
        return f"{head}{sep}{user}@{host}"
    return url


def _connect_postgres(url: str) -> Database:
    import psycopg

    shown = redact_url(url)
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=30)
    except psycopg.Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"cannot connect to ledger {shown}: {first}") from None
    return Database(conn, "postgresql", shown)
