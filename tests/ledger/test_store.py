"""The ledger itself, on SQLite and PostgreSQL: migrations, key, natural key,
states, queries, and `ledger verify` catching edited or deleted events."""

from __future__ import annotations

import datetime as dt
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from signer.cli import main
from signer.ledger import Change, FileEntry, Ledger, LedgerConflict, Reservation
from signer.ledger.audit import verify_ledger
from signer.ledger.db import connect
from signer.ledger.migrate import migrate, migrations
from signer.ledger.secret import LEDGER_KEY_ENV, LedgerKey, key_file_for
from signer.ledger.store import Certificate
from verifier.errors import ConfigError

VN = dt.timezone(dt.timedelta(hours=7))


def reservation(uvci: str, record_id: str = "R1", **kw: object) -> Reservation:
    base = Reservation(
        uvci=uvci,
        centre="Trạm Y tế Xã Tân Phú",
        record_id=record_id,
        record_hash="h-" + record_id,
        generation=0,
        citizen_hash=None,
        out_dir="/out",
        line=1,
        verified=True,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


SIGNED = {
    "kid": "NWpPQEpvGY4=",
    "iat": int(dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC).timestamp()),
    "exp": int(dt.datetime(2027, 6, 1, 12, tzinfo=dt.UTC).timestamp()),
    "exp_clamped": False,
    "payload_hash": "ab" * 32,
    "files": (FileEntry("R1.hc1.txt", "cd" * 32, 560), FileEntry("R1.png", "ef" * 32, 3000)),
}


def issue(ledger: Ledger, uvci: str, record_id: str = "R1", **kw: object) -> None:
    ledger.apply([reservation(uvci, record_id, **kw)])
    ledger.apply(changes=[Change(uvci, "signed", SIGNED)])
    ledger.apply(changes=[Change(uvci, "written")])


def test_migrations_numbered_alike_in_both_dialects() -> None:
    sqlite = [(m.version, m.name) for m in migrations("sqlite")]
    postgres = [(m.version, m.name) for m in migrations("postgresql")]
    assert sqlite == postgres and sqlite[0] == (1, "initial")


def test_migrate_once_and_refuse_a_newer_ledger(ledger_target: str) -> None:
    ledger = Ledger.open(ledger_target, actor="t")
    ledger.close()
    db = connect(ledger_target)
    try:
        assert migrate(db) == []  # already applied
        rows = db.fetchall("SELECT version, name FROM schema_version ORDER BY version")
        assert rows[0] == (1, "initial")
        assert rows == [(m.version, m.name) for m in migrations(db.dialect)]
        db.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (99, 'future', 'x')")
        with pytest.raises(ConfigError, match="schema version 99"):
            migrate(db)
    finally:
        db.close()


def test_sqlite_key_file_and_wrong_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LEDGER_KEY_ENV, raising=False)
    path = tmp_path / "l.sqlite"
    Ledger.open(str(path), actor="t").close()
    key_file = key_file_for(path)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = key_file.read_text().strip()
    monkeypatch.setenv(LEDGER_KEY_ENV, "x" * 40)  # another key
    with pytest.raises(ConfigError, match="does not match") as info:
        Ledger.open(str(path), actor="t")
    assert secret not in str(info.value) and "x" * 40 not in str(info.value)
    monkeypatch.setenv(LEDGER_KEY_ENV, "short")
    with pytest.raises(ConfigError, match="too short"):
        Ledger.open(str(path), actor="t")
    monkeypatch.delenv(LEDGER_KEY_ENV)
    key_file.unlink()
    with pytest.raises(ConfigError, match="ledger key not found"):
        Ledger.open(str(path), actor="t")
    assert not key_file.exists()  # an existing ledger never gets a new key silently


def test_postgres_needs_the_key_in_the_environment(new_pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LEDGER_KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=LEDGER_KEY_ENV):
        Ledger.open(new_pg_database, actor="t")


def test_keyed_hashes() -> None:
    a, b = LedgerKey(b"a" * 32), LedgerKey(b"b" * 32)
    assert a.citizen_hash("0790 8300-1234") == a.citizen_hash("079083001234") != b.citizen_hash("079083001234")
    assert a.citizen_hash(" ") is None
    assert "079083001234" not in repr(a) and a.check != b.check


