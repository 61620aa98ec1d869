"""Small helpers every package uses: command-line parsing and times, atomic writes.

    >>> from verifier.util import parse_iso_time
    >>> parse_iso_time("2026-06-01T12:00:00.5")
    datetime.datetime(2026, 6, 1, 12, 0, 0, 500000, tzinfo=datetime.timezone.utc)

Kept in ``verifier`` (the bottom layer) so ``signer`` and ``keys`` share
them without the verifier depending on either.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import NoReturn

from verifier.errors import ConfigError

#: Clock values a command line accepts. Far from ``datetime``'s limits, so that
#: ``now + validity`` or ``now + clock skew`` never overflows; an --at of
#: 9999-12-31 is a typo, not a use case (issue 8, hostile input).
EARLIEST_TIME = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST_TIME = dt.datetime(3000, 1, 1, tzinfo=dt.UTC)
_MAX_TIME_TEXT = 64


def parse_iso_time(text: str, *, what: str = "--at") -> dt.datetime:
    """ISO-8601 with or without fractional seconds and zone; no zone means UTC.

    Returns an aware datetime in UTC from 1970 up to (not including) the year
    3000; raises :class:`ConfigError` naming ``what``.
    """
    shown = repr(text) if len(text) <= _MAX_TIME_TEXT else f"{text[:_MAX_TIME_TEXT]!r}..."
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        # astimezone overflows for a zoned time that is out of range in UTC
        value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ConfigError(
            f"{what}: {shown} is not an ISO-8601 date-time (e.g. 2026-06-01T12:00:00Z)"
        ) from None
    if not EARLIEST_TIME <= value < LATEST_TIME:
        raise ConfigError(f"{what}: {shown} is not between 1970-01-01 and 2999-12-31 (UTC)")
    return value


def jobs_arg(text: str) -> int:
    """argparse type of ``--jobs``: 1 to 256 worker processes."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("--jobs must be a number") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError("--jobs must be 1 to 256")
    return value


class CommandLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr, exit 2, as every other error.

    ``PROG COMMAND: error: argument --days: must be 1 to 36500 days (see --help)``;
    the usage summary stays available with ``--help``. Subcommand parsers
    inherit the class.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


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
