"""schemathesis over the health-centre API (its OpenAPI at /api/v1/openapi.json)
against the real server with valid keys: no 5xx, and every response as the
schema documents it (status code, content type, body). schemathesis runs in its
own venv (.venv-fuzz, requirements/fuzz.txt: its jsonschema-rs and hypothesis
pins never meet the product's) as tests/portal/fuzz_driver.py, a plain HTTP
client; this test starts the server, hands the driver the URL and the keys in
a 0600 file, and checks its report. Bounded examples: < 60 s."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.portal import api_fixtures
from tests.portal.api_fixtures import EXAMPLES, ApiPki, Server, make_api_env, submit, wait_job

ROOT = Path(__file__).resolve().parents[2]
FUZZ_PYTHON = ROOT / ".venv-fuzz" / "bin" / "python"
api_pki = api_fixtures.api_pki


@pytest.fixture(scope="module")
def fuzz_server(api_pki: ApiPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    base = tmp_path_factory.mktemp("api-fuzz")
    env = make_api_env(api_pki, base / "data", str(base / "data" / "ledger.sqlite"), {})
    server = env.server()
    job = submit(server.client("A"), (EXAMPLES / "records.jsonl").read_bytes()).json()["job_id"]
    assert wait_job(server.client("A"), job)["state"] == "done"
    yield server, job
    server.stop()


def test_api_fuzz(fuzz_server: tuple[Server, str], tmp_path: Path) -> None:
    assert FUZZ_PYTHON.exists(), "no .venv-fuzz: run bash scripts/setup.sh --dev (it builds it from requirements/fuzz.txt)"
    server, job = fuzz_server
    name = server.client("A").get(f"/api/v1/jobs/{job}/results").json()["files"][0]["name"]
    config = tmp_path / "fuzz.json"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"url": server.url, "keys": {"A": server.keys["A"], "B": server.keys["B"]}, "job": job,
                   "result_file": name, "examples": 20}, fh)  # fmt: skip
    proc = subprocess.run([str(FUZZ_PYTHON), str(ROOT / "tests" / "portal" / "fuzz_driver.py"), str(config)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)  # fmt: skip
    assert proc.stdout.strip(), proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["failures"] == [] and proc.returncode == 0, "\n".join(report["failures"])[-6000:]
    # every operation was exercised, and submissions reached the job store or were refused cleanly
    assert len(report["operations"]) == 7, report["operations"]
    assert set(report["seen"]) == set(report["operations"])
    assert all(n >= 5 for n in report["calls"].values()), report["calls"]  # generation really ran
    assert set(report["seen"]["POST /api/v1/jobs"]) & {202, 400, 413, 415, 422}
    # every GET of the finished job: 200 for its centre, 404 for the other
    assert len(report["documented"]) == 12
    assert all(status == (200 if who == "A" else 404) for _, who, status in report["documented"]), report["documented"]