def test_natural_key_and_one_live_certificate_per_record(ledger_target: str) -> None:
    ledger = Ledger.open(ledger_target, actor="t")
    try:
        issue(ledger, "U1")
        # the same record data, same generation: refused by the database
        with pytest.raises(LedgerConflict):
            ledger.apply([reservation("U2")])
        # ... also by raw SQL, not only by the Python code
        with pytest.raises(Exception, match=r"(?i)unique"):
            ledger.db.conn.execute(
                "INSERT INTO certificates (uvci, centre, record_id, record_hash, generation, out_dir, line, "
                "verified, state, actor, created_at, updated_at) SELECT 'U3', centre, record_id, record_hash, "
                "generation, out_dir, line, verified, 'reserved', actor, created_at, updated_at FROM certificates"
            )
        # another generation is fine, but two pending certificates of one record are not
        ledger.apply([reservation("U4", generation=1)])
        with pytest.raises(LedgerConflict):
            ledger.apply([reservation("U5", record_hash="other")])
        # nor two written ones
        ledger.apply(changes=[Change("U4", "signed", SIGNED)])
        with pytest.raises(LedgerConflict):
            ledger.apply(changes=[Change("U4", "written")])
        ledger.apply(changes=[Change("U1", "superseded", {"superseded_by": "U4"}), Change("U4", "written")])
        assert [(c.uvci, c.state) for c in ledger.by_record("R1")] == [("U1", "superseded"), ("U4", "written")]
        # a refused transaction changed nothing, and left no event
        assert verify_ledger(ledger) == []
    finally:
        ledger.close()


def test_transitions_are_enforced(ledger_target: str) -> None:
    ledger = Ledger.open(ledger_target, actor="t")
    try:
        ledger.apply([reservation("U1")])
        with pytest.raises(LedgerConflict, match="could not move to 'written'"):
            ledger.apply(changes=[Change("U1", "written")])  # reserved -> written skips signed
        ledger.apply(changes=[Change("U1", "released", note="test")])
        with pytest.raises(LedgerConflict):
            ledger.apply(changes=[Change("U1", "signed", SIGNED)])  # released is final
        with pytest.raises(ValueError, match="cannot set"):
            ledger.apply(changes=[Change("U1", "revoked", {"state": "written"})])
        assert ledger.by_uvci("U1").state == "released"  # type: ignore[union-attr]
        assert verify_ledger(ledger) == []
    finally:
        ledger.close()


def test_queries(ledger_target: str) -> None:
    ledger = Ledger.open(ledger_target, actor="t")
    try:
        citizen = ledger.key.citizen_hash("079083001234")
        issue(ledger, "U1", "R1", citizen_hash=citizen)
        issue(ledger, "U2", "R2", centre="Other centre")
        assert ledger.by_uvci("U1").record_id == "R1"  # type: ignore[union-attr]
        assert ledger.by_uvci("nope") is None
        assert [c.uvci for c in ledger.by_record("R2")] == ["U2"]
        assert ledger.by_record("R2", "Trạm Y tế Xã Tân Phú") == []
        assert [c.uvci for c in ledger.by_citizen("0790-8300-1234")] == ["U1"]
        assert ledger.by_citizen("079083009999") == []
        day = dt.date(2026, 6, 1)  # 12:00 UTC = 19:00 in Viet Nam
        assert [c.uvci for c in ledger.by_centre_and_day("Other centre", day, VN)] == ["U2"]
        assert ledger.by_centre_and_day("Other centre", day + dt.timedelta(days=1), VN) == []
        assert [c.uvci for c in ledger.by_kid(SIGNED["kid"])] == ["U1", "U2"]  # type: ignore[arg-type]
        cert = ledger.by_uvci("U1")
        assert isinstance(cert, Certificate) and cert.files == SIGNED["files"] and cert.exp_clamped is False
        assert ledger.counts() == {"written": 2}
    finally:
        ledger.close()


def test_events_are_append_only_in_the_database(ledger_target: str) -> None:
    ledger = Ledger.open(ledger_target, actor="t")
    try:
        issue(ledger, "U1")
        for sql in ("UPDATE events SET actor = 'x'", "DELETE FROM events", "DELETE FROM certificates"):
            with pytest.raises(Exception, match=r"append-only|never deleted"):
                ledger.db.conn.execute(sql)
    finally:
        ledger.close()


