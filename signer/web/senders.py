"""How one-time codes reach phones: a pluggable :class:`Sender`, and a
background queue so that no response waits for (or is timed by) the send.

    >>> import tempfile, pathlib, json
    >>> box = pathlib.Path(tempfile.mkdtemp()) / "outbox.jsonl"
    >>> FileSender(box, clock=lambda: 0.0).send("+84900000001", "code 123456")
    >>> json.loads(box.read_text())["to"], oct(box.stat().st_mode & 0o777)
    ('+84900000001', '0o600')

Production: :class:`HttpSender` posts each message to an SMS gateway's HTTP
API (``signer serve --code-sender http --sms-gateway-url URL``, the bearer token
from ``VNDCC_SMS_GATEWAY_TOKEN``; docs/portal.md "One-time codes in
production"). Senders never log the number, the text or the token.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from verifier.errors import ConfigError

_log = logging.getLogger("signer.web.senders")

#: Environment variable holding the SMS gateway's bearer token (never an option: argv is visible to all users).
TOKEN_ENV = "VNDCC_SMS_GATEWAY_TOKEN"
#: Variables only the portal process needs: never passed to the jobs' child processes.
PORTAL_ONLY_ENV = frozenset({TOKEN_ENV})


class SendFailed(Exception):
    """The gateway did not take a message. Its text names the cause (an HTTP status,
    a timeout), never the number, the message or the token."""


class Sender(Protocol):
    def send(self, to: str, text: str) -> None: ...


class FileSender:
    """Development sender: one JSON line ``{to, text, at}`` per message appended
    to ``outbox.jsonl`` (created 0600: it holds phones and codes)."""

    def __init__(self, path: Path, *, clock: Callable[[], float]) -> None:
        self.path, self.clock = path, clock
        self._lock = threading.Lock()

    def send(self, to: str, text: str) -> None:
        line = json.dumps({"to": to, "text": text, "at": int(self.clock())}, ensure_ascii=False) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)


class BackgroundSender:
    """Queues messages for one worker thread: ``send`` returns at once."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="otp-sender", daemon=True)
        self._thread.start()

    def send(self, to: str, text: str) -> None:
        self._queue.put((to, text))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                try:
                    self.inner.send(*item)
                except Exception as err:  # a failed send must not kill the worker; no number or text logged
                    _log.warning("code not sent: %s", err if isinstance(err, SendFailed) else type(err).__name__)
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every queued message was handed to the sender (tests, shutdown)."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)


class HttpSender:
    """Posts ``{"to": "+84...", "text": "..."}`` (JSON, UTF-8) to an SMS gateway with
    ``Authorization: Bearer <token>``. A 2xx answer is success; a 4xx is final
    (the gateway refused this message: not retried); a 5xx, 429, timeout or
    connection error is retried ``retries`` times with a doubling pause. The
    URL must be ``https://``, or ``http://`` to a loopback address (a local relay).
    A gateway with another body shape sits behind a small relay (docs/portal.md).

        >>> HttpSender("http://sms.example/send", "t")
        Traceback (most recent call last):
        ...
        verifier.errors.ConfigError: --sms-gateway-url must be https:// (http:// only to a loopback address), not 'http://sms.example/send'
    """

    def __init__(self, url: str, token: str, *, timeout: float = 10.0, retries: int = 2,
                 pause: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> None:
        check_gateway_url(url)
        if not token:
            raise ConfigError(f"the SMS gateway's token is empty: set {TOKEN_ENV}")
        if not all("\x21" <= c <= "\x7e" for c in token):  # a CRLF env file's "\r", spaces, non-ASCII
            raise ConfigError(f"{TOKEN_ENV} holds characters a bearer token cannot have (only visible ASCII)")
        self.url, self._token = url, token
        self.timeout, self.retries, self.pause, self.sleep = timeout, retries, pause, sleep
        # no proxy from the environment and no redirects: the token goes only where the URL says
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    def __repr__(self) -> str:  # never the token, nor the URL's query
        return f"HttpSender({shown_url(self.url)!r})"

    def send(self, to: str, text: str) -> None:
        body = json.dumps({"to": to, "text": text}, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {self._token}",
            "User-Agent": "vn-dcc-portal",
        })  # fmt: skip
        cause = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.pause * 2 ** (attempt - 1))
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    response.read(65536)
                    return  # urllib raises HTTPError for anything but 2xx (redirects are refused)
            except urllib.error.HTTPError as err:
                err.close()
                cause = f"gateway answered HTTP {err.code}"
                if err.code < 500 and err.code != 429:
                    break
            except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as err:
                reason = getattr(err, "reason", err)  # a broken answer (bad status line) is retried too
                cause = f"gateway unreachable ({type(reason).__name__})"
        raise SendFailed(f"{cause}; {attempt + 1} attempt(s)")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the 3xx then surfaces as an HTTPError: a final failure


def shown_url(url: str) -> str:
    """The URL without its query (a gateway key may sit there) for messages."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def check_gateway_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigError(f"--sms-gateway-url must be https:// (http:// only to a loopback address), not {shown_url(url)!r}")
    try:
        host, _port = parts.hostname or "", parts.port  # .port raises on "host:abc" and out of range
    except ValueError:
        raise ConfigError(f"--sms-gateway-url has a bad port: {shown_url(url)!r}") from None
    if parts.username is not None or parts.password is not None:
        raise ConfigError("--sms-gateway-url must not carry credentials: the token goes in " + TOKEN_ENV)
    if not host or not all(c.isascii() and (c.isalnum() or c in ".-:[]") for c in parts.netloc.rsplit("@", 1)[-1]):
        raise ConfigError(f"--sms-gateway-url has a bad host: {shown_url(url)!r}")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and host:
        try:
            if ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            if host == "localhost":
                return
    raise ConfigError(f"--sms-gateway-url must be https:// (http:// only to a loopback address), not {shown_url(url)!r}")


def http_sender(gateway_url: str | None, environ: Mapping[str, str] | None = None) -> HttpSender:
    """The gateway sender of ``--sms-gateway-url`` and ``$VNDCC_SMS_GATEWAY_TOKEN``, checked
    (``signer serve`` calls it before it listens)."""
    if not gateway_url:
        raise ConfigError("--code-sender http needs --sms-gateway-url")
    token = (os.environ if environ is None else environ).get(TOKEN_ENV, "")
    return HttpSender(gateway_url, token)


def make_sender(kind: str, data_dir: Path, *, clock: Callable[[], float], gateway_url: str | None = None,
                environ: Mapping[str, str] | None = None) -> BackgroundSender:
    if kind == "file":
        return BackgroundSender(FileSender(data_dir / "outbox.jsonl", clock=clock))
    if kind == "http":
        return BackgroundSender(http_sender(gateway_url, environ))
    raise ConfigError(f"unknown code sender {kind!r} (known: file, http)")
