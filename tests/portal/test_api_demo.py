"""``signer serve --demo`` (the API's side: PKI, centres config, API key, the
example records through the job path), and job claiming across processes."""

from __future__ import annotations

import io
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from signer.ledger import Ledger
from signer.web import jobs
from signer.web.settings import PortalSettings
from tests.fixtures.logscan import server_log
from tests.portal.api_fixtures import ROOT, free_port


def test_serve_demo_then_again_reuses_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from signer.web.demo import DEMO_KEY_ENV, prepare_demo

    data = tmp_path / "portal-data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VNDCC_")}
    log = server_log(f"demo-{port}")
    with log.open("ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "signer", "serve", "--demo", "--data", str(data),
                                 "--port", str(port)], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"serve --demo exited {proc.returncode}; see {log}"
            try:
                if httpx.get(url + "/api/v1/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve --demo did not answer"
            time.sleep(0.3)
        key_file = data / "centre-api-key"
        key = key_file.read_text("ascii").strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        printed = log.read_text("utf-8", "replace")
        assert str(key_file) in printed and key not in printed and key[6:16] not in printed
        assert "outbox" in printed and "curl" in printed
        slips = data / "claim-codes.csv"  # the fallback for the examples without a usable phone
        assert stat.S_IMODE(slips.stat().st_mode) == 0o600
        codes = [row.split(",")[2] for row in slips.read_text("utf-8").splitlines()[1:]]
        assert codes and all(code not in printed for code in codes)
        job_ids = [p.name for p in (data / "jobs").iterdir() if not p.name.startswith(".")]
        assert len(job_ids) == 1
        r = httpx.get(f"{url}/api/v1/jobs/{job_ids[0]}", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json()["state"] == "done"
        assert r.json()["counts"]["issued"] == 7
        assert len(httpx.get(f"{url}/api/v1/jobs/{job_ids[0]}/results",
                             headers={"Authorization": f"Bearer {key}"}).json()["files"]) == 7  # fmt: skip
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    # again on the same DATA: the same PKI, key, job and certificates
    for name in list(os.environ):
        if name.startswith("VNDCC_"):
            monkeypatch.delenv(name)
    pki_index = (data / "pki" / "index.json").read_bytes()
    out = io.StringIO()
    settings = prepare_demo(PortalSettings(ledger=str(data / "ledger.sqlite"), data_dir=data), out=out)
    monkeypatch.delenv(DEMO_KEY_ENV)
    assert (data / "pki" / "index.json").read_bytes() == pki_index
    assert key_file.read_text("ascii").strip() == key
    assert [p.name for p in (data / "jobs").iterdir() if not p.name.startswith(".")] == job_ids
    assert job_ids[0] in out.getvalue() and key not in out.getvalue()
    assert settings.registry == data / "registry.csv" and settings.centres_config == data / "centres.json"
    ledger = Ledger.open(settings.ledger, actor="test", create=False)
    try:
        assert ledger.counts() == {"written": 7}
        assert ledger.db.fetchone("SELECT COUNT(*) FROM api_keys") == (1,)
    finally:
        ledger.close()


def _queue(db_target: str, data: Path, n: int) -> list[str]:
    ledger = Ledger.open(db_target, actor="test")
    ids = []
    try:
        for i in range(n):
            upload = data / f"u{i}"
            upload.write_text("x")
            job, created = jobs.queue_job(ledger.db, data / "jobs", centre="C", idempotency_key=f"k{i}", fmt="csv",
                                          upload=upload, body_sha256="0" * 64, at=f"2026-06-01T00:00:{i:02d}Z")  # fmt: skip
            assert created
            ids.append(job.id)
    finally:
        ledger.close()
    return ids


def test_each_job_is_claimed_by_one_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runners (two connections, as two uvicorn workers) race for 30 jobs:
    each job goes to exactly one; a dead or silent runner's job is taken over."""
    monkeypatch.delenv("VNDCC_LEDGER_KEY", raising=False)
    target = str(tmp_path / "ledger.sqlite")
    ids = _queue(target, tmp_path, 30)
    taken: dict[str, list[str]] = {"r1": [], "r2": []}
    now = time.time()

    def runner(name: str) -> None:
        ledger = Ledger.open(target, actor=name)
        try:
            while (job := jobs.claim_job(ledger.db, f"host-x:{os.getpid()}:{name}", now)) is not None:
                taken[name].append(job.id)
        finally:
            ledger.close()

    threads = [threading.Thread(target=runner, args=(n,)) for n in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken["r1"] + taken["r2"]) == sorted(ids)  # each once, none twice
    ledger = Ledger.open(target, actor="test")
    try:
        # a third runner finds nothing: both owners are alive (this process) and fresh
        assert jobs.claim_job(ledger.db, "host-x:1:r3", now) is None
        # a runner on another machine that stopped its heartbeat: taken over after STALE_SECONDS
        stale = jobs.claim_job(ledger.db, "host-x:1:r3", now + jobs.STALE_SECONDS + 1)
        assert stale is not None and stale.state == "running"
        # a dead process on this machine: taken over at once
        dead = subprocess.Popen(["true"])
        dead.wait()
        with ledger.db.transaction():
            ledger.db.execute("UPDATE jobs SET runner = ?, heartbeat = ? WHERE id = ?",
                              (f"{socket.gethostname()}:{dead.pid}:old", int(now), ids[0]))  # fmt: skip
        again = jobs.claim_job(ledger.db, f"{socket.gethostname()}:{os.getpid()}:new", now)
        assert again is not None and again.id == ids[0]
        row = ledger.db.fetchone("SELECT attempts FROM jobs WHERE id = ?", (ids[0],))
        assert row is not None and row[0] >= 2
    finally:
        ledger.close()
