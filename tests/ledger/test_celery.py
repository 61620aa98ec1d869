"""Scale-out on Celery (issue 10): a real redis-server and PostgreSQL, two
``signer worker`` processes, one ``signer batch --celery`` run; one worker's
signing process is killed with SIGKILL in the middle of a chunk. The chunk
goes back to the queue (acks late, reject on worker loss), is signed again
through the ledger with the UVCIs it had reserved, and the batch ends with
every record issued exactly once: one certificate per record, no duplicate
UVCI, files = ledger = manifest, the audit chain whole.

redis-server comes from Debian's ``redis-server`` package (scripts/setup.sh
installs it) and runs on a free loopback port in a temporary folder, with
no persistence; a missing binary fails the test with a clear message.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from keys.secrets import KEY_PASSPHRASE_ENV
from signer.ledger import Ledger
from signer.ledger.secret import LEDGER_KEY_ENV
from signer.worker import worker_actor
from tests.fixtures.pki import TestPki as Pki
from tests.signer.conftest import TEST_PASSPHRASE, write_key_files

from .helpers import AT, CENTRE, check_consistent, many_records, write_records
from .test_kill import children

RECORDS = 400
CHUNK = 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not found: install the Debian package 'redis-server' (bash scripts/setup.sh does)")
    port = _free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("target", ["process", "worker"])
def test_two_workers_one_killed_mid_chunk(
    test_pki: Pki,
    tmp_path: Path,
    redis_url: str,
    new_pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
) -> None:
    """``process``: the signing process of a worker (the worker puts the chunk
    back at once and starts another process); ``worker``: the whole worker,
    as a machine that vanishes (Redis gives the chunk to the other worker
    after the visibility timeout, here 3 s)."""
    records = many_records(RECORDS)
    source = write_records(tmp_path / "in.jsonl", records)
    folder = tmp_path / "keys"
    folder.mkdir()
    key, cert = write_key_files(test_pki.dsc_ec, folder)
    out = tmp_path / "out"
    env = dict(os.environ)
    env[KEY_PASSPHRASE_ENV] = TEST_PASSPHRASE
    env[LEDGER_KEY_ENV] = secrets.token_hex(32)
    if target == "worker":
        env["VNDCC_CELERY_VISIBILITY"] = "3"
    monkeypatch.setenv(LEDGER_KEY_ENV, env[LEDGER_KEY_ENV])  # for the checks in this process
    Ledger.open(new_pg_database, actor="test").close()  # the schema, before two workers race to make it
    env["VNDCC_CELERY_URL"] = redis_url  # the workers' default; the batch's bare --celery
    worker = [sys.executable, "-m", "signer", "worker", "--ledger", new_pg_database,
              "--key", str(key), "--cert", str(cert)]  # fmt: skip
    batch = [sys.executable, "-m", "signer", "batch", str(source), "--out", str(out), "--ledger", new_pg_database,
             "--centre", CENTRE, "--at", AT, "--progress", "none", "--celery",
             "--chunk-size", str(CHUNK), "--zip-per-commune"]  # fmt: skip
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen(worker, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        for log in logs
    ]
    try:
        started = time.monotonic()
        run = subprocess.Popen(batch, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # a signing process with reserved records (the ledger's actor names it):
        # it is in the middle of a chunk, which it has reserved and not yet written
        victim = None
        with psycopg.connect(new_pg_database, autocommit=True) as conn:
            while victim is None and time.monotonic() - started < 30 and run.poll() is None:
                pids = [pid for w in workers for pid in children(w.pid)]
                for pid in pids:
                    row = conn.execute(
                        "SELECT COUNT(*) FROM certificates WHERE state = 'reserved' AND actor = %s",
                        (worker_actor(pid),),
                    ).fetchone()
                    if row and row[0]:
                        victim = pid
                        break
                else:
                    time.sleep(0.002)
        assert victim is not None, "no worker was seen signing a chunk"
        if target == "process":
            os.kill(victim, signal.SIGKILL)
            survivors = workers
        else:
            owner = next(w for w in workers if victim in children(w.pid))
            os.killpg(owner.pid, signal.SIGKILL)
            survivors = [w for w in workers if w is not owner]
        stdout, stderr = run.communicate(timeout=60)
        elapsed = time.monotonic() - started
        assert run.returncode == 0, stderr.decode(errors="replace") + "\n" + "\n".join(
            log.read_text(errors="replace")[-3000:] for log in logs
        )
        assert all(w.poll() is None for w in survivors), "a worker's main process ended"
        summary = stdout.decode()
        assert f"{RECORDS} record(s): {RECORDS} issued" in summary, summary
        assert " resumed from an interrupted run" in summary, summary  # the killed chunk, finished by the ledger
        current = check_consistent(new_pg_database, out, [r.record_id for r in records], extra={"communes"})
        assert "commune ZIPs: 8 in" in summary and f"({RECORDS} certificate(s);" in summary, summary
        ledger = Ledger.open(new_pg_database, actor="check", create=False)
        try:
            # exactly once: one certificate row per record, never a second one
            (rows,) = ledger.db.fetchone("SELECT COUNT(*) FROM certificates") or (0,)
        finally:
            ledger.close()
        assert rows == RECORDS
        assert len({c.uvci for c in current.values()}) == RECORDS
        # the same command again: nothing to do
        again = subprocess.run(batch, env=env, capture_output=True, timeout=60)
        assert again.returncode == 0, again.stderr.decode(errors="replace")
        assert f"{RECORDS} record(s): 0 issued, {RECORDS} skipped as already issued".encode() in again.stdout
        print(f"batch of {RECORDS} on 2 workers, one {target} killed: {elapsed:.1f} s")
    finally:
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, signal.SIGKILL)
            w.wait()


@pytest.mark.slow
def test_coordinator_killed_then_started_again(
    test_pki: Pki, tmp_path: Path, redis_url: str, new_pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coordinator (``batch --celery``) SIGKILLed after some chunks are
    written, with others queued or being signed: the workers finish or drop
    what it queued (a chunk whose file the next run removed is a no-op), and
    the same command again ends the batch with every record exactly once."""
    total = 3 * RECORDS  # 30 chunks: most are still queued or being signed at the kill
    records = many_records(total)
    source = write_records(tmp_path / "in.jsonl", records)
    folder = tmp_path / "keys"
    folder.mkdir()
    key, cert = write_key_files(test_pki.dsc_ec, folder)
    out = tmp_path / "out"
    env = dict(os.environ)
    env[KEY_PASSPHRASE_ENV] = TEST_PASSPHRASE
    env[LEDGER_KEY_ENV] = secrets.token_hex(32)
    env["VNDCC_CELERY_URL"] = redis_url
    monkeypatch.setenv(LEDGER_KEY_ENV, env[LEDGER_KEY_ENV])
    Ledger.open(new_pg_database, actor="test").close()
    worker = [sys.executable, "-m", "signer", "worker", "--ledger", new_pg_database,
              "--key", str(key), "--cert", str(cert)]  # fmt: skip
    batch = [sys.executable, "-m", "signer", "batch", str(source), "--out", str(out), "--ledger", new_pg_database,
             "--centre", CENTRE, "--at", AT, "--progress", "none", "--celery", "--chunk-size", str(CHUNK)]  # fmt: skip
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen(worker, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        for log in logs
    ]
    try:
        first = subprocess.Popen(batch, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.monotonic()
        written = 0
        with psycopg.connect(new_pg_database, autocommit=True) as conn:
            while time.monotonic() - started < 60 and first.poll() is None:
                row = conn.execute("SELECT COUNT(*) FROM certificates WHERE state = 'written'").fetchone()
                written = int(row[0]) if row else 0
                if written >= 2 * CHUNK:
                    break
                time.sleep(0.005)
        assert first.poll() is None, "the batch ended before the kill"
        assert 0 < written < total
        first.kill()  # SIGKILL: no manifest, no summary, chunks left in the queue and on the disk
        first.wait()
        again = subprocess.run(batch, env=env, capture_output=True, timeout=120)
        assert again.returncode == 0, again.stderr.decode(errors="replace") + "\n" + "\n".join(
            log.read_text(errors="replace")[-3000:] for log in logs
        )
        summary = again.stdout.decode()
        assert f"{total} record(s): " in summary and " 0 refused" in summary, summary
        current = check_consistent(new_pg_database, out, [r.record_id for r in records])
        ledger = Ledger.open(new_pg_database, actor="check", create=False)
        try:
            (rows,) = ledger.db.fetchone("SELECT COUNT(*) FROM certificates") or (0,)
            states = ledger.counts()
        finally:
            ledger.close()
        assert rows == total, states  # no record got a second certificate, none was given up
        assert len({c.uvci for c in current.values()}) == total
        assert all(w.poll() is None for w in workers), "a worker ended"
        last = subprocess.run(batch, env=env, capture_output=True, timeout=60)
        assert last.returncode == 0, last.stderr.decode(errors="replace")
        assert f"{total} record(s): 0 issued, {total} skipped as already issued".encode() in last.stdout
        print(f"coordinator killed at {written} written; the second run: {summary.splitlines()[0]}")
    finally:
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, signal.SIGKILL)
            w.wait()