def drop_guards(ledger: Ledger) -> None:
    """What someone editing the database behind the ledger's back does first."""
    if ledger.db.dialect == "sqlite":
        for name in ("events_no_update", "events_no_delete", "certificates_no_delete"):
            ledger.db.conn.execute(f"DROP TRIGGER {name}")
    else:
        ledger.db.conn.execute("DROP TRIGGER events_no_update ON events")
        ledger.db.conn.execute("DROP TRIGGER certificates_no_delete ON certificates")


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("UPDATE events SET detail = replace(detail, 'R1', 'R9') WHERE seq = 1", "event 1: its content does not match"),
        ("DELETE FROM events WHERE seq = 2", "events 2..2 are missing"),
        ("DELETE FROM events WHERE seq = (SELECT MAX(seq) FROM events)", "missing (deleted; the chain head"),
        ("UPDATE certificates SET state = 'revoked' WHERE uvci = 'U2'", "certificate U2: state differ"),
        ("DELETE FROM certificates WHERE uvci = 'U1'", "certificate U1: its row is missing"),
        (
            "INSERT INTO certificates (uvci, centre, record_id, record_hash, generation, out_dir, line, verified, "
            "state, actor, created_at, updated_at) VALUES ('U0', 'c', 'R7', 'h', 0, '/o', 1, 1, 'written', 'x', 'x', 'x')",
            "certificate U0: no event records it",
        ),
    ],
)
def test_verify_detects_edits_and_deletions(
    ledger_target: str, tamper: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = Ledger.open(ledger_target, actor="t")
    try:
        issue(ledger, "U1", "R1")
        issue(ledger, "U2", "R2")
        assert verify_ledger(ledger) == []
        assert main(["ledger", "verify", "--ledger", ledger_target]) == 0
        assert capsys.readouterr().out.startswith("ledger ok: 6 event(s), 2 certificate(s)")
        drop_guards(ledger)
        ledger.db.conn.execute(tamper)
    finally:
        ledger.close()
    assert main(["ledger", "verify", "--ledger", ledger_target]) == 1
    out = capsys.readouterr().out
    assert expected in out, out
    assert out.rstrip().endswith(f"problem(s) in {ledger_target}")


def test_verify_cli_on_a_missing_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.sqlite"
    assert main(["ledger", "verify", "--ledger", str(missing)]) == 2
    assert "ledger not found" in capsys.readouterr().err
    assert not missing.exists() and not os.listdir(tmp_path)


def test_a_locked_database_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    monkeypatch.delenv(LEDGER_KEY_ENV, raising=False)
    monkeypatch.setattr("signer.ledger.db.BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "l.sqlite"
    ledger = Ledger.open(str(path), actor="t")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process writing for too long
        with pytest.raises(ConfigError, match="database is locked"):
            ledger.apply([reservation("U1")])
        other.execute("ROLLBACK")
        ledger.apply([reservation("U1")])  # the connection is usable again
        assert verify_ledger(ledger) == []
    finally:
        other.close()
        ledger.close()


def test_verify_reads_in_pages(ledger_target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 2 rows: the merge of events and certificates across page ends."""
    monkeypatch.setattr("signer.ledger.audit._PAGE", 2)
    ledger = Ledger.open(ledger_target, actor="t")
    try:
        for i in range(5):
            issue(ledger, f"U{i}", f"R{i}")
        ledger.apply(changes=[Change("U3", "revoked", {"revoked_reason": "test"})])
        assert verify_ledger(ledger) == []
        drop_guards(ledger)
        ledger.db.conn.execute("DELETE FROM certificates WHERE uvci = 'U2'")
        ledger.db.conn.execute("UPDATE certificates SET line = 9 WHERE uvci = 'U4'")
        ledger.db.conn.execute("DELETE FROM events WHERE seq = 7")
        problems = verify_ledger(ledger)
    finally:
        ledger.close()
    assert problems == [
        "events 7..7 are missing (deleted)",
        "event 8: does not follow the event before it (chain broken)",
        "certificate U2: its row is missing (deleted)",
        "certificate U4: line differ from its events (edited)",
    ]
