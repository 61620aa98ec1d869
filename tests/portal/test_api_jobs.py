"""API jobs across a crash (the server SIGKILLed mid-batch, started again)
and on a PostgreSQL ledger."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signer.ledger import Ledger
from signer.ledger.secret import LEDGER_KEY_ENV
from tests.cleaning import pg
from tests.ledger import conftest as ledger_conftest
from tests.ledger.helpers import check_consistent
from tests.portal import api_fixtures
from tests.portal.api_fixtures import (
    CENTRE_A,
    EXAMPLES,
    ApiEnv,
    ApiPki,
    make_api_env,
    submit,
    wait_job,
)

api_pki = api_fixtures.api_pki
api_env = api_fixtures.api_env
pg_dsn = pg.pg_dsn
new_pg_database = ledger_conftest.new_pg_database

RECORDS = 150


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(t) for t in text]
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_killed_server_resumes_the_job_exactly_once(api_env: ApiEnv, tmp_path: Path) -> None:
    from signer.cli import main as signer_main

    synth = tmp_path / "synth"
    assert signer_main(["synth", "--out", str(synth), "--records", str(RECORDS), "--error-rate", "0",
                        "--seed", "12", "--malformed-rows", "0"]) == 0  # fmt: skip
    records = (synth / "records.jsonl").read_bytes()
    record_ids = [json.loads(line)["record_id"] for line in records.decode().splitlines() if line.strip()]
    server = api_env.server(registry=synth / "registry.csv")
    job = submit(server.client("A"), records, key="big-one").json()["job_id"]
    out = api_env.data / "jobs" / job / "out"
    # kill while the batch holds reservations (UVCIs taken, certificates not yet written)
    watcher = Ledger.open(api_env.ledger, actor="test", create=False)
    try:
        deadline = time.monotonic() + 180
        while watcher.db.fetchone("SELECT COUNT(*) FROM certificates WHERE state IN ('reserved', 'signed')") == (0,):
            assert time.monotonic() < deadline, "the batch did not start signing"
            time.sleep(0.05)
        assert server.proc is not None
        children = _children(server.proc.pid)
        server.kill()
        pending = watcher.db.fetchone("SELECT COUNT(*) FROM certificates WHERE state IN ('reserved', 'signed')")
    finally:
        watcher.close()
    assert children, "the job runs in a child process"
    assert pending is not None and pending[0] > 0, "the kill came too late to interrupt the batch"
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in children):  # they die with the server (PR_SET_PDEATHSIG)
        assert time.monotonic() < deadline, "a job child outlived the killed server"
        time.sleep(0.05)
    ledger = Ledger.open(api_env.ledger, actor="test", create=False)
    try:
        row = ledger.db.fetchone("SELECT state, attempts FROM jobs WHERE id = ?", (job,))
    finally:
        ledger.close()
    assert row == ("running", 1)

    again = api_env.server(registry=synth / "registry.csv")  # same DATA and ledger
    view = wait_job(again.client("A"), job, timeout=300)
    assert view["state"] == "done", view
    c = view["counts"]
    assert c["verified"] == RECORDS and c["refused_by_signer"] == 0
    assert c["issued"] + c["skipped"] == RECORDS
    check_consistent(api_env.ledger, out, record_ids, extra={"communes"} & {p.name for p in out.iterdir()})
    ledger = Ledger.open(api_env.ledger, actor="test", create=False)
    try:
        attempts = ledger.db.fetchone("SELECT attempts FROM jobs WHERE id = ?", (job,))
        # exactly once: one certificate row per record, all written (the reserved UVCIs were reused)
        certs = ledger.db.fetchall("SELECT state, COUNT(*) FROM certificates WHERE centre = ? GROUP BY state",
                                   (CENTRE_A,))  # fmt: skip
    finally:
        ledger.close()
    assert attempts == (2,) and certs == [("written", RECORDS)]
    results = again.client("A").get(f"/api/v1/jobs/{job}/results").json()["files"]
    assert results and all(f["size"] > 0 for f in results)


@pytest.fixture()
def pg_api_env(api_pki: ApiPki, tmp_path: Path, new_pg_database: str) -> Iterator[ApiEnv]:
    env = make_api_env(api_pki, tmp_path / "data", new_pg_database, {LEDGER_KEY_ENV: secrets.token_hex(32)})
    yield env
    for server in env.servers:
        server.stop()


def test_job_and_revoke_on_postgresql(pg_api_env: ApiEnv) -> None:
    server = pg_api_env.server()
    a, b = server.client("A"), server.client("B")
    body = (EXAMPLES / "records.jsonl").read_bytes()
    r = submit(a, body, key="pg-1")
    assert r.status_code == 202
    assert submit(a, body, key="pg-1").status_code == 200
    view = wait_job(a, r.json()["job_id"])
    assert view["state"] == "done", view
    assert (view["counts"]["verified"], view["counts"]["issued"]) == (7, 7)
    assert b.get(f"/api/v1/jobs/{view['job_id']}").status_code == 404
    os.environ[LEDGER_KEY_ENV] = pg_api_env.env[LEDGER_KEY_ENV]
    try:
        ledger = Ledger.open(pg_api_env.ledger, actor="test", create=False)
        try:
            uvci = next(c.uvci for c in ledger.by_record("HCM-000002", CENTRE_A) if c.state == "written")
        finally:
            ledger.close()
    finally:
        os.environ.pop(LEDGER_KEY_ENV, None)
    path = f"/api/v1/certificates/{uvci.replace('#', '%23')}/revoke"
    assert b.post(path, json={"reason": "not B's"}).status_code == 404
    r = a.post(path, json={"reason": "data entry error"})
    assert r.status_code == 200 and r.json()["state"] == "revoked"


def test_several_workers_one_runner(api_env: ApiEnv) -> None:
    """``serve --workers 2``: either worker accepts uploads; one process of the
    machine runs the jobs (the flock), and a second lock on the folder is refused."""
    from signer.web.jobs import MachineLock

    server = api_env.server(extra=["--workers", "2"])
    a = server.client("A")
    body = (EXAMPLES / "records.jsonl").read_bytes()
    job_ids = [submit(a, body).json()["job_id"] for _ in range(3)]
    views = [wait_job(a, job_id) for job_id in job_ids]
    assert [v["state"] for v in views] == ["done"] * 3
    assert sorted(v["counts"]["issued"] for v in views) == [0, 0, 7]  # exactly once across the jobs
    ledger = Ledger.open(api_env.ledger, actor="test", create=False)
    try:
        runners = {str(r[0]).split(":")[1] for r in ledger.db.fetchall("SELECT runner FROM jobs")}
    finally:
        ledger.close()
    assert len(runners) == 1
    assert not MachineLock(api_env.data / "jobs" / ".runner.lock").acquired()  # held by that worker
