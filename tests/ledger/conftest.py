"""Fixtures for the ledger tests: a ledger target per dialect (a SQLite file,
or a fresh database on the throwaway PostgreSQL server of tests/cleaning/pg.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from signer.ledger.secret import LEDGER_KEY_ENV
from tests.cleaning.pg import pg_dsn  # noqa: F401  (the session's PostgreSQL server)


def database_url(dsn: str, name: str) -> str:
    """The server's URL with another database name."""
    head, _, query = dsn.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}?{query}"


@pytest.fixture()
def new_pg_database(pg_dsn: str) -> Iterator[str]:  # noqa: F811
    import psycopg

    name = f"ledger_{secrets.token_hex(6)}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield database_url(pg_dsn, name)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_target(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ledger that does not exist yet: a SQLite path (key file beside it) or
    a PostgreSQL URL (key in the environment)."""
    if request.param == "sqlite":
        monkeypatch.delenv(LEDGER_KEY_ENV, raising=False)
        return str(tmp_path / "ledger" / "ledger.sqlite")
    monkeypatch.setenv(LEDGER_KEY_ENV, secrets.token_hex(32))
    url: str = request.getfixturevalue("new_pg_database")
    return url
