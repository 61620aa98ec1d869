"""Fixtures of the health-centre API tests: a demo PKI with two centres, a
ledger with an API key per centre, and the real server (``python -m signer
serve`` under uvicorn on a loopback port, in its own process).

    from tests.portal.api_fixtures import *  # noqa: F403  (in a test module)

    def test_x(api_env):
        with api_env.server() as server:
            r = server.client("A").post("/api/v1/jobs", ...)
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from signer.demo import environment
from signer.ledger.secret import LEDGER_KEY_ENV
from tests.fixtures.logscan import server_log

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CENTRE_A = "Trung tâm Y tế Quận 1"
CENTRE_B = "Trạm Y tế Xã Tân Phú"
#: The environment variable the test centres config names (value made per session).
KEY_ENV = "VNDCC_TEST_API_DSC_PASSPHRASE"
CSCA_PASS = secrets.token_urlsafe(18)
KEY_PASS = secrets.token_urlsafe(18)
JSONL = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv"}


@dataclass(frozen=True)
class ApiPki:
    pki: Path

    @property
    def trust(self) -> list[str]:
        return ["--trust", str(self.pki / "csca.pem"), "--trust", str(self.pki / "trustlist.cbor")]


@pytest.fixture(scope="session")
def api_pki(tmp_path_factory: pytest.TempPathFactory) -> ApiPki:
    from signer.web.demo import build_pki

    pki = tmp_path_factory.mktemp("api-pki") / "pki"
    build_pki(pki, [CENTRE_A, CENTRE_B], csca_passphrase=CSCA_PASS, key_passphrase=KEY_PASS,
              now=dt.datetime.now(dt.UTC))  # fmt: skip
    return ApiPki(pki=pki)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One ``signer serve`` process."""

    argv: list[str]
    env: dict[str, str]
    port: int
    keys: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        log = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"signer serve exited {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(self.url + "/api/v1/openapi.json", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"signer serve did not answer within 60 s; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def client(self, who: str | None = "A", *, token: str | None = None) -> httpx.Client:
        headers = {}
        if token is not None:
            headers["Authorization"] = token
        elif who is not None:
            headers["Authorization"] = f"Bearer {self.keys[who]}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@dataclass
class ApiEnv:
    """A data folder, a ledger with one API key per centre, and a centres config."""

    data: Path
    pki: ApiPki
    ledger: str
    centres: Path
    registry: Path
    keys: dict[str, str]
    env: dict[str, str]
    servers: list[Server] = field(default_factory=list)

    def server(self, *, registry: Path | None = None, extra: list[str] | None = None) -> Server:
        """A started server (stopped at the end of the test)."""
        argv = [sys.executable, "-m", "signer", "serve", "--code-sender", "dev-file", "--ledger", self.ledger, "--data", str(self.data),
                "--centres", str(self.centres), "--registry", str(registry or self.registry),
                "--port", str(free_port()), *(extra or [])]  # fmt: skip
        port = int(argv[argv.index("--port") + 1])
        server = Server(argv=argv, env=self.env, port=port, keys=self.keys, log=server_log(f"api-{port}"))
        self.servers.append(server)
        return server.start()


def make_api_env(api_pki: ApiPki, data: Path, ledger: str, extra_env: dict[str, str]) -> ApiEnv:
    from signer.ledger import Ledger
    from signer.web import apikeys
    from signer.web.demo import write_centres_config

    data.mkdir(parents=True, exist_ok=True)
    centres = data / "centres.json"
    write_centres_config(centres, api_pki.pki, [CENTRE_A, CENTRE_B], passphrase_env=KEY_ENV)
    registry = data / "registry.csv"
    shutil.copyfile(EXAMPLES / "registry.csv", registry)
    env = dict(os.environ)
    env.update(extra_env)
    env[KEY_ENV] = KEY_PASS
    env.pop("VNDCC_KEY_PASSPHRASE", None)  # the server must use the config's variable
    saved = os.environ.get(LEDGER_KEY_ENV)
    if LEDGER_KEY_ENV in extra_env:
        os.environ[LEDGER_KEY_ENV] = extra_env[LEDGER_KEY_ENV]
    try:
        ledger_obj = Ledger.open(ledger, actor="test")
        try:
            keys = {"A": apikeys.create_key(ledger_obj, CENTRE_A, "test A"),
                    "B": apikeys.create_key(ledger_obj, CENTRE_B, "test B")}  # fmt: skip
        finally:
            ledger_obj.close()
    finally:
        if LEDGER_KEY_ENV in extra_env:
            if saved is None:
                os.environ.pop(LEDGER_KEY_ENV, None)
            else:
                os.environ[LEDGER_KEY_ENV] = saved
    return ApiEnv(data=data, pki=api_pki, ledger=ledger, centres=centres, registry=registry, keys=keys, env=env)


@pytest.fixture()
def api_env(api_pki: ApiPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiEnv]:
    """SQLite ledger (key file beside it)."""
    monkeypatch.delenv(LEDGER_KEY_ENV, raising=False)
    env = make_api_env(api_pki, tmp_path / "data", str(tmp_path / "data" / "ledger.sqlite"), {})
    env.env.pop(LEDGER_KEY_ENV, None)
    yield env
    for server in env.servers:
        server.stop()


def wait_job(client: httpx.Client, job_id: str, *, timeout: float = 120) -> dict[str, Any]:
    """Poll until the job is done or failed; its last view."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        view: dict[str, Any] = r.json()
        if view["state"] in ("done", "failed"):
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {view['state']} after {timeout} s: {view}")
        time.sleep(0.3)


def submit(client: httpx.Client, body: bytes, *, key: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    h = dict(JSONL if headers is None else headers)
    h["Idempotency-Key"] = key or secrets.token_hex(8)
    return client.post("/api/v1/jobs", content=body, headers=h)


env_vars = environment  # (one helper: signer.demo.environment)
