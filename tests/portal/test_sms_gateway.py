"""The production code sender (`--code-sender http`): a real HTTP gateway on
loopback (http.server in a thread) receives the one-time codes; retries,
refusals, redirects and unreachable gateways; the whole sign-in through it;
and `signer serve` refusing a bad gateway set-up before it listens."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from signer.web.senders import TOKEN_ENV, BackgroundSender, HttpSender, SendFailed, make_sender
from tests.portal.citizen_helpers import HUONG, sign_in
from tests.portal.conftest import DemoBatch, make_portal
from verifier.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-gateway-token-7f3a"  # made up for this test; no real gateway


@dataclass
class Gateway:
    """Answers each POST with the next status of ``script`` (then 200), records
    the requests, and appends delivered messages to ``outbox`` in the
    development sender's format (so the tests' code helpers and the whole-run
    log scan read them)."""

    outbox: Path
    script: list[int] = field(default_factory=list)
    location: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                gateway.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = gateway.script.pop(0) if gateway.script else 200
                if status == 200:
                    message = json.loads(body)
                    with gateway.outbox.open("a", encoding="utf-8") as fh:
                        fh.write(json.dumps({**message, "at": 0}, ensure_ascii=False) + "\n")
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", gateway.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:  # the test's own server: no stderr noise
                pass

        return Handler


@pytest.fixture()
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    (tmp_path / "data").mkdir(mode=0o700)
    gw = Gateway(outbox=tmp_path / "data" / "outbox.jsonl")
    server = ThreadingHTTPServer(("127.0.0.1", 0), gw.handler())
    gw.url = f"http://127.0.0.1:{server.server_address[1]}/v1/sms"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gw
    finally:
        server.shutdown()
        server.server_close()


def test_posts_json_with_the_bearer_token(gateway: Gateway) -> None:
    HttpSender(gateway.url, TOKEN).send("+84912345678", "Mã xác nhận 123456")
    (request,) = gateway.requests
    assert request["path"] == "/v1/sms"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert json.loads(request["body"].decode("utf-8")) == {"to": "+84912345678", "text": "Mã xác nhận 123456"}


def test_retries_503_and_429_with_doubling_pauses(gateway: Gateway) -> None:
    gateway.script = [503, 429]
    pauses: list[float] = []
    HttpSender(gateway.url, TOKEN, sleep=pauses.append).send("+84912345678", "code 654321")
    assert len(gateway.requests) == 3 and pauses == [0.5, 1.0]
    assert len(gateway.outbox.read_text("utf-8").splitlines()) == 1


def test_gives_up_after_the_retries_without_naming_the_message(gateway: Gateway) -> None:
    gateway.script = [500, 502, 503, 504]
    with pytest.raises(SendFailed) as err:
        HttpSender(gateway.url, TOKEN, sleep=lambda s: None).send("+84912345678", "code 111222")
    assert str(err.value) == "gateway answered HTTP 503; 3 attempt(s)"
    assert len(gateway.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 422])
def test_a_refusal_is_final(gateway: Gateway, status: int) -> None:
    gateway.script = [status]
    with pytest.raises(SendFailed, match=f"HTTP {status}; 1 attempt"):
        HttpSender(gateway.url, TOKEN, sleep=lambda s: None).send("+84912345678", "code 111222")
    assert len(gateway.requests) == 1


def test_a_redirect_is_not_followed_so_the_token_stays(gateway: Gateway, tmp_path: Path) -> None:
    other = Gateway(outbox=tmp_path / "other-outbox.jsonl")
    server = ThreadingHTTPServer(("127.0.0.1", 0), other.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        gateway.script, gateway.location = [307], f"http://127.0.0.1:{server.server_address[1]}/steal"
        with pytest.raises(SendFailed, match="HTTP 307"):
            HttpSender(gateway.url, TOKEN, sleep=lambda s: None).send("+84912345678", "code 111222")
        assert other.requests == []
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_gateway_is_retried_then_reported() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pauses: list[float] = []
    with pytest.raises(SendFailed, match=r"gateway unreachable \(ConnectionRefusedError\); 3 attempt"):
        HttpSender(f"http://127.0.0.1:{port}/sms", TOKEN, sleep=pauses.append).send("+84912345678", "x 123456")
    assert pauses == [0.5, 1.0]


def test_background_failure_is_logged_without_number_text_or_token(gateway: Gateway,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    gateway.script = [403]
    sender = BackgroundSender(HttpSender(gateway.url, TOKEN, sleep=lambda s: None))
    with caplog.at_level(logging.WARNING, logger="signer.web.senders"):
        sender.send("+84912345678", "Mã 987654")
        sender.flush()
        sender.close()
    assert [r.getMessage() for r in caplog.records] == ["code not sent: gateway answered HTTP 403; 1 attempt(s)"]
    assert TOKEN not in repr(sender.inner)


@pytest.mark.parametrize("url", ["http://sms.example.vn/send", "ftp://127.0.0.1/x", "https:///nohost",
                                 "http://10.0.0.5/sms", "sms.example.vn"])
def test_gateway_url_must_be_https_or_loopback(url: str) -> None:
    with pytest.raises(ConfigError, match="must be https://"):
        HttpSender(url, TOKEN)


@pytest.mark.parametrize(("url", "message"), [
    ("https://sms.example.vn:abc/x", "bad port"), ("https://sms.example.vn:99999/x", "bad port"),
    ("https://sms example.vn/x", "bad host"), ("https://user:pw@sms.example.vn/x", "must not carry credentials"),
])  # fmt: skip
def test_gateway_url_that_could_never_send_is_refused_at_start(url: str, message: str) -> None:
    """Each of these used to pass the start-up check and then fail every send."""
    with pytest.raises(ConfigError, match=message) as err:
        HttpSender(url, TOKEN)
    assert "pw" not in str(err.value)


@pytest.mark.parametrize("token", ["token\r", "tok en", "tökén", "token\n"])
def test_a_token_no_header_can_carry_is_refused_at_start(token: str) -> None:
    """A CRLF env file leaves "\\r" in the token: every send would fail (with the token in
    the exception); refused before the server listens."""
    with pytest.raises(ConfigError, match="only visible ASCII") as err:
        HttpSender("https://sms.example.vn/x", token)
    assert token not in str(err.value)


def test_a_query_key_is_not_shown() -> None:
    sender = HttpSender("https://sms.example.vn/send?api_key=SECRET", TOKEN)
    assert "SECRET" not in repr(sender)
    with pytest.raises(ConfigError) as err:
        HttpSender("http://sms.example.vn/send?api_key=SECRET", TOKEN)
    assert "SECRET" not in str(err.value)


def test_a_broken_answer_is_retried(tmp_path: Path) -> None:
    """A gateway answering garbage instead of HTTP (http.client's BadStatusLine)."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    served = []

    def answer() -> None:
        for _ in range(3):
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                served.append(1)

    threading.Thread(target=answer, daemon=True).start()
    try:
        with pytest.raises(SendFailed, match=r"gateway unreachable \(BadStatusLine\); 3 attempt"):
            HttpSender(f"http://127.0.0.1:{port}/sms", TOKEN, sleep=lambda s: None).send("+84912345678", "x 123456")
        assert len(served) == 3
    finally:
        server.close()


def test_proxies_from_the_environment_are_not_used(gateway: Gateway, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP(S)_PROXY would otherwise receive the token: urllib's default opener uses them."""
    import urllib.request

    proxy = Gateway(outbox=tmp_path / "proxy-outbox.jsonl")
    server = ThreadingHTTPServer(("127.0.0.1", 0), proxy.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{server.server_address[1]}")
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        assert urllib.request.getproxies()["http"].endswith(str(server.server_address[1]))  # the trap is set
        HttpSender(gateway.url, TOKEN).send("+84912345678", "code 123456")
        assert len(gateway.requests) == 1 and proxy.requests == []
    finally:
        server.shutdown()
        server.server_close()


def test_job_children_do_not_get_the_gateway_token() -> None:
    from signer.web.jobs import child_env

    env = child_env({"PATH": "/usr/bin", TOKEN_ENV: TOKEN}, {"VNDCC_KEY_PASSPHRASE": "from-the-job"})
    assert TOKEN_ENV not in env and env["PATH"] == "/usr/bin" and env["VNDCC_KEY_PASSPHRASE"] == "from-the-job"


def test_loopback_and_https_urls_and_the_token_rules() -> None:
    for url in ("https://sms.example.vn/send", "http://127.0.0.1:9/x", "http://[::1]:9/x", "http://localhost/x"):
        HttpSender(url, TOKEN)
    with pytest.raises(ConfigError, match=TOKEN_ENV):
        make_sender("http", Path("."), clock=lambda: 0.0, gateway_url="https://sms.example.vn/send", environ={})
    with pytest.raises(ConfigError, match="needs --sms-gateway-url"):
        make_sender("http", Path("."), clock=lambda: 0.0, environ={TOKEN_ENV: TOKEN})


def test_sign_in_through_the_gateway(gateway: Gateway, demo_batch: DemoBatch, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole look-up -> code -> passport walk with the code delivered by the
    HTTP gateway (the portal writes no outbox of its own)."""
    from dataclasses import replace

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    portal = make_portal(demo_batch, tmp_path, settings=lambda s: replace(s, sender="http",
                                                                          sms_gateway_url=gateway.url))
    pc = next(portal)
    try:
        html = sign_in(pc, HUONG)
        assert "/passport/" in html
        assert len(gateway.requests) == 1
        assert json.loads(gateway.requests[0]["body"])["to"] == HUONG["phone"]
        assert gateway.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    finally:
        portal.close()


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--code-sender", "http"], {TOKEN_ENV: TOKEN}, "--code-sender http needs --sms-gateway-url"),
    (["--code-sender", "http", "--sms-gateway-url", "http://sms.example.vn/x"], {TOKEN_ENV: TOKEN},
     "must be https://"),
    (["--code-sender", "http", "--sms-gateway-url", "https://sms.example.vn/x"], {}, TOKEN_ENV),
    (["--code-sender", "dev-file", "--sms-gateway-url", "https://sms.example.vn/x"], {},
     "--sms-gateway-url is used only with --code-sender http"),
])  # fmt: skip
def test_serve_refuses_a_bad_gateway_set_up_before_listening(tmp_path: Path, args: list[str],
                                                              env: dict[str, str], message: str) -> None:
    import os

    base = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    proc = subprocess.run([sys.executable, "-m", "signer", "serve", "--data", str(tmp_path / "d"), "--port", "9",
                           *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env={**base, **env})  # fmt: skip
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout
