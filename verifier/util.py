"""Small helpers every package uses: ISO-8601 times from the command line, atomic writes.

    >>> from verifier.util import parse_iso_time
    >>> parse_iso_time("2026-06-01T12:00:00.5")
    datetime.datetime(2026, 6, 1, 12, 0, 0, 500000, tzinfo=datetime.timezone.utc)

Kept in ``verifier`` (the bottom layer) so ``signer`` and ``keys`` share
them without the verifier depending on either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from pathlib import Path

from verifier.errors import ConfigError


def parse_iso_time(text: str, *, what: str = "--at") -> dt.datetime:
    """ISO-8601 with or without fractional seconds and zone; no zone means UTC.

    Returns an aware datetime in UTC; raises :class:`ConfigError` naming ``what``.
    """
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        # astimezone overflows for a zoned time that is out of range in UTC
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ConfigError(
            f"{what}: {text!r} is not an ISO-8601 date-time (e.g. 2026-06-01T12:00:00Z)"
        ) from None


def write_atomic(path: Path, data: bytes, *, mode: int | None = None, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    Readers see the old file or the new one, never half of it. ``mode`` sets
    the permissions (``0o600`` for private keys); ``durable`` fsyncs before the
    rename. Raises ``OSError`` as the file system does.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
