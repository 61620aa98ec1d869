"""How one-time codes reach phones: a pluggable :class:`Sender`, and a
background queue so that no response waits for (or is timed by) the send.

    >>> import tempfile, pathlib, json
    >>> box = pathlib.Path(tempfile.mkdtemp()) / "outbox.jsonl"
    >>> FileSender(box, clock=lambda: 0.0).send("+84900000001", "code 123456")
    >>> json.loads(box.read_text())["to"], oct(box.stat().st_mode & 0o777)
    ('+84900000001', '0o600')

A production deployment adds a class with the same ``send`` (an SMS
gateway's HTTP API) and names it in ``PortalSettings.sender``. Senders never
log the number or the text.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from verifier.errors import ConfigError


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
                    import logging

                    logging.getLogger("signer.web.senders").warning("code not sent: %s", type(err).__name__)
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every queued message was handed to the sender (tests, shutdown)."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)


def make_sender(kind: str, data_dir: Path, *, clock: Callable[[], float]) -> BackgroundSender:
    if kind == "file":
        return BackgroundSender(FileSender(data_dir / "outbox.jsonl", clock=clock))
    raise ConfigError(f"unknown code sender {kind!r} (known: file)")
