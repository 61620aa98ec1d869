"""Versioned schema migrations: numbered SQL files, one ``schema_version`` row each.

    >>> # from signer.ledger.db import connect
    >>> # migrate(connect("ledger.sqlite"))  -> the versions applied now, e.g. [1]

``signer/ledger/migrations/<dialect>/NNNN_name.sql``: each file runs in one
transaction together with its ``schema_version`` row, in number order, once.
A ledger newer than this program (a version it does not know) is refused
rather than written to. Both dialects get a file for every version (a test
checks the numbers match). Why not Alembic: docs/ledger.md, "Why no ORM".
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from importlib import resources

from signer.ledger.db import Database
from verifier.errors import ConfigError

#: pg_advisory_xact_lock key of the migration step (any constant).
_PG_LOCK = 0x56_4E_44_43_43_4C
_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(dialect: str) -> list[Migration]:
    """The migration files of ``dialect``, in version order (1, 2, ... without gaps)."""
    folder = resources.files("signer.ledger").joinpath("migrations", dialect)
    found = []
    for entry in folder.iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise AssertionError(f"ledger migrations for {dialect} are not numbered 1..N")
    return found


def current_version(db: Database) -> int:
    """The ledger's schema version (0 = empty database)."""
    if db.dialect == "sqlite":
        exists = db.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
    else:
        exists = db.fetchone("SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_version' AND table_schema = current_schema()")
    if not exists:
        return 0
    row = db.fetchone("SELECT MAX(version) FROM schema_version")
    return int(row[0]) if row and row[0] is not None else 0


def migrate(db: Database) -> list[int]:
    """Bring the schema up to date; returns the versions applied now."""
    known = migrations(db.dialect)
    applied: list[int] = []
    with db.transaction():
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
    version = current_version(db)
    if version > len(known):
        raise ConfigError(
            f"ledger {db.target} has schema version {version}; this program knows up to "
            f"{len(known)}: update the program"
        )
    for migration in known[version:]:
        with db.transaction():
            if db.dialect == "postgresql":  # SQLite's BEGIN IMMEDIATE already serialises writers
                db.execute("SELECT pg_advisory_xact_lock(?)", (_PG_LOCK,))
            # re-read inside the write transaction: two processes starting at once
            # must not both apply a version (the PRIMARY KEY would refuse the second)
            if current_version(db) >= migration.version:
                continue
            db.script(migration.sql)
            db.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, dt.datetime.now(dt.UTC).isoformat()),
            )
        applied.append(migration.version)
    return applied
