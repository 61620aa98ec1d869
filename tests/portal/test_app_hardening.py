"""App-level hardening found by the security review of the portal: security
headers even on a 500, a lone surrogate in a JSON body answered 422 (not a
500 from echoing it back), no Python file under /static, an explicit code
sender, and client addresses from a proxy only when the proxy is named."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from signer.ledger import Ledger
from signer.web import apikeys
from signer.web.app import create_app
from signer.web.settings import PortalSettings
from tests.fixtures.logscan import server_log

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def app_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str]]:
    monkeypatch.delenv("VNDCC_LEDGER_KEY", raising=False)
    ledger_path = tmp_path / "ledger.sqlite"
    ledger = Ledger.open(str(ledger_path), actor="test")
    try:
        apikeys.create_key_file(ledger, "Centre A", "t", tmp_path / "key")
    finally:
        ledger.close()
    app = create_app(PortalSettings(ledger=str(ledger_path), data_dir=tmp_path / "data"))

    @app.get("/boom")
    async def boom() -> None:  # a bug somewhere: the 500 must still carry the headers
        raise RuntimeError("boom")

    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        yield client, (tmp_path / "key").read_text("ascii").strip()


def test_a_500_carries_the_security_headers(app_and_key: tuple[TestClient, str]) -> None:
    client, _ = app_and_key
    r = client.get("/boom")
    assert r.status_code == 500 and "boom" not in r.text
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"


def test_lone_surrogate_in_a_json_body_is_a_422(app_and_key: tuple[TestClient, str]) -> None:
    client, key = app_and_key
    r = client.post("/api/v1/certificates/URN:UVCI:01:VN:X/revoke", content=b'{"reason": "\\ud800"}',
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
    assert r.status_code in (404, 422), r.text
    bad = client.post("/api/v1/certificates/URN:UVCI:01:VN:X/revoke", content=b'{"reason": ["\\ud800"]}',
                      headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
    assert bad.status_code == 422
    assert "ud800" not in bad.text.lower() and {"loc", "msg", "type"} <= set(bad.json()["detail"][0])


def test_static_serves_the_stylesheet_and_no_python(app_and_key: tuple[TestClient, str]) -> None:
    client, _ = app_and_key
    css = client.get("/static/portal.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "content-security-policy" in css.headers
    assert client.get("/static/__init__.py").status_code == 404


def test_serve_needs_an_explicit_code_sender(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "signer", "serve", "--data", str(tmp_path / "d")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 2 and "--code-sender dev-file" in proc.stderr and "Traceback" not in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("named", [True, False])
def test_forwarded_client_only_from_a_named_proxy(tmp_path: Path, named: bool) -> None:
    port = _free_port()
    log = server_log(f"forwarded-{port}")
    argv = [sys.executable, "-m", "signer", "serve", "--code-sender", "dev-file", "--data", str(tmp_path / "d"),
            "--port", str(port), *(["--forwarded-allow-ips", "127.0.0.1"] if named else [])]  # fmt: skip
    with log.open("ab") as fh:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", headers={"X-Forwarded-For": "198.51.100.7"}, timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text("utf-8", "replace")
                time.sleep(0.2)
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)
    text = log.read_text("utf-8", "replace")
    assert ("198.51.100.7" in text) is named, text[-2000:]
